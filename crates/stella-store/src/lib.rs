//! Storage for the Stella service (`stella serve`).
//!
//! One repository trait per aggregate ([`ClientRepository`],
//! [`SigningKeyRepository`], [`ArtifactRepository`], [`VexRepository`],
//! [`PolicyRepository`]),
//! implemented by two backends: SQLite, the embedded default
//! ([`sqlite::SqliteStore`]), and Postgres with row-level security
//! ([`postgres::PostgresStore`]). [`Store`] is the backend-neutral handle the
//! service holds.
//!
//! Tenant isolation: every tenant-owned read or write takes a
//! [`TenantContext`], which the service builds only from a verified access
//! token. No method takes a tenant id as a plain string, so a handler cannot
//! pass one from request input. On Postgres the database enforces it too
//! (row-level security on `app.tenant_id`, set per transaction).
//!
//! # Adding a tenant table (both backends)
//!
//! Migrations live in `migrations/sqlite/` and `migrations/postgres/` with
//! the same version number and file name (`NNNN_what.sql`); a build knows
//! the highest version of each set and refuses a newer database. Reserved:
//! 0002 VEX, 0003 artifact usage, 0004 VEX polling fingerprints, 0005
//! exports, 0006 policy revisions and report keys, 0007 console sessions
//! ([`ConsoleSessionRepository`], operator data like `clients`), 0008 VEX
//! issuer trust and provider state, 0009 the client generation counter
//! (see [`ClientRepository::client_generation`]), 0010 none (it was held
//! for a VEX index that proved unneeded; sqlx allows the gap), 0011 Postgres functions
//! for the hot tenant reads (a no-op on SQLite), 0012 artifact payload
//! chunks, 0013 a recount of artifact usage (0003's backfill could not see
//! the rows on Postgres).
//!
//! 1. SQLite: `CREATE TABLE t (..., tenant_id TEXT NOT NULL, ...)` and an
//!    index leading with `tenant_id`. Every statement on it in the SQLite
//!    repository binds `tenant_id = ?` from the [`TenantContext`]; several
//!    statements that write together run in `SqliteStore::write` (module
//!    `sqlite::write`), never `pool.begin()`.
//! 2. Postgres, in the same migration:
//!
//!    ```sql
//!    CREATE TABLE t (..., tenant_id TEXT NOT NULL, ...);
//!    ALTER TABLE t ENABLE ROW LEVEL SECURITY;
//!    ALTER TABLE t FORCE ROW LEVEL SECURITY;
//!    CREATE POLICY tenant_isolation ON t
//!        USING (tenant_id = current_setting('app.tenant_id', true))
//!        WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
//!    GRANT SELECT, INSERT, UPDATE, DELETE ON t TO stella_app; -- only what the service needs
//!    ```
//!
//!    (an identity column needs no sequence grant). Every statement on `t`
//!    runs inside a transaction begun by `PostgresStore::tenant_tx`, which
//!    sets `app.tenant_id`; keep the explicit `tenant_id = $n` filter too
//!    (it is what the index serves). Outside such a transaction a tenant
//!    table shows no rows and accepts none.
//! 3. Add the repository trait methods to `repo.rs`, both implementations
//!    and the [`Store`] dispatch. `tests/postgres.rs` checks that every
//!    table with a `tenant_id` column (but `clients`) has row-level security
//!    enabled and forced and a policy, and that the service role owns none.
//!
//! This crate does not speak HTTP, hash secrets or sign tokens.

mod console;
mod error;
mod export;
mod model;
mod policy;
pub mod postgres;
mod repo;
pub mod sqlite;
mod tenant;
mod vex;

pub use console::{ConsoleSessionRecord, ConsoleSessionRepository};
pub use error::StoreError;
pub use export::{EXPORT_STATUSES, ExportJobRecord, ExportRepository};
pub use model::{
    ArtifactMeta, ArtifactPayload, ArtifactQuota, ClientRecord, DeleteOutcome, NewArtifact,
    PAYLOAD_CHUNK_BYTES, SigningKeyRecord,
};
pub use policy::{PolicyRepository, PolicyRevisionRecord, ReportKeyRecord};
pub use repo::{ArtifactRepository, ClientRepository, SigningKeyRepository};
pub use tenant::TenantContext;
pub use vex::{
    IngestOutcome, ProviderConfigRecord, ProviderRunRecord, StoredVexStatement, VexDocumentRecord,
    VexRepository, VexStatementQuery, VexStatementRecord, VexTrustRecord, VexTrustRepository,
};

/// The storage handle the service holds: one variant per backend.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

/// Connection pool settings; `None` takes the backend's default (SQLite:
/// 4 connections, 5 s to acquire one; Postgres: 10 and 3 s).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: Option<u32>,
    pub acquire_timeout: Option<std::time::Duration>,
}

