//! The forwarder's durable state: per shipped file, how far the master has
//! acknowledged. Resuming from the acknowledged offset (not the sent one) is
//! what makes a crash on either side lose nothing; the master drops the
//! resent overlap.

use std::collections::HashMap;
use std::path::Path;

use sqlx::{Row, SqlitePool};

use super::Result;
use super::tailer::{Resume, TailEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub dev: u64,
    pub inode: u64,
    pub acked: u64,
    pub final_size: Option<u64>,
}

pub struct ForwarderState {
    pool: SqlitePool,
    entries: HashMap<u64, Entry>,
    dirty: bool,
}

impl ForwarderState {
    pub async fn open(path: &Path) -> Result<ForwarderState> {
        let pool = crate::store::open_pool(path).await?;
        sqlx::migrate!("./migrations/forwarder").run(&pool).await?;
        let rows = sqlx::query("SELECT file_id, dev, inode, acked, final_size FROM files")
            .fetch_all(&pool)
            .await?;
        let entries = rows
            .into_iter()
            .map(|r| {
                (
                    r.get::<i64, _>(0) as u64,
                    Entry {
                        dev: r.get::<i64, _>(1) as u64,
                        inode: r.get::<i64, _>(2) as u64,
                        acked: r.get::<i64, _>(3) as u64,
                        final_size: r.get::<Option<i64>, _>(4).map(|v| v as u64),
                    },
                )
            })
            .collect();
        Ok(ForwarderState {
            pool,
            entries,
            dirty: false,
        })
    }

    /// Files to resume, from their acknowledged offsets.
    pub fn resume_points(&self) -> Vec<Resume> {
        self.entries
            .iter()
            .map(|(id, e)| Resume {
                file_id: *id,
                dev: e.dev,
                inode: e.inode,
                pos: e.acked,
            })
            .collect()
    }

    pub fn get(&self, file_id: u64) -> Option<Entry> {
        self.entries.get(&file_id).copied()
    }

    /// Records what the tailer reported. Returns true when the change must be
    /// persisted before any line of that file is sent (a newly opened file).
    pub fn apply_event(&mut self, ev: &TailEvent) -> bool {
        let mut urgent = false;
        match *ev {
            TailEvent::Opened {
                file_id,
                dev,
                inode,
                pos,
            } => {
                let e = self.entries.entry(file_id).or_insert_with(|| {
                    urgent = true;
                    Entry {
                        dev,
                        inode,
                        acked: pos,
                        final_size: None,
                    }
                });
                urgent |= e.dev != dev || e.inode != inode;
                e.dev = dev;
                e.inode = inode;
            }
            TailEvent::Finalized { file_id, size } => {
                if let Some(e) = self.entries.get_mut(&file_id) {
                    e.final_size = Some(size);
                }
            }
            TailEvent::Lost {
                file_id,
                missing_from,
            } => {
                tracing::error!(
                    file_id,
                    missing_from,
                    "a rotated log file disappeared before it was fully shipped"
                );
                self.entries.remove(&file_id);
            }
        }
        self.dirty = true;
        urgent
    }

    /// The master stored everything before `next_offset` of `file_id`.
    pub fn ack(&mut self, file_id: u64, next_offset: u64) {
        if let Some(e) = self.entries.get_mut(&file_id)
            && next_offset > e.acked
        {
            e.acked = next_offset;
            self.dirty = true;
        }
    }

    /// Persists the entries; finished files (rotated and fully acked) go.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.entries
            .retain(|_, e| e.final_size.is_none_or(|size| e.acked < size));
        let now = jiff::Timestamp::now().to_string();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM files").execute(&mut *tx).await?;
        for (id, e) in &self.entries {
            sqlx::query("INSERT INTO files (file_id, dev, inode, acked, final_size, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(*id as i64)
                .bind(e.dev as i64)
                .bind(e.inode as i64)
                .bind(e.acked as i64)
                .bind(e.final_size.map(|v| v as i64))
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.dirty = false;
        Ok(())
    }
}
