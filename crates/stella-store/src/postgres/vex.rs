//! Postgres implementation of [`crate::VexRepository`]. Every statement
//! runs in a transaction begun by `tenant_tx` (row-level security on
//! `app.tenant_id`) and also binds the tenant; one transaction per
//! document. Placeholders are written `?` and numbered by [`pg`].

use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use crate::vex::{
    IngestOutcome, ProviderConfigRecord, ProviderRunRecord, StoredVexStatement, VexDocumentRecord,
    VexStatementQuery, VexStatementRecord, VexTrustRecord,
};
use crate::{StoreError, TenantContext};

/// Numbers the `?` placeholders of `sql` as `$1`, `$2`, ... (no statement
/// here has a `?` anywhere else).
fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

const DOC_COLUMNS: &str = "d.provider_id, d.issuer, d.document_id, d.document_version, \
     d.document_timestamp, d.author, d.signed, d.image_digest, d.evidence_digest, d.ingested_at";

fn doc_from_row(r: &PgRow) -> Result<VexDocumentRecord, StoreError> {
    Ok(VexDocumentRecord {
        provider_id: r.try_get("provider_id")?,
        issuer: r.try_get("issuer")?,
        document_id: r.try_get("document_id")?,
        document_version: r.try_get("document_version")?,
        document_timestamp: r.try_get("document_timestamp")?,
        author: r.try_get("author")?,
        signed: r.try_get::<bool, _>("signed")?,
        image_digest: r.try_get("image_digest")?,
        evidence_digest: r.try_get("evidence_digest")?,
        ingested_at: r.try_get("ingested_at")?,
    })
}

