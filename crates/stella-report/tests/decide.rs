//! The whole decision over the five fixture reports: merged findings, VEX
//! from trusted and untrusted signers (agreeing, conflicting, under
//! investigation), block / warn / ignore rules, the summary, determinism,
//! and the DSSE envelope checked by PyPI securesystemslib and cryptography.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{FIXTURES, fixture, image};
use serde_json::Value;
use stella_crypto::{KeyKind, PrivateKey};
use stella_report::findings::{Limits, parse_report};
use stella_report::judge::FindingStatus as St;
use stella_report::vex::{StatementList, VexStatement, VexStatus};
use stella_report::{Decision, ImageReport, ReportVerdict, TrustedReport, decide};
use stella_types::Digest;
use stella_verify::policy::Policy;
use time::OffsetDateTime;

pub const POLICY: &str = r#"version: 1
signers:
  vendor: { keys: [vendor.pub] }
  distro: { keys: [distro.pub] }
  stranger: { keys: [stranger.pub] }
vex:
  signers: [vendor, distro]
rules:
  - name: Ignore Low dev
    severity: [Low, None]
    environments: [dev, staging]
    action: ignore
  - name: Investigating is a warning
    vexStatus: [under_investigation]
    vexSigners: [vendor]
    action: warn
    justification: vendor is investigating
  - name: Block critical
    severity: [Critical]
    action: block
  - name: Block high
    severity: [High]
    action: block
  - name: Warn medium
    severity: [Medium]
    action: warn
"#;

fn policy() -> Policy {
    let (p, d) = Policy::parse(POLICY.as_bytes(), &|_| None);
    p.unwrap_or_else(|| panic!("{:?}", d.issues))
}

fn stmt(n: u8, signer: &str, status: VexStatus, vuln: &str, product: &str) -> VexStatement {
    VexStatement {
        digest: Digest::sha256_of(&[n]),
        issuer: Some(format!("{signer} security team")),
        signers: vec![signer.to_string()],
        status,
        justification: (status == VexStatus::NotAffected)
            .then(|| "vulnerable_code_not_in_execute_path".to_string()),
        vulnerability: vuln.into(),
        product: product.into(),
    }
}

/// The VEX of the scenario: lodash quieted by the vendor (by alias), x/net
/// in conflict (vendor not_affected, distro affected), log4j under
/// investigation, minimist "not_affected" from an untrusted signer only.
pub fn vex() -> StatementList {
    StatementList::new(vec![
        stmt(
            1,
            "vendor",
            VexStatus::NotAffected,
            "GHSA-35jh-r3h4-6jhm",
            "pkg:npm/lodash@4.17.20",
        ),
        stmt(
            2,
            "vendor",
            VexStatus::NotAffected,
            "CVE-2023-44487",
            &image().to_string(),
        ),
        stmt(
            3,
            "distro",
            VexStatus::Affected,
            "CVE-2023-44487",
            "pkg:golang/golang.org/x/net@0.1.0",
        ),
        stmt(
            4,
            "vendor",
            VexStatus::UnderInvestigation,
            "CVE-2021-44228",
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        ),
        stmt(
            5,
            "stranger",
            VexStatus::NotAffected,
            "CVE-2021-44906",
            "pkg:npm/minimist@1.2.5",
        ),
    ])
}

