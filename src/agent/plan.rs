//! Pure convergence planning: desired shard vs. observed Docker objects → the actions to take.
//!
//! Nothing here touches Docker; [`crate::agent::executor`] applies a [`Plan`].
//!
//! Rules:
//! - Every object of the shard carries `decnet.io/spec-hash`. An object whose hash equals the
//!   desired one and that is running is left alone (that is what makes a re-deploy a no-op).
//! - A network whose LAN is no longer desired, or whose hash changed, is removed (and recreated
//!   if still desired).
//! - A decky is one container: it holds the decky's addresses on every LAN and runs all of its
//!   services in one `decky serve` process (one runtime, one writer: that is what keeps an idle
//!   decky's memory small, see docs/decky-events.md).
//! - A decky's hash covers its spec, the specs of the LANs it joins, the decky image and the
//!   container layout, so any change to one of those recreates the decky.
//! - A decky container that is not running is recreated.
//! - Anything labelled for the shard and not desired (unknown decky, duplicate, a container of
//!   an older layout) is removed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::{DeckyShardSpec, DeckySpec, LanSpec, Service};

/// Label keys.
pub mod labels {
    pub const MANAGED: &str = "decnet.io/managed";
    pub const SHARD: &str = "decnet.io/shard";
    /// The worker (agent certificate CN) that owns the object.
    pub const WORKER: &str = "decnet.io/worker";
    pub const DECKY: &str = "decnet.io/decky";
    pub const ROLE: &str = "decnet.io/role";
    /// The services a decky container runs, comma separated.
    pub const SERVICES: &str = "decnet.io/services";
    pub const LAN: &str = "decnet.io/lan";
    pub const SPEC_HASH: &str = "decnet.io/spec-hash";
    pub const ROLE_DECKY: &str = "decky";
}

/// Bumped when the containers of a decky change shape, so deckies deployed by an older agent
/// are recreated (their hash no longer matches).
const LAYOUT: u32 = 2;

/// Name of the implicit LAN when a shard declares no networks.
pub const DEFAULT_LAN: &str = "default";

/// Docker network name of `lan` in `shard`.
pub fn network_name(shard: &str, lan: &str) -> String {
    format!("{shard}-{lan}")
}

/// Container name of `decky` in `shard`.
pub fn container_name(shard: &str, decky: &str) -> String {
    format!("{shard}-{decky}")
}

/// A LAN of the shard, as the agent will create it.
pub fn effective_lans(spec: &DeckyShardSpec) -> Vec<LanSpec> {
    if spec.networks.is_empty() {
        vec![LanSpec {
            name: DEFAULT_LAN.to_owned(),
            subnet: None,
            driver: Default::default(),
            parent: None,
            internal: false,
        }]
    } else {
        spec.networks.clone()
    }
}

/// The LANs `decky` joins, in order, with its static address on each (None: IPAM picks).
/// A decky with no `ips` joins the shard's first LAN.
pub fn decky_lans<'a>(
    decky: &'a DeckySpec,
    lans: &'a [LanSpec],
) -> Vec<(&'a str, Option<&'a str>)> {
    if decky.ips.is_empty() {
        return lans
            .first()
            .map(|l| (l.name.as_str(), None))
            .into_iter()
            .collect();
    }
    decky
        .ips
        .iter()
        .map(|(lan, ip)| (lan.as_str(), Some(ip.as_str()).filter(|s| !s.is_empty())))
        .collect()
}

