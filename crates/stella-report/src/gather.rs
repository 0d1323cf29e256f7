//! Collecting what a report judges from an image's referrers: the engine's
//! evidence report (`stella_engine::verify_image`, the same discovery and
//! verification `verify image` runs), then the content of the evidence
//! that is a scanner report (findings) or a VEX document (handed to the
//! caller's VEX provider, with the signers the engine verified).
//!
//! Which evidence is read: attestations whose predicate type is the in-toto
//! vulns predicate (the statement inside the verified envelope is read),
//! and plain JSON artifacts (artifact type `application/json` or `…+json`,
//! except SPDX, OpenVEX and signature formats), whose format is recognised
//! from content; JSON that is no scanner report (an SBOM without
//! vulnerabilities reads as zero findings; anything else is skipped).
//!
//! Fails closed: scanner evidence the engine rejected (a statement or
//! manifest subject naming another image; a rejected plain JSON referrer is
//! read to tell whether it is a scanner report) or a report whose own
//! metadata names other image digests is an error, never silently dropped.
//!
//! Not here: parsing VEX (the VEX provider does), judging, printing.

use std::sync::Arc;
use stella_attest::bundle::Bundle;
use stella_attest::dsse::Envelope;
use stella_engine::image::{VerifyImageRequest, verify_image};
use stella_engine::layers::{attestation_layers, read_layer};
use stella_engine::{EngineError, Trust};
use stella_oci::OciError;
use stella_oci::store::{ContentRead, ReferrersRead};
use stella_types::media_types::AttestationFormat;
use stella_types::{Digest, Manifest};
use stella_verify::Report as EvidenceReport;
use stella_verify::report::{EvidenceResult, EvidenceStatus};

use time::OffsetDateTime;

use crate::cache::{Parsed, ParsedReports};
use crate::findings::{FindingsError, Limits, ScannerReport, parse_value};

/// A VEX document found among the referrers, for the VEX provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VexDocument {
    /// The evidence digest (referrer manifest) the document came from.
    pub digest: Digest,
    /// The document (for an attestation: the in-toto statement JSON).
    pub bytes: Vec<u8>,
    /// Policy signers the engine verified for it (empty: unsigned or failed).
    pub signers: Vec<String>,
}

/// A scanner report and how far it is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedReport {
    /// Shared with the [`ParsedReports`] cache when there is one.
    pub report: Arc<ScannerReport>,
    /// Signer names, or `unsigned` / `unverified`.
    pub trust: String,
}

/// Everything collected for one image.
#[derive(Debug, Clone)]
pub struct Collected {
    pub evidence: EvidenceReport,
    pub scanners: Vec<TrustedReport>,
    pub vex_documents: Vec<VexDocument>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatherError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] OciError),
    #[error("scanner report {digest}: {source}")]
    Findings {
        digest: Digest,
        #[source]
        source: FindingsError,
    },
    #[error("scanner report {digest} is about {about}, not this image ({image})")]
    OtherImage {
        digest: Digest,
        about: String,
        image: Digest,
    },
    #[error("evidence {digest}: {detail}")]
    Unreadable { digest: Digest, detail: String },
}

const VULNS_PREFIX: &str = "https://in-toto.io/attestation/vulns";
const OPENVEX_TYPE: &str = "application/vnd.openvex+json";
const OPENVEX_PREDICATE: &str = "https://openvex.dev/ns";

/// What a piece of evidence is, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Vulns,
    PlainJson,
    Vex,
    Other,
}

fn kind(e: &EvidenceResult) -> Kind {
    let pt = e.predicate_type.as_deref().unwrap_or("");
    let at = e.artifact_type.as_str();
    if pt.starts_with(VULNS_PREFIX) {
        Kind::Vulns
    } else if at == OPENVEX_TYPE || pt.starts_with(OPENVEX_PREDICATE) {
        Kind::Vex
    } else if e.predicate_type.is_none()
        && (at == "application/json" || at.ends_with("+json"))
        && !at.starts_with("application/spdx")
        && !AttestationFormat::of_media_type(at).is_attestation()
    {
        Kind::PlainJson
    } else {
        Kind::Other
    }
}

fn trust_of(e: &EvidenceResult) -> String {
    match e.status {
        EvidenceStatus::Verified => e.signers.join(","),
        EvidenceStatus::Unsigned => "unsigned".into(),
        EvidenceStatus::Failed | EvidenceStatus::Rejected => "unverified".into(),
    }
}

/// Runs the engine, then reads the scanner reports and VEX documents.
pub async fn collect<S: ContentRead + ReferrersRead>(
    store: &S,
    request: &VerifyImageRequest,
    trust: &Trust,
    now: OffsetDateTime,
    limits: &Limits,
) -> Result<Collected, GatherError> {
    collect_cached(store, request, trust, now, limits, None).await
}

