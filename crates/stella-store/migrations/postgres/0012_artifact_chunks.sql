-- Stella service schema (Postgres): artifact payloads in chunks.
--
-- An upload streams from its temp file into rows of at most 256 KiB
-- (`stella_store::PAYLOAD_CHUNK_BYTES`), so no payload is ever whole in the
-- server's memory, whatever the size cap. `payload` in the artifact table
-- is empty from here on; existing payloads move to one chunk each. A
-- tenant table: row-level security ENABLED and FORCED, policy on
-- app.tenant_id (see 0001). Deleting an artifact deletes its chunks
-- (referential actions are not bound by row-level security).

CREATE TABLE vex_provider_artifact_chunks (
    tenant_id   TEXT NOT NULL,
    artifact_id UUID NOT NULL
        REFERENCES vex_provider_artifact_refs (artifact_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    bytes       BYTEA NOT NULL,
    PRIMARY KEY (artifact_id, seq)
);
ALTER TABLE vex_provider_artifact_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_artifact_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vex_provider_artifact_chunks
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT ON vex_provider_artifact_chunks TO stella_app;

-- The move runs as the owner, whom FORCE would hide every row from: lift
-- it for the move, inside this migration's transaction.
ALTER TABLE vex_provider_artifact_refs NO FORCE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_artifact_chunks NO FORCE ROW LEVEL SECURITY;
INSERT INTO vex_provider_artifact_chunks (tenant_id, artifact_id, seq, bytes)
SELECT tenant_id, artifact_id, 0, payload FROM vex_provider_artifact_refs
WHERE length(payload) > 0;
UPDATE vex_provider_artifact_refs SET payload = '\x'::bytea;
ALTER TABLE vex_provider_artifact_refs FORCE ROW LEVEL SECURITY;
ALTER TABLE vex_provider_artifact_chunks FORCE ROW LEVEL SECURITY;
