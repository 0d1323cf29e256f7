//! `POST /api/v1/reports` and `GET /api/v1/reports/keys`: an image's
//! report under a policy revision of the tenant (the active one unless the
//! request names one), DSSE-signed with the tenant's report key, and the
//! tenant's report public keys (current and rotated-out).
//!
//! The report is `stella_report` on top of `stella_engine::verify_image`,
//! exactly as `stella report` computes it offline: the same collection,
//! the same VEX adapter (OpenVEX attached to the image), the same judging
//! and canonical bytes. The service adds the tenant's ingested VEX
//! statements; a stored statement counts for the policy signers whose key
//! verified it at ingestion (`key sha256:<keyid>`).
//!
//! Time: `generatedAt` is the request's `generatedAt` when given (so a
//! report can be reproduced byte for byte, e.g. against the CLI under the
//! same `SOURCE_DATE_EPOCH`), else the server clock; finding ages are
//! measured against the server clock, as in the CLI.
//!
//! Signer key files the policy names are read from the tenant's policy
//! directory (`<dataDir>/policies/<tenant>/`, as for `POST /verify/image`);
//! keyless signers are refused. Registries are read (and, with `attach`,
//! written) with the tenant's `registryAuth` artifact only, anonymously
//! without one (`crate::registry_auth`), never with the server's own
//! credentials.
//!
//! Parsed scanner reports are kept in the server's report cache
//! (`stella_report::cache`, keyed by tenant and referrer manifest digest,
//! bounded by `reports.cacheMaxEntries` / `reports.cacheMaxBytes`): a
//! report on an image seen before still lists and verifies its referrers,
//! but does not fetch and parse its scanner reports again. Within one
//! request every manifest and blob is read once (`stella_report::memo`).
//!
//! `attach: true` signs the report as the verdict predicate of `stella
//! verify image --attach-verdict` (an in-toto Statement in a sigstore
//! bundle, signed with the tenant's report key) and pushes it as a
//! referrer of the image through `stella_engine::publish`, the code the
//! CLI uses; the response gains `attached.digest`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use stella_crypto::PrivateKey;
use stella_engine::Trust;
use stella_engine::image::VerifyImageRequest;
use stella_oci::any::AnyStore;
use stella_oci::registry::RegistryClient;
use stella_oci::store::NoProgress;
use stella_report::cache::{Parsed, ParsedReports, ScannerCache, TenantCache};
use stella_report::findings::Limits;
use stella_report::memo::ReadOnce;
use stella_report::openvex::OpenVexLookup;
use stella_report::{Collected, Decision, ImageReport};
use stella_store::{PolicyRepository, TenantContext};
use stella_types::limits::DEFAULT_REFERRER_DEPTH;
use stella_types::predicate_types::STELLA_VERDICT;
use stella_types::{Digest, Reference};
use stella_verify::policy::Policy;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::materializer::{MaterializeError, Materializer, Session};
use crate::metrics::Metrics;
use crate::registry_auth::RegistryAuth;
use crate::routes::policy::{parse_stored, revision_not_found};
use crate::routes::verify::{policy_dir, trust_for, upstream};
use crate::state::AppState;

/// What to report on.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportBody {
    /// A registry image reference (`host/repo:tag`, `host/repo@sha256:…`).
    pub image: Option<String>,
    /// The image's digest (`sha256:…`); with `image` it pins the digest,
    /// alone it must be a full `host/repo@sha256:…` reference.
    pub image_digest: Option<String>,
    /// The environment rules match on.
    pub environment: Option<String>,
    /// A revision id of the tenant; default: the active revision.
    pub policy_revision: Option<String>,
    /// Push the signed report as a referrer of the image: a sigstore
    /// bundle whose in-toto Statement carries the report as the verdict
    /// predicate (`https://stella.dev/attestation/verdict/v1`), signed with the
    /// tenant's report key, as `verify image --attach-verdict` does.
    #[serde(default)]
    pub attach: bool,
    /// A docker config JSON artifact of the tenant with the registry
    /// credentials for reading (and, with `attach`, pushing); default:
    /// anonymous.
    #[schema(format = "uuid")]
    pub registry_auth: Option<String>,
    /// The provider the `registryAuth` artifact is staged under (default `exports`).
    pub registry_auth_provider: Option<String>,
    /// Talk to the registry over plain HTTP.
    #[serde(default)]
    pub plain_http: bool,
    /// RFC 3339 time (whole seconds) stamped as `generatedAt`; default now.
    pub generated_at: Option<String>,
}

