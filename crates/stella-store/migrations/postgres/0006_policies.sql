-- Stella service schema, version 6 (Postgres): policy revisions per tenant
-- (the canonical JSON of each imported policy, at most one active per
-- tenant) and the public halves of the tenant's report-signing keys (the
-- private halves are files under the data directory, like the token keys).
-- Both are tenant tables: row-level security ENABLED and FORCED.

CREATE TABLE policy_revisions (
    tenant_id     TEXT NOT NULL,
    revision_id   TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    canonical     BYTEA NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (tenant_id, revision_id)
);
-- Exactly one active revision per tenant (once one is activated).
CREATE UNIQUE INDEX policy_revisions_one_active
    ON policy_revisions (tenant_id) WHERE active;
ALTER TABLE policy_revisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE policy_revisions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON policy_revisions
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON policy_revisions TO stella_app;

CREATE TABLE report_keys (
    tenant_id  TEXT NOT NULL,
    kid        TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT,
    PRIMARY KEY (tenant_id, kid)
);
ALTER TABLE report_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE report_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON report_keys
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON report_keys TO stella_app;
