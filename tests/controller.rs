//! The embedded reconcile driver with test reconcilers: queueing, requeue,
//! error backoff, finalizers, owned objects, and writes from other processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use decnet::api::{Kind, Topology, Worker, WorkerPhase, WorkerStatus};
use decnet::controller::{Action, Backoff, Controller, FinalizerEvent, finalizer};
use decnet::store::{Api, Store};
use serde_json::json;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TestError(String);

#[derive(Default)]
struct Ctx {
    calls: Mutex<Vec<(String, Instant)>>,
    in_flight: Mutex<HashMap<String, u32>>,
    max_parallel_same_key: Mutex<u32>,
    cleanups: Mutex<Vec<String>>,
    backoffs: Mutex<Vec<Duration>>,
    backoff: Option<Backoff>,
}

impl Ctx {
    fn calls_for(&self, name: &str) -> Vec<Instant> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect()
    }
}

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("decnet.db")).await.unwrap();
    (dir, store)
}

async fn apply_worker(store: &Store, name: &str, address: &str) {
    let doc = json!({"apiVersion": "decnet.io/v1alpha1", "kind": "Worker", "metadata": {"name": name}, "spec": {"address": address}});
    store
        .apply_all(&[(Kind::Worker, doc)], false)
        .await
        .unwrap();
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A reconciler in the shape real ones have: observe, act, write status.
async fn reconcile(w: Arc<Worker>, ctx: Arc<Ctx>, api: Api<Worker>) -> Result<Action, TestError> {
    let name = w.metadata.name.clone().unwrap();
    ctx.calls
        .lock()
        .unwrap()
        .push((name.clone(), Instant::now()));
    {
        let mut f = ctx.in_flight.lock().unwrap();
        let n = f.entry(name.clone()).or_default();
        *n += 1;
        let mut m = ctx.max_parallel_same_key.lock().unwrap();
        *m = (*m).max(*n);
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    ctx.in_flight
        .lock()
        .unwrap()
        .entry(name.clone())
        .and_modify(|n| *n -= 1);
    if name.starts_with("fail") {
        return Err(TestError("agent unreachable".into()));
    }
    let mut next = (*w).clone();
    next.status = Some(WorkerStatus {
        phase: Some(WorkerPhase::Active),
        observed_generation: w.metadata.generation,
        ..Default::default()
    });
    api.replace_status(&next)
        .await
        .map_err(|e| TestError(e.to_string()))?;
    if name.starts_with("requeue") {
        return Ok(Action::requeue(Duration::from_millis(50)));
    }
    Ok(Action::await_change())
}

fn error_policy(w: Arc<Worker>, _e: &TestError, ctx: Arc<Ctx>) -> Action {
    let d = ctx
        .backoff
        .as_ref()
        .unwrap()
        .next(w.metadata.name.as_deref().unwrap());
    ctx.backoffs.lock().unwrap().push(d);
    Action::requeue(d)
}

fn spawn(store: &Store, ctx: Arc<Ctx>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let api: Api<Worker> = Api::new(store.clone());
    let c = Controller::<Worker>::new(store.clone()).poll_interval(Duration::from_millis(50));
    let h = tokio::spawn(async move {
        c.run(
            move |w, ctx| reconcile(w, ctx, api.clone()),
            error_policy,
            ctx,
            async move {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    });
    (tx, h)
}

fn ctx() -> Arc<Ctx> {
    Arc::new(Ctx {
        backoff: Some(Backoff::new(
            Duration::from_millis(20),
            Duration::from_millis(160),
        )),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_every_object_and_follows_spec_changes() {
    let (_d, store) = open().await;
    for n in ["a", "b", "c"] {
        apply_worker(&store, n, "10.0.0.1").await;
    }
    let ctx = ctx();
    let (stop, h) = spawn(&store, ctx.clone());
    let api: Api<Worker> = Api::new(store.clone());
    eventually(
        "all three reconciled with observedGeneration 1",
        async || {
            let mut ok = true;
            for n in ["a", "b", "c"] {
                let w = api.get(n).await.unwrap();
                ok &= w.status.and_then(|s| s.observed_generation) == Some(1);
            }
            ok
        },
    )
    .await;
    // Status writes by the reconciler itself must not wake it again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ctx.calls_for("a").len(),
        1,
        "reconciled once, not on its own status write"
    );

    apply_worker(&store, "b", "10.0.0.2").await;
    apply_worker(&store, "d", "10.0.0.4").await;
    eventually("spec change and new object reconciled", async || {
        api.get("b")
            .await
            .unwrap()
            .status
            .and_then(|s| s.observed_generation)
            == Some(2)
            && api.get("d").await.unwrap().status.is_some()
    })
    .await;
    assert_eq!(ctx.calls_for("a").len(), 1);
    stop.send(()).unwrap();
    h.await.unwrap();
    assert!(*ctx.max_parallel_same_key.lock().unwrap() <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_runs_again_without_changes() {
    let (_d, store) = open().await;
    apply_worker(&store, "requeue-me", "10.0.0.1").await;
    apply_worker(&store, "quiet", "10.0.0.2").await;
    let ctx = ctx();
    let (stop, h) = spawn(&store, ctx.clone());
    eventually("requeued at least 4 times", async || {
        ctx.calls_for("requeue-me").len() >= 4
    })
    .await;
    let calls = ctx.calls_for("requeue-me");
    for w in calls.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(45),
            "requeue honoured its delay: {:?}",
            w[1] - w[0]
        );
    }
    assert_eq!(ctx.calls_for("quiet").len(), 1);
    stop.send(()).unwrap();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_back_off_exponentially_and_never_hot_loop() {
    let (_d, store) = open().await;
    apply_worker(&store, "fail-agent", "10.0.0.1").await;
    let ctx = ctx();
    let (stop, h) = spawn(&store, ctx.clone());
    eventually("six failed attempts", async || {
        ctx.calls_for("fail-agent").len() >= 6
    })
    .await;
    stop.send(()).unwrap();
    h.await.unwrap();
    let calls = ctx.calls_for("fail-agent");
    let backoffs = ctx.backoffs.lock().unwrap().clone();
    assert_eq!(
        &backoffs[..5],
        &[20, 40, 80, 160, 160].map(Duration::from_millis)
    );
    // Each retry waited at least the backoff the error policy asked for.
    for (i, w) in calls.windows(2).enumerate() {
        assert!(
            w[1] - w[0] >= backoffs[i],
            "attempt {} came after {:?}, backoff was {:?}",
            i + 2,
            w[1] - w[0],
            backoffs[i]
        );
    }
    let span = *calls.last().unwrap() - calls[0];
    assert!(
        span >= Duration::from_millis(20 + 40 + 80 + 160 + 160),
        "{span:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_runs_cleanup_before_the_object_goes() {
    let (_d, store) = open().await;
    apply_worker(&store, "w1", "10.0.0.1").await;
    let ctx = ctx();
    let api: Api<Worker> = Api::new(store.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let c = Controller::<Worker>::new(store.clone()).poll_interval(Duration::from_millis(50));
    let api2 = api.clone();
    let ctx2 = ctx.clone();
    let h = tokio::spawn(async move {
        c.run(
            move |w: Arc<Worker>, ctx: Arc<Ctx>| {
                let api = api2.clone();
                async move {
                    finalizer(
                        &api,
                        "decnet.io/test-cleanup",
                        w,
                        async |event| match event {
                            FinalizerEvent::Apply(w) => {
                                ctx.calls
                                    .lock()
                                    .unwrap()
                                    .push((w.metadata.name.clone().unwrap(), Instant::now()));
                                Ok::<_, TestError>(Action::await_change())
                            }
                            FinalizerEvent::Cleanup(w) => {
                                ctx.cleanups
                                    .lock()
                                    .unwrap()
                                    .push(w.metadata.name.clone().unwrap());
                                Ok(Action::await_change())
                            }
                        },
                    )
                    .await
                }
            },
            |_w, _e, _ctx| Action::requeue(Duration::from_millis(50)),
            ctx2,
            async move {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    });
    eventually("finalizer added and apply ran", async || {
        api.get("w1")
            .await
            .unwrap()
            .metadata
            .finalizers
            .is_some_and(|f| f == ["decnet.io/test-cleanup"])
            && !ctx.calls_for("w1").is_empty()
    })
    .await;
    assert!(ctx.cleanups.lock().unwrap().is_empty());
    api.delete("w1").await.unwrap();
    eventually("object gone after cleanup", async || {
        api.get_opt("w1").await.unwrap().is_none()
    })
    .await;
    assert_eq!(*ctx.cleanups.lock().unwrap(), ["w1"]);
    tx.send(()).unwrap();
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_is_reconciled_when_owned_objects_change_even_from_another_process() {
    let (dir, store) = open().await;
    let topo = json!({"metadata": {"name": "maze"}, "spec": {"depth": 1, "branching": 1, "deckiesPerLan": 1, "services": ["ssh"]}});
    let topo = store.create(Kind::Topology, &topo).await.unwrap();
    let calls = Arc::new(Mutex::new(0u32));
    let (tx, rx) = oneshot::channel::<()>();
    let c = Controller::<Topology>::new(store.clone())
        .owns(Kind::DeckyShard)
        .poll_interval(Duration::from_millis(50));
    let counter = calls.clone();
    let h = tokio::spawn(async move {
        c.run(
            move |_t: Arc<Topology>, n: Arc<Mutex<u32>>| async move {
                *n.lock().unwrap() += 1;
                Ok::<_, TestError>(Action::await_change())
            },
            |_t, _e, _n| Action::await_change(),
            counter,
            async move {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    });
    eventually("initial reconcile", async || *calls.lock().unwrap() == 1).await;
    // A second handle on the same file stands in for `decnet apply` in another process.
    let other = Store::open(&dir.path().join("decnet.db")).await.unwrap();
    let shard = json!({"metadata": {"name": "maze-0", "ownerReferences": [{"apiVersion": "decnet.io/v1alpha1", "kind": "Topology",
        "name": "maze", "uid": topo["metadata"]["uid"]}]}, "spec": {"worker": "w1", "deckies": []}});
    other.create(Kind::DeckyShard, &shard).await.unwrap();
    eventually("owner reconciled for the new shard", async || {
        *calls.lock().unwrap() >= 2
    })
    .await;
    let before = *calls.lock().unwrap();
    other.delete(Kind::DeckyShard, "maze-0").await.unwrap();
    eventually("owner reconciled for the deleted shard", async || {
        *calls.lock().unwrap() > before
    })
    .await;
    tx.send(()).unwrap();
    h.await.unwrap();
}
