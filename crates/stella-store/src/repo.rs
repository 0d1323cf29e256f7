//! Repository traits, one per aggregate. Backend-neutral: no SQL dialect
//! leaks through them, so a Postgres backend implements the same set.

use std::future::Future;

use uuid::Uuid;

use crate::{
    ArtifactMeta, ArtifactQuota, ClientRecord, DeleteOutcome, NewArtifact, SigningKeyRecord,
    StoreError, TenantContext,
};

/// OAuth clients. Operator-level (not tenant-scoped): used by the token
/// endpoint to look a client up and by `stella admin clients`.
pub trait ClientRepository {
    /// Adds a client; `AlreadyExists` if the id is taken.
    fn add_client(&self, c: &ClientRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn find_client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<ClientRecord>, StoreError>> + Send;
    /// All clients, ordered by id.
    fn list_clients(&self) -> impl Future<Output = Result<Vec<ClientRecord>, StoreError>> + Send;
    /// Marks a client revoked; false if there is no such (unrevoked) client.
    fn revoke_client(
        &self,
        client_id: &str,
        at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// A counter the database bumps in the same transaction as every
    /// change to a client (a revoke): while it stays the same, client rows
    /// read earlier are still current.
    fn client_generation(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// Public halves of token-signing keys. Adding a key retires the ones
/// before it (they still verify tokens until those expire).
pub trait SigningKeyRepository {
    fn add_signing_key(
        &self,
        key: &SigningKeyRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// All keys, newest first.
    fn list_signing_keys(
        &self,
    ) -> impl Future<Output = Result<Vec<SigningKeyRecord>, StoreError>> + Send;
}

/// Provider artifacts (seed 002 OCI-CFG-001), scoped to the caller's tenant.
pub trait ArtifactRepository {
    /// Stages an artifact for `ctx`'s tenant, staged by `ctx`'s subject, and
    /// records the write in the audit log, in one transaction. Fails with
    /// `QuotaExceeded` (and writes nothing) if the tenant would pass `quota`.
    fn insert_artifact(
        &self,
        ctx: &TenantContext,
        artifact: NewArtifact,
        quota: ArtifactQuota,
    ) -> impl Future<Output = Result<ArtifactMeta, StoreError>> + Send;
    /// Metadata of a provider's artifacts in artifact-id order (UUIDv7, so
    /// staging order), starting after `after`, at most `limit`.
    fn list_artifacts(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        after: Option<Uuid>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ArtifactMeta>, StoreError>> + Send;
    fn get_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> impl Future<Output = Result<Option<ArtifactMeta>, StoreError>> + Send;
    /// The payload, for the materializer; never served over the API.
    fn read_payload(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Deletes unless referenced; records the delete in the audit log.
    fn delete_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> impl Future<Output = Result<DeleteOutcome, StoreError>> + Send;
    /// Records that a provider configuration field references an artifact
    /// of the same tenant and provider (the hook provider configurations
    /// will use). False if there is no such artifact in the tenant.
    fn reference_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        field_key: &str,
        artifact_id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
