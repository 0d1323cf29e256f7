//! `stella export` end to end with real parts: real `docker-registry`
//! (distribution 2.8, tag-schema referrers) as source and destination,
//! skopeo and `sha256sum -c` reading what we write, the Debian `age` CLI
//! decrypting our exports and encrypting one we read, and the CLI binary
//! for every run (including one killed with SIGKILL and resumed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use stella_oci::artifact::{ArtifactSpec, LayerSource, delete_referrer, push_referrer};
use stella_oci::registry::{RegistryClient, RegistryOptions, Repository};
use stella_oci::store::{ContentRead, NoProgress, ReferrersRead};
use stella_testkit::cli::Stella;
use stella_testkit::distribution::DistributionRegistry;
use stella_testkit::fixtures::{layout_image, push_image, push_layout_referrer, runtime};
use stella_types::reference::RegistryReference;
use stella_types::{Descriptor, Digest};

fn cli(dir: &Path) -> Stella {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .current_dir(dir)
        .global_arg("--plain-http")
        .global_arg("--no-progress")
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
}

fn client() -> RegistryClient {
    RegistryClient::new(RegistryOptions {
        plain_http: true,
        ..RegistryOptions::default()
    })
    .unwrap()
}

fn repo(c: &RegistryClient, host: &str, name: &str) -> Repository {
    c.repository(&RegistryReference {
        registry: host.to_string(),
        repository: name.to_string(),
        tag: None,
        digest: None,
    })
}

/// Deterministic pseudo-random bytes.
fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut block = stella_types::digest::sha256_bytes(seed.as_bytes());
    while out.len() < len {
        out.extend_from_slice(&block);
        block = stella_types::digest::sha256_bytes(&block);
    }
    out.truncate(len);
    out
}

async fn add_referrer(
    store: &Repository,
    subject: &Descriptor,
    kind: &str,
    body: &str,
) -> Descriptor {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        "2023-01-01T00:00:00Z".to_string(),
    );
    let spec = ArtifactSpec {
        artifact_type: kind.to_string(),
        layers: vec![LayerSource::Bytes {
            bytes: body.as_bytes().to_vec(),
            media_type: kind.to_string(),
            title: None,
        }],
        annotations,
    };
    push_referrer(store, subject, &spec, &NoProgress)
        .await
        .unwrap()
        .descriptor
}

const REPOS: usize = 5;
const TAGS: usize = 4;
const SBOM: &str = "application/vnd.cyclonedx+json";
const SIG: &str = "application/vnd.example.signature+json";

