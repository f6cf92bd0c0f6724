//! Worker enrollment: imperative (`decnet swarm enroll --out-dir`) and one-shot bootstrap
//! tokens served by the master over HTTPS (`decnet swarm enroll --bootstrap`). See
//! `docs/enroll.md`.
//!
//! - [`workers`]: issuing the certificate and creating the Worker, both flows.
//! - [`token`], [`script`], [`pin`], [`tarball`]: pure parts (token format, the shell the
//!   worker runs, curl's key pin, the bundle tar).
//! - [`tokens`]: the `enroll_tokens` table with atomic one-shot claims.
//! - `server`: the HTTPS endpoint.

pub mod pin;
pub mod script;
mod server;
pub mod tarball;
pub mod token;
pub mod tokens;
pub mod workers;

use std::path::PathBuf;

pub use token::Token;
pub use workers::{
    Bootstrap, BootstrapOptions, Enrolled, FINGERPRINT_ANNOTATION, SwarmSettings, WorkerRequest,
    bootstrap, enroll, parse_label,
};

use crate::master::MasterTls;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(
        "worker {name:?} already exists; to enroll it again, decommission it first: \
         decnet swarm decommission --name {name}"
    )]
    AlreadyExists { name: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "no master address for the enrollment URL: apply a Swarm with spec.masterAddress, \
         or pass --master-address (and --enroll-port if not 8443)"
    )]
    NoMasterAddress,
    #[error("writing the status of Worker {name:?} failed: {source}; {cleanup}")]
    StatusWrite {
        name: String,
        #[source]
        source: Box<StoreError>,
        cleanup: String,
    },
    #[error("storing the enrollment token of Worker {name:?} failed: {source}; {cleanup}")]
    TokenWrite {
        name: String,
        #[source]
        source: Box<StoreError>,
        cleanup: String,
    },
    #[error(
        "cannot write the bundle of worker {name:?} to {dir}: {reason}; its certificate was \
         revoked and the Worker removed. Fix the directory and run the command again"
    )]
    BundleWrite {
        name: String,
        dir: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    #[error(transparent)]
    Master(#[from] crate::master::MasterError),
    #[error("enrollment endpoint: {0}")]
    Io(std::io::Error),
    #[error("background task failed: {0}")]
    Join(String),
}

/// Serves `/enroll/<token>.sh` and the bundle on `listener` until `shutdown`: plain HTTPS
/// with the master's certificate (no client certificate: workers have none yet).
pub async fn serve(
    listener: tokio::net::TcpListener,
    master: MasterTls,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), EnrollError> {
    server::serve(listener, master, shutdown).await
}