impl PostgresStore {
    pub async fn ingest_vex_document(
        &self,
        ctx: &TenantContext,
        doc: &VexDocumentRecord,
        statements: &[VexStatementRecord],
    ) -> Result<IngestOutcome, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let existing: Option<(i64, i64)> = sqlx::query_as(&pg("SELECT doc_key, document_version FROM vex_documents
             WHERE tenant_id = ? AND provider_id = ? AND issuer = ? AND document_id = ? AND image_digest = ?"),
        )
        .bind(ctx.tenant())
        .bind(&doc.provider_id)
        .bind(&doc.issuer)
        .bind(&doc.document_id)
        .bind(&doc.image_digest)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match existing {
            Some((_, version)) if version >= doc.document_version => {
                return Ok(IngestOutcome::Unchanged);
            }
            Some((key, _)) => {
                sqlx::query(&pg(
                    "DELETE FROM vex_documents WHERE tenant_id = ? AND doc_key = ?",
                ))
                .bind(ctx.tenant())
                .bind(key)
                .execute(&mut *tx)
                .await?;
                IngestOutcome::Superseded
            }
            None => IngestOutcome::Inserted,
        };
        let doc_key: i64 = sqlx::query_scalar(&pg("INSERT INTO vex_documents (tenant_id, provider_id, issuer, document_id, document_version,
                document_timestamp, author, signed, image_digest, evidence_digest, ingested_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING doc_key"),
        )
        .bind(ctx.tenant())
        .bind(&doc.provider_id)
        .bind(&doc.issuer)
        .bind(&doc.document_id)
        .bind(doc.document_version)
        .bind(&doc.document_timestamp)
        .bind(&doc.author)
        .bind(doc.signed)
        .bind(&doc.image_digest)
        .bind(&doc.evidence_digest)
        .bind(&doc.ingested_at)
        .fetch_one(&mut *tx)
        .await?;
        for s in statements {
            let key: i64 = sqlx::query_scalar(&pg("INSERT INTO vex_statements (tenant_id, doc_key, statement_digest, vulnerability, status, statement_json)
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING statement_key"),
            )
            .bind(ctx.tenant())
            .bind(doc_key)
            .bind(&s.digest)
            .bind(&s.vulnerability)
            .bind(&s.status)
            .bind(&s.statement_json)
            .fetch_one(&mut *tx)
            .await?;
            for p in &s.product_keys {
                sqlx::query(&pg(
                    "INSERT INTO vex_statement_products (tenant_id, statement_key, product_key)
                     VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                ))
                .bind(ctx.tenant())
                .bind(key)
                .bind(p)
                .execute(&mut *tx)
                .await?;
            }
            for v in &s.vuln_keys {
                sqlx::query(&pg(
                    "INSERT INTO vex_statement_vulns (tenant_id, statement_key, vuln_key)
                     VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                ))
                .bind(ctx.tenant())
                .bind(key)
                .bind(v)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(outcome)
    }

    pub async fn has_vex_evidence(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        image_digest: &str,
        evidence_digest: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let found: Option<i64> = sqlx::query_scalar(&pg(
            "SELECT 1 FROM vex_documents WHERE tenant_id = ? AND provider_id = ?
             AND image_digest = ? AND evidence_digest = ? LIMIT 1",
        ))
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(image_digest)
        .bind(evidence_digest)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(found.is_some())
    }

    pub async fn query_vex_statements(
        &self,
        ctx: &TenantContext,
        q: &VexStatementQuery,
    ) -> Result<Vec<StoredVexStatement>, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        statements_in(&mut tx, ctx, q).await
    }

    /// The tenant's trust configuration and one page of statements, in one
    /// transaction: one `BEGIN`/`set_config`/`COMMIT` for both, where a
    /// consensus request would otherwise pay them twice.
    pub async fn vex_trust_and_statements(
        &self,
        ctx: &TenantContext,
        q: &VexStatementQuery,
    ) -> Result<(Option<VexTrustRecord>, Vec<StoredVexStatement>), StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let trust = trust_in(&mut tx, ctx).await?;
        let statements = statements_in(&mut tx, ctx, q).await?;
        tx.commit().await?;
        Ok((trust, statements))
    }

    pub async fn get_provider_config(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
    ) -> Result<Option<ProviderConfigRecord>, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let row = sqlx::query(&pg(
            "SELECT provider_id, values_json, updated_at, updated_by FROM vex_provider_configs
             WHERE tenant_id = ? AND provider_id = ?",
        ))
        .bind(ctx.tenant())
        .bind(provider_id)
        .fetch_optional(&mut *tx)
        .await?;
        row.map(|r| config_from_row(&r)).transpose()
    }

    pub async fn save_provider_config(
        &self,
        ctx: &TenantContext,
        config: &ProviderConfigRecord,
        references: &[(String, uuid::Uuid)],
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        sqlx::query(&pg(
            "DELETE FROM vex_provider_artifact_uses WHERE tenant_id = ? AND provider_id = ?",
        ))
        .bind(ctx.tenant())
        .bind(&config.provider_id)
        .execute(&mut *tx)
        .await?;
        for (field, artifact) in references {
            // The same statement as the artifact store's reference hook.
            let done = sqlx::query(&pg("INSERT INTO vex_provider_artifact_uses
                    (tenant_id, provider_id, field_key, artifact_id)
                 SELECT tenant_id, provider_id, ?, artifact_id FROM vex_provider_artifact_refs
                 WHERE tenant_id = ? AND provider_id = ? AND artifact_id = ?::uuid
                 ON CONFLICT (tenant_id, provider_id, field_key) DO UPDATE SET artifact_id = excluded.artifact_id"),
            )
            .bind(field)
            .bind(ctx.tenant())
            .bind(&config.provider_id)
            .bind(artifact.to_string())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
        }
        sqlx::query(&pg("INSERT INTO vex_provider_configs (tenant_id, provider_id, values_json, updated_at, updated_by)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, provider_id) DO UPDATE SET
                values_json = excluded.values_json, updated_at = excluded.updated_at,
                updated_by = excluded.updated_by"),
        )
        .bind(ctx.tenant())
        .bind(&config.provider_id)
        .bind(&config.values_json)
        .bind(&config.updated_at)
        .bind(&config.updated_by)
        .execute(&mut *tx)
        .await?;
        super::audit(
            &mut tx,
            ctx,
            "provider.configure",
            &config.provider_id,
            &config.updated_at,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn list_provider_configs_all(
        &self,
    ) -> Result<Vec<(String, ProviderConfigRecord)>, StoreError> {
        // Tenants come from the operator-level clients table; each tenant's
        // configurations are then read under its own row-level security.
        let tenants: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM clients ORDER BY tenant_id")
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::new();
        for tenant in tenants {
            let ctx = TenantContext::from_verified_identity(tenant.clone(), "runner");
            let mut tx = self.tenant_tx(&ctx).await?;
            let rows = sqlx::query(&pg(
                "SELECT provider_id, values_json, updated_at, updated_by
                 FROM vex_provider_configs WHERE tenant_id = ? ORDER BY provider_id",
            ))
            .bind(&tenant)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                out.push((tenant.clone(), config_from_row(r)?));
            }
        }
        Ok(out)
    }

    pub async fn record_provider_run(
        &self,
        ctx: &TenantContext,
        run: &ProviderRunRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        sqlx::query(&pg("INSERT INTO vex_provider_runs
                (tenant_id, provider_id, image, started_at, finished_at, result, reason, counts_json,
                 fingerprint)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, provider_id, image) DO UPDATE SET
                started_at = excluded.started_at, finished_at = excluded.finished_at,
                result = excluded.result, reason = excluded.reason, counts_json = excluded.counts_json,
                fingerprint = excluded.fingerprint"),
        )
        .bind(ctx.tenant())
        .bind(&run.provider_id)
        .bind(&run.image)
        .bind(&run.started_at)
        .bind(&run.finished_at)
        .bind(&run.result)
        .bind(&run.reason)
        .bind(&run.counts_json)
        .bind(&run.fingerprint)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn provider_runs(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
    ) -> Result<Vec<ProviderRunRecord>, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let rows = sqlx::query(&pg(
            "SELECT provider_id, image, started_at, finished_at, result, reason, counts_json,
                    fingerprint
             FROM vex_provider_runs WHERE tenant_id = ? AND provider_id = ? ORDER BY image",
        ))
        .bind(ctx.tenant())
        .bind(provider_id)
        .fetch_all(&mut *tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProviderRunRecord {
                    provider_id: r.try_get("provider_id")?,
                    image: r.try_get("image")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    result: r.try_get("result")?,
                    reason: r.try_get("reason")?,
                    counts_json: r.try_get("counts_json")?,
                    fingerprint: r.try_get("fingerprint")?,
                })
            })
            .collect()
    }

    pub async fn acquire_provider_lease(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        let done = sqlx::query(&pg(
            "INSERT INTO vex_provider_leases (tenant_id, provider_id, holder, expires_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant_id, provider_id) DO UPDATE SET
                holder = excluded.holder, expires_at = excluded.expires_at
             WHERE vex_provider_leases.holder = excluded.holder
                OR vex_provider_leases.expires_at <= ?",
        ))
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(holder)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn release_provider_lease(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        sqlx::query(&pg("DELETE FROM vex_provider_leases WHERE tenant_id = ? AND provider_id = ? AND holder = ?"),
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(holder)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn config_from_row(r: &PgRow) -> Result<ProviderConfigRecord, StoreError> {
    Ok(ProviderConfigRecord {
        provider_id: r.try_get("provider_id")?,
        values_json: r.try_get("values_json")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// The tenant's issuer trust and provider state (migration 0008, RLS).
impl PostgresStore {
    pub async fn get_vex_trust(
        &self,
        ctx: &TenantContext,
    ) -> Result<Option<VexTrustRecord>, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        trust_in(&mut tx, ctx).await
    }

    pub async fn save_vex_trust(
        &self,
        ctx: &TenantContext,
        trust: &VexTrustRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        sqlx::query(&pg(
            "INSERT INTO vex_trust_configs (tenant_id, trust_json, updated_at, updated_by)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant_id) DO UPDATE SET trust_json = excluded.trust_json,
                updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        ))
        .bind(ctx.tenant())
        .bind(&trust.trust_json)
        .bind(&trust.updated_at)
        .bind(&trust.updated_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_provider_state(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        Ok(
            sqlx::query_scalar(&pg("SELECT value_json FROM vex_provider_state
             WHERE tenant_id = ? AND provider_id = ? AND name = ?"))
            .bind(ctx.tenant())
            .bind(provider_id)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?,
        )
    }

    pub async fn save_provider_state(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        name: &str,
        value_json: &str,
        updated_at: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        sqlx::query(&pg(
            "INSERT INTO vex_provider_state
                (tenant_id, provider_id, name, value_json, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, provider_id, name) DO UPDATE SET
                value_json = excluded.value_json, updated_at = excluded.updated_at",
        ))
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(name)
        .bind(value_json)
        .bind(updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// One page of statements, read in the caller's tenant transaction.
async fn statements_in(
    tx: &mut sqlx::PgConnection,
    ctx: &TenantContext,
    q: &VexStatementQuery,
) -> Result<Vec<StoredVexStatement>, StoreError> {
    let mut sql = format!(
        "SELECT s.statement_key, s.statement_digest, s.statement_json, {DOC_COLUMNS}
         FROM vex_statements s JOIN vex_documents d ON d.doc_key = s.doc_key AND d.tenant_id = s.tenant_id
         WHERE s.tenant_id = ? AND s.statement_key > ?"
    );
    if q.product_key.is_some() {
        sql.push_str(
            " AND s.statement_key IN (SELECT statement_key FROM vex_statement_products
               WHERE tenant_id = ? AND product_key = ?)",
        );
    }
    if q.vuln_key.is_some() {
        sql.push_str(
            " AND s.statement_key IN (SELECT statement_key FROM vex_statement_vulns
               WHERE tenant_id = ? AND vuln_key = ?)",
        );
    }
    if q.issuer.is_some() {
        sql.push_str(" AND d.issuer = ?");
    }
    sql.push_str(" ORDER BY s.statement_key LIMIT ?");
    let sql = pg(&sql);
    let mut query = sqlx::query(&sql)
        .bind(ctx.tenant())
        .bind(q.after.unwrap_or(0));
    if let Some(p) = &q.product_key {
        query = query.bind(ctx.tenant()).bind(p);
    }
    if let Some(v) = &q.vuln_key {
        query = query.bind(ctx.tenant()).bind(v);
    }
    if let Some(i) = &q.issuer {
        query = query.bind(i);
    }
    let rows = query.bind(i64::from(q.limit)).fetch_all(&mut *tx).await?;
    rows.iter()
        .map(|r| {
            Ok(StoredVexStatement {
                key: r.try_get("statement_key")?,
                digest: r.try_get("statement_digest")?,
                statement_json: r.try_get("statement_json")?,
                document: doc_from_row(r)?,
            })
        })
        .collect()
}

/// The tenant's trust configuration, read in the caller's tenant transaction.
async fn trust_in(
    tx: &mut sqlx::PgConnection,
    ctx: &TenantContext,
) -> Result<Option<VexTrustRecord>, StoreError> {
    let row = sqlx::query(&pg(
        "SELECT trust_json, updated_at, updated_by FROM vex_trust_configs WHERE tenant_id = ?",
    ))
    .bind(ctx.tenant())
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|r| {
        Ok(VexTrustRecord {
            trust_json: r.try_get("trust_json")?,
            updated_at: r.try_get("updated_at")?,
            updated_by: r.try_get("updated_by")?,
        })
    })
    .transpose()
}
