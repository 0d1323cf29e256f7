//! Policy revisions and report-signing keys per tenant, and the
//! [`PolicyRepository`] trait.
//!
//! A revision is the canonical JSON of an imported policy with its digest;
//! at most one revision of a tenant is active (the database enforces it).
//! Report keys are public halves only (SPKI PEM): the private halves stay
//! files in the service's data directory, like the token-signing keys.
//!
//! This crate does not parse policies or keys; the service does.

use std::future::Future;

use crate::{StoreError, TenantContext};

/// One stored policy revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRevisionRecord {
    pub revision_id: String,
    /// `sha256:<hex>` of `canonical`.
    pub policy_digest: String,
    /// The policy's canonical JSON bytes, exactly as exported.
    pub canonical: Vec<u8>,
    pub created_at: String,
    pub created_by: String,
    pub active: bool,
}

/// The public half of a report-signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportKeyRecord {
    pub kid: String,
    /// `ed25519` or `ecdsa-p256`.
    pub algorithm: String,
    pub public_pem: String,
    pub created_at: String,
    /// Set when a newer key took over; the key still verifies old reports.
    pub retired_at: Option<String>,
}

/// Policy revisions and report keys, per tenant.
pub trait PolicyRepository {
    /// Stores a new (inactive) revision; `AlreadyExists` if the id is taken.
    fn insert_policy_revision(
        &self,
        ctx: &TenantContext,
        revision: &PolicyRevisionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The revision `revision_id`, or the active one when `None`.
    fn get_policy_revision(
        &self,
        ctx: &TenantContext,
        revision_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<PolicyRevisionRecord>, StoreError>> + Send;
    /// Makes `revision_id` the tenant's only active revision (and records
    /// it in the audit log); false when the tenant has no such revision.
    fn activate_policy_revision(
        &self,
        ctx: &TenantContext,
        revision_id: &str,
        at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Adds a key and retires the tenant's current one, in one transaction.
    fn add_report_key(
        &self,
        ctx: &TenantContext,
        key: &ReportKeyRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The tenant's report keys, newest first.
    fn list_report_keys(
        &self,
        ctx: &TenantContext,
    ) -> impl Future<Output = Result<Vec<ReportKeyRecord>, StoreError>> + Send;
}
