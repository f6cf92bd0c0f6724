use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::error::{Result, StoreError};

/// Opens a SQLite file the way every decnet database wants it: created if
/// missing (with its directory), WAL, a busy timeout so concurrent writers
/// queue instead of failing. Shared by the control store, the master's event
/// database and the forwarder's state.
pub async fn open_pool(path: &Path) -> Result<SqlitePool> {
    open_pool_with(path, |o| o).await
}

/// [`open_pool`] with extra connection options (e.g. pragmas of a
/// write-heavy database).
pub async fn open_pool_with(
    path: &Path,
    tune: impl FnOnce(SqliteConnectOptions) -> SqliteConnectOptions,
) -> Result<SqlitePool> {
    let fail = |source: sqlx::Error| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| fail(sqlx::Error::Io(e)))?;
    }
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(fail)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let opts = tune(opts);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .map_err(fail)
}
