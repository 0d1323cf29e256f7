-- Stella service schema, version 8 (SQLite): the tenant's issuer trust
-- configuration for VEX consensus (a stella_vex::TrustConfig as JSON; no
-- row: every issuer weighs the same), and state a provider keeps between
-- runs (e.g. the last trusted TUF metadata, so a rollback across runs is
-- refused), one row per tenant, provider and name.
CREATE TABLE vex_trust_configs (
    tenant_id  TEXT NOT NULL PRIMARY KEY,
    trust_json TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE vex_provider_state (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    value_json  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider_id, name)
);
