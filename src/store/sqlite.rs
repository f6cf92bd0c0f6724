//! The embedded store: objects, change feed, events and revocations in one
//! SQLite file, with Kubernetes write semantics from [`super::semantics`].

use std::path::Path;

use serde_json::Value;
use sqlx::{Row, SqliteConnection, SqlitePool};
use tokio::sync::watch;

use super::error::{Result, StoreError};
use super::selector::Selector;
use super::semantics::{self as sem, DeletePlan};
use crate::api::Kind;

/// Change-feed rows kept for watchers that lag; older ones force a relist.
const FEED_RETENTION: i64 = 100_000;

/// Handle to the embedded store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Latest committed resourceVersion, for in-process watchers (other
    /// processes writing the same file are seen by polling).
    latest: watch::Sender<i64>,
}

/// One entry of the change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub rv: i64,
    pub kind: Kind,
    pub name: String,
    pub op: ChangeOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    Added,
    Modified,
    /// Only `.status` changed (reconcilers usually ignore their own).
    Status,
    Deleted,
}

impl ChangeOp {
    fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Added => "ADDED",
            ChangeOp::Modified => "MODIFIED",
            ChangeOp::Status => "STATUS",
            ChangeOp::Deleted => "DELETED",
        }
    }
    fn parse(s: &str) -> ChangeOp {
        match s {
            "ADDED" => ChangeOp::Added,
            "DELETED" => ChangeOp::Deleted,
            "STATUS" => ChangeOp::Status,
            _ => ChangeOp::Modified,
        }
    }
}

/// Result of applying one manifest document (kubectl's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    Created,
    Configured,
    Unchanged,
}

impl ApplyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Configured => "configured",
            ApplyOutcome::Unchanged => "unchanged",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Gone now (dependents cascaded).
    Deleted,
    /// Marked; controllers are running its finalizers.
    Terminating,
    NotFound,
}

/// A Kubernetes-style event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i64,
    pub first_time: String,
    pub last_time: String,
}

/// A revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub fingerprint: String,
    pub subject: String,
    pub reason: String,
    pub revoked_at: String,
}

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    // RFC 4122 version 4, variant 1.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
}

impl Store {
    /// Opens (creating if needed) the store file and runs migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        let pool = super::pool::open_pool(path).await?;
        sqlx::migrate!("./migrations/store").run(&pool).await?;
        let store = Store {
            pool,
            latest: watch::channel(0).0,
        };
        let rv = store.current_rv().await?;
        store.latest.send_replace(rv);
        Ok(store)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Latest resourceVersion written to the file (by any process).
    pub async fn current_rv(&self) -> Result<i64> {
        let rv: Option<i64> = sqlx::query_scalar("SELECT MAX(rv) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(rv.unwrap_or(0))
    }

    /// Subscribe to in-process commits (the value is the latest rv).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.latest.subscribe()
    }

    fn committed(&self, rv: Option<i64>) {
        if let Some(rv) = rv {
            self.latest.send_if_modified(|cur| {
                if rv > *cur {
                    *cur = rv;
                    true
                } else {
                    false
                }
            });
        }
    }

