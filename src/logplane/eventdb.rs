//! The master's event database (its own SQLite file next to the control
//! store, so a flood of attacker events never contends with reconcilers):
//! schema, start-up state and reads. The listener's inserts go through
//! [`super::event_writer`].

use std::path::Path;

use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::Result;
use super::record::EventRecord;

/// One line to store.
pub struct NewEvent<'a> {
    pub received_at: &'a str,
    pub source_worker: &'a str,
    pub origin: Option<(u64, u64)>,
    pub raw: Vec<u8>,
    pub record: EventRecord,
}

/// A stored event, as `decnet logs` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: i64,
    pub received_at: String,
    pub source_worker: String,
    pub timestamp: Option<String>,
    pub hostname: Option<String>,
    pub app_name: Option<String>,
    pub msgid: Option<String>,
    pub src_ip: Option<String>,
    pub fields: Option<String>,
    pub msg: Option<String>,
    pub parse_error: Option<String>,
    pub raw: Vec<u8>,
}

/// Filters of `decnet logs`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub worker: Option<String>,
    pub decky: Option<String>,
    pub service: Option<String>,
    /// RFC 3339; events received at or after it.
    pub since: Option<String>,
    pub after_id: i64,
    pub limit: i64,
}

/// Fixed-width UTC timestamps (microseconds) so stored times sort as text.
pub fn timestamp_text(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[derive(Clone)]
pub struct EventDb {
    pool: SqlitePool,
}

// SQLite integers are signed: u64 ids/offsets are stored bit-for-bit.
pub(super) fn to_i64(v: u64) -> i64 {
    v as i64
}
fn to_u64(v: i64) -> u64 {
    v as u64
}

impl EventDb {
    pub async fn open(path: &Path) -> Result<EventDb> {
        // Event floods write hundreds of MB: checkpoint the WAL (and fsync
        // the database) every 64 MiB instead of every 4 MiB.
        let pool = crate::store::open_pool_with(path, |o| {
            o.pragma("wal_autocheckpoint", "16384")
                .pragma("cache_size", "-32768")
        })
        .await?;
        sqlx::migrate!("./migrations/events").run(&pool).await?;
        Ok(EventDb { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn high_water_marks(&self) -> Result<Vec<((String, u64), u64)>> {
        let rows = sqlx::query("SELECT source_worker, file_id, next_offset FROM high_water")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ((r.get(0), to_u64(r.get(1))), to_u64(r.get(2))))
            .collect())
    }

    pub async fn sink_size(&self, path: &str) -> Result<Option<u64>> {
        let v: Option<i64> = sqlx::query_scalar("SELECT committed_size FROM sinks WHERE path = ?")
            .bind(path)
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.map(to_u64))
    }

    pub async fn count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn query(&self, f: &EventFilter) -> Result<Vec<StoredEvent>> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT id, received_at, source_worker, timestamp, hostname, app_name, msgid, src_ip, fields, msg, parse_error, raw \
             FROM events WHERE id > ",
        );
        q.push_bind(f.after_id);
        if let Some(w) = &f.worker {
            q.push(" AND source_worker = ").push_bind(w.clone());
        }
        if let Some(d) = &f.decky {
            q.push(" AND hostname = ").push_bind(d.clone());
        }
        if let Some(s) = &f.service {
            q.push(" AND app_name = ").push_bind(s.clone());
        }
        if let Some(t) = &f.since {
            q.push(" AND received_at >= ").push_bind(t.clone());
        }
        q.push(" ORDER BY id LIMIT ")
            .push_bind(if f.limit > 0 { f.limit } else { i64::MAX });
        Ok(q.build_query_as::<StoredEvent>()
            .fetch_all(&self.pool)
            .await?)
    }
}
