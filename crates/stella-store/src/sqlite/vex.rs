//! SQLite implementation of [`crate::VexRepository`]. Every statement
//! binds the tenant from the [`TenantContext`]; one write transaction
//! (`SqliteStore::write`) per document.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{Outcome, SqliteStore};
use crate::vex::{
    IngestOutcome, ProviderConfigRecord, ProviderRunRecord, StoredVexStatement, VexDocumentRecord,
    VexStatementQuery, VexStatementRecord, VexTrustRecord,
};
use crate::{StoreError, TenantContext};

const DOC_COLUMNS: &str = "d.provider_id, d.issuer, d.document_id, d.document_version, \
     d.document_timestamp, d.author, d.signed, d.image_digest, d.evidence_digest, d.ingested_at";

fn doc_from_row(r: &SqliteRow) -> Result<VexDocumentRecord, StoreError> {
    Ok(VexDocumentRecord {
        provider_id: r.try_get("provider_id")?,
        issuer: r.try_get("issuer")?,
        document_id: r.try_get("document_id")?,
        document_version: r.try_get("document_version")?,
        document_timestamp: r.try_get("document_timestamp")?,
        author: r.try_get("author")?,
        signed: r.try_get::<i64, _>("signed")? != 0,
        image_digest: r.try_get("image_digest")?,
        evidence_digest: r.try_get("evidence_digest")?,
        ingested_at: r.try_get("ingested_at")?,
    })
}

/// Rows per multi-row `INSERT` (7 bound values each: well under SQLite's
/// 32,766 variables).
const ROWS_PER_INSERT: usize = 500;

/// `(?, ?, …), (?, ?, …)`: `rows` groups of `columns` placeholders.
fn placeholders(rows: usize, columns: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(", "));
    vec![group; rows].join(", ")
}

/// Inserts a document's statements and their matching keys with a few
/// multi-row `INSERT`s (not one per row: each query is a round trip to
/// sqlx's SQLite worker). The statement keys are taken explicitly after
/// the `AUTOINCREMENT` high-water mark; the caller's transaction already
/// holds SQLite's write lock (`BEGIN IMMEDIATE`), so no other writer can
/// take them meanwhile, and keys are never reused.
async fn insert_statements(
    conn: &mut SqliteConnection,
    ctx: &TenantContext,
    doc_key: i64,
    statements: &[VexStatementRecord],
) -> Result<(), StoreError> {
    let high: i64 = sqlx::query_scalar(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'vex_statements'), 0),
                    COALESCE((SELECT MAX(statement_key) FROM vex_statements), 0))",
    )
    .fetch_one(&mut *conn)
    .await?;
    let keyed: Vec<(i64, &VexStatementRecord)> = (high + 1..).zip(statements).collect();
    for chunk in keyed.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO vex_statements (statement_key, tenant_id, doc_key, statement_digest,
                vulnerability, status, statement_json) VALUES {}",
            placeholders(chunk.len(), 7)
        );
        let mut query = sqlx::query(&sql);
        for (key, s) in chunk {
            query = query
                .bind(*key)
                .bind(ctx.tenant())
                .bind(doc_key)
                .bind(&s.digest)
                .bind(&s.vulnerability)
                .bind(&s.status)
                .bind(&s.statement_json);
        }
        query.execute(&mut *conn).await?;
    }
    let products: Vec<(i64, &String)> = keyed
        .iter()
        .flat_map(|(key, s)| s.product_keys.iter().map(move |p| (*key, p)))
        .collect();
    insert_keys(
        conn,
        ctx,
        "vex_statement_products",
        "product_key",
        &products,
    )
    .await?;
    let vulns: Vec<(i64, &String)> = keyed
        .iter()
        .flat_map(|(key, s)| s.vuln_keys.iter().map(move |v| (*key, v)))
        .collect();
    insert_keys(conn, ctx, "vex_statement_vulns", "vuln_key", &vulns).await
}

