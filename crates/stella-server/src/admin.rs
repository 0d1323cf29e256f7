//! Operator operations that work directly on the data directory and the
//! database, with or without a running server: `stella serve init`,
//! `stella serve migrate`, `stella admin clients add|list|revoke`,
//! `stella admin keys rotate`, `stella admin report-keys rotate`. Nothing
//! here prints; the CLI does.

use std::path::Path;

use stella_store::{ClientRecord, ClientRepository, SchemaStatus, Store, StoreError};

use crate::auth::{keys, scope, secret};
use crate::config::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error(transparent)]
    Secret(#[from] secret::SecretError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is already initialised (it has a signing key); nothing was changed")]
    AlreadyInitialised(String),
    #[error("no active client `{0}`")]
    NoSuchClient(String),
}

/// A client just created; the secret is shown once and never stored.
#[derive(Debug)]
pub struct NewClient {
    pub client_id: String,
    pub secret: secret::ClientSecret,
    pub tenant: String,
    pub scopes: Vec<String>,
}

/// A client as listed (no secret, no hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSummary {
    pub client_id: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// What `stella serve init` made.
#[derive(Debug)]
pub struct InitReport {
    pub kid: String,
    pub admin: NewClient,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Opens the database at `url` and applies pending migrations with that
/// connection. A current schema is left alone, so this works for a
/// Postgres service role that may not run DDL.
pub async fn open_and_migrate(url: &str) -> Result<Store, AdminError> {
    open_and_migrate_with(url, &stella_store::PoolSettings::default()).await
}

async fn open_and_migrate_with(
    url: &str,
    pool: &stella_store::PoolSettings,
) -> Result<Store, AdminError> {
    let store = Store::open_with(url, pool).await?;
    if !store.schema_status().await?.is_current()
        && let Err(e) = store.migrate().await
    {
        store.close().await;
        return Err(migration_error(url, e));
    }
    Ok(store)
}

/// Opens `config.database` with its schema current: pending migrations run
/// first through `config.migration_database` (the tables' owner) when set,
/// else through `config.database` itself.
pub async fn open_configured(config: &ServerConfig) -> Result<Store, AdminError> {
    if let Some(owner) = &config.migration_database {
        migrate(owner).await?;
    }
    open_and_migrate_with(&config.database, &config.pool()).await
}

/// `stella serve migrate`: applies migrations on `url` (on Postgres, the
/// tables' owner), returns the status after.
pub async fn migrate(url: &str) -> Result<SchemaStatus, AdminError> {
    let store = Store::open(url).await?;
    let status = store.migrate().await;
    store.close().await;
    status.map_err(|e| migration_error(url, e))
}

fn migration_error(url: &str, e: StoreError) -> AdminError {
    if url.starts_with("postgres") && !e.is_unavailable() {
        AdminError::Invalid(format!(
            "{e}; on Postgres, migrations run as the tables' owner: \
             `stella serve migrate --database <owner URL>`, or set `migrationDatabase` \
             (STELLA_MIGRATION_DATABASE) (see docs/service.md)"
        ))
    } else {
        AdminError::Store(e)
    }
}

fn create_private_dir(dir: &Path) -> Result<(), AdminError> {
    std::fs::create_dir_all(dir).map_err(|e| AdminError::Io(format!("{}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AdminError::Io(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// `stella serve init`: data dir (0700), database, first signing key
/// (0600) and a first `admin` client of tenant `default` with every scope.
/// Refuses a data dir that already has a signing key.
pub async fn init(config: &ServerConfig) -> Result<InitReport, AdminError> {
    let data_dir = config.data_dir.as_path();
    create_private_dir(data_dir)?;
    let store = open_configured(config).await?;
    if !stella_store::SigningKeyRepository::list_signing_keys(&store)
        .await?
        .is_empty()
    {
        return Err(AdminError::AlreadyInitialised(
            data_dir.display().to_string(),
        ));
    }
    let kid = keys::generate(&store, data_dir, crate::auth::unix_now()).await?;
    let all: Vec<String> = scope::Scope::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let admin = add_client(&store, "admin", "default", &all.join(",")).await?;
    store.close().await;
    Ok(InitReport { kid, admin })
}

fn validate_name(what: &str, value: &str) -> Result<(), AdminError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{what} `{value}` must be 1-64 characters of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// Adds a client; the secret is returned once.
pub async fn add_client(
    store: &Store,
    client_id: &str,
    tenant: &str,
    scopes: &str,
) -> Result<NewClient, AdminError> {
    validate_name("client id", client_id)?;
    validate_name("tenant", tenant)?;
    let scopes: Vec<String> = scope::parse_list(scopes)
        .map_err(AdminError::Invalid)?
        .into_iter()
        .map(|s| s.as_str().to_string())
        .collect();
    if scopes.is_empty() {
        return Err(AdminError::Invalid("at least one scope is required".into()));
    }
    let (secret, hash) = tokio::task::spawn_blocking(secret::generate)
        .await
        .map_err(|e| AdminError::Io(e.to_string()))??;
    let record = ClientRecord {
        client_id: client_id.into(),
        tenant: tenant.into(),
        scopes: scopes.clone(),
        secret_hash: hash,
        created_at: now_rfc3339(),
        revoked_at: None,
    };
    store.add_client(&record).await?;
    Ok(NewClient {
        client_id: client_id.into(),
        secret,
        tenant: tenant.into(),
        scopes,
    })
}

pub async fn list_clients(store: &Store) -> Result<Vec<ClientSummary>, AdminError> {
    Ok(store
        .list_clients()
        .await?
        .into_iter()
        .map(|c| ClientSummary {
            client_id: c.client_id,
            tenant: c.tenant,
            scopes: c.scopes,
            created_at: c.created_at,
            revoked_at: c.revoked_at,
        })
        .collect())
}

/// Revokes a client: its tokens stop working at once.
pub async fn revoke_client(store: &Store, client_id: &str) -> Result<(), AdminError> {
    if store.revoke_client(client_id, &now_rfc3339()).await? {
        Ok(())
    } else {
        Err(AdminError::NoSuchClient(client_id.into()))
    }
}

/// Makes a new signing key current; tokens signed by the previous one stay
/// valid until they expire. Returns the new kid.
pub async fn rotate_key(store: &Store, data_dir: &Path) -> Result<String, AdminError> {
    if stella_store::SigningKeyRepository::list_signing_keys(store)
        .await?
        .is_empty()
    {
        return Err(AdminError::Invalid(
            "no signing key yet; run `stella serve init` first".into(),
        ));
    }
    // Keys are ordered by creation second; make sure the new one sorts first.
    let now = crate::auth::unix_now();
    Ok(keys::generate(store, data_dir, now).await?)
}

/// `stella admin report-keys rotate --tenant`: makes a new report-signing
/// key current for the tenant; the previous one stays published (it still
/// verifies the reports it signed). Returns the new key id.
pub async fn rotate_report_key(
    store: &Store,
    data_dir: &Path,
    tenant: &str,
) -> Result<String, AdminError> {
    validate_name("tenant", tenant)?;
    let ctx = stella_store::TenantContext::from_verified_identity(tenant, "admin");
    let record = crate::report_keys::rotate(store, data_dir, &ctx)
        .await
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    Ok(record.kid)
}
