//! Resource types of group `decnet.io`, version `v1alpha1`.
//!
//! Every type is a `kube::CustomResource`, so the same structs serve the embedded
//! store and a real Kubernetes API server. All four kinds are cluster-scoped: a
//! worker is a host (like a Node) and fleets span the whole deployment.

mod condition;
mod decky_shard;
mod kind;
mod service;
mod swarm;
mod topology;
pub mod validate;
mod worker;

pub use condition::{ConditionExt, set_condition};
pub use decky_shard::{
    DeckyShard, DeckyShardPhase, DeckyShardSpec, DeckyShardStatus, DeckySpec, DeckyStatus, LanSpec,
    NetworkDriver, Personality,
};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, ObjectMeta, OwnerReference, Time,
};
pub use kind::{Kind, ParseKindError};
pub use service::Service;
pub use swarm::{
    CaPolicy, FleetRequest, HealthPolicy, Scheduling, SchedulingStrategy, Swarm, SwarmPhase,
    SwarmSpec, SwarmStatus,
};
pub use topology::{
    IllegalTransition, PhaseTransition, Placement, Topology, TopologyPhase, TopologySpec,
    TopologyStatus,
};
pub use worker::{Worker, WorkerPhase, WorkerSpec, WorkerStatus};

/// API group of every decnet resource.
pub const GROUP: &str = "decnet.io";
/// The one served version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "decnet.io/v1alpha1";

/// Implemented by the four decnet kinds so generic code (store, controller) can
/// name the kind without a value at hand.
pub trait DecnetResource:
    kube::Resource<DynamicType = ()>
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Clone
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    const KIND: Kind;
}

impl DecnetResource for Swarm {
    const KIND: Kind = Kind::Swarm;
}
impl DecnetResource for Worker {
    const KIND: Kind = Kind::Worker;
}
impl DecnetResource for Topology {
    const KIND: Kind = Kind::Topology;
}
impl DecnetResource for DeckyShard {
    const KIND: Kind = Kind::DeckyShard;
}
