//! Postgres backend (the way to scale: several `stella serve` processes on
//! one database). Runtime queries only, migrations embedded from
//! `migrations/postgres/` (same version numbers as SQLite).
//!
//! Tenant isolation is enforced twice: every tenant-owned statement binds
//! the tenant from the [`TenantContext`] it is given (as on SQLite), and the
//! database itself refuses other tenants' rows. Every tenant table has
//! row-level security enabled and forced, with a policy on
//! `current_setting('app.tenant_id', true)`; [`PostgresStore`] runs each
//! tenant-owned operation in a transaction that first calls
//! `set_config('app.tenant_id', <tenant>, true)` (transaction-local, so a
//! pooled connection never carries a tenant into the next request). A
//! statement that forgot its tenant filter still sees only that tenant's
//! rows; one run outside such a transaction sees none. The hottest reads
//! (an artifact's metadata, a page of them) call SQL functions instead
//! (migration 0011) that do the `set_config` and the query in one statement,
//! so they cost one round trip instead of four (`BEGIN`, `set_config`, the
//! query, `COMMIT`); row-level security binds inside them all the same.
//!
//! Roles: migrations run as the table owner; the service connects as a
//! member of the group role `stella_app`, which the migrations grant only
//! row privileges. [`PostgresStore::check_service_role`] refuses to serve
//! as a superuser, a role with `BYPASSRLS`, or a member of a table's owner
//! role, since row-level security would not bind it.
//!
//! This module does not create databases or login roles (an operator's
//! job; see docs/service.md), and does not speak TLS to the database.

use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::sqlite::now_rfc3339;
use crate::{
    ArtifactMeta, ArtifactQuota, ClientRecord, DeleteOutcome, NewArtifact, PoolSettings,
    SchemaStatus, SigningKeyRecord, StoreError, TenantContext,
};

mod console;
mod export;
mod policy;
mod read_lane;
mod vex;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The group role the migrations grant row privileges to.
pub const APP_ROLE: &str = "stella_app";

/// A pooled connection used within this long is handed out without a ping.
pub const PING_WHEN_IDLE_FOR: Duration = Duration::from_millis(500);

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Connections for the one-statement reads, without sqlx's ping on
    /// release (see [`read_lane`]); `None` when the connection budget is 1.
    reads: Option<Arc<read_lane::ReadLane>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool)
            .field("read_lane", &self.reads.is_some())
            .finish()
    }
}

