//! Benchmark for `bench/report.sh` (issue 16): an image with 5,000 findings
//! across 3 scanner reports (Trivy, Grype, CycloneDX) and 2,000 VEX
//! statements. Measures (a) reading and parsing the three reports only and
//! (b) the whole report: parse, merge, VEX lookup and consensus, rules,
//! assembly and canonical JSON. Prints the medians and the ratio b/a.
//!
//! Usage: `cargo run -p stella-report --example bench_report [RUNS]`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::json;
use stella_report::findings::{Limits, parse_report};
use stella_report::vex::{StatementList, VexStatement, VexStatus};
use stella_report::{Decision, TrustedReport, decide};
use stella_types::Digest;
use stella_verify::policy::Policy;
use time::OffsetDateTime;

const FINDINGS: usize = 5_000;
const VEX: usize = 2_000;

fn severity(i: usize) -> &'static str {
    ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"][i % 5]
}

fn purl(i: usize) -> String {
    format!("pkg:npm/package-{}@1.{}.0", i % 1_500, i % 7)
}

fn cve(i: usize) -> String {
    format!("CVE-2024-{:05}", i)
}

fn reports(image: &Digest) -> Vec<Vec<u8>> {
    let per = FINDINGS / 3;
    let trivy: Vec<_> = (0..per)
        .map(|i| {
            json!({"VulnerabilityID": cve(i), "PkgIdentifier": {"PURL": purl(i)},
                   "Severity": severity(i), "FixedVersion": "9.9.9", "PublishedDate": "2024-01-01T00:00:00Z"})
        })
        .collect();
    let grype: Vec<_> = (per..2 * per)
        .map(|i| {
            json!({"vulnerability": {"id": cve(i), "severity": "High", "fix": {"versions": ["9.9.9"], "state": "fixed"}},
                   "relatedVulnerabilities": [{"id": format!("GHSA-{i:04}-xxxx-yyyy")}],
                   "artifact": {"purl": purl(i)}})
        })
        .collect();
    let rest = FINDINGS - 2 * per;
    let components: Vec<_> = (0..rest)
        .map(|j| json!({"type": "library", "bom-ref": format!("c{j}"), "name": "x", "purl": purl(2 * per + j)}))
        .collect();
    let vulns: Vec<_> = (0..rest)
        .map(|j| {
            json!({"id": cve(2 * per + j), "ratings": [{"severity": "medium"}],
                   "affects": [{"ref": format!("c{j}")}]})
        })
        .collect();
    vec![
        serde_json::to_vec(
            &json!({"SchemaVersion": 2, "Metadata": {"RepoDigests": [format!("r@{image}")]},
                                   "Results": [{"Target": "t", "Vulnerabilities": trivy}]}),
        )
        .unwrap(),
        serde_json::to_vec(
            &json!({"matches": grype, "source": {"target": {"manifestDigest": image.to_string()}}}),
        )
        .unwrap(),
        serde_json::to_vec(
            &json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": components,
                                   "vulnerabilities": vulns}),
        )
        .unwrap(),
    ]
}

fn vex() -> StatementList {
    let statuses = [
        VexStatus::NotAffected,
        VexStatus::Affected,
        VexStatus::Fixed,
        VexStatus::UnderInvestigation,
    ];
    StatementList::new(
        (0..VEX)
            .map(|k| {
                let i = k * (FINDINGS / VEX);
                VexStatement {
                    digest: Digest::sha256_of(k.to_string().as_bytes()),
                    issuer: None,
                    signers: vec![if k % 3 == 0 { "distro" } else { "vendor" }.to_string()],
                    status: statuses[k % 4],
                    justification: None,
                    vulnerability: cve(i),
                    product: purl(i),
                }
            })
            .collect(),
    )
}

const POLICY: &str = r#"version: 1
signers:
  vendor: { keys: [v.pub] }
  distro: { keys: [d.pub] }
vex:
  signers: [vendor, distro]
rules:
  - name: Ignore Low dev
    severity: [Low, None]
    environments: [dev]
    action: ignore
  - name: Block critical
    severity: [Critical]
    action: block
  - name: Old highs
    severity: [High]
    olderThan: 30d
    action: warn
  - name: npm pattern
    packages: ["pkg:npm/package-1*"]
    action: warn
"#;

