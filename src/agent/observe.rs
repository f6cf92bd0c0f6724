//! Observed state, read from Docker labels only (an agent restart loses nothing).

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::models::{ContainerSummaryStateEnum, Network};
use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};

use crate::agent::error::{AgentError, DockerContext};
use crate::agent::plan::{Observed, ObservedContainer, ObservedNetwork, labels};

fn filters(owner: Option<&str>, shard: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut label = vec![format!("{}=true", labels::MANAGED)];
    if let Some(w) = owner {
        label.push(format!("{}={w}", labels::WORKER));
    }
    if let Some(s) = shard {
        label.push(format!("{}={s}", labels::SHARD));
    }
    HashMap::from([("label".to_owned(), label)])
}

/// Everything labelled `decnet.io/managed=true` (of worker `owner` and for `shard`, when
/// given), grouped by shard. The owner filter keeps agents that share a Docker daemon out of
/// each other's deckies.
pub async fn observe(
    docker: &Docker,
    owner: Option<&str>,
    shard: Option<&str>,
) -> Result<BTreeMap<String, Observed>, AgentError> {
    let f = filters(owner, shard);
    let containers = docker.list_containers(Some(
        ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&f)
            .build(),
    ));
    let networks = docker.list_networks(Some(
        ListNetworksOptionsBuilder::default().filters(&f).build(),
    ));
    let (containers, networks) = futures::join!(containers, networks);
    let containers = containers.ctx(|| "list containers".into())?;
    let networks = networks.ctx(|| "list networks".into())?;

    let mut out: BTreeMap<String, Observed> = BTreeMap::new();
    for n in networks {
        let labels = n.labels.clone().unwrap_or_default();
        let (Some(shard), Some(lan)) = (labels.get(labels::SHARD), labels.get(labels::LAN)) else {
            continue;
        };
        out.entry(shard.clone())
            .or_default()
            .networks
            .push(ObservedNetwork {
                id: n.id.clone().unwrap_or_default(),
                name: n.name.clone().unwrap_or_default(),
                lan: lan.clone(),
                spec_hash: labels.get(labels::SPEC_HASH).cloned().unwrap_or_default(),
                driver: n.driver.clone().unwrap_or_default(),
                subnet: network_subnet(&n),
            });
    }
    for c in containers {
        let labels = c.labels.clone().unwrap_or_default();
        let (Some(shard), Some(decky)) = (labels.get(labels::SHARD), labels.get(labels::DECKY))
        else {
            continue;
        };
        let ips = c
            .network_settings
            .as_ref()
            .and_then(|s| s.networks.as_ref())
            .map(|nets| {
                nets.iter()
                    .filter_map(|(name, ep)| {
                        let ip = ep.ip_address.clone().filter(|s| !s.is_empty())?;
                        Some((name.clone(), ip))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let state = c.state.unwrap_or(ContainerSummaryStateEnum::EMPTY);
        out.entry(shard.clone())
            .or_default()
            .containers
            .push(ObservedContainer {
                id: c.id.clone().unwrap_or_default(),
                name: c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                decky: decky.clone(),
                role: labels.get(labels::ROLE).cloned().unwrap_or_default(),
                services: labels
                    .get(labels::SERVICES)
                    .map(|s| {
                        s.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                spec_hash: labels.get(labels::SPEC_HASH).cloned().unwrap_or_default(),
                running: state == ContainerSummaryStateEnum::RUNNING,
                state: state.to_string(),
                ips,
            });
    }
    for o in out.values_mut() {
        o.networks.sort_by(|a, b| a.name.cmp(&b.name));
        o.containers.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(out)
}

/// First IPv4 subnet of a network's IPAM config.
pub fn network_subnet(n: &Network) -> Option<String> {
    n.ipam
        .as_ref()?
        .config
        .as_ref()?
        .iter()
        .filter_map(|c| c.subnet.clone())
        .find(|s| !s.contains(':'))
}