/// The report and its DSSE envelope.
#[derive(Serialize, ToSchema)]
pub struct SignedReport {
    /// The report (canonical JSON, see docs/policy.md).
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    /// DSSE envelope, payloadType `application/vnd.stellaops.report+json`,
    /// payload the report's canonical bytes.
    #[schema(value_type = Object)]
    pub dsse: serde_json::Value,
}

/// One report public key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportKey {
    /// SHA-256 of the key's SPKI DER (the envelope's `keyid`).
    pub kid: String,
    pub algorithm: String,
    /// SPKI PEM.
    pub public_key: String,
    pub created_at: String,
    /// Set once rotated out (the key still verifies the reports it signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

/// The tenant's report keys, current first.
#[derive(Serialize, ToSchema)]
pub struct ReportKeyList {
    pub keys: Vec<ReportKey>,
}

fn field(path: &str, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::new(path, code, message)])
}

/// The registry reference a request names.
pub(crate) fn image_reference(
    image: Option<&str>,
    image_digest: Option<&str>,
) -> Result<Reference, ApiError> {
    let bad = |path: &str, e: String| field(path, "INVALID_IMAGE_REFERENCE", e);
    let reference = match (image, image_digest) {
        (Some(i), None) => Reference::parse(i.trim()).map_err(|e| bad("$.image", e.to_string()))?,
        (Some(i), Some(d)) => {
            let digest =
                Digest::parse(d.trim()).map_err(|e| bad("$.imageDigest", e.to_string()))?;
            Reference::parse(i.trim())
                .map_err(|e| bad("$.image", e.to_string()))?
                .with_digest(digest)
        }
        (None, Some(d)) => Reference::parse(d.trim()).map_err(|_| {
            bad(
                "$.imageDigest",
                "alone, imageDigest must be a full host/repo@sha256:… reference".into(),
            )
        })?,
        (None, None) => return Err(bad("$.image", "image or imageDigest is required".into())),
    };
    if !matches!(reference, Reference::Registry(_)) {
        return Err(field(
            "$.image",
            "LOCAL_REFERENCE_REFUSED",
            "the server reads registries only, not local oci: layouts",
        ));
    }
    Ok(reference)
}

/// `generatedAt` from the request, else now (whole seconds).
pub(crate) fn report_time(given: Option<&str>) -> Result<OffsetDateTime, ApiError> {
    let Some(text) = given else {
        let now = OffsetDateTime::now_utc();
        return Ok(now.replace_nanosecond(0).unwrap_or(now));
    };
    let t = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(
        |e| {
            field(
                "$.generatedAt",
                "INVALID_TIME",
                format!("not RFC 3339: {e}"),
            )
        },
    )?;
    if t.nanosecond() != 0 {
        return Err(field(
            "$.generatedAt",
            "INVALID_TIME",
            "generatedAt must be whole seconds",
        ));
    }
    Ok(t)
}

/// The store one request reads through: every manifest, small blob and
/// listing read once (`stella_report::memo`), shared by the reports a
/// request computes (a preview computes two).
pub(crate) type RequestStore = Arc<ReadOnce<AnyStore>>;

/// Opens the request's store for `reference` with the request's client.
pub(crate) fn request_store(
    reference: &Reference,
    client: &RegistryClient,
) -> Result<RequestStore, ApiError> {
    let store = stella_oci::open_store(reference, client).map_err(upstream)?;
    Ok(Arc::new(ReadOnce::new(store)))
}

/// What one report evaluation needs.
pub(crate) struct ReportInput {
    pub reference: Reference,
    pub policy: Policy,
    pub revision_id: String,
    pub environment: Option<String>,
    pub generated_at: OffsetDateTime,
    /// The request's store (with the tenant's credentials, see [`access`]).
    pub store: RequestStore,
}

