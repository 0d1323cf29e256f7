//! `GET /vex/statements` (paginated) and `GET /vex/consensus`: the
//! tenant's ingested OpenVEX statements and their consensus across issuers
//! (`crate::vex::query`), weighed by the tenant's issuer trust
//! configuration, which `GET|PUT /vex/trust` read and write (no stored
//! configuration: every issuer weighs the same). Scope `vex.read`;
//! `vex.admin` to write the trust configuration.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use stella_store::{TenantContext, VexRepository, VexTrustRecord, VexTrustRepository};

use crate::auth::{Principal, Scope};
use crate::error::{ApiError, FieldError, Problem};
use crate::state::AppState;
use crate::vex::query::{StatementView, consensus_with_stored_trust, statement_query};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    /// Product purl, IRI or image digest (normalised: `pkg:oci` by digest).
    pub product: Option<String>,
    /// Vulnerability name, alias or @id.
    pub vulnerability: Option<String>,
    /// Issuer as recorded (verified signer).
    pub issuer: Option<String>,
    /// Page size, 1–500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsensusParams {
    /// Product purl, IRI or image digest.
    pub product: String,
    /// One vulnerability; default: every vulnerability stored about the product.
    pub vulnerability: Option<String>,
}

/// One page of statements.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatementPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<StatementView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The consensus per vulnerability.
#[derive(Serialize, ToSchema)]
pub struct ConsensusList {
    /// `{product, vulnerability, status, conflict, rationale, contributions: [{issuer, weight, status, statementDigest, …}]}`
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<stella_vex::Consensus>,
}

