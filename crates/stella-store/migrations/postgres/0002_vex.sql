-- Stella service schema, version 2 (Postgres): OpenVEX statements ingested
-- by providers, provider configurations, run status and run leases.
-- Every table is a tenant table: row-level security ENABLED and FORCED with
-- the policy on app.tenant_id (see 0001), and only the privileges the
-- service needs granted to stella_app.

CREATE TABLE vex_documents (
    doc_key            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          TEXT NOT NULL,
    provider_id        TEXT NOT NULL,
    issuer             TEXT NOT NULL,
    document_id        TEXT NOT NULL,
    document_version   BIGINT NOT NULL CHECK (document_version >= 0),
    document_timestamp TEXT NOT NULL,
    author             TEXT NOT NULL,
    signed             BOOLEAN NOT NULL,
    image_digest       TEXT NOT NULL,
    evidence_digest    TEXT NOT NULL,
    ingested_at        TEXT NOT NULL,
    UNIQUE (tenant_id, provider_id, issuer, document_id, image_digest)
);
CREATE INDEX vex_documents_by_evidence
    ON vex_documents (tenant_id, provider_id, image_digest, evidence_digest);
ALTER TABLE vex_documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_documents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_documents
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, DELETE ON vex_documents TO stella_app;

CREATE TABLE vex_statements (
    statement_key    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    doc_key          BIGINT NOT NULL REFERENCES vex_documents (doc_key) ON DELETE CASCADE,
    statement_digest TEXT NOT NULL,
    vulnerability    TEXT NOT NULL,
    status           TEXT NOT NULL,
    statement_json   TEXT NOT NULL
);
CREATE INDEX vex_statements_by_doc ON vex_statements (doc_key);
CREATE INDEX vex_statements_by_tenant ON vex_statements (tenant_id, statement_key);
ALTER TABLE vex_statements ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_statements FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_statements
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, DELETE ON vex_statements TO stella_app;

CREATE TABLE vex_statement_products (
    tenant_id     TEXT NOT NULL,
    statement_key BIGINT NOT NULL REFERENCES vex_statements (statement_key) ON DELETE CASCADE,
    product_key   TEXT NOT NULL,
    PRIMARY KEY (statement_key, product_key)
);
CREATE INDEX vex_statement_products_by_key
    ON vex_statement_products (tenant_id, product_key, statement_key);
ALTER TABLE vex_statement_products ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_statement_products FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_statement_products
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, DELETE ON vex_statement_products TO stella_app;

CREATE TABLE vex_statement_vulns (
    tenant_id     TEXT NOT NULL,
    statement_key BIGINT NOT NULL REFERENCES vex_statements (statement_key) ON DELETE CASCADE,
    vuln_key      TEXT NOT NULL,
    PRIMARY KEY (statement_key, vuln_key)
);
CREATE INDEX vex_statement_vulns_by_key
    ON vex_statement_vulns (tenant_id, vuln_key, statement_key);
ALTER TABLE vex_statement_vulns ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_statement_vulns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_statement_vulns
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, DELETE ON vex_statement_vulns TO stella_app;

CREATE TABLE vex_provider_configs (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    values_json TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider_id)
);
ALTER TABLE vex_provider_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_configs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_provider_configs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON vex_provider_configs TO stella_app;

CREATE TABLE vex_provider_runs (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    image       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    result      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    counts_json TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider_id, image)
);
ALTER TABLE vex_provider_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_provider_runs
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON vex_provider_runs TO stella_app;

-- Who runs a provider now. Taking it is one INSERT ... ON CONFLICT DO
-- UPDATE ... WHERE (the row lock serialises two servers); a lease past
-- expires_at may be taken over, so a crashed run's lease expires.
CREATE TABLE vex_provider_leases (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider_id)
);
ALTER TABLE vex_provider_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_leases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_provider_leases
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON vex_provider_leases TO stella_app;
