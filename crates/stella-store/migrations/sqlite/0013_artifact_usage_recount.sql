-- Stella service schema (SQLite): recount per-tenant artifact usage.
--
-- The Postgres migration of the same number repairs a 0003 backfill that
-- row-level security hid from the owner. SQLite has no row-level security
-- and its 0003 backfill counted every row, so this recount changes
-- nothing on a database kept only by Stella; it keeps the two backends'
-- version numbers and results the same.

UPDATE artifact_usage SET artifact_count = 0, total_bytes = 0;
INSERT INTO artifact_usage (tenant_id, artifact_count, total_bytes)
SELECT tenant_id, COUNT(*), COALESCE(SUM(size_bytes), 0)
FROM vex_provider_artifact_refs WHERE true GROUP BY tenant_id
ON CONFLICT (tenant_id) DO UPDATE
    SET artifact_count = excluded.artifact_count, total_bytes = excluded.total_bytes;
