//! Report-signing keys, one current key per tenant (Ed25519, generated
//! with `stella-crypto`): private halves are PKCS#8 PEM files (0600) under
//! `<data-dir>/report-keys/<tenant>/<kid>.pem`, written the way the token
//! keys are; public halves (SPKI PEM) are in the database and published at
//! `GET /api/v1/reports/keys`. Rotating adds a key and retires the previous
//! one, which stays published so reports it signed keep verifying.
//!
//! A tenant's first report creates its first key. Not here: signing (the
//! report is signed by `stella_report::sign_report`).

use std::path::{Path, PathBuf};

use stella_crypto::{KeyKind, PrivateKey};
use stella_store::{PolicyRepository, ReportKeyRecord, Store, StoreError, TenantContext};

#[derive(Debug, thiserror::Error)]
pub enum ReportKeyError {
    #[error("generating a report key failed: {0}")]
    Generate(String),
    #[error("report key file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("tenant `{0}` cannot name a key directory")]
    Tenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] crate::auth::keys::KeyError),
}

const ALGORITHM: &str = "ed25519";

fn tenant_dir(data_dir: &Path, tenant: &str) -> Result<PathBuf, ReportKeyError> {
    let safe = !tenant.is_empty()
        && !tenant.starts_with('.')
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !safe {
        return Err(ReportKeyError::Tenant(tenant.to_string()));
    }
    Ok(data_dir.join("report-keys").join(tenant))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Generates a key for the tenant, writes its private half and makes it
/// current (retiring the previous one). Returns the new key's record.
pub async fn rotate(
    store: &Store,
    data_dir: &Path,
    ctx: &TenantContext,
) -> Result<ReportKeyRecord, ReportKeyError> {
    let dir = tenant_dir(data_dir, ctx.tenant())?;
    let key = PrivateKey::generate(KeyKind::Ed25519)
        .map_err(|e| ReportKeyError::Generate(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem()
        .map_err(|e| ReportKeyError::Generate(e.to_string()))?;
    let kid = key.public_key().keyid();
    crate::auth::keys::write_private(&dir.join(format!("{kid}.pem")), pem.as_bytes())?;
    let record = ReportKeyRecord {
        kid,
        algorithm: ALGORITHM.into(),
        public_pem: key.public_key().to_pem(),
        created_at: now_rfc3339(),
        retired_at: None,
    };
    store.add_report_key(ctx, &record).await?;
    Ok(record)
}

/// The tenant's current signing key, created on first use.
pub async fn current(
    store: &Store,
    data_dir: &Path,
    ctx: &TenantContext,
) -> Result<PrivateKey, ReportKeyError> {
    let keys = store.list_report_keys(ctx).await?;
    let kid = match keys.into_iter().find(|k| k.retired_at.is_none()) {
        Some(k) => k.kid,
        None => rotate(store, data_dir, ctx).await?.kid,
    };
    let path = tenant_dir(data_dir, ctx.tenant())?.join(format!("{kid}.pem"));
    let file_err = |message: String| ReportKeyError::File {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| file_err(e.to_string()))?;
    PrivateKey::from_pkcs8_pem(&text, None).map_err(|e| file_err(e.to_string()))
}
