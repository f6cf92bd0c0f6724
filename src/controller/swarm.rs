//! Swarm reconciler: turns a fleet request (N deckies with services) into one
//! DeckyShard per worker, placed by [`placement`](super::placement), and
//! reports fleet-wide status.
//!
//! Shards are named `<swarm>-<worker>`, labelled `decnet.io/swarm`, and owned
//! by the Swarm (deleting the Swarm cascades). A shard that loses all its
//! deckies is deleted; its finalizer tears it down on the agent, retrying
//! until a worker that was away comes back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::context::{Context, ReconcileError};
use super::placement::{self, Candidate};
use super::{Action, shard};
use crate::api::{
    ConditionExt, DeckyShard, DeckyShardPhase, DeckyShardSpec, DeckySpec, FleetRequest, Swarm,
    SwarmPhase, SwarmStatus, Worker, WorkerPhase, set_condition,
};
use crate::store::{Api, Selector, StoreError};

pub const SWARM_LABEL: &str = "decnet.io/swarm";
pub const WORKER_LABEL: &str = "decnet.io/worker";

pub async fn reconcile(swarm: Arc<Swarm>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let name = swarm.metadata.name.clone().unwrap_or_default();
    if swarm.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let workers = Api::<Worker>::new(ctx.store.clone())
        .list(&Selector::default())
        .await?;
    let shards = Api::<DeckyShard>::new(ctx.store.clone())
        .list(&Selector::default())
        .await?;
    let now = jiff::Timestamp::now();
    let generation = swarm.metadata.generation;
    let mut status = swarm.status.clone().unwrap_or_default();
    let active = workers
        .iter()
        .filter(|w| w.status.as_ref().and_then(|s| s.phase) == Some(WorkerPhase::Active))
        .count() as u32;
    status.active_workers = Some(active);
    status.ca_fingerprint = Some(ctx.master.ca.fingerprint().to_string());

    let converged = match &swarm.spec.fleet {
        None => {
            status.scheduled_deckies = None;
            status.phase = Some(if active > 0 {
                SwarmPhase::Ready
            } else {
                SwarmPhase::Pending
            });
            set_condition(
                &mut status.conditions,
                "Scheduled",
                true,
                "NoFleet",
                "no fleet requested",
                generation,
                now,
            );
            true
        }
        Some(fleet) => schedule(&swarm, fleet, &workers, &shards, &ctx, &mut status, now).await?,
    };
    status.observed_generation = generation;
    if swarm.status.as_ref() != Some(&status) {
        let mut next = (*swarm).clone();
        next.status = Some(status);
        Api::<Swarm>::new(ctx.store.clone())
            .replace_status(&next)
            .await?;
    }
    ctx.backoff.reset(&format!("swarm/{name}"));
    let probe = Duration::from_secs(u64::from(swarm.spec.health.probe_interval_seconds));
    Ok(Action::requeue(if converged {
        probe.min(Duration::from_secs(5))
    } else {
        Duration::from_secs(1)
    }))
}

pub fn error_policy(swarm: Arc<Swarm>, err: &ReconcileError, ctx: Arc<Context>) -> Action {
    let name = swarm.metadata.name.as_deref().unwrap_or_default();
    let wait = ctx.retry_after(&format!("swarm/{name}"));
    tracing::warn!(swarm = name, error = %err, ?wait, "swarm reconcile failed");
    Action::requeue(wait)
}

