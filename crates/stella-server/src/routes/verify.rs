//! `GET /verify/policies` and `POST /verify/image`: the tenant's stored
//! evidence policies, and `verify image` run on the server through
//! `stella-engine` against one of them (what the console's image check
//! page calls).
//!
//! Stored policies are operator-managed files,
//! `<dataDir>/policies/<tenant>/<name>.yaml`, in the format of
//! `docs/policy.md`; the keys and CA roots they name are read relative to
//! that directory and must stay inside it. A tenant sees and uses only its
//! own directory (the tenant comes from the verified token).
//!
//! Not done here: keyless signers (they need a sigstore trusted root the
//! server does not manage yet: refused with `POLICY_UNSUPPORTED`), registry
//! credentials (images are read anonymously), registries outside
//! `imageCheck.allowedRegistries` when that list is set (refused with
//! `REGISTRY_NOT_ALLOWED`), local `oci:` layouts (refused:
//! a caller must not make the server read its file system), signing or
//! attaching the verdict.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use stella_attest::verify::TrustPolicy;
use stella_crypto::PublicKey;
use stella_crypto::x509::Certificate;
use stella_engine::image::{VerifyImageRequest, discover_in_index, judge};
use stella_engine::{NamedSigner, Trust};
use stella_oci::AnyStore;
use stella_oci::registry::credentials::{CredentialProvider, StaticCredentials};
use stella_oci::registry::{RegistryClient, RegistryOptions};
use stella_oci::store::ContentRead;
use stella_types::Reference;
use stella_types::limits::{DEFAULT_REFERRER_DEPTH, MAX_JSON_DOCUMENT_BYTES};
use stella_types::predicate_types::resolve_alias;
use stella_verify::policy::Policy;
use utoipa::ToSchema;

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::state::AppState;

/// Policies listed per tenant, at most.
const MAX_POLICIES: usize = 200;

/// One stored policy.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummary {
    /// The name to pass as `policy` (the file name without `.yaml`).
    pub name: String,
    /// `sha256:` of the policy file.
    pub digest: String,
    /// Requirement names, in policy order.
    pub requirements: Vec<String>,
}

/// The tenant's stored policies, by name.
#[derive(Serialize, ToSchema)]
pub struct PolicyList {
    pub items: Vec<PolicySummary>,
}

/// What to verify.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyImageBody {
    /// A registry image reference (`host/repo:tag`, `host/repo@sha256:…`).
    pub reference: String,
    /// Name of a stored policy (see `GET /verify/policies`).
    pub policy: String,
    /// Talk to the registry over plain HTTP (like the CLI's `--plain-http`).
    #[serde(default)]
    pub plain_http: bool,
}

pub(crate) fn policy_dir(state: &AppState, tenant: &str) -> Option<PathBuf> {
    safe_name(tenant).then(|| state.config.data_dir.join("policies").join(tenant))
}

/// A name usable as one path component: 1-128 of `A-Z a-z 0-9 . _ -`, no
/// leading `.`.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub(crate) fn aliases(a: &str) -> Option<String> {
    resolve_alias(a).map(str::to_string)
}

fn read_capped(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.take(MAX_JSON_DOCUMENT_BYTES + 1)
        .read_to_end(&mut buf)
        .ok()?;
    (buf.len() as u64 <= MAX_JSON_DOCUMENT_BYTES).then_some(buf)
}

