//! The one way the SQLite store writes in a transaction:
//! [`SqliteStore::write`].
//!
//! ([`SqliteStore::read`] is the same for a multi-statement read, with a
//! deferred `BEGIN`.) It takes a pooled connection, begins with `BEGIN IMMEDIATE` (SQLite's
//! write lock up front, waited for under the busy timeout, rather than a
//! deferred transaction whose first read would later have to upgrade to a
//! write and could fail at once with `SQLITE_BUSY`), runs the body on the
//! connection and ends the transaction as the body says ([`Outcome`]):
//! commit, or roll back for a clean refusal.
//!
//! Why one helper: on SQLite a failed write (`SQLITE_FULL` above all, also
//! `SQLITE_IOERR`, `SQLITE_NOMEM`, a busy timeout) may make SQLite roll the
//! whole transaction back by itself. sqlx does not see that: its `ROLLBACK`
//! then fails and its count of open transactions on the connection stays at
//! one. Pooled again, such a connection turns the next `begin` into a
//! `SAVEPOINT`, whose rollback leaves a real transaction open: the
//! connection keeps SQLite's write lock and nothing written on it later is
//! ever committed. So a connection whose transaction met any error (or
//! whose write was cancelled, its future dropped) is closed instead of
//! pooled again; closing ends whatever transaction is left and releases
//! every lock, and the pool opens a fresh connection when one is needed. A
//! clean refusal (already exists, quota, not found, in use) whose rollback
//! succeeded keeps its connection. When the closed connection was the
//! pool's last one, SQLite checkpoints on close: on a full disk that
//! checkpoint may stop short, which is safe (the WAL keeps the data, and a
//! later checkpoint finishes it) but takes whatever space was freed first.
//!
//! It does not retry, and it does not decide what an error means for the
//! caller (see [`StoreError::is_storage_full`] and friends). Single
//! statements run on the pool directly (autocommit): SQLite ends their
//! implicit transaction itself and sqlx's bookkeeping has nothing to lose.

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Sqlite, SqliteConnection};

use super::SqliteStore;
use crate::StoreError;

/// How the body of a [`SqliteStore::write`] wants its transaction to end.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// Commit, then return the value.
    Commit(T),
    /// Roll back whatever the body wrote, then return the value (a clean
    /// "no": not found, in use, a reference that does not resolve).
    RollBack(T),
    /// Roll back, then fail with this refusal (already exists, quota).
    Refuse(StoreError),
}

/// A pooled connection that is closed when dropped unless the
/// transaction on it ended cleanly (`close` cleared).
struct Held {
    conn: PoolConnection<Sqlite>,
    close: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.close {
            self.conn.close_on_drop();
        }
    }
}

impl SqliteStore {
    /// Runs `body` in one `BEGIN IMMEDIATE` transaction on a connection of
    /// its own and ends it as the body's [`Outcome`] says. An error from
    /// the body, the `BEGIN` or the `COMMIT` is rolled back if SQLite still
    /// can, and the connection is closed, never pooled again; so is the
    /// connection of a write whose future is dropped before it ends.
    pub(crate) async fn write<T, F>(&self, body: F) -> Result<T, StoreError>
    where
        F: AsyncFnOnce(&mut SqliteConnection) -> Result<Outcome<T>, StoreError>,
    {
        self.transaction("BEGIN IMMEDIATE", body).await
    }

    /// [`SqliteStore::write`] for a body that only reads but needs one
    /// snapshot across statements: a deferred `BEGIN`, no write lock. A
    /// read can meet the same errors (`SQLITE_IOERR`, `SQLITE_NOMEM`) and
    /// the same automatic rollback, so its connection is closed likewise.
    pub(crate) async fn read<T, F>(&self, body: F) -> Result<T, StoreError>
    where
        F: AsyncFnOnce(&mut SqliteConnection) -> Result<Outcome<T>, StoreError>,
    {
        self.transaction("BEGIN", body).await
    }

    async fn transaction<T, F>(&self, begin: &'static str, body: F) -> Result<T, StoreError>
    where
        F: AsyncFnOnce(&mut SqliteConnection) -> Result<Outcome<T>, StoreError>,
    {
        let mut held = Held {
            conn: self.pool.acquire().await?,
            close: true,
        };
        let (result, clean) = transact(&mut held.conn, begin, body).await;
        held.close = !clean;
        result
    }
}

/// The transaction itself; `clean` is true when it ended with a
/// successful `COMMIT` or `ROLLBACK`, so the connection may be pooled again.
async fn transact<T, F>(
    conn: &mut SqliteConnection,
    begin: &'static str,
    body: F,
) -> (Result<T, StoreError>, bool)
where
    F: AsyncFnOnce(&mut SqliteConnection) -> Result<Outcome<T>, StoreError>,
{
    let mut tx = match conn.begin_with(begin).await {
        Ok(tx) => tx,
        Err(e) => return (Err(e.into()), false),
    };
    match body(&mut tx).await {
        Ok(Outcome::Commit(value)) => match tx.commit().await {
            Ok(()) => (Ok(value), true),
            Err(e) => (Err(e.into()), false),
        },
        // Nothing the body wrote is kept either way: a failed ROLLBACK
        // means SQLite ended the transaction already, or the connection is
        // closed, which ends it.
        Ok(Outcome::RollBack(value)) => {
            let clean = tx.rollback().await.is_ok();
            (Ok(value), clean)
        }
        Ok(Outcome::Refuse(refusal)) => {
            let clean = tx.rollback().await.is_ok();
            (Err(refusal), clean)
        }
        Err(e) => {
            // Best effort: the connection is closed whatever this says.
            let _rolled_back = tx.rollback().await;
            (Err(e), false)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::PoolSettings;

    /// A write dropped halfway (its request cancelled) keeps nothing and
    /// holds no lock: another store on the file writes at once, and the
    /// same one-connection store goes on writing.
    #[tokio::test]
    async fn a_write_dropped_halfway_keeps_nothing_and_holds_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let one = PoolSettings {
            max_connections: Some(1),
            acquire_timeout: None,
        };
        let s = SqliteStore::open(&url, &one).await.unwrap();
        s.migrate().await.unwrap();
        let (wrote, written) = tokio::sync::oneshot::channel::<()>();
        let halfway = s.write(async |conn| {
            sqlx::query("INSERT INTO console_sessions (id_hash, sealed, expires_at, created_at) VALUES ('half', x'00', 9, 't')")
                .execute(&mut *conn)
                .await?;
            let _ = wrote.send(());
            std::future::pending::<()>().await;
            Ok(Outcome::Commit(()))
        });
        tokio::select! {
            _ = halfway => panic!("the body never ends"),
            signal = written => signal.unwrap(),
        }

        let other = SqliteStore::open(&url, &PoolSettings::default())
            .await
            .unwrap();
        let session = crate::ConsoleSessionRecord {
            id_hash: "other".into(),
            sealed: vec![1],
            expires_at: 9,
            created_at: "t".into(),
        };
        other.add_console_session(&session, 0).await.unwrap();
        assert_eq!(other.find_console_session("half", 0).await.unwrap(), None);
        other.close().await;
        let again = crate::ConsoleSessionRecord {
            id_hash: "again".into(),
            ..session
        };
        s.add_console_session(&again, 0).await.unwrap();
        assert!(s.find_console_session("other", 0).await.unwrap().is_some());
    }
}
