//! SQLite backend (the embedded default): WAL journal, one pool, runtime
//! queries only. Every tenant-owned statement binds the tenant from the
//! [`TenantContext`] it is given. Every multi-statement write runs through
//! `SqliteStore::write` (module `write`): `BEGIN IMMEDIATE`, and a
//! connection whose transaction met an error is closed, never pooled again.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection, migrate::Migrator};
use uuid::Uuid;

use crate::{
    ArtifactMeta, ArtifactQuota, ClientRecord, DeleteOutcome, NewArtifact, PoolSettings,
    SchemaStatus, SigningKeyRecord, StoreError, TenantContext,
};

mod console;
#[cfg(test)]
mod disk_full_tests;
mod export;
mod policy;
mod vex;
mod write;

use write::Outcome;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Columns of artifact metadata, in the order [`artifact_from_row`] reads.
const META_COLUMNS: &str =
    "artifact_id, provider_id, mime_type, size_bytes, sha256, staged_at, staged_by";

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Now, as `YYYY-MM-DDTHH:MM:SS.mmmZ` (both backends store and return this form).
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt).unwrap_or_default()
}

impl SqliteStore {
    /// Opens the database, creating the file if needed, and refuses one
    /// whose schema is newer than this build.
    pub async fn open(url: &str, pool: &PoolSettings) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(pool.max_connections.unwrap_or(4))
            .acquire_timeout(pool.acquire_timeout.unwrap_or(Duration::from_secs(5)))
            // A local file has no server to drop the connection: no ping
            // (a trip to the connection's worker thread) before each use.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        let status = store.schema_status().await?;
        if status.applied > status.supported {
            return Err(StoreError::SchemaTooNew {
                found: status.applied,
                supported: status.supported,
            });
        }
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<SchemaStatus, StoreError> {
        MIGRATOR.run(&self.pool).await?;
        self.schema_status().await
    }

    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        let supported = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let has_table: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await?;
        let applied = if has_table.is_some() {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1",
            )
            .fetch_one(&self.pool)
            .await?
            .unwrap_or(0)
        } else {
            0
        };
        Ok(SchemaStatus { applied, supported })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool_stats(&self) -> (u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        (self.pool.size(), idle)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- clients ----

    pub async fn add_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO clients (client_id, tenant_id, scopes, secret_hash, created_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(&c.client_id)
        .bind(&c.tenant)
        .bind(c.scopes.join(" "))
        .bind(&c.secret_hash)
        .bind(&c.created_at)
        .bind(&c.revoked_at)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists(c.client_id.clone()));
        }
        Ok(())
    }

    pub async fn find_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, tenant_id, scopes, secret_hash, created_at, revoked_at
             FROM clients WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| client_from_row(&r)).transpose()
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_id, tenant_id, scopes, secret_hash, created_at, revoked_at
             FROM clients ORDER BY client_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    pub async fn revoke_client(&self, client_id: &str, at: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE clients SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(client_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    pub async fn client_generation(&self) -> Result<i64, StoreError> {
        let generation =
            sqlx::query_scalar("SELECT generation FROM client_generation WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(generation)
    }

    // ---- signing keys ----

    pub async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        self.write(async |conn| {
            sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
                .bind(key.created_at)
                .execute(&mut *conn)
                .await?;
            let result = sqlx::query(
                "INSERT INTO signing_keys (kid, created_at, retired_at, public_jwk)
                 VALUES (?, ?, NULL, ?) ON CONFLICT (kid) DO NOTHING",
            )
            .bind(&key.kid)
            .bind(key.created_at)
            .bind(&key.public_jwk)
            .execute(&mut *conn)
            .await?;
            if result.rows_affected() == 0 {
                return Ok(Outcome::Refuse(StoreError::AlreadyExists(key.kid.clone())));
            }
            Ok(Outcome::Commit(()))
        })
        .await
    }

    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, created_at, retired_at, public_jwk FROM signing_keys
             ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get("kid")?,
                    created_at: r.try_get("created_at")?,
                    retired_at: r.try_get("retired_at")?,
                    public_jwk: r.try_get("public_jwk")?,
                })
            })
            .collect()
    }

    // ---- artifacts ----

    pub async fn insert_artifact(
        &self,
        ctx: &TenantContext,
        artifact: NewArtifact,
        quota: ArtifactQuota,
    ) -> Result<ArtifactMeta, StoreError> {
        let artifact_id = Uuid::now_v7();
        let staged_at = now_rfc3339();
        let payload_len = artifact.payload.len();
        let size =
            i64::try_from(payload_len).map_err(|_| StoreError::Corrupt("payload size".into()))?;
        let mut chunks = artifact.payload.into_chunks();
        let max_count = i64::try_from(quota.max_count).unwrap_or(i64::MAX);
        let max_bytes = i64::try_from(quota.max_bytes).unwrap_or(i64::MAX);
        // A failed write (SQLITE_FULL above all) closes the connection
        // (see `write`); a refused quota is a clean rollback.
        self.write(async |conn| {
            // One statement: the quota check (on the usage row the triggers of
            // migration 0003 keep) and the insert are atomic, since SQLite runs
            // one writer at a time.
            let inserted = sqlx::query(
                "INSERT INTO vex_provider_artifact_refs
                    (artifact_id, provider_id, tenant_id, mime_type, size_bytes, sha256, payload,
                     staged_at, staged_by)
                 SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
                 WHERE COALESCE((SELECT artifact_count FROM artifact_usage WHERE tenant_id = ?), 0) < ?
                   AND COALESCE((SELECT total_bytes FROM artifact_usage WHERE tenant_id = ?), 0)
                       + ? <= ?",
            )
            .bind(artifact_id.to_string())
            .bind(&artifact.provider_id)
            .bind(ctx.tenant())
            .bind(&artifact.mime_type)
            .bind(size)
            .bind(&artifact.sha256)
            .bind(Vec::<u8>::new())
            .bind(&staged_at)
            .bind(ctx.subject())
            .bind(ctx.tenant())
            .bind(max_count)
            .bind(ctx.tenant())
            .bind(size)
            .bind(max_bytes)
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 0 {
                return Ok(Outcome::Refuse(StoreError::QuotaExceeded));
            }
            // The payload, one chunk in memory at a time (migration 0012).
            let id = artifact_id.to_string();
            let mut seq = 0i64;
            while let Some(chunk) = chunks.next().await? {
                sqlx::query(
                    "INSERT INTO vex_provider_artifact_chunks (tenant_id, artifact_id, seq, bytes)
                     VALUES (?, ?, ?, ?)",
                )
                .bind(ctx.tenant())
                .bind(&id)
                .bind(seq)
                .bind(chunk)
                .execute(&mut *conn)
                .await?;
                seq += 1;
            }
            let target = format!("provider/{}/artifact/{artifact_id}", artifact.provider_id);
            audit(conn, ctx, "artifact.create", &target, &staged_at).await?;
            Ok(Outcome::Commit(()))
        })
        .await?;
        Ok(ArtifactMeta {
            artifact_id,
            provider_id: artifact.provider_id,
            mime_type: artifact.mime_type,
            size_bytes: payload_len,
            sha256: artifact.sha256,
            staged_at,
            staged_by: ctx.subject().to_string(),
        })
    }

    pub async fn list_artifacts(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ArtifactMeta>, StoreError> {
        let after = after.map(|u| u.to_string()).unwrap_or_default();
        let sql = format!(
            "SELECT {META_COLUMNS} FROM vex_provider_artifact_refs
             WHERE tenant_id = ? AND provider_id = ? AND artifact_id > ?
             ORDER BY artifact_id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(ctx.tenant())
            .bind(provider_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(artifact_from_row).collect()
    }

    pub async fn get_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> Result<Option<ArtifactMeta>, StoreError> {
        let sql = format!(
            "SELECT {META_COLUMNS} FROM vex_provider_artifact_refs
             WHERE tenant_id = ? AND provider_id = ? AND artifact_id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(ctx.tenant())
            .bind(provider_id)
            .bind(artifact_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| artifact_from_row(&r)).transpose()
    }

    pub async fn read_payload(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let id = artifact_id.to_string();
        // One snapshot for the row and its chunks.
        self.read(async |conn| {
            if !artifact_exists(conn, ctx, provider_id, &id).await? {
                return Ok(Outcome::RollBack(None));
            }
            let chunks: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT bytes FROM vex_provider_artifact_chunks
                 WHERE tenant_id = ? AND artifact_id = ? ORDER BY seq",
            )
            .bind(ctx.tenant())
            .bind(&id)
            .fetch_all(&mut *conn)
            .await?;
            Ok(Outcome::RollBack(Some(chunks.concat())))
        })
        .await
    }

    pub async fn delete_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> Result<DeleteOutcome, StoreError> {
        let id = artifact_id.to_string();
        self.write(async |conn| {
            let in_use: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM vex_provider_artifact_uses
                 WHERE tenant_id = ? AND provider_id = ? AND artifact_id = ? LIMIT 1",
            )
            .bind(ctx.tenant())
            .bind(provider_id)
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?;
            if !artifact_exists(conn, ctx, provider_id, &id).await? {
                return Ok(Outcome::RollBack(DeleteOutcome::NotFound));
            }
            if in_use.is_some() {
                return Ok(Outcome::RollBack(DeleteOutcome::InUse));
            }
            sqlx::query(
                "DELETE FROM vex_provider_artifact_refs
                 WHERE tenant_id = ? AND provider_id = ? AND artifact_id = ?",
            )
            .bind(ctx.tenant())
            .bind(provider_id)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
            let target = format!("provider/{provider_id}/artifact/{artifact_id}");
            audit(conn, ctx, "artifact.delete", &target, &now_rfc3339()).await?;
            Ok(Outcome::Commit(DeleteOutcome::Deleted))
        })
        .await
    }

    pub async fn reference_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        field_key: &str,
        artifact_id: Uuid,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT OR REPLACE INTO vex_provider_artifact_uses
                (tenant_id, provider_id, field_key, artifact_id)
             SELECT tenant_id, provider_id, ?, artifact_id FROM vex_provider_artifact_refs
             WHERE tenant_id = ? AND provider_id = ? AND artifact_id = ?",
        )
        .bind(field_key)
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(artifact_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}

/// One row of the audit log, written in the caller's transaction.
async fn audit(
    conn: &mut SqliteConnection,
    ctx: &TenantContext,
    action: &str,
    target: &str,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, actor, action, target, at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(ctx.tenant())
    .bind(ctx.subject())
    .bind(action)
    .bind(target)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

fn client_from_row(r: &SqliteRow) -> Result<ClientRecord, StoreError> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ClientRecord {
        client_id: r.try_get("client_id")?,
        tenant: r.try_get("tenant_id")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        secret_hash: r.try_get("secret_hash")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn artifact_from_row(r: &SqliteRow) -> Result<ArtifactMeta, StoreError> {
    let id: String = r.try_get("artifact_id")?;
    let size: i64 = r.try_get("size_bytes")?;
    Ok(ArtifactMeta {
        artifact_id: Uuid::parse_str(&id)
            .map_err(|_| StoreError::Corrupt(format!("artifact id `{id}`")))?,
        provider_id: r.try_get("provider_id")?,
        mime_type: r.try_get("mime_type")?,
        size_bytes: u64::try_from(size).map_err(|_| StoreError::Corrupt("size_bytes".into()))?,
        sha256: r.try_get("sha256")?,
        staged_at: r.try_get("staged_at")?,
        staged_by: r.try_get("staged_by")?,
    })
}

/// Whether the tenant's provider has the artifact, inside the caller's
/// transaction.
async fn artifact_exists(
    conn: &mut sqlx::SqliteConnection,
    ctx: &TenantContext,
    provider_id: &str,
    artifact_id: &str,
) -> Result<bool, StoreError> {
    let row: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM vex_provider_artifact_refs
         WHERE tenant_id = ? AND provider_id = ? AND artifact_id = ?",
    )
    .bind(ctx.tenant())
    .bind(provider_id)
    .bind(artifact_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::ArtifactPayload;

    async fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::open(&url, &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

    fn art(provider: &str, len: usize) -> NewArtifact {
        NewArtifact {
            provider_id: provider.into(),
            mime_type: "application/octet-stream".into(),
            sha256: "00".repeat(32),
            payload: vec![7; len].into(),
        }
    }

    const BIG: ArtifactQuota = ArtifactQuota {
        max_count: 100,
        max_bytes: 1 << 30,
    };

    /// A file payload goes in as chunks of at most PAYLOAD_CHUNK_BYTES and
    /// comes back byte for byte; a file shorter than its announced length
    /// is refused and leaves no row, no chunk and no usage behind.
    #[tokio::test]
    async fn file_payloads_are_stored_in_chunks_and_read_back_whole() {
        let (dir, s) = fresh().await;
        let a = TenantContext::from_verified_identity("a", "client-a");
        let len = 2 * crate::PAYLOAD_CHUNK_BYTES + 123;
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let path = dir.path().join("upload.bin");
        std::fs::write(&path, &bytes).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let new = NewArtifact {
            payload: ArtifactPayload::File {
                file,
                len: len as u64,
            },
            ..art("p", 0)
        };
        let meta = s.insert_artifact(&a, new, BIG).await.unwrap();
        assert_eq!(meta.size_bytes, len as u64);
        let sizes: Vec<i64> = sqlx::query_scalar(
            "SELECT length(bytes) FROM vex_provider_artifact_chunks ORDER BY seq",
        )
        .fetch_all(&s.pool)
        .await
        .unwrap();
        let chunk = crate::PAYLOAD_CHUNK_BYTES as i64;
        assert_eq!(sizes, vec![chunk, chunk, 123]);
        let back = s.read_payload(&a, "p", meta.artifact_id).await.unwrap();
        assert!(back.as_deref() == Some(&bytes[..]), "payload changed");

        // Announced longer than the file: refused, nothing kept.
        let file = tokio::fs::File::open(&path).await.unwrap();
        let short = NewArtifact {
            payload: ArtifactPayload::File {
                file,
                len: len as u64 + 1,
            },
            ..art("p", 0)
        };
        let err = s.insert_artifact(&a, short, BIG).await.unwrap_err();
        assert!(matches!(err, StoreError::PayloadRead(_)), "{err:?}");
        assert_eq!(s.list_artifacts(&a, "p", None, 10).await.unwrap().len(), 1);
        let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vex_provider_artifact_chunks")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(chunks, 3);

        // An empty payload has no chunk and reads back empty; deleting an
        // artifact deletes its chunks.
        let empty = s.insert_artifact(&a, art("p", 0), BIG).await.unwrap();
        assert_eq!(
            s.read_payload(&a, "p", empty.artifact_id).await.unwrap(),
            Some(Vec::new())
        );
        s.delete_artifact(&a, "p", meta.artifact_id).await.unwrap();
        let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vex_provider_artifact_chunks")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(chunks, 0);
    }

    #[tokio::test]
    async fn tenants_never_see_each_others_artifacts() {
        let (_d, s) = fresh().await;
        let a = TenantContext::from_verified_identity("a", "client-a");
        let b = TenantContext::from_verified_identity("b", "client-b");
        let meta = s.insert_artifact(&a, art("p", 3), BIG).await.unwrap();
        assert_eq!(meta.staged_by, "client-a");
        assert!(
            s.get_artifact(&b, "p", meta.artifact_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.list_artifacts(&b, "p", None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.read_payload(&b, "p", meta.artifact_id)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            s.delete_artifact(&b, "p", meta.artifact_id).await.unwrap(),
            DeleteOutcome::NotFound
        );
        assert!(
            !s.reference_artifact(&b, "p", "k", meta.artifact_id)
                .await
                .unwrap()
        );
        assert_eq!(
            s.get_artifact(&a, "p", meta.artifact_id).await.unwrap(),
            Some(meta)
        );
    }

    #[tokio::test]
    async fn usage_row_follows_inserts_and_deletes_and_frees_quota() {
        let (_d, s) = fresh().await;
        let a = TenantContext::from_verified_identity("a", "c");
        let b = TenantContext::from_verified_identity("b", "c");
        let q = ArtifactQuota {
            max_count: 2,
            max_bytes: 10,
        };
        let first = s.insert_artifact(&a, art("p", 6), q).await.unwrap();
        s.insert_artifact(&a, art("p", 4), q).await.unwrap();
        s.insert_artifact(&b, art("p", 9), q).await.unwrap();
        assert!(matches!(
            s.insert_artifact(&a, art("p", 0), q).await,
            Err(StoreError::QuotaExceeded)
        ));
        assert_eq!(
            s.delete_artifact(&a, "p", first.artifact_id).await.unwrap(),
            DeleteOutcome::Deleted
        );
        s.insert_artifact(&a, art("p", 5), q).await.unwrap();
        let usage: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT tenant_id, artifact_count, total_bytes FROM artifact_usage ORDER BY tenant_id",
        )
        .fetch_all(&s.pool)
        .await
        .unwrap();
        let counted: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT tenant_id, COUNT(*), SUM(size_bytes) FROM vex_provider_artifact_refs
             GROUP BY tenant_id ORDER BY tenant_id",
        )
        .fetch_all(&s.pool)
        .await
        .unwrap();
        assert_eq!(usage, counted);
        assert_eq!(usage, vec![("a".into(), 2, 9), ("b".into(), 1, 9)]);
    }

    #[tokio::test]
    async fn quota_counts_and_bytes_write_nothing_when_passed() {
        let (_d, s) = fresh().await;
        let a = TenantContext::from_verified_identity("a", "c");
        let q = ArtifactQuota {
            max_count: 2,
            max_bytes: 10,
        };
        s.insert_artifact(&a, art("p", 6), q).await.unwrap();
        assert!(matches!(
            s.insert_artifact(&a, art("p", 5), q).await,
            Err(StoreError::QuotaExceeded)
        ));
        s.insert_artifact(&a, art("p", 4), q).await.unwrap();
        assert!(matches!(
            s.insert_artifact(&a, art("p", 0), q).await,
            Err(StoreError::QuotaExceeded)
        ));
        assert_eq!(s.list_artifacts(&a, "p", None, 10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn referenced_artifact_is_in_use_and_list_pages_in_order() {
        let (_d, s) = fresh().await;
        let a = TenantContext::from_verified_identity("a", "c");
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(
                s.insert_artifact(&a, art("p", 1), BIG)
                    .await
                    .unwrap()
                    .artifact_id,
            );
        }
        let first = s.list_artifacts(&a, "p", None, 2).await.unwrap();
        let rest = s
            .list_artifacts(&a, "p", Some(first[1].artifact_id), 10)
            .await
            .unwrap();
        let listed: Vec<_> = first.iter().chain(&rest).map(|m| m.artifact_id).collect();
        assert_eq!(listed, ids);
        assert!(
            s.reference_artifact(&a, "p", "cosignKey", ids[0])
                .await
                .unwrap()
        );
        assert_eq!(
            s.delete_artifact(&a, "p", ids[0]).await.unwrap(),
            DeleteOutcome::InUse
        );
        assert_eq!(
            s.delete_artifact(&a, "p", ids[1]).await.unwrap(),
            DeleteOutcome::Deleted
        );
        let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(audit, 6);
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let (dir, s) = fresh().await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'future', 1, x'00', 0)",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        s.close().await;
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        match SqliteStore::open(&url, &Default::default()).await {
            Err(StoreError::SchemaTooNew { found: 9999, .. }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
