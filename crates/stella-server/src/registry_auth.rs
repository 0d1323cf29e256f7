//! Registry credentials of a tenant for the service's registry reads and
//! pushes (exports, reports, previews): only the tenant's `registryAuth`
//! artifact (a docker config JSON staged under a provider), never the
//! server's own docker config or environment.
//!
//! [`parse`] checks the request options (`registryAuth`,
//! `registryAuthProvider`); [`stage`] writes the artifact as
//! `<session>/auth/config.json` in a materializer session (an empty
//! directory when no artifact is named, so nothing is found);
//! [`client`] builds a registry client reading only that directory, with
//! credential helpers looked up only in an empty directory of the session
//! (a tenant's config cannot make the server run a program).
//!
//! Not here: which registries a job may talk to.

use std::path::PathBuf;
use std::sync::Arc;

use stella_oci::registry::credentials::{CredentialProvider, DockerConfigCredentials};
use stella_oci::registry::{RegistryClient, RegistryOptions};
use stella_store::{Store, TenantContext};
use uuid::Uuid;

use crate::error::FieldError;
use crate::materializer::{MaterializeError, Session};

/// The provider id `registryAuth` artifacts are read from by default.
pub const DEFAULT_AUTH_PROVIDER: &str = "exports";

/// A tenant artifact holding a docker config JSON: (provider, artifact id).
pub type RegistryAuth = (String, Uuid);

/// Checks `registryAuth` / `registryAuthProvider` (field paths
/// `<prefix>registryAuth…`); `None` when no artifact is named.
pub fn parse(
    prefix: &str,
    artifact: Option<&str>,
    provider: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<RegistryAuth> {
    let raw = artifact?;
    let id = match Uuid::parse_str(raw.trim()) {
        Ok(id) => id,
        Err(_) => {
            errors.push(FieldError::new(
                &format!("{prefix}registryAuth"),
                "INVALID_UUID",
                "must be a UUID",
            ));
            return None;
        }
    };
    let provider = provider.unwrap_or(DEFAULT_AUTH_PROVIDER).to_string();
    if crate::routes::artifacts::validate_provider_id(&provider).is_err() {
        errors.push(FieldError::new(
            &format!("{prefix}registryAuthProvider"),
            "INVALID_PROVIDER_ID",
            "not a provider id",
        ));
    }
    Some((provider, id))
}

/// Writes the tenant's docker config (if any) as `<session>/auth/config.json`
/// and returns that directory.
pub async fn stage(
    session: &Session,
    store: &Store,
    ctx: &TenantContext,
    auth: Option<&RegistryAuth>,
) -> Result<PathBuf, MaterializeError> {
    let dir = session.dir().join("auth");
    let io = |e: std::io::Error| MaterializeError::Io {
        path: dir.clone(),
        message: e.to_string(),
    };
    std::fs::create_dir(&dir).map_err(io)?;
    std::fs::create_dir(session.dir().join("no-helpers")).map_err(io)?;
    if let Some((provider, id)) = auth {
        let path = session.materialize(store, ctx, provider, *id).await?;
        std::fs::rename(&path, dir.join("config.json")).map_err(io)?;
    }
    Ok(dir)
}

/// A registry client whose only credentials are those of the staged
/// directory `auth_dir` (see [`stage`]); helpers never run.
pub fn client(auth_dir: PathBuf, plain_http: bool) -> Result<RegistryClient, stella_oci::OciError> {
    let helpers = auth_dir
        .parent()
        .map_or_else(|| auth_dir.join("no-helpers"), |p| p.join("no-helpers"));
    let provider: Arc<dyn CredentialProvider> =
        Arc::new(DockerConfigCredentials::new(Some(auth_dir)).with_helper_dir(helpers));
    RegistryClient::new(RegistryOptions {
        plain_http,
        credential_provider: Some(provider),
        ..RegistryOptions::default()
    })
}
