//! The master's event database (its own SQLite file next to the control
//! store, so a flood of attacker events never contends with reconcilers).

use std::path::Path;

use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use super::Result;
use super::record::EventRecord;

/// Columns per inserted event; SQLite allows 32766 bound parameters.
const COLUMNS: usize = 15;
const ROWS_PER_INSERT: usize = 32766 / COLUMNS;

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

// SQLite integers are signed: store u64 ids/offsets bit-for-bit.
fn to_i64(v: u64) -> i64 {
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

    pub async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Inserts the events, moving their values into the statement (no copy
    /// per bound value: this is the listener's hot path).
    pub async fn insert_events(
        tx: &mut Transaction<'static, Sqlite>,
        events: Vec<NewEvent<'_>>,
    ) -> Result<()> {
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let chunk = events.by_ref().take(ROWS_PER_INSERT);
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO events (received_at, source_worker, file_id, offset, facility, severity, timestamp, \
                 hostname, app_name, msgid, src_ip, fields, msg, parse_error, raw) ",
            );
            q.push_values(chunk, |mut b, e| {
                let r = e.record;
                b.push_bind(e.received_at)
                    .push_bind(e.source_worker)
                    .push_bind(e.origin.map(|o| to_i64(o.0)))
                    .push_bind(e.origin.map(|o| to_i64(o.1)))
                    .push_bind(r.facility.map(i64::from))
                    .push_bind(r.severity.map(i64::from))
                    .push_bind(r.timestamp)
                    .push_bind(r.hostname)
                    .push_bind(r.app_name)
                    .push_bind(r.msgid)
                    .push_bind(r.src_ip)
                    .push_bind(r.fields)
                    .push_bind(r.msg)
                    .push_bind(r.parse_error)
                    .push_bind(e.raw);
            });
            q.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub async fn set_high_water(
        tx: &mut Transaction<'static, Sqlite>,
        worker: &str,
        file_id: u64,
        next_offset: u64,
        now: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO high_water (source_worker, file_id, next_offset, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (source_worker, file_id) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at",
        )
        .bind(worker)
        .bind(to_i64(file_id))
        .bind(to_i64(next_offset))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn set_sink_size(
        tx: &mut Transaction<'static, Sqlite>,
        path: &str,
        size: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sinks (path, committed_size) VALUES (?, ?) \
             ON CONFLICT (path) DO UPDATE SET committed_size = excluded.committed_size",
        )
        .bind(path)
        .bind(to_i64(size))
        .execute(&mut **tx)
        .await?;
        Ok(())
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