/// 20 images in 5 repositories, each with an SBOM referrer; the SBOM of v0
/// of each repository has a signature referrer of its own.
async fn seed(host: &str) {
    let c = client();
    for r in 0..REPOS {
        let store = repo(&c, host, &format!("rel/app{r}"));
        for t in 0..TAGS {
            let seed = format!("{r}-{t}");
            let cfg = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
            let img = push_image(
                &store,
                cfg.as_bytes(),
                &noise(&seed, 4096 + t),
                Some(&format!("v{t}")),
            )
            .await;
            let sbom = add_referrer(
                &store,
                &img,
                SBOM,
                &format!(r#"{{"bomFormat":"CycloneDX","n":"{seed}"}}"#),
            )
            .await;
            if t == 0 {
                add_referrer(&store, &sbom, SIG, &format!(r#"{{"sig":"{seed}"}}"#)).await;
            }
        }
    }
}

/// Every tag → digest and every referrers list (recursively) of a repository.
type Snapshot = (BTreeMap<String, Digest>, BTreeMap<Digest, Vec<Digest>>);

async fn snapshot(store: &Repository) -> Snapshot {
    let mut tags = BTreeMap::new();
    for t in store.list_tags().await.unwrap() {
        tags.insert(t.clone(), store.resolve_tag(&t).await.unwrap().digest);
    }
    let mut refs = BTreeMap::new();
    let mut todo: Vec<Digest> = tags
        .iter()
        .filter(|(t, _)| !t.starts_with("sha256-"))
        .map(|(_, d)| d.clone())
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(d) = todo.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        let listing = store.list_referrers_skip_legacy(&d, &[]).await.unwrap();
        let mut list: Vec<Digest> = listing
            .referrers
            .iter()
            .filter(|e| !e.dangling)
            .map(|e| e.descriptor.digest.clone())
            .collect();
        list.sort();
        todo.extend(list.iter().cloned());
        if !list.is_empty() {
            refs.insert(d, list);
        }
    }
    (tags, refs)
}

fn sh(dir: &Path, cmd: &str) -> std::process::Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn entries(manifest: &Value) -> BTreeSet<String> {
    manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

fn inspect(w: &Path, export: &str) -> Value {
    let out = cli(w).ok(&["export", "inspect", export, "--output", "json"]);
    serde_json::from_str::<Value>(&out).unwrap()["manifest"].clone()
}

#[test]
fn full_then_delta_into_an_empty_registry_reproduces_the_source() {
    let src = DistributionRegistry::start_plain().unwrap();
    let dst = DistributionRegistry::start_plain().unwrap();
    let empty = DistributionRegistry::start_plain().unwrap();
    let (sh_, dh) = (src.host_port(), dst.host_port());
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::create_dir(w.join("docker-config")).unwrap();
    let rt = runtime();
    rt.block_on(seed(&sh_));
    let s = cli(w);
    s.ok(&[
        "key",
        "generate",
        "--algorithm",
        "ed25519",
        "--output-key",
        "k.key",
        "--output-pub",
        "k.pub",
    ]);
    let mut select = Vec::new();
    for r in 0..REPOS {
        select.push("--repository".to_string());
        select.push(format!("{sh_}/rel/app{r}"));
    }
    let run = |profile: &str, out: &str, extra: &[&str]| -> String {
        let mut args: Vec<String> = vec![
            "export".into(),
            "run".into(),
            "--profile".into(),
            profile.into(),
        ];
        args.extend(select.iter().cloned());
        args.extend([
            "--output".into(),
            out.into(),
            "--sign-key".into(),
            "k.key".into(),
        ]);
        args.extend(extra.iter().map(|x| x.to_string()));
        s.ok(&args).trim().to_string()
    };
    let full_digest = run("mirror:full", "full.tar.zst", &[]);
    assert!(full_digest.starts_with("sha256:"), "{full_digest}");
    let report = s.ok(&[
        "export",
        "verify",
        "full.tar.zst",
        "--key",
        "k.pub",
        "--output",
        "json",
    ]);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["manifestDigest"], full_digest.as_str());
    assert_eq!(report["signature"], "verified");

    // Third-party readers: sha256sum and skopeo on the extracted archive.
    std::fs::create_dir(w.join("x")).unwrap();
    sh(w, "tar --zstd -xf full.tar.zst -C x");
    sh(&w.join("x"), "sha256sum --strict -c checksums.txt");
    sh(
        w,
        "skopeo copy --all --insecure-policy oci:x:rel/app2:v3 oci:sk:v3",
    );
    let full = inspect(w, "full.tar.zst");
    let tags: BTreeSet<&str> = full["images"][0]["tags"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        tags.contains("v0") && tags.iter().any(|t| t.starts_with("sha256-")),
        "{tags:?}"
    );

    // Change one image of 20: a new tag, a new referrer, a deleted referrer.
    let changed_bytes = rt.block_on(async {
        let c = client();
        let store = repo(&c, &sh_, "rel/app1");
        let cfg = br#"{"architecture":"amd64","os":"linux","seed":"new"}"#;
        let layer = noise("new", 8192);
        let img = push_image(&store, cfg, &layer, Some("v9")).await;
        let v0 = store.resolve_tag("v0").await.unwrap();
        let added = add_referrer(
            &store,
            &v0,
            SBOM,
            r#"{"bomFormat":"CycloneDX","n":"added"}"#,
        )
        .await;
        let v1 = store.resolve_tag("v1").await.unwrap();
        let listing = store
            .list_referrers_skip_legacy(&v1.digest, &[])
            .await
            .unwrap();
        let victim = listing.referrers.first().unwrap().descriptor.digest.clone();
        delete_referrer(&store, &victim).await.unwrap();
        (cfg.len() + layer.len()) as u64 + img.size + added.size
    });
    let delta_digest = run(
        "mirror:delta",
        "delta.tar.zst",
        &["--since", "full.tar.zst"],
    );
    s.ok(&["export", "verify", "delta.tar.zst", "--key", "k.pub"]);
    let delta = inspect(w, "delta.tar.zst");
    assert_eq!(delta["base"], full_digest.as_str());
    let (fe, de) = (entries(&full), entries(&delta));
    let new_blobs: Vec<&String> = de.iter().filter(|p| p.starts_with("blobs/")).collect();
    assert!(
        new_blobs.iter().all(|p| !fe.contains(*p)),
        "delta repeats base content"
    );
    assert!(
        !new_blobs.is_empty() && new_blobs.len() < 12,
        "{new_blobs:?}"
    );
    let delta_bytes: u64 = delta["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"].as_str().unwrap().starts_with("blobs/"))
        .map(|e| e["size"].as_u64().unwrap())
        .sum();
    assert!(
        delta_bytes >= changed_bytes,
        "delta {delta_bytes} < changed {changed_bytes}"
    );
    assert_eq!(delta["removed"][0]["repository"], "rel/app1");

    // A delta is refused on anything but its base.
    let to_empty = format!("{}/m", empty.host_port());
    cli(w)
        .code(&["export", "import", "delta.tar.zst", "--to", &to_empty], 2)
        .assert_error_line("applies only on export");
    let mut other = vec!["export", "run", "--profile", "mirror:full", "--image"];
    let app0 = format!("{sh_}/rel/app0:v0");
    other.extend([app0.as_str(), "--output", "other"]);
    s.ok(&other);
    cli(w)
        .code(
            &[
                "export",
                "import",
                "delta.tar.zst",
                "--base",
                "other",
                "--to",
                &to_empty,
            ],
            2,
        )
        .assert_error_line("applies only on export");

    // Full, then delta, into an empty registry: everything as at the source.
    let to = format!("{dh}/mirror");
    s.ok(&[
        "export",
        "import",
        "full.tar.zst",
        "--to",
        &to,
        "--key",
        "k.pub",
    ]);
    s.ok(&[
        "export",
        "import",
        "delta.tar.zst",
        "--to",
        &to,
        "--key",
        "k.pub",
    ]);
    let _ = delta_digest;
    rt.block_on(async {
        let c = client();
        for r in 0..REPOS {
            let a = snapshot(&repo(&c, &sh_, &format!("rel/app{r}"))).await;
            let b = snapshot(&repo(&c, &dh, &format!("mirror/rel/app{r}"))).await;
            assert_eq!(a, b, "rel/app{r} differs after import");
            assert!(!a.1.is_empty());
        }
    });
    // Importing again uploads nothing.
    let again = s.ok(&[
        "export",
        "import",
        "delta.tar.zst",
        "--to",
        &to,
        "--output",
        "json",
    ]);
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["blobsPushed"], 0);
    assert_eq!(again["manifestsPushed"], 0);
}