/// [`collect`], taking parsed scanner reports from `cache` when it has
/// them (by referrer manifest digest) and adding what it parses. Errors
/// are not cached; the subject check runs on every use.
pub async fn collect_cached<S: ContentRead + ReferrersRead>(
    store: &S,
    request: &VerifyImageRequest,
    trust: &Trust,
    now: OffsetDateTime,
    limits: &Limits,
    cache: Option<&dyn ParsedReports>,
) -> Result<Collected, GatherError> {
    let evidence = verify_image(store, request, trust, now).await?;
    let image = request.subject.digest.clone();
    let mut scanners = Vec::new();
    let mut vex_documents = Vec::new();
    for e in &evidence.evidence {
        let k = kind(e);
        if k == Kind::Other {
            continue;
        }
        if e.status == EvidenceStatus::Rejected {
            // Evidence about another image: a scanner report among it is an
            // error (dropping it would silently lose findings).
            let is_scanner = match k {
                Kind::Vulns => true,
                Kind::PlainJson => {
                    let bytes = read_content(store, e).await?;
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .ok()
                        .and_then(|v| crate::findings::detect(&v))
                        .is_some()
                }
                _ => false,
            };
            if is_scanner {
                return Err(GatherError::OtherImage {
                    digest: e.digest.clone(),
                    about: e.reason.clone(),
                    image,
                });
            }
            continue;
        }
        if k == Kind::Vex {
            vex_documents.push(VexDocument {
                digest: e.digest.clone(),
                bytes: read_content(store, e).await?,
                signers: if e.status == EvidenceStatus::Verified {
                    e.signers.clone()
                } else {
                    Vec::new()
                },
            });
            continue;
        }
        let reading = if k == Kind::Vulns { "vulns" } else { "json" };
        let parsed = match cache.and_then(|c| c.get(&e.digest, reading)) {
            Some(hit) => hit,
            None => {
                let bytes = read_content(store, e).await?;
                let parsed = match read_scanner(&bytes, e, k, limits)? {
                    Some(report) => Parsed::Report(Arc::new(report)),
                    None => Parsed::NotAReport,
                };
                if let Some(c) = cache {
                    c.put(&e.digest, reading, parsed.clone());
                }
                parsed
            }
        };
        if let Parsed::Report(report) = parsed {
            check_subject(&report, &image)?;
            scanners.push(TrustedReport {
                report,
                trust: trust_of(e),
            });
        }
    }
    Ok(Collected {
        evidence,
        scanners,
        vex_documents,
    })
}

fn read_scanner(
    bytes: &[u8],
    e: &EvidenceResult,
    k: Kind,
    limits: &Limits,
) -> Result<Option<ScannerReport>, GatherError> {
    let findings_err = |source| GatherError::Findings {
        digest: e.digest.clone(),
        source,
    };
    if bytes.len() as u64 > limits.max_bytes {
        return Err(findings_err(FindingsError::TooLarge {
            size: bytes.len() as u64,
            cap: limits.max_bytes,
        }));
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) if k == Kind::PlainJson => return Ok(None),
        Err(err) => return Err(findings_err(FindingsError::NotJson(err.to_string()))),
    };
    match parse_value(&value, e.digest.clone(), limits) {
        Ok(report) => Ok(Some(report)),
        Err(FindingsError::UnknownFormat) if k == Kind::PlainJson => Ok(None),
        Err(err) => Err(findings_err(err)),
    }
}

/// A report naming image digests must name this one.
pub fn check_subject(report: &ScannerReport, image: &Digest) -> Result<(), GatherError> {
    if report.subjects.is_empty() || report.subjects.contains(image) {
        return Ok(());
    }
    Err(GatherError::OtherImage {
        digest: report.digest.clone(),
        about: report
            .subjects
            .iter()
            .map(Digest::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        image: image.clone(),
    })
}

/// The document a referrer carries: the statement inside its attestation
/// layer, else its first JSON layer.
async fn read_content<S: ContentRead>(
    store: &S,
    e: &EvidenceResult,
) -> Result<Vec<u8>, GatherError> {
    let unreadable = |detail: String| GatherError::Unreadable {
        digest: e.digest.clone(),
        detail,
    };
    let fetched = store.fetch_manifest(&e.digest).await?;
    let manifest = match Manifest::parse(&fetched.bytes, None) {
        Ok(Manifest::Image(m)) => m,
        Ok(Manifest::Index(_)) => return Err(unreadable("is an index, not an artifact".into())),
        Err(err) => return Err(unreadable(err.to_string())),
    };
    if let Some(layer) = attestation_layers(&manifest, &e.artifact_type).first() {
        let bytes = read_layer(store, layer).await?;
        return statement_of(&bytes, layer.declared).map_err(unreadable);
    }
    let layer = manifest
        .layers
        .iter()
        .find(|l| l.media_type == "application/json" || l.media_type.ends_with("+json"))
        .or_else(|| manifest.layers.first())
        .ok_or_else(|| unreadable("has no layers".into()))?;
    Ok(store
        .fetch_blob_bytes(layer, stella_types::limits::MAX_JSON_DOCUMENT_BYTES)
        .await?)
}

/// The in-toto statement inside a bundle or envelope (a bare statement as is).
fn statement_of(bytes: &[u8], declared: AttestationFormat) -> Result<Vec<u8>, String> {
    let format = if declared.is_attestation() {
        declared
    } else {
        AttestationFormat::of_content(bytes)
    };
    match format {
        AttestationFormat::SigstoreBundle { .. } => Bundle::parse(bytes)
            .map(|b| b.envelope.payload)
            .map_err(|e| e.to_string()),
        AttestationFormat::DsseEnvelope => Envelope::parse(bytes)
            .map(|e| e.payload)
            .map_err(|e| e.to_string()),
        _ => Ok(bytes.to_vec()),
    }
}
