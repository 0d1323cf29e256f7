//! Export Center job records and the [`ExportRepository`] trait: the jobs
//! `stella serve` runs for `POST /exports`, scoped to the caller's tenant.
//!
//! Plain records: this crate does not run exports, read their files or
//! parse the request JSON (the service stores and reads it back).

use std::future::Future;

use uuid::Uuid;

use crate::{StoreError, TenantContext};

/// The states of a job. `queued` and `running` are the live ones.
pub const EXPORT_STATUSES: [&str; 5] = ["queued", "running", "succeeded", "failed", "deleted"];

/// One export job as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportJobRecord {
    pub export_id: Uuid,
    /// `mirror:full`, `mirror:delta` or `json:raw`.
    pub profile: String,
    /// The request as accepted (selection and options), JSON.
    pub request_json: String,
    /// One of [`EXPORT_STATUSES`].
    pub status: String,
    pub bytes_done: i64,
    pub bytes_total: i64,
    pub entries_done: i64,
    pub entries_total: i64,
    /// `sha256:<hex>` of the export's `manifest.json` (when succeeded).
    pub manifest_digest: Option<String>,
    /// The file to download, relative to the data directory.
    pub file_path: Option<String>,
    pub file_size: Option<i64>,
    /// Hex sha256 of the file (the download's ETag).
    pub file_sha256: Option<String>,
    /// Why it failed (`""` otherwise).
    pub reason: String,
    /// The server's verification of the finished file (a JSON report).
    pub verification_json: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The client that created it.
    pub created_by: String,
}

/// Export jobs, per tenant.
pub trait ExportRepository {
    /// Records a new job for `ctx`'s tenant.
    fn insert_export_job(
        &self,
        ctx: &TenantContext,
        job: &ExportJobRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get_export_job(
        &self,
        ctx: &TenantContext,
        export_id: Uuid,
    ) -> impl Future<Output = Result<Option<ExportJobRecord>, StoreError>> + Send;
    /// Jobs in id order (UUIDv7, so creation order) after `after`, at most `limit`.
    fn list_export_jobs(
        &self,
        ctx: &TenantContext,
        after: Option<Uuid>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ExportJobRecord>, StoreError>> + Send;
    /// Writes every mutable field (status, progress, result, reason,
    /// times) of the job; false when the tenant has no such job.
    fn update_export_job(
        &self,
        ctx: &TenantContext,
        job: &ExportJobRecord,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// At start-up: every `queued` or `running` job of every tenant becomes
    /// `failed` with `reason`, finished at `at`. Returns how many.
    fn fail_live_export_jobs(
        &self,
        reason: &str,
        at: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Columns in the order both backends read them.
pub(crate) const EXPORT_COLUMNS: &str = "profile, request_json, status, bytes_done, bytes_total, \
     entries_done, entries_total, manifest_digest, file_path, file_size, file_sha256, reason, \
     verification_json, created_at, started_at, finished_at, created_by";

/// Reads a row of [`EXPORT_COLUMNS`] plus `export_id` (as text).
pub(crate) fn export_from_row<'r, R>(r: &'r R) -> Result<ExportJobRecord, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: String = r.try_get("export_id")?;
    Ok(ExportJobRecord {
        export_id: Uuid::parse_str(&id)
            .map_err(|_| StoreError::Corrupt(format!("export id `{id}`")))?,
        profile: r.try_get("profile")?,
        request_json: r.try_get("request_json")?,
        status: r.try_get("status")?,
        bytes_done: r.try_get("bytes_done")?,
        bytes_total: r.try_get("bytes_total")?,
        entries_done: r.try_get("entries_done")?,
        entries_total: r.try_get("entries_total")?,
        manifest_digest: r.try_get("manifest_digest")?,
        file_path: r.try_get("file_path")?,
        file_size: r.try_get("file_size")?,
        file_sha256: r.try_get("file_sha256")?,
        reason: r.try_get("reason")?,
        verification_json: r.try_get("verification_json")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        created_by: r.try_get("created_by")?,
    })
}
