-- Stella service schema, version 8 (Postgres): the tenant's issuer trust
-- configuration for VEX consensus (a stella_vex::TrustConfig as JSON; no
-- row: every issuer weighs the same), and state a provider keeps between
-- runs (e.g. the last trusted TUF metadata, so a rollback across runs is
-- refused). Both tables have row-level security enabled and forced with
-- the app.tenant_id policy, like the other VEX tables.
CREATE TABLE vex_trust_configs (
    tenant_id  TEXT NOT NULL PRIMARY KEY,
    trust_json TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
ALTER TABLE vex_trust_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_trust_configs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_trust_configs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON vex_trust_configs TO stella_app;

CREATE TABLE vex_provider_state (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    value_json  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider_id, name)
);
ALTER TABLE vex_provider_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_state FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_provider_state
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON vex_provider_state TO stella_app;