fn scanners() -> Vec<TrustedReport> {
    FIXTURES
        .iter()
        .map(|name| TrustedReport {
            report: std::sync::Arc::new(
                parse_report(&fixture(name, &image()), &Limits::default()).unwrap(),
            ),
            trust: if *name == "vulns-statement.json" {
                "vendor".into()
            } else {
                "unsigned".into()
            },
        })
        .collect()
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn run(env: Option<&str>) -> ImageReport {
    let policy = policy();
    let evidence = stella_verify::evaluate(
        &policy,
        "registry.example/app",
        &image(),
        &[],
        at(1_800_000_000),
    );
    let vex = vex();
    let d = Decision {
        policy: &policy,
        revision_id: "local".into(),
        environment: env.map(str::to_string),
        vex: &vex,
        generated_at: at(1_790_000_000),
        now: at(1_800_000_000),
    };
    decide(&image(), evidence, scanners(), &d).unwrap()
}

#[test]
fn every_verdict_quietedby_and_count() {
    let r = run(Some("dev"));
    let by: std::collections::BTreeMap<&str, _> = r
        .verdicts
        .iter()
        .map(|v| (v.finding_id.as_str(), v))
        .collect();
    let get = |id: &str| {
        *by.get(id)
            .unwrap_or_else(|| panic!("{id} missing from {:?}", by.keys()))
    };
    let openssl =
        "CVE-2024-0001:pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.5";
    let zlib = "CVE-2023-45853:pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12.5";
    let cases = [
        // Trivy says Critical, Grype Negligible: merged, the most severe counts.
        (openssl, St::Blocked, Some("Block critical")),
        (zlib, St::Ignored, Some("Ignore Low dev")),
        (
            "CVE-2021-44906:pkg:npm/minimist@1.2.5",
            St::Warned,
            Some("Warn medium"),
        ),
        ("CVE-2021-23337:pkg:npm/lodash@4.17.20", St::Quieted, None),
        (
            "CVE-2023-44487:pkg:golang/golang.org/x/net@0.1.0",
            St::Blocked,
            Some("Block high"),
        ),
        (
            "CVE-2020-28493:pkg:pypi/jinja2@2.10",
            St::Warned,
            Some("Warn medium"),
        ),
        (
            "CVE-2021-44228:pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            St::Warned,
            Some("Investigating is a warning"),
        ),
    ];
    assert_eq!(r.verdicts.len(), cases.len());
    for (id, status, rule) in cases {
        let v = get(id);
        assert_eq!((v.status, v.rule_name.as_deref()), (status, rule), "{id}");
    }
    let o = get(openssl);
    assert_eq!(o.inputs.sources.len(), 2, "stated by Trivy and Grype");
    assert_eq!(o.source_trust, "unsigned");
    assert_eq!(
        o.inputs.age_days,
        Some((1_800_000_000 - 1_704_844_800) / 86_400)
    );

    let lodash = get("CVE-2021-23337:pkg:npm/lodash@4.17.20");
    assert!(lodash.quiet);
    assert_eq!(lodash.quieted_by.len(), 1);
    assert_eq!(lodash.quieted_by[0].digest, Digest::sha256_of(&[1]));
    assert_eq!(lodash.quieted_by[0].signers, vec!["vendor"]);
    assert_eq!(lodash.source_trust, "vendor");

    // The conflict is kept and shows both sides.
    let xnet = get("CVE-2023-44487:pkg:golang/golang.org/x/net@0.1.0");
    assert!(!xnet.quiet && xnet.quieted_by.is_empty());
    let vex = xnet.inputs.vex.as_ref().unwrap();
    assert_eq!(vex.status, "conflict");
    assert_eq!(vex.quieting[0].signers, vec!["vendor"]);
    assert_eq!(vex.keeping[0].signers, vec!["distro"]);
    assert!(
        xnet.notes
            .as_deref()
            .unwrap()
            .contains("vendor says not_affected")
    );
    assert!(
        xnet.notes
            .as_deref()
            .unwrap()
            .contains("distro says affected")
    );

    // The untrusted signer's not_affected does not quiet minimist.
    let minimist = get("CVE-2021-44906:pkg:npm/minimist@1.2.5");
    assert!(!minimist.quiet && minimist.inputs.vex.is_none());

    let codes: Vec<(&str, Option<&str>)> = r
        .issues
        .iter()
        .map(|i| (i.code.as_str(), i.finding_id.as_deref()))
        .collect();
    assert!(codes.contains(&(
        "vex.conflict",
        Some("CVE-2023-44487:pkg:golang/golang.org/x/net@0.1.0")
    )));
    assert!(codes.contains(&(
        "vex.untrusted",
        Some("CVE-2021-44906:pkg:npm/minimist@1.2.5")
    )));
    assert!(codes.contains(&(
        "vex.under_investigation",
        Some("CVE-2021-44228:pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1")
    )));

    let s = r.summary;
    assert_eq!(
        (s.total, s.blocked, s.warned, s.ignored, s.quieted),
        (7, 2, 3, 1, 1)
    );
    assert_eq!(r.verdict, ReportVerdict::Blocked);
    assert_eq!(r.scanners.len(), 5);
}

#[test]
fn environment_changes_only_environment_rules() {
    let prod = run(Some("prod"));
    let zlib = prod
        .verdicts
        .iter()
        .find(|v| v.finding_id.starts_with("CVE-2023-45853"))
        .unwrap();
    assert_eq!(zlib.status, St::Pass);
    assert_eq!(prod.summary.ignored, 0);
}

#[test]
fn same_inputs_same_bytes() {
    let report = run(Some("dev"));
    let a = report.to_canonical_json();
    let b = run(Some("dev")).to_canonical_json();
    assert_eq!(a, b);
    // The bytes kept at assembly are the report's canonical JSON.
    assert_eq!(
        a,
        stella_types::canonical_json::to_canonical_vec(&report).unwrap()
    );
    let v: Value = serde_json::from_slice(&a).unwrap();
    assert!(v["reportId"].as_str().unwrap().starts_with("report-"));
    assert_eq!(v["generatedAt"], "2026-09-21T14:13:20Z");
    assert_eq!(v["evidence"]["evaluatedAt"], v["generatedAt"]);
    // Null fields are omitted, not written as null.
    assert!(!String::from_utf8(a).unwrap().contains("null"));
}

/// The report's bytes are pinned (SHA-256 of the canonical JSON, for both
/// environments): internal changes made for speed (field order, lookups,
/// merging) must not change a byte. The pins were taken before those
/// changes.
#[test]
fn report_bytes_are_pinned() {
    let hex = |env| Digest::sha256_of(&run(env).to_canonical_json()).to_string();
    assert_eq!(hex(Some("dev")), PINNED_DEV);
    assert_eq!(hex(None), PINNED_NO_ENV);
}

/// The report is written in two canonical parts around a slot for its id;
/// the result must be what canonicalising the whole finished report gives,
/// and the id must be the hash of those bytes with the id left empty.
#[test]
fn report_written_in_parts_equals_the_whole_report_canonicalised() {
    for env in [Some("dev"), None] {
        let mut report = run(env);
        let whole = stella_types::canonical_json::to_canonical_vec(&report).unwrap();
        assert_eq!(report.canonical_bytes(), whole.as_slice());
        let id = std::mem::take(&mut report.report_id);
        let empty = stella_types::canonical_json::to_canonical_vec(&report).unwrap();
        assert_eq!(
            id,
            format!("report-{}", &Digest::sha256_of(&empty).hex()[..16])
        );
    }
}

const PINNED_DEV: &str = "sha256:28c5ce0fd60ad6ee2387b2581d7ee9afc810648bde9b87f8293ed1b81f8dd6cc";
const PINNED_NO_ENV: &str =
    "sha256:3d9c000f54763ac1b643b259229f6dd1116088bad460d31857073ad48594c90e";

const PY_VERIFY: &str = r#"
import copy, json, sys, base64
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
doc = json.load(open(sys.argv[1]))
pub = load_pem_public_key(open(sys.argv[2], "rb").read())
e = doc["dsse"]
assert e["payloadType"] == "application/vnd.stellaops.report+json", e["payloadType"]
key = SSlibKey.from_crypto(pub, keyid=e["signatures"][0]["keyid"])
Envelope.from_dict(copy.deepcopy(e)).verify([key], 1)
payload = base64.b64decode(e["payload"])
pae = b"DSSEv1 %d %s %d %s" % (len(e["payloadType"]), e["payloadType"].encode(), len(payload), payload)
sig = base64.b64decode(e["signatures"][0]["sig"])
if isinstance(pub, ec.EllipticCurvePublicKey):
    pub.verify(sig, pae, ec.ECDSA(hashes.SHA256()))
else:
    pub.verify(sig, pae)
# The payload is the canonical form of the report shown next to it.
canon = json.dumps(doc["report"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
assert canon == payload, "payload is not the canonical report"
print(json.loads(payload)["verdict"])
"#;

#[test]
fn envelope_verifies_in_python_and_tampering_fails_in_stella() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(Some("dev"));
    for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256] {
        let key = PrivateKey::generate(kind).unwrap();
        let env = stella_report::sign_report(&report, &key).unwrap();
        let out = stella_report::signed_output(&report, Some(&env)).unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, &out).unwrap();
        let pub_path = dir.path().join("key.pub");
        std::fs::write(&pub_path, key.public_key().to_pem()).unwrap();
        let py = Command::new("python3")
            .arg("-c")
            .arg(PY_VERIFY)
            .arg(&path)
            .arg(&pub_path)
            .output()
            .expect("python3 with securesystemslib and cryptography is required");
        assert!(
            py.status.success(),
            "{kind:?}: {}",
            String::from_utf8_lossy(&py.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "blocked");

        let keys = [key.public_key().clone()];
        let verified = stella_report::verify_signed(&out, &keys).unwrap();
        assert_eq!(verified["reportId"], report.report_id.as_str());
        // A changed verdict next to the envelope is caught.
        let tampered = String::from_utf8(out.clone()).unwrap().replacen(
            "\"verdict\":\"blocked\"",
            "\"verdict\":\"pass\"",
            1,
        );
        assert!(matches!(
            stella_report::verify_signed(tampered.as_bytes(), &keys),
            Err(stella_report::SignError::ReportMismatch)
        ));
        // Another key does not verify it.
        let other = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        assert!(matches!(
            stella_report::verify_signed(&out, &[other.public_key().clone()]),
            Err(stella_report::SignError::Signature(_))
        ));
    }
}
