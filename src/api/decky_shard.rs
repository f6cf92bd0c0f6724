use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Service, Time};

/// The unit of work sent to one worker's agent: the LANs to create there and
/// the deckies to run on them. Written by the controller (owned by a Topology
/// or by the Swarm's fleet) or by hand for a flat fleet.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "decnet.io",
    version = "v1alpha1",
    kind = "DeckyShard",
    shortname = "ds",
    status = "DeckyShardStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Worker","type":"string","jsonPath":".spec.worker"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyDeckies"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DeckyShardSpec {
    /// Name of the Worker this shard runs on.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub worker: String,
    /// LANs to create on the worker. Empty: one default bridge LAN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<LanSpec>,
    pub deckies: Vec<DeckySpec>,
}

/// One LAN (a Docker network on the worker).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LanSpec {
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// IPv4 CIDR. Unset: the agent picks a free private /24 on the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$"))]
    pub subnet: Option<String>,
    #[serde(default)]
    pub driver: NetworkDriver,
    /// Host interface for macvlan/ipvlan. Unset: the worker's default-route NIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// No route out of this LAN except through deckies that forward L3.
    #[serde(default)]
    pub internal: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkDriver {
    #[default]
    Bridge,
    Macvlan,
    Ipvlan,
}

/// One decoy host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeckySpec {
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    #[schemars(length(min = 1))]
    pub services: Vec<Service>,
    /// Address per LAN name. A LAN listed here without an address gets one
    /// from Docker's IPAM; LANs not listed are not joined.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ips: BTreeMap<String, String>,
    /// Routes packets between its LANs (a MazeNET bridge decky).
    #[serde(default, rename = "forwardsL3")]
    pub forwards_l3: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<Personality>,
}

/// What the decky claims to be.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Personality {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// e.g. `SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_banner: Option<String>,
    /// HTTP `Server` header, e.g. `Apache/2.4.52 (Ubuntu)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftp_banner: Option<String>,
    /// OS flavour string used in banners and prompts, e.g. `Ubuntu 22.04.4 LTS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DeckyShardPhase {
    Pending,
    Deploying,
    Ready,
    Degraded,
    Failed,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeckyStatus {
    pub name: String,
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeckyShardStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DeckyShardPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deckies: Vec<DeckyStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_deckies: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deployed: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
