//! decnet: a deception-network orchestrator. See ARCHITECTURE.md for the map.

pub mod agent;
pub mod api;
pub mod cli;
pub mod controller;
pub mod decky;
pub mod logplane;
pub mod manifest;
pub mod pki;
pub mod store;
pub mod syslog;
