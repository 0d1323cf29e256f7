//! Records the repositories read and write.

use uuid::Uuid;

use crate::StoreError;

/// An OAuth client (client-credentials grant). `secret_hash` is a PHC
/// string (argon2id); the secret itself is never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    pub secret_hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("client_id", &self.client_id)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .field("secret_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// A token-signing key's public half and lifetime (unix seconds). The
/// private half lives in the data directory, not in the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// The public key as a JWK (JSON text).
    pub public_jwk: String,
}

/// An artifact to stage. The payload was already hashed and size-checked
/// by the caller while it streamed in.
pub struct NewArtifact {
    pub provider_id: String,
    pub mime_type: String,
    pub sha256: String,
    pub payload: ArtifactPayload,
}

impl std::fmt::Debug for NewArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewArtifact")
            .field("provider_id", &self.provider_id)
            .field("mime_type", &self.mime_type)
            .field("sha256", &self.sha256)
            .field("size", &self.payload.len())
            .finish()
    }
}

/// Largest payload chunk the store holds in memory and writes as one row.
pub const PAYLOAD_CHUNK_BYTES: usize = 256 * 1024;

/// Where a new artifact's bytes come from. Either way the store writes them
/// as rows of at most [`PAYLOAD_CHUNK_BYTES`]; a file payload is read one
/// chunk at a time, so it is never whole in memory.
pub enum ArtifactPayload {
    Bytes(Vec<u8>),
    /// The first `len` bytes of a file (an upload's temp file).
    File {
        file: tokio::fs::File,
        len: u64,
    },
}

impl ArtifactPayload {
    pub fn len(&self) -> u64 {
        match self {
            ArtifactPayload::Bytes(b) => b.len() as u64,
            ArtifactPayload::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chunks in order (none for an empty payload).
    pub(crate) fn into_chunks(self) -> PayloadChunks {
        PayloadChunks {
            payload: self,
            done: 0,
        }
    }
}

impl From<Vec<u8>> for ArtifactPayload {
    fn from(bytes: Vec<u8>) -> Self {
        ArtifactPayload::Bytes(bytes)
    }
}

/// Reads an [`ArtifactPayload`] chunk by chunk.
pub(crate) struct PayloadChunks {
    payload: ArtifactPayload,
    done: u64,
}

impl PayloadChunks {
    /// The next chunk, or `None` after the last. A file shorter than its
    /// announced length is an error, not a short artifact.
    pub(crate) async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let total = self.payload.len();
        if self.done >= total {
            return Ok(None);
        }
        let want = usize::try_from((total - self.done).min(PAYLOAD_CHUNK_BYTES as u64))
            .unwrap_or(PAYLOAD_CHUNK_BYTES);
        let chunk = match &mut self.payload {
            ArtifactPayload::Bytes(bytes) => {
                let start = usize::try_from(self.done).unwrap_or(usize::MAX);
                bytes
                    .get(start..start.saturating_add(want))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| StoreError::Corrupt("payload shorter than its length".into()))?
            }
            ArtifactPayload::File { file, .. } => {
                if self.done == 0 {
                    file.seek(std::io::SeekFrom::Start(0))
                        .await
                        .map_err(StoreError::PayloadRead)?;
                }
                let mut chunk = vec![0u8; want];
                file.read_exact(&mut chunk)
                    .await
                    .map_err(StoreError::PayloadRead)?;
                chunk
            }
        };
        self.done += chunk.len() as u64;
        Ok(Some(chunk))
    }
}

/// Per-tenant limits checked atomically with the insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArtifactQuota {
    pub max_count: u64,
    pub max_bytes: u64,
}

/// Artifact metadata: everything but the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactMeta {
    pub artifact_id: Uuid,
    pub provider_id: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub staged_at: String,
    pub staged_by: String,
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// A provider configuration references the artifact.
    InUse,
}