/// The tenant's view of the report cache, counted in `/metrics`.
struct MeteredCache<'a> {
    view: TenantCache<'a>,
    cache: &'a ScannerCache,
    metrics: &'a Metrics,
}

impl ParsedReports for MeteredCache<'_> {
    fn get(&self, digest: &Digest, kind: &'static str) -> Option<Parsed> {
        let found = self.view.get(digest, kind);
        self.metrics.report_cache_lookup(found.is_some());
        found
    }

    fn put(&self, digest: &Digest, kind: &'static str, parsed: Parsed) {
        self.view.put(digest, kind, parsed);
        let stats = self.cache.stats();
        self.metrics.report_cache_size(stats.entries, stats.bytes);
    }
}

/// Computes the report of `input.reference` for the tenant.
pub(crate) async fn compute(
    state: &AppState,
    ctx: &TenantContext,
    input: ReportInput,
) -> Result<ImageReport, ApiError> {
    let dir = policy_dir(state, ctx.tenant()).ok_or(ApiError::Internal)?;
    let trust = trust_for(&dir, &input.policy, &input.revision_id)?;
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let job = CollectJob {
        store: input.store.clone(),
        reference: input.reference.clone(),
        policy: input.policy.clone(),
        trust: trust.clone(),
        generated_at: input.generated_at,
        now,
        cache: state.report_cache.clone(),
        metrics: state.metrics.clone(),
        tenant: ctx.tenant().to_string(),
    };
    // The engine's futures are not provably `Send`: run on a blocking
    // thread driving the server's runtime (network deadlines bound it).
    let handle = tokio::runtime::Handle::current();
    let (subject, collected) = tokio::task::spawn_blocking(move || handle.block_on(job.run()))
        .await
        .map_err(|_| ApiError::Internal)??;
    let trusted: Vec<String> = input
        .policy
        .vex
        .as_ref()
        .map_or_else(Vec::new, |v| v.signers.clone());
    let (mut vex, _skipped) =
        OpenVexLookup::from_documents(&collected.vex_documents, &subject, &trusted).map_err(
            |e| ApiError::BadRequest {
                code: "VEX_UNREADABLE",
                detail: e.to_string(),
            },
        )?;
    add_stored_vex(state, ctx, &trust, &mut vex).await?;
    let decision = Decision {
        policy: &input.policy,
        revision_id: input.revision_id.clone(),
        environment: input.environment.clone(),
        vex: &vex,
        generated_at: input.generated_at,
        now,
    };
    stella_report::decide(&subject, collected.evidence, collected.scanners, &decision).map_err(
        |e| ApiError::BadRequest {
            code: "TOO_MANY_FINDINGS",
            detail: e.to_string(),
        },
    )
}

/// Collecting an image's material on a blocking thread (owned inputs).
struct CollectJob {
    store: RequestStore,
    reference: Reference,
    policy: Policy,
    trust: Trust,
    generated_at: OffsetDateTime,
    now: OffsetDateTime,
    cache: Arc<ScannerCache>,
    metrics: Arc<Metrics>,
    tenant: String,
}

impl CollectJob {
    async fn run(self) -> Result<(Digest, Collected), ApiError> {
        let store = &*self.store;
        let subject = match stella_oci::artifact::resolve(store, &self.reference).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => {
                return Err(ApiError::NotFound(format!("image {}", self.reference)));
            }
            Err(e) => return Err(upstream(e)),
        };
        let request = VerifyImageRequest {
            reference: self
                .reference
                .with_digest(subject.digest.clone())
                .to_string(),
            subject: subject.clone(),
            policy: self.policy,
            depth: DEFAULT_REFERRER_DEPTH,
            report_time: Some(self.generated_at),
        };
        let cache = MeteredCache {
            view: self.cache.for_tenant(&self.tenant),
            cache: &self.cache,
            metrics: &self.metrics,
        };
        let collected = stella_report::collect_cached(
            store,
            &request,
            &self.trust,
            self.now,
            &Limits::default(),
            Some(&cache),
        )
        .await
        .map_err(|e| match e {
            stella_report::GatherError::Engine(_) | stella_report::GatherError::Store(_) => {
                ApiError::Upstream(e.to_string())
            }
            other => ApiError::BadRequest {
                code: "SCANNER_REPORT_INVALID",
                detail: other.to_string(),
            },
        })?;
        Ok((subject.digest, collected))
    }
}

