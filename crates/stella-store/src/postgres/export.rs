//! Postgres implementation of [`crate::ExportRepository`]. Every statement
//! runs in a transaction begun by `tenant_tx` (row-level security on
//! `app.tenant_id`) and also binds the tenant.

use uuid::Uuid;

use super::PostgresStore;
use crate::export::{EXPORT_COLUMNS, ExportJobRecord, export_from_row};
use crate::{StoreError, TenantContext};

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

impl PostgresStore {
    pub async fn insert_export_job(
        &self,
        ctx: &TenantContext,
        job: &ExportJobRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        sqlx::query(&format!(
            "INSERT INTO export_jobs (export_id, tenant_id, {EXPORT_COLUMNS})
             VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19)"
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_export_job(
        &self,
        ctx: &TenantContext,
        export_id: Uuid,
    ) -> Result<Option<ExportJobRecord>, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let row = sqlx::query(&format!(
            "SELECT export_id::text AS export_id, {EXPORT_COLUMNS} FROM export_jobs
             WHERE tenant_id = $1 AND export_id = $2::uuid"
        ))
        .bind(ctx.tenant())
        .bind(export_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(export_from_row).transpose()
    }

    pub async fn list_export_jobs(
        &self,
        ctx: &TenantContext,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportJobRecord>, StoreError> {
        let after = after.map_or_else(|| NIL_UUID.to_string(), |u| u.to_string());
        let mut tx = self.tenant_tx(ctx).await?;
        let rows = sqlx::query(&format!(
            "SELECT export_id::text AS export_id, {EXPORT_COLUMNS} FROM export_jobs
             WHERE tenant_id = $1 AND export_id > $2::uuid ORDER BY export_jobs.export_id LIMIT $3"
        ))
        .bind(ctx.tenant())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(export_from_row).collect()
    }

    pub async fn update_export_job(
        &self,
        ctx: &TenantContext,
        job: &ExportJobRecord,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let done = sqlx::query(
            "UPDATE export_jobs SET status = $1, bytes_done = $2, bytes_total = $3,
                entries_done = $4, entries_total = $5, manifest_digest = $6, file_path = $7,
                file_size = $8, file_sha256 = $9, reason = $10, verification_json = $11,
                started_at = $12, finished_at = $13
             WHERE tenant_id = $14 AND export_id = $15::uuid",
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn fail_live_export_jobs(&self, reason: &str, at: &str) -> Result<u64, StoreError> {
        // Tenants come from the operator-level clients table; each tenant's
        // jobs are then updated under its own row-level security.
        let tenants: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM clients ORDER BY tenant_id")
                .fetch_all(&self.pool)
                .await?;
        let mut total = 0;
        for tenant in tenants {
            let ctx = TenantContext::from_verified_identity(tenant.clone(), "startup");
            let mut tx = self.tenant_tx(&ctx).await?;
            let done = sqlx::query(
                "UPDATE export_jobs SET status = 'failed', reason = $1, finished_at = $2
                 WHERE tenant_id = $3 AND status IN ('queued', 'running')",
            )
            .bind(reason)
            .bind(at)
            .bind(&tenant)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            total += done.rows_affected();
        }
        Ok(total)
    }
}
