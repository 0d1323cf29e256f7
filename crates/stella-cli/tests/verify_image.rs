//! `stella verify image` end to end, run as the built binary: on a real
//! registry (Debian `docker-registry` via `stella_testkit::distribution`, no
//! Referrers API, so the tag-schema fallback index) and on a local OCI
//! layout. Evidence is made with the stella CLI itself (push-referrer,
//! attest); images are built with python (and copied with skopeo).
//!
//! Covered: pass with SBOM + provenance + VEX; missing provenance; a
//! provenance signed by a policy signer that the requirement does not allow;
//! a failed signature never satisfying a requirement; evidence about another
//! digest rejected; the same report (byte-identical) from a StellaBundle;
//! replay determinism; --attach-verdict then --require verdict; a policy
//! with an unknown key; an unreachable registry; request statistics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stella_testkit::cli::{Run, Stella};
use stella_testkit::distribution::DistributionRegistry;
use stella_testkit::fixtures::{PythonLayer, python_layout, skopeo_push};

fn stella_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .current_dir(dir)
        .global_arg("--plain-http")
        .global_arg("--no-progress")
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("STELLA_REQUEST_STATS")
        .run_env(args, env)
}

fn stella(dir: &Path, args: &[&str]) -> Run {
    stella_env(dir, args, &[])
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let r = stella(dir, args);
    assert_eq!(r.code, 0, "stella {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

/// `stella attest` prints `... -> referrer sha256:…`; returns that digest.
fn attest(dir: &Path, image: &str, ty: &str, predicate: &str, key: &str) -> String {
    let out = ok(
        dir,
        &[
            "attest",
            "--image",
            image,
            "--type",
            ty,
            "--predicate",
            predicate,
            "--key",
            key,
        ],
    );
    let d = out.split_whitespace().last().unwrap().to_string();
    assert!(d.starts_with("sha256:"), "{out}");
    d
}

/// A tiny OCI image (tag v1) in a layout, made by python; `seed` makes images differ.
fn make_layout(dir: &Path, seed: &str) {
    python_layout(dir, PythonLayer::Seed(seed));
}

const SBOM: &str = "application/spdx+json";
const SLSA: &str = "https://slsa.dev/provenance/v1";
const BUNDLE_MT: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Keys `ci` and `other`, predicates, and a policy requiring an SBOM
/// (unsigned accepted), provenance signed by `ci`, and VEX signed by `ci`.
fn setup_files(w: &Path) {
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    std::fs::write(w.join("sbom.spdx.json"), br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    std::fs::write(
        w.join("vex.json"),
        br#"{"@context":"https://openvex.dev/ns/v0.2.0"}"#,
    )
    .unwrap();
    std::fs::write(
        w.join("prov.json"),
        br#"{"buildDefinition":{"buildType":"x"}}"#,
    )
    .unwrap();
    for k in ["ci", "other"] {
        ok(
            w,
            &[
                "key",
                "generate",
                "--output-key",
                &format!("{k}.pem"),
                "--output-pub",
                &format!("{k}.pub"),
            ],
        );
    }
    std::fs::write(
        w.join("policy.yaml"),
        "version: 1\n\
         signers:\n  ci:\n    keys: [ci.pub]\n  other:\n    keys: [other.pub]\n\
         requirements:\n\
         \x20 - name: sbom\n    type: application/spdx+json\n    unsigned: ignore\n\
         \x20 - name: provenance\n    type: slsaprovenance\n    signers: [ci]\n\
         \x20 - name: vex\n    type: openvex\n    signers: [ci]\n",
    )
    .unwrap();
}

/// Pushes SBOM, provenance and VEX (signed by ci); returns the provenance digest.
fn add_evidence(w: &Path, image: &str) -> String {
    ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            image,
            "--artifact-type",
            SBOM,
            "--file",
            "sbom.spdx.json",
        ],
    );
    let prov = attest(w, image, "slsaprovenance", "prov.json", "ci.pem");
    attest(w, image, "openvex", "vex.json", "ci.pem");
    prov
}

fn verify_json(w: &Path, source: &[&str], extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["verify", "image"];
    args.extend_from_slice(source);
    args.extend_from_slice(&["--policy", "policy.yaml", "--output", "json"]);
    args.extend_from_slice(extra);
    let r = stella(w, &args);
    assert!(
        r.code == 0 || r.code == 1,
        "verify image {args:?}: exit {} {}",
        r.code,
        r.stderr
    );
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", r.stdout);
    });
    (r.code, v, r.stdout)
}

