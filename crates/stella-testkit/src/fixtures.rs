//! Test fixtures: small images in any store (layout or registry), layouts
//! written by third-party tools (python, system `tar`), single-layer
//! referrers, base64, and an organisation PKI made with `openssl`.
//!
//! Images are built from explicit config and layer bytes so each test keeps
//! the exact digests it was written against. Where the point of a test is
//! that Stella reads what *other* tools wrote, the fixture is made by that
//! tool (python's `hashlib`/`tarfile`/`json`, GNU tar, openssl), never by
//! Stella's own writer.
//!
//! What this module does not do: it makes no network calls, and it is not
//! hardened: every helper panics with a message when a step fails, which is
//! how a test reports a broken fixture.

#![allow(clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use stella_oci::artifact::{ArtifactSpec, LayerSource, push_referrer};
use stella_oci::layout::OciLayout;
use stella_oci::store::{BlobSource, ContentWrite, NoProgress};
use stella_types::{Descriptor, ImageManifest, media_types};

pub mod pki;

/// An image config with no layers listed, as the layout tests use.
pub const PLAIN_CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

/// A current-thread tokio runtime (timers and I/O enabled) for sync tests
/// that call Stella's async library API.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
}

/// Pushes an image (the given config blob, one tar layer, an OCI manifest)
/// into any store and returns the manifest descriptor; tags it if `tag` is set.
pub async fn push_image<S: ContentWrite>(
    store: &S,
    config: &[u8],
    layer: &[u8],
    tag: Option<&str>,
) -> Descriptor {
    let config_d = Descriptor::for_bytes(media_types::OCI_CONFIG, config);
    push_blob(store, &config_d, config).await;
    let layer_d = Descriptor::for_bytes(media_types::OCI_LAYER_TAR, layer);
    push_blob(store, &layer_d, layer).await;
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.into()),
        artifact_type: None,
        config: config_d,
        layers: vec![layer_d],
        subject: None,
        annotations: BTreeMap::new(),
    };
    store
        .push_manifest(media_types::OCI_MANIFEST, &manifest.to_json_bytes(), tag)
        .await
        .unwrap_or_else(|e| panic!("pushing the image manifest: {e}"))
}

async fn push_blob<S: ContentWrite>(store: &S, d: &Descriptor, bytes: &[u8]) {
    store
        .push_blob(d, BlobSource::Bytes(bytes), &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("pushing blob {}: {e}", d.digest));
}

/// Pushes the small image the registry tests share: config
/// `{"seed":"<seed>"}` and layer `layer <seed>`, tagged `tag`.
pub async fn push_seed_image<S: ContentWrite>(store: &S, seed: &str, tag: &str) -> Descriptor {
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let layer = format!("layer {seed}");
    push_image(store, config.as_bytes(), layer.as_bytes(), Some(tag)).await
}

/// Creates (or opens) the layout at `dir` and writes an image into it with
/// Stella's layout writer; returns the manifest descriptor.
pub fn layout_image(dir: &Path, tag: &str, config: &[u8], layer: &[u8]) -> Descriptor {
    runtime().block_on(async {
        let layout = OciLayout::open_or_create(dir)
            .unwrap_or_else(|e| panic!("layout {}: {e}", dir.display()));
        push_image(&layout, config, layer, Some(tag)).await
    })
}

/// Pushes one blob as a referrer of `subject` in the layout at `dir`, the way
/// Stella and cosign attach a bundle: artifact type and layer media type
/// are both `media_type`.
pub fn push_layout_referrer(
    dir: &Path,
    subject: &Descriptor,
    media_type: &str,
    bytes: Vec<u8>,
    title: Option<&str>,
) -> Descriptor {
    runtime().block_on(async {
        let layout =
            OciLayout::open(dir).unwrap_or_else(|e| panic!("layout {}: {e}", dir.display()));
        let spec = ArtifactSpec {
            artifact_type: media_type.to_string(),
            layers: vec![LayerSource::Bytes {
                bytes,
                media_type: media_type.to_string(),
                title: title.map(str::to_string),
            }],
            annotations: BTreeMap::new(),
        };
        push_referrer(&layout, subject, &spec, &NoProgress)
            .await
            .unwrap_or_else(|e| panic!("push_referrer: {e}"))
            .descriptor
    })
}

/// A reproducible one-file tar (`name` holding `contents`) made by the
/// system's GNU tar (sorted, mtime 0, owner 0).
pub fn system_tar(name: &str, contents: &[u8]) -> Vec<u8> {
    let src = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    std::fs::write(src.path().join(name), contents).unwrap_or_else(|e| panic!("write: {e}"));
    let tar_path = src.path().join("layer.tar");
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&tar_path)
        .arg("-C")
        .arg(src.path())
        .arg(name)
        .status()
        .unwrap_or_else(|e| panic!("tar is required for this test: {e}"));
    assert!(status.success(), "tar failed: {status}");
    std::fs::read(&tar_path).unwrap_or_else(|e| panic!("read {}: {e}", tar_path.display()))
}

/// The layer of an image written by [`python_layout`].
#[derive(Debug, Clone, Copy)]
pub enum PythonLayer<'a> {
    /// A USTAR tar (made by python's `tarfile`) holding `hello.txt`.
    HelloTar,
    /// The bytes `layer <seed>` (never unpacked), so seeds make images differ.
    Seed(&'a str),
}

const PYTHON_LAYOUT: &str = r#"
import hashlib, io, json, os, sys, tarfile
d, kind, seed = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b, mt):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"mediaType": mt, "digest": "sha256:" + h, "size": len(b)}
if kind == "tar":
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("hello.txt"); data = b"hello\n"; info.size = len(data); info.mtime = 0
        t.addfile(info, io.BytesIO(data))
    layer = buf.getvalue()
else:
    layer = ("layer " + seed).encode()
l = put(layer, "application/vnd.oci.image.layer.v1.tar")
cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l["digest"]]}}).encode(),
          "application/vnd.oci.image.config.v1+json")
m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [l]}).encode(),
        "application/vnd.oci.image.manifest.v1+json")
m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
"#;

/// Writes a tiny OCI image layout (one image tagged `v1`) at `dir` with
/// python alone, so no Stella code is involved in making it.
pub fn python_layout(dir: &Path, layer: PythonLayer<'_>) {
    let (kind, seed) = match layer {
        PythonLayer::HelloTar => ("tar", ""),
        PythonLayer::Seed(seed) => ("seed", seed),
    };
    let status = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_LAYOUT)
        .arg(dir)
        .arg(kind)
        .arg(seed)
        .status()
        .unwrap_or_else(|e| panic!("python3 is required for this test: {e}"));
    assert!(status.success(), "python layout script failed: {status}");
}

/// Copies image `v1` of the layout at `layout` to `docker://<dest>` with
/// skopeo (digests preserved, plain HTTP).
pub fn skopeo_push(layout: &Path, dest: &str) {
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--insecure-policy",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap_or_else(|e| panic!("skopeo is required for this test: {e}"));
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Standard base64 (with padding) of `bytes`.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard-alphabet base64, padded or not; panics on invalid input.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    LENIENT
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}