// ------------------------------------------------------------- layout source

/// A layout with `n` images (tags v0..), each with an SBOM referrer.
fn make_layout(dir: &Path, n: usize, layer_len: usize) {
    for i in 0..n {
        let cfg = format!(r#"{{"architecture":"amd64","os":"linux","i":{i}}}"#);
        let img = layout_image(
            dir,
            &format!("v{i}"),
            cfg.as_bytes(),
            &noise(&format!("l{i}"), layer_len),
        );
        push_layout_referrer(
            dir,
            &img,
            SBOM,
            format!(r#"{{"bomFormat":"CycloneDX","i":{i}}}"#).into_bytes(),
            None,
        );
    }
}

fn layout_setup(n: usize, layer_len: usize) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().to_path_buf();
    std::fs::create_dir(w.join("docker-config")).unwrap();
    make_layout(&w.join("app"), n, layer_len);
    (tmp, w)
}

fn export_layout(w: &Path, out: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "export",
        "run",
        "--profile",
        "mirror:full",
        "--repository",
        "oci:app",
        "--output",
        out,
    ];
    args.extend(extra);
    cli(w).ok(&args).trim().to_string()
}

#[test]
fn tampering_is_refused_with_the_right_exit_code() {
    let (_t, w) = layout_setup(3, 2000);
    let s = cli(&w);
    s.ok(&[
        "key",
        "generate",
        "--output-key",
        "k.key",
        "--output-pub",
        "k.pub",
    ]);
    export_layout(&w, "signed", &["--sign-key", "k.key"]);
    export_layout(&w, "unsigned", &[]);
    s.ok(&["export", "verify", "signed", "--key", "k.pub"]);
    // Unsigned where a key is required.
    s.code(&["export", "verify", "unsigned", "--key", "k.pub"], 1)
        .assert_mentions("not signed");
    // A tampered manifest: the signature no longer covers it.
    sh(
        &w,
        "cp -r signed t1 && sed -i 's/2023-11-14T22:13:20Z/2024-01-01T00:00:00Z/' t1/manifest.json",
    );
    s.code(&["export", "verify", "t1", "--key", "k.pub"], 1)
        .assert_mentions("signature");
    // One bit flipped in a blob.
    sh(&w, "cp -r signed t2");
    let m: Value =
        serde_json::from_slice(&std::fs::read(w.join("t2/manifest.json")).unwrap()).unwrap();
    let blob = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "blob")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = std::fs::read(w.join("t2").join(&blob)).unwrap();
    bytes[7] ^= 0x01;
    std::fs::write(w.join("t2").join(&blob), bytes).unwrap();
    let run = s.code(
        &[
            "export", "verify", "t2", "--key", "k.pub", "--output", "json",
        ],
        1,
    );
    assert!(run.stdout.contains("digest-mismatch"), "{}", run.stdout);
    // A truncated archive and a hostile archive (symlink entry) are unusable input.
    export_layout(&w, "a.tar", &[]);
    let whole = std::fs::read(w.join("a.tar")).unwrap();
    std::fs::write(w.join("cut.tar"), &whole[..whole.len() / 2]).unwrap();
    // Cut at half, the archive ends either between entries (no
    // end-of-archive marker) or inside one (shorter than its header says):
    // which one depends on the export's sizes, both are a truncation.
    let cut = s.code(&["export", "verify", "cut.tar"], 2);
    assert!(
        cut.stderr.contains("end-of-archive marker") || cut.stderr.contains("archive is truncated"),
        "{}",
        cut.stderr
    );
    sh(
        &w,
        "mkdir h && cp signed/manifest.json h/ && ln -s /etc/passwd h/index.json && tar -C h -cf hostile.tar manifest.json index.json",
    );
    s.fails(&["export", "verify", "hostile.tar"], "link");
    s.fails(&["export", "verify", "h"], "symlink");
    // Path traversal, and bytes after the end of the archive (the bundle
    // reader's rules, shared).
    let py = r#"
