-- Stella service schema, version 5 (SQLite): per-tenant artifact usage
-- (count and bytes), kept by triggers in the same transaction as every
-- insert or delete of an artifact, so the upload quota check reads one row
-- instead of counting and summing all of the tenant's artifacts.

CREATE TABLE artifact_usage (
    tenant_id      TEXT PRIMARY KEY,
    artifact_count INTEGER NOT NULL CHECK (artifact_count >= 0),
    total_bytes    INTEGER NOT NULL CHECK (total_bytes >= 0)
);

INSERT INTO artifact_usage (tenant_id, artifact_count, total_bytes)
SELECT tenant_id, COUNT(*), COALESCE(SUM(size_bytes), 0)
FROM vex_provider_artifact_refs GROUP BY tenant_id;

CREATE TRIGGER artifact_usage_on_insert AFTER INSERT ON vex_provider_artifact_refs
BEGIN
    INSERT OR IGNORE INTO artifact_usage (tenant_id, artifact_count, total_bytes)
        VALUES (NEW.tenant_id, 0, 0);
    UPDATE artifact_usage
        SET artifact_count = artifact_count + 1, total_bytes = total_bytes + NEW.size_bytes
        WHERE tenant_id = NEW.tenant_id;
END;

CREATE TRIGGER artifact_usage_on_delete AFTER DELETE ON vex_provider_artifact_refs
BEGIN
    UPDATE artifact_usage
        SET artifact_count = artifact_count - 1, total_bytes = total_bytes - OLD.size_bytes
        WHERE tenant_id = OLD.tenant_id;
END;
