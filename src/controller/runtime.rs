//! The embedded backend's controller driver: follows the store's change feed,
//! queues object keys, runs reconcilers (at most one at a time per object) and
//! requeues them per the returned `Action` or the error policy.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{Action, Scheduler};
use crate::api::{DecnetResource, Kind};
use crate::store::{Api, ChangeOp, Selector, Store, StoreError, semantics};

/// A reference to one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub kind: Kind,
    pub name: String,
}

type Mapper = Arc<dyn Fn(&Value) -> Vec<String> + Send + Sync>;

pub struct Controller<K> {
    store: Store,
    poll: Duration,
    concurrency: usize,
    own_status_changes: bool,
    related: Vec<(Kind, Mapper)>,
    _kind: PhantomData<fn() -> K>,
}

impl<K: DecnetResource> Controller<K> {
    pub fn new(store: Store) -> Self {
        Controller {
            store,
            poll: Duration::from_millis(500),
            concurrency: 8,
            own_status_changes: false,
            related: Vec::new(),
            _kind: PhantomData,
        }
    }

    /// How often to look for writes made by other processes (the CLI).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll = d;
        self
    }

    /// Reconciles of different objects running at once.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Also reconcile when only the status of a `K` changed. Off by default:
    /// reconcilers write their own status and must not wake themselves.
    pub fn on_status_changes(mut self) -> Self {
        self.own_status_changes = true;
        self
    }

    /// Reconcile the owner (a `K`) whenever an owned `child` object changes.
    pub fn owns(self, child: Kind) -> Self {
        let kind = K::KIND.as_str();
        self.watches(child, move |obj| {
            obj.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| r.get("kind").and_then(Value::as_str) == Some(kind))
                .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
    }

    /// Reconcile the `K`s that `mapper` names whenever a `kind` object changes.
    pub fn watches(
        mut self,
        kind: Kind,
        mapper: impl Fn(&Value) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.related.push((kind, Arc::new(mapper)));
        self
    }

    /// Runs until `shutdown` resolves, then waits for in-flight reconciles.
    pub async fn run<Ctx, E, R, Fut, P>(
        self,
        reconcile: R,
        error_policy: P,
        ctx: Arc<Ctx>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StoreError>
    where
        Ctx: Send + Sync + 'static,
        E: Display + Send + 'static,
        R: Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(Arc<K>, &E, Arc<Ctx>) -> Action + Send + Sync + 'static,
    {
        let reconcile = Arc::new(reconcile);
        let error_policy = Arc::new(error_policy);
        let api: Api<K> = Api::new(self.store.clone());
        let mut state = Loop {
            sched: Scheduler::default(),
            in_flight: HashSet::new(),
            dirty: HashSet::new(),
            related_cache: HashMap::new(),
            last_rv: 0,
        };
        let mut rx = self.store.subscribe();
        state.last_rv = self.store.current_rv().await?;
        self.relist(&mut state).await?;
        let mut tasks: JoinSet<(String, Option<Action>)> = JoinSet::new();
        let mut poll = tokio::time::interval(self.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        tracing::info!(kind = %K::KIND, "controller started");

        loop {
            let now = Instant::now();
            while state.in_flight.len() < self.concurrency {
                let Some(name) = state.sched.pop_due(now) else {
                    break;
                };
                if state.in_flight.contains(&name) {
                    // Never two reconciles of one object at once: run again after.
                    state.dirty.insert(name);
                    continue;
                }
                state.in_flight.insert(name.clone());
                let (api, reconcile, error_policy, ctx) = (
                    api.clone(),
                    reconcile.clone(),
                    error_policy.clone(),
                    ctx.clone(),
                );
                let span = tracing::info_span!("reconcile", kind = %K::KIND, name = %name);
                tasks.spawn(
                    async move {
                        let obj = match api.get_opt(&name).await {
                            Ok(Some(obj)) => Arc::new(obj),
                            Ok(None) => return (name, None),
                            Err(e) => {
                                tracing::warn!(error = %e, "reading object failed; retrying");
                                return (name, Some(Action::requeue(Duration::from_secs(1))));
                            }
                        };
                        let action = match reconcile(obj.clone(), ctx.clone()).await {
                            Ok(a) => a,
                            Err(e) => {
                                tracing::warn!(error = %e, "reconcile failed");
                                error_policy(obj, &e, ctx)
                            }
                        };
                        (name, Some(action))
                    }
                    .instrument(span),
                );
            }
            let deadline = state
                .sched
                .next_deadline()
                .filter(|_| state.in_flight.len() < self.concurrency)
                .unwrap_or_else(|| now + Duration::from_secs(3600));
            tokio::select! {
                _ = &mut shutdown => break,
                changed = rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.follow_feed(&mut state).await?;
                }
                _ = poll.tick() => self.follow_feed(&mut state).await?,
                _ = tokio::time::sleep_until(deadline.into()) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    let Ok((name, action)) = done else {
                        tracing::error!(kind = %K::KIND, "reconcile task panicked");
                        continue;
                    };
                    state.in_flight.remove(&name);
                    if state.dirty.remove(&name) {
                        state.sched.schedule(&name, Instant::now());
                    } else if let Some(d) = action.and_then(|a| a.requeue_after()) {
                        state.sched.schedule(&name, Instant::now() + d);
                    }
                }
            }
        }
        tracing::info!(kind = %K::KIND, in_flight = tasks.len(), "controller stopping");
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    async fn relist(&self, state: &mut Loop) -> Result<(), StoreError> {
        let now = Instant::now();
        for obj in self.store.list(K::KIND, &Selector::default()).await? {
            if let Some(name) = semantics::name_of(&obj) {
                state.sched.schedule(name, now);
            }
        }
        for (kind, mapper) in &self.related {
            for obj in self.store.list(*kind, &Selector::default()).await? {
                let targets = mapper(&obj);
                for t in &targets {
                    state.sched.schedule(t, now);
                }
                if let Some(name) = semantics::name_of(&obj) {
                    state.related_cache.insert(
                        ObjectRef {
                            kind: *kind,
                            name: name.to_string(),
                        },
                        targets,
                    );
                }
            }
        }
        Ok(())
    }

    async fn follow_feed(&self, state: &mut Loop) -> Result<(), StoreError> {
        loop {
            let changes = match self.store.changes_since(state.last_rv, 1000).await {
                Ok(c) => c,
                Err(StoreError::Expired(_)) => {
                    tracing::warn!(kind = %K::KIND, "change feed compacted past our position; relisting");
                    state.last_rv = self.store.current_rv().await?;
                    return self.relist(state).await;
                }
                Err(e) => return Err(e),
            };
            let Some(last) = changes.last() else {
                return Ok(());
            };
            state.last_rv = last.rv;
            let now = Instant::now();
            let full = changes.len() == 1000;
            for c in changes {
                if c.kind == K::KIND && (c.op != ChangeOp::Status || self.own_status_changes) {
                    state.sched.schedule(&c.name, now);
                }
                for (kind, mapper) in &self.related {
                    if *kind != c.kind {
                        continue;
                    }
                    let key = ObjectRef {
                        kind: c.kind,
                        name: c.name.clone(),
                    };
                    // Deleted objects can't be read: use what they mapped to last.
                    let mut targets = state.related_cache.remove(&key).unwrap_or_default();
                    if c.op != ChangeOp::Deleted
                        && let Some(obj) = self.store.get(c.kind, &c.name).await?
                    {
                        let now_targets = mapper(&obj);
                        targets.extend(now_targets.iter().cloned());
                        state.related_cache.insert(key, now_targets);
                    }
                    for t in targets {
                        state.sched.schedule(&t, now);
                    }
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}

struct Loop {
    sched: Scheduler,
    in_flight: HashSet<String>,
    dirty: HashSet<String>,
    related_cache: HashMap<ObjectRef, Vec<String>>,
    last_rv: i64,
}