/// `(statement_key, key)` rows into a matching-key table, many per query.
async fn insert_keys(
    conn: &mut SqliteConnection,
    ctx: &TenantContext,
    table: &str,
    column: &str,
    rows: &[(i64, &String)],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT OR IGNORE INTO {table} (tenant_id, statement_key, {column}) VALUES {}",
            placeholders(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for (key, value) in chunk {
            query = query.bind(ctx.tenant()).bind(*key).bind(*value);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

impl SqliteStore {
    pub async fn ingest_vex_document(
        &self,
        ctx: &TenantContext,
        doc: &VexDocumentRecord,
        statements: &[VexStatementRecord],
    ) -> Result<IngestOutcome, StoreError> {
        self.write(async |conn| {
            let existing: Option<(i64, i64)> = sqlx::query_as(
                "SELECT doc_key, document_version FROM vex_documents
                 WHERE tenant_id = ? AND provider_id = ? AND issuer = ? AND document_id = ? AND image_digest = ?",
            )
            .bind(ctx.tenant())
            .bind(&doc.provider_id)
            .bind(&doc.issuer)
            .bind(&doc.document_id)
            .bind(&doc.image_digest)
            .fetch_optional(&mut *conn)
            .await?;
            let outcome = match existing {
                Some((_, version)) if version >= doc.document_version => {
                    return Ok(Outcome::RollBack(IngestOutcome::Unchanged));
                }
                Some((key, _)) => {
                    sqlx::query("DELETE FROM vex_documents WHERE tenant_id = ? AND doc_key = ?")
                        .bind(ctx.tenant())
                        .bind(key)
                        .execute(&mut *conn)
                        .await?;
                    IngestOutcome::Superseded
                }
                None => IngestOutcome::Inserted,
            };
            let doc_key: i64 = sqlx::query_scalar(
                "INSERT INTO vex_documents (tenant_id, provider_id, issuer, document_id, document_version,
                    document_timestamp, author, signed, image_digest, evidence_digest, ingested_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING doc_key",
            )
            .bind(ctx.tenant())
            .bind(&doc.provider_id)
            .bind(&doc.issuer)
            .bind(&doc.document_id)
            .bind(doc.document_version)
            .bind(&doc.document_timestamp)
            .bind(&doc.author)
            .bind(i64::from(doc.signed))
            .bind(&doc.image_digest)
            .bind(&doc.evidence_digest)
            .bind(&doc.ingested_at)
            .fetch_one(&mut *conn)
            .await?;
            insert_statements(conn, ctx, doc_key, statements).await?;
            Ok(Outcome::Commit(outcome))
        })
        .await
    }

    pub async fn has_vex_evidence(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        image_digest: &str,
        evidence_digest: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM vex_documents WHERE tenant_id = ? AND provider_id = ?
             AND image_digest = ? AND evidence_digest = ? LIMIT 1",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(image_digest)
        .bind(evidence_digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    pub async fn query_vex_statements(
        &self,
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
        let rows = query.bind(i64::from(q.limit)).fetch_all(&self.pool).await?;
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

    pub async fn get_provider_config(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
    ) -> Result<Option<ProviderConfigRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT provider_id, values_json, updated_at, updated_by FROM vex_provider_configs
             WHERE tenant_id = ? AND provider_id = ?",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| config_from_row(&r)).transpose()
    }

    pub async fn save_provider_config(
        &self,
        ctx: &TenantContext,
        config: &ProviderConfigRecord,
        references: &[(String, uuid::Uuid)],
    ) -> Result<bool, StoreError> {
        self.write(async |conn| {
            sqlx::query(
                "DELETE FROM vex_provider_artifact_uses WHERE tenant_id = ? AND provider_id = ?",
            )
            .bind(ctx.tenant())
            .bind(&config.provider_id)
            .execute(&mut *conn)
            .await?;
            for (field, artifact) in references {
                // The same statement as the artifact store's reference hook.
                let done = sqlx::query(
                    "INSERT OR REPLACE INTO vex_provider_artifact_uses
                        (tenant_id, provider_id, field_key, artifact_id)
                     SELECT tenant_id, provider_id, ?, artifact_id FROM vex_provider_artifact_refs
                     WHERE tenant_id = ? AND provider_id = ? AND artifact_id = ?",
                )
                .bind(field)
                .bind(ctx.tenant())
                .bind(&config.provider_id)
                .bind(artifact.to_string())
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(Outcome::RollBack(false));
                }
            }
            sqlx::query(
                "INSERT INTO vex_provider_configs (tenant_id, provider_id, values_json, updated_at, updated_by)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, provider_id) DO UPDATE SET
                    values_json = excluded.values_json, updated_at = excluded.updated_at,
                    updated_by = excluded.updated_by",
            )
            .bind(ctx.tenant())
            .bind(&config.provider_id)
            .bind(&config.values_json)
            .bind(&config.updated_at)
            .bind(&config.updated_by)
            .execute(&mut *conn)
            .await?;
            let target = &config.provider_id;
            super::audit(conn, ctx, "provider.configure", target, &config.updated_at).await?;
            Ok(Outcome::Commit(true))
        })
        .await
    }

    pub async fn list_provider_configs_all(
        &self,
    ) -> Result<Vec<(String, ProviderConfigRecord)>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, provider_id, values_json, updated_at, updated_by
             FROM vex_provider_configs ORDER BY tenant_id, provider_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant_id")?, config_from_row(r)?)))
            .collect()
    }

    pub async fn record_provider_run(
        &self,
        ctx: &TenantContext,
        run: &ProviderRunRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO vex_provider_runs
                (tenant_id, provider_id, image, started_at, finished_at, result, reason, counts_json,
                 fingerprint)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn provider_runs(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
    ) -> Result<Vec<ProviderRunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT provider_id, image, started_at, finished_at, result, reason, counts_json,
                    fingerprint
             FROM vex_provider_runs WHERE tenant_id = ? AND provider_id = ? ORDER BY image",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .fetch_all(&self.pool)
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
        let done = sqlx::query(
            "INSERT INTO vex_provider_leases (tenant_id, provider_id, holder, expires_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant_id, provider_id) DO UPDATE SET
                holder = excluded.holder, expires_at = excluded.expires_at
             WHERE vex_provider_leases.holder = excluded.holder
                OR vex_provider_leases.expires_at <= ?",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(holder)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn release_provider_lease(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM vex_provider_leases WHERE tenant_id = ? AND provider_id = ? AND holder = ?",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn config_from_row(r: &SqliteRow) -> Result<ProviderConfigRecord, StoreError> {
    Ok(ProviderConfigRecord {
        provider_id: r.try_get("provider_id")?,
        values_json: r.try_get("values_json")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// The tenant's issuer trust and provider state (migration 0008).
impl SqliteStore {
    /// The trust configuration and one page of statements (two reads of
    /// the in-process database; no round trips to save here).
    pub async fn vex_trust_and_statements(
        &self,
        ctx: &TenantContext,
        q: &VexStatementQuery,
    ) -> Result<(Option<VexTrustRecord>, Vec<StoredVexStatement>), StoreError> {
        let trust = self.get_vex_trust(ctx).await?;
        Ok((trust, self.query_vex_statements(ctx, q).await?))
    }

    pub async fn get_vex_trust(
        &self,
        ctx: &TenantContext,
    ) -> Result<Option<VexTrustRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT trust_json, updated_at, updated_by FROM vex_trust_configs WHERE tenant_id = ?",
        )
        .bind(ctx.tenant())
        .fetch_optional(&self.pool)
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

    pub async fn save_vex_trust(
        &self,
        ctx: &TenantContext,
        trust: &VexTrustRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO vex_trust_configs (tenant_id, trust_json, updated_at, updated_by)
             VALUES (?, ?, ?, ?)",
        )
        .bind(ctx.tenant())
        .bind(&trust.trust_json)
        .bind(&trust.updated_at)
        .bind(&trust.updated_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get_provider_state(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT value_json FROM vex_provider_state
             WHERE tenant_id = ? AND provider_id = ? AND name = ?",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn save_provider_state(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        name: &str,
        value_json: &str,
        updated_at: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO vex_provider_state
                (tenant_id, provider_id, name, value_json, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(name)
        .bind(value_json)
        .bind(updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    fn doc(version: i64, evidence: &str) -> VexDocumentRecord {
        VexDocumentRecord {
            provider_id: "excititor:oci-openvex".into(),
            issuer: "key sha256:aa".into(),
            document_id: "https://example.com/vex/1".into(),
            document_version: version,
            document_timestamp: "2024-01-01T00:00:00Z".into(),
            author: "Vendor".into(),
            signed: true,
            image_digest: "sha256:11".into(),
            evidence_digest: evidence.into(),
            ingested_at: "2024-01-02T00:00:00Z".into(),
        }
    }

    fn statement(vuln: &str, status: &str) -> VexStatementRecord {
        VexStatementRecord {
            digest: format!("sha256:{vuln}{status}"),
            vulnerability: vuln.into(),
            status: status.into(),
            product_keys: vec!["oci:sha256:11".into(), "pkg:apk/wolfi/openssl@3".into()],
            vuln_keys: vec![vuln.to_ascii_uppercase(), "GHSA-1".into()],
            statement_json: format!(r#"{{"status":"{status}"}}"#),
        }
    }

    fn query(product: &str, vuln: Option<&str>) -> VexStatementQuery {
        VexStatementQuery {
            product_key: Some(product.into()),
            vuln_key: vuln.map(str::to_string),
            issuer: None,
            after: None,
            limit: 100,
        }
    }

    #[tokio::test]
    async fn ingest_is_idempotent_and_a_higher_version_supersedes() {
        let (_d, s) = fresh().await;
        let t1 = TenantContext::from_verified_identity("t1", "runner");
        let t2 = TenantContext::from_verified_identity("t2", "runner");
        let v1 = [statement("CVE-1", "affected"), statement("CVE-2", "fixed")];
        assert_eq!(
            s.ingest_vex_document(&t1, &doc(1, "sha256:e1"), &v1)
                .await
                .unwrap(),
            IngestOutcome::Inserted
        );
        assert_eq!(
            s.ingest_vex_document(&t1, &doc(1, "sha256:e1"), &v1)
                .await
                .unwrap(),
            IngestOutcome::Unchanged
        );
        assert!(
            s.has_vex_evidence(&t1, "excititor:oci-openvex", "sha256:11", "sha256:e1")
                .await
                .unwrap()
        );
        assert!(
            !s.has_vex_evidence(&t2, "excititor:oci-openvex", "sha256:11", "sha256:e1")
                .await
                .unwrap()
        );
        assert_eq!(
            s.query_vex_statements(&t1, &query("oci:sha256:11", None))
                .await
                .unwrap()
                .len(),
            2
        );
        // Another tenant sees nothing, even without filters.
        let all = VexStatementQuery {
            limit: 100,
            ..Default::default()
        };
        assert!(s.query_vex_statements(&t2, &all).await.unwrap().is_empty());
        let v2 = [statement("CVE-1", "fixed")];
        assert_eq!(
            s.ingest_vex_document(&t1, &doc(2, "sha256:e2"), &v2)
                .await
                .unwrap(),
            IngestOutcome::Superseded
        );
        // An older version arriving late changes nothing.
        assert_eq!(
            s.ingest_vex_document(&t1, &doc(1, "sha256:e1"), &v1)
                .await
                .unwrap(),
            IngestOutcome::Unchanged
        );
        let rows = s
            .query_vex_statements(&t1, &query("oci:sha256:11", Some("CVE-1")))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].document.document_version, 2);
        assert_eq!(rows[0].statement_json, r#"{"status":"fixed"}"#);
        // By alias and by subcomponent key.
        assert_eq!(
            s.query_vex_statements(&t1, &query("pkg:apk/wolfi/openssl@3", Some("GHSA-1")))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            s.query_vex_statements(&t1, &query("oci:sha256:11", Some("CVE-2")))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_lease_is_held_until_it_expires_or_is_released() {
        let (_d, s) = fresh().await;
        let t = TenantContext::from_verified_identity("t1", "runner");
        let p = "excititor:oci-openvex";
        assert!(
            s.acquire_provider_lease(&t, p, "a", 100, 160)
                .await
                .unwrap()
        );
        assert!(
            !s.acquire_provider_lease(&t, p, "b", 120, 180)
                .await
                .unwrap()
        );
        assert!(
            s.acquire_provider_lease(&t, p, "a", 130, 190)
                .await
                .unwrap(),
            "renewal"
        );
        assert!(
            s.acquire_provider_lease(&t, p, "b", 190, 250)
                .await
                .unwrap(),
            "expired"
        );
        s.release_provider_lease(&t, p, "a").await.unwrap();
        assert!(
            !s.acquire_provider_lease(&t, p, "a", 200, 260)
                .await
                .unwrap(),
            "not a's to release"
        );
        s.release_provider_lease(&t, p, "b").await.unwrap();
        assert!(
            s.acquire_provider_lease(&t, p, "a", 200, 260)
                .await
                .unwrap()
        );
    }
}
