//! `stella bundle import` of an evidence-only bundle (exported without
//! `--include-image`) into a target that lacks the image: exit 2, a message
//! that says how to get the image there, and nothing uploaded (checked in
//! the registry's access log, its catalog and a HEAD of the evidence blob,
//! or the layout's blob directory). Once the image is copied with skopeo
//! (`--preserve-digests`), the same import succeeds. The registry is
//! Debian's `docker-registry` (distribution 2.8) from `stella_testkit`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use stella_testkit::distribution::DistributionRegistry;

const SBOM: &[u8] = br#"{"spdxVersion":"SPDX-2.3","name":"evidence only"}"#;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn stella(dir: &Path, args: &[&str]) -> Run {
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
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let r = stella(dir, args);
    assert_eq!(r.code, 0, "stella {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A tiny OCI image in a layout (`img`, tag `v1`), built with python (no
/// stella code involved). Returns the image manifest digest.
fn make_layout(dir: &Path) -> String {
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
print(m["digest"])
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The source image with an SBOM referrer, exported without the image to
/// `evidence.tar.gz`. Returns the image digest.
fn evidence_only_bundle(w: &Path) -> String {
    std::fs::create_dir_all(w.join("docker-config")).unwrap();
    let digest = make_layout(&w.join("img"));
    std::fs::write(w.join("sbom.spdx.json"), SBOM).unwrap();
    let src = format!("oci:{}:v1", w.join("img").display());
    ok(
        w,
        &[
            "evidence",
            "push-referrer",
            "--image",
            &src,
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
            "export-bundle",
            "--image",
            &src,
            "--output",
            "evidence.tar.gz",
        ],
    );
    digest
}

fn skopeo_copy(w: &Path, dest: &str) {
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            "--all",
            "--preserve-digests",
        ])
        .arg(format!("oci:{}:v1", w.join("img").display()))
        .arg(dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Status of an HTTP request to the registry (python's urllib, not our client).
fn http_status(method: &str, url: &str) -> (u16, String) {
    let script = r#"
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[2], method=sys.argv[1])
try:
    r = urllib.request.urlopen(req, timeout=10); print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
"#;
    let out = Command::new("python3")
        .args(["-c", script, method, url])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (code, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    (code.trim().parse().unwrap(), body.to_string())
}

/// Access-log lines of requests that write (blob uploads, manifest puts).
fn writes(reg: &DistributionRegistry) -> Vec<String> {
    reg.access_log_lines()
        .into_iter()
        .filter(|l| {
            ["\"POST ", "\"PUT ", "\"PATCH "]
                .iter()
                .any(|m| l.contains(m))
        })
        .collect()
}

fn assert_refusal(r: &Run, subject: &str, dest: &str) {
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    for needle in [
        "nothing was uploaded",
        subject,
        "skopeo copy --all --preserve-digests",
        dest,
        "--include-image",
    ] {
        assert!(r.stderr.contains(needle), "{needle:?} not in: {}", r.stderr);
    }
    assert!(!r.stdout.contains("imported"), "{}", r.stdout);
}

#[test]
fn registry_without_the_image_gets_nothing_until_the_image_is_copied() {
    let reg = DistributionRegistry::start_plain().unwrap();
    let host = reg.host_port();
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let subject = evidence_only_bundle(w);
    let target = format!("{host}/mirror:v1");

    let r = stella(
        w,
        &[
            "bundle",
            "import",
            "--bundle",
            "evidence.tar.gz",
            "--to",
            &target,
        ],
    );
    assert_refusal(&r, &subject, &format!("docker://{target}"));
    assert_eq!(
        writes(&reg),
        Vec::<String>::new(),
        "the import wrote to the registry"
    );
    let (code, catalog) = http_status("GET", &format!("http://{host}/v2/_catalog"));
    assert_eq!(code, 200);
    assert!(!catalog.contains("mirror"), "{catalog}");
    let sbom_blob = format!("http://{host}/v2/mirror/blobs/sha256:{}", sha256_hex(SBOM));
    assert_eq!(http_status("HEAD", &sbom_blob).0, 404);

    // Copy the image as the message says, then the same import works.
    skopeo_copy(w, &format!("docker://{target}"));
    let out = ok(
        w,
        &[
            "bundle",
            "import",
            "--bundle",
            "evidence.tar.gz",
            "--to",
            &target,
        ],
    );
    assert!(out.contains("1 referrer(s) recorded"), "{out}");
    assert_eq!(http_status("HEAD", &sbom_blob).0, 200);
    let listed = ok(
        w,
        &["evidence", "list-referrers", &target, "--format", "json"],
    );
    assert!(listed.contains("application/spdx+json"), "{listed}");
}

#[test]
fn layout_without_the_image_gets_no_blob_until_the_image_is_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let subject = evidence_only_bundle(w);
    let target = format!("oci:{}:v1", w.join("lay").display());

    let r = stella(
        w,
        &[
            "bundle",
            "import",
            "--bundle",
            "evidence.tar.gz",
            "--to",
            &target,
        ],
    );
    assert_refusal(&r, &subject, &target);
    let blobs = std::fs::read_dir(w.join("lay").join("blobs").join("sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "the import wrote blobs into the layout");

    skopeo_copy(w, &target);
    let out = ok(
        w,
        &[
            "bundle",
            "import",
            "--bundle",
            "evidence.tar.gz",
            "--to",
            &target,
        ],
    );
    assert!(out.contains("1 referrer(s) recorded"), "{out}");
    let listed = ok(
        w,
        &["evidence", "list-referrers", &target, "--format", "json"],
    );
    assert!(listed.contains("application/spdx+json"), "{listed}");
}
