//! Web console sessions (`stella serve`'s `/console/`): what survives a
//! restart. Operator data, not tenant-scoped: a session is found by the
//! hash of its id before anything else is known about it.
//!
//! This module stores opaque rows only: hashing the session id and
//! sealing the session (encrypting its token) are the console's job, so
//! the database never holds a session id or a token in the clear.

use std::future::Future;

use crate::StoreError;

/// One stored console session.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    /// Lowercase hex SHA-256 of the session id (never the id itself).
    pub id_hash: String,
    /// The session, encrypted by the console under a key only the
    /// browser's cookie can give.
    pub sealed: Vec<u8>,
    /// Unix seconds; the row is dead after this.
    pub expires_at: i64,
    /// RFC 3339, when the session started.
    pub created_at: String,
}

impl std::fmt::Debug for ConsoleSessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSessionRecord")
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Console sessions by id hash.
pub trait ConsoleSessionRepository {
    /// Stores a new session (an existing row with the same hash is kept:
    /// ids are random, a clash is refused with `AlreadyExists`) and drops
    /// every session expired at `now`.
    fn add_console_session(
        &self,
        session: &ConsoleSessionRecord,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The session with this id hash unless it expired at `now`.
    fn find_console_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<ConsoleSessionRecord>, StoreError>> + Send;
    /// Ends a session (sign-out); false if there was none.
    fn delete_console_session(
        &self,
        id_hash: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