import io, sys, tarfile
m = open("signed/manifest.json", "rb").read()
with tarfile.open("trav.tar", "w", format=tarfile.USTAR_FORMAT) as t:
    for name, data in [("manifest.json", m), ("../evil", b"x")]:
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
"#;
    std::fs::write(w.join("trav.py"), py).unwrap();
    sh(&w, "python3 trav.py");
    s.fails(&["export", "verify", "trav.tar"], "..");
    sh(&w, "cp a.tar trail.tar && printf garbage >> trail.tar");
    s.fails(
        &["export", "verify", "trail.tar"],
        "after the end of the archive",
    );
}

#[test]
fn parts_are_checked_on_reassembly_and_name_the_bad_part() {
    let (_t, w) = layout_setup(4, 6000);
    let s = cli(&w);
    export_layout(&w, "e.tar", &["--max-part-size", "8K"]);
    assert!(!w.join("e.tar").exists());
    let list: Value =
        serde_json::from_slice(&std::fs::read(w.join("e.tar.parts.json")).unwrap()).unwrap();
    let parts = list["parts"].as_array().unwrap().len();
    assert!(parts >= 3, "{parts} parts");
    s.ok(&["export", "verify", "e.tar.parts.json"]);
    s.ok(&["export", "verify", "e.tar"]);
    // Parts are plain byte ranges: cat reassembles an archive that verifies.
    sh(&w, "cat e.tar.0* > whole.tar");
    s.ok(&["export", "verify", "whole.tar"]);
    // Swapped parts.
    sh(
        &w,
        "mkdir sw && cp e.tar.* sw/ && mv sw/e.tar.001 sw/tmp && mv sw/e.tar.002 sw/e.tar.001 && mv sw/tmp sw/e.tar.002",
    );
    s.code(&["export", "verify", "sw/e.tar"], 1)
        .assert_mentions("swapped");
    // A truncated part.
    sh(
        &w,
        "mkdir tr && cp e.tar.* tr/ && truncate -s 100 tr/e.tar.002",
    );
    s.code(&["export", "verify", "tr/e.tar"], 1)
        .assert_mentions("part 2 of");
    // A missing part.
    sh(&w, "mkdir mi && cp e.tar.* mi/ && rm mi/e.tar.003");
    s.fails(&["export", "verify", "mi/e.tar"], "e.tar.003) is missing");
}