/// Where the schema of an opened database stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Highest migration applied to the database (0 when none).
    pub applied: i64,
    /// Highest migration this build knows.
    pub supported: i64,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        self.applied == self.supported
    }
}

impl Store {
    /// Opens the database at `url`: `sqlite:` (the file is created if
    /// needed) or `postgres:`/`postgresql:` (the database must exist);
    /// anything else is refused with a clear error. Refuses a database whose
    /// schema is newer than this build.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, &PoolSettings::default()).await
    }

    /// [`Store::open`] with pool settings.
    pub async fn open_with(url: &str, pool: &PoolSettings) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let store = sqlite::SqliteStore::open(url, pool).await?;
            Ok(Store::Sqlite(store))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let store = postgres::PostgresStore::open(url, pool).await?;
            Ok(Store::Postgres(store))
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(StoreError::UnsupportedDatabase(scheme.to_string()))
        }
    }

    /// Applies the embedded migrations; returns the schema status after.
    pub async fn migrate(&self) -> Result<SchemaStatus, StoreError> {
        match self {
            Store::Sqlite(s) => s.migrate().await,
            Store::Postgres(s) => s.migrate().await,
        }
    }

    /// The schema status, without changing anything.
    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        match self {
            Store::Sqlite(s) => s.schema_status().await,
            Store::Postgres(s) => s.schema_status().await,
        }
    }

    /// A cheap round trip to the database (for readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(s) => s.ping().await,
        }
    }

    /// Connections in the pool: (open, idle).
    pub fn pool_stats(&self) -> (u32, u32) {
        match self {
            Store::Sqlite(s) => s.pool_stats(),
            Store::Postgres(s) => s.pool_stats(),
        }
    }

    /// Checks that the database will enforce tenant isolation for this
    /// connection: on Postgres, refuses a superuser, a `BYPASSRLS` role or
    /// a table owner (row-level security would not bind them). The server
    /// calls it before serving; admin commands do not need it.
    pub async fn check_service_role(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(s) => s.check_service_role().await,
        }
    }

    /// Closes the pool, waiting for connections to return.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Store::Sqlite($s) => $body,
            Store::Postgres($s) => $body,
        }
    };
}

impl ClientRepository for Store {
    async fn add_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        dispatch!(self, s => s.add_client(c).await)
    }
    async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        dispatch!(self, s => s.find_client(client_id).await)
    }
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        dispatch!(self, s => s.list_clients().await)
    }
    async fn revoke_client(&self, client_id: &str, at: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.revoke_client(client_id, at).await)
    }
    async fn client_generation(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.client_generation().await)
    }
}

impl SigningKeyRepository for Store {
    async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        dispatch!(self, s => s.add_signing_key(key).await)
    }
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        dispatch!(self, s => s.list_signing_keys().await)
    }
}

impl ArtifactRepository for Store {
    async fn insert_artifact(
        &self,
        ctx: &TenantContext,
        artifact: NewArtifact,
        quota: ArtifactQuota,
    ) -> Result<ArtifactMeta, StoreError> {
        dispatch!(self, s => s.insert_artifact(ctx, artifact, quota).await)
    }
    async fn list_artifacts(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<ArtifactMeta>, StoreError> {
        dispatch!(self, s => s.list_artifacts(ctx, provider_id, after, limit).await)
    }
    async fn get_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: uuid::Uuid,
    ) -> Result<Option<ArtifactMeta>, StoreError> {
        dispatch!(self, s => s.get_artifact(ctx, provider_id, artifact_id).await)
    }
    async fn read_payload(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: uuid::Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, s => s.read_payload(ctx, provider_id, artifact_id).await)
    }
    async fn delete_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: uuid::Uuid,
    ) -> Result<DeleteOutcome, StoreError> {
        dispatch!(self, s => s.delete_artifact(ctx, provider_id, artifact_id).await)
    }
    async fn reference_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        field_key: &str,
        artifact_id: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.reference_artifact(ctx, provider_id, field_key, artifact_id).await)
    }
}

