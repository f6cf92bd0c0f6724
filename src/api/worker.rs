use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Time, swarm::default_agent_port};

/// One worker host running `decnet agent`. Its labels (`metadata.labels`) are
/// what `nodeSelector`s match, as with Kubernetes nodes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "decnet.io",
    version = "v1alpha1",
    kind = "Worker",
    shortname = "wk",
    status = "WorkerStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.address"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Heartbeat","type":"date","jsonPath":".status.lastHeartbeat"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// IP address or DNS name the master uses to reach this worker's agent.
    #[schemars(length(min = 1, max = 253))]
    pub address: String,
    #[serde(default = "default_agent_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub agent_port: u16,
    /// Extra subject alternative names for the worker's certificate
    /// (`address` is always included). IPs become IP SANs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// Most deckies this worker may run; unset = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub capacity: Option<u32>,
    /// Share of fleet deckies under the `Weighted` strategy.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1, max = 1000))]
    pub weight: u32,
    /// Cordon: keep what runs here, schedule nothing new.
    #[serde(default)]
    pub unschedulable: bool,
}

fn default_weight() -> u32 {
    1
}

/// Pending → Enrolled → Active ⇄ Unreachable; deletion = Decommissioning.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WorkerPhase {
    Pending,
    Enrolled,
    Active,
    Unreachable,
    Decommissioning,
}

impl WorkerPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerPhase::Pending => "Pending",
            WorkerPhase::Enrolled => "Enrolled",
            WorkerPhase::Active => "Active",
            WorkerPhase::Unreachable => "Unreachable",
            WorkerPhase::Decommissioning => "Decommissioning",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<WorkerPhase>,
    /// SHA-256 fingerprint (hex) of the certificate issued to this worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<Time>,
    /// Address the worker's bootstrap script was fetched from (one-shot enroll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// Agent version reported by /health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deckies: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
