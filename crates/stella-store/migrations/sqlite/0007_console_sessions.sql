-- Stella service schema, version 7 (SQLite): web console sessions, so a
-- signed-in operator stays signed in across a restart of `stella serve`.
--
-- A row holds no secret and no identity in the clear: `id_hash` is the
-- SHA-256 of the random 256-bit session id (the browser's cookie holds the
-- id; the database never sees it), and `sealed` is the session (access
-- token, CSRF token, subject, tenant, scopes) encrypted with AES-256-GCM
-- under a key derived from that id. A copy of the table without the
-- browser's cookie opens no session. Not tenant-scoped: a session is found
-- by its id before its tenant is known (and the tenant is inside `sealed`).
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
