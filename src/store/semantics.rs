//! Kubernetes object semantics, as pure functions over JSON objects.
//!
//! The SQLite layer only persists what these functions decide, so the rules
//! (when `generation` moves, optimistic concurrency, finalizers, what a write
//! may touch) are tested here without a database.

use serde_json::{Map, Value, json};

use super::error::{Result, StoreError};
use crate::api::Kind;

/// Annotation prefix owned by decnet itself: `apply` keeps these when a
/// manifest's annotations replace the user's.
pub const SYSTEM_ANNOTATION_PREFIX: &str = "decnet.io/";
/// Set on objects written by `decnet apply`; `--prune` only touches those.
pub const APPLIED_ANNOTATION: &str = "decnet.io/managed-by";

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

pub fn name_of(obj: &Value) -> Option<&str> {
    meta(obj)?.get("name")?.as_str()
}

pub fn uid_of(obj: &Value) -> Option<&str> {
    meta(obj)?.get("uid")?.as_str()
}

pub fn resource_version_of(obj: &Value) -> Option<&str> {
    meta(obj)?.get("resourceVersion")?.as_str()
}

pub fn generation_of(obj: &Value) -> i64 {
    meta(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn finalizers_of(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|t| !t.is_null()))
}

pub fn labels_of(obj: &Value) -> Map<String, Value> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// UIDs of this object's owners.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh object: server-owned metadata set, status dropped (status is only
/// written through the status subresource), generation 1.
pub fn plan_create(kind: Kind, incoming: &Value, uid: &str, now: &str) -> Result<Value> {
    let name = name_of(incoming)
        .ok_or_else(|| StoreError::Invalid("metadata.name is required".into()))?
        .to_string();
    let mut obj = json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": kind.as_str(),
        "metadata": {},
        "spec": incoming.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    let m = meta_mut(&mut obj);
    m.insert("name".into(), json!(name));
    m.insert("uid".into(), json!(uid));
    m.insert("generation".into(), json!(1));
    m.insert("creationTimestamp".into(), json!(now));
    if let Some(src) = meta(incoming) {
        for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
            if let Some(v) = src.get(key).filter(|v| !is_empty(v)) {
                m.insert(key.into(), v.clone());
            }
        }
    }
    Ok(obj)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn set_or_remove(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    match v.filter(|v| !is_empty(v)) {
        Some(v) => {
            m.insert(key.into(), v);
        }
        None => {
            m.remove(key);
        }
    }
}

fn check_rv(kind: Kind, stored: &Value, sent: Option<&str>) -> Result<()> {
    let current = resource_version_of(stored).unwrap_or_default();
    match sent {
        Some(sent) if sent != current => Err(StoreError::Conflict {
            kind,
            name: name_of(stored).unwrap_or_default().to_string(),
            current: current.to_string(),
            sent: sent.to_string(),
        }),
        _ => Ok(()),
    }
}

