//! Postgres implementation of [`crate::ConsoleSessionRepository`]. The
//! table has no row-level security (see migration 0007): sessions are
//! found by id hash before their tenant is known.

use sqlx::Row;

use super::PostgresStore;
use crate::StoreError;
use crate::console::ConsoleSessionRecord;

impl PostgresStore {
    pub async fn add_console_session(
        &self,
        s: &ConsoleSessionRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let added = sqlx::query(
            "INSERT INTO console_sessions (id_hash, sealed, expires_at, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (id_hash) DO NOTHING",
        )
        .bind(&s.id_hash)
        .bind(&s.sealed)
        .bind(s.expires_at)
        .bind(&s.created_at)
        .execute(&mut *tx)
        .await?;
        if added.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists("console session".into()));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn find_console_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<ConsoleSessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, sealed, expires_at, created_at FROM console_sessions
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ConsoleSessionRecord {
                id_hash: r.try_get("id_hash")?,
                sealed: r.try_get("sealed")?,
                expires_at: r.try_get("expires_at")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    pub async fn delete_console_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
