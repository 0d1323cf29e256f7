-- Stella service schema, version 1 (SQLite).
-- Every tenant-owned table carries tenant_id; the repository layer in
-- stella-store adds the tenant filter to every statement.

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    public_jwk TEXT NOT NULL
);

CREATE TABLE vex_provider_artifact_refs (
    artifact_id TEXT PRIMARY KEY NOT NULL,
    provider_id TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL CHECK (size_bytes >= 0),
    sha256      TEXT NOT NULL,
    payload     BLOB NOT NULL,
    staged_at   TEXT NOT NULL,
    staged_by   TEXT NOT NULL
);

CREATE INDEX vex_provider_artifact_refs_by_tenant
    ON vex_provider_artifact_refs (tenant_id, provider_id, artifact_id);

-- Which provider configuration field references which artifact. Provider
-- configurations arrive later; a row here makes DELETE answer 409.
CREATE TABLE vex_provider_artifact_uses (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    field_key   TEXT NOT NULL,
    artifact_id TEXT NOT NULL REFERENCES vex_provider_artifact_refs (artifact_id),
    PRIMARY KEY (tenant_id, provider_id, field_key)
);

CREATE INDEX vex_provider_artifact_uses_by_artifact
    ON vex_provider_artifact_uses (tenant_id, artifact_id);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    at        TEXT NOT NULL
);
