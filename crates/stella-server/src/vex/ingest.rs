//! Storing the OpenVEX documents `stella_engine::vex::discover_vex`
//! accepted: one transaction per document (`VexRepository`), idempotent,
//! a higher document version superseding the stored one.

use serde::Serialize;
use stella_engine::vex::VexDiscovery;
use stella_store::{
    IngestOutcome, Store, StoreError, TenantContext, VexDocumentRecord, VexRepository,
    VexStatementRecord,
};
use stella_vex::{Document, Statement, purl};

/// What one ingestion did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestCounts {
    /// OpenVEX documents found (accepted or not).
    pub found: u64,
    /// Refused: not verified, unsigned while signatures are required,
    /// invalid, about another digest...
    pub rejected: u64,
    pub inserted: u64,
    pub superseded: u64,
    pub unchanged: u64,
    /// Statements written.
    pub statements: u64,
    /// Caps hit (referrers per image, documents per run).
    #[serde(skip_serializing_if = "is_zero")]
    pub caps_hit: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl IngestCounts {
    pub fn add(&mut self, other: &IngestCounts) {
        self.found += other.found;
        self.rejected += other.rejected;
        self.inserted += other.inserted;
        self.superseded += other.superseded;
        self.unchanged += other.unchanged;
        self.statements += other.statements;
        self.caps_hit += other.caps_hit;
    }
}

/// One refused document and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub source: String,
    pub reason: String,
}

/// The matching and storage record of one statement.
pub fn statement_record(s: &Statement) -> Result<VexStatementRecord, stella_vex::VexError> {
    let mut product_keys: Vec<String> = s
        .products
        .iter()
        .flat_map(|p| {
            purl::component_keys(&p.component)
                .into_iter()
                .chain(p.subcomponents.iter().flat_map(purl::component_keys))
        })
        .collect();
    product_keys.sort();
    product_keys.dedup();
    let v = &s.vulnerability;
    let mut vuln_keys: Vec<String> = std::iter::once(&v.name)
        .chain(v.aliases.iter())
        .chain(v.id.iter())
        .map(|k| k.trim().to_ascii_uppercase())
        .filter(|k| !k.is_empty())
        .collect();
    vuln_keys.sort();
    vuln_keys.dedup();
    // One canonical encoding serves as the stored JSON and, hashed, as the
    // digest (`Statement::digest` hashes the same bytes).
    let json = stella_types::canonical_json::to_canonical_vec(s)
        .map_err(|e| stella_vex::VexError::Encode(e.to_string()))?;
    Ok(VexStatementRecord {
        digest: stella_types::Digest::sha256_of(&json).to_string(),
        vulnerability: v.name.trim().to_string(),
        status: s.status.as_str().to_string(),
        product_keys,
        vuln_keys,
        statement_json: String::from_utf8_lossy(&json).into_owned(),
    })
}

/// Errors of [`ingest_discovery`].
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode a statement: {0}")]
    Encode(#[from] stella_vex::VexError),
}

/// The storage records of one accepted document (its `ingested_at` is set
/// when it is stored).
pub type DocumentRecords = (VexDocumentRecord, Vec<VexStatementRecord>);

/// The records of every accepted document of `discovery`, by evidence
/// position (`None` for refused evidence): the CPU work of storing (the
/// statements' canonical JSON, digests and matching keys), done apart from
/// the database so a runner can do it while the previous image is stored.
pub fn prepare_discovery(
    discovery: &VexDiscovery,
    provider_id: &str,
) -> Result<Vec<Option<DocumentRecords>>, IngestError> {
    discovery
        .evidence
        .iter()
        .map(|evidence| {
            let (Ok(doc), Some(issuer), Some(evidence_digest)) = (
                &evidence.outcome,
                &evidence.issuer,
                &evidence.evidence_digest,
            ) else {
                return Ok(None);
            };
            let record = document_record(doc, provider_id, issuer, evidence, evidence_digest, "");
            let statements = doc
                .statements
                .iter()
                .map(statement_record)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((record, statements)))
        })
        .collect()
}

/// Stores every accepted document of `discovery`; counts what happened.
pub async fn ingest_discovery(
    store: &Store,
    ctx: &TenantContext,
    provider_id: &str,
    discovery: &VexDiscovery,
    ingested_at: &str,
) -> Result<(IngestCounts, Vec<Rejection>), IngestError> {
    let prepared = prepare_discovery(discovery, provider_id)?;
    ingest_prepared(store, ctx, discovery, prepared, ingested_at).await
}

/// Stores the accepted documents of `discovery` from their records
/// ([`prepare_discovery`] of the same discovery; evidence refused since,
/// e.g. over a cap, is not stored), one transaction per document.
pub async fn ingest_prepared(
    store: &Store,
    ctx: &TenantContext,
    discovery: &VexDiscovery,
    prepared: Vec<Option<DocumentRecords>>,
    ingested_at: &str,
) -> Result<(IngestCounts, Vec<Rejection>), IngestError> {
    let mut counts = IngestCounts::default();
    let mut rejections = Vec::new();
    let mut prepared = prepared.into_iter();
    for evidence in &discovery.evidence {
        let records = prepared.next().flatten();
        counts.found += 1;
        if let Err(reason) = &evidence.outcome {
            counts.rejected += 1;
            rejections.push(Rejection {
                source: evidence.source.clone(),
                reason: reason.clone(),
            });
            continue;
        }
        let Some((mut record, statements)) = records else {
            counts.rejected += 1;
            continue;
        };
        record.ingested_at = ingested_at.to_string();
        match store.ingest_vex_document(ctx, &record, &statements).await? {
            IngestOutcome::Inserted => counts.inserted += 1,
            IngestOutcome::Superseded => counts.superseded += 1,
            IngestOutcome::Unchanged => {
                counts.unchanged += 1;
                continue;
            }
        }
        counts.statements += statements.len() as u64;
    }
    Ok((counts, rejections))
}

fn document_record(
    doc: &Document,
    provider_id: &str,
    issuer: &str,
    evidence: &stella_engine::vex::VexEvidence,
    evidence_digest: &str,
    ingested_at: &str,
) -> VexDocumentRecord {
    VexDocumentRecord {
        provider_id: provider_id.to_string(),
        issuer: issuer.to_string(),
        document_id: doc.id.clone(),
        document_version: i64::try_from(doc.version).unwrap_or(i64::MAX),
        document_timestamp: doc.timestamp.to_rfc3339(),
        author: doc.author.clone(),
        signed: evidence.signed,
        image_digest: evidence.about.to_string(),
        evidence_digest: evidence_digest.to_string(),
        ingested_at: ingested_at.to_string(),
    }
}