/// The tenant's stored evidence policies.
#[utoipa::path(get, path = "/verify/policies", tag = "verify",
    security(("bearer" = ["evidence.read"])),
    responses(
        (status = 200, description = "Stored policies", body = PolicyList),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `evidence.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn policies(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<PolicyList>, ApiError> {
    let ctx = principal.require(Scope::EvidenceRead)?;
    let Some(dir) = policy_dir(&state, ctx.tenant()) else {
        return Ok(Json(PolicyList { items: Vec::new() }));
    };
    let items = tokio::task::spawn_blocking(move || list_policies(&dir))
        .await
        .map_err(|_| ApiError::Internal)?;
    Ok(Json(PolicyList { items }))
}

fn list_policies(dir: &Path) -> Vec<PolicySummary> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
        .filter(|n| safe_name(n))
        .collect();
    names.sort();
    names.truncate(MAX_POLICIES);
    names
        .into_iter()
        .filter_map(|name| {
            let bytes = read_capped(&dir.join(format!("{name}.yaml")))?;
            let (policy, _) = Policy::parse(&bytes, &aliases);
            Some(PolicySummary {
                digest: stella_types::Digest::sha256_of(&bytes).to_string(),
                requirements: policy
                    .map(|p| p.requirements.into_iter().map(|r| r.name).collect())
                    .unwrap_or_default(),
                name,
            })
        })
        .collect()
}

fn field(path: &str, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::new(path, code, message)])
}

/// Run `verify image` against a stored policy; the report of docs/policy.md.
#[utoipa::path(post, path = "/verify/image", tag = "verify",
    request_body(content = VerifyImageBody, content_type = "application/json"),
    security(("bearer" = ["evidence.read"])),
    responses(
        (status = 200, description = "The verification report (verdict pass or fail), canonical JSON", content_type = "application/json"),
        (status = 400, description = "Bad reference, unknown or invalid policy, unsupported policy", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `evidence.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The registry failed or refused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_image(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Json<VerifyImageBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ctx = principal.require(Scope::EvidenceRead)?;
    let Json(body) = body.map_err(super::bad_body)?;
    let reference = Reference::parse(body.reference.trim()).map_err(|e| {
        field(
            "$.reference",
            "INVALID_IMAGE_REFERENCE",
            format!("not an image reference: {e}"),
        )
    })?;
    let Reference::Registry(registry) = &reference else {
        return Err(field(
            "$.reference",
            "LOCAL_REFERENCE_REFUSED",
            "the server reads registries only, not local oci: layouts",
        ));
    };
    if !registry_allowed(&state.config.image_check_registries, &registry.registry) {
        return Err(field(
            "$.reference",
            "REGISTRY_NOT_ALLOWED",
            format!(
                "the server does not check images on `{}` (imageCheck.allowedRegistries)",
                registry.registry
            ),
        ));
    }
    let dir = policy_dir(&state, ctx.tenant())
        .filter(|_| safe_name(&body.policy))
        .ok_or_else(|| {
            field(
                "$.policy",
                "UNKNOWN_POLICY",
                "no stored policy of that name",
            )
        })?;
    let (policy, trust) = tokio::task::spawn_blocking(move || load(&dir, &body.policy))
        .await
        .map_err(|_| ApiError::Internal)??;
    let client = registry_client(body.plain_http)?;
    // The engine's discovery future is not provably `Send` (a compiler
    // limit with higher-ranked closures), so it runs on a blocking thread
    // driving the server's runtime; network deadlines bound it.
    let handle = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        handle.block_on(run(&client, &reference, policy, &trust))
    })
    .await
    .map_err(|_| ApiError::Internal)??;
    let mut response = report.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Resolves the image, discovers and verifies its evidence, and judges it:
/// the report's canonical JSON.
async fn run(
    client: &RegistryClient,
    reference: &Reference,
    policy: Policy,
    trust: &Trust,
) -> Result<Vec<u8>, ApiError> {
    let store = stella_oci::open_store(reference, client).map_err(upstream)?;
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let subject = stella_oci::artifact::resolve(&store, reference)
        .await
        .map_err(upstream)?;
    let parent = parent_index(&store, reference, &subject).await?;
    let evidence = discover_in_index(
        &store,
        &subject,
        parent.as_ref(),
        DEFAULT_REFERRER_DEPTH,
        trust,
        now,
    )
    .await
    .map_err(|e| ApiError::Upstream(e.to_string()))?;
    let request = VerifyImageRequest {
        reference: reference.with_digest(subject.digest.clone()).to_string(),
        subject,
        policy,
        depth: DEFAULT_REFERRER_DEPTH,
        report_time: None,
    };
    Ok(judge(&request, &evidence, now).to_canonical_json())
}

pub(crate) fn upstream(e: stella_oci::OciError) -> ApiError {
    ApiError::Upstream(e.to_string())
}

/// `repo:tag@sha256:<platform>`: the tag's index, which holds buildx
/// attestations about the platform manifest.
pub(crate) async fn parent_index(
    store: &AnyStore,
    reference: &Reference,
    subject: &stella_types::Descriptor,
) -> Result<Option<stella_types::Digest>, ApiError> {
    let (Some(tag), Some(_)) = (reference.tag(), reference.digest()) else {
        return Ok(None);
    };
    if stella_oci::referrers::is_index_media_type(&subject.media_type) {
        return Ok(None);
    }
    let tagged = store.resolve_tag(tag).await.map_err(upstream)?;
    Ok(
        (stella_oci::referrers::is_index_media_type(&tagged.media_type)
            && tagged.digest != subject.digest)
            .then_some(tagged.digest),
    )
}