    pub async fn get(&self, kind: Kind, name: &str) -> Result<Option<Value>> {
        let row: Option<String> =
            sqlx::query_scalar("SELECT body FROM objects WHERE kind = ? AND name = ?")
                .bind(kind.as_str())
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// All objects of a kind matching the selector, by name.
    pub async fn list(&self, kind: Kind, selector: &Selector) -> Result<Vec<Value>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT body FROM objects WHERE kind = ? ORDER BY name")
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for b in rows {
            let v: Value = serde_json::from_str(&b)?;
            if selector.is_empty() || selector.matches_json(&sem::labels_of(&v)) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Applies documents as ONE transaction: all land or none do. With
    /// `dry_run` the outcomes are computed and the transaction rolled back.
    pub async fn apply_all(
        &self,
        docs: &[(Kind, Value)],
        dry_run: bool,
    ) -> Result<Vec<ApplyOutcome>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_rfc3339();
        let mut outcomes = Vec::with_capacity(docs.len());
        let mut last = None;
        for (kind, doc) in docs {
            let mut doc = doc.clone();
            mark_applied(&mut doc);
            let name = sem::name_of(&doc).unwrap_or_default().to_string();
            match load(&mut tx, *kind, &name).await? {
                None => {
                    if let Some(rv) = sem::resource_version_of(&doc).filter(|rv| !rv.is_empty()) {
                        return Err(StoreError::Conflict {
                            kind: *kind,
                            name,
                            current: "(none: the object does not exist)".into(),
                            sent: rv.to_string(),
                        });
                    }
                    let obj = sem::plan_create(*kind, &doc, &new_uid(), &now)?;
                    last = Some(insert(&mut tx, *kind, obj).await?.0);
                    outcomes.push(ApplyOutcome::Created);
                }
                Some(stored) => match sem::plan_apply(*kind, &stored, &doc)? {
                    None => outcomes.push(ApplyOutcome::Unchanged),
                    Some(next) => {
                        last = Some(update(&mut tx, *kind, next).await?.0);
                        outcomes.push(ApplyOutcome::Configured);
                    }
                },
            }
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
            self.committed(last);
        }
        Ok(outcomes)
    }

    /// Creates a new object; fails if the name is taken.
    pub async fn create(&self, kind: Kind, obj: &Value) -> Result<Value> {
        let name = sem::name_of(obj).unwrap_or_default().to_string();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if load(&mut tx, kind, &name).await?.is_some() {
            return Err(StoreError::AlreadyExists { kind, name });
        }
        let created = sem::plan_create(kind, obj, &new_uid(), &now_rfc3339())?;
        let (rv, created) = insert(&mut tx, kind, created).await?;
        tx.commit().await?;
        self.committed(Some(rv));
        Ok(created)
    }

    /// Full update of metadata + spec (status kept). Conflict if the object's
    /// resourceVersion is set and stale. Removing the last finalizer of a
    /// terminating object deletes it.
    pub async fn replace(&self, kind: Kind, obj: &Value) -> Result<Value> {
        let name = sem::name_of(obj).unwrap_or_default().to_string();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let stored = load(&mut tx, kind, &name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind,
                name: name.clone(),
            })?;
        let Some(next) = sem::plan_replace(kind, &stored, obj)? else {
            return Ok(stored);
        };
        let (rv, out) = if sem::should_remove(&next) {
            let rv = remove_cascading(&mut tx, kind, &name, &now_rfc3339()).await?;
            (rv, next)
        } else {
            update(&mut tx, kind, next).await?
        };
        tx.commit().await?;
        self.committed(Some(rv));
        Ok(out)
    }