fn hash_json(value: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(value).expect("spec types always serialize");
    let digest = Sha256::digest(&bytes);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Hash of a LAN spec (as given: an auto-picked subnet stays auto, so it is stable).
pub fn lan_hash(lan: &LanSpec) -> String {
    hash_json(lan)
}

/// Hash of a decky: its spec, the LANs it joins, the image it runs and the container layout.
pub fn decky_hash(decky: &DeckySpec, lans: &[LanSpec], image: &str) -> String {
    let joined: Vec<&LanSpec> = decky_lans(decky, lans)
        .iter()
        .filter_map(|(name, _)| lans.iter().find(|l| l.name == *name))
        .collect();
    hash_json(&(decky, joined, image, LAYOUT))
}

/// A decky's services, each once, in spec order.
fn unique_services(decky: &DeckySpec) -> Vec<Service> {
    let mut seen = BTreeSet::new();
    decky
        .services
        .iter()
        .copied()
        .filter(|s| seen.insert(*s))
        .collect()
}

/// A decky's services, each once in spec order, comma separated: the `--service` value of its
/// process and its [`labels::SERVICES`] label. Empty when it has none.
pub fn services_list(decky: &DeckySpec) -> String {
    unique_services(decky)
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A network observed on the host, labelled for a shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedNetwork {
    pub id: String,
    pub name: String,
    pub lan: String,
    pub spec_hash: String,
    pub driver: String,
    pub subnet: Option<String>,
}

/// A container observed on the host, labelled for a shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub decky: String,
    /// `decky` (older agents also made `base` and `service` containers).
    pub role: String,
    /// The services it runs (from its label).
    pub services: Vec<String>,
    pub spec_hash: String,
    pub running: bool,
    /// Docker's state string (`running`, `exited`, …).
    pub state: String,
    /// Address per Docker network name.
    pub ips: BTreeMap<String, String>,
}

/// Everything labelled for one shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub networks: Vec<ObservedNetwork>,
    pub containers: Vec<ObservedContainer>,
}

/// A network to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkCreate {
    pub lan: LanSpec,
    pub hash: String,
}

/// A decky container to create.
#[derive(Clone, Debug, PartialEq)]
pub struct DeckyCreate {
    pub decky: DeckySpec,
    pub hash: String,
    /// Docker networks to join, in order, with the static address on each (None: IPAM).
    pub networks: Vec<(String, Option<String>)>,
}

/// What to do, in order: remove containers, remove networks, create networks, create deckies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Container ids (with names, for reports).
    pub remove_containers: Vec<(String, String)>,
    /// Network ids (with names).
    pub remove_networks: Vec<(String, String)>,
    pub create_networks: Vec<NetworkCreate>,
    pub create_deckies: Vec<DeckyCreate>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.remove_containers.is_empty()
            && self.remove_networks.is_empty()
            && self.create_networks.is_empty()
            && self.create_deckies.is_empty()
    }
}

