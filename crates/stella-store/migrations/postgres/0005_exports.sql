-- Stella service schema, version 5 (Postgres): Export Center jobs run by
-- `stella serve` (POST /exports). A tenant table: row-level security
-- ENABLED and FORCED with the policy on app.tenant_id (see 0001), and only
-- the privileges the service needs granted to stella_app.
CREATE TABLE export_jobs (
    export_id       UUID PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    profile         TEXT NOT NULL,
    request_json    TEXT NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'deleted')),
    bytes_done      BIGINT NOT NULL DEFAULT 0,
    bytes_total     BIGINT NOT NULL DEFAULT 0,
    entries_done    BIGINT NOT NULL DEFAULT 0,
    entries_total   BIGINT NOT NULL DEFAULT 0,
    manifest_digest TEXT,
    file_path       TEXT,
    file_size       BIGINT,
    file_sha256     TEXT,
    reason          TEXT NOT NULL DEFAULT '',
    verification_json TEXT,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    created_by      TEXT NOT NULL
);
CREATE INDEX export_jobs_by_tenant ON export_jobs (tenant_id, export_id);
ALTER TABLE export_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE export_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON export_jobs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON export_jobs TO stella_app;
