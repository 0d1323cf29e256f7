//! Storage errors. Messages name what went wrong without echoing secrets
//! or payloads.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("unsupported database URL scheme `{0}` (supported: sqlite:, postgres:)")]
    UnsupportedDatabase(String),
    #[error(
        "the database schema is version {found}, newer than this stella supports ({supported}); \
         use a newer stella or another database"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(
        "the database schema is version {found}, older than this stella needs ({supported}); run `stella serve migrate`"
    )]
    SchemaTooOld { found: i64, supported: i64 },
    #[error(
        "the database role `{role}` {why}, so row-level security would not bind it; \
         connect the service as a member of `stella_app` that owns nothing (see docs/service.md)"
    )]
    UnsafeServiceRole { role: String, why: String },
    #[error("`{0}` already exists")]
    AlreadyExists(String),
    #[error("the tenant's artifact quota would be exceeded")]
    QuotaExceeded,
    #[error("reading the payload to store failed: {0}")]
    PayloadRead(#[source] std::io::Error),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True when the database ran out of space (Postgres `53100
    /// disk_full`, SQLite `SQLITE_FULL`); the write was rolled back.
    pub fn is_storage_full(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            pg.code() == "53100"
        } else if let Some(lite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
            let code = sqlx::error::DatabaseError::code(lite).and_then(|c| c.parse::<i32>().ok());
            code.is_some_and(|c| c & 0xff == 13)
        } else {
            false
        }
    }

    /// True when Postgres refused text it cannot store (a NUL character:
    /// `22021`, or a `\u0000` escape in JSON: `22P05`). The request's
    /// input is at fault, not the service; nothing was written.
    pub fn is_unstorable_text(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.code(), "22021" | "22P05"))
    }

    /// True when the database cannot be reached or went away (connection
    /// refused or lost, pool exhausted or closed, server shutting down):
    /// the service answers 503 and may succeed on retry. Other errors are
    /// bugs or bad data.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    // 08: connection exception; 57P: operator intervention
                    // (shutdown, crash); 53: insufficient resources (out of
                    // memory, too many connections; disk full is
                    // `is_storage_full`).
                    let code = pg.code();
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || (code.starts_with("53") && code != "53100")
                } else if let Some(lite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                    // Primary result codes BUSY (5), IOERR (10), FULL (13).
                    let code =
                        sqlx::error::DatabaseError::code(lite).and_then(|c| c.parse::<i32>().ok());
                    code.is_some_and(|c| matches!(c & 0xff, 5 | 10 | 13))
                } else {
                    false
                }
            }
            _ => false,
        }
    }
}
