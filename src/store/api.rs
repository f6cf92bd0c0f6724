//! Typed access to one kind, in the shape of `kube::Api<K>`, so reconcilers
//! read the same on both backends.

use std::marker::PhantomData;

use serde_json::Value;

use super::error::{Result, StoreError};
use super::selector::Selector;
use super::sqlite::{DeleteOutcome, Store};
use crate::api::DecnetResource;

pub struct Api<K> {
    store: Store,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            store: self.store.clone(),
            _kind: PhantomData,
        }
    }
}

fn decode<K: DecnetResource>(v: Value) -> Result<K> {
    Ok(serde_json::from_value(v)?)
}

impl<K: DecnetResource> Api<K> {
    pub fn new(store: Store) -> Self {
        Api {
            store,
            _kind: PhantomData,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn get(&self, name: &str) -> Result<K> {
        self.get_opt(name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: K::KIND,
                name: name.to_string(),
            })
    }

    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        self.store.get(K::KIND, name).await?.map(decode).transpose()
    }

    /// The first object by name, e.g. the fleet's Swarm (one per master).
    pub async fn first(&self) -> Result<Option<K>> {
        Ok(self.list(&Selector::default()).await?.into_iter().next())
    }

    pub async fn list(&self, selector: &Selector) -> Result<Vec<K>> {
        self.store
            .list(K::KIND, selector)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    pub async fn create(&self, obj: &K) -> Result<K> {
        decode(
            self.store
                .create(K::KIND, &serde_json::to_value(obj)?)
                .await?,
        )
    }

    /// Update metadata + spec; stale `resourceVersion` → `Conflict`.
    pub async fn replace(&self, obj: &K) -> Result<K> {
        decode(
            self.store
                .replace(K::KIND, &serde_json::to_value(obj)?)
                .await?,
        )
    }

    /// Write the status subresource from `obj.status`, guarded by its
    /// resourceVersion when set.
    pub async fn replace_status(&self, obj: &K) -> Result<K> {
        let v = serde_json::to_value(obj)?;
        let name = obj.meta().name.clone().unwrap_or_default();
        let status = v.get("status").cloned().unwrap_or(Value::Null);
        let rv = obj.meta().resource_version.as_deref();
        decode(
            self.store
                .replace_status(K::KIND, &name, status, rv)
                .await?,
        )
    }

    pub async fn delete(&self, name: &str) -> Result<DeleteOutcome> {
        self.store.delete(K::KIND, name).await
    }

    /// Record a Kubernetes-style event against the object.
    pub async fn event(&self, obj: &K, type_: &str, reason: &str, message: &str) -> Result<()> {
        let name = obj.meta().name.clone().unwrap_or_default();
        self.store
            .record_event(K::KIND, &name, type_, reason, message)
            .await
    }
}
