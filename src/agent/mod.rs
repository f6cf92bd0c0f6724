//! The worker agent: an HTTPS + mTLS control API that converges the worker's Docker to the
//! DeckyShards the master sends.
//!
//! - [`plan`]: pure diff of a desired shard vs. what Docker holds (unit-tested without Docker).
//! - [`observe`]: observed state, from Docker labels only (restarts lose nothing).
//! - [`executor`]: applies a plan through bollard, with bounded parallelism.
//! - [`hostnet`]: the worker's own NIC/subnet/gateway, detected locally.
//! - [`server`]: the axum router and the mTLS listener.
//! - [`client`]: [`client::AgentClient`], the master's typed client.
//! - [`types`]: request/response bodies shared by server and client.

pub mod client;
pub mod error;
pub mod executor;
pub mod hostnet;
pub mod observe;
pub mod plan;
pub mod server;
pub mod types;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

pub use error::AgentError;
pub use executor::{DeployReport, Executor, TeardownReport};
pub use types::{
    AgentStatus, ContainerObserved, DeckyObserved, DeployRequest, ShardStatus, TeardownRequest,
};

/// Agent state shared by handlers: the executor and one lock per shard, so concurrent deploys
/// of one shard run one after the other while different shards proceed in parallel. Nothing
/// else is kept in memory: observed state is always read back from Docker labels.
pub struct Agent {
    pub executor: Executor,
    locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Agent {
    pub fn new(executor: Executor) -> Self {
        Agent {
            executor,
            locks: Default::default(),
        }
    }

    fn lock_for(&self, shard: &str) -> Arc<Mutex<()>> {
        self.locks
            .lock()
            .expect("lock map poisoned")
            .entry(shard.to_owned())
            .or_default()
            .clone()
    }

    /// Converges shard `req.name` to `req.spec` (serialized per shard).
    pub async fn deploy(&self, req: &DeployRequest) -> Result<DeployReport, AgentError> {
        let lock = self.lock_for(&req.name);
        let _guard = lock.lock().await;
        self.executor.deploy(&req.name, &req.spec).await
    }

    /// Tears down one decky, one shard, or every shard (each under its shard lock).
    pub async fn teardown(&self, req: &TeardownRequest) -> Result<TeardownReport, AgentError> {
        if req.decky.is_some() && req.shard.is_none() {
            return Err(AgentError::InvalidSpec {
                shard: String::new(),
                reason: "teardown of a decky needs its shard".into(),
            });
        }
        let shards: Vec<String> = match &req.shard {
            Some(s) => vec![s.clone()],
            None => observe::observe(self.executor.docker(), self.executor.owner(), None)
                .await?
                .into_keys()
                .collect(),
        };
        let mut report = TeardownReport::default();
        for shard in shards {
            let lock = self.lock_for(&shard);
            let _guard = lock.lock().await;
            let r = self
                .executor
                .teardown(Some(&shard), req.decky.as_deref())
                .await?;
            report.containers_removed.extend(r.containers_removed);
            report.networks_removed.extend(r.networks_removed);
        }
        Ok(report)
    }

    /// What Docker holds for every shard, per shard and per decky.
    pub async fn status(&self) -> Result<AgentStatus, AgentError> {
        let observed =
            observe::observe(self.executor.docker(), self.executor.owner(), None).await?;
        Ok(AgentStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            host_network: hostnet::detect().ok().flatten(),
            shards: observed
                .into_iter()
                .map(|(name, obs)| ShardStatus::from_observed(name, obs))
                .collect(),
        })
    }
}
