//! Each scanner format read from a fixture built from its documented schema,
//! and the bad-input contract: errors with JSON paths, caps, never a
//! silently shorter list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{fixture, image};
use stella_report::findings::{FindingsError, Limits, ReportFormat, parse_report};
use stella_report::gather::{GatherError, check_subject};
use stella_types::Digest;
use stella_verify::policy::FindingSeverity as S;

fn read(name: &str) -> stella_report::findings::ScannerReport {
    parse_report(&fixture(name, &image()), &Limits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn trivy_json_is_normalised() {
    let r = read("trivy.json");
    assert_eq!(r.format, ReportFormat::Trivy);
    assert_eq!(r.subjects, vec![image()]);
    assert_eq!(
        r.digest,
        Digest::sha256_of(&fixture("trivy.json", &image()))
    );
    let got: Vec<(&str, &str, S, Option<&str>)> = r
        .findings
        .iter()
        .map(|f| {
            (
                f.purl.as_str(),
                f.vulnerability.as_str(),
                f.severity,
                f.fixed_version.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.5",
                "CVE-2024-0001",
                S::Critical,
                Some("3.0.13-1~deb12u1")
            ),
            (
                "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12.5",
                "CVE-2023-45853",
                S::Low,
                None
            ),
            (
                "pkg:npm/minimist@1.2.5",
                "CVE-2021-44906",
                S::Medium,
                Some("1.2.6")
            ),
        ]
    );
    assert_eq!(r.findings[0].aliases, vec!["DSA-5600-1"]);
    assert_eq!(
        r.findings[0].published.map(|t| t.unix_timestamp()),
        Some(1_704_844_800)
    );
    assert!(r.findings.iter().all(|f| f.source == r.digest));
}

#[test]
fn grype_json_is_normalised() {
    let r = read("grype.json");
    assert_eq!(r.format, ReportFormat::Grype);
    assert_eq!(r.subjects, vec![image()]);
    assert_eq!(r.findings.len(), 2);
    let lodash = &r.findings[0];
    assert_eq!(lodash.purl, "pkg:npm/lodash@4.17.20");
    assert_eq!(lodash.vulnerability, "CVE-2021-23337");
    assert_eq!(lodash.aliases, vec!["GHSA-35jh-r3h4-6jhm"]);
    assert_eq!(lodash.severity, S::High);
    assert_eq!(lodash.fixed_version.as_deref(), Some("4.17.21"));
    // Negligible counts as Low; a not-fixed state has no fixed version.
    assert_eq!(r.findings[1].severity, S::Low);
    assert_eq!(r.findings[1].fixed_version, None);
}

#[test]
fn cyclonedx_vdr_is_normalised() {
    let r = read("cyclonedx-vdr.json");
    assert_eq!(r.format, ReportFormat::Cyclonedx);
    assert_eq!(r.subjects, vec![image()]);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(f.purl, "pkg:golang/golang.org/x/net@0.1.0");
    assert_eq!(f.vulnerability, "CVE-2023-44487");
    assert_eq!(f.aliases, vec!["GHSA-qppj-fm5r-hxr3"]);
    // The most severe rating counts (high over medium).
    assert_eq!(f.severity, S::High);
    assert_eq!(f.fixed_version.as_deref(), Some("0.17.0"));
}

#[test]
fn sarif_from_a_container_scanner_is_normalised() {
    let r = read("sarif.json");
    assert_eq!(r.format, ReportFormat::Sarif);
    assert!(r.subjects.is_empty());
    let f = &r.findings[0];
    assert_eq!(f.purl, "pkg:pypi/jinja2@2.10");
    assert_eq!(f.vulnerability, "CVE-2020-28493");
    assert_eq!(f.severity, S::Medium);
    assert_eq!(f.fixed_version.as_deref(), Some("2.11.3"));
}

#[test]
fn intoto_vulns_statement_is_normalised() {
    let r = read("vulns-statement.json");
    assert_eq!(r.format, ReportFormat::IntotoVulns);
    assert_eq!(r.subjects, vec![image()]);
    let f = &r.findings[0];
    assert_eq!(
        f.purl,
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
    );
    assert_eq!(f.vulnerability, "CVE-2021-44228");
    assert_eq!(f.severity, S::Critical);
    assert_eq!(f.fixed_version.as_deref(), Some("2.15.0"));
}

fn err(doc: &str) -> FindingsError {
    parse_report(doc.as_bytes(), &Limits::default()).expect_err("must fail")
}

#[test]
fn findings_without_purls_are_errors_with_paths() {
    let e = err(
        r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"x","Severity":"LOW"}]}]}"#,
    );
    assert_eq!(
        e,
        FindingsError::NoPurl {
            format: "trivy",
            path: "$.Results[0].Vulnerabilities[0]".into(),
            vulnerability: "CVE-1".into()
        }
    );
    let e = err(
        r#"{"matches":[{"vulnerability":{"id":"CVE-2","severity":"High"},"artifact":{"name":"x"}}]}"#,
    );
    assert!(
        matches!(e, FindingsError::NoPurl { ref path, .. } if path == "$.matches[0]"),
        "{e}"
    );
    let e = err(r#"{"version":"2.1.0","runs":[{"results":[{"ruleId":"CVE-2020-1"}]}]}"#);
    assert!(matches!(e, FindingsError::NoPurl { .. }), "{e}");
    let e = err(r#"{"scanner":{"result":[{"id":"CVE-3","severity":[]}]}}"#);
    assert!(
        matches!(e, FindingsError::NoPurl { ref path, .. } if path == "$.scanner.result[0]"),
        "{e}"
    );
    let e = err(
        r#"{"bomFormat":"CycloneDX","vulnerabilities":[{"id":"CVE-4","affects":[{"ref":"missing"}]}]}"#,
    );
    assert!(
        matches!(e, FindingsError::NoPurl { ref path, .. } if path == "$.vulnerabilities[0].affects[0]"),
        "{e}"
    );
    assert!(e.to_string().contains("CVE-4 has no package URL"), "{e}");
}

#[test]
fn unknown_severities_are_errors() {
    let e = err(
        r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgIdentifier":{"PURL":"pkg:npm/a@1"},"Severity":"SEVERE"}]}]}"#,
    );
    assert_eq!(
        e,
        FindingsError::UnknownSeverity {
            format: "trivy",
            path: "$.Results[0].Vulnerabilities[0]".into(),
            value: "SEVERE".into()
        }
    );
    let e = err(
        r#"{"version":"2.1.0","runs":[{"results":[{"ruleId":"CVE-1","properties":{"purl":"pkg:npm/a@1","security-severity":"11.5"}}]}]}"#,
    );
    assert!(matches!(e, FindingsError::UnknownSeverity { .. }), "{e}");
    // Absent severity is a known level: Unknown.
    let ok = parse_report(
        br#"{"matches":[{"vulnerability":{"id":"CVE-2"},"artifact":{"purl":"pkg:npm/a@1"}}]}"#,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(ok.findings[0].severity, S::Unknown);
}

#[test]
fn caps_and_malformed_documents() {
    let doc = fixture("trivy.json", &image());
    let small = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    assert!(matches!(
        parse_report(&doc, &small),
        Err(FindingsError::TooLarge { cap: 100, .. })
    ));
    let few = Limits {
        max_findings: 2,
        ..Limits::default()
    };
    assert_eq!(
        parse_report(&doc, &few),
        Err(FindingsError::TooManyFindings {
            format: "trivy",
            cap: 2
        })
    );
    assert!(matches!(err("{not json"), FindingsError::NotJson(_)));
    assert_eq!(err(r#"{"hello":"world"}"#), FindingsError::UnknownFormat);
    let e = err(r#"{"SchemaVersion":2,"Results":{"a":1}}"#);
    assert!(
        matches!(e, FindingsError::Malformed { ref path, .. } if path == "$.Results"),
        "{e}"
    );
    let e = err(
        r#"{"matches":[{"vulnerability":{"severity":"High"},"artifact":{"purl":"pkg:npm/a@1"}}]}"#,
    );
    assert!(e.to_string().contains("no vulnerability id"), "{e}");
}

#[test]
fn a_report_about_another_image_is_refused() {
    let other = Digest::sha256_of(b"another image");
    for name in [
        "trivy.json",
        "grype.json",
        "cyclonedx-vdr.json",
        "vulns-statement.json",
    ] {
        let r = parse_report(&fixture(name, &other), &Limits::default()).unwrap();
        match check_subject(&r, &image()) {
            Err(GatherError::OtherImage { about, .. }) => {
                assert!(about.contains(other.hex()), "{name}: {about}")
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(check_subject(&r, &other).is_ok());
    }
}