fn requirement<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no requirement {name} in {report}"))
}

fn evidence<'a>(report: &'a Value, digest: &str) -> &'a Value {
    report["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["digest"] == digest)
        .unwrap_or_else(|| panic!("no evidence {digest} in {report}"))
}

#[test]
fn registry_end_to_end() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup_files(w);
    make_layout(&w.join("img-a"), "a");
    make_layout(&w.join("img-b"), "b");
    skopeo_push(&w.join("img-a"), &format!("{host}/app:v1"));
    skopeo_push(&w.join("img-b"), &format!("{host}/app:v2"));
    let app = format!("{host}/app:v1");
    let prov = add_evidence(w, &app);

    // 1. Everything there and signed by ci: pass.
    let r = stella_env(
        w,
        &[
            "verify",
            "image",
            &app,
            "--use-referrers",
            "--policy",
            "policy.yaml",
            "--output",
            "json",
        ],
        &[("STELLA_REQUEST_STATS", "1")],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["summary"]["evidence"], 3, "{report}");
    assert_eq!(report["summary"]["verified"], 2, "{report}");
    assert_eq!(evidence(&report, &prov)["status"], "verified");
    assert_eq!(evidence(&report, &prov)["predicateType"], SLSA);
    let pinned = report["image"]["reference"].as_str().unwrap().to_string();
    assert!(pinned.contains("@sha256:"), "{pinned}");
    // Request statistics: one line, a plausible count (tag, mode probe,
    // index, 3 manifests, 2 attestation blobs, referrers of referrers).
    let stats: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("stella: ") && l.ends_with(" HTTP requests"))
        .collect();
    assert_eq!(stats.len(), 1, "{}", r.stderr);
    let n: u64 = stats[0]
        .trim_start_matches("stella: ")
        .trim_end_matches(" HTTP requests")
        .parse()
        .unwrap();
    assert!((8..=60).contains(&n), "{n} requests");
    let l = stella_env(
        w,
        &["evidence", "list-referrers", &app],
        &[("STELLA_REQUEST_STATS", "1")],
    );
    assert_eq!(l.code, 0, "{}", l.stderr);
    assert!(l.stderr.contains(" HTTP requests"), "{}", l.stderr);
    // Without the variable, nothing is printed.
    let quiet = stella(
        w,
        &[
            "verify",
            "image",
            &app,
            "--use-referrers",
            "--policy",
            "policy.yaml",
        ],
    );
    assert_eq!(quiet.code, 0);
    assert!(!quiet.stderr.contains("HTTP requests"), "{}", quiet.stderr);
    assert!(quiet.stdout.starts_with("PASS "), "{}", quiet.stdout);

    // 2. Replay: same inputs, byte-identical JSON, twice; and the same
    // bytes from a StellaBundle of the image, offline.
    let (_, _, first) = verify_json(w, &[&pinned, "--use-referrers"], &[]);
    let (_, _, second) = verify_json(w, &[&pinned, "--use-referrers"], &[]);
    assert_eq!(first, second);
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &app,
            "--include-dsse",
            "--output",
            "pass.tar.gz",
        ],
    );
    let (code, _, offline) = verify_json(w, &[&pinned, "--bundle", "pass.tar.gz"], &[]);
    assert_eq!(code, 0);
    assert_eq!(offline, first, "bundle and registry reports differ");

    // 3. Provenance removed: fail, naming the missing type.
    ok(
        w,
        &["evidence", "delete-referrer", &format!("{host}/app@{prov}")],
    );
    let (code, report, _) = verify_json(w, &[&app, "--use-referrers"], &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["verdict"], "fail");
    let p = requirement(&report, "provenance");
    assert_eq!(p["status"], "missing", "{p}");
    assert!(p["reason"].as_str().unwrap().contains(SLSA), "{p}");
    let text = stella(
        w,
        &[
            "verify",
            "image",
            &app,
            "--use-referrers",
            "--policy",
            "policy.yaml",
        ],
    );
    assert_eq!(text.code, 1);
    assert!(text.stdout.starts_with("FAIL "), "{}", text.stdout);
    assert!(text.stdout.contains(SLSA), "{}", text.stdout);

    // 4. Provenance signed by `other`, a policy signer the requirement does
    // not allow: fail, "not by ci".
    let by_other = attest(w, &app, "slsaprovenance", "prov.json", "other.pem");
    let (code, report, _) = verify_json(w, &[&app, "--use-referrers"], &[]);
    assert_eq!(code, 1, "{report}");
    let p = requirement(&report, "provenance");
    assert_eq!(p["status"], "failed", "{p}");
    assert!(p["reason"].as_str().unwrap().contains("not by ci"), "{p}");
    assert_eq!(evidence(&report, &by_other)["signers"][0], "other");
    // Same verdict from a bundle.
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &app,
            "--include-dsse",
            "--output",
            "other.tar.gz",
        ],
    );
    let (code, offline, _) = verify_json(w, &["--bundle", "other.tar.gz"], &[]);
    assert_eq!(code, 1);
    assert_eq!(offline["requirements"], report["requirements"]);
    assert_eq!(offline["evidence"], report["evidence"]);

    // 5. Evidence about another digest: a provenance signed by ci for image
    // B, attached to image A. Rejected, never satisfies; exit 1.
    ok(
        w,
        &[
            "evidence",
            "delete-referrer",
            &format!("{host}/app@{by_other}"),
        ],
    );
    ok(
        w,
        &[
            "attest",
            "--image",
            &format!("{host}/app:v2"),
            "--type",
            "slsaprovenance",
            "--predicate",
            "prov.json",
            "--key",
            "ci.pem",
            "--no-push",
            "--output",
            "about-b.json",
        ],
    );
    let smuggled = ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            &app,
            "--artifact-type",
            BUNDLE_MT,
            "--file",
            "about-b.json",
        ],
    )
    .trim()
    .to_string();
    assert!(smuggled.starts_with("sha256:"), "{smuggled}");
    let (code, report, _) = verify_json(w, &[&app, "--use-referrers"], &[]);
    assert_eq!(code, 1, "{report}");
    let e = evidence(&report, &smuggled);
    assert_eq!(e["status"], "rejected", "{e}");
    assert_eq!(e["satisfies"], serde_json::json!([]), "{e}");
    let b_digest = ok(
        w,
        &[
            "evidence",
            "list-referrers",
            &format!("{host}/app:v2"),
            "--format",
            "json",
        ],
    );
    let b_digest: Value = serde_json::from_str(&b_digest).unwrap();
    let b_digest = b_digest["subject"].as_str().unwrap();
    assert!(e["reason"].as_str().unwrap().contains(b_digest), "{e}");
    assert_eq!(report["summary"]["rejected"], 1);
    assert_ne!(requirement(&report, "provenance")["status"], "satisfied");
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &app,
            "--include-dsse",
            "--output",
            "wrong.tar.gz",
        ],
    );
    let (code, offline, _) = verify_json(w, &["--bundle", "wrong.tar.gz"], &[]);
    assert_eq!(code, 1);
    assert_eq!(evidence(&offline, &smuggled)["status"], "rejected");

    // 5b. A referrer of image B copied into image A's fallback index (the
    // manifest's `subject` is B): rejected although it is a plain artifact.
    let sbom_b = ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            &format!("{host}/app:v2"),
            "--artifact-type",
            SBOM,
            "--file",
            "sbom.spdx.json",
            "--annotation",
            "copied=yes",
        ],
    )
    .trim()
    .to_string();
    let a_digest = report["image"]["digest"].as_str().unwrap();
    let script = r#"