#[test]
fn age_encryption_interoperates_with_the_age_cli() {
    let (_t, w) = layout_setup(2, 3000);
    let s = cli(&w);
    s.ok(&[
        "key",
        "generate",
        "--algorithm",
        "ed25519",
        "--output-key",
        "k.key",
        "--output-pub",
        "k.pub",
    ]);
    sh(
        &w,
        "age-keygen -o id.txt 2>/dev/null && age-keygen -o other.txt 2>/dev/null",
    );
    sh(&w, "ssh-keygen -q -t ed25519 -N '' -f ssh_id");
    let recipient = String::from_utf8(sh(&w, "age-keygen -y id.txt").stdout).unwrap();
    let ssh_pub = std::fs::read_to_string(w.join("ssh_id.pub")).unwrap();
    let plain = export_layout(&w, "plain.tar.zst", &["--sign-key", "k.key"]);
    let enc = export_layout(
        &w,
        "enc.tar.zst",
        &[
            "--sign-key",
            "k.key",
            "--recipient",
            recipient.trim(),
            "--recipient",
            ssh_pub.trim(),
        ],
    );
    assert_eq!(plain, enc, "encryption must not change the export inside");
    // The age CLI decrypts ours; the plaintext is the unencrypted export, byte for byte.
    sh(
        &w,
        "age -d -i id.txt -o dec.tar.zst enc.tar.zst && cmp dec.tar.zst plain.tar.zst",
    );
    // We decrypt with an age identity or the ssh key, and check the signature after decryption.
    s.ok(&[
        "export",
        "verify",
        "enc.tar.zst",
        "--identity",
        "id.txt",
        "--key",
        "k.pub",
    ]);
    s.ok(&[
        "export",
        "verify",
        "enc.tar.zst",
        "--identity",
        "ssh_id",
        "--key",
        "k.pub",
    ]);
    s.fails(
        &["export", "verify", "enc.tar.zst", "--identity", "other.txt"],
        "encrypted to other recipients",
    );
    s.fails(&["export", "verify", "enc.tar.zst"], "--identity");
    // We read what the age CLI encrypted.
    sh(
        &w,
        &format!("age -r {} -o cli.age plain.tar.zst", recipient.trim()),
    );
    s.ok(&[
        "export",
        "verify",
        "cli.age",
        "--identity",
        "id.txt",
        "--key",
        "k.pub",
    ]);
    // Encrypted and split.
    export_layout(
        &w,
        "encp.tar",
        &["--recipient", recipient.trim(), "--max-part-size", "4K"],
    );
    s.ok(&["export", "verify", "encp.tar", "--identity", "id.txt"]);
    let imported = s.ok(&[
        "export",
        "import",
        "enc.tar.zst",
        "--identity",
        "id.txt",
        "--to",
        "oci:imp",
        "--key",
        "k.pub",
    ]);
    assert!(imported.contains("imported 1 repositories"), "{imported}");
    sh(&w, "skopeo copy --insecure-policy oci:imp/app:v1 oci:sk:v1");
}

fn tree_bytes(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, (Vec::new(), mode));
                stack.push(e.path());
            } else {
                out.insert(rel, (std::fs::read(e.path()).unwrap(), mode));
            }
        }
    }
    out
}

