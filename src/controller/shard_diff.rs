//! Desired DeckyShard vs. what its agent reports (pure): decides whether a
//! `/deploy` is needed and what each decky's readiness is.

use std::collections::BTreeSet;

use crate::agent::ShardStatus;
use crate::api::{DeckyShardSpec, DeckyStatus};

/// Differences that a deploy would fix; empty = converged.
pub fn drift(spec: &DeckyShardSpec, observed: Option<&ShardStatus>) -> Vec<String> {
    let Some(obs) = observed else {
        return if spec.deckies.is_empty() {
            Vec::new()
        } else {
            vec!["shard not deployed on the worker".into()]
        };
    };
    let mut out = Vec::new();
    let want: BTreeSet<&str> = spec.deckies.iter().map(|d| d.name.as_str()).collect();
    for d in &obs.deckies {
        if !want.contains(d.name.as_str()) {
            out.push(format!("decky {} is not in the spec", d.name));
        }
    }
    for d in &spec.deckies {
        let Some(o) = obs.deckies.iter().find(|o| o.name == d.name) else {
            out.push(format!("decky {} is missing", d.name));
            continue;
        };
        if !o.ready {
            out.push(format!("decky {} is not running", d.name));
        }
        let services: BTreeSet<&str> = o.services.iter().map(String::as_str).collect();
        let wanted: BTreeSet<&str> = d.services.iter().map(|s| s.as_str()).collect();
        if services != wanted {
            out.push(format!(
                "decky {} runs services {services:?}, wants {wanted:?}",
                d.name
            ));
        }
        for (lan, ip) in &d.ips {
            let got = o
                .ips
                .iter()
                .find(|(net, _)| net.ends_with(&format!("-{lan}")))
                .map(|(_, ip)| ip);
            if !ip.is_empty() && got != Some(ip) {
                out.push(format!("decky {} has {got:?} on {lan}, wants {ip}", d.name));
            }
        }
    }
    out
}

/// Per-decky readiness for the shard's status, in spec order.
pub fn readiness(spec: &DeckyShardSpec, observed: Option<&ShardStatus>) -> Vec<DeckyStatus> {
    spec.deckies
        .iter()
        .map(|d| {
            let o = observed.and_then(|s| s.deckies.iter().find(|o| o.name == d.name));
            DeckyStatus {
                name: d.name.clone(),
                ready: o.is_some_and(|o| o.ready),
                message: match o {
                    None => Some("not deployed".into()),
                    Some(o) if !o.ready => Some(
                        o.containers
                            .iter()
                            .filter(|c| c.state != "running")
                            .map(|c| format!("{} {}", c.name, c.state))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    Some(_) => None,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{ContainerObserved, DeckyObserved};
    use crate::api::{DeckySpec, Service};

    fn spec(deckies: &[(&str, &[Service])]) -> DeckyShardSpec {
        DeckyShardSpec {
            worker: "w1".into(),
            networks: vec![],
            deckies: deckies
                .iter()
                .map(|(n, s)| DeckySpec {
                    name: n.to_string(),
                    services: s.to_vec(),
                    ips: Default::default(),
                    forwards_l3: false,
                    personality: None,
                })
                .collect(),
        }
    }

    fn observed(deckies: &[(&str, bool, &[&str])]) -> ShardStatus {
        ShardStatus {
            name: "s".into(),
            networks: vec![],
            deckies: deckies
                .iter()
                .map(|(n, ready, svcs)| DeckyObserved {
                    name: n.to_string(),
                    ready: *ready,
                    spec_hash: "h".into(),
                    ips: Default::default(),
                    services: svcs.iter().map(|s| s.to_string()).collect(),
                    containers: vec![ContainerObserved {
                        name: format!("s-{n}"),
                        id: "id".into(),
                        role: "decky".into(),
                        state: if *ready { "running" } else { "exited" }.into(),
                    }],
                })
                .collect(),
        }
    }

    #[test]
    fn converged_shard_has_no_drift() {
        let s = spec(&[("a", &[Service::Ssh, Service::Http])]);
        let o = observed(&[("a", true, &["http", "ssh"])]);
        assert!(drift(&s, Some(&o)).is_empty());
        assert!(readiness(&s, Some(&o))[0].ready);
    }

    #[test]
    fn every_kind_of_drift_is_reported() {
        let s = spec(&[
            ("a", &[Service::Ssh]),
            ("b", &[Service::Http]),
            ("c", &[Service::Ftp]),
        ]);
        let o = observed(&[
            ("a", true, &["ssh", "http"]),
            ("b", false, &["http"]),
            ("x", true, &["ssh"]),
        ]);
        let d = drift(&s, Some(&o));
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(d.iter().any(|m| m.contains("decky x is not in the spec")));
        assert!(d.iter().any(|m| m.contains("decky c is missing")));
        assert!(d.iter().any(|m| m.contains("decky b is not running")));
        assert!(d.iter().any(|m| m.contains("decky a runs services")));
        let r = readiness(&s, Some(&o));
        assert_eq!(r.iter().filter(|d| d.ready).count(), 1);
        assert_eq!(r[2].message.as_deref(), Some("not deployed"));
        assert!(!drift(&s, None).is_empty());
        assert!(drift(&spec(&[]), None).is_empty());
    }
}
