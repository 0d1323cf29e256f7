-- Stella service schema, version 7 (Postgres): web console sessions, so a
-- signed-in operator stays signed in across a restart of `stella serve`
-- (and on any of several `stella serve` processes on one database).
--
-- A row holds no secret and no identity in the clear: `id_hash` is the
-- SHA-256 of the random 256-bit session id (the browser's cookie holds the
-- id; the database never sees it), and `sealed` is the session (access
-- token, CSRF token, subject, tenant, scopes) encrypted with AES-256-GCM
-- under a key derived from that id.
--
-- Operator data without row-level security, like `clients`: a session is
-- looked up by its id before its tenant is known, so no `app.tenant_id`
-- can be set for the lookup; the table has no tenant column to filter on
-- (the tenant is inside `sealed`), and a row is useless without the
-- browser's cookie. The service may read, add and delete rows, never
-- change one.
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
GRANT SELECT, INSERT, DELETE ON console_sessions TO stella_app;
