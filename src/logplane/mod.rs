//! The log plane: decky events from workers to the master, exactly once.
//!
//! worker: `Tailer` follows the local log file (rotation-aware) → `forwarder`
//! ships each line in an RFC 5425 frame with its origin (file id, offset) over
//! mTLS, and resumes from what the master acknowledged.
//! worker: `collector` appends every decky container's stdout lines to that
//! local file first (one writer, per-container cursors, exactly once).
//! master: `listener` admits only agent certificates, stamps the worker from
//! the peer CN, and a single writer stores each batch — forensic file, JSON
//! lines, events and per-(worker, file) high-water marks — committing them in
//! one SQLite transaction before acknowledging. Lines at or below the
//! high-water mark are duplicates and dropped, so resending is always safe.

pub mod ack;
pub mod collector;
pub mod dedup;
pub mod event_writer;
pub mod eventdb;
pub mod forwarder;
pub mod fwstate;
pub mod listener;
pub mod record;
pub mod tailer;

/// Errors of the log plane.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Write(#[from] event_writer::WriteError),
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("{0}")]
    Protocol(String),
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
