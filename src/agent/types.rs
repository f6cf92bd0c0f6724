//! Bodies of the agent API (JSON, camelCase).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agent::hostnet::HostNetwork;
use crate::agent::plan::{Observed, ObservedContainer, ObservedNetwork, labels};
use crate::api::DeckyShardSpec;

/// `POST /deploy`: `{"name": "<shard name>", "spec": <DeckyShardSpec>}`. The name scopes every
/// Docker object of the shard (labels, `<name>-<decky>` containers, `<name>-<lan>` networks);
/// it is normally the DeckyShard's `metadata.name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployRequest {
    pub name: String,
    pub spec: DeckyShardSpec,
}

/// `POST /teardown`: `{}` removes every shard; `{"shard": "s"}` one shard (containers and
/// networks); `{"shard": "s", "decky": "d"}` only that decky's containers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TeardownRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decky: Option<String>,
}

/// `GET /status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub version: String,
    /// The worker's default-route networking, detected on the worker.
    pub host_network: Option<HostNetwork>,
    pub shards: Vec<ShardStatus>,
}

/// One shard as Docker holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardStatus {
    pub name: String,
    pub networks: Vec<NetworkObserved>,
    pub deckies: Vec<DeckyObserved>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkObserved {
    pub name: String,
    pub lan: String,
    pub id: String,
    pub driver: String,
    pub subnet: Option<String>,
}

/// One decky: ready when its base and one container per service are running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeckyObserved {
    pub name: String,
    pub ready: bool,
    pub spec_hash: String,
    /// Address per Docker network name (from the decky's container).
    pub ips: BTreeMap<String, String>,
    /// The services the decky's container runs.
    #[serde(default)]
    pub services: Vec<String>,
    pub containers: Vec<ContainerObserved>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerObserved {
    pub name: String,
    pub id: String,
    pub role: String,
    pub state: String,
}

impl ShardStatus {
    pub fn from_observed(name: String, obs: Observed) -> Self {
        let mut deckies: BTreeMap<String, Vec<ObservedContainer>> = BTreeMap::new();
        for c in obs.containers {
            deckies.entry(c.decky.clone()).or_default().push(c);
        }
        ShardStatus {
            name,
            networks: obs
                .networks
                .into_iter()
                .map(|n: ObservedNetwork| NetworkObserved {
                    name: n.name,
                    lan: n.lan,
                    id: n.id,
                    driver: n.driver,
                    subnet: n.subnet,
                })
                .collect(),
            deckies: deckies
                .into_iter()
                .map(|(name, containers)| {
                    let main = containers.iter().find(|c| c.role == labels::ROLE_DECKY);
                    // Leftovers of an older layout make the decky not ready until replaced.
                    let ready = main.is_some_and(|m| m.running) && containers.len() == 1;
                    DeckyObserved {
                        name,
                        ready,
                        spec_hash: main.map(|m| m.spec_hash.clone()).unwrap_or_default(),
                        ips: main.map(|m| m.ips.clone()).unwrap_or_default(),
                        services: main.map(|m| m.services.clone()).unwrap_or_default(),
                        containers: containers
                            .into_iter()
                            .map(|c| ContainerObserved {
                                name: c.name,
                                id: c.id,
                                role: c.role,
                                state: c.state,
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }
}
