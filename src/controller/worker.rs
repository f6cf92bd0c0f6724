//! Worker reconciler: credentials, health, decommission.
//!
//! - A Worker without credentials gets its agent certificate issued and its
//!   bundle written under `$DECNET_HOME/workers/<name>/` (Enrolled).
//! - Every probe interval the agent is asked for `/status` over mTLS:
//!   Active with `lastHeartbeat`, or Unreachable with the error in the
//!   `Reachable` condition. Shards the agent runs that no DeckyShard assigns
//!   to it any more (left over from a reschedule while it was away) are torn
//!   down.
//! - Deleting a Worker (finalizer) tears down its deckies when the agent is
//!   reachable, releases its DeckyShards, revokes its certificate, and only
//!   then lets the object go.

use std::sync::Arc;
use std::time::Duration;

use super::context::{Context, ReconcileError};
use super::{Action, FinalizerEvent, finalizer};
use crate::agent::{AgentStatus, TeardownRequest};
use crate::api::{DeckyShard, Kind, Worker, WorkerPhase, WorkerStatus, set_condition};
use crate::store::{Api, Selector};

pub const FINALIZER: &str = "decnet.io/decommission";
/// Annotation set by `decnet swarm decommission --keep-deckies`.
pub const KEEP_DECKIES: &str = "decnet.io/keep-deckies";

pub async fn reconcile(worker: Arc<Worker>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let api: Api<Worker> = Api::new(ctx.store.clone());
    let name = worker.metadata.name.clone().unwrap_or_default();
    let action = finalizer(&api, FINALIZER, worker, |event| async {
        match event {
            FinalizerEvent::Apply(w) => apply(&w, &ctx).await,
            FinalizerEvent::Cleanup(w) => cleanup(&w, &ctx).await,
        }
    })
    .await
    .map_err(|e| ReconcileError::Other(e.to_string()))?;
    ctx.backoff.reset(&name);
    Ok(action)
}

pub fn error_policy(worker: Arc<Worker>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let name = worker.metadata.name.as_deref().unwrap_or_default();
    let wait = ctx.retry_after(name);
    tracing::warn!(worker = name, error = %err, ?wait, "worker reconcile failed");
    Action::requeue(wait)
}

async fn apply(worker: &Worker, ctx: &Context) -> Result<Action, ReconcileError> {
    let api: Api<Worker> = Api::new(ctx.store.clone());
    let name = worker.metadata.name.clone().unwrap_or_default();
    let generation = worker.metadata.generation;
    let now = jiff::Timestamp::now();
    let health = ctx.health().await?;
    let interval = Duration::from_secs(u64::from(health.probe_interval_seconds));
    let mut status = worker.status.clone().unwrap_or_default();

    // Bootstrap enrollment in progress: the worker has not fetched its bundle yet.
    if status.phase == Some(WorkerPhase::Pending) {
        return Ok(Action::requeue(interval));
    }
    // `decnet swarm enroll` created it with a certificate and is writing its status: wait.
    let enrolled_by_cli = worker
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(crate::enroll::workers::FINGERPRINT_ANNOTATION));
    if status.cert_fingerprint.is_none() && enrolled_by_cli {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if status.cert_fingerprint.is_none() {
        let fingerprint = issue_credentials(worker, ctx).await?;
        status.cert_fingerprint = Some(fingerprint);
        status.phase = Some(WorkerPhase::Enrolled);
        set_condition(
            &mut status.conditions,
            "Enrolled",
            true,
            "CertificateIssued",
            "agent certificate issued; bundle written",
            generation,
            now,
        );
        let dir = ctx.home.join("workers").join(&name);
        api.event(
            worker,
            "Normal",
            "Enrolled",
            &format!("bundle written to {}", dir.display()),
        )
        .await?;
    }

    let prev = status.phase;
    match probe(worker, ctx).await {
        Ok(observed) => {
            status.phase = Some(WorkerPhase::Active);
            status.last_heartbeat = Some(crate::api::Time(now));
            status.agent_version = Some(observed.version.clone());
            status.deckies = Some(observed.shards.iter().map(|s| s.deckies.len() as u32).sum());
            set_condition(
                &mut status.conditions,
                "Reachable",
                true,
                "ProbeSucceeded",
                "agent answered over mTLS",
                generation,
                now,
            );
            collect_orphans(worker, ctx, &observed).await;
        }
        Err(e) => {
            status.phase = Some(WorkerPhase::Unreachable);
            set_condition(
                &mut status.conditions,
                "Reachable",
                false,
                "ProbeFailed",
                e.to_string(),
                generation,
                now,
            );
        }
    }
    if prev != status.phase {
        let phase = status.phase.map_or("", WorkerPhase::as_str);
        tracing::info!(worker = %name, from = ?prev, to = phase, "worker phase changed");
        let type_ = if status.phase == Some(WorkerPhase::Unreachable) {
            "Warning"
        } else {
            "Normal"
        };
        api.event(worker, type_, phase, &condition_message(&status))
            .await?;
    }
    status.observed_generation = generation;
    write_status(&api, worker, status).await?;
    Ok(Action::requeue(interval))
}

fn condition_message(status: &WorkerStatus) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Reachable")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

