//! The listener's hot path into the event database: one SQLite connection,
//! owned by the writer thread, with cached prepared statements (rusqlite on
//! the same SQLite library sqlx links).
//!
//! Why not sqlx here: profiles of the log-plane benchmark showed sqlx's
//! per-value argument handling (owned copies of every value, a channel hop
//! to its connection thread, one huge multi-row statement per chunk) costing
//! more than SQLite itself. A prepared single-row INSERT stepped per event
//! inside one transaction is the fastest way into SQLite. Migrations, reads
//! and `decnet logs` stay on sqlx ([`super::eventdb::EventDb`]), which also
//! creates the schema before this connection opens.
//!
//! WAL checkpoints run on a thread of their own ([`Checkpointer`]): inline,
//! each one stalled the writer for a few hundred ms (copying the WAL into
//! the database and waiting for its fsync) while both cores had other work.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use super::eventdb::{NewEvent, to_i64};

/// A database failure of the writer, with the statement that failed.
#[derive(Debug, thiserror::Error)]
#[error("event database ({what}): {source}")]
pub struct WriteError {
    what: &'static str,
    #[source]
    source: rusqlite::Error,
}

fn ctx(what: &'static str) -> impl FnOnce(rusqlite::Error) -> WriteError {
    move |source| WriteError { what, source }
}

const INSERT_EVENT: &str = "INSERT INTO events (received_at, source_worker, file_id, offset, \
     facility, severity, timestamp, hostname, app_name, msgid, src_ip, fields, msg, parse_error, raw) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

const UPSERT_HIGH_WATER: &str = "INSERT INTO high_water (source_worker, file_id, next_offset, updated_at) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (source_worker, file_id) \
     DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at";

const UPSERT_SINK: &str = "INSERT INTO sinks (path, committed_size) VALUES (?1, ?2) \
     ON CONFLICT (path) DO UPDATE SET committed_size = excluded.committed_size";

/// What one commit stores, all or nothing.
pub struct Commit<'a> {
    pub events: &'a [NewEvent<'a>],
    /// ((worker, file id), next offset) per file with new lines.
    pub high_water: Vec<((&'a str, u64), u64)>,
    /// (path, committed size) of the listener's append-only files.
    pub sinks: Vec<(&'a str, u64)>,
    pub now: &'a str,
}

pub struct EventWriter {
    conn: Connection,
    _checkpointer: Checkpointer,
}

fn connect(path: &Path) -> Result<Connection, WriteError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(ctx("open"))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(ctx("busy timeout"))?;
    // Same settings as the sqlx pool: WAL, and NORMAL (a commit survives a
    // crash of the process; a power loss may lose the last commits, never
    // tear the database).
    for (name, value) in [
        ("journal_mode", "WAL"),
        ("synchronous", "NORMAL"),
        ("cache_size", "-32768"),
        // After a flood, give the disk back down to 64 MiB of WAL.
        ("journal_size_limit", "67108864"),
    ] {
        conn.pragma_update(None, name, value)
            .map_err(ctx("pragma"))?;
    }
    Ok(conn)
}

impl EventWriter {
    /// Opens the (already migrated) database for writing.
    pub fn open(path: &Path) -> Result<EventWriter, WriteError> {
        Self::open_with(path, CheckpointPolicy::default())
    }

    pub fn open_with(path: &Path, policy: CheckpointPolicy) -> Result<EventWriter, WriteError> {
        let conn = connect(path)?;
        conn.pragma_update(None, "wal_autocheckpoint", "0")
            .map_err(ctx("pragma"))?;
        Ok(EventWriter {
            conn,
            _checkpointer: Checkpointer::start(path.to_owned(), policy)?,
        })
    }

    /// Stores one commit in one transaction.
    pub fn store(&mut self, c: &Commit<'_>) -> Result<(), WriteError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(ctx("begin"))?;
        {
            let mut insert = tx
                .prepare_cached(INSERT_EVENT)
                .map_err(ctx("prepare insert"))?;
            for e in c.events {
                let r = &e.record;
                insert
                    .execute(params![
                        e.received_at,
                        e.source_worker,
                        e.origin.map(|o| to_i64(o.0)),
                        e.origin.map(|o| to_i64(o.1)),
                        r.facility,
                        r.severity,
                        r.timestamp,
                        r.hostname,
                        r.app_name,
                        r.msgid,
                        r.src_ip,
                        r.fields,
                        r.msg,
                        r.parse_error,
                        e.raw,
                    ])
                    .map_err(ctx("insert event"))?;
            }
            let mut hw = tx
                .prepare_cached(UPSERT_HIGH_WATER)
                .map_err(ctx("prepare high water"))?;
            for ((worker, file_id), next) in &c.high_water {
                hw.execute(params![worker, to_i64(*file_id), to_i64(*next), c.now])
                    .map_err(ctx("high water"))?;
            }
            let mut sink = tx
                .prepare_cached(UPSERT_SINK)
                .map_err(ctx("prepare sink"))?;
            for (path, size) in &c.sinks {
                sink.execute(params![path, to_i64(*size)])
                    .map_err(ctx("sink size"))?;
            }
        }
        tx.commit().map_err(ctx("commit"))
    }
}

/// When the checkpointer works.
#[derive(Clone, Debug)]
pub struct CheckpointPolicy {
    /// A passive checkpoint (never blocks the writer) this often.
    pub every: Duration,
    /// Safety net: a WAL longer than this many pages is checkpointed in
    /// RESTART mode, which holds the writer back until it is done. Normally
    /// the passive checkpoints catch up between commits and SQLite starts
    /// the WAL over by itself.
    pub restart_pages: i64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every: Duration::from_millis(250),
            // 1 GiB of 4 KiB pages.
            restart_pages: 262_144,
        }
    }
}

