//! OpenVEX storage records and the [`VexRepository`] trait: ingested
//! documents and their statements, provider configurations, run status
//! and run leases, all scoped to the caller's tenant.
//!
//! Backend-neutral plain records: this crate does not parse OpenVEX (the
//! caller hands in matching keys and the statement JSON, see `stella-vex`).

use std::future::Future;

use crate::{StoreError, TenantContext};

/// A document as ingested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VexDocumentRecord {
    pub provider_id: String,
    /// Verified signer identity (or `unsigned:<author>`).
    pub issuer: String,
    pub document_id: String,
    pub document_version: i64,
    pub document_timestamp: String,
    pub author: String,
    pub signed: bool,
    pub image_digest: String,
    /// sha256 of the verified statement or plain document bytes.
    pub evidence_digest: String,
    pub ingested_at: String,
}

/// One statement of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VexStatementRecord {
    pub digest: String,
    pub vulnerability: String,
    pub status: String,
    /// Normalised product keys (products and subcomponents).
    pub product_keys: Vec<String>,
    /// Upper-cased vulnerability name, aliases and @id.
    pub vuln_keys: Vec<String>,
    /// The statement's canonical JSON.
    pub statement_json: String,
}

/// What [`VexRepository::ingest_vex_document`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    /// New document.
    Inserted,
    /// Replaced a lower version of the same document.
    Superseded,
    /// The same or a higher version is already stored: nothing written.
    Unchanged,
}

/// A statement query; `None` fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct VexStatementQuery {
    pub product_key: Option<String>,
    /// Upper-cased.
    pub vuln_key: Option<String>,
    pub issuer: Option<String>,
    /// Page after this statement key.
    pub after: Option<i64>,
    pub limit: u32,
}

/// A stored statement with its document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVexStatement {
    pub key: i64,
    pub document: VexDocumentRecord,
    pub digest: String,
    pub statement_json: String,
}

/// A provider configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderConfigRecord {
    pub provider_id: String,
    pub values_json: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// Last run of a provider (image `""`) or of one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRunRecord {
    pub provider_id: String,
    pub image: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub result: String,
    pub reason: String,
    pub counts_json: String,
    /// What the last successful run saw of the image (opaque to the store;
    /// the runner compares it to skip unchanged images); `""` for none.
    pub fingerprint: String,
}

/// OpenVEX statements and providers, per tenant.
pub trait VexRepository {
    /// Stores a document and its statements in one transaction: inserted
    /// when new, replacing the stored one when `doc.document_version` is
    /// higher, nothing when the same or a higher version is stored.
    fn ingest_vex_document(
        &self,
        ctx: &TenantContext,
        doc: &VexDocumentRecord,
        statements: &[VexStatementRecord],
    ) -> impl Future<Output = Result<IngestOutcome, StoreError>> + Send;
    /// Whether evidence with this digest is stored for the image.
    fn has_vex_evidence(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        image_digest: &str,
        evidence_digest: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Statements in key order.
    fn query_vex_statements(
        &self,
        ctx: &TenantContext,
        query: &VexStatementQuery,
    ) -> impl Future<Output = Result<Vec<StoredVexStatement>, StoreError>> + Send;
    fn get_provider_config(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
    ) -> impl Future<Output = Result<Option<ProviderConfigRecord>, StoreError>> + Send;
    /// Saves a configuration and, in the same transaction, replaces the
    /// provider's artifact references with `references` (field key,
    /// artifact id). `false` (nothing written) when an artifact is not one
    /// of the tenant's for this provider.
    fn save_provider_config(
        &self,
        ctx: &TenantContext,
        config: &ProviderConfigRecord,
        references: &[(String, uuid::Uuid)],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every configured provider of every tenant (for the runner).
    fn list_provider_configs_all(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, ProviderConfigRecord)>, StoreError>> + Send;
    fn record_provider_run(
        &self,
        ctx: &TenantContext,
        run: &ProviderRunRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn provider_runs(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
    ) -> impl Future<Output = Result<Vec<ProviderRunRecord>, StoreError>> + Send;
    /// Takes (or renews) the run lease of a provider for `holder` until
    /// `expires_at` (unix seconds); false when another holder's lease has
    /// not expired at `now`.
    fn acquire_provider_lease(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn release_provider_lease(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A tenant's issuer trust configuration for VEX consensus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VexTrustRecord {
    /// A `stella_vex::TrustConfig` as JSON (opaque to the store).
    pub trust_json: String,
    pub updated_at: String,
    pub updated_by: String,
}

/// The tenant's issuer trust and what providers keep between runs.
pub trait VexTrustRepository {
    /// The tenant's trust configuration; `None` when never set.
    fn get_vex_trust(
        &self,
        ctx: &TenantContext,
    ) -> impl Future<Output = Result<Option<VexTrustRecord>, StoreError>> + Send;
    /// Replaces the tenant's trust configuration.
    fn save_vex_trust(
        &self,
        ctx: &TenantContext,
        trust: &VexTrustRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The tenant's trust configuration and one page of `query`, read
    /// together (on Postgres in one transaction: a consensus request pays
    /// one `BEGIN`/`set_config`/`COMMIT`, not two).
    fn vex_trust_and_statements(
        &self,
        ctx: &TenantContext,
        query: &VexStatementQuery,
    ) -> impl Future<Output = Result<(Option<VexTrustRecord>, Vec<StoredVexStatement>), StoreError>> + Send;
    /// A value a provider stored under `name`.
    fn get_provider_state(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Replaces the value a provider keeps under `name`.
    fn save_provider_state(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        name: &str,
        value_json: &str,
        updated_at: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
