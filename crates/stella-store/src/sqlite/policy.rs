//! SQLite implementation of [`crate::PolicyRepository`]. Every statement
//! binds the tenant from the [`TenantContext`].

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Outcome, SqliteStore};
use crate::policy::{PolicyRevisionRecord, ReportKeyRecord};
use crate::{StoreError, TenantContext};

const REVISION_COLUMNS: &str =
    "revision_id, policy_digest, canonical, created_at, created_by, active";

fn revision_from_row(r: &SqliteRow) -> Result<PolicyRevisionRecord, StoreError> {
    Ok(PolicyRevisionRecord {
        revision_id: r.try_get("revision_id")?,
        policy_digest: r.try_get("policy_digest")?,
        canonical: r.try_get("canonical")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        active: r.try_get::<i64, _>("active")? != 0,
    })
}

impl SqliteStore {
    pub async fn insert_policy_revision(
        &self,
        ctx: &TenantContext,
        rev: &PolicyRevisionRecord,
    ) -> Result<(), StoreError> {
        self.write(async |conn| {
            let done = sqlx::query(
                "INSERT INTO policy_revisions
                    (tenant_id, revision_id, policy_digest, canonical, created_at, created_by, active)
                 VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (tenant_id, revision_id) DO NOTHING",
            )
            .bind(ctx.tenant())
            .bind(&rev.revision_id)
            .bind(&rev.policy_digest)
            .bind(&rev.canonical)
            .bind(&rev.created_at)
            .bind(&rev.created_by)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                let taken = StoreError::AlreadyExists(rev.revision_id.clone());
                return Ok(Outcome::Refuse(taken));
            }
            let target = format!("policy/{}", rev.revision_id);
            super::audit(conn, ctx, "policy.import", &target, &rev.created_at).await?;
            Ok(Outcome::Commit(()))
        })
        .await
    }

    pub async fn get_policy_revision(
        &self,
        ctx: &TenantContext,
        revision_id: Option<&str>,
    ) -> Result<Option<PolicyRevisionRecord>, StoreError> {
        let row = match revision_id {
            Some(id) => {
                sqlx::query(&format!(
                    "SELECT {REVISION_COLUMNS} FROM policy_revisions
                     WHERE tenant_id = ? AND revision_id = ?"
                ))
                .bind(ctx.tenant())
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {REVISION_COLUMNS} FROM policy_revisions
                     WHERE tenant_id = ? AND active = 1"
                ))
                .bind(ctx.tenant())
                .fetch_optional(&self.pool)
                .await?
            }
        };
        row.map(|r| revision_from_row(&r)).transpose()
    }

    pub async fn activate_policy_revision(
        &self,
        ctx: &TenantContext,
        revision_id: &str,
        at: &str,
    ) -> Result<bool, StoreError> {
        self.write(async |conn| {
            // Deactivate first, undone below when the tenant has no such
            // revision.
            sqlx::query(
                "UPDATE policy_revisions SET active = 0 WHERE tenant_id = ? AND active = 1",
            )
            .bind(ctx.tenant())
            .execute(&mut *conn)
            .await?;
            let done = sqlx::query(
                "UPDATE policy_revisions SET active = 1 WHERE tenant_id = ? AND revision_id = ?",
            )
            .bind(ctx.tenant())
            .bind(revision_id)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(Outcome::RollBack(false));
            }
            let target = format!("policy/{revision_id}");
            super::audit(conn, ctx, "policy.activate", &target, at).await?;
            Ok(Outcome::Commit(true))
        })
        .await
    }

    pub async fn add_report_key(
        &self,
        ctx: &TenantContext,
        key: &ReportKeyRecord,
    ) -> Result<(), StoreError> {
        self.write(async |conn| {
            sqlx::query(
                "UPDATE report_keys SET retired_at = ? WHERE tenant_id = ? AND retired_at IS NULL",
            )
            .bind(&key.created_at)
            .bind(ctx.tenant())
            .execute(&mut *conn)
            .await?;
            let done = sqlx::query(
                "INSERT INTO report_keys (tenant_id, kid, algorithm, public_pem, created_at, retired_at)
                 VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (tenant_id, kid) DO NOTHING",
            )
            .bind(ctx.tenant())
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.public_pem)
            .bind(&key.created_at)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(Outcome::Refuse(StoreError::AlreadyExists(key.kid.clone())));
            }
            let target = format!("report-key/{}", key.kid);
            super::audit(conn, ctx, "report-key.rotate", &target, &key.created_at).await?;
            Ok(Outcome::Commit(()))
        })
        .await
    }

    pub async fn list_report_keys(
        &self,
        ctx: &TenantContext,
    ) -> Result<Vec<ReportKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, public_pem, created_at, retired_at FROM report_keys
             WHERE tenant_id = ? ORDER BY (retired_at IS NULL) DESC, created_at DESC, kid DESC",
        )
        .bind(ctx.tenant())
        .fetch_all(&self.pool)
        .await?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    async fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::open(&url, &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

    fn revision(id: &str, body: &str) -> PolicyRevisionRecord {
        PolicyRevisionRecord {
            revision_id: id.into(),
            policy_digest: format!("sha256:{id}"),
            canonical: body.as_bytes().to_vec(),
            created_at: "2026-01-01T00:00:00Z".into(),
            created_by: "admin".into(),
            active: false,
        }
    }

    fn key(kid: &str, at: &str) -> ReportKeyRecord {
        ReportKeyRecord {
            kid: kid.into(),
            algorithm: "ed25519".into(),
            public_pem: format!("PEM {kid}"),
            created_at: at.into(),
            retired_at: None,
        }
    }

    #[tokio::test]
    async fn one_active_revision_per_tenant_and_tenants_are_isolated() {
        let (_d, s) = fresh().await;
        let a = TenantContext::from_verified_identity("a", "ca");
        let b = TenantContext::from_verified_identity("b", "cb");
        s.insert_policy_revision(&a, &revision("r1", "{\"version\":1}"))
            .await
            .unwrap();
        s.insert_policy_revision(&a, &revision("r2", "{\"version\":2}"))
            .await
            .unwrap();
        assert!(matches!(
            s.insert_policy_revision(&a, &revision("r1", "{}")).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(s.get_policy_revision(&a, None).await.unwrap().is_none());
        assert!(s.activate_policy_revision(&a, "r1", "t").await.unwrap());
        assert!(s.activate_policy_revision(&a, "r2", "t").await.unwrap());
        let active = s.get_policy_revision(&a, None).await.unwrap().unwrap();
        assert_eq!(active.revision_id, "r2");
        assert_eq!(active.canonical, b"{\"version\":2}");
        assert!(
            !s.get_policy_revision(&a, Some("r1"))
                .await
                .unwrap()
                .unwrap()
                .active
        );
        // Tenant b sees none of a's revisions and cannot activate them.
        assert!(
            s.get_policy_revision(&b, Some("r1"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.get_policy_revision(&b, None).await.unwrap().is_none());
        assert!(!s.activate_policy_revision(&b, "r1", "t").await.unwrap());
        // The same revision id in another tenant is another row.
        s.insert_policy_revision(&b, &revision("r1", "{\"b\":1}"))
            .await
            .unwrap();
        assert_eq!(
            s.get_policy_revision(&a, Some("r1"))
                .await
                .unwrap()
                .unwrap()
                .canonical,
            b"{\"version\":1}"
        );
    }

    #[tokio::test]
    async fn a_new_report_key_retires_the_previous_one_of_that_tenant_only() {
        let (_d, s) = fresh().await;
        let a = TenantContext::from_verified_identity("a", "ca");
        let b = TenantContext::from_verified_identity("b", "cb");
        s.add_report_key(&a, &key("k1", "2026-01-01T00:00:00Z"))
            .await
            .unwrap();
        s.add_report_key(&b, &key("kb", "2026-01-01T00:00:00Z"))
            .await
            .unwrap();
        s.add_report_key(&a, &key("k2", "2026-01-02T00:00:00Z"))
            .await
            .unwrap();
        let keys = s.list_report_keys(&a).await.unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["k2", "k1"]);
        assert_eq!(keys[0].retired_at, None);
        assert_eq!(keys[1].retired_at.as_deref(), Some("2026-01-02T00:00:00Z"));
        let b_keys = s.list_report_keys(&b).await.unwrap();
        assert_eq!(b_keys.len(), 1);
        assert_eq!(b_keys[0].retired_at, None);
    }
}
