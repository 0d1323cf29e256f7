-- Stella service schema, version 5 (Postgres): per-tenant artifact usage
-- (count and bytes), kept by triggers in the same transaction as every
-- insert or delete of an artifact, so the upload quota check reads one row
-- instead of counting and summing all of the tenant's artifacts. A tenant
-- table: row-level security ENABLED and FORCED with the policy on
-- app.tenant_id (see 0001); the triggers run as the caller, so RLS applies.

CREATE TABLE artifact_usage (
    tenant_id      TEXT PRIMARY KEY,
    artifact_count BIGINT NOT NULL CHECK (artifact_count >= 0),
    total_bytes    BIGINT NOT NULL CHECK (total_bytes >= 0)
);
ALTER TABLE artifact_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE artifact_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON artifact_usage
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE ON artifact_usage TO stella_app;

INSERT INTO artifact_usage (tenant_id, artifact_count, total_bytes)
SELECT tenant_id, COUNT(*), COALESCE(SUM(size_bytes), 0)
FROM vex_provider_artifact_refs GROUP BY tenant_id;

CREATE FUNCTION artifact_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO artifact_usage (tenant_id, artifact_count, total_bytes)
            VALUES (NEW.tenant_id, 1, NEW.size_bytes)
            ON CONFLICT (tenant_id) DO UPDATE
            SET artifact_count = artifact_usage.artifact_count + 1,
                total_bytes = artifact_usage.total_bytes + EXCLUDED.total_bytes;
        RETURN NEW;
    END IF;
    UPDATE artifact_usage
        SET artifact_count = artifact_count - 1, total_bytes = total_bytes - OLD.size_bytes
        WHERE tenant_id = OLD.tenant_id;
    RETURN OLD;
END;
$$;

CREATE TRIGGER artifact_usage_on_change
    AFTER INSERT OR DELETE ON vex_provider_artifact_refs
    FOR EACH ROW EXECUTE FUNCTION artifact_usage_track();
