//! Finalizer flow in kube-runtime's shape: the finalizer is added before any
//! side effect, and removed only after cleanup succeeded, so an object never
//! disappears with resources still running for it.

use std::sync::Arc;

use super::Action;
use crate::api::DecnetResource;
use crate::store::{Api, StoreError};

pub enum Event<K> {
    /// The object exists and is not being deleted: converge it.
    Apply(Arc<K>),
    /// The object is being deleted: release what it holds.
    Cleanup(Arc<K>),
}

#[derive(Debug, thiserror::Error)]
pub enum FinalizerError<E: std::error::Error + 'static> {
    #[error("apply failed: {0}")]
    ApplyFailed(#[source] E),
    #[error("cleanup failed: {0}")]
    CleanupFailed(#[source] E),
    #[error("adding finalizer: {0}")]
    AddFinalizer(#[source] StoreError),
    #[error("removing finalizer: {0}")]
    RemoveFinalizer(#[source] StoreError),
    #[error("object has no name")]
    UnnamedObject,
}

pub async fn finalizer<K, F, Fut, E>(
    api: &Api<K>,
    finalizer_name: &str,
    obj: Arc<K>,
    reconcile: F,
) -> Result<Action, FinalizerError<E>>
where
    K: DecnetResource,
    F: FnOnce(Event<K>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, E>>,
    E: std::error::Error + 'static,
{
    let meta = obj.meta();
    if meta.name.is_none() {
        return Err(FinalizerError::UnnamedObject);
    }
    let has = meta
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer_name));
    let deleting = meta.deletion_timestamp.is_some();
    match (deleting, has) {
        (false, true) => reconcile(Event::Apply(obj))
            .await
            .map_err(FinalizerError::ApplyFailed),
        (false, false) => {
            let mut next = (*obj).clone();
            next.meta_mut()
                .finalizers
                .get_or_insert_with(Vec::new)
                .push(finalizer_name.to_string());
            api.replace(&next)
                .await
                .map_err(FinalizerError::AddFinalizer)?;
            // The write itself triggers the next reconcile.
            Ok(Action::await_change())
        }
        (true, true) => {
            let action = reconcile(Event::Cleanup(obj.clone()))
                .await
                .map_err(FinalizerError::CleanupFailed)?;
            let mut next = (*obj).clone();
            if let Some(f) = next.meta_mut().finalizers.as_mut() {
                f.retain(|x| x != finalizer_name);
            }
            api.replace(&next)
                .await
                .map_err(FinalizerError::RemoveFinalizer)?;
            Ok(action)
        }
        (true, false) => Ok(Action::await_change()),
    }
}
