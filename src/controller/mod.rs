//! Reconcilers and the embedded backend's driver.
//!
//! Reconcilers have kube-runtime's shape — `reconcile(Arc<K>, Arc<Ctx>) ->
//! Result<Action, E>` plus an error policy — so the same functions can later
//! run under `kube_runtime::Controller` against a real API server.

mod action;
mod backoff;
pub mod finalizer;
mod runtime;
mod scheduler;

pub use action::Action;
pub use backoff::Backoff;
pub use finalizer::{Event as FinalizerEvent, FinalizerError, finalizer};
pub use runtime::{Controller, ObjectRef};
pub use scheduler::Scheduler;
