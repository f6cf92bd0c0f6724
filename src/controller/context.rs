//! What every reconciler shares: the store, the master's TLS identity, agent
//! clients, retry backoff and timing settings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::Backoff;
use crate::agent::client::{AgentClient, ClientError};
use crate::api::{HealthPolicy, Swarm, Worker};
use crate::master::{MasterError, MasterTls};
use crate::store::{Api, Store, StoreError};

/// Timing knobs; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deadline of one agent health probe.
    pub probe_timeout: Duration,
    /// Deadline of one `/deploy` (large shards pull nothing but start many containers).
    pub deploy_timeout: Duration,
    /// How often a converged shard is compared with its agent again.
    pub shard_resync: Duration,
    /// Used when no Swarm exists.
    pub default_health: HealthPolicy,
    /// Error backoff bounds.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            probe_timeout: Duration::from_secs(5),
            deploy_timeout: Duration::from_secs(300),
            shard_resync: Duration::from_secs(30),
            default_health: HealthPolicy::default(),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

pub struct Context {
    pub store: Store,
    pub master: MasterTls,
    /// `$DECNET_HOME`: bundles of declaratively created workers go under `workers/`.
    pub home: PathBuf,
    pub settings: Settings,
    pub backoff: Backoff,
    clients: Mutex<HashMap<String, (String, u16, AgentClient)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Agent(#[from] ClientError),
    #[error(transparent)]
    Master(#[from] MasterError),
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    #[error("{0}")]
    Other(String),
}

impl Context {
    pub fn new(store: Store, master: MasterTls, home: PathBuf, settings: Settings) -> Context {
        let backoff = Backoff::new(settings.backoff_base, settings.backoff_max);
        Context {
            store,
            master,
            home,
            settings,
            backoff,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A client for `worker`'s agent (cached; rebuilt when its address changes).
    pub fn agent(&self, worker: &Worker) -> Result<AgentClient, ReconcileError> {
        let name = worker.metadata.name.clone().unwrap_or_default();
        let (host, port) = (worker.spec.address.clone(), worker.spec.agent_port);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((h, p, c)) = clients.get(&name)
            && *h == host
            && *p == port
        {
            return Ok(c.clone());
        }
        let tls = self.master.agent_client_config(&name)?;
        let client = AgentClient::new(&host, port, tls)?;
        clients.insert(name, (host, port, client.clone()));
        Ok(client)
    }

    /// The health policy of the fleet (first Swarm by name), or the default.
    pub async fn health(&self) -> Result<HealthPolicy, StoreError> {
        Ok(self
            .first_swarm()
            .await?
            .map(|s| s.spec.health)
            .unwrap_or_else(|| self.settings.default_health.clone()))
    }

    /// Leaf validity of the fleet's CA policy (first Swarm by name), or its default.
    pub async fn leaf_validity_days(&self) -> Result<u32, StoreError> {
        Ok(self
            .first_swarm()
            .await?
            .map(|s| s.spec.ca)
            .unwrap_or_default()
            .leaf_validity_days)
    }

    async fn first_swarm(&self) -> Result<Option<Swarm>, StoreError> {
        Api::<Swarm>::new(self.store.clone()).first().await
    }

    /// Error policy shared by the reconcilers: per-object exponential backoff.
    pub fn retry_after(&self, key: &str) -> Duration {
        self.backoff.next(key)
    }
}