#[test]
fn two_runs_and_a_killed_then_resumed_run_are_byte_identical() {
    let (_t, w) = layout_setup(12, 1 << 20);
    let bin = env!("CARGO_BIN_EXE_stella");
    let base = "export run --profile mirror:full --repository oci:../app --no-progress";
    sh(
        &w,
        &format!(
            "mkdir r1 && cd r1 && export TZ=UTC LC_ALL=C SOURCE_DATE_EPOCH=1700000000 && {bin} {base} --output e.tar.zst && {bin} {base} --output d"
        ),
    );
    sh(
        &w,
        &format!(
            "mkdir r2 && cd r2 && umask 077 && export TZ=Asia/Kolkata LC_ALL=de_DE.UTF-8 SOURCE_DATE_EPOCH=1700000000 && {bin} {base} --output e.tar.zst && {bin} {base} --output d"
        ),
    );
    let a = std::fs::read(w.join("r1/e.tar.zst")).unwrap();
    assert_eq!(
        a,
        std::fs::read(w.join("r2/e.tar.zst")).unwrap(),
        "two runs differ"
    );
    assert_eq!(
        tree_bytes(&w.join("r1/d")),
        tree_bytes(&w.join("r2/d")),
        "directory outputs differ"
    );

    // Killed halfway (staging exists, output does not), then resumed.
    let mut killed = false;
    for attempt in 0..8 {
        let dir = w.join(format!("k{attempt}"));
        std::fs::create_dir(&dir).unwrap();
        let mut child = Command::new(bin)
            .args(base.split(' '))
            .args(["--output", "e.tar.zst"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .current_dir(&dir)
            .spawn()
            .unwrap();
        let staging = dir.join(".stella-export-e.tar.zst.staging/blobs/sha256");
        loop {
            let staged = std::fs::read_dir(&staging).map(|r| r.count()).unwrap_or(0);
            if staged >= 3 || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let _ = child.kill();
        child.wait().unwrap();
        if dir.join("e.tar.zst").exists() {
            continue; // finished before the kill: try again
        }
        killed = true;
        let out = Command::new(bin)
            .args(base.split(' '))
            .args(["--output", "e.tar.zst"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(dir.join("e.tar.zst")).unwrap(),
            a,
            "resumed run differs"
        );
        assert!(!dir.join(".stella-export-e.tar.zst.staging").exists());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        break;
    }
    assert!(killed, "never managed to kill the export halfway");
}

#[test]
fn json_raw_holds_one_canonical_document_per_evidence_item() {
    let (_t, w) = layout_setup(3, 500);
    let s = cli(&w);
    s.ok(&[
        "export",
        "run",
        "--profile",
        "json:raw",
        "--repository",
        "oci:app",
        "--output",
        "raw",
    ]);
    s.ok(&["export", "verify", "raw"]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(w.join("raw/index.json")).unwrap()).unwrap();
    let items = index["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for it in items {
        let path = it["path"].as_str().unwrap();
        let bytes = std::fs::read(w.join("raw").join(path)).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["bomFormat"], "CycloneDX");
        assert_eq!(
            stella_types::canonical_json::canonicalize(&v).unwrap(),
            bytes
        );
        assert_eq!(
            format!("evidence/{}.json", Digest::sha256_of(&bytes).hex()),
            path
        );
    }
    s.fails(
        &["export", "import", "raw", "--to", "oci:x"],
        "cannot be imported",
    );
}

/// A two-platform image index made by python (no stella code involved).
fn multi_platform_layout(dir: &Path) {
    let script = r#"
import hashlib, json, os, sys
d = sys.argv[1]
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b, mt):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"mediaType": mt, "digest": "sha256:" + h, "size": len(b)}
children = []
for arch in ["amd64", "arm64"]:
    cfg = put(json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode(),
              "application/vnd.oci.image.config.v1+json")
    layer = put(("layer " + arch).encode(), "application/vnd.oci.image.layer.v1.tar")
    m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": cfg, "layers": [layer]}).encode(), "application/vnd.oci.image.manifest.v1+json")
    m["platform"] = {"architecture": arch, "os": "linux"}
    children.append(m)
idx = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": children}).encode(), "application/vnd.oci.image.index.v1+json")
idx["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [idx]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn platforms_all_by_default_or_only_those_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    std::fs::create_dir(w.join("docker-config")).unwrap();
    multi_platform_layout(&w.join("multi"));
    let s = cli(w);
    s.ok(&[
        "export",
        "run",
        "--profile",
        "mirror:full",
        "--image",
        "oci:multi:v1",
        "--output",
        "all",
    ]);
    s.ok(&[
        "export",
        "run",
        "--profile",
        "mirror:full",
        "--image",
        "oci:multi:v1",
        "--output",
        "amd",
        "--include-platforms",
        "linux/amd64",
    ]);
    s.ok(&["export", "verify", "all"]);
    s.ok(&["export", "verify", "amd"]);
    let all = inspect(w, "all");
    let amd = inspect(w, "amd");
    assert_eq!(
        all["images"][0]["images"][0]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(
        amd["images"][0]["images"][0]["platforms"],
        serde_json::json!(["linux/amd64"])
    );
    assert_eq!(
        amd["selection"]["platforms"],
        serde_json::json!(["linux/amd64"])
    );
    // 1 index + 2 x (manifest, config, layer) vs 1 index + 1 x 3.
    let blobs = |m: &Value| {
        entries(m)
            .iter()
            .filter(|p| p.starts_with("blobs/"))
            .count()
    };
    assert_eq!(blobs(&all), 7);
    assert_eq!(blobs(&amd), 4);
    sh(
        w,
        "skopeo copy --all --insecure-policy oci:all:multi:v1 oci:sk:v1",
    );
    sh(
        w,
        "skopeo copy --override-arch amd64 --insecure-policy oci:amd:multi:v1 oci:sk2:v1",
    );
    // distribution refuses an index whose arm64 manifest is missing: the
    // import says so before any manifest or tag is pushed, and names the
    // way out; an OCI layout takes the subset as it is.
    let reg = DistributionRegistry::start_plain().unwrap();
    let to = format!("{}/sub", reg.host_port());
    let refused = s.fails(
        &["export", "import", "amd", "--to", &to],
        "made with --include-platforms linux/amd64",
    );
    assert!(
        refused.stderr.contains("(linux/arm64)") && refused.stderr.contains("oci:<dir>"),
        "{}",
        refused.stderr
    );
    let tags = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/sub/multi", reg.host_port()))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&tags.stdout).contains("v1"),
        "nothing may be tagged: {}",
        String::from_utf8_lossy(&tags.stdout)
    );
    s.ok(&["export", "import", "amd", "--to", "oci:imported"]);
    sh(
        w,
        "skopeo copy --override-arch amd64 --insecure-policy oci:imported/multi:v1 oci:sk3:v1",
    );
}

/// Keyless verification of manifest.json runs the sigstore engine of
/// `stella verify blob` on the exact manifest bytes. No keyless signature
/// over one of our manifests can be made offline (it needs Fulcio and
/// Rekor), so the success path is the engine's own (sigstore-conformance
/// tests); here: the flags, where the bundle comes from, and that a real
/// production bundle over another artifact is refused for this manifest.
#[test]
fn keyless_verification_binds_the_sigstore_bundle_to_manifest_json() {
    let (_t, w) = layout_setup(1, 100);
    let s = cli(&w);
    export_layout(&w, "e", &[]);
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/sigstore");
    let root = conf.join("trusted_root/production.json");
    let bundle = conf.join("test/assets/bundle-verify/happy-path-v0.3/bundle.sigstore.json");
    let identity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    let keyless = [
        "--trusted-root",
        root.to_str().unwrap(),
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
    ];
    let mut args = vec!["export", "verify", "e"];
    args.extend(keyless);
    s.code(&args, 1)
        .assert_mentions("no sigstore bundle over manifest.json");
    let mut with_bundle = args.clone();
    with_bundle.extend(["--sigstore-bundle", bundle.to_str().unwrap()]);
    s.code(&with_bundle, 1)
        .assert_mentions("keyless signature over manifest.json");
    // Inside the export, as manifest.sigstore.json (added after the export
    // was made: the checksum list does not cover it).
    std::fs::copy(&bundle, w.join("e/manifest.sigstore.json")).unwrap();
    let run = s.code(&args, 1);
    run.assert_mentions("keyless signature over manifest.json");
    assert!(!run.stdout.contains("checksum-list"), "{}", run.stdout);
    s.fails(
        &[
            "export",
            "verify",
            "e",
            "--trusted-root",
            root.to_str().unwrap(),
        ],
        "--certificate-identity",
    );
}
