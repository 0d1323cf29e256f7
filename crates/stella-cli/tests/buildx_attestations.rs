//! Docker buildx attestations (in-toto Statements kept as an attestation
//! manifest inside the image index) end to end, run as the built binary,
//! on an OCI layout and on a real registry (Debian `docker-registry`,
//! copied there with `skopeo copy --all`). The buildx-shaped image is
//! written by python (hashlib/json), never by Stella: an index with one
//! linux/amd64 manifest and one `unknown/unknown` attestation manifest
//! annotated `vnd.docker.reference.type: attestation-manifest` and
//! `vnd.docker.reference.digest: <platform digest>`, whose layers are an
//! SLSA provenance and an SPDX statement (`application/vnd.in-toto+json`,
//! `in-toto.io/predicate-type`).
//!
//! Covered: list-referrers JSON/table/tree mark them; a platform digest
//! with the index's tag finds them, a bare platform digest does not;
//! `verify image` with `unsigned: warn` reports them and passes; a signed
//! requirement is not satisfied by them; a statement about another digest
//! is rejected; a DSSE attestation (signed by a policy key) about the
//! attestation manifest makes them count as signed (`verify image`) and is
//! reported by `verify attestation`; a sigstore bundle layer inside the
//! attestation manifest is verified against the platform digest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stella_testkit::cli::{Run, Stella};
use stella_testkit::distribution::DistributionRegistry;

const PROVENANCE: &str = "https://slsa.dev/provenance/v0.2";
const SPDX: &str = "https://spdx.dev/Document";

/// Writes a buildx-shaped image (index tagged `v1`) into the layout `dir`
/// with python; with `other_subject` the statements name another digest.
/// Returns (index digest, platform manifest digest, attestation manifest digest).
fn buildx_layout(dir: &Path, other_subject: bool) -> (String, String, String) {
    buildx_layout_with(dir, other_subject, None)
}

