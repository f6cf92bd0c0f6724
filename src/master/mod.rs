//! The master's own state beyond the store: its TLS identity (CA, leaf,
//! live revocation list) and the worker credentials it issues.

mod credentials;
mod tls;

pub use credentials::{issue_worker_bundle, worker_sans};
pub use tls::MasterTls;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    #[error("background task failed: {0}")]
    Join(String),
}
