//! Runs the SWARM reconcilers (Swarm, Worker, DeckyShard) together on the
//! embedded backend until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::context::Context;
use super::{Controller, shard, swarm, worker};
use crate::api::{DeckyShard, Kind, Swarm, Worker};
use crate::store::StoreError;

/// Options of the controller set.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Reconciles of one kind running at once (agents are slow, the store is not).
    pub concurrency: usize,
    /// How often writes from other processes (the CLI) are looked for.
    pub poll: Duration,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            concurrency: 16,
            poll: Duration::from_millis(500),
        }
    }
}

/// Runs the three controllers until `shutdown` resolves; in-flight reconciles finish first.
pub async fn run(
    ctx: Arc<Context>,
    opts: ManagerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StoreError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let store = ctx.store.clone();
    let workers = Controller::<Worker>::new(store.clone())
        .poll_interval(opts.poll)
        .concurrency(opts.concurrency)
        .run(
            worker::reconcile,
            worker::error_policy,
            ctx.clone(),
            stopped(stop_rx.clone()),
        );
    let shards = Controller::<DeckyShard>::new(store.clone())
        .poll_interval(opts.poll)
        .concurrency(opts.concurrency)
        .run(
            shard::reconcile,
            shard::error_policy,
            ctx.clone(),
            stopped(stop_rx.clone()),
        );
    let swarms = Controller::<Swarm>::new(store)
        .poll_interval(opts.poll)
        .concurrency(4)
        .owns(Kind::DeckyShard)
        .run(
            swarm::reconcile,
            swarm::error_policy,
            ctx.clone(),
            stopped(stop_rx),
        );
    let all = async { tokio::try_join!(workers, shards, swarms).map(|_| ()) };
    tokio::pin!(all);
    tokio::select! {
        r = &mut all => r,
        _ = shutdown => {
            let _ = stop_tx.send(true);
            all.await
        }
    }
}
