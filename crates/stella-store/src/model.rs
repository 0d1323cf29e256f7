//! Records the repositories read and write.

use uuid::Uuid;

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
#[derive(Clone)]
pub struct NewArtifact {
    pub provider_id: String,
    pub mime_type: String,
    pub sha256: String,
    pub payload: Vec<u8>,
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