/// [`buildx_layout`], with `signed_layer` (a sigstore bundle file) added as
/// a third layer of the attestation manifest.
fn buildx_layout_with(
    dir: &Path,
    other_subject: bool,
    signed_layer: Option<&Path>,
) -> (String, String, String) {
    const SCRIPT: &str = r#"
import hashlib, json, os, sys
root, other = sys.argv[1], sys.argv[2] == "1"
extra = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else None
os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", h), "wb") as f:
        f.write(data)
    return "sha256:" + h
def desc(mt, data, **extra):
    d = {"mediaType": mt, "digest": blob(data), "size": len(data)}
    d.update(extra)
    return d
def js(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":")).encode()
OM = "application/vnd.oci.image.manifest.v1+json"
OC = "application/vnd.oci.image.config.v1+json"
config = js({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
layer = b"buildx layer"
img = js({"schemaVersion": 2, "mediaType": OM,
          "config": desc(OC, config),
          "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer)]})
img_d = desc(OM, img, platform={"architecture": "amd64", "os": "linux"})
about = hashlib.sha256(b"another image").hexdigest() if other else img_d["digest"][7:]
def statement(pt, pred):
    return js({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": pt,
               "subject": [{"name": "pkg:docker/app@v1?platform=linux%2Famd64",
                            "digest": {"sha256": about}}],
               "predicate": pred})
prov = statement("https://slsa.dev/provenance/v0.2", {"builder": {"id": "https://github.com/docker/buildx"}})
sbom = statement("https://spdx.dev/Document", {"spdxVersion": "SPDX-2.3"})
att_config = js({"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}})
att = js({"schemaVersion": 2, "mediaType": OM,
          "config": desc(OC, att_config),
          "layers": [
              desc("application/vnd.in-toto+json", sbom, annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"}),
              desc("application/vnd.in-toto+json", prov, annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}),
          ] + ([desc("application/vnd.dev.sigstore.bundle.v0.3+json", extra)] if extra else [])})
att_d = desc(OM, att, platform={"architecture": "unknown", "os": "unknown"},
             annotations={"vnd.docker.reference.type": "attestation-manifest",
                          "vnd.docker.reference.digest": img_d["digest"]})
index = js({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [img_d, att_d]})
idx_d = desc("application/vnd.oci.image.index.v1+json", index,
             annotations={"org.opencontainers.image.ref.name": "v1"})
with open(os.path.join(root, "index.json"), "wb") as f:
    f.write(js({"schemaVersion": 2, "manifests": [idx_d]}))
with open(os.path.join(root, "oci-layout"), "wb") as f:
    f.write(js({"imageLayoutVersion": "1.0.0"}))
print(idx_d["digest"], img_d["digest"], att_d["digest"])
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir)
        .arg(if other_subject { "1" } else { "0" })
        .args(signed_layer)
        .output()
        .expect("python3 is required for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let d: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    assert_eq!(d.len(), 3, "{text}");
    (d[0].clone(), d[1].clone(), d[2].clone())
}

fn stella(dir: &Path, args: &[&str]) -> Run {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .current_dir(dir)
        .global_arg("--plain-http")
        .global_arg("--no-progress")
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("STELLA_REQUEST_STATS")
        .run(args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let r = stella(dir, args);
    assert_eq!(r.code, 0, "stella {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

fn list_json(dir: &Path, reference: &str) -> Value {
    let out = ok(
        dir,
        &["evidence", "list-referrers", reference, "--format", "json"],
    );
    serde_json::from_str(out.trim()).unwrap()
}

fn buildx_entries(listing: &Value) -> Vec<&Value> {
    listing["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "buildx-attestation-manifest")
        .collect()
}

fn write_policies(w: &Path) {
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    ok(
        w,
        &[
            "key",
            "generate",
            "--output-key",
            "ci.pem",
            "--output-pub",
            "ci.pub",
        ],
    );
    let signers = "signers:\n  ci:\n    keys: [ci.pub]\n";
    std::fs::write(
        w.join("warn.yaml"),
        format!(
            "version: 1\n{signers}requirements:\n\
             \x20 - name: provenance\n    type: {PROVENANCE}\n    unsigned: warn\n\
             \x20 - name: sbom\n    type: {SPDX}\n    unsigned: warn\n"
        ),
    )
    .unwrap();
    std::fs::write(
        w.join("signed.yaml"),
        format!(
            "version: 1\n{signers}requirements:\n\
             \x20 - name: provenance\n    type: {PROVENANCE}\n    signers: [ci]\n"
        ),
    )
    .unwrap();
}

fn verify(w: &Path, image: &str, policy: &str) -> (i32, Value) {
    let r = stella(
        w,
        &[
            "verify",
            "image",
            image,
            "--use-referrers",
            "--policy",
            policy,
            "--output",
            "json",
        ],
    );
    assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
    (r.code, serde_json::from_str(r.stdout.trim()).unwrap())
}

fn requirement<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no requirement {name} in {report}"))
}

/// The evidence made of buildx statements (one per layer, by layer digest).
fn statements(report: &Value) -> Vec<&Value> {
    report["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["artifactType"] == "application/vnd.in-toto+json")
        .collect()
}

#[test]
fn layout_lists_buildx_attestations_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    let (index, platform, att) = buildx_layout(&w.join("lay"), false);

    // The index (by tag): the attestation manifest, marked, with what it is about.
    let listing = list_json(w, "oci:lay:v1");
    assert_eq!(listing["subject"], index);
    let found = buildx_entries(&listing);
    assert_eq!(found.len(), 1, "{listing}");
    assert_eq!(found[0]["digest"], att);
    assert_eq!(found[0]["about"], platform);
    assert_eq!(
        found[0]["annotations"]["vnd.docker.reference.digest"],
        platform
    );
    assert!(found[0].get("legacy").is_none());

    // The platform manifest named by digest with the index's tag: found.
    let pinned = format!("oci:lay:v1@{platform}");
    let listing = list_json(w, &pinned);
    assert_eq!(listing["subject"], platform);
    let found = buildx_entries(&listing);
    assert_eq!(found.len(), 1, "{listing}");
    assert_eq!(found[0]["digest"], att);

    // A bare platform digest names no index: nothing to search.
    let listing = list_json(w, &format!("oci:lay@{platform}"));
    assert!(buildx_entries(&listing).is_empty(), "{listing}");

    // Table and tree mark it too.
    let table = ok(w, &["evidence", "list-referrers", "oci:lay:v1"]);
    let row = table.lines().find(|l| l.starts_with(&att)).unwrap();
    assert!(row.trim_end().ends_with("buildx"), "{table}");
    let tree = ok(
        w,
        &[
            "evidence",
            "list-referrers",
            "oci:lay:v1",
            "--format",
            "tree",
        ],
    );
    assert!(
        tree.contains(&format!("{att} - ")) && tree.contains(&format!("[buildx] about={platform}")),
        "{tree}"
    );

    // An artifact-type filter that does not name in-toto leaves them out.
    let out = ok(
        w,
        &[
            "evidence",
            "list-referrers",
            "oci:lay:v1",
            "--artifact-type",
            "application/spdx+json",
            "--format",
            "json",
        ],
    );
    let listing: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(buildx_entries(&listing).is_empty(), "{listing}");
}

#[test]
fn layout_verify_counts_buildx_statements_as_unsigned_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    write_policies(w);
    let (_, platform, att) = buildx_layout(&w.join("lay"), false);

    // The platform manifest with the index's tag: its statements are found;
    // by bare digest there is no index to search.
    let (code, report) = verify(w, &format!("oci:lay:v1@{platform}"), "warn.yaml");
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["image"]["digest"], platform);
    assert_eq!(statements(&report).len(), 2, "{report}");
    let (code, report) = verify(w, &format!("oci:lay@{platform}"), "warn.yaml");
    assert_eq!(code, 1, "{report}");
    assert_eq!(requirement(&report, "provenance")["status"], "missing");

    // unsigned: warn: both statements satisfy their requirement, warned.
    let (code, report) = verify(w, "oci:lay:v1", "warn.yaml");
    assert_eq!(code, 0, "{report}");
    assert_eq!(requirement(&report, "provenance")["status"], "warned");
    assert_eq!(requirement(&report, "sbom")["status"], "warned");
    let ev = statements(&report);
    let types: Vec<&str> = ev
        .iter()
        .map(|e| e["predicateType"].as_str().unwrap())
        .collect();
    assert_eq!(ev.len(), 2, "{report}");
    assert!(
        types.contains(&PROVENANCE) && types.contains(&SPDX),
        "{report}"
    );
    assert!(ev.iter().all(|e| e["status"] == "unsigned"), "{report}");

    // A signed requirement: unsigned buildx provenance does not satisfy it.
    let (code, report) = verify(w, "oci:lay:v1", "signed.yaml");
    assert_eq!(code, 1, "{report}");
    assert_ne!(requirement(&report, "provenance")["status"], "satisfied");

    // Signed through the same engine: a DSSE attestation by ci about the
    // attestation manifest (a referrer of it) vouches for its statements.
    let attestations = |w: &Path| -> (i32, Value) {
        let r = stella(
            w,
            &[
                "verify",
                "attestation",
                "--image",
                "oci:lay:v1",
                "--key",
                "ci.pub",
                "--output",
                "json",
            ],
        );
        (r.code, serde_json::from_str(r.stdout.trim()).unwrap())
    };
    // verify attestation reports only signed attestations: none yet.
    let (code, v) = attestations(w);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["attestations"].as_array().unwrap().len(), 0, "{v}");

    std::fs::write(w.join("note.json"), br#"{"note":"attestations reviewed"}"#).unwrap();
    let attested = ok(
        w,
        &[
            "attest",
            "--image",
            &format!("oci:lay@{att}"),
            "--type",
            "https://example.com/reviewed/v1",
            "--predicate",
            "note.json",
            "--key",
            "ci.pem",
        ],
    );
    let signature = attested.split_whitespace().last().unwrap().to_string();
    let (code, v) = attestations(w);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["attestations"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["attestations"][0]["referrer"], signature, "{v}");
    assert_eq!(v["attestations"][0]["verified"], true, "{v}");

    let (code, report) = verify(w, "oci:lay:v1", "signed.yaml");
    assert_eq!(code, 0, "{report}");
    assert_eq!(requirement(&report, "provenance")["status"], "satisfied");
    let ev = statements(&report);
    assert!(
        ev.iter()
            .all(|e| e["status"] == "verified" && e["signers"][0] == "ci"),
        "{report}"
    );
}

#[test]
fn layout_buildx_statement_about_another_digest_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    write_policies(w);
    let (_, platform, _) = buildx_layout(&w.join("lay"), true);
    let (code, report) = verify(w, "oci:lay:v1", "warn.yaml");
    assert_eq!(code, 1, "{report}");
    let ev = statements(&report);
    assert_eq!(ev.len(), 2, "{report}");
    assert!(ev.iter().all(|e| e["status"] == "rejected"), "{report}");
    // The reason names the digest vnd.docker.reference.digest gave.
    assert!(
        ev.iter()
            .all(|e| e["reason"].as_str().unwrap().contains(&platform)),
        "{report}"
    );
    assert_ne!(requirement(&report, "provenance")["status"], "warned");
}

#[test]
fn registry_lists_and_verifies_buildx_attestations() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    write_policies(w);
    let (index, platform, att) = buildx_layout(&w.join("lay"), false);
    let dest = format!("{host}/app:v1");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--insecure-policy",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ])
        .arg(format!("oci:{}:v1", w.join("lay").display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo is required for this test");
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let listing = list_json(w, &dest);
    assert_eq!(listing["subject"], index);
    let found = buildx_entries(&listing);
    assert_eq!(found.len(), 1, "{listing}");
    assert_eq!(found[0]["digest"], att);
    assert_eq!(found[0]["about"], platform);
    let listing = list_json(w, &format!("{dest}@{platform}"));
    assert_eq!(buildx_entries(&listing).len(), 1, "{listing}");

    let (code, report) = verify(w, &dest, "warn.yaml");
    assert_eq!(code, 0, "{report}");
    assert_eq!(statements(&report).len(), 2, "{report}");
    let (code, _) = verify(w, &dest, "signed.yaml");
    assert_eq!(code, 1);
}

#[test]
fn layout_signed_layer_of_an_attestation_manifest_is_verified_against_the_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    write_policies(w);
    let (_, platform, _) = buildx_layout(&w.join("lay"), false);
    // A bundle signed by ci about the platform manifest, written to a file
    // (attest also pushes it as a referrer; the rewrite below drops that).
    std::fs::write(
        w.join("prov.json"),
        br#"{"buildDefinition":{"buildType":"x"}}"#,
    )
    .unwrap();
    ok(
        w,
        &[
            "attest",
            "--image",
            &format!("oci:lay@{platform}"),
            "--type",
            "slsaprovenance",
            "--predicate",
            "prov.json",
            "--key",
            "ci.pem",
            "--output",
            "signed.json",
        ],
    );
    std::fs::remove_dir_all(w.join("lay")).unwrap();
    let (_, again, att) = buildx_layout_with(&w.join("lay"), false, Some(&w.join("signed.json")));
    assert_eq!(again, platform);
    std::fs::write(
        w.join("signed-v1.yaml"),
        "version: 1\nsigners:\n  ci:\n    keys: [ci.pub]\nrequirements:\n\
         \x20 - name: provenance\n    type: slsaprovenance\n    signers: [ci]\n",
    )
    .unwrap();
    let (code, report) = verify(w, "oci:lay:v1", "signed-v1.yaml");
    assert_eq!(code, 0, "{report}");
    let signed: Vec<&Value> = report["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "verified")
        .collect();
    assert_eq!(signed.len(), 1, "{report}");
    assert_eq!(signed[0]["signers"][0], "ci", "{report}");
    // The bare statements of the same manifest stay unsigned.
    assert_eq!(statements(&report).len(), 2, "{report}");
    assert!(
        statements(&report)
            .iter()
            .all(|e| e["status"] == "unsigned")
    );

    let r = stella(
        w,
        &[
            "verify",
            "attestation",
            "--image",
            "oci:lay:v1",
            "--key",
            "ci.pub",
            "--output",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["attestations"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["attestations"][0]["referrer"], att, "{v}");
    assert_eq!(v["attestations"][0]["verified"], true, "{v}");
}
