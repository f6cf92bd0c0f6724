//! The collector's single writer: appends whole lines to the local log file
//! (so lines of different containers never interleave) and keeps the
//! per-container cursors in SQLite, exactly once across crashes.
//!
//! Per batch: (1) journal the batch's file range and resulting cursors,
//! (2) append and fsync, (3) store the cursors and clear the journal. A crash
//! between (1) and (3) is settled at start-up by the file's length
//! ([`recover`]), so a line is never written twice nor skipped.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sqlx::{Row, SqlitePool};
use tokio::sync::mpsc;

use super::cursor::{Cursor, Recovery, Tracker, recover};
use crate::logplane::{LogError, Result};

/// What followers send to the writer.
#[derive(Debug)]
pub enum Msg {
    Line {
        container: Arc<str>,
        name: Arc<str>,
        session: u64,
        ts: i64,
        line: Vec<u8>,
    },
    /// The container is gone and its follower has ended: drop its cursor.
    Forget { container: Arc<str> },
}

/// Committed cursors, readable by the supervisor (the `since` of a new follow).
pub type Cursors = Arc<Mutex<HashMap<String, Cursor>>>;

#[derive(serde::Serialize, serde::Deserialize)]
struct JournalCursor {
    id: String,
    name: String,
    ts: i64,
    n: u32,
}

pub struct Writer {
    pool: SqlitePool,
    path: PathBuf,
    file: File,
    len: u64,
    trackers: HashMap<Arc<str>, Tracker>,
    names: HashMap<Arc<str>, Arc<str>>,
    shared: Cursors,
    /// Cursors of appended lines not yet stored, and containers to forget.
    pending: (Vec<JournalCursor>, Vec<Arc<str>>),
}

fn file_err(path: &Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |source| LogError::File {
        path: path.display().to_string(),
        source,
    }
}

impl Writer {
    /// Opens the state and the log file, settling a batch interrupted by a crash.
    pub async fn open(log_path: &Path, state_db: &Path) -> Result<Writer> {
        let pool = crate::store::open_pool(state_db).await?;
        sqlx::migrate!("./migrations/collector").run(&pool).await?;
        if let Some(dir) = log_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(file_err(dir))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(file_err(log_path))?;
        let mut len = file.metadata().map_err(file_err(log_path))?.len();

        let journal = sqlx::query("SELECT start, end, cursors FROM journal WHERE id = 1")
            .fetch_optional(&pool)
            .await?;
        if let Some(row) = journal {
            let (start, end): (i64, i64) = (row.get(0), row.get(1));
            let cursors: Vec<JournalCursor> = serde_json::from_str(row.get::<&str, _>(2))
                .map_err(|e| LogError::Protocol(format!("collector journal is corrupt: {e}")))?;
            let decision = recover(len, start as u64, end as u64);
            tracing::warn!(
                ?decision,
                start,
                end,
                file_len = len,
                "settling a batch interrupted by a crash"
            );
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            match decision {
                Recovery::Adopt => {
                    for c in &cursors {
                        upsert(&mut tx, &c.id, &c.name, Cursor { ts: c.ts, n: c.n }).await?;
                    }
                }
                Recovery::Discard => {}
                Recovery::Truncate(to) => {
                    file.set_len(to).map_err(file_err(log_path))?;
                    file.sync_data().map_err(file_err(log_path))?;
                    len = to;
                }
            }
            sqlx::query("DELETE FROM journal").execute(&mut *tx).await?;
            tx.commit().await?;
        }

        let rows = sqlx::query("SELECT container_id, name, ts_nanos, n_at_ts FROM cursors")
            .fetch_all(&pool)
            .await?;
        let mut trackers = HashMap::new();
        let mut names = HashMap::new();
        let mut shared = HashMap::new();
        for r in rows {
            let id: Arc<str> = Arc::from(r.get::<&str, _>(0));
            let cursor = Cursor {
                ts: r.get(2),
                n: r.get::<i64, _>(3).clamp(0, u32::MAX as i64) as u32,
            };
            shared.insert(id.to_string(), cursor);
            names.insert(id.clone(), Arc::from(r.get::<&str, _>(1)));
            trackers.insert(id, Tracker::new(cursor));
        }
        Ok(Writer {
            pool,
            path: log_path.to_path_buf(),
            file,
            len,
            trackers,
            names,
            shared: Arc::new(Mutex::new(shared)),
            pending: Default::default(),
        })
    }

    pub fn cursors(&self) -> Cursors {
        self.shared.clone()
    }

    /// Container ids that have a cursor (followed at some point).
    pub fn known(&self) -> Vec<String> {
        self.trackers.keys().map(|k| k.to_string()).collect()
    }