impl PostgresStore {
    /// Connects (the database must exist) and refuses one whose schema is
    /// newer than this build.
    pub async fn open(url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        // The budget is split: half for the read lane, the rest for sqlx's
        // pool (transactions, writes, everything else).
        let budget = settings.max_connections.unwrap_or(10).max(1);
        let lane_size = budget / 2;
        let acquire_timeout = settings.acquire_timeout.unwrap_or(Duration::from_secs(3));
        let pool = PgPoolOptions::new()
            .max_connections(budget - lane_size)
            .acquire_timeout(acquire_timeout)
            // sqlx pings every connection it hands out by default: a round
            // trip of its own, on a GET that needs one. Only a connection
            // idle for a while is pinged (a restarted database is still
            // noticed before a request uses a dead connection).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE_FOR {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        let reads = (lane_size > 0).then(|| {
            let options = (*pool.connect_options()).clone();
            Arc::new(read_lane::ReadLane::new(
                options,
                lane_size,
                acquire_timeout,
            ))
        });
        let store = Self { pool, reads };
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
        let has_table: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        let applied = if has_table {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(&self.pool)
            .await?
            .unwrap_or(0)
        } else {
            0
        };
        Ok(SchemaStatus { applied, supported })
    }

    /// Refuses a connection role that row-level security would not bind:
    /// a superuser, a role with `BYPASSRLS`, or a member of the role owning
    /// any table of the schema (an owner could switch the policies off).
    pub async fn check_service_role(&self) -> Result<(), StoreError> {
        let row = sqlx::query(
            "SELECT current_user::text AS name, r.rolsuper, r.rolbypassrls,
                    (SELECT c.relname::text FROM pg_class c
                      WHERE c.relnamespace = current_schema()::regnamespace
                        AND c.relkind IN ('r', 'p')
                        AND pg_has_role(current_user, c.relowner, 'MEMBER')
                      ORDER BY c.relname LIMIT 1) AS owned
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        let name: String = row.try_get("name")?;
        let why = if row.try_get::<bool, _>("rolsuper")? {
            Some("is a superuser".to_string())
        } else if row.try_get::<bool, _>("rolbypassrls")? {
            Some("has BYPASSRLS".to_string())
        } else {
            row.try_get::<Option<String>, _>("owned")?
                .map(|table| format!("owns (or may act as the owner of) table `{table}`"))
        };
        match why {
            Some(why) => Err(StoreError::UnsafeServiceRole { role: name, why }),
            None => Ok(()),
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// (connections open, of which idle), pool and read lane together.
    pub fn pool_stats(&self) -> (u32, u32) {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        let (lane_open, lane_idle) = self.reads.as_ref().map_or((0, 0), |l| l.stats());
        (
            self.pool.size().saturating_add(lane_open),
            idle.saturating_add(lane_idle),
        )
    }

    pub async fn close(&self) {
        if let Some(lane) = &self.reads {
            lane.close().await;
        }
        self.pool.close().await;
    }

    /// One read statement that leaves no session state behind, on the
    /// read lane when there is one.
    async fn read_optional(
        &self,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Option<PgRow>, StoreError> {
        match &self.reads {
            Some(lane) => lane.fetch_optional(query).await,
            None => Ok(query.fetch_optional(&self.pool).await?),
        }
    }

    /// As [`Self::read_optional`], for all rows.
    async fn read_all(
        &self,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<PgRow>, StoreError> {
        match &self.reads {
            Some(lane) => lane.fetch_all(query).await,
            None => Ok(query.fetch_all(&self.pool).await?),
        }
    }

    /// A transaction in which row-level security admits `ctx`'s tenant only.
    async fn tenant_tx(
        &self,
        ctx: &TenantContext,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(ctx.tenant())
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    // ---- clients ----

    pub async fn add_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO clients (client_id, tenant_id, scopes, secret_hash, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id) DO NOTHING",
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
             FROM clients WHERE client_id = $1",
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
            "UPDATE clients SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        let result = sqlx::query(
            "INSERT INTO signing_keys (kid, created_at, retired_at, public_jwk)
             VALUES ($1, $2, NULL, $3) ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(key.created_at)
        .bind(&key.public_jwk)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists(key.kid.clone()));
        }
        tx.commit().await?;
        Ok(())
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
        let mut tx = self.tenant_tx(ctx).await?;
        // The quota check (on the usage row the triggers of migration 0003
        // keep) and the insert below are atomic together.
        lock_tenant_artifacts(&mut tx, ctx).await?;
        let inserted = sqlx::query(
            "INSERT INTO vex_provider_artifact_refs
                (artifact_id, provider_id, tenant_id, mime_type, size_bytes, sha256, payload,
                 staged_at, staged_by)
             SELECT $1::uuid, $2, $3, $4, $5, $6, $7, $8::timestamptz, $9
             WHERE COALESCE((SELECT artifact_count FROM artifact_usage WHERE tenant_id = $3), 0) < $10
               AND COALESCE((SELECT total_bytes FROM artifact_usage WHERE tenant_id = $3), 0)
                   + $5 <= $11",
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
        .bind(max_count)
        .bind(max_bytes)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::QuotaExceeded);
        }
        // The payload, one chunk in memory at a time (migration 0012).
        let id = artifact_id.to_string();
        let mut seq = 0i32;
        while let Some(chunk) = chunks.next().await? {
            sqlx::query(
                "INSERT INTO vex_provider_artifact_chunks (tenant_id, artifact_id, seq, bytes)
                 VALUES ($1, $2::uuid, $3, $4)",
            )
            .bind(ctx.tenant())
            .bind(&id)
            .bind(seq)
            .bind(chunk)
            .execute(&mut *tx)
            .await?;
            seq += 1;
        }
        let target = format!("provider/{}/artifact/{artifact_id}", artifact.provider_id);
        audit(&mut tx, ctx, "artifact.create", &target, &staged_at).await?;
        tx.commit().await?;
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
        let after = after.map_or_else(|| NIL_UUID.to_string(), |u| u.to_string());
        // One statement (migration 0011): the function sets the tenant for
        // its own implicit transaction and pages in artifact id order.
        let query = sqlx::query("SELECT * FROM stella_artifact_page($1, $2, $3::uuid, $4)")
            .bind(ctx.tenant())
            .bind(provider_id)
            .bind(after)
            .bind(i64::from(limit));
        let rows = self.read_all(query).await?;
        rows.iter().map(artifact_from_row).collect()
    }

    pub async fn get_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> Result<Option<ArtifactMeta>, StoreError> {
        // One statement, one round trip (migration 0011).
        let query = sqlx::query("SELECT * FROM stella_artifact_meta($1, $2, $3::uuid)")
            .bind(ctx.tenant())
            .bind(provider_id)
            .bind(artifact_id.to_string());
        let row = self.read_optional(query).await?;
        row.map(|r| artifact_from_row(&r)).transpose()
    }

    pub async fn read_payload(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let id = artifact_id.to_string();
        let mut tx = self.tenant_tx(ctx).await?;
        if !artifact_exists(&mut tx, ctx, provider_id, &id).await? {
            return Ok(None);
        }
        let chunks: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT bytes FROM vex_provider_artifact_chunks
             WHERE tenant_id = $1 AND artifact_id = $2::uuid ORDER BY seq",
        )
        .bind(ctx.tenant())
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(chunks.concat()))
    }

    pub async fn delete_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        artifact_id: Uuid,
    ) -> Result<DeleteOutcome, StoreError> {
        let id = artifact_id.to_string();
        let mut tx = self.tenant_tx(ctx).await?;
        // A concurrent reference_artifact cannot slip in between the checks
        // and the delete.
        lock_tenant_artifacts(&mut tx, ctx).await?;
        if !artifact_exists(&mut tx, ctx, provider_id, &id).await? {
            return Ok(DeleteOutcome::NotFound);
        }
        let in_use: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM vex_provider_artifact_uses
             WHERE tenant_id = $1 AND provider_id = $2 AND artifact_id = $3::uuid LIMIT 1",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?;
        if in_use.is_some() {
            return Ok(DeleteOutcome::InUse);
        }
        sqlx::query(
            "DELETE FROM vex_provider_artifact_refs
             WHERE tenant_id = $1 AND provider_id = $2 AND artifact_id = $3::uuid",
        )
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let target = format!("provider/{provider_id}/artifact/{artifact_id}");
        audit(&mut tx, ctx, "artifact.delete", &target, &now_rfc3339()).await?;
        tx.commit().await?;
        Ok(DeleteOutcome::Deleted)
    }

    pub async fn reference_artifact(
        &self,
        ctx: &TenantContext,
        provider_id: &str,
        field_key: &str,
        artifact_id: Uuid,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(ctx).await?;
        lock_tenant_artifacts(&mut tx, ctx).await?;
        let result = sqlx::query(
            "INSERT INTO vex_provider_artifact_uses
                (tenant_id, provider_id, field_key, artifact_id)
             SELECT tenant_id, provider_id, $1, artifact_id FROM vex_provider_artifact_refs
             WHERE tenant_id = $2 AND provider_id = $3 AND artifact_id = $4::uuid
             ON CONFLICT (tenant_id, provider_id, field_key)
             DO UPDATE SET artifact_id = EXCLUDED.artifact_id",
        )
        .bind(field_key)
        .bind(ctx.tenant())
        .bind(provider_id)
        .bind(artifact_id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(result.rows_affected() > 0)
    }
}