    /// Writes only `.status`.
    pub async fn replace_status(
        &self,
        kind: Kind,
        name: &str,
        status: Value,
        rv: Option<&str>,
    ) -> Result<Value> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let stored = load(&mut tx, kind, name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind,
                name: name.to_string(),
            })?;
        let Some(next) = sem::plan_status(kind, &stored, status, rv)? else {
            return Ok(stored);
        };
        let (rv, out) = write(&mut tx, kind, next, ChangeOp::Status).await?;
        tx.commit().await?;
        self.committed(Some(rv));
        Ok(out)
    }

    /// Deletes: marks when finalizers are pending, else removes and cascades
    /// to dependents (objects whose ownerReferences name it).
    pub async fn delete(&self, kind: Kind, name: &str) -> Result<DeleteOutcome> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_rfc3339();
        let Some(stored) = load(&mut tx, kind, name).await? else {
            return Ok(DeleteOutcome::NotFound);
        };
        let (rv, outcome) = match sem::plan_delete(&stored, &now) {
            DeletePlan::AlreadyDeleting => return Ok(DeleteOutcome::Terminating),
            DeletePlan::Mark(next) => (
                update(&mut tx, kind, next).await?.0,
                DeleteOutcome::Terminating,
            ),
            DeletePlan::Remove => (
                remove_cascading(&mut tx, kind, name, &now).await?,
                DeleteOutcome::Deleted,
            ),
        };
        tx.commit().await?;
        self.committed(Some(rv));
        Ok(outcome)
    }

    /// Changes after `rv`, oldest first, at most `limit`. `Expired` when the
    /// feed was compacted past `rv`: the watcher must relist.
    pub async fn changes_since(&self, rv: i64, limit: i64) -> Result<Vec<Change>> {
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(rv) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        if let Some(oldest) = oldest
            && rv < oldest - 1
        {
            return Err(StoreError::Expired(rv));
        }
        let rows =
            sqlx::query("SELECT rv, kind, name, op FROM changes WHERE rv > ? ORDER BY rv LIMIT ?")
                .bind(rv)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(Change {
                    rv: r.get(0),
                    kind: Kind::parse(r.get::<&str, _>(1)).ok()?,
                    name: r.get(2),
                    op: ChangeOp::parse(r.get::<&str, _>(3)),
                })
            })
            .collect())
    }

    /// Drops old change-feed rows (watchers behind them relist).
    pub async fn compact(&self) -> Result<u64> {
        let latest = self.current_rv().await?;
        let r = sqlx::query("DELETE FROM changes WHERE rv < ?")
            .bind(latest - FEED_RETENTION)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Records an event; a repeat of the object's last event bumps its count.
    pub async fn record_event(
        &self,
        kind: Kind,
        name: &str,
        type_: &str,
        reason: &str,
        message: &str,
    ) -> Result<()> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let last = sqlx::query("SELECT id, type, reason, message FROM events WHERE kind = ? AND name = ? ORDER BY id DESC LIMIT 1")
            .bind(kind.as_str())
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let repeat = last.as_ref().filter(|r| {
            r.get::<&str, _>(1) == type_
                && r.get::<&str, _>(2) == reason
                && r.get::<&str, _>(3) == message
        });
        match repeat {
            Some(r) => {
                sqlx::query("UPDATE events SET count = count + 1, last_time = ? WHERE id = ?")
                    .bind(&now)
                    .bind(r.get::<i64, _>(0))
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("INSERT INTO events (kind, name, type, reason, message, first_time, last_time) VALUES (?, ?, ?, ?, ?, ?, ?)")
                    .bind(kind.as_str())
                    .bind(name)
                    .bind(type_)
                    .bind(reason)
                    .bind(message)
                    .bind(&now)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The object's most recent events, oldest first.
    pub async fn events(&self, kind: Kind, name: &str, limit: i64) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT type, reason, message, count, first_time, last_time FROM \
             (SELECT * FROM events WHERE kind = ? AND name = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Event {
                type_: r.get(0),
                reason: r.get(1),
                message: r.get(2),
                count: r.get(3),
                first_time: r.get(4),
                last_time: r.get(5),
            })
            .collect())
    }

    /// Adds a certificate fingerprint to the revocation list (idempotent).
    pub async fn revoke(&self, fingerprint: &str, subject: &str, reason: &str) -> Result<()> {
        sqlx::query("INSERT OR IGNORE INTO revoked_certs (fingerprint, subject, reason, revoked_at) VALUES (?, ?, ?, ?)")
            .bind(fingerprint.to_ascii_lowercase())
            .bind(subject)
            .bind(reason)
            .bind(now_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn revocations(&self) -> Result<Vec<Revocation>> {
        let rows = sqlx::query("SELECT fingerprint, subject, reason, revoked_at FROM revoked_certs ORDER BY revoked_at")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Revocation {
                fingerprint: r.get(0),
                subject: r.get(1),
                reason: r.get(2),
                revoked_at: r.get(3),
            })
            .collect())
    }
}

fn mark_applied(doc: &mut Value) {
    if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        let ann = m
            .entry("annotations")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.insert(
                sem::APPLIED_ANNOTATION.into(),
                Value::String("apply".into()),
            );
        }
    }
}

async fn load(conn: &mut SqliteConnection, kind: Kind, name: &str) -> Result<Option<Value>> {
    let row: Option<String> =
        sqlx::query_scalar("SELECT body FROM objects WHERE kind = ? AND name = ?")
            .bind(kind.as_str())
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|b| serde_json::from_str(&b)).transpose()?)
}

