-- Stella service schema (SQLite): artifact payloads in chunks.
--
-- An upload streams from its temp file into rows of at most 256 KiB
-- (`stella_store::PAYLOAD_CHUNK_BYTES`), so no payload is ever whole in the
-- server's memory, whatever the size cap. `payload` in the artifact table
-- stays (SQLite cannot drop a NOT NULL column cheaply) and is empty from
-- here on; existing payloads move to one chunk each.

CREATE TABLE vex_provider_artifact_chunks (
    tenant_id   TEXT NOT NULL,
    artifact_id TEXT NOT NULL
        REFERENCES vex_provider_artifact_refs (artifact_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    bytes       BLOB NOT NULL,
    PRIMARY KEY (artifact_id, seq)
);

INSERT INTO vex_provider_artifact_chunks (tenant_id, artifact_id, seq, bytes)
SELECT tenant_id, artifact_id, 0, payload FROM vex_provider_artifact_refs
WHERE length(payload) > 0;
UPDATE vex_provider_artifact_refs SET payload = x'';