/// Refuses query text with control characters (NUL among them, which
/// Postgres cannot store or compare) as a 400 naming the parameter.
fn check_text(params: &[(&str, Option<&str>)]) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = params
        .iter()
        .filter(|(_, v)| v.is_some_and(|v| v.chars().any(char::is_control)))
        .map(|(name, _)| {
            FieldError::new(
                name,
                "CONTROL_CHARACTER",
                "control characters are not allowed here",
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// List ingested statements.
#[utoipa::path(get, path = "/vex/statements", tag = "vex",
    params(StatementParams),
    security(("bearer" = ["vex.read"])),
    responses(
        (status = 200, description = "A page of statements, oldest first", body = StatementPage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_vex_statements(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<StatementParams>, QueryRejection>,
) -> Result<Json<StatementPage>, ApiError> {
    let ctx = principal.require(Scope::VexRead)?;
    let Query(p) = query.map_err(super::bad_query)?;
    check_text(&[
        ("product", p.product.as_deref()),
        ("vulnerability", p.vulnerability.as_deref()),
        ("issuer", p.issuer.as_deref()),
        ("cursor", p.cursor.as_deref()),
    ])?;
    let limit = super::page_limit(p.limit)?;
    let mut q = statement_query(
        p.product.as_deref(),
        p.vulnerability.as_deref(),
        p.issuer.as_deref(),
    );
    q.limit = limit;
    q.after = p
        .cursor
        .as_deref()
        .map(|c| c.parse::<i64>().map_err(|_| super::invalid_cursor()))
        .transpose()?;
    let rows = state.store.query_vex_statements(&ctx, &q).await?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.key.to_string()))
        .flatten();
    Ok(Json(StatementPage {
        items: rows.iter().map(StatementView::from_stored).collect(),
        next_cursor,
    }))
}

/// The consensus across issuers for a product (and vulnerability).
#[utoipa::path(get, path = "/vex/consensus", tag = "vex",
    params(ConsensusParams),
    security(("bearer" = ["vex.read"])),
    responses(
        (status = 200, description = "One consensus per vulnerability (empty when nothing is known)", body = ConsensusList),
        (status = 400, description = "Bad or missing `product`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_vex_consensus(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<ConsensusParams>, QueryRejection>,
) -> Result<Json<ConsensusList>, ApiError> {
    let ctx = principal.require(Scope::VexRead)?;
    let Query(p) = query.map_err(super::bad_query)?;
    check_text(&[
        ("product", Some(p.product.as_str())),
        ("vulnerability", p.vulnerability.as_deref()),
    ])?;
    let items =
        consensus_with_stored_trust(&state.store, &ctx, &p.product, p.vulnerability.as_deref())
            .await?;
    Ok(Json(ConsensusList { items }))
}

/// The tenant's issuer trust configuration and when it was set.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustView {
    /// `{issuers: [{issuer, weight?}], defaultWeight}`: the issuer exactly
    /// as recorded (the verified signer); without `weight` the position
    /// ranks (first highest, above `defaultWeight`); `defaultWeight` 0
    /// ignores unlisted issuers.
    #[schema(value_type = Object)]
    pub trust: stella_vex::TrustConfig,
    /// False when none was ever stored (every issuer weighs 1).
    pub configured: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// The stored trust configuration (default: every issuer equal) and its record.
async fn tenant_trust(
    state: &AppState,
    ctx: &TenantContext,
) -> Result<(stella_vex::TrustConfig, Option<VexTrustRecord>), ApiError> {
    let Some(record) = state.store.get_vex_trust(ctx).await? else {
        return Ok((stella_vex::TrustConfig::default(), None));
    };
    let trust = serde_json::from_str(&record.trust_json).map_err(|_| ApiError::Internal)?;
    Ok((trust, Some(record)))
}

fn trust_view(trust: stella_vex::TrustConfig, record: Option<VexTrustRecord>) -> TrustView {
    TrustView {
        trust,
        configured: record.is_some(),
        updated_at: record.as_ref().map(|r| r.updated_at.clone()),
        updated_by: record.map(|r| r.updated_by),
    }
}

/// Read the tenant's issuer trust configuration.
#[utoipa::path(get, path = "/vex/trust", tag = "vex",
    security(("bearer" = ["vex.read"])),
    responses(
        (status = 200, description = "The trust configuration (the default when none is stored)", body = TrustView),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_vex_trust(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<TrustView>, ApiError> {
    let ctx = principal.require(Scope::VexRead)?;
    let (trust, record) = tenant_trust(&state, &ctx).await?;
    Ok(Json(trust_view(trust, record)))
}

/// Replace the tenant's issuer trust configuration (used by `/vex/consensus`).
#[utoipa::path(put, path = "/vex/trust", tag = "vex",
    request_body(content = Object, description = "`{issuers: [{issuer, weight?}], defaultWeight?}` (defaultWeight 1 when absent)"),
    security(("bearer" = ["vex.admin"])),
    responses(
        (status = 200, description = "Saved", body = TrustView),
        (status = 400, description = "Malformed body, an issuer listed twice or empty (`INVALID_TRUST`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Scope `vex.admin` missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_vex_trust(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Json<stella_vex::TrustConfig>, JsonRejection>,
) -> Result<Json<TrustView>, ApiError> {
    let ctx = principal.require(Scope::VexAdmin)?;
    let Json(trust) = body.map_err(super::bad_body)?;
    let text_fields: Vec<(&str, Option<&str>)> = trust
        .issuers
        .iter()
        .map(|i| ("issuers", Some(i.issuer.as_str())))
        .collect();
    check_text(&text_fields)?;
    trust.validate().map_err(|e| ApiError::BadRequest {
        code: "INVALID_TRUST",
        detail: e.to_string(),
    })?;
    let trust_json =
        stella_types::canonical_json::to_canonical_vec(&trust).map_err(|_| ApiError::Internal)?;
    let record = VexTrustRecord {
        trust_json: String::from_utf8(trust_json).map_err(|_| ApiError::Internal)?,
        updated_at: stella_vex::Timestamp(time::OffsetDateTime::now_utc()).to_rfc3339(),
        updated_by: ctx.subject().to_string(),
    };
    state.store.save_vex_trust(&ctx, &record).await?;
    Ok(Json(trust_view(trust, Some(record))))
}
