//! Pure convergence planning: desired shard vs. observed Docker objects → the actions to take.
//!
//! Nothing here touches Docker; [`crate::agent::executor`] applies a [`Plan`].
//!
//! Rules:
//! - Every object of the shard carries `decnet.io/spec-hash`. An object whose hash equals the
//!   desired one and that is running is left alone (that is what makes a re-deploy a no-op).
//! - A network whose LAN is no longer desired, or whose hash changed, is removed (and recreated
//!   if still desired).
//! - A decky's hash covers its spec, the specs of the LANs it joins and the decky image, so any
//!   change to one of those recreates the whole decky (base + services).
//! - A base container that is not running recreates the whole decky: service containers share
//!   the base's network namespace, which dies with it.
//! - A service container that is missing, stopped or stale is recreated alone.
//! - Anything labelled for the shard and not desired (unknown decky, unknown service, duplicate)
//!   is removed.

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
    pub const SERVICE: &str = "decnet.io/service";
    pub const LAN: &str = "decnet.io/lan";
    pub const SPEC_HASH: &str = "decnet.io/spec-hash";
    pub const ROLE_BASE: &str = "base";
    pub const ROLE_SERVICE: &str = "service";
}

/// Name of the implicit LAN when a shard declares no networks.
pub const DEFAULT_LAN: &str = "default";

/// Docker network name of `lan` in `shard`.
pub fn network_name(shard: &str, lan: &str) -> String {
    format!("{shard}-{lan}")
}

/// Base container name of `decky` in `shard`.
pub fn base_name(shard: &str, decky: &str) -> String {
    format!("{shard}-{decky}")
}

