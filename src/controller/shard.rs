//! DeckyShard reconciler: converge one worker's agent to the shard.
//!
//! Observe (`/status`), diff against the spec, `POST /deploy` only when they
//! differ (or the spec moved since the last deploy), and report per-decky
//! readiness. Deleting a shard (finalizer) tears it down on its agent; while
//! the agent is unreachable the teardown is retried with backoff, so a worker
//! that comes back after a reschedule loses its stale deckies.

use std::sync::Arc;
use std::time::Duration;

use super::context::{Context, ReconcileError};
use super::shard_diff::{drift, readiness};
use super::{Action, FinalizerEvent, finalizer};
use crate::agent::{DeployRequest, TeardownRequest};
use crate::api::{
    DeckyShard, DeckyShardPhase, DeckyShardStatus, Worker, WorkerPhase, set_condition,
};
use crate::store::Api;

pub const FINALIZER: &str = "decnet.io/teardown";

/// Re-check soon while deckies are starting.
const SHORT: Duration = Duration::from_secs(2);
/// Re-check while the worker is not usable (its own probe period is longer).
const WAIT_FOR_WORKER: Duration = Duration::from_secs(5);

pub async fn reconcile(
    shard: Arc<DeckyShard>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let api: Api<DeckyShard> = Api::new(ctx.store.clone());
    let name = shard.metadata.name.clone().unwrap_or_default();
    let action = finalizer(&api, FINALIZER, shard, |event| async {
        match event {
            FinalizerEvent::Apply(s) => apply(&s, &ctx).await,
            FinalizerEvent::Cleanup(s) => cleanup(&s, &ctx).await,
        }
    })
    .await
    .map_err(|e| ReconcileError::Other(e.to_string()))?;
    ctx.backoff.reset(&format!("ds/{name}"));
    Ok(action)
}

pub fn error_policy(shard: Arc<DeckyShard>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let name = shard.metadata.name.as_deref().unwrap_or_default();
    let wait = ctx.retry_after(&format!("ds/{name}"));
    tracing::warn!(shard = name, error = %err, ?wait, "shard reconcile failed");
    Action::requeue(wait)
}

async fn apply(shard: &DeckyShard, ctx: &Context) -> Result<Action, ReconcileError> {
    let api: Api<DeckyShard> = Api::new(ctx.store.clone());
    let name = shard.metadata.name.clone().unwrap_or_default();
    let generation = shard.metadata.generation;
    let now = jiff::Timestamp::now();
    let mut status = shard.status.clone().unwrap_or_default();

    let worker = Api::<Worker>::new(ctx.store.clone())
        .get_opt(&shard.spec.worker)
        .await?;
    let usable = worker.as_ref().is_some_and(|w| {
        w.metadata.deletion_timestamp.is_none()
            && w.status.as_ref().and_then(|s| s.phase) == Some(WorkerPhase::Active)
    });
    let Some(worker) = worker.filter(|_| usable) else {
        let why = format!("worker {} is not Active", shard.spec.worker);
        status.phase.get_or_insert(DeckyShardPhase::Pending);
        set_condition(
            &mut status.conditions,
            "WorkerReady",
            false,
            "WorkerNotActive",
            &why,
            generation,
            now,
        );
        write_status(&api, shard, status).await?;
        return Ok(Action::requeue(WAIT_FOR_WORKER));
    };
    set_condition(
        &mut status.conditions,
        "WorkerReady",
        true,
        "WorkerActive",
        "",
        generation,
        now,
    );

    let mut client = ctx.agent(&worker)?;
    client.timeout = ctx.settings.deploy_timeout;
    let observed = client.status().await?;
    let mine = observed.shards.iter().find(|s| s.name == name);
    let reasons = drift(&shard.spec, mine);
    let spec_moved = status.observed_generation != generation;
    let observed = if !reasons.is_empty() || spec_moved {
        tracing::info!(shard = %name, worker = %shard.spec.worker, reasons = ?reasons, "deploying");
        let req = DeployRequest {
            name: name.clone(),
            spec: shard.spec.clone(),
        };
        match client.deploy(&req).await {
            Ok(report) => {
                status.last_deployed = Some(crate::api::Time(jiff::Timestamp::now()));
                set_condition(
                    &mut status.conditions,
                    "Deployed",
                    true,
                    "DeploySucceeded",
                    format!(
                        "{} containers created, {} removed",
                        report.containers_created.len(),
                        report.containers_removed.len()
                    ),
                    generation,
                    now,
                );
                if !reasons.is_empty() {
                    api.event(shard, "Normal", "Deployed", &reasons.join("; "))
                        .await?;
                }
            }
            Err(e) => {
                set_condition(
                    &mut status.conditions,
                    "Deployed",
                    false,
                    "DeployFailed",
                    e.to_string(),
                    generation,
                    now,
                );
                status.phase = Some(DeckyShardPhase::Failed);
                write_status(&api, shard, status).await?;
                api.event(shard, "Warning", "DeployFailed", &e.to_string())
                    .await?;
                return Err(e.into());
            }
        }
        client.status().await?
    } else {
        observed
    };
    let mine = observed.shards.iter().find(|s| s.name == name);
    status.deckies = readiness(&shard.spec, mine);
    let ready = status.deckies.iter().filter(|d| d.ready).count();
    status.ready_deckies = Some(ready as u32);
    let all = ready == shard.spec.deckies.len();
    status.phase = Some(if all {
        DeckyShardPhase::Ready
    } else {
        DeckyShardPhase::Degraded
    });
    let msg = format!("{ready}/{} deckies ready", shard.spec.deckies.len());
    set_condition(
        &mut status.conditions,
        "Ready",
        all,
        if all {
            "AllDeckiesReady"
        } else {
            "DeckiesNotReady"
        },
        msg,
        generation,
        now,
    );
    status.observed_generation = generation;
    write_status(&api, shard, status).await?;
    Ok(Action::requeue(if all {
        ctx.settings.shard_resync
    } else {
        SHORT
    }))
}

async fn write_status(
    api: &Api<DeckyShard>,
    shard: &DeckyShard,
    status: DeckyShardStatus,
) -> Result<(), ReconcileError> {
    if shard.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut next = shard.clone();
    next.status = Some(status);
    api.replace_status(&next).await?;
    Ok(())
}

async fn cleanup(shard: &DeckyShard, ctx: &Context) -> Result<Action, ReconcileError> {
    let name = shard.metadata.name.clone().unwrap_or_default();
    let Some(worker) = Api::<Worker>::new(ctx.store.clone())
        .get_opt(&shard.spec.worker)
        .await?
    else {
        // No worker, no credentials to reach it: nothing to tear down from here.
        return Ok(Action::await_change());
    };
    if worker
        .status
        .as_ref()
        .and_then(|s| s.cert_fingerprint.as_ref())
        .is_none()
    {
        return Ok(Action::await_change());
    }
    let mut client = ctx.agent(&worker)?;
    client.timeout = ctx.settings.deploy_timeout;
    let req = TeardownRequest {
        shard: Some(name.clone()),
        decky: None,
    };
    let report = client.teardown(&req).await?;
    tracing::info!(shard = %name, worker = %shard.spec.worker, containers = report.containers_removed.len(), "shard torn down");
    Ok(Action::await_change())
}
