//! Statement and consensus queries over the store: the stored statements
//! become `stella_vex::IssuedStatement`s (issuer = the verified signer
//! recorded at ingestion) and `stella_vex::consensus` decides.

use serde::Serialize;
use stella_store::{
    Store, StoreError, StoredVexStatement, TenantContext, VexRepository, VexStatementQuery,
    VexTrustRepository,
};
use stella_vex::{Consensus, IssuedStatement, TrustConfig};

/// Page size used when loading every statement of a pair.
const LOAD_PAGE: u32 = 1000;
/// At most this many statements are weighed for one query.
pub const MAX_CONSENSUS_STATEMENTS: usize = 100_000;

/// A stored statement as the API and `stella vex query` show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementView {
    pub key: i64,
    pub issuer: String,
    pub signed: bool,
    pub provider: String,
    pub image_digest: String,
    pub evidence_digest: String,
    pub document_id: String,
    pub document_version: i64,
    pub document_timestamp: String,
    pub author: String,
    pub ingested_at: String,
    pub statement_digest: String,
    pub statement: serde_json::Value,
}

impl StatementView {
    pub fn from_stored(s: &StoredVexStatement) -> StatementView {
        let d = &s.document;
        StatementView {
            key: s.key,
            issuer: d.issuer.clone(),
            signed: d.signed,
            provider: d.provider_id.clone(),
            image_digest: d.image_digest.clone(),
            evidence_digest: d.evidence_digest.clone(),
            document_id: d.document_id.clone(),
            document_version: d.document_version,
            document_timestamp: d.document_timestamp.clone(),
            author: d.author.clone(),
            ingested_at: d.ingested_at.clone(),
            statement_digest: s.digest.clone(),
            statement: serde_json::from_str(&s.statement_json).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The statement query for a product (any identifier form) and optional
/// vulnerability / issuer.
pub fn statement_query(
    product: Option<&str>,
    vulnerability: Option<&str>,
    issuer: Option<&str>,
) -> VexStatementQuery {
    VexStatementQuery {
        product_key: product.map(stella_vex::purl::normalize),
        vuln_key: vulnerability.map(|v| v.trim().to_ascii_uppercase()),
        issuer: issuer.map(str::to_string),
        after: None,
        limit: LOAD_PAGE,
    }
}

/// Every stored statement matching the query, as issued statements.
pub async fn load_issued(
    store: &Store,
    ctx: &TenantContext,
    query: VexStatementQuery,
) -> Result<Vec<IssuedStatement>, StoreError> {
    let first = store.query_vex_statements(ctx, &query).await?;
    load_issued_from(store, ctx, query, first).await
}

/// The tenant's issuer trust configuration (default: every issuer equal)
/// and every stored statement matching the query; the trust and the first
/// page are read together (`VexTrustRepository::vex_trust_and_statements`).
pub async fn load_trust_and_issued(
    store: &Store,
    ctx: &TenantContext,
    query: VexStatementQuery,
) -> Result<(TrustConfig, Vec<IssuedStatement>), StoreError> {
    let (record, first) = store.vex_trust_and_statements(ctx, &query).await?;
    let trust = match record {
        Some(r) => serde_json::from_str(&r.trust_json).map_err(|_| {
            StoreError::Corrupt("the stored issuer trust configuration is unreadable".into())
        })?,
        None => TrustConfig::default(),
    };
    Ok((trust, load_issued_from(store, ctx, query, first).await?))
}

/// `first` (the first page of `query`) and the pages after it.
async fn load_issued_from(
    store: &Store,
    ctx: &TenantContext,
    mut query: VexStatementQuery,
    first: Vec<StoredVexStatement>,
) -> Result<Vec<IssuedStatement>, StoreError> {
    let mut out = Vec::new();
    let mut next = Some(first);
    loop {
        let page = match next.take() {
            Some(p) => p,
            None => store.query_vex_statements(ctx, &query).await?,
        };
        let Some(last) = page.last() else { break };
        query.after = Some(last.key);
        for s in &page {
            let Ok(statement) = serde_json::from_str(&s.statement_json) else {
                return Err(StoreError::Corrupt(format!(
                    "stored statement {} is not a statement",
                    s.key
                )));
            };
            out.push(IssuedStatement {
                issuer: s.document.issuer.clone(),
                document_id: s.document.document_id.clone(),
                document_version: u64::try_from(s.document.document_version).unwrap_or(0),
                digest: s.digest.clone(),
                statement,
            });
        }
        if page.len() < query.limit as usize || out.len() >= MAX_CONSENSUS_STATEMENTS {
            break;
        }
    }
    Ok(out)
}

/// The consensus for `product` and `vulnerability` (or every vulnerability
/// stored about it) weighed by the tenant's stored issuer trust.
pub async fn consensus_with_stored_trust(
    store: &Store,
    ctx: &TenantContext,
    product: &str,
    vulnerability: Option<&str>,
) -> Result<Vec<Consensus>, StoreError> {
    let (trust, issued) = load_trust_and_issued(
        store,
        ctx,
        statement_query(Some(product), vulnerability, None),
    )
    .await?;
    Ok(consensus_of(&issued, product, vulnerability, &trust))
}

/// The consensus for `product` and `vulnerability`, or for every
/// vulnerability stored about `product` (sorted by vulnerability).
pub async fn consensus_for(
    store: &Store,
    ctx: &TenantContext,
    product: &str,
    vulnerability: Option<&str>,
    trust: &TrustConfig,
) -> Result<Vec<Consensus>, StoreError> {
    let issued = load_issued(
        store,
        ctx,
        statement_query(Some(product), vulnerability, None),
    )
    .await?;
    Ok(consensus_of(&issued, product, vulnerability, trust))
}

fn consensus_of(
    issued: &[IssuedStatement],
    product: &str,
    vulnerability: Option<&str>,
    trust: &TrustConfig,
) -> Vec<Consensus> {
    let mut vulns: Vec<String> = match vulnerability {
        Some(v) => vec![v.trim().to_string()],
        None => issued
            .iter()
            .map(|s| s.statement.vulnerability.name.trim().to_string())
            .collect(),
    };
    vulns.sort();
    vulns.dedup();
    vulns
        .iter()
        .filter_map(|v| stella_vex::consensus::consensus(issued, product, v, trust))
        .collect()
}