    /// Runs until every sender is gone, committing what it received.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>) -> Result<()> {
        let mut msgs = Vec::with_capacity(1024);
        while rx.recv_many(&mut msgs, 1024).await > 0 {
            // Retry failures: the followers wait on us anyway, and dropping
            // a batch would lose lines.
            let mut backoff = Retry::default();
            while let Err(e) = self.append(&msgs).await {
                backoff.wait("appending collected lines", &e).await;
            }
            msgs.clear();
            let mut backoff = Retry::default();
            while let Err(e) = self.persist().await {
                backoff.wait("saving collector cursors", &e).await;
            }
        }
        Ok(())
    }

    /// Judges the lines and appends the new ones. On error nothing changed
    /// (the batch can be retried as is).
    async fn append(&mut self, msgs: &[Msg]) -> Result<()> {
        let mut staged: HashMap<Arc<str>, Tracker> = HashMap::new();
        let mut forget = Vec::new();
        let mut buf = Vec::new();
        for m in msgs {
            match m {
                Msg::Line {
                    container,
                    name,
                    session,
                    ts,
                    line,
                } => {
                    let t = staged.entry(container.clone()).or_insert_with(|| {
                        self.trackers.get(container).cloned().unwrap_or_default()
                    });
                    if t.admit(*session, *ts) {
                        buf.extend_from_slice(line);
                        buf.push(b'\n');
                    }
                    self.names.insert(container.clone(), name.clone());
                }
                Msg::Forget { container } => {
                    staged.remove(container);
                    forget.push(container.clone());
                }
            }
        }
        let changed: Vec<JournalCursor> = staged
            .iter()
            .filter(|(id, t)| {
                self.trackers
                    .get(*id)
                    .is_none_or(|old| old.cursor != t.cursor)
            })
            .map(|(id, t)| JournalCursor {
                id: id.to_string(),
                name: self
                    .names
                    .get(id)
                    .map_or_else(String::new, |n| n.to_string()),
                ts: t.cursor.ts,
                n: t.cursor.n,
            })
            .collect();

        if !buf.is_empty() {
            let (start, end) = (self.len, self.len + buf.len() as u64);
            let json =
                serde_json::to_string(&changed).map_err(|e| LogError::Protocol(e.to_string()))?;
            sqlx::query(
                "INSERT OR REPLACE INTO journal (id, start, end, cursors) VALUES (1, ?, ?, ?)",
            )
            .bind(start as i64)
            .bind(end as i64)
            .bind(json)
            .execute(&self.pool)
            .await?;
            // One write call: a killed process leaves all of it or none.
            if let Err(e) = self
                .file
                .write_all(&buf)
                .and_then(|_| self.file.sync_data())
            {
                let _ = self.file.set_len(start);
                // If this fails too, the journal's range is past the file's
                // end and start-up discards it: still correct.
                let _ = sqlx::query("DELETE FROM journal").execute(&self.pool).await;
                return Err(file_err(&self.path)(e));
            }
            self.len = end;
        }
        // The lines are in the file: from now on they count as written, even
        // if saving the cursors fails (the journal covers a crash).
        {
            let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            for (id, t) in staged {
                shared.insert(id.to_string(), t.cursor);
                self.trackers.insert(id, t);
            }
            for id in &forget {
                shared.remove(id.as_ref());
                self.trackers.remove(id);
                self.names.remove(id);
            }
        }
        self.pending.0.extend(changed);
        self.pending.1.extend(forget);
        Ok(())
    }

    /// Stores the cursors of the appended batch and clears the journal.
    async fn persist(&mut self) -> Result<()> {
        let (changed, forget) = &self.pending;
        if changed.is_empty() && forget.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for c in changed {
            upsert(&mut tx, &c.id, &c.name, Cursor { ts: c.ts, n: c.n }).await?;
        }
        for id in forget {
            sqlx::query("DELETE FROM cursors WHERE container_id = ?")
                .bind(id.as_ref())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM journal").execute(&mut *tx).await?;
        tx.commit().await?;
        self.pending = Default::default();
        Ok(())
    }
}

/// Growing pause between retries of a failed write.
struct Retry(std::time::Duration);

impl Default for Retry {
    fn default() -> Self {
        Retry(std::time::Duration::from_millis(200))
    }
}

impl Retry {
    async fn wait(&mut self, what: &str, e: &LogError) {
        tracing::error!(error = %e, "{what} failed; retrying");
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(std::time::Duration::from_secs(10));
    }
}

async fn upsert(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    id: &str,
    name: &str,
    c: Cursor,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cursors (container_id, name, ts_nanos, n_at_ts, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (container_id) DO UPDATE SET name = excluded.name, ts_nanos = excluded.ts_nanos, \
         n_at_ts = excluded.n_at_ts, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(name)
    .bind(c.ts)
    .bind(i64::from(c.n))
    .bind(jiff::Timestamp::now().to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
