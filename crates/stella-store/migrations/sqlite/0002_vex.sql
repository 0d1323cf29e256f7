-- Stella service schema, version 2 (SQLite): OpenVEX statements ingested by
-- providers, provider configurations and run status.
-- Every table carries tenant_id; the repository layer adds the tenant
-- filter to every statement.

-- One row per (tenant, provider, issuer, document, image): the document
-- version stored; a higher version replaces the row and its statements.
CREATE TABLE vex_documents (
    doc_key            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id          TEXT NOT NULL,
    provider_id        TEXT NOT NULL,
    issuer             TEXT NOT NULL,
    document_id        TEXT NOT NULL,
    document_version   INTEGER NOT NULL CHECK (document_version >= 0),
    document_timestamp TEXT NOT NULL,
    author             TEXT NOT NULL,
    signed             INTEGER NOT NULL,
    image_digest       TEXT NOT NULL,
    evidence_digest    TEXT NOT NULL,
    ingested_at        TEXT NOT NULL,
    UNIQUE (tenant_id, provider_id, issuer, document_id, image_digest)
);

CREATE INDEX vex_documents_by_evidence
    ON vex_documents (tenant_id, provider_id, image_digest, evidence_digest);

CREATE TABLE vex_statements (
    statement_key    INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT NOT NULL,
    doc_key          INTEGER NOT NULL REFERENCES vex_documents (doc_key) ON DELETE CASCADE,
    statement_digest TEXT NOT NULL,
    vulnerability    TEXT NOT NULL,
    status           TEXT NOT NULL,
    statement_json   TEXT NOT NULL
);

CREATE INDEX vex_statements_by_doc ON vex_statements (doc_key);

-- Matching keys: normalised product keys (products and subcomponents) and
-- upper-cased vulnerability names and aliases.
CREATE TABLE vex_statement_products (
    tenant_id     TEXT NOT NULL,
    statement_key INTEGER NOT NULL REFERENCES vex_statements (statement_key) ON DELETE CASCADE,
    product_key   TEXT NOT NULL,
    PRIMARY KEY (statement_key, product_key)
);

CREATE INDEX vex_statement_products_by_key
    ON vex_statement_products (tenant_id, product_key, statement_key);

CREATE TABLE vex_statement_vulns (
    tenant_id     TEXT NOT NULL,
    statement_key INTEGER NOT NULL REFERENCES vex_statements (statement_key) ON DELETE CASCADE,
    vuln_key      TEXT NOT NULL,
    PRIMARY KEY (statement_key, vuln_key)
);

CREATE INDEX vex_statement_vulns_by_key
    ON vex_statement_vulns (tenant_id, vuln_key, statement_key);

CREATE TABLE vex_provider_configs (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    values_json TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider_id)
);

-- Last run per (tenant, provider, image); image '' is the run as a whole.
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

-- Who runs a provider now; a lease past expires_at may be taken over.
CREATE TABLE vex_provider_leases (
    tenant_id   TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, provider_id)
);