/// Serialises (across processes) the writes to one tenant's artifacts
/// until the transaction ends: quota checks, and delete against reference.
async fn lock_tenant_artifacts(
    tx: &mut Transaction<'_, Postgres>,
    ctx: &TenantContext,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('stella.artifacts:' || $1, 0))")
        .bind(ctx.tenant())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn audit(
    tx: &mut Transaction<'_, Postgres>,
    ctx: &TenantContext,
    action: &str,
    target: &str,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, actor, action, target, at)
         VALUES ($1, $2, $3, $4, $5::timestamptz)",
    )
    .bind(ctx.tenant())
    .bind(ctx.subject())
    .bind(action)
    .bind(target)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn client_from_row(r: &PgRow) -> Result<ClientRecord, StoreError> {
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

fn artifact_from_row(r: &PgRow) -> Result<ArtifactMeta, StoreError> {
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
    conn: &mut sqlx::PgConnection,
    ctx: &TenantContext,
    provider_id: &str,
    artifact_id: &str,
) -> Result<bool, StoreError> {
    let row: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM vex_provider_artifact_refs
         WHERE tenant_id = $1 AND provider_id = $2 AND artifact_id = $3::uuid",
    )
    .bind(ctx.tenant())
    .bind(provider_id)
    .bind(artifact_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}