/// Adds the tenant's ingested statements to `vex`, each with the policy
/// signers whose key verified it at ingestion.
async fn add_stored_vex(
    state: &AppState,
    ctx: &TenantContext,
    trust: &Trust,
    vex: &mut OpenVexLookup,
) -> Result<(), ApiError> {
    let query = crate::vex::query::statement_query(None, None, None);
    let issued = crate::vex::query::load_issued(&state.store, ctx, query).await?;
    for s in issued {
        let signers: Vec<String> = trust
            .signers
            .iter()
            .filter(|n| {
                n.trust
                    .keys
                    .iter()
                    .any(|k| s.issuer == format!("key sha256:{}", k.keyid()))
            })
            .map(|n| n.name.clone())
            .collect();
        let issuer = s.issuer.clone();
        vex.push_issued(s, &signers, &issuer);
    }
    Ok(())
}

/// Compute, sign and return an image report.
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports",
    request_body(content = ReportBody, content_type = "application/json"),
    security(("bearer" = ["scanner.reports"])),
    responses(
        (status = 200, description = "The report and its DSSE envelope (canonical JSON)", body = SignedReport),
        (status = 400, description = "Bad body or reference, invalid scanner report, unreadable trusted VEX, no active revision", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `scanner.reports` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown image or policy revision", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The registry failed or refused", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_report(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Json<ReportBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ctx = principal.require(Scope::ScannerReports)?;
    let Json(body) = body.map_err(super::bad_body)?;
    let reference = image_reference(body.image.as_deref(), body.image_digest.as_deref())?;
    let generated_at = report_time(body.generated_at.as_deref())?;
    let auth = registry_auth_option(
        body.registry_auth.as_deref(),
        body.registry_auth_provider.as_deref(),
    )?;
    let revision = state
        .store
        .get_policy_revision(&ctx, body.policy_revision.as_deref())
        .await?
        .ok_or_else(|| revision_not_found(body.policy_revision.as_deref()))?;
    let policy = parse_stored(&revision)?;
    let access = access(&state, &ctx, auth.as_ref(), body.plain_http).await?;
    let input = ReportInput {
        reference: reference.clone(),
        policy,
        revision_id: revision.revision_id,
        environment: body.environment,
        generated_at,
        store: request_store(&reference, &access.client)?,
    };
    let report = compute(&state, &ctx, input).await?;
    let key = crate::report_keys::current(&state.store, &state.config.data_dir, &ctx)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "report key unavailable");
            ApiError::Internal
        })?;
    let envelope = stella_report::sign_report(&report, &key).map_err(|e| {
        tracing::error!(error = %e, "signing a report failed");
        ApiError::Internal
    })?;
    let bytes = stella_report::signed_output(&report, Some(&envelope)).map_err(|e| {
        tracing::error!(error = %e, "report output failed");
        ApiError::Internal
    })?;
    if !body.attach {
        return Ok(json_bytes(bytes));
    }
    let target = AttachTarget {
        client: access.client.clone(),
        reference,
        image: report.image_digest.clone(),
        created: generated_at,
    };
    let pushed = attach(target, report.canonical_bytes(), key).await?;
    Ok(json_bytes(with_attached(&bytes, &pushed)))
}

/// Checks the `registryAuth` options of a request body.
pub(crate) fn registry_auth_option(
    artifact: Option<&str>,
    provider: Option<&str>,
) -> Result<Option<RegistryAuth>, ApiError> {
    let mut errors = Vec::new();
    let auth = crate::registry_auth::parse("$.", artifact, provider, &mut errors);
    if errors.is_empty() {
        Ok(auth)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Registry access for one request: the client and the materializer
/// session holding the tenant's staged credentials (removed on drop, so
/// it lives as long as the client is used).
pub(crate) struct RegistryAccess {
    pub client: RegistryClient,
    _session: Session,
}

/// A registry client with the tenant's `registryAuth` credentials (none:
/// anonymous); never the server's own.
pub(crate) async fn access(
    state: &AppState,
    ctx: &TenantContext,
    auth: Option<&RegistryAuth>,
    plain_http: bool,
) -> Result<RegistryAccess, ApiError> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "cannot stage registry credentials");
        ApiError::Internal
    };
    let session = Materializer::new(&std::env::temp_dir())
        .open_session()
        .map_err(|e| internal(&e))?;
    let dir = crate::registry_auth::stage(&session, &state.store, ctx, auth)
        .await
        .map_err(|e| match e {
            MaterializeError::NotFound(id) => field(
                "$.registryAuth",
                "REGISTRY_AUTH_NOT_FOUND",
                format!("no artifact {id} under the provider"),
            ),
            other => internal(&other),
        })?;
    let client = crate::registry_auth::client(dir, plain_http).map_err(|e| internal(&e))?;
    Ok(RegistryAccess {
        client,
        _session: session,
    })
}

