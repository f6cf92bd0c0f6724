use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Service, Time};

/// A MazeNET request: a tree of nested LANs of deckies, `depth` levels deep with
/// `branching` child LANs per LAN. The planner turns it into DeckyShards.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "decnet.io",
    version = "v1alpha1",
    kind = "Topology",
    shortname = "topo",
    status = "TopologyStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Depth","type":"integer","jsonPath":".spec.depth"}"#,
    printcolumn = r#"{"name":"Branching","type":"integer","jsonPath":".spec.branching"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TopologySpec {
    #[schemars(range(min = 1, max = 16))]
    pub depth: u8,
    #[schemars(range(min = 1, max = 8))]
    pub branching: u8,
    #[schemars(range(min = 1, max = 64))]
    pub deckies_per_lan: u8,
    /// Chance that a decky bridging two LANs also forwards L3 between them.
    #[serde(default = "default_bridge_forward")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub bridge_forward_probability: f64,
    /// Chance of an extra edge between two LANs that are not parent and child.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub cross_edge_probability: f64,
    #[schemars(length(min = 1))]
    pub services: Vec<Service>,
    /// Same seed, same maze: plans are reproducible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// IPv4 block the LAN subnets are carved from.
    #[serde(default = "default_subnet_base")]
    #[schemars(pattern(r"^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$"))]
    pub subnet_base: String,
    #[serde(default)]
    pub placement: Placement,
}

fn default_bridge_forward() -> f64 {
    0.5
}
fn default_subnet_base() -> String {
    "10.200.0.0/16".into()
}

/// Which workers may host this topology's shards.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Pin the whole topology to one worker (a maze spans one host's bridges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// pending → deploying → active ⇄ degraded, failed, tearing_down → torn_down.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopologyPhase {
    Pending,
    Deploying,
    Active,
    Degraded,
    Failed,
    TearingDown,
    TornDown,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("illegal topology transition {from:?} → {to:?}")]
pub struct IllegalTransition {
    pub from: TopologyPhase,
    pub to: TopologyPhase,
}

impl TopologyPhase {
    /// The status machine. Anything not listed is illegal; a spec change while
    /// running goes back through `deploying`.
    pub fn can_transition_to(self, to: TopologyPhase) -> bool {
        use TopologyPhase::*;
        matches!(
            (self, to),
            (Pending, Deploying | Failed | TearingDown)
                | (Deploying, Active | Degraded | Failed | TearingDown)
                | (Active, Degraded | Deploying | TearingDown)
                | (Degraded, Active | Deploying | Failed | TearingDown)
                | (Failed, Deploying | TearingDown)
                | (TearingDown, TornDown)
        )
    }
}

/// One audited step of the status machine.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct PhaseTransition {
    pub from: TopologyPhase,
    pub to: TopologyPhase,
    pub time: Time,
    pub reason: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TopologyPhase>,
    /// Every transition, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<PhaseTransition>,
    /// Names of the DeckyShards this topology owns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl TopologyStatus {
    /// Moves to `to`, recording the audit entry; refuses illegal moves. A move
    /// to the current phase is a no-op, so reconcilers may call it every pass.
    pub fn transition(
        &mut self,
        to: TopologyPhase,
        reason: impl Into<String>,
        now: jiff::Timestamp,
    ) -> Result<bool, IllegalTransition> {
        let from = self.phase.unwrap_or(TopologyPhase::Pending);
        if self.phase == Some(to) {
            return Ok(false);
        }
        if self.phase.is_some() && !from.can_transition_to(to) {
            return Err(IllegalTransition { from, to });
        }
        if self.phase.is_none() && to != TopologyPhase::Pending && !from.can_transition_to(to) {
            return Err(IllegalTransition { from, to });
        }
        self.transitions.push(PhaseTransition {
            from,
            to,
            time: Time(now),
            reason: reason.into(),
        });
        self.phase = Some(to);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::TopologyPhase::*;
    use super::*;

    #[test]
    fn walks_the_happy_path_and_audits_it() {
        let now = jiff::Timestamp::from_second(1).unwrap();
        let mut s = TopologyStatus::default();
        for to in [
            Pending,
            Deploying,
            Active,
            Degraded,
            Active,
            TearingDown,
            TornDown,
        ] {
            s.transition(to, format!("to {to:?}"), now).unwrap();
        }
        assert_eq!(s.phase, Some(TornDown));
        assert_eq!(s.transitions.len(), 7);
        assert_eq!(s.transitions[2].from, Deploying);
        assert_eq!(s.transitions[2].to, Active);
        assert_eq!(s.transitions[2].reason, "to Active");
        // Same phase again is a no-op, not an audit entry.
        assert!(!s.transition(TornDown, "again", now).unwrap());
        assert_eq!(s.transitions.len(), 7);
    }

    #[test]
    fn refuses_illegal_moves() {
        let now = jiff::Timestamp::from_second(1).unwrap();
        let mut s = TopologyStatus::default();
        s.transition(Deploying, "start", now).unwrap();
        for bad in [Pending, TornDown] {
            assert_eq!(
                s.transition(bad, "x", now),
                Err(IllegalTransition {
                    from: Deploying,
                    to: bad
                })
            );
        }
        s.transition(TearingDown, "delete", now).unwrap();
        s.transition(TornDown, "gone", now).unwrap();
        for any in [Pending, Deploying, Active, Degraded, Failed, TearingDown] {
            assert!(!TornDown.can_transition_to(any), "{any:?}");
        }
        assert_eq!(s.phase, Some(TornDown));
    }

    #[test]
    fn fresh_status_cannot_jump_to_active() {
        let now = jiff::Timestamp::from_second(1).unwrap();
        let mut s = TopologyStatus::default();
        assert!(s.transition(Active, "x", now).is_err());
        assert!(s.transitions.is_empty());
    }
}
