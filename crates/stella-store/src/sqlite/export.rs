//! SQLite implementation of [`crate::ExportRepository`]. Every statement
//! binds the tenant from the [`TenantContext`] (but the start-up sweep,
//! which is for every tenant by design).

use uuid::Uuid;

use super::SqliteStore;
use crate::export::{EXPORT_COLUMNS, ExportJobRecord, export_from_row};
use crate::{StoreError, TenantContext};

impl SqliteStore {
    pub async fn insert_export_job(
        &self,
        ctx: &TenantContext,
        job: &ExportJobRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO export_jobs (export_id, tenant_id, {EXPORT_COLUMNS})
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(job.export_id.to_string())
        .bind(ctx.tenant())
        .bind(&job.profile)
        .bind(&job.request_json)
        .bind(&job.status)
        .bind(job.bytes_done)
        .bind(job.bytes_total)
        .bind(job.entries_done)
        .bind(job.entries_total)
        .bind(&job.manifest_digest)
        .bind(&job.file_path)
        .bind(job.file_size)
        .bind(&job.file_sha256)
        .bind(&job.reason)
        .bind(&job.verification_json)
        .bind(&job.created_at)
        .bind(&job.started_at)
        .bind(&job.finished_at)
        .bind(&job.created_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_export_job(
        &self,
        ctx: &TenantContext,
        export_id: Uuid,
    ) -> Result<Option<ExportJobRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT export_id, {EXPORT_COLUMNS} FROM export_jobs
             WHERE tenant_id = ? AND export_id = ?"
        ))
        .bind(ctx.tenant())
        .bind(export_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(export_from_row).transpose()
    }

    pub async fn list_export_jobs(
        &self,
        ctx: &TenantContext,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportJobRecord>, StoreError> {
        let after = after.map(|u| u.to_string()).unwrap_or_default();
        let rows = sqlx::query(&format!(
            "SELECT export_id, {EXPORT_COLUMNS} FROM export_jobs
             WHERE tenant_id = ? AND export_id > ? ORDER BY export_id LIMIT ?"
        ))
        .bind(ctx.tenant())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(export_from_row).collect()
    }

    pub async fn update_export_job(
        &self,
        ctx: &TenantContext,
        job: &ExportJobRecord,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE export_jobs SET status = ?, bytes_done = ?, bytes_total = ?, entries_done = ?,
                entries_total = ?, manifest_digest = ?, file_path = ?, file_size = ?,
                file_sha256 = ?, reason = ?, verification_json = ?, started_at = ?, finished_at = ?
             WHERE tenant_id = ? AND export_id = ?",
        )
        .bind(&job.status)
        .bind(job.bytes_done)
        .bind(job.bytes_total)
        .bind(job.entries_done)
        .bind(job.entries_total)
        .bind(&job.manifest_digest)
        .bind(&job.file_path)
        .bind(job.file_size)
        .bind(&job.file_sha256)
        .bind(&job.reason)
        .bind(&job.verification_json)
        .bind(&job.started_at)
        .bind(&job.finished_at)
        .bind(ctx.tenant())
        .bind(job.export_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn fail_live_export_jobs(&self, reason: &str, at: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE export_jobs SET status = 'failed', reason = ?, finished_at = ?
             WHERE status IN ('queued', 'running')",
        )
        .bind(reason)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