/// Where a signed report is attached.
struct AttachTarget {
    client: RegistryClient,
    reference: Reference,
    /// The reported image; the reference must still resolve to it.
    image: Digest,
    /// Stamped as the referrer's `created` annotation.
    created: OffsetDateTime,
}

/// Signs the report as the verdict predicate with the tenant's report key
/// and pushes it as a referrer of the image; returns the referrer digest.
async fn attach(target: AttachTarget, report: &[u8], key: PrivateKey) -> Result<Digest, ApiError> {
    let predicate: serde_json::Value =
        serde_json::from_slice(report).map_err(|_| ApiError::Internal)?;
    // The engine's futures are not provably `Send` (see `compute`).
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(push_verdict(target, predicate, key)))
        .await
        .map_err(|_| ApiError::Internal)?
}

async fn push_verdict(
    target: AttachTarget,
    predicate: serde_json::Value,
    key: PrivateKey,
) -> Result<Digest, ApiError> {
    let store = stella_oci::open_store(&target.reference, &target.client).map_err(upstream)?;
    let subject = stella_oci::artifact::resolve(&store, &target.reference)
        .await
        .map_err(upstream)?;
    if subject.digest != target.image {
        return Err(ApiError::BadRequest {
            code: "IMAGE_MOVED",
            detail: format!(
                "{} now resolves to {}, not the reported {}",
                target.reference, subject.digest, target.image
            ),
        });
    }
    let attachment = stella_engine::publish::Attachment {
        reference: &target.reference,
        subject: &subject,
        predicate_type: STELLA_VERDICT,
        predicate,
        key: &key,
        certificates: &[],
        created: Some(target.created),
    };
    let attached = stella_engine::publish::sign_and_attach(&store, attachment, &NoProgress)
        .await
        .map_err(|e| match e.store_error() {
            Some(_) => ApiError::Upstream(error_chain(&e)),
            None => {
                tracing::error!(error = %e, "signing the verdict failed");
                ApiError::Internal
            }
        })?;
    Ok(attached.digest)
}

/// `e` and its causes, `: `-joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// `{"attached":{"digest":…},"dsse":…,"report":…}`: `attached` sorts first,
/// so the output stays canonical.
fn with_attached(signed: &[u8], referrer: &Digest) -> Vec<u8> {
    let head = format!("{{\"attached\":{{\"digest\":\"{referrer}\"}},");
    let mut out = head.into_bytes();
    out.extend_from_slice(signed.get(1..).unwrap_or_default());
    out
}

/// A pre-serialised JSON body.
pub(crate) fn json_bytes(bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The tenant's report public keys (current first, then rotated out).
#[utoipa::path(get, path = "/api/v1/reports/keys", tag = "reports",
    security(("bearer" = ["scanner.reports"])),
    responses(
        (status = 200, description = "Report public keys", body = ReportKeyList),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `scanner.reports` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn report_keys(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ReportKeyList>, ApiError> {
    let ctx = principal.require(Scope::ScannerReports)?;
    let keys = state
        .store
        .list_report_keys(&ctx)
        .await?
        .into_iter()
        .map(|k| ReportKey {
            kid: k.kid,
            algorithm: k.algorithm,
            public_key: k.public_pem,
            created_at: k.created_at,
            retired_at: k.retired_at,
        })
        .collect();
    Ok(Json(ReportKeyList { keys }))
}
