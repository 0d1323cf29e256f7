-- Stella service schema, version 5 (SQLite): Export Center jobs run by
-- `stella serve` (POST /exports). One row per job; the export's files live
-- under <data-dir>/exports/<tenant>/<id>/.
CREATE TABLE export_jobs (
    export_id       TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    profile         TEXT NOT NULL,
    request_json    TEXT NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'deleted')),
    bytes_done      INTEGER NOT NULL DEFAULT 0,
    bytes_total     INTEGER NOT NULL DEFAULT 0,
    entries_done    INTEGER NOT NULL DEFAULT 0,
    entries_total   INTEGER NOT NULL DEFAULT 0,
    manifest_digest TEXT,
    file_path       TEXT,
    file_size       INTEGER,
    file_sha256     TEXT,
    reason          TEXT NOT NULL DEFAULT '',
    verification_json TEXT,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    created_by      TEXT NOT NULL
);
CREATE INDEX export_jobs_by_tenant ON export_jobs (tenant_id, export_id);
CREATE INDEX export_jobs_by_status ON export_jobs (status);
