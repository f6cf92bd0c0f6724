//! The `enroll_tokens` table (migration `0002_enroll_tokens.sql`).
//!
//! Every claim is ONE `UPDATE … WHERE <all conditions> RETURNING` inside a `BEGIN IMMEDIATE`
//! transaction: SQLite serialises writers, so of two concurrent fetches of the same token
//! exactly one sees its row updated and the other gets nothing (404).

use sqlx::{Row, SqlitePool};

use super::tarball::BundlePems;
use crate::store::StoreError;

/// A new token row.
pub struct NewToken<'a> {
    pub token_sha256: &'a str,
    pub worker: &'a str,
    pub fingerprint: &'a str,
    pub pems: &'a BundlePems,
    pub now: i64,
    pub expires_at: i64,
}

/// What a successful bundle claim hands over (the row no longer holds it).
pub struct ClaimedBundle {
    pub worker: String,
    pub fingerprint: String,
    pub pems: BundlePems,
}

/// Typed access to the token table, on the store's pool.
#[derive(Clone)]
pub struct TokenTable {
    pool: SqlitePool,
}

impl TokenTable {
    pub fn new(pool: SqlitePool) -> Self {
        TokenTable { pool }
    }

    pub async fn insert(&self, t: &NewToken<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO enroll_tokens (token_sha256, worker, fingerprint, ca_pem, cert_pem, key_pem, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.token_sha256)
        .bind(t.worker)
        .bind(t.fingerprint)
        .bind(&t.pems.ca_pem)
        .bind(&t.pems.cert_pem)
        .bind(&t.pems.key_pem)
        .bind(t.now)
        .bind(t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims the script fetch: only for a live token whose script was never fetched. Records
    /// the caller's address (the bundle may then only be fetched from there). Returns the worker.
    pub async fn claim_script(
        &self,
        token_sha256: &str,
        source: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let worker: Option<String> = sqlx::query_scalar(
            "UPDATE enroll_tokens SET script_fetched_at = ?, source_address = ? \
             WHERE token_sha256 = ? AND script_fetched_at IS NULL AND bundle_fetched_at IS NULL \
             AND key_pem IS NOT NULL AND expires_at > ? RETURNING worker",
        )
        .bind(now)
        .bind(source)
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(worker)
    }

    /// Claims the bundle: only once, only after the script, only from the script's address,
    /// only before expiry. The same transaction forgets the key material, so once this commits
    /// the master no longer holds the worker's private key.
    pub async fn claim_bundle(
        &self,
        token_sha256: &str,
        source: &str,
        now: i64,
    ) -> Result<Option<ClaimedBundle>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // RETURNING reports the row after the update: the PEMs are cleared in a second
        // statement of the same transaction, not in this one.
        let row = sqlx::query(
            "UPDATE enroll_tokens SET bundle_fetched_at = ? \
             WHERE token_sha256 = ? AND script_fetched_at IS NOT NULL AND bundle_fetched_at IS NULL \
             AND source_address = ? AND key_pem IS NOT NULL AND expires_at > ? \
             RETURNING worker, fingerprint, ca_pem, cert_pem, key_pem",
        )
        .bind(now)
        .bind(token_sha256)
        .bind(source)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let claimed = ClaimedBundle {
            worker: row.try_get(0)?,
            fingerprint: row.try_get(1)?,
            pems: BundlePems {
                ca_pem: row.try_get(2)?,
                cert_pem: row.try_get(3)?,
                key_pem: row.try_get(4)?,
            },
        };
        sqlx::query(
            "UPDATE enroll_tokens SET ca_pem = NULL, cert_pem = NULL, key_pem = NULL \
             WHERE token_sha256 = ?",
        )
        .bind(token_sha256)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(claimed))
    }

    /// Forgets the key material of every expired, unserved token; returns their workers.
    pub async fn purge_expired(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let workers: Vec<String> = sqlx::query_scalar(
            "UPDATE enroll_tokens SET ca_pem = NULL, cert_pem = NULL, key_pem = NULL \
             WHERE expires_at <= ? AND key_pem IS NOT NULL RETURNING worker",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(workers)
    }

    /// Drops every token row of `worker` (rollback of a failed bootstrap, decommission).
    pub async fn delete_for_worker(&self, worker: &str) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM enroll_tokens WHERE worker = ?")
            .bind(worker)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
