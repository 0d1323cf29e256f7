-- Stella service schema, version 6 (SQLite): policy revisions per tenant
-- (the canonical JSON of each imported policy, at most one active per
-- tenant) and the public halves of the tenant's report-signing keys (the
-- private halves are files under the data directory, like the token keys).

CREATE TABLE policy_revisions (
    tenant_id     TEXT NOT NULL,
    revision_id   TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    canonical     BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    PRIMARY KEY (tenant_id, revision_id)
);
-- Exactly one active revision per tenant (once one is activated).
CREATE UNIQUE INDEX policy_revisions_one_active
    ON policy_revisions (tenant_id) WHERE active = 1;

CREATE TABLE report_keys (
    tenant_id  TEXT NOT NULL,
    kid        TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT,
    PRIMARY KEY (tenant_id, kid)
);
