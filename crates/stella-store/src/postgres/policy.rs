//! Postgres implementation of [`crate::PolicyRepository`]. Every statement
//! runs in a transaction begun by `tenant_tx` (row-level security on
//! `app.tenant_id`) and also binds the tenant.

use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use crate::policy::{PolicyRevisionRecord, ReportKeyRecord};
use crate::{StoreError, TenantContext};

const REVISION_COLUMNS: &str =
    "revision_id, policy_digest, canonical, created_at, created_by, active";

fn revision_from_row(r: &PgRow) -> Result<PolicyRevisionRecord, StoreError> {
    Ok(PolicyRevisionRecord {
        revision_id: r.try_get("revision_id")?,
        policy_digest: r.try_get("policy_digest")?,
        canonical: r.try_get("canonical")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        active: r.try_get("active")?,
    })
}

impl PostgresStore {
    pub async fn insert_policy_revision(
        &self,
        ctx: &TenantContext,
        rev: &PolicyRevisionRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let done = sqlx::query(
            "INSERT INTO policy_revisions
                (tenant_id, revision_id, policy_digest, canonical, created_at, created_by, active)
             VALUES ($1, $2, $3, $4, $5, $6, FALSE) ON CONFLICT (tenant_id, revision_id) DO NOTHING",
        )
        .bind(ctx.tenant())
        .bind(&rev.revision_id)
        .bind(&rev.policy_digest)
        .bind(&rev.canonical)
        .bind(&rev.created_at)
        .bind(&rev.created_by)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Explicitly: a dropped transaction would keep its write lock
            // until the connection is used again.
            tx.rollback().await?;
            return Err(StoreError::AlreadyExists(rev.revision_id.clone()));
        }
        let target = format!("policy/{}", rev.revision_id);
        super::audit(&mut tx, ctx, "policy.import", &target, &rev.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_policy_revision(
        &self,
        ctx: &TenantContext,
        revision_id: Option<&str>,
    ) -> Result<Option<PolicyRevisionRecord>, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let row = match revision_id {
            Some(id) => {
                sqlx::query(&format!(
                    "SELECT {REVISION_COLUMNS} FROM policy_revisions
                     WHERE tenant_id = $1 AND revision_id = $2"
                ))
                .bind(ctx.tenant())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {REVISION_COLUMNS} FROM policy_revisions
                     WHERE tenant_id = $1 AND active"
                ))
                .bind(ctx.tenant())
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        row.map(|r| revision_from_row(&r)).transpose()
    }

    pub async fn activate_policy_revision(
        &self,
        ctx: &TenantContext,
        revision_id: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        // Lock the tenant's revisions so two activations serialise.
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT revision_id FROM policy_revisions WHERE tenant_id = $1 FOR UPDATE",
        )
        .bind(ctx.tenant())
        .fetch_all(&mut *tx)
        .await?;
        if !rows.iter().any(|(id,)| id == revision_id) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("UPDATE policy_revisions SET active = FALSE WHERE tenant_id = $1 AND active")
            .bind(ctx.tenant())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE policy_revisions SET active = TRUE WHERE tenant_id = $1 AND revision_id = $2",
        )
        .bind(ctx.tenant())
        .bind(revision_id)
        .execute(&mut *tx)
        .await?;
        let target = format!("policy/{revision_id}");
        super::audit(&mut tx, ctx, "policy.activate", &target, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn add_report_key(
        &self,
        ctx: &TenantContext,
        key: &ReportKeyRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        sqlx::query(
            "UPDATE report_keys SET retired_at = $1 WHERE tenant_id = $2 AND retired_at IS NULL",
        )
        .bind(&key.created_at)
        .bind(ctx.tenant())
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "INSERT INTO report_keys (tenant_id, kid, algorithm, public_pem, created_at, retired_at)
             VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (tenant_id, kid) DO NOTHING",
        )
        .bind(ctx.tenant())
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_pem)
        .bind(&key.created_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Explicitly: a dropped transaction would keep its write lock
            // until the connection is used again.
            tx.rollback().await?;
            return Err(StoreError::AlreadyExists(key.kid.clone()));
        }
        let target = format!("report-key/{}", key.kid);
        super::audit(&mut tx, ctx, "report-key.rotate", &target, &key.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_report_keys(
        &self,
        ctx: &TenantContext,
    ) -> Result<Vec<ReportKeyRecord>, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let rows = sqlx::query(
            "SELECT kid, algorithm, public_pem, created_at, retired_at FROM report_keys
             WHERE tenant_id = $1 ORDER BY (retired_at IS NULL) DESC, created_at DESC, kid DESC",
        )
        .bind(ctx.tenant())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ReportKeyRecord {
                    kid: r.try_get("kid")?,
                    algorithm: r.try_get("algorithm")?,
                    public_pem: r.try_get("public_pem")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                })
            })
            .collect()
    }
}