/// `decnet apply` on an existing object: the manifest owns spec, labels and
/// its annotations; finalizers, owners and status belong to controllers.
/// Returns `None` when nothing would change (kubectl's "unchanged").
pub fn plan_apply(kind: Kind, stored: &Value, incoming: &Value) -> Result<Option<Value>> {
    check_rv(kind, stored, resource_version_of(incoming))?;
    if is_deleting(stored) {
        return Err(StoreError::Terminating {
            kind,
            name: name_of(stored).unwrap_or_default().to_string(),
        });
    }
    let mut next = stored.clone();
    let spec = incoming.get("spec").cloned().unwrap_or_else(|| json!({}));
    let in_meta = meta(incoming).cloned().unwrap_or_default();
    let mut annotations: Map<String, Value> = meta(stored)
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .filter(|(k, _)| k.starts_with(SYSTEM_ANNOTATION_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(a)) = in_meta.get("annotations") {
        annotations.extend(a.clone());
    }
    next["spec"] = spec;
    let m = meta_mut(&mut next);
    set_or_remove(m, "labels", in_meta.get("labels").cloned());
    set_or_remove(m, "annotations", Some(Value::Object(annotations)));
    finish_update(stored, next)
}

/// A full update (controllers and `Api::replace`): metadata and spec from the
/// caller, status kept. Optimistic concurrency when a resourceVersion is sent.
pub fn plan_replace(kind: Kind, stored: &Value, incoming: &Value) -> Result<Option<Value>> {
    check_rv(kind, stored, resource_version_of(incoming))?;
    let mut next = stored.clone();
    next["spec"] = incoming.get("spec").cloned().unwrap_or_else(|| json!({}));
    let in_meta = meta(incoming).cloned().unwrap_or_default();
    let old_finalizers = finalizers_of(stored);
    let new_finalizers: Vec<String> = in_meta
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if is_deleting(stored) && new_finalizers.iter().any(|f| !old_finalizers.contains(f)) {
        return Err(StoreError::Invalid(format!(
            "{kind} {:?} is being deleted: finalizers can only be removed",
            name_of(stored).unwrap_or_default()
        )));
    }
    let m = meta_mut(&mut next);
    for key in ["labels", "annotations", "ownerReferences"] {
        set_or_remove(m, key, in_meta.get(key).cloned());
    }
    set_or_remove(m, "finalizers", Some(json!(new_finalizers)));
    finish_update(stored, next)
}

/// The status subresource: only `.status` changes; generation never moves.
pub fn plan_status(
    kind: Kind,
    stored: &Value,
    status: Value,
    sent_rv: Option<&str>,
) -> Result<Option<Value>> {
    check_rv(kind, stored, sent_rv)?;
    if stored.get("status") == Some(&status) || (status.is_null() && stored.get("status").is_none())
    {
        return Ok(None);
    }
    let mut next = stored.clone();
    match status {
        Value::Null => {
            if let Some(o) = next.as_object_mut() {
                o.remove("status");
            }
        }
        s => next["status"] = s,
    }
    Ok(Some(next))
}

/// generation moves only when the spec changed; `None` when nothing did.
fn finish_update(stored: &Value, mut next: Value) -> Result<Option<Value>> {
    if &next == stored {
        return Ok(None);
    }
    if next.get("spec") != stored.get("spec") {
        let g = generation_of(stored) + 1;
        meta_mut(&mut next).insert("generation".into(), json!(g));
    }
    Ok(Some(next))
}

/// What a delete request does to a stored object.
#[derive(Debug, PartialEq)]
pub enum DeletePlan {
    /// Finalizers pending: mark with `deletionTimestamp`, controllers clean up.
    Mark(Value),
    /// Already marked; nothing to do until the finalizers are gone.
    AlreadyDeleting,
    /// No finalizers: remove now (and cascade to dependents).
    Remove,
}

pub fn plan_delete(stored: &Value, now: &str) -> DeletePlan {
    if finalizers_of(stored).is_empty() {
        DeletePlan::Remove
    } else if is_deleting(stored) {
        DeletePlan::AlreadyDeleting
    } else {
        let mut next = stored.clone();
        meta_mut(&mut next).insert("deletionTimestamp".into(), json!(now));
        DeletePlan::Mark(next)
    }
}

/// An object marked for deletion whose last finalizer was removed goes away.
pub fn should_remove(obj: &Value) -> bool {
    is_deleting(obj) && finalizers_of(obj).is_empty()
}

/// Stamps the resourceVersion a write was given.
pub fn stamp_rv(obj: &mut Value, rv: i64) {
    meta_mut(obj).insert("resourceVersion".into(), json!(rv.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-23T10:00:00Z";

    fn created() -> Value {
        let mut o = plan_create(
            Kind::Worker,
            &json!({"metadata": {"name": "w1", "labels": {"zone": "a"}}, "spec": {"address": "10.0.0.1"}, "status": {"phase": "Active"}}),
            "uid-1",
            NOW,
        )
        .unwrap();
        stamp_rv(&mut o, 5);
        o
    }

    #[test]
    fn create_sets_server_fields_and_drops_status() {
        let o = created();
        assert_eq!(generation_of(&o), 1);
        assert_eq!(uid_of(&o), Some("uid-1"));
        assert_eq!(resource_version_of(&o), Some("5"));
        assert!(o.get("status").is_none());
        assert_eq!(o["kind"], "Worker");
        assert_eq!(o["metadata"]["labels"]["zone"], "a");
    }

    #[test]
    fn generation_moves_only_on_spec_change() {
        let o = created();
        let same = json!({"metadata": {"name": "w1", "labels": {"zone": "a"}}, "spec": {"address": "10.0.0.1"}});
        assert_eq!(plan_apply(Kind::Worker, &o, &same).unwrap(), None);

        let relabel = json!({"metadata": {"name": "w1", "labels": {"zone": "b"}}, "spec": {"address": "10.0.0.1"}});
        let n = plan_apply(Kind::Worker, &o, &relabel).unwrap().unwrap();
        assert_eq!(generation_of(&n), 1);
        assert_eq!(n["metadata"]["labels"]["zone"], "b");

        let respec = json!({"metadata": {"name": "w1"}, "spec": {"address": "10.0.0.2"}});
        let n = plan_apply(Kind::Worker, &o, &respec).unwrap().unwrap();
        assert_eq!(generation_of(&n), 2);
        assert!(meta(&n).unwrap().get("labels").is_none());

        let st = plan_status(Kind::Worker, &o, json!({"phase": "Active"}), None)
            .unwrap()
            .unwrap();
        assert_eq!(generation_of(&st), 1);
        assert_eq!(st["status"]["phase"], "Active");
        assert_eq!(
            plan_status(Kind::Worker, &st, json!({"phase": "Active"}), None).unwrap(),
            None
        );
    }

    #[test]
    fn stale_resource_version_is_a_conflict() {
        let o = created();
        let stale =
            json!({"metadata": {"name": "w1", "resourceVersion": "4"}, "spec": {"address": "x"}});
        let e = plan_replace(Kind::Worker, &o, &stale).unwrap_err();
        assert!(e.is_conflict(), "{e}");
        assert!(
            plan_status(Kind::Worker, &o, json!({}), Some("3"))
                .unwrap_err()
                .is_conflict()
        );
        let fresh =
            json!({"metadata": {"name": "w1", "resourceVersion": "5"}, "spec": {"address": "x"}});
        assert!(plan_replace(Kind::Worker, &o, &fresh).unwrap().is_some());
    }

    #[test]
    fn apply_keeps_controller_owned_metadata() {
        let mut o = created();
        o["metadata"]["finalizers"] = json!(["decnet.io/teardown"]);
        o["metadata"]["annotations"] = json!({"decnet.io/managed-by": "apply", "note": "old"});
        o["status"] = json!({"phase": "Active"});
        let m = json!({"metadata": {"name": "w1", "annotations": {"team": "red"}}, "spec": {"address": "10.0.0.9"}});
        let n = plan_apply(Kind::Worker, &o, &m).unwrap().unwrap();
        assert_eq!(n["metadata"]["finalizers"], json!(["decnet.io/teardown"]));
        assert_eq!(
            n["metadata"]["annotations"],
            json!({"decnet.io/managed-by": "apply", "team": "red"})
        );
        assert_eq!(n["status"]["phase"], "Active");
    }

    #[test]
    fn finalizers_hold_deletion_until_removed() {
        let mut o = created();
        assert_eq!(plan_delete(&o, NOW), DeletePlan::Remove);

        o["metadata"]["finalizers"] = json!(["decnet.io/teardown"]);
        let DeletePlan::Mark(marked) = plan_delete(&o, NOW) else {
            panic!("expected a mark")
        };
        assert!(is_deleting(&marked));
        assert!(!should_remove(&marked));
        assert_eq!(plan_delete(&marked, NOW), DeletePlan::AlreadyDeleting);

        // Apply refuses to resurrect a terminating object.
        let m = json!({"metadata": {"name": "w1"}, "spec": {"address": "x"}});
        assert!(matches!(
            plan_apply(Kind::Worker, &marked, &m),
            Err(StoreError::Terminating { .. })
        ));

        // A controller may not add finalizers while deleting, only remove them.
        let mut add = marked.clone();
        add["metadata"]["finalizers"] = json!(["decnet.io/teardown", "other"]);
        assert!(plan_replace(Kind::Worker, &marked, &add).is_err());

        let mut done = marked.clone();
        done["metadata"]["finalizers"] = json!([]);
        let n = plan_replace(Kind::Worker, &marked, &done).unwrap().unwrap();
        assert!(should_remove(&n));
    }
}