import http.client, json, sys
reg, a, ref = sys.argv[1], sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection(reg)
IDX = "application/vnd.oci.image.index.v1+json"
MAN = "application/vnd.oci.image.manifest.v1+json"
c.request("GET", f"/v2/app/manifests/{ref}", headers={"Accept": MAN}); r = c.getresponse(); m = r.read()
assert r.status == 200, r.status
tag = a.replace(":", "-")
c.request("GET", f"/v2/app/manifests/{tag}", headers={"Accept": IDX}); r = c.getresponse(); idx = json.loads(r.read())
assert r.status == 200, r.status
idx["manifests"].append({"mediaType": MAN, "digest": ref, "size": len(m), "artifactType": json.loads(m)["artifactType"]})
body = json.dumps(idx).encode()
c.request("PUT", f"/v2/app/manifests/{tag}", body=body, headers={"Content-Type": IDX}); r = c.getresponse(); r.read()
assert r.status == 201, r.status
"#;
    let st = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([host.as_str(), a_digest, sbom_b.as_str()])
        .status()
        .unwrap();
    assert!(st.success());
    let (code, report, _) = verify_json(w, &[&app, "--use-referrers"], &[]);
    assert_eq!(code, 1, "{report}");
    let e = evidence(&report, &sbom_b);
    assert_eq!(e["status"], "rejected", "{e}");
    assert!(e["reason"].as_str().unwrap().contains(b_digest), "{e}");
    assert_eq!(e["satisfies"], serde_json::json!([]), "{e}");
    // The good SBOM still satisfies the requirement.
    assert_eq!(requirement(&report, "sbom")["status"], "satisfied");
    assert_eq!(report["summary"]["rejected"], 2, "{report}");

    // 6. Good provenance again, then --attach-verdict (private key among
    // --key: signs the verdict, is not trusted), then require the verdict.
    attest(w, &app, "slsaprovenance", "prov.json", "ci.pem");
    let r = stella(
        w,
        &[
            "verify",
            "image",
            &app,
            "--use-referrers",
            "--policy",
            "policy.yaml",
            "--attach-verdict",
            "--key",
            "ci.pem",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = stella(
        w,
        &[
            "verify",
            "image",
            &app,
            "--use-referrers",
            "--require",
            "verdict",
            "--key",
            "ci.pub",
            "--output",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let req = requirement(&v, "verdict");
    assert_eq!(req["status"], "satisfied", "{req}");
    assert_eq!(req["type"], "https://stella.dev/attestation/verdict/v1");
    // The verdict is not trusted under a key that did not sign it.
    let r = stella(
        w,
        &[
            "verify",
            "image",
            &app,
            "--use-referrers",
            "--require",
            "verdict",
            "--key",
            "other.pub",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);

    // 7. Unreachable registry (a closed port): exit 2, one error line.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = stella(
        w,
        &[
            "verify",
            "image",
            &format!("127.0.0.1:{closed}/app:v1"),
            "--use-referrers",
            "--policy",
            "policy.yaml",
        ],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.starts_with("stella: error: "), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn layout_failed_signature_never_satisfies() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup_files(w);
    make_layout(&w.join("img"), "layout");
    let img = "oci:img:v1";
    let prov = add_evidence(w, img);
    let (code, report, _) = verify_json(w, &[img, "--use-referrers"], &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(requirement(&report, "provenance")["evidence"][0], prov);

    // A signed SBOM: the SBOM artifact is plain, an attestation about ITS
    // digest (a referrer of the referrer) lends it the signer.
    std::fs::write(
        w.join("signed-sbom.yaml"),
        "version: 1\nsigners:\n  ci:\n    keys: [ci.pub]\n  other:\n    keys: [other.pub]\n\
         requirements:\n  - type: application/spdx+json\n    signers: [ci]\n",
    )
    .unwrap();
    let sbom = report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "sbom")
        .unwrap()["evidence"][0]
        .as_str()
        .unwrap()
        .to_string();
    let unsigned = stella(
        w,
        &[
            "verify",
            "image",
            img,
            "--use-referrers",
            "--policy",
            "signed-sbom.yaml",
        ],
    );
    assert_eq!(unsigned.code, 1, "{}{}", unsigned.stdout, unsigned.stderr);
    assert!(unsigned.stdout.contains("unsigned"), "{}", unsigned.stdout);
    let sbom_ref = format!("oci:img@{sbom}");
    attest(
        w,
        &sbom_ref,
        "https://example.com/sbom-review/v1",
        "prov.json",
        "other.pem",
    );
    let by_other = stella(
        w,
        &[
            "verify",
            "image",
            img,
            "--use-referrers",
            "--policy",
            "signed-sbom.yaml",
        ],
    );
    assert_eq!(by_other.code, 1, "{}{}", by_other.stdout, by_other.stderr);
    assert!(by_other.stdout.contains("not by ci"), "{}", by_other.stdout);
    attest(
        w,
        &sbom_ref,
        "https://example.com/sbom-review/v1",
        "prov.json",
        "ci.pem",
    );
    let signed = stella(
        w,
        &[
            "verify",
            "image",
            img,
            "--use-referrers",
            "--policy",
            "signed-sbom.yaml",
        ],
    );
    assert_eq!(signed.code, 0, "{}{}", signed.stdout, signed.stderr);
    // --depth 1 does not look at referrers of referrers.
    let shallow = stella(
        w,
        &[
            "verify",
            "image",
            img,
            "--use-referrers",
            "--policy",
            "signed-sbom.yaml",
            "--depth",
            "1",
        ],
    );
    assert_eq!(shallow.code, 1, "{}{}", shallow.stdout, shallow.stderr);

    // Replace the provenance with one signed by a key the policy does not
    // know at all: the signature fails; its claimed predicate type is shown
    // but it satisfies nothing.
    ok(
        w,
        &["evidence", "delete-referrer", &format!("oci:img@{prov}")],
    );
    ok(
        w,
        &[
            "key",
            "generate",
            "--output-key",
            "stranger.pem",
            "--output-pub",
            "stranger.pub",
        ],
    );
    let bad = attest(w, img, "slsaprovenance", "prov.json", "stranger.pem");
    let (code, report, _) = verify_json(w, &[img, "--use-referrers"], &[]);
    assert_eq!(code, 1, "{report}");
    let e = evidence(&report, &bad);
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["predicateType"], SLSA, "{e}");
    assert_eq!(e["satisfies"], serde_json::json!([]), "{e}");
    assert_eq!(e["signers"], serde_json::json!([]), "{e}");
    let p = requirement(&report, "provenance");
    assert_eq!(p["status"], "failed", "{p}");
    assert!(p["reason"].as_str().unwrap().contains(&bad), "{p}");
    assert_eq!(report["summary"]["failed"], 1);

    // Ad-hoc policy from flags: the stranger's public key makes it pass; a
    // private key given with --key is never trusted for verification.
    let r = stella(
        w,
        &[
            "verify",
            "image",
            img,
            "--use-referrers",
            "--require",
            "slsaprovenance",
            "--key",
            "stranger.pub",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = stella(
        w,
        &[
            "verify",
            "image",
            img,
            "--use-referrers",
            "--require",
            "slsaprovenance",
            "--key",
            "stranger.pem",
            "--key",
            "ci.pub",
        ],
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
}

/// Keys, policy files and an image with evidence in layout `img` (tag v1).
fn usage_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    setup_files(w);
    make_layout(&w.join("img"), "usage");
    add_evidence(w, "oci:img:v1");
    tmp
}

#[test]
fn bad_policy_and_usage_exit_2() {
    let tmp = usage_fixture();
    let w = tmp.path();
    std::fs::write(
        w.join("unknown.yaml"),
        "version: 1\nsigners:\n  ci:\n    keys: [ci.pub]\nrequirements:\n  - type: openvex\n    colour: red\n",
    )
    .unwrap();
    let r = stella(
        w,
        &[
            "verify",
            "image",
            "oci:img:v1",
            "--use-referrers",
            "--policy",
            "unknown.yaml",
        ],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("stella: error: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("$.requirements[0].colour"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn policy_type_nobody_can_produce_is_a_policy_error() {
    let tmp = usage_fixture();
    let w = tmp.path();
    // A type nobody can produce is a policy error, not a silent miss.
    std::fs::write(
        w.join("nobody.yaml"),
        "version: 1\nsigners:\n  ci:\n    keys: [ci.pub]\nrequirements:\n  - type: not-a-type\n",
    )
    .unwrap();
    let r = stella(
        w,
        &[
            "verify",
            "image",
            "oci:img:v1",
            "--use-referrers",
            "--policy",
            "nobody.yaml",
        ],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("$.requirements[0].type"), "{}", r.stderr);
}

#[test]
fn verify_image_with_nothing_to_check_is_a_usage_error() {
    let tmp = usage_fixture();
    let r = stella(
        tmp.path(),
        &["verify", "image", "oci:img:v1", "--use-referrers"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn verify_image_of_a_missing_bundle_file_is_an_input_error() {
    let tmp = usage_fixture();
    let r = stella(
        tmp.path(),
        &[
            "verify",
            "image",
            "--bundle",
            "missing.tar.gz",
            "--require",
            "openvex",
            "--key",
            "ci.pub",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}