/// A thread with its own connection that checkpoints the WAL; stops (and
/// is joined) when dropped.
struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: PathBuf, policy: CheckpointPolicy) -> Result<Checkpointer, WriteError> {
        let conn = connect(&path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("event-checkpoint".into())
            .spawn(move || {
                let mut wait = policy.every;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    wait = match checkpoint(&conn, policy.restart_pages) {
                        // Commits landed meanwhile: catch up while they are
                        // few, so the WAL is soon fully copied and the next
                        // commit starts it over.
                        Ok((log, done)) if done < log => Duration::from_millis(5),
                        Ok(_) => policy.every,
                        Err(e) => {
                            tracing::warn!(db = %path.display(), error = %e, "WAL checkpoint failed; retrying");
                            policy.every
                        }
                    };
                }
            })
            .map_err(|e| WriteError {
                what: "start checkpointer",
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One checkpoint; returns the WAL's length in pages and how many of them
/// are in the database now.
fn checkpoint(conn: &Connection, restart_pages: i64) -> rusqlite::Result<(i64, i64)> {
    let run = |mode: &str| {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        })
    };
    let (log, done) = run("PASSIVE")?;
    if log > restart_pages {
        // The next commit starts the WAL over.
        return run("RESTART");
    }
    Ok((log, done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logplane::eventdb::EventDb;
    use crate::logplane::record::parse_line;

    #[tokio::test]
    async fn stores_events_marks_and_sinks_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let db = EventDb::open(&path).await.unwrap();
        let mut w = EventWriter::open(&path).unwrap();
        let raw = b"<134>1 2026-11-23T10:00:00Z web-01 ssh - login_attempt [meta@32473 src_ip=\"192.0.2.9\"] hi";
        let events: Vec<NewEvent> = (0..3u64)
            .map(|i| NewEvent {
                received_at: "2026-11-23T10:00:01.000000Z",
                source_worker: "w1",
                origin: Some((7, i * 100)),
                raw: raw.to_vec(),
                record: parse_line(raw),
            })
            .collect();
        w.store(&Commit {
            events: &events,
            high_water: vec![(("w1", 7), 300)],
            sinks: vec![("/x/master.log", 123)],
            now: "2026-11-23T10:00:01.000000Z",
        })
        .unwrap();
        assert_eq!(db.count().await.unwrap(), 3);
        assert_eq!(
            db.high_water_marks().await.unwrap(),
            vec![(("w1".to_owned(), 7), 300)]
        );
        assert_eq!(db.sink_size("/x/master.log").await.unwrap(), Some(123));
        let stored = db.query(&Default::default()).await.unwrap();
        assert_eq!(stored[0].hostname.as_deref(), Some("web-01"));
        assert_eq!(stored[0].src_ip.as_deref(), Some("192.0.2.9"));
        assert_eq!(stored[0].raw, raw.to_vec());
        // u64 offsets beyond i64 survive bit-for-bit.
        w.store(&Commit {
            events: &[],
            high_water: vec![(("w1", u64::MAX), u64::MAX - 1)],
            sinks: vec![],
            now: "t",
        })
        .unwrap();
        assert!(
            db.high_water_marks()
                .await
                .unwrap()
                .contains(&(("w1".to_owned(), u64::MAX), u64::MAX - 1))
        );
    }

    #[tokio::test]
    async fn the_checkpointer_moves_the_wal_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let db = EventDb::open(&path).await.unwrap();
        db.pool().close().await;
        let policy = CheckpointPolicy {
            every: Duration::from_millis(20),
            restart_pages: 64,
        };
        let mut w = EventWriter::open_with(&path, policy).unwrap();
        let raw = vec![b'x'; 2000];
        let events: Vec<NewEvent> = (0..50)
            .map(|_| NewEvent {
                received_at: "t",
                source_worker: "w1",
                origin: None,
                raw: raw.clone(),
                record: parse_line(&raw),
            })
            .collect();
        // ~400 pages of events, well past the restart threshold.
        for _ in 0..4 {
            w.store(&Commit {
                events: &events,
                high_water: vec![],
                sinks: vec![],
                now: "t",
            })
            .unwrap();
        }
        // The writer itself never checkpoints (and nothing else touches the
        // file): the database file grows only when the thread copies the
        // WAL into it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() < 200 * 2000 {
            assert!(std::time::Instant::now() < deadline, "never checkpointed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let probe = connect(&path).unwrap();
        drop(w);
        let n: i64 = probe
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 200);
    }

    #[tokio::test]
    async fn a_failed_commit_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let db = EventDb::open(&path).await.unwrap();
        let mut w = EventWriter::open(&path).unwrap();
        // Another connection holds the write lock past the busy timeout.
        w.conn.busy_timeout(Duration::from_millis(50)).unwrap();
        let mut blocker = db.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO sinks (path, committed_size) VALUES ('b', 1)")
            .execute(&mut *blocker)
            .await
            .unwrap();
        let raw = b"not syslog";
        let events = [NewEvent {
            received_at: "t",
            source_worker: "w1",
            origin: None,
            raw: raw.to_vec(),
            record: parse_line(raw),
        }];
        let err = w
            .store(&Commit {
                events: &events,
                high_water: vec![],
                sinks: vec![],
                now: "t",
            })
            .unwrap_err();
        assert!(err.to_string().contains("event database (begin)"), "{err}");
        blocker.rollback().await.unwrap();
        assert_eq!(db.count().await.unwrap(), 0);
    }
}
