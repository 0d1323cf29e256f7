//! `stella vex ingest` of OpenVEX kept in a Docker buildx attestation
//! manifest (discovery of that layout is tested in buildx_attestations.rs).
//! The buildx-shaped image is written by python (hashlib/json, and PyPI
//! `cryptography` for the signatures, the DSSE PAE built per the DSSE spec),
//! never by Stella: an index with one linux/amd64 manifest and one
//! `unknown/unknown` attestation manifest (`vnd.docker.reference.type:
//! attestation-manifest`, `vnd.docker.reference.digest: <platform digest>`)
//! whose layers are
//! - a DSSE envelope over an in-toto OpenVEX statement about the platform
//!   manifest, signed by the trusted key (two statements);
//! - the same kind of envelope signed by a key the caller does not trust;
//! - buildx's own unsigned `application/vnd.in-toto+json` OpenVEX layer.
//!
//! Exactly the two statements of the trusted envelope are stored, with the
//! verified key as issuer, on an OCI layout and on a real registry
//! (Debian `docker-registry`, copied with `skopeo copy --all`); a re-run
//! stores nothing new.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stella_testkit::cli::Stella;
use stella_testkit::distribution::DistributionRegistry;

const SCRIPT: &str = r#"
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
root, trusted, untrusted = sys.argv[1], sys.argv[2], sys.argv[3]
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
OPENVEX = "https://openvex.dev/ns/v0.2.0"
config = js({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
img = js({"schemaVersion": 2, "mediaType": OM, "config": desc(OC, config),
          "layers": [desc("application/vnd.oci.image.layer.v1.tar", b"buildx vex layer")]})
img_d = desc(OM, img, platform={"architecture": "amd64", "os": "linux"})
def vex(doc_id, stmts):
    return {"@context": OPENVEX, "@id": doc_id, "author": "Claimed Author",
            "timestamp": "2024-05-01T00:00:00Z", "version": 1,
            "statements": [{"vulnerability": {"name": v}, "status": s,
                            **({"justification": "vulnerable_code_not_present"} if s == "not_affected"
                               else {"action_statement": "upgrade"} if s == "affected" else {})}
                           for v, s in stmts]}
def statement(pred):
    return {"_type": "https://in-toto.io/Statement/v1", "predicateType": OPENVEX,
            "subject": [{"name": "pkg:docker/app@v1?platform=linux%2Famd64",
                         "digest": {"sha256": img_d["digest"][7:]}}],
            "predicate": pred}
def dsse(key_path, pred):
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    payload = json.dumps(statement(pred)).encode()
    ptype = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    sig = key.sign(pae, ec.ECDSA(hashes.SHA256()))
    return json.dumps({"payloadType": ptype.decode(), "payload": base64.b64encode(payload).decode(),
                       "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]}).encode()
DSSE = "application/vnd.dsse.envelope.v1+json"
ann = {"in-toto.io/predicate-type": OPENVEX}
trusted_env = dsse(trusted, vex("https://v/buildx-trusted",
                                [("CVE-2024-100", "not_affected"), ("CVE-2024-101", "affected")]))
untrusted_env = dsse(untrusted, vex("https://v/buildx-untrusted", [("CVE-2024-666", "fixed")]))
unsigned = js(statement(vex("https://v/buildx-unsigned", [("CVE-2024-999", "fixed")])))
att_config = js({"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}})
att = js({"schemaVersion": 2, "mediaType": OM, "config": desc(OC, att_config),
          "layers": [desc(DSSE, trusted_env, annotations=ann),
                     desc(DSSE, untrusted_env, annotations=ann),
                     desc("application/vnd.in-toto+json", unsigned, annotations=ann)]})
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
print(img_d["digest"])
"#;

fn stella(w: &Path) -> Stella {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .current_dir(w)
        .global_arg("--plain-http")
        .global_arg("--no-progress")
        .env("DOCKER_CONFIG", w.join("docker-config"))
}

/// Keys `k` (trusted) and `other`, and the buildx layout at `w/lay`;
/// returns the platform manifest digest.
fn buildx_vex_layout(w: &Path) -> String {
    for name in ["k", "other"] {
        stella(w).ok(&[
            "key",
            "generate",
            "--algorithm",
            "ecdsa-p256",
            "--output-key",
            &format!("{name}.key"),
            "--output-pub",
            &format!("{name}.pub"),
        ]);
    }
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(w.join("lay"))
        .arg(w.join("k.key"))
        .arg(w.join("other.key"))
        .output()
        .expect("python3 with PyPI cryptography is required for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn ingest(w: &Path, image: &str) -> Value {
    let out = stella(w).ok(&[
        "vex", "ingest", "--image", image, "--key", "k.pub", "--db", "vex.db", "--output", "json",
    ]);
    serde_json::from_str(out.trim()).unwrap()
}

/// The stored statements about `platform`: (vulnerability, status, issuer).
fn stored(w: &Path, platform: &str) -> Vec<(String, String, String)> {
    let out = stella(w).ok(&[
        "vex",
        "query",
        "--db",
        "vex.db",
        "--product",
        platform,
        "--output",
        "json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let mut rows: Vec<(String, String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["statement"]["vulnerability"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                i["statement"]["status"].as_str().unwrap().to_string(),
                i["issuer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn assert_exactly_the_trusted_statements(w: &Path, image: &str, platform: &str) {
    let first = ingest(w, image);
    assert_eq!(first["total"]["inserted"], 1, "{first:#}");
    assert_eq!(first["total"]["statements"], 2, "{first:#}");
    // The envelope signed by the other key; buildx's unsigned layer is not
    // a signed layer and is not even a candidate.
    assert_eq!(first["total"]["rejected"], 1, "{first:#}");
    let rows = stored(w, platform);
    let found: Vec<(&str, &str)> = rows
        .iter()
        .map(|(v, s, _)| (v.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("CVE-2024-100", "not_affected"),
            ("CVE-2024-101", "affected")
        ]
    );
    for (_, _, issuer) in &rows {
        assert!(issuer.starts_with("key sha256:"), "{issuer}");
    }
    let again = ingest(w, image);
    assert_eq!(again["total"]["inserted"], 0, "{again:#}");
    assert_eq!(again["total"]["unchanged"], 1, "{again:#}");
    assert_eq!(stored(w, platform), rows);
}

#[test]
fn layout_buildx_attestation_ingests_exactly_the_trusted_signed_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let platform = buildx_vex_layout(w);
    let image = format!("oci:{}:v1", w.join("lay").display());
    assert_exactly_the_trusted_statements(w, &image, &platform);
}

#[test]
fn registry_buildx_attestation_ingests_exactly_the_trusted_signed_layer() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let platform = buildx_vex_layout(w);
    let dest = format!("{}/vex/buildx:v1", reg.host_port());
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
    assert_exactly_the_trusted_statements(w, &dest, &platform);
}
