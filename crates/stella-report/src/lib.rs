//! Image reports: scanner findings, minus what trusted VEX says does not
//! apply, judged by the policy's rules, explained per finding and signed.
//!
//! - [`findings`]: reads Trivy JSON, Grype JSON, CycloneDX (VDR), SARIF
//!   2.1.0 and the in-toto vulns predicate into normalised findings.
//! - [`vex`]: the narrow VEX interface a report needs ([`vex::VexLookup`])
//!   and the trusted-signer consensus; the OpenVEX model is `stella-vex`'s.
//! - [`openvex`]: the adapter from `stella-vex` documents (with the signers
//!   the engine verified) to a [`vex::VexLookup`].
//! - [`judge`]: merges findings, applies VEX and the policy's `rules:`.
//! - [`report`]: the deterministic report (canonical JSON, `reportId`
//!   derived from its bytes).
//! - `verdict_json`: writes the report's verdicts and issues straight as
//!   canonical JSON (the bulk of its bytes).
//! - [`sign`]: the DSSE envelope (`application/vnd.stellaops.report+json`)
//!   and its verification.
//! - [`preview`]: lines two reports of one image up per finding (policy
//!   preview: the active revision against a candidate).
//! - [`gather`]: collects evidence, scanner reports and VEX documents of an
//!   image through `stella_engine::verify_image`.
//! - [`cache`]: a bounded, tenant-keyed cache of parsed scanner reports
//!   [`gather`] can use (the service does; the CLI does not).
//! - [`memo`]: a store wrapper that reads each manifest, blob and listing
//!   once per request (two reports of one image read the registry once).
//!
//! One crate rather than a separate findings crate: findings are only read
//! to be judged here, and one crate less keeps the build lean.
//!
//! What this crate does not do: read files, environment variables or the
//! wall clock (the caller passes `now` and the report time), print, or
//! parse VEX documents itself (`stella-vex` does).

#![forbid(unsafe_code)]

pub mod cache;
pub mod findings;
pub mod gather;
pub mod judge;
pub mod memo;
pub mod openvex;
pub mod preview;
pub mod report;
pub mod sign;
mod verdict_json;
pub mod vex;

use std::collections::BTreeMap;

use stella_types::Digest;
use stella_verify::Report as EvidenceReport;
use stella_verify::policy::Policy;
use time::OffsetDateTime;

pub use gather::{Collected, GatherError, TrustedReport, VexDocument, collect, collect_cached};
pub use report::{ImageReport, PolicyRef, ReportVerdict};
pub use sign::{REPORT_PAYLOAD_TYPE, SignError, sign_report, signed_output, verify_signed};

/// Most findings one report judges, over all scanner reports.
pub const MAX_TOTAL_FINDINGS: usize = 250_000;

/// What deciding a report needs besides the collected material.
pub struct Decision<'a> {
    pub policy: &'a Policy,
    pub revision_id: String,
    pub environment: Option<String>,
    pub vex: &'a dyn vex::VexLookup,
    /// Stamped as `generatedAt` (and the evidence section's `evaluatedAt`).
    pub generated_at: OffsetDateTime,
    /// The evaluation time (ages of findings).
    pub now: OffsetDateTime,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the scanner reports hold {count} findings, over the {cap} a report judges")]
pub struct TooManyFindings {
    pub count: usize,
    pub cap: usize,
}

/// Judges the collected scanner reports and assembles the report. The
/// findings of a report no one else holds (no cache) move into the
/// verdicts; a shared (cached) report's are copied.
pub fn decide(
    image: &Digest,
    evidence: EvidenceReport,
    scanners: Vec<TrustedReport>,
    d: &Decision<'_>,
) -> Result<ImageReport, TooManyFindings> {
    let count: usize = scanners.iter().map(|s| s.report.findings.len()).sum();
    if count > MAX_TOTAL_FINDINGS {
        return Err(TooManyFindings {
            count,
            cap: MAX_TOTAL_FINDINGS,
        });
    }
    let trust: BTreeMap<Digest, String> = scanners
        .iter()
        .map(|s| (s.report.digest.clone(), s.trust.clone()))
        .collect();
    let scanner_refs: Vec<report::ScannerRef> = scanners
        .iter()
        .map(|s| report::ScannerRef {
            digest: s.report.digest.clone(),
            format: s.report.format,
            findings: s.report.findings.len(),
            trust: s.trust.clone(),
        })
        .collect();
    let merged = judge::merge(scanners.into_iter().flat_map(|s| {
        std::sync::Arc::try_unwrap(s.report)
            .map(|r| r.findings)
            .unwrap_or_else(|shared| shared.findings.clone())
    }));
    let ctx = judge::JudgeContext {
        policy: d.policy,
        image,
        environment: d.environment.as_deref(),
        vex: d.vex,
        source_trust: &trust,
        now: d.now,
    };
    let (verdicts, issues) = judge::judge_owned(merged, &ctx);
    Ok(ImageReport::assemble(report::ReportParts {
        image_digest: image.clone(),
        generated_at: stella_types::timestamp::rfc3339(d.generated_at),
        policy: PolicyRef {
            revision_id: d.revision_id.clone(),
            digest: d.policy.digest.clone(),
        },
        environment: d.environment.clone(),
        verdicts,
        issues,
        scanners: scanner_refs,
        evidence,
    }))
}
