//! Reconcilers and the embedded backend's driver.
//!
//! Reconcilers have kube-runtime's shape — `reconcile(Arc<K>, Arc<Ctx>) ->
//! Result<Action, E>` plus an error policy — so the same functions can later
//! run under `kube_runtime::Controller` against a real API server.
//!
//! - driver: [`runtime`] (change feed → queue → reconcile), [`scheduler`],
//!   [`action`], [`backoff`], [`finalizer`];
//! - SWARM reconcilers: [`worker`], [`shard`], [`swarm`], run together by
//!   [`manager`], sharing a [`Context`];
//! - pure planning: [`placement`] (fleet → workers), [`shard_diff`].

mod action;
mod backoff;
pub mod context;
pub mod finalizer;
pub mod manager;
pub mod placement;
mod runtime;
mod scheduler;
pub mod shard;
pub mod shard_diff;
pub mod swarm;
pub mod worker;

pub use action::Action;
pub use backoff::Backoff;
pub use context::{Context, ReconcileError, Settings};
pub use finalizer::{Event as FinalizerEvent, FinalizerError, finalizer};
pub use manager::ManagerOptions;
pub use runtime::{Controller, ObjectRef};
pub use scheduler::Scheduler;
