use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Service};

/// Fleet-wide settings: where the master listens, how certificates are issued,
/// how workers are health-checked and how deckies are scheduled.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "decnet.io",
    version = "v1alpha1",
    kind = "Swarm",
    status = "SwarmStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Master","type":"string","jsonPath":".spec.masterAddress"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SwarmSpec {
    /// Address (IP or DNS name) the workers use to reach the master: the log
    /// listener and the enrollment endpoint. Also put in the master cert's SANs.
    #[schemars(length(min = 1, max = 253))]
    pub master_address: String,
    /// TCP port of the master's RFC 5425 syslog-over-TLS listener.
    #[serde(default = "default_listener_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub listener_port: u16,
    /// TCP port of the master's one-shot enrollment endpoint (HTTPS, serves
    /// `/enroll/<token>.sh` and the bundle once per token).
    #[serde(default = "default_enroll_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub enroll_port: u16,
    /// Default agent port on workers (a Worker may override it).
    #[serde(default = "default_agent_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub agent_port: u16,
    #[serde(default)]
    pub ca: CaPolicy,
    #[serde(default)]
    pub health: HealthPolicy,
    #[serde(default)]
    pub scheduling: Scheduling,
    /// A flat fleet: N deckies spread over the active workers by the scheduler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetRequest>,
}

pub(crate) fn default_listener_port() -> u16 {
    6514
}
pub(crate) fn default_enroll_port() -> u16 {
    8443
}
pub(crate) fn default_agent_port() -> u16 {
    8765
}

/// How the master's CA issues certificates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaPolicy {
    /// Validity of worker and master leaf certificates, in days (at most 825,
    /// the CA/Browser-forum cap that strict verifiers still enforce).
    #[serde(default = "default_leaf_days")]
    #[schemars(range(min = 1, max = 825))]
    pub leaf_validity_days: u32,
    /// Lifetime of a one-shot enrollment token URL, in seconds.
    #[serde(default = "default_token_ttl")]
    #[schemars(range(min = 30, max = 3600))]
    pub enrollment_token_ttl_seconds: u32,
}

fn default_leaf_days() -> u32 {
    825
}
fn default_token_ttl() -> u32 {
    300
}

impl Default for CaPolicy {
    fn default() -> Self {
        Self {
            leaf_validity_days: default_leaf_days(),
            enrollment_token_ttl_seconds: default_token_ttl(),
        }
    }
}

/// How workers are probed and when their deckies move elsewhere.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthPolicy {
    /// Seconds between two probes of each agent.
    #[serde(default = "default_probe_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub probe_interval_seconds: u32,
    /// How long a worker may stay Unreachable before its deckies are rescheduled.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 0, max = 86400))]
    pub reschedule_grace_seconds: u32,
}

fn default_probe_interval() -> u32 {
    15
}
fn default_grace() -> u32 {
    120
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            probe_interval_seconds: default_probe_interval(),
            reschedule_grace_seconds: default_grace(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    #[serde(default)]
    pub strategy: SchedulingStrategy,
}

/// Placement of fleet deckies over eligible workers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum SchedulingStrategy {
    /// One decky per worker in turn.
    #[default]
    RoundRobin,
    /// Proportional to each worker's `weight`, never above its `capacity`.
    Weighted,
}

/// A request for N identical deckies, placed by the scheduler.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetRequest {
    #[schemars(range(min = 0, max = 100000))]
    pub deckies: u32,
    #[schemars(length(min = 1))]
    pub services: Vec<Service>,
    /// Only workers whose labels contain all of these are eligible.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Decky names are `<prefix>-<index>`.
    #[serde(default = "default_prefix")]
    #[schemars(length(min = 1, max = 40), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name_prefix: String,
}

fn default_prefix() -> String {
    "decky".into()
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SwarmPhase {
    Pending,
    Ready,
    Degraded,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwarmStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SwarmPhase>,
    /// SHA-256 fingerprint of the CA certificate the master issues with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_workers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_deckies: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
