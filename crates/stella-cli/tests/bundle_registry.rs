//! StellaBundle against a real registry (Debian `docker-registry`, started by
//! `stella_testkit::distribution`, which has no Referrers API, so referrers
//! go through the tag-schema fallback index): image copied in with skopeo,
//! evidence pushed with stella, exported, verified, imported into another
//! repository (twice: the second uploads nothing), listed, and exported
//! again byte-identically.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stella_testkit::distribution::DistributionRegistry;

fn stella(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stella"))
        .arg("--plain-http")
        .arg("--no-progress")
        .args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("STELLA_USERNAME")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = stella(dir, args);
    assert_eq!(code, 0, "stella {args:?}: {out}{err}");
    out
}

/// A tiny OCI image in a layout, built with python (no stella code involved).
fn make_layout(dir: &Path) {
    let script = r#"
import hashlib, io, json, os, sys, tarfile
d = sys.argv[1]
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b, mt):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"mediaType": mt, "digest": "sha256:" + h, "size": len(b)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    info = tarfile.TarInfo("hello.txt"); data = b"hello\n"; info.size = len(data); info.mtime = 0
    t.addfile(info, io.BytesIO(data))
layer = buf.getvalue()
l = put(layer, "application/vnd.oci.image.layer.v1.tar")
cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l["digest"]]}}).encode(),
          "application/vnd.oci.image.config.v1+json")
m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [l]}).encode(),
        "application/vnd.oci.image.manifest.v1+json")
m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
"#;
    let st = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn registry_round_trip() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::create_dir(w.join("docker-config")).unwrap();
    make_layout(&w.join("img"));
    let sk = Command::new("skopeo")
        .args([
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ])
        .arg(format!("oci:{}:v1", w.join("img").display()))
        .arg(format!("docker://{host}/app:v1"))
        .output()
        .unwrap();
    assert!(
        sk.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&sk.stderr)
    );

    let app = format!("{host}/app:v1");
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
    ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            &app,
            "--artifact-type",
            "application/spdx+json",
            "--file",
            "sbom.spdx.json",
        ],
    );
    ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            &app,
            "--artifact-type",
            "application/openvex+json",
            "--file",
            "vex.json",
        ],
    );
    ok(
        w,
        &[
            "key",
            "generate",
            "--algorithm",
            "ed25519",
            "--output-key",
            "k.pem",
            "--output-pub",
            "k.pub",
        ],
    );
    ok(
        w,
        &[
            "attest",
            "--image",
            &app,
            "--predicate",
            "prov.json",
            "--type",
            "https://slsa.dev/provenance/v1",
            "--key",
            "k.pem",
        ],
    );

    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &app,
            "--include-dsse",
            "--include-image",
            "--output",
            "b.tar.zst",
            "--compression",
            "zstd",
        ],
    );
    let v: Value = serde_json::from_str(&ok(
        w,
        &[
            "bundle",
            "verify",
            "--bundle",
            "b.tar.zst",
            "--key",
            "k.pub",
            "--require",
            "application/spdx+json",
            "--require",
            "https://slsa.dev/provenance/v1",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(v["verified"], true, "{v}");

    let target = format!("{host}/mirror:v1");
    let first = ok(
        w,
        &["bundle", "import", "--bundle", "b.tar.zst", "--to", &target],
    );
    assert!(first.contains("4 manifest(s) pushed"), "{first}");
    let second = ok(
        w,
        &["bundle", "import", "--bundle", "b.tar.zst", "--to", &target],
    );
    assert!(
        second.contains("0 manifest(s) pushed") && second.contains("0 blob(s) pushed"),
        "{second}"
    );
    let listed = ok(
        w,
        &["evidence", "list-referrers", &target, "--format", "json"],
    );
    for t in [
        "application/spdx+json",
        "application/openvex+json",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    ] {
        assert!(listed.contains(t), "{t} not in {listed}");
    }
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &target,
            "--include-dsse",
            "--include-image",
            "--output",
            "c.tar.zst",
            "--compression",
            "zstd",
        ],
    );
    assert_eq!(
        std::fs::read(w.join("b.tar.zst")).unwrap(),
        std::fs::read(w.join("c.tar.zst")).unwrap()
    );

    // --push-referrers into a third repository, then export from there too.
    let third = format!("{host}/third:v1");
    let p = ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &app,
            "--include-dsse",
            "--include-image",
            "--push-referrers",
            &third,
        ],
    );
    assert!(p.contains("4 manifest(s) pushed"), "{p}");
    ok(
        w,
        &[
            "evidence",
            "export-bundle",
            "--image",
            &third,
            "--include-dsse",
            "--include-image",
            "--output",
            "d.tar.zst",
            "--compression",
            "zstd",
        ],
    );
    assert_eq!(
        std::fs::read(w.join("b.tar.zst")).unwrap(),
        std::fs::read(w.join("d.tar.zst")).unwrap()
    );
}
