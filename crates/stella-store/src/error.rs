//! Storage errors. Messages name what went wrong without echoing secrets
//! or payloads.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("unsupported database URL scheme `{0}` (supported: sqlite:)")]
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
    #[error("`{0}` already exists")]
    AlreadyExists(String),
    #[error("the tenant's artifact quota would be exceeded")]
    QuotaExceeded,
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
