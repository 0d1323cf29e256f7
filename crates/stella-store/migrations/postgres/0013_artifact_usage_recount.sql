-- Stella service schema (Postgres): recount per-tenant artifact usage.
--
-- Migration 0003 filled `artifact_usage` from the existing artifacts, but
-- it runs as the tables' owner, whom FORCE ROW LEVEL SECURITY hides every
-- row from (no tenant is set during a migration): a database upgraded from
-- before 0003 kept artifacts that no usage row counted, so the upload quota
-- let those tenants past their limit. This recounts every tenant from its
-- artifacts, with FORCE lifted inside this migration's transaction (as 0012
-- does) and writes to the artifacts held off meanwhile, so the recount and
-- the triggers cannot both count one insert. A tenant without artifacts
-- keeps a row of zeros.

LOCK TABLE vex_provider_artifact_refs IN SHARE MODE;
ALTER TABLE vex_provider_artifact_refs NO FORCE ROW LEVEL SECURITY;
ALTER TABLE artifact_usage NO FORCE ROW LEVEL SECURITY;
UPDATE artifact_usage SET artifact_count = 0, total_bytes = 0;
INSERT INTO artifact_usage (tenant_id, artifact_count, total_bytes)
SELECT tenant_id, COUNT(*), COALESCE(SUM(size_bytes), 0)
FROM vex_provider_artifact_refs GROUP BY tenant_id
ON CONFLICT (tenant_id) DO UPDATE
    SET artifact_count = EXCLUDED.artifact_count, total_bytes = EXCLUDED.total_bytes;
ALTER TABLE vex_provider_artifact_refs FORCE ROW LEVEL SECURITY;
ALTER TABLE artifact_usage FORCE ROW LEVEL SECURITY;
