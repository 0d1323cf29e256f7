//! SQLite implementation of [`crate::ConsoleSessionRepository`].

use sqlx::Row;

use super::{Outcome, SqliteStore};
use crate::StoreError;
use crate::console::ConsoleSessionRecord;

impl SqliteStore {
    pub async fn add_console_session(
        &self,
        s: &ConsoleSessionRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async |conn| {
            sqlx::query("DELETE FROM console_sessions WHERE expires_at <= ?")
                .bind(now)
                .execute(&mut *conn)
                .await?;
            let added = sqlx::query(
                "INSERT INTO console_sessions (id_hash, sealed, expires_at, created_at)
                 VALUES (?, ?, ?, ?) ON CONFLICT (id_hash) DO NOTHING",
            )
            .bind(&s.id_hash)
            .bind(&s.sealed)
            .bind(s.expires_at)
            .bind(&s.created_at)
            .execute(&mut *conn)
            .await?;
            if added.rows_affected() == 0 {
                let taken = StoreError::AlreadyExists("console session".into());
                return Ok(Outcome::Refuse(taken));
            }
            Ok(Outcome::Commit(()))
        })
        .await
    }

    pub async fn find_console_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<ConsoleSessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, sealed, expires_at, created_at FROM console_sessions
             WHERE id_hash = ? AND expires_at > ?",
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
        let done = sqlx::query("DELETE FROM console_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(hash: &str, expires_at: i64) -> ConsoleSessionRecord {
        ConsoleSessionRecord {
            id_hash: hash.into(),
            sealed: vec![1, 2, 3],
            expires_at,
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn sessions_are_found_until_they_expire_or_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = SqliteStore::open(&url, &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        store
            .add_console_session(&record("a", 200), 100)
            .await
            .unwrap();
        store
            .add_console_session(&record("old", 150), 100)
            .await
            .unwrap();
        let err = store.add_console_session(&record("a", 300), 100).await;
        assert!(matches!(err, Err(StoreError::AlreadyExists(_))), "{err:?}");
        assert_eq!(
            store.find_console_session("a", 100).await.unwrap(),
            Some(record("a", 200))
        );
        assert_eq!(store.find_console_session("a", 200).await.unwrap(), None);
        // A later insert sweeps the expired row away.
        store
            .add_console_session(&record("b", 400), 160)
            .await
            .unwrap();
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM console_sessions WHERE id_hash = 'old'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(left, 0);
        assert!(store.delete_console_session("b").await.unwrap());
        assert!(!store.delete_console_session("b").await.unwrap());
        assert_eq!(store.find_console_session("b", 0).await.unwrap(), None);
    }
}