impl VexRepository for Store {
    async fn ingest_vex_document(
        &self,
        ctx: &TenantContext,
        doc: &VexDocumentRecord,
        statements: &[VexStatementRecord],
    ) -> Result<IngestOutcome, StoreError> {
        dispatch!(self, s => s.ingest_vex_document(ctx, doc, statements).await)
    }
    async fn has_vex_evidence(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        image_digest: &str,
        evidence_digest: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.has_vex_evidence(ctx, provider_id, image_digest, evidence_digest).await)
    }
    async fn query_vex_statements(
        &self,
        ctx: &TenantContext,
        query: &VexStatementQuery,
    ) -> Result<Vec<StoredVexStatement>, StoreError> {
        dispatch!(self, s => s.query_vex_statements(ctx, query).await)
    }
    async fn get_provider_config(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
    ) -> Result<Option<ProviderConfigRecord>, StoreError> {
        dispatch!(self, s => s.get_provider_config(ctx, provider_id).await)
    }
    async fn save_provider_config(
        &self,
        ctx: &TenantContext,
        config: &ProviderConfigRecord,
        references: &[(String, uuid::Uuid)],
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.save_provider_config(ctx, config, references).await)
    }
    async fn list_provider_configs_all(
        &self,
    ) -> Result<Vec<(String, ProviderConfigRecord)>, StoreError> {
        dispatch!(self, s => s.list_provider_configs_all().await)
    }
    async fn record_provider_run(
        &self,
        ctx: &TenantContext,
        run: &ProviderRunRecord,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.record_provider_run(ctx, run).await)
    }
    async fn provider_runs(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
    ) -> Result<Vec<ProviderRunRecord>, StoreError> {
        dispatch!(self, s => s.provider_runs(ctx, provider_id).await)
    }
    async fn acquire_provider_lease(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.acquire_provider_lease(ctx, provider_id, holder, now, expires_at).await)
    }
    async fn release_provider_lease(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.release_provider_lease(ctx, provider_id, holder).await)
    }
}

impl PolicyRepository for Store {
    async fn insert_policy_revision(
        &self,
        ctx: &TenantContext,
        revision: &PolicyRevisionRecord,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_policy_revision(ctx, revision).await)
    }
    async fn get_policy_revision(
        &self,
        ctx: &TenantContext,
        revision_id: Option<&str>,
    ) -> Result<Option<PolicyRevisionRecord>, StoreError> {
        dispatch!(self, s => s.get_policy_revision(ctx, revision_id).await)
    }
    async fn activate_policy_revision(
        &self,
        ctx: &TenantContext,
        revision_id: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.activate_policy_revision(ctx, revision_id, at).await)
    }
    async fn add_report_key(
        &self,
        ctx: &TenantContext,
        key: &ReportKeyRecord,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.add_report_key(ctx, key).await)
    }
    async fn list_report_keys(
        &self,
        ctx: &TenantContext,
    ) -> Result<Vec<ReportKeyRecord>, StoreError> {
        dispatch!(self, s => s.list_report_keys(ctx).await)
    }
}

impl ConsoleSessionRepository for Store {
    async fn add_console_session(
        &self,
        session: &ConsoleSessionRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.add_console_session(session, now).await)
    }
    async fn find_console_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<ConsoleSessionRecord>, StoreError> {
        dispatch!(self, s => s.find_console_session(id_hash, now).await)
    }
    async fn delete_console_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.delete_console_session(id_hash).await)
    }
}

impl VexTrustRepository for Store {
    async fn get_vex_trust(
        &self,
        ctx: &TenantContext,
    ) -> Result<Option<VexTrustRecord>, StoreError> {
        dispatch!(self, s => s.get_vex_trust(ctx).await)
    }
    async fn vex_trust_and_statements(
        &self,
        ctx: &TenantContext,
        query: &VexStatementQuery,
    ) -> Result<(Option<VexTrustRecord>, Vec<StoredVexStatement>), StoreError> {
        dispatch!(self, s => s.vex_trust_and_statements(ctx, query).await)
    }
    async fn save_vex_trust(
        &self,
        ctx: &TenantContext,
        trust: &VexTrustRecord,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.save_vex_trust(ctx, trust).await)
    }
    async fn get_provider_state(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.get_provider_state(ctx, provider_id, name).await)
    }
    async fn save_provider_state(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        name: &str,
        value_json: &str,
        updated_at: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.save_provider_state(ctx, provider_id, name, value_json, updated_at).await)
    }
}

impl ExportRepository for Store {
    async fn insert_export_job(
        &self,
        ctx: &TenantContext,
        job: &ExportJobRecord,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_export_job(ctx, job).await)
    }
    async fn get_export_job(
        &self,
        ctx: &TenantContext,
        export_id: uuid::Uuid,
    ) -> Result<Option<ExportJobRecord>, StoreError> {
        dispatch!(self, s => s.get_export_job(ctx, export_id).await)
    }
    async fn list_export_jobs(
        &self,
        ctx: &TenantContext,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportJobRecord>, StoreError> {
        dispatch!(self, s => s.list_export_jobs(ctx, after, limit).await)
    }
    async fn update_export_job(
        &self,
        ctx: &TenantContext,
        job: &ExportJobRecord,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.update_export_job(ctx, job).await)
    }
    async fn fail_live_export_jobs(&self, reason: &str, at: &str) -> Result<u64, StoreError> {
        dispatch!(self, s => s.fail_live_export_jobs(reason, at).await)
    }
}