async fn next_rv(conn: &mut SqliteConnection, kind: Kind, name: &str, op: ChangeOp) -> Result<i64> {
    let rv = sqlx::query("INSERT INTO changes (kind, name, op) VALUES (?, ?, ?)")
        .bind(kind.as_str())
        .bind(name)
        .bind(op.as_str())
        .execute(&mut *conn)
        .await?
        .last_insert_rowid();
    Ok(rv)
}

async fn insert(conn: &mut SqliteConnection, kind: Kind, mut obj: Value) -> Result<(i64, Value)> {
    let name = sem::name_of(&obj).unwrap_or_default().to_string();
    let rv = next_rv(conn, kind, &name, ChangeOp::Added).await?;
    sem::stamp_rv(&mut obj, rv);
    sqlx::query(
        "INSERT INTO objects (kind, name, uid, resource_version, body) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(kind.as_str())
    .bind(&name)
    .bind(sem::uid_of(&obj).unwrap_or_default())
    .bind(rv)
    .bind(serde_json::to_string(&obj)?)
    .execute(&mut *conn)
    .await?;
    sync_owners(conn, kind, &name, &obj).await?;
    Ok((rv, obj))
}

async fn update(conn: &mut SqliteConnection, kind: Kind, obj: Value) -> Result<(i64, Value)> {
    write(conn, kind, obj, ChangeOp::Modified).await
}

async fn write(
    conn: &mut SqliteConnection,
    kind: Kind,
    mut obj: Value,
    op: ChangeOp,
) -> Result<(i64, Value)> {
    let name = sem::name_of(&obj).unwrap_or_default().to_string();
    let rv = next_rv(conn, kind, &name, op).await?;
    sem::stamp_rv(&mut obj, rv);
    sqlx::query("UPDATE objects SET resource_version = ?, body = ? WHERE kind = ? AND name = ?")
        .bind(rv)
        .bind(serde_json::to_string(&obj)?)
        .bind(kind.as_str())
        .bind(&name)
        .execute(&mut *conn)
        .await?;
    sync_owners(conn, kind, &name, &obj).await?;
    Ok((rv, obj))
}

async fn sync_owners(
    conn: &mut SqliteConnection,
    kind: Kind,
    name: &str,
    obj: &Value,
) -> Result<()> {
    let owners = sem::owner_uids(obj);
    sqlx::query("DELETE FROM dependents WHERE kind = ? AND name = ?")
        .bind(kind.as_str())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    for owner in owners {
        sqlx::query("INSERT OR IGNORE INTO dependents (owner_uid, kind, name) VALUES (?, ?, ?)")
            .bind(owner)
            .bind(kind.as_str())
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Removes the object and cascades (background propagation): dependents with
/// finalizers are marked, the others removed, recursively. Returns the last rv.
async fn remove_cascading(
    conn: &mut SqliteConnection,
    kind: Kind,
    name: &str,
    now: &str,
) -> Result<i64> {
    let mut pending = vec![(kind, name.to_string(), true)];
    let mut last_rv = 0;
    while let Some((kind, name, is_root)) = pending.pop() {
        let Some(obj) = load(conn, kind, &name).await? else {
            continue;
        };
        let plan = if is_root {
            DeletePlan::Remove
        } else {
            sem::plan_delete(&obj, now)
        };
        match plan {
            DeletePlan::AlreadyDeleting => continue,
            DeletePlan::Mark(next) => {
                last_rv = update(conn, kind, next).await?.0;
                continue;
            }
            DeletePlan::Remove => {}
        }
        let uid = sem::uid_of(&obj).unwrap_or_default().to_string();
        last_rv = next_rv(conn, kind, &name, ChangeOp::Deleted).await?;
        sqlx::query("DELETE FROM objects WHERE kind = ? AND name = ?")
            .bind(kind.as_str())
            .bind(&name)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM dependents WHERE kind = ? AND name = ?")
            .bind(kind.as_str())
            .bind(&name)
            .execute(&mut *conn)
            .await?;
        let deps = sqlx::query("SELECT kind, name FROM dependents WHERE owner_uid = ?")
            .bind(&uid)
            .fetch_all(&mut *conn)
            .await?;
        for d in deps {
            if let Ok(k) = Kind::parse(d.get::<&str, _>(0)) {
                pending.push((k, d.get(1), false));
            }
        }
    }
    Ok(last_rv)
}