/// Places the fleet and writes the shards. Returns whether everything is placed and Ready.
async fn schedule(
    swarm: &Swarm,
    fleet: &FleetRequest,
    workers: &[Worker],
    shards: &[DeckyShard],
    ctx: &Context,
    status: &mut SwarmStatus,
    now: jiff::Timestamp,
) -> Result<bool, ReconcileError> {
    let name = swarm.metadata.name.clone().unwrap_or_default();
    let generation = swarm.metadata.generation;
    let api: Api<DeckyShard> = Api::new(ctx.store.clone());
    let mine = |s: &&DeckyShard| {
        s.metadata.labels.as_ref().and_then(|l| l.get(SWARM_LABEL)) == Some(&name)
    };
    let (own, others): (Vec<&DeckyShard>, Vec<&DeckyShard>) = shards.iter().partition(mine);

    let prefix = format!("{}-", fleet.name_prefix);
    let mut current: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for s in own
        .iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
    {
        let indices = s
            .spec
            .deckies
            .iter()
            .filter_map(|d| d.name.strip_prefix(&prefix)?.parse::<u32>().ok());
        current
            .entry(s.spec.worker.clone())
            .or_default()
            .extend(indices);
    }
    let candidates: Vec<Candidate> = workers
        .iter()
        .filter(|w| w.metadata.deletion_timestamp.is_none())
        .map(|w| {
            let wname = w.metadata.name.clone().unwrap_or_default();
            let st = w.status.clone().unwrap_or_default();
            let unreachable_for = (st.phase == Some(WorkerPhase::Unreachable)).then(|| {
                st.conditions
                    .condition("Reachable")
                    .map(|c| now.duration_since(c.last_transition_time.0))
                    .and_then(|d| Duration::try_from(d).ok())
                    .unwrap_or_default()
            });
            let shard_name = shard_name(&name, &wname);
            Candidate {
                labels: w.metadata.labels.clone().unwrap_or_default(),
                phase: st.phase,
                unreachable_for,
                capacity: w.spec.capacity,
                weight: w.spec.weight,
                unschedulable: w.spec.unschedulable,
                other_load: others
                    .iter()
                    .filter(|s| s.spec.worker == wname)
                    .map(|s| s.spec.deckies.len() as u32)
                    .sum(),
                blocked: own.iter().any(|s| {
                    s.metadata.deletion_timestamp.is_some()
                        && s.metadata.name.as_deref() == Some(shard_name.as_str())
                }),
                name: wname,
            }
        })
        .collect();
    let req = placement::Request {
        deckies: fleet.deckies,
        node_selector: &fleet.node_selector,
        strategy: swarm.spec.scheduling.strategy,
        grace: Duration::from_secs(u64::from(swarm.spec.health.reschedule_grace_seconds)),
    };
    let plan = placement::place(&req, &candidates, &current);
    if plan.moved > 0 {
        tracing::info!(swarm = %name, moved = plan.moved, "rescheduling deckies");
        Api::<Swarm>::new(ctx.store.clone())
            .event(
                swarm,
                "Normal",
                "Rescheduled",
                &format!("{} deckies moved to other workers", plan.moved),
            )
            .await?;
    }

    // Write the desired shards, then delete the ones that are no longer needed.
    for (worker, indices) in &plan.assignments {
        let spec = DeckyShardSpec {
            worker: worker.clone(),
            networks: Vec::new(),
            deckies: indices.iter().map(|i| decky(fleet, *i)).collect(),
        };
        let sname = shard_name(&name, worker);
        match own
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(sname.as_str()))
        {
            Some(existing) if existing.spec == spec => {}
            Some(existing) => {
                let mut next = (*existing).clone();
                next.spec = spec;
                api.replace(&next).await?;
            }
            None => {
                let obj = DeckyShard {
                    metadata: shard_meta(swarm, &sname, worker),
                    spec,
                    status: None,
                };
                match api.create(&obj).await {
                    Ok(_) | Err(StoreError::Terminating { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    for s in own
        .iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
    {
        if !plan.assignments.contains_key(&s.spec.worker) {
            let sname = s.metadata.name.clone().unwrap_or_default();
            tracing::info!(swarm = %name, shard = %sname, "removing shard with no deckies left");
            api.delete(&sname).await?;
        }
    }

    let placed = fleet.deckies - plan.unplaced.len() as u32;
    status.scheduled_deckies = Some(placed);
    let ready_shards = own.iter().all(|s| {
        s.metadata.deletion_timestamp.is_some()
            || s.status.as_ref().and_then(|st| st.phase) == Some(DeckyShardPhase::Ready)
    });
    let all_created = plan.assignments.keys().all(|w| {
        own.iter()
            .any(|s| s.metadata.name.as_deref() == Some(shard_name(&name, w).as_str()))
    });
    if plan.unplaced.is_empty() {
        set_condition(
            &mut status.conditions,
            "Scheduled",
            true,
            "AllPlaced",
            format!("{placed} deckies placed"),
            generation,
            now,
        );
    } else {
        let msg = format!(
            "{} of {} deckies fit on no eligible worker (Active, schedulable, matching nodeSelector, with capacity)",
            plan.unplaced.len(),
            fleet.deckies
        );
        set_condition(
            &mut status.conditions,
            "Scheduled",
            false,
            "InsufficientCapacity",
            msg,
            generation,
            now,
        );
    }
    let converged = plan.unplaced.is_empty() && ready_shards && all_created && plan.moved == 0;
    status.phase = Some(if converged {
        SwarmPhase::Ready
    } else if placed == 0 && fleet.deckies > 0 {
        SwarmPhase::Pending
    } else {
        SwarmPhase::Degraded
    });
    Ok(converged)
}

pub fn shard_name(swarm: &str, worker: &str) -> String {
    format!("{swarm}-{worker}")
}

fn decky(fleet: &FleetRequest, i: u32) -> DeckySpec {
    DeckySpec {
        name: format!("{}-{i}", fleet.name_prefix),
        services: fleet.services.clone(),
        ips: BTreeMap::new(),
        forwards_l3: false,
        personality: None,
    }
}

fn shard_meta(swarm: &Swarm, name: &str, worker: &str) -> ObjectMeta {
    let swarm_name = swarm.metadata.name.clone().unwrap_or_default();
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(BTreeMap::from([
            (SWARM_LABEL.to_string(), swarm_name.clone()),
            (WORKER_LABEL.to_string(), worker.to_string()),
        ])),
        owner_references: Some(vec![OwnerReference {
            api_version: crate::api::API_VERSION.to_string(),
            kind: "Swarm".to_string(),
            name: swarm_name,
            uid: swarm.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        // Present from creation, so not even the first deploy can leak containers.
        finalizers: Some(vec![shard::FINALIZER.to_string()]),
        ..Default::default()
    }
}
