-- Stella service schema (Postgres): the hot tenant reads as one statement.
--
-- A tenant-scoped read normally costs four round trips: BEGIN,
-- set_config('app.tenant_id', <tenant>, true), the query, COMMIT. These
-- functions do the set_config and the query inside one statement, so the
-- service sends one: outside an explicit transaction the statement runs in
-- its own implicit transaction, and the transaction-local setting ends with
-- it (a pooled connection still never carries a tenant to the next use).
--
-- They are SECURITY INVOKER (the default): row-level security binds the
-- service role inside them exactly as outside, so a function body that lost
-- its tenant filter would still see only p_tenant's rows. They take the
-- tenant as a bound parameter like every other statement.

CREATE FUNCTION stella_artifact_meta(p_tenant TEXT, p_provider TEXT, p_artifact UUID)
    RETURNS TABLE (artifact_id TEXT, provider_id TEXT, mime_type TEXT, size_bytes BIGINT,
                   sha256 TEXT, staged_at TEXT, staged_by TEXT)
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
        SELECT r.artifact_id::text, r.provider_id, r.mime_type, r.size_bytes, r.sha256,
               to_char(r.staged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               r.staged_by
        FROM vex_provider_artifact_refs r
        WHERE r.tenant_id = p_tenant AND r.provider_id = p_provider
          AND r.artifact_id = p_artifact;
END;
$$;

-- One page in artifact id order (UUIDv7: staging order), after p_after.
CREATE FUNCTION stella_artifact_page(p_tenant TEXT, p_provider TEXT, p_after UUID,
                                     p_limit BIGINT)
    RETURNS TABLE (artifact_id TEXT, provider_id TEXT, mime_type TEXT, size_bytes BIGINT,
                   sha256 TEXT, staged_at TEXT, staged_by TEXT)
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
        SELECT r.artifact_id::text, r.provider_id, r.mime_type, r.size_bytes, r.sha256,
               to_char(r.staged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               r.staged_by
        FROM vex_provider_artifact_refs r
        WHERE r.tenant_id = p_tenant AND r.provider_id = p_provider
          AND r.artifact_id > p_after
        ORDER BY r.artifact_id
        LIMIT p_limit;
END;
$$;

REVOKE ALL ON FUNCTION stella_artifact_meta(TEXT, TEXT, UUID) FROM PUBLIC;
REVOKE ALL ON FUNCTION stella_artifact_page(TEXT, TEXT, UUID, BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stella_artifact_meta(TEXT, TEXT, UUID) TO stella_app;
GRANT EXECUTE ON FUNCTION stella_artifact_page(TEXT, TEXT, UUID, BIGINT) TO stella_app;
