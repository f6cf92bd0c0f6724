use crate::api::Kind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: Kind, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: Kind, name: String },
    #[error(
        "conflict on {kind} {name:?}: the object has been modified (resourceVersion {current}, you sent {sent}); read it again and retry"
    )]
    Conflict {
        kind: Kind,
        name: String,
        current: String,
        sent: String,
    },
    #[error("{kind} {name:?} is being deleted; wait until it is gone before re-creating it")]
    Terminating { kind: Kind, name: String },
    #[error("invalid object: {0}")]
    Invalid(String),
    #[error("the change feed no longer holds resourceVersion {0}; relist")]
    Expired(i64),
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored object is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
