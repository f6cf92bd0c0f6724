//! The embedded backend's state: Kubernetes object semantics on SQLite.

mod api;
mod error;
mod pool;
pub mod selector;
pub mod semantics;
mod sqlite;

pub use api::Api;
pub use error::{Result, StoreError};
pub use pool::{open_pool, open_pool_with};
pub use selector::{Selector, SelectorError};
pub use sqlite::{ApplyOutcome, Change, ChangeOp, DeleteOutcome, Event, Revocation, Store};

/// Where decnet keeps its state: `$DECNET_HOME`, else `~/.decnet`.
pub fn default_home() -> std::path::PathBuf {
    if let Some(h) = std::env::var_os("DECNET_HOME").filter(|h| !h.is_empty()) {
        return h.into();
    }
    std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
        .join(".decnet")
}

/// The store file inside a home directory.
pub fn db_path(home: &std::path::Path) -> std::path::PathBuf {
    home.join("decnet.db")
}
