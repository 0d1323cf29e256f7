-- Stella service schema, version 1 (Postgres).
--
-- Run by the table owner (`stella serve migrate --database <owner URL>`,
-- or `migrationDatabase`). The service connects as a login role that is a
-- member of the group role `stella_app`, which gets only the privileges
-- below and owns nothing, so it can neither change the schema nor switch
-- row-level security off.
--
-- Tenant isolation: every tenant table has row-level security ENABLED and
-- FORCED (so it binds the owner too) and one policy comparing tenant_id with
-- the transaction-local setting `app.tenant_id`, which stella-store sets with
-- set_config('app.tenant_id', <tenant>, true) in the same transaction as the
-- statement. Without the setting no row is visible and none can be written.
-- `clients` and `signing_keys` are operator data (the token endpoint looks a
-- client up before any tenant is known) and carry no policy.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stella_app') THEN
        CREATE ROLE stella_app NOLOGIN;
    END IF;
END
$$;

GRANT SELECT ON _sqlx_migrations TO stella_app;

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
GRANT SELECT, INSERT, UPDATE ON clients TO stella_app;

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    public_jwk TEXT NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON signing_keys TO stella_app;

CREATE TABLE vex_provider_artifact_refs (
    artifact_id UUID PRIMARY KEY,
    provider_id TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL CHECK (size_bytes >= 0),
    sha256      TEXT NOT NULL,
    payload     BYTEA NOT NULL,
    staged_at   TIMESTAMPTZ NOT NULL,
    staged_by   TEXT NOT NULL
);
CREATE INDEX vex_provider_artifact_refs_by_tenant
    ON vex_provider_artifact_refs (tenant_id, provider_id, artifact_id);
ALTER TABLE vex_provider_artifact_refs ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_artifact_refs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_provider_artifact_refs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, DELETE ON vex_provider_artifact_refs TO stella_app;

-- Which provider configuration field references which artifact. Provider
-- configurations arrive later; a row here makes DELETE answer 409.
CREATE TABLE vex_provider_artifact_uses (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    field_key   TEXT NOT NULL,
    artifact_id UUID NOT NULL REFERENCES vex_provider_artifact_refs (artifact_id),
    PRIMARY KEY (tenant_id, provider_id, field_key)
);
CREATE INDEX vex_provider_artifact_uses_by_artifact
    ON vex_provider_artifact_uses (tenant_id, artifact_id);
ALTER TABLE vex_provider_artifact_uses ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_artifact_uses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_provider_artifact_uses
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON vex_provider_artifact_uses TO stella_app;

-- Append-only for the service: it may insert and read its tenant's rows,
-- never change or remove them.
CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL
);
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON audit_log TO stella_app;