/// Anonymous registry access: the server's own docker credentials are
/// never offered to a registry a caller names.
/// Whether an image check may contact `registry` (`host[:port]`): any
/// when the operator set no list, else only a listed one (case-blind).
fn registry_allowed(allowed: &[String], registry: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(registry))
}

pub(crate) fn registry_client(plain_http: bool) -> Result<RegistryClient, ApiError> {
    let none: Arc<dyn CredentialProvider> = Arc::new(StaticCredentials::new());
    let options = RegistryOptions {
        plain_http,
        credential_provider: Some(none),
        ..RegistryOptions::default()
    };
    RegistryClient::new(options).map_err(|e| {
        tracing::error!(error = %e, "cannot build a registry client");
        ApiError::Internal
    })
}

/// Reads and parses a stored policy and the trust material it names.
fn load(dir: &Path, name: &str) -> Result<(Policy, Trust), ApiError> {
    let bytes = read_capped(&dir.join(format!("{name}.yaml"))).ok_or_else(|| {
        field(
            "$.policy",
            "UNKNOWN_POLICY",
            "no stored policy of that name",
        )
    })?;
    let (policy, diagnostics) = Policy::parse(&bytes, &aliases);
    let Some(policy) = policy else {
        let first: Vec<String> = diagnostics
            .issues
            .iter()
            .filter(|i| i.severity == stella_verify::Severity::Error)
            .take(3)
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect();
        return Err(ApiError::BadRequest {
            code: "POLICY_INVALID",
            detail: format!("stored policy `{name}` is invalid: {}", first.join("; ")),
        });
    };
    let trust = trust_for(dir, &policy, name)?;
    Ok((policy, trust))
}

/// The policy's key and CA-root signers, their material read from `dir`
/// (the tenant's policy directory); keyless signers are refused.
pub(crate) fn trust_for(dir: &Path, policy: &Policy, name: &str) -> Result<Trust, ApiError> {
    let mut signers = Vec::new();
    for (signer, s) in &policy.signers {
        if s.keyless.is_some() {
            return Err(ApiError::BadRequest {
                code: "POLICY_UNSUPPORTED",
                detail: format!(
                    "signer `{signer}` is keyless; the server does not manage a sigstore trusted root yet"
                ),
            });
        }
        let mut trust = TrustPolicy::default();
        for k in &s.keys {
            let text = material(dir, k, name)?;
            trust.keys.push(
                PublicKey::from_pem(&text)
                    .map_err(|_| bad_material(name, &format!("{k} is not a PEM public key")))?,
            );
        }
        for c in &s.ca_roots {
            let text = material(dir, c, name)?;
            let certs = Certificate::pem_chain(&text)
                .map_err(|_| bad_material(name, &format!("{c} is not PEM certificates")))?;
            trust.ca_roots.extend(certs);
        }
        signers.push(NamedSigner {
            name: signer.clone(),
            trust,
        });
    }
    Ok(Trust { signers })
}

fn bad_material(policy: &str, why: &str) -> ApiError {
    ApiError::BadRequest {
        code: "POLICY_INVALID",
        detail: format!("stored policy `{policy}`: {why}"),
    }
}

/// A key or certificate file a stored policy names: relative, inside the
/// tenant's policy directory.
fn material(dir: &Path, relative: &str, policy: &str) -> Result<String, ApiError> {
    let rel = Path::new(relative);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad_material(
            policy,
            &format!("{relative} must be a relative path inside the policy directory"),
        ));
    }
    read_capped(&dir.join(rel))
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| bad_material(policy, &format!("cannot read {relative}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_outside_the_allow_list_are_refused() {
        assert!(registry_allowed(&[], "any.example:5000"));
        let list = vec!["registry.internal:5000".to_string()];
        assert!(registry_allowed(&list, "Registry.Internal:5000"));
        assert!(!registry_allowed(&list, "registry.internal"));
        assert!(!registry_allowed(&list, "169.254.169.254"));
    }

    #[test]
    fn names_are_single_safe_components() {
        for ok in ["default", "release-1", "a.b_c"] {
            assert!(safe_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a\\b",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(!safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn material_paths_stay_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for bad in ["../x.pub", "/etc/passwd", "a/../../x"] {
            assert!(material(dir.path(), bad, "p").is_err(), "{bad}");
        }
        std::fs::write(dir.path().join("k.pub"), "text").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            material(dir.path(), "k.pub", "p").ok().as_deref(),
            Some("text")
        );
    }
}