/// Diffs `spec` (deployed as shard `shard` with decky image `image`) against `observed`.
pub fn plan(shard: &str, spec: &DeckyShardSpec, image: &str, observed: &Observed) -> Plan {
    let mut plan = Plan::default();
    let lans = effective_lans(spec);

    // Networks.
    let mut kept_networks = BTreeSet::new();
    for net in &observed.networks {
        let desired = lans.iter().find(|l| l.name == net.lan);
        let keep = desired.is_some_and(|l| {
            lan_hash(l) == net.spec_hash && net.name == network_name(shard, &l.name)
        }) && kept_networks.insert(net.lan.clone());
        if !keep {
            plan.remove_networks
                .push((net.id.clone(), net.name.clone()));
        }
    }
    for lan in &lans {
        if !kept_networks.contains(&lan.name) {
            plan.create_networks.push(NetworkCreate {
                lan: lan.clone(),
                hash: lan_hash(lan),
            });
        }
    }

    // Containers, grouped by decky.
    let mut by_decky: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &observed.containers {
        by_decky.entry(c.decky.as_str()).or_default().push(c);
    }
    let desired_names: BTreeSet<&str> = spec.deckies.iter().map(|d| d.name.as_str()).collect();
    for (decky, containers) in &by_decky {
        if !desired_names.contains(decky) {
            for c in containers {
                plan.remove_containers.push((c.id.clone(), c.name.clone()));
            }
        }
    }

    for decky in &spec.deckies {
        let hash = decky_hash(decky, &lans, image);
        let name = container_name(shard, &decky.name);
        let existing = by_decky
            .get(decky.name.as_str())
            .cloned()
            .unwrap_or_default();
        let good = existing.iter().find(|c| {
            c.role == labels::ROLE_DECKY && c.running && c.spec_hash == hash && c.name == name
        });
        for c in &existing {
            if good.is_none_or(|g| g.id != c.id) {
                plan.remove_containers.push((c.id.clone(), c.name.clone()));
            }
        }
        if good.is_none() {
            let networks = decky_lans(decky, &lans)
                .into_iter()
                .map(|(lan, ip)| (network_name(shard, lan), ip.map(str::to_owned)))
                .collect();
            plan.create_deckies.push(DeckyCreate {
                decky: decky.clone(),
                hash,
                networks,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NetworkDriver;

    const IMG: &str = "decnet-decky:test";

    fn spec(deckies: &[(&str, &[Service])]) -> DeckyShardSpec {
        DeckyShardSpec {
            worker: "w1".into(),
            networks: vec![LanSpec {
                name: "dmz".into(),
                subnet: Some("172.30.10.0/24".into()),
                driver: NetworkDriver::Bridge,
                parent: None,
                internal: false,
            }],
            deckies: deckies
                .iter()
                .enumerate()
                .map(|(i, (name, services))| DeckySpec {
                    name: (*name).into(),
                    services: services.to_vec(),
                    ips: [("dmz".to_owned(), format!("172.30.10.{}", 10 + i))].into(),
                    forwards_l3: false,
                    personality: None,
                })
                .collect(),
        }
    }

    /// What Docker would look like after applying `plan` perfectly to an empty host.
    fn converged(shard: &str, spec: &DeckyShardSpec) -> Observed {
        let lans = effective_lans(spec);
        let mut obs = Observed::default();
        for lan in &lans {
            obs.networks.push(ObservedNetwork {
                id: format!("net-{}", lan.name),
                name: network_name(shard, &lan.name),
                lan: lan.name.clone(),
                spec_hash: lan_hash(lan),
                driver: "bridge".into(),
                subnet: lan.subnet.clone(),
            });
        }
        for d in &spec.deckies {
            let hash = decky_hash(d, &lans, IMG);
            obs.containers.push(container(shard, d, &hash));
        }
        obs
    }

    fn container(shard: &str, decky: &DeckySpec, hash: &str) -> ObservedContainer {
        let name = container_name(shard, &decky.name);
        ObservedContainer {
            id: format!("id-{name}"),
            name,
            decky: decky.name.clone(),
            role: labels::ROLE_DECKY.into(),
            services: unique_services(decky)
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            spec_hash: hash.into(),
            running: true,
            state: "running".into(),
            ips: BTreeMap::new(),
        }
    }

    use Service::*;

    #[test]
    fn empty_host_creates_everything() {
        let s = spec(&[("a", &[Ssh, Http]), ("b", &[Ftp])]);
        let p = plan("s1", &s, IMG, &Observed::default());
        assert_eq!(p.create_networks.len(), 1);
        assert_eq!(p.create_deckies.len(), 2);
        assert_eq!(
            p.create_deckies[0].networks,
            vec![("s1-dmz".to_owned(), Some("172.30.10.10".to_owned()))]
        );
        assert!(p.remove_containers.is_empty() && p.remove_networks.is_empty());
    }

    #[test]
    fn converged_state_is_a_noop() {
        let s = spec(&[("a", &[Ssh, Http]), ("b", &[Ftp])]);
        let p = plan("s1", &s, IMG, &converged("s1", &s));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn removed_decky_only_removes_its_container() {
        let s = spec(&[("a", &[Ssh, Http]), ("b", &[Ftp]), ("c", &[Smtp])]);
        let obs = converged("s1", &s);
        let mut s2 = s.clone();
        s2.deckies.retain(|d| d.name != "b");
        let p = plan("s1", &s2, IMG, &obs);
        assert_eq!(
            p.remove_containers,
            vec![("id-s1-b".to_owned(), "s1-b".to_owned())]
        );
        assert!(p.create_deckies.is_empty());
        assert!(p.create_networks.is_empty() && p.remove_networks.is_empty());
    }

    #[test]
    fn stopped_decky_is_recreated_alone() {
        let s = spec(&[("a", &[Ssh, Http]), ("b", &[Ftp])]);
        let mut obs = converged("s1", &s);
        obs.containers
            .iter_mut()
            .find(|c| c.name == "s1-a")
            .unwrap()
            .running = false;
        let p = plan("s1", &s, IMG, &obs);
        assert_eq!(p.remove_containers, vec![("id-s1-a".into(), "s1-a".into())]);
        assert_eq!(p.create_deckies.len(), 1);
        assert_eq!(p.create_deckies[0].decky.name, "a");
    }

    #[test]
    fn containers_of_the_older_layout_are_replaced() {
        // An agent before layout 2 ran a base plus one container per service.
        let s = spec(&[("a", &[Ssh, Http])]);
        let lans = effective_lans(&s);
        let mut obs = converged("s1", &s);
        let old_hash = hash_json(&(&s.deckies[0], &lans, IMG));
        obs.containers[0].role = "base".into();
        obs.containers[0].spec_hash = old_hash.clone();
        for svc in ["ssh", "http"] {
            let mut c = obs.containers[0].clone();
            c.name = format!("s1-a-{svc}");
            c.id = format!("id-s1-a-{svc}");
            c.role = "service".into();
            obs.containers.push(c);
        }
        let p = plan("s1", &s, IMG, &obs);
        assert_eq!(p.remove_containers.len(), 3, "{p:?}");
        assert_eq!(p.create_deckies.len(), 1);
    }

    #[test]
    fn changed_decky_spec_recreates_only_that_decky() {
        let s = spec(&[("a", &[Ssh]), ("b", &[Ftp])]);
        let obs = converged("s1", &s);
        let mut s2 = s.clone();
        s2.deckies[1].services.push(Telnet);
        let p = plan("s1", &s2, IMG, &obs);
        assert_eq!(p.create_deckies.len(), 1);
        assert_eq!(p.create_deckies[0].decky.name, "b");
        assert_eq!(p.remove_containers, vec![("id-s1-b".into(), "s1-b".into())]);
    }

    #[test]
    fn new_image_recreates_every_decky() {
        let s = spec(&[("a", &[Ssh]), ("b", &[Ftp])]);
        let obs = converged("s1", &s);
        let p = plan("s1", &s, "decnet-decky:other", &obs);
        assert_eq!(p.create_deckies.len(), 2);
        assert!(p.create_networks.is_empty());
    }

    #[test]
    fn changed_lan_recreates_network_and_its_deckies() {
        let s = spec(&[("a", &[Ssh])]);
        let obs = converged("s1", &s);
        let mut s2 = s.clone();
        s2.networks[0].internal = true;
        let p = plan("s1", &s2, IMG, &obs);
        assert_eq!(p.remove_networks, vec![("net-dmz".into(), "s1-dmz".into())]);
        assert_eq!(p.create_networks.len(), 1);
        assert_eq!(p.create_deckies.len(), 1);
    }

    #[test]
    fn unknown_labelled_objects_are_removed() {
        let s = spec(&[("a", &[Ssh])]);
        let mut obs = converged("s1", &s);
        obs.networks.push(ObservedNetwork {
            id: "net-old".into(),
            name: "s1-old".into(),
            lan: "old".into(),
            spec_hash: "x".into(),
            driver: "bridge".into(),
            subnet: None,
        });
        // A duplicate of the decky's container under another name.
        let mut dup = obs.containers[0].clone();
        dup.id = "id-s1-a-copy".into();
        dup.name = "s1-a-copy".into();
        obs.containers.push(dup);
        let p = plan("s1", &s, IMG, &obs);
        assert_eq!(p.remove_networks, vec![("net-old".into(), "s1-old".into())]);
        assert_eq!(
            p.remove_containers,
            vec![("id-s1-a-copy".into(), "s1-a-copy".into())]
        );
        assert!(p.create_deckies.is_empty());
    }

    #[test]
    fn empty_shard_removes_everything() {
        let s = spec(&[("a", &[Ssh])]);
        let obs = converged("s1", &s);
        let mut s2 = s.clone();
        s2.deckies.clear();
        let p = plan("s1", &s2, IMG, &obs);
        assert_eq!(p.remove_containers.len(), 1);
    }

    #[test]
    fn shard_without_networks_gets_a_default_lan() {
        let mut s = spec(&[("a", &[Ssh])]);
        s.networks.clear();
        s.deckies[0].ips.clear();
        let lans = effective_lans(&s);
        assert_eq!(lans[0].name, DEFAULT_LAN);
        assert_eq!(decky_lans(&s.deckies[0], &lans), vec![(DEFAULT_LAN, None)]);
        assert!(plan("s1", &s, IMG, &converged("s1", &s)).is_empty());
    }
}