/// Service container name.
pub fn service_name(shard: &str, decky: &str, service: Service) -> String {
    format!("{shard}-{decky}-{}", service.as_str())
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

/// Hash of a decky: its spec, the LANs it joins and the image it runs.
pub fn decky_hash(decky: &DeckySpec, lans: &[LanSpec], image: &str) -> String {
    let joined: Vec<&LanSpec> = decky_lans(decky, lans)
        .iter()
        .filter_map(|(name, _)| lans.iter().find(|l| l.name == *name))
        .collect();
    hash_json(&(decky, joined, image))
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
    /// `base` or `service`.
    pub role: String,
    pub service: Option<String>,
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

/// A decky to create from scratch (base then services).
#[derive(Clone, Debug, PartialEq)]
pub struct DeckyCreate {
    pub decky: DeckySpec,
    pub hash: String,
    /// Docker networks to join, in order, with the static address on each (None: IPAM).
    pub networks: Vec<(String, Option<String>)>,
}

/// A service container to (re)create inside an existing, running base.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceCreate {
    pub decky: DeckySpec,
    pub service: Service,
    pub hash: String,
    pub base_id: String,
}

/// What to do, in order: remove containers, remove networks, create networks, create deckies,
/// create services.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Container ids (with names, for reports).
    pub remove_containers: Vec<(String, String)>,
    /// Network ids (with names).
    pub remove_networks: Vec<(String, String)>,
    pub create_networks: Vec<NetworkCreate>,
    pub create_deckies: Vec<DeckyCreate>,
    pub create_services: Vec<ServiceCreate>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.remove_containers.is_empty()
            && self.remove_networks.is_empty()
            && self.create_networks.is_empty()
            && self.create_deckies.is_empty()
            && self.create_services.is_empty()
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
        let existing = by_decky
            .get(decky.name.as_str())
            .cloned()
            .unwrap_or_default();
        let bases: Vec<&&ObservedContainer> = existing
            .iter()
            .filter(|c| c.role == labels::ROLE_BASE)
            .collect();
        let good_base = bases
            .iter()
            .find(|c| c.running && c.spec_hash == hash && c.name == base_name(shard, &decky.name));
        let Some(base) = good_base else {
            // Recreate the whole decky.
            for c in &existing {
                plan.remove_containers.push((c.id.clone(), c.name.clone()));
            }
            let networks = decky_lans(decky, &lans)
                .into_iter()
                .map(|(lan, ip)| (network_name(shard, lan), ip.map(str::to_owned)))
                .collect();
            plan.create_deckies.push(DeckyCreate {
                decky: decky.clone(),
                hash,
                networks,
            });
            continue;
        };
        for c in &bases {
            if c.id != base.id {
                plan.remove_containers.push((c.id.clone(), c.name.clone()));
            }
        }
        let mut kept_services = BTreeSet::new();
        for c in existing.iter().filter(|c| c.role != labels::ROLE_BASE) {
            let wanted = decky
                .services
                .iter()
                .find(|s| Some(s.as_str()) == c.service.as_deref());
            let keep = wanted.is_some_and(|s| {
                c.running
                    && c.spec_hash == hash
                    && c.name == service_name(shard, &decky.name, *s)
                    && kept_services.insert(*s)
            });
            if !keep {
                plan.remove_containers.push((c.id.clone(), c.name.clone()));
            }
        }
        let mut seen = BTreeSet::new();
        for s in &decky.services {
            if seen.insert(*s) && !kept_services.contains(s) {
                plan.create_services.push(ServiceCreate {
                    decky: decky.clone(),
                    service: *s,
                    hash: hash.clone(),
                    base_id: base.id.clone(),
                });
            }
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
            obs.containers.push(container(shard, &d.name, None, &hash));
            for s in &d.services {
                obs.containers
                    .push(container(shard, &d.name, Some(*s), &hash));
            }
        }
        obs
    }

    fn container(shard: &str, decky: &str, svc: Option<Service>, hash: &str) -> ObservedContainer {
        let name = match svc {
            None => base_name(shard, decky),
            Some(s) => service_name(shard, decky, s),
        };
        ObservedContainer {
            id: format!("id-{name}"),
            name,
            decky: decky.into(),
            role: if svc.is_some() { "service" } else { "base" }.into(),
            service: svc.map(|s| s.as_str().to_owned()),
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
        assert!(p.remove_containers.is_empty() && p.remove_networks.is_empty());
        assert!(p.create_services.is_empty());
    }

    #[test]
    fn converged_state_is_a_noop() {
        let s = spec(&[("a", &[Ssh, Http]), ("b", &[Ftp])]);
        let p = plan("s1", &s, IMG, &converged("s1", &s));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn removed_decky_only_removes_its_containers() {
        let s = spec(&[("a", &[Ssh, Http]), ("b", &[Ftp]), ("c", &[Smtp])]);
        let obs = converged("s1", &s);
        let mut s2 = s.clone();
        s2.deckies.retain(|d| d.name != "b");
        let p = plan("s1", &s2, IMG, &obs);
        assert_eq!(
            p.remove_containers,
            vec![
                ("id-s1-b".to_owned(), "s1-b".to_owned()),
                ("id-s1-b-ftp".to_owned(), "s1-b-ftp".to_owned())
            ]
        );
        assert!(p.create_deckies.is_empty() && p.create_services.is_empty());
        assert!(p.create_networks.is_empty() && p.remove_networks.is_empty());
    }

    #[test]
    fn stopped_service_is_recreated_alone() {
        let s = spec(&[("a", &[Ssh, Http])]);
        let mut obs = converged("s1", &s);
        let svc = obs
            .containers
            .iter_mut()
            .find(|c| c.name == "s1-a-http")
            .unwrap();
        svc.running = false;
        let p = plan("s1", &s, IMG, &obs);
        assert_eq!(
            p.remove_containers,
            vec![("id-s1-a-http".into(), "s1-a-http".into())]
        );
        assert_eq!(p.create_services.len(), 1);
        assert_eq!(p.create_services[0].service, Http);
        assert_eq!(p.create_services[0].base_id, "id-s1-a");
        assert!(p.create_deckies.is_empty());
    }

    #[test]
    fn missing_service_is_created() {
        let s = spec(&[("a", &[Ssh, Http])]);
        let mut obs = converged("s1", &s);
        obs.containers.retain(|c| c.name != "s1-a-ssh");
        let p = plan("s1", &s, IMG, &obs);
        assert!(p.remove_containers.is_empty());
        assert_eq!(p.create_services.len(), 1);
        assert_eq!(p.create_services[0].service, Ssh);
    }

    #[test]
    fn stopped_base_recreates_the_decky() {
        let s = spec(&[("a", &[Ssh, Http]), ("b", &[Ftp])]);
        let mut obs = converged("s1", &s);
        obs.containers
            .iter_mut()
            .find(|c| c.name == "s1-a")
            .unwrap()
            .running = false;
        let p = plan("s1", &s, IMG, &obs);
        assert_eq!(p.remove_containers.len(), 3);
        assert_eq!(p.create_deckies.len(), 1);
        assert_eq!(p.create_deckies[0].decky.name, "a");
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
        assert_eq!(p.remove_containers.len(), 2);
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
        let hash = obs.containers[0].spec_hash.clone();
        obs.containers
            .push(container("s1", "a", Some(Redis), &hash));
        let p = plan("s1", &s, IMG, &obs);
        assert_eq!(p.remove_networks, vec![("net-old".into(), "s1-old".into())]);
        assert_eq!(
            p.remove_containers,
            vec![("id-s1-a-redis".into(), "s1-a-redis".into())]
        );
        assert!(p.create_deckies.is_empty() && p.create_services.is_empty());
    }

    #[test]
    fn empty_shard_removes_everything() {
        let s = spec(&[("a", &[Ssh])]);
        let obs = converged("s1", &s);
        let mut s2 = s.clone();
        s2.deckies.clear();
        let p = plan("s1", &s2, IMG, &obs);
        assert_eq!(p.remove_containers.len(), 2);
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
