//! The embedded store against a real SQLite file.

use decnet::api::{Kind, Worker, WorkerPhase, WorkerStatus};
use decnet::store::{Api, ApplyOutcome, ChangeOp, DeleteOutcome, Selector, Store, StoreError};
use serde_json::{Value, json};

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("decnet.db")).await.unwrap();
    (dir, store)
}

fn worker(name: &str, address: &str, labels: Value) -> Value {
    json!({"apiVersion": "decnet.io/v1alpha1", "kind": "Worker",
           "metadata": {"name": name, "labels": labels}, "spec": {"address": address}})
}

#[tokio::test]
async fn apply_is_create_then_configure_then_unchanged() {
    let (_d, s) = store().await;
    let w = worker("w1", "10.0.0.1", json!({"zone": "a"}));
    assert_eq!(
        s.apply_all(&[(Kind::Worker, w.clone())], false)
            .await
            .unwrap(),
        [ApplyOutcome::Created]
    );
    assert_eq!(
        s.apply_all(&[(Kind::Worker, w.clone())], false)
            .await
            .unwrap(),
        [ApplyOutcome::Unchanged]
    );
    let got = s.get(Kind::Worker, "w1").await.unwrap().unwrap();
    assert_eq!(got["metadata"]["generation"], 1);
    let rv1 = got["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let w2 = worker("w1", "10.0.0.2", json!({"zone": "a"}));
    assert_eq!(
        s.apply_all(&[(Kind::Worker, w2)], false).await.unwrap(),
        [ApplyOutcome::Configured]
    );
    let got = s.get(Kind::Worker, "w1").await.unwrap().unwrap();
    assert_eq!(got["metadata"]["generation"], 2);
    assert_eq!(got["spec"]["address"], "10.0.0.2");
    assert_ne!(got["metadata"]["resourceVersion"].as_str().unwrap(), rv1);
}

#[tokio::test]
async fn file_apply_is_one_transaction() {
    let (_d, s) = store().await;
    let good = worker("good", "10.0.0.1", json!({}));
    // A stale resourceVersion on the 2nd document fails the whole batch.
    let mut stale = worker("stale", "10.0.0.2", json!({}));
    stale["metadata"]["resourceVersion"] = json!("999");
    let err = s
        .apply_all(&[(Kind::Worker, good), (Kind::Worker, stale)], false)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(
        s.get(Kind::Worker, "good").await.unwrap().is_none(),
        "first document must not be half-applied"
    );
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let (_d, s) = store().await;
    let out = s
        .apply_all(&[(Kind::Worker, worker("w", "10.0.0.1", json!({})))], true)
        .await
        .unwrap();
    assert_eq!(out, [ApplyOutcome::Created]);
    assert!(s.get(Kind::Worker, "w").await.unwrap().is_none());
    assert_eq!(s.current_rv().await.unwrap(), 0);
}

#[tokio::test]
async fn status_is_separate_from_spec_and_keeps_generation() {
    let (_d, s) = store().await;
    let api: Api<Worker> = Api::new(s.clone());
    s.apply_all(
        &[(Kind::Worker, worker("w1", "10.0.0.1", json!({})))],
        false,
    )
    .await
    .unwrap();
    let mut w = api.get("w1").await.unwrap();
    w.status = Some(WorkerStatus {
        phase: Some(WorkerPhase::Active),
        ..Default::default()
    });
    // Spec edits sent through the status subresource are ignored.
    w.spec.address = "10.9.9.9".into();
    let w = api.replace_status(&w).await.unwrap();
    assert_eq!(w.spec.address, "10.0.0.1");
    assert_eq!(w.status.as_ref().unwrap().phase, Some(WorkerPhase::Active));
    assert_eq!(w.metadata.generation, Some(1));
    // Re-applying the manifest keeps the status.
    s.apply_all(
        &[(Kind::Worker, worker("w1", "10.0.0.3", json!({})))],
        false,
    )
    .await
    .unwrap();
    let w = api.get("w1").await.unwrap();
    assert_eq!(w.status.unwrap().phase, Some(WorkerPhase::Active));
    assert_eq!(w.metadata.generation, Some(2));
}

#[tokio::test]
async fn optimistic_concurrency_rejects_the_stale_writer() {
    let (_d, s) = store().await;
    let api: Api<Worker> = Api::new(s.clone());
    s.apply_all(
        &[(Kind::Worker, worker("w1", "10.0.0.1", json!({})))],
        false,
    )
    .await
    .unwrap();
    let a = api.get("w1").await.unwrap();
    let mut b = a.clone();
    let mut a2 = a.clone();
    a2.spec.weight = 5;
    api.replace(&a2).await.unwrap();
    b.spec.weight = 7;
    match api.replace(&b).await {
        Err(StoreError::Conflict { current, sent, .. }) => assert_ne!(current, sent),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(api.get("w1").await.unwrap().spec.weight, 5);
    // Same for status writes.
    let mut c = b.clone();
    c.status = Some(WorkerStatus::default());
    assert!(api.replace_status(&c).await.unwrap_err().is_conflict());
}

#[tokio::test]
async fn finalizers_and_deletion_timestamp() {
    let (_d, s) = store().await;
    let api: Api<Worker> = Api::new(s.clone());
    s.apply_all(
        &[(Kind::Worker, worker("w1", "10.0.0.1", json!({})))],
        false,
    )
    .await
    .unwrap();
    let mut w = api.get("w1").await.unwrap();
    w.metadata.finalizers = Some(vec!["decnet.io/decommission".into()]);
    api.replace(&w).await.unwrap();

    assert_eq!(api.delete("w1").await.unwrap(), DeleteOutcome::Terminating);
    let w = api.get("w1").await.unwrap();
    assert!(w.metadata.deletion_timestamp.is_some());
    assert_eq!(
        api.delete("w1").await.unwrap(),
        DeleteOutcome::Terminating,
        "idempotent"
    );
    // apply cannot resurrect it while it terminates
    let err = s
        .apply_all(
            &[(Kind::Worker, worker("w1", "10.0.0.1", json!({})))],
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Terminating { .. }), "{err}");

    let mut w = w;
    w.metadata.finalizers = Some(vec![]);
    api.replace(&w).await.unwrap();
    assert!(
        api.get_opt("w1").await.unwrap().is_none(),
        "gone once the last finalizer is removed"
    );
    assert_eq!(api.delete("w1").await.unwrap(), DeleteOutcome::NotFound);
}

#[tokio::test]
async fn owner_references_cascade() {
    let (_d, s) = store().await;
    let topo = json!({"metadata": {"name": "maze"}, "spec": {"depth": 1, "branching": 1, "deckiesPerLan": 1, "services": ["ssh"]}});
    let topo = s.create(Kind::Topology, &topo).await.unwrap();
    let uid = topo["metadata"]["uid"].as_str().unwrap();
    let owner = json!([{"apiVersion": "decnet.io/v1alpha1", "kind": "Topology", "name": "maze", "uid": uid, "controller": true}]);
    for (name, finalizers) in [
        ("maze-a", json!([])),
        ("maze-b", json!(["decnet.io/teardown"])),
    ] {
        let shard = json!({"metadata": {"name": name, "ownerReferences": owner, "finalizers": finalizers},
                           "spec": {"worker": "w1", "deckies": []}});
        s.create(Kind::DeckyShard, &shard).await.unwrap();
    }
    let unrelated = json!({"metadata": {"name": "other"}, "spec": {"worker": "w1", "deckies": []}});
    s.create(Kind::DeckyShard, &unrelated).await.unwrap();

    assert_eq!(
        s.delete(Kind::Topology, "maze").await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(
        s.get(Kind::DeckyShard, "maze-a").await.unwrap().is_none(),
        "dependent without finalizers removed"
    );
    let b = s
        .get(Kind::DeckyShard, "maze-b")
        .await
        .unwrap()
        .expect("dependent with finalizer stays");
    assert!(
        b["metadata"]["deletionTimestamp"].is_string(),
        "but is marked for deletion"
    );
    assert!(s.get(Kind::DeckyShard, "other").await.unwrap().is_some());
}

#[tokio::test]
async fn labels_and_selectors() {
    let (_d, s) = store().await;
    let docs: Vec<_> = [
        ("a", "eu", "prod"),
        ("b", "us", "prod"),
        ("c", "eu", "test"),
    ]
    .into_iter()
    .map(|(n, z, e)| {
        (
            Kind::Worker,
            worker(n, "10.0.0.1", json!({"zone": z, "env": e})),
        )
    })
    .collect();
    s.apply_all(&docs, false).await.unwrap();
    let names = |v: Vec<Value>| {
        v.iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let sel = |t: &str| Selector::parse(t).unwrap();
    assert_eq!(
        names(s.list(Kind::Worker, &sel("zone=eu")).await.unwrap()),
        ["a", "c"]
    );
    assert_eq!(
        names(
            s.list(Kind::Worker, &sel("zone=eu,env!=test"))
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(s.list(Kind::Worker, &sel("zone in (us,ap)")).await.unwrap()),
        ["b"]
    );
    assert_eq!(
        names(s.list(Kind::Worker, &sel("")).await.unwrap()),
        ["a", "b", "c"]
    );
}

#[tokio::test]
async fn change_feed_orders_every_write() {
    let (_d, s) = store().await;
    let api: Api<Worker> = Api::new(s.clone());
    s.apply_all(
        &[(Kind::Worker, worker("w1", "10.0.0.1", json!({})))],
        false,
    )
    .await
    .unwrap();
    let mut w = api.get("w1").await.unwrap();
    w.status = Some(WorkerStatus::default());
    w.status.as_mut().unwrap().phase = Some(WorkerPhase::Enrolled);
    api.replace_status(&w).await.unwrap();
    api.delete("w1").await.unwrap();
    let feed = s.changes_since(0, 100).await.unwrap();
    let ops: Vec<_> = feed.iter().map(|c| (c.op, c.name.as_str())).collect();
    assert_eq!(
        ops,
        [
            (ChangeOp::Added, "w1"),
            (ChangeOp::Status, "w1"),
            (ChangeOp::Deleted, "w1")
        ]
    );
    assert!(feed.windows(2).all(|p| p[0].rv < p[1].rv));
    assert_eq!(s.changes_since(feed[1].rv, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn state_survives_reopen_and_is_shared_between_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decnet.db");
    {
        let s = Store::open(&path).await.unwrap();
        s.apply_all(
            &[(Kind::Worker, worker("w1", "10.0.0.1", json!({})))],
            false,
        )
        .await
        .unwrap();
        s.record_event(Kind::Worker, "w1", "Normal", "Enrolled", "bundle written")
            .await
            .unwrap();
        s.record_event(Kind::Worker, "w1", "Normal", "Enrolled", "bundle written")
            .await
            .unwrap();
        s.record_event(
            Kind::Worker,
            "w1",
            "Warning",
            "Unreachable",
            "connection refused",
        )
        .await
        .unwrap();
        s.revoke("AB:CD", "w1", "decommissioned").await.unwrap();
        s.revoke("AB:CD", "w1", "decommissioned").await.unwrap();
    }
    let s = Store::open(&path).await.unwrap();
    assert!(s.get(Kind::Worker, "w1").await.unwrap().is_some());
    let ev = s.events(Kind::Worker, "w1", 10).await.unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!((ev[0].reason.as_str(), ev[0].count), ("Enrolled", 2));
    assert_eq!(ev[1].type_, "Warning");
    let rev = s.revocations().await.unwrap();
    assert_eq!(rev.len(), 1);
    assert_eq!(rev[0].fingerprint, "ab:cd");
}

#[tokio::test]
async fn typed_create_rejects_duplicates() {
    let (_d, s) = store().await;
    let api: Api<Worker> = Api::new(s.clone());
    let w: Worker = serde_json::from_value(worker("w1", "10.0.0.1", json!({}))).unwrap();
    let created = api.create(&w).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(matches!(
        api.create(&w).await,
        Err(StoreError::AlreadyExists { .. })
    ));
}