/// CPU time this thread has run so far (Linux `/proc/thread-self/schedstat`,
/// first field, nanoseconds): unlike wall time, not stretched while other
/// processes hold the CPU. `None` where the file is missing.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn timed<T>(wall: &mut Vec<Duration>, cpu: &mut Vec<Duration>, f: impl FnOnce() -> T) -> T {
    let (t, c) = (Instant::now(), thread_cpu());
    let out = f();
    wall.push(t.elapsed());
    if let (Some(c0), Some(c1)) = (c, thread_cpu()) {
        cpu.push(c1.saturating_sub(c0));
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let image = Digest::sha256_of(b"bench image");
    let docs = reports(&image);
    let (policy, d) = Policy::parse(POLICY.as_bytes(), &|_| None);
    let policy: Policy = policy.unwrap_or_else(|| panic!("{:?}", d.issues));
    let vex = vex();
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let limits = Limits::default();

    let parse_only = || {
        docs.iter()
            .map(|b| parse_report(b, &limits).unwrap())
            .map(|r| r.findings.len())
            .sum::<usize>()
    };
    let report = || {
        let scanners: Vec<TrustedReport> = docs
            .iter()
            .map(|b| TrustedReport {
                report: std::sync::Arc::new(parse_report(b, &limits).unwrap()),
                trust: "unsigned".into(),
            })
            .collect();
        let evidence = stella_verify::evaluate(&policy, "bench", &image, &[], now);
        let decision = Decision {
            policy: &policy,
            revision_id: "bench".into(),
            environment: Some("dev".into()),
            vex: &vex,
            generated_at: now,
            now,
        };
        decide(&image, evidence, scanners, &decision).unwrap()
    };
    let full = || report().canonical_bytes().len();
    assert_eq!(parse_only(), FINDINGS);
    // For profiling one side: `BENCH_ONLY=full|parse N` runs it N times.
    if let Ok(which) = std::env::var("BENCH_ONLY") {
        for _ in 0..runs {
            std::hint::black_box(if which == "parse" {
                parse_only()
            } else {
                full()
            });
        }
        return;
    }
    if std::env::var_os("BENCH_PHASES").is_some() {
        let scanners: Vec<TrustedReport> = docs
            .iter()
            .map(|b| TrustedReport {
                report: std::sync::Arc::new(parse_report(b, &limits).unwrap()),
                trust: "unsigned".into(),
            })
            .collect();
        let t = Instant::now();
        let merged = stella_report::judge::merge(
            scanners
                .iter()
                .flat_map(|s| s.report.findings.iter().cloned()),
        );
        println!("merge {:?}", t.elapsed());
        let trust = Default::default();
        let ctx = stella_report::judge::JudgeContext {
            policy: &policy,
            image: &image,
            environment: Some("dev"),
            vex: &vex,
            source_trust: &trust,
            now,
        };
        let t = Instant::now();
        let (v, _) = stella_report::judge::judge(&merged, &ctx);
        println!("judge {:?}", t.elapsed());
        let t = Instant::now();
        let j = stella_types::canonical_json::to_canonical_vec(&v).unwrap();
        println!("canonical verdicts {:?} {}", t.elapsed(), j.len());
        let t = Instant::now();
        let j = serde_json::to_vec(&v).unwrap();
        println!("serde verdicts {:?} {}", t.elapsed(), j.len());
    }
    let bytes = full();
    if std::env::var_os("BENCH_PHASES").is_some() {
        // The report's bytes, to check that a faster writer keeps them.
        let r = report();
        let digest = Digest::sha256_of(r.canonical_bytes());
        println!("report {digest} ({})", r.report_id);
    }
    let (mut a, mut b, mut ca, mut cb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        std::hint::black_box(timed(&mut a, &mut ca, parse_only));
        std::hint::black_box(timed(&mut b, &mut cb, full));
    }
    let (a, b) = (median(a), median(b));
    println!(
        "findings {FINDINGS} in 3 reports ({} bytes), VEX statements {}, report {bytes} bytes, runs {runs}",
        docs.iter().map(Vec::len).sum::<usize>(),
        vex.len()
    );
    println!("parse only: median {:.1} ms", a.as_secs_f64() * 1e3);
    println!("full report: median {:.1} ms", b.as_secs_f64() * 1e3);
    println!(
        "ratio full/parse: {:.2} (target <= 2)",
        b.as_secs_f64() / a.as_secs_f64()
    );
    if !ca.is_empty() && !cb.is_empty() {
        let (ca, cb) = (median(ca), median(cb));
        println!(
            "cpu time: parse only {:.1} ms, full report {:.1} ms, ratio {:.2}",
            ca.as_secs_f64() * 1e3,
            cb.as_secs_f64() * 1e3,
            cb.as_secs_f64() / ca.as_secs_f64()
        );
    }
}
