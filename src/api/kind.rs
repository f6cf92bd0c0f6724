use std::fmt;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{DeckyShard, Swarm, Topology, Worker};

/// The kinds decnet serves. Order is the apply order: fleet settings first, then
/// hosts, then what is placed on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Swarm,
    Worker,
    Topology,
    DeckyShard,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown kind {given:?}; allowed: Swarm (swarms), Worker (workers, wk), Topology (topologies, topo), DeckyShard (deckyshards, ds)"
)]
pub struct ParseKindError {
    pub given: String,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Swarm, Kind::Worker, Kind::Topology, Kind::DeckyShard];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Swarm => "Swarm",
            Kind::Worker => "Worker",
            Kind::Topology => "Topology",
            Kind::DeckyShard => "DeckyShard",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Swarm => "swarms",
            Kind::Worker => "workers",
            Kind::Topology => "topologies",
            Kind::DeckyShard => "deckyshards",
        }
    }

    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Kind::Swarm => &[],
            Kind::Worker => &["wk"],
            Kind::Topology => &["topo"],
            Kind::DeckyShard => &["ds"],
        }
    }

    /// Accepts what kubectl accepts: the kind, singular, plural or short name,
    /// case-insensitively, optionally qualified with `.decnet.io`.
    pub fn parse(given: &str) -> Result<Kind, ParseKindError> {
        let lower = given.to_ascii_lowercase();
        let bare = lower.strip_suffix(".decnet.io").unwrap_or(&lower);
        Kind::ALL
            .into_iter()
            .find(|k| {
                bare == k.as_str().to_ascii_lowercase()
                    || bare == k.plural()
                    || k.short_names().contains(&bare)
            })
            .ok_or_else(|| ParseKindError {
                given: given.to_string(),
            })
    }

    /// The CRD exactly as a Kubernetes API server would be given it.
    pub fn crd(self) -> CustomResourceDefinition {
        match self {
            Kind::Swarm => Swarm::crd(),
            Kind::Worker => Worker::crd(),
            Kind::Topology => Topology::crd(),
            Kind::DeckyShard => DeckyShard::crd(),
        }
    }

    /// The `openAPIV3Schema` of the served version, as JSON, for validation.
    /// Generated once per process: schema generation is costly and apply
    /// validates every document against it.
    pub fn schema(self) -> &'static serde_json::Value {
        static SCHEMAS: std::sync::OnceLock<[serde_json::Value; 4]> = std::sync::OnceLock::new();
        let all = SCHEMAS.get_or_init(|| Kind::ALL.map(Kind::generate_schema));
        &all[self as usize]
    }

    fn generate_schema(self) -> serde_json::Value {
        let crd = self.crd();
        crd.spec
            .versions
            .into_iter()
            .next()
            .and_then(|v| v.schema)
            .and_then(|s| s.open_api_v3_schema)
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        for (given, want) in [
            ("Worker", Kind::Worker),
            ("workers", Kind::Worker),
            ("wk", Kind::Worker),
            ("WK", Kind::Worker),
            ("topo", Kind::Topology),
            ("topologies.decnet.io", Kind::Topology),
            ("ds", Kind::DeckyShard),
            ("deckyshard", Kind::DeckyShard),
            ("swarm", Kind::Swarm),
        ] {
            assert_eq!(Kind::parse(given).unwrap(), want, "{given}");
        }
        let err = Kind::parse("pod").unwrap_err().to_string();
        assert!(
            err.contains("\"pod\"") && err.contains("DeckyShard"),
            "{err}"
        );
    }
}