async fn write_status(
    api: &Api<Worker>,
    worker: &Worker,
    status: WorkerStatus,
) -> Result<(), ReconcileError> {
    if worker.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut next = worker.clone();
    next.status = Some(status);
    api.replace_status(&next).await?;
    Ok(())
}

/// Issues the agent certificate of a declaratively created Worker and writes its bundle
/// for the operator to copy to the worker. Returns the fingerprint.
async fn issue_credentials(worker: &Worker, ctx: &Context) -> Result<String, ReconcileError> {
    let name = worker.metadata.name.clone().unwrap_or_default();
    let days = ctx.leaf_validity_days().await?;
    let bundle = ctx.master.issue_worker(&name, &worker.spec, days).await?;
    let fingerprint = bundle.fingerprint().to_string();
    let dir = ctx.home.join("workers").join(&name);
    tokio::task::spawn_blocking(move || bundle.write(&dir))
        .await
        .map_err(|e| ReconcileError::Other(e.to_string()))??;
    Ok(fingerprint)
}

async fn probe(worker: &Worker, ctx: &Context) -> Result<AgentStatus, ReconcileError> {
    let mut client = ctx.agent(worker)?;
    client.timeout = ctx.settings.probe_timeout;
    Ok(client.status().await?)
}

/// Tears down shards the agent runs that no live DeckyShard assigns to it.
/// Best effort: the next probe tries again.
async fn collect_orphans(worker: &Worker, ctx: &Context, observed: &AgentStatus) {
    let name = worker.metadata.name.as_deref().unwrap_or_default();
    for shard in &observed.shards {
        let assigned = match ctx.store.get(Kind::DeckyShard, &shard.name).await {
            Ok(Some(v)) => v.pointer("/spec/worker").and_then(|w| w.as_str()) == Some(name),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(worker = name, error = %e, "cannot check shard ownership");
                return;
            }
        };
        if assigned {
            continue;
        }
        tracing::info!(worker = name, shard = %shard.name, "tearing down a shard no longer assigned here");
        let req = TeardownRequest {
            shard: Some(shard.name.clone()),
            decky: None,
        };
        match ctx.agent(worker) {
            Ok(client) => {
                if let Err(e) = client.teardown(&req).await {
                    tracing::warn!(worker = name, shard = %shard.name, error = %e, "stale shard teardown failed");
                }
            }
            Err(e) => tracing::warn!(worker = name, error = %e, "no agent client"),
        }
    }
}

async fn cleanup(worker: &Worker, ctx: &Context) -> Result<Action, ReconcileError> {
    let api: Api<Worker> = Api::new(ctx.store.clone());
    let name = worker.metadata.name.clone().unwrap_or_default();
    let mut status = worker.status.clone().unwrap_or_default();
    if status.phase != Some(WorkerPhase::Decommissioning) {
        status.phase = Some(WorkerPhase::Decommissioning);
        write_status(&api, worker, status.clone()).await?;
    }
    let keep = worker
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(KEEP_DECKIES))
        .is_some_and(|v| v == "true");
    if !keep && status.cert_fingerprint.is_some() {
        let mut client = ctx.agent(worker)?;
        client.timeout = ctx.settings.probe_timeout.max(Duration::from_secs(60));
        match client.teardown(&TeardownRequest::default()).await {
            Ok(r) => {
                tracing::info!(worker = %name, containers = r.containers_removed.len(), "deckies torn down")
            }
            Err(e) => {
                tracing::warn!(worker = %name, error = %e, "agent unreachable: its deckies stay until the host is cleaned");
                api.event(
                    worker,
                    "Warning",
                    "TeardownSkipped",
                    &format!("agent unreachable, deckies left running: {e}"),
                )
                .await?;
            }
        }
    }
    release_shards(&name, ctx).await?;
    // An unused bootstrap token of this worker must not hand out a bundle any more.
    crate::enroll::tokens::TokenTable::new(ctx.store.pool().clone())
        .delete_for_worker(&name)
        .await?;
    if let Some(fp) = &status.cert_fingerprint {
        ctx.master
            .revoke(fp, &format!("agent:{name}"), "decommissioned")
            .await?;
    }
    let dir = ctx.home.join("workers").join(&name);
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    ctx.store
        .record_event(
            Kind::Worker,
            &name,
            "Normal",
            "Decommissioned",
            "deckies torn down, certificate revoked",
        )
        .await?;
    tracing::info!(worker = %name, "worker decommissioned");
    Ok(Action::await_change())
}

/// The worker's shards go with it: their own teardown would need the agent,
/// which was handled (or is gone) — drop their finalizers and delete them.
async fn release_shards(worker: &str, ctx: &Context) -> Result<(), ReconcileError> {
    let api: Api<DeckyShard> = Api::new(ctx.store.clone());
    for shard in api.list(&Selector::default()).await? {
        if shard.spec.worker != worker {
            continue;
        }
        let shard_name = shard.metadata.name.clone().unwrap_or_default();
        let mut next = shard.clone();
        if let Some(f) = next.metadata.finalizers.as_mut() {
            f.retain(|x| x != super::shard::FINALIZER);
        }
        if next.metadata.finalizers != shard.metadata.finalizers {
            api.replace(&next).await?;
        }
        match api.delete(&shard_name).await {
            Ok(_) | Err(crate::store::StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
