//! `--tlog-threshold` / `--timestamp-threshold` end to end through the
//! binary, on a bundle with an RFC 3161 timestamp and no transparency-log
//! entry. Everything but Stella is openssl: the timestamp authority's CA and
//! certificate (`openssl req` / `x509`), the signing key and signature
//! (`openssl dgst -sign`), the timestamp (`openssl ts -query` / `-reply`) and
//! base64 (`openssl base64`). The bundle is a managed-key bundle
//! (`verificationMaterial.publicKey`, verified with `--key`) because a
//! keyless one would also need a CT log to issue its SCT; the keyless
//! timestamp-only path is covered in stella-sigstore's
//! `tests/timestamp_only.rs`.
//!
//! `openssl ts -reply` stamps the current time; the certificates are valid
//! around it (nothing asserts on timing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// base64 of a file, by openssl.
fn b64_file(dir: &Path, file: &str) -> String {
    String::from_utf8(openssl(dir, &["base64", "-A", "-in", file]))
        .unwrap()
        .trim()
        .to_string()
}

/// DER of a PEM certificate file, base64.
fn cert_b64(dir: &Path, pem: &str) -> String {
    let der = format!("{pem}.der");
    openssl(dir, &["x509", "-in", pem, "-outform", "DER", "-out", &der]);
    b64_file(dir, &der)
}

/// A timestamp authority named `name`: `<name>-ca.pem`, `<name>.pem`,
/// `<name>.key` and `<name>.cnf` in `dir`.
fn make_tsa(dir: &Path, name: &str) {
    let ca = format!("{name}-ca");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "3650",
            "-subj",
            &format!("/O=Stella test/CN={name} CA"),
            "-addext",
            "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/O=Stella test/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.serial")), "01\n").unwrap();
    std::fs::write(
        dir.join(format!("{name}.cnf")),
        format!(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\nserial = {name}.serial\ncrypto_device = builtin\n\
             signer_digest = sha256\ndefault_policy = 1.3.6.1.4.1.57264.2\ndigests = sha256\n\
             accuracy = secs:1\nordering = no\ntsa_name = no\ness_cert_id_chain = no\n\
             ess_cert_id_alg = sha256\n"
        ),
    )
    .unwrap();
}

/// A TimeStampResp from TSA `name` over the file `data`, base64.
fn timestamp(dir: &Path, name: &str, data: &str) -> String {
    let (req, resp) = (format!("{name}.tsq"), format!("{name}.tsr"));
    openssl(
        dir,
        &[
            "ts",
            "-query",
            "-data",
            data,
            "-sha256",
            "-cert",
            "-no_nonce",
            "-out",
            &req,
        ],
    );
    openssl(
        dir,
        &[
            "ts",
            "-reply",
            "-config",
            &format!("{name}.cnf"),
            "-queryfile",
            &req,
            "-signer",
            &format!("{name}.pem"),
            "-inkey",
            &format!("{name}.key"),
            "-chain",
            &format!("{name}-ca.pem"),
            "-out",
            &resp,
        ],
    );
    b64_file(dir, &resp)
}

/// The trusted root: the one TSA `name`, no log, no CA.
fn trusted_root(dir: &Path, name: &str) -> Value {
    json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [],
        "ctlogs": [],
        "timestampAuthorities": [{
            "subject": {"organization": "Stella test", "commonName": name},
            "uri": "https://tsa.example.test",
            "certChain": {"certificates": [
                {"rawBytes": cert_b64(dir, &format!("{name}.pem"))},
                {"rawBytes": cert_b64(dir, &format!("{name}-ca.pem"))}
            ]},
            "validFor": {"start": "2024-01-01T00:00:00Z"}
        }]
    })
}

/// A managed-key v0.3 bundle over `artifact.txt` with these timestamps.
fn bundle(dir: &Path, timestamps: &[String]) -> Value {
    std::fs::write(
        dir.join("digest.bin"),
        openssl(dir, &["dgst", "-sha256", "-binary", "artifact.txt"]),
    )
    .unwrap();
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "publicKey": {"hint": "release key"},
            "timestampVerificationData": {
                "rfc3161Timestamps": timestamps.iter().map(|t| json!({"signedTimestamp": t})).collect::<Vec<_>>()
            }
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64_file(dir, "digest.bin")},
            "signature": b64_file(dir, "sig.bin")
        }
    })
}

struct Run {
    code: i32,
    out: String,
}

fn verify(dir: &Path, bundle: &Value, extra: &[&str]) -> Run {
    std::fs::write(dir.join("b.json"), serde_json::to_vec(bundle).unwrap()).unwrap();
    let empty_cache = dir.join("no-cache");
    let out = Command::new(env!("CARGO_BIN_EXE_stella"))
        .args([
            "verify",
            "blob",
            "--bundle",
            "b.json",
            "--trusted-root",
            "trusted_root.json",
            "--key",
            "release.pub",
        ])
        .args(extra)
        .arg("artifact.txt")
        .current_dir(dir)
        .env("STELLA_CACHE_DIR", &empty_cache)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A signed artifact, a trusted TSA ("tsa") and an untrusted one ("rogue").
fn setup(dir: &Path) {
    std::fs::write(dir.join("artifact.txt"), b"private release artifact\n").unwrap();
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "release.key",
        ],
    );
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            "release.key",
            "-pubout",
            "-out",
            "release.pub",
        ],
    );
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "release.key",
            "-out",
            "sig.bin",
            "artifact.txt",
        ],
    );
    make_tsa(dir, "tsa");
    make_tsa(dir, "rogue");
    std::fs::write(
        dir.join("trusted_root.json"),
        serde_json::to_vec(&trusted_root(dir, "tsa")).unwrap(),
    )
    .unwrap();
}

#[test]
fn timestamp_only_bundle_through_the_cli() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path();
    setup(dir);
    let stamped = bundle(dir, &[timestamp(dir, "tsa", "sig.bin")]);

    // Default: a transparency-log entry is required.
    let r = verify(dir, &stamped, &[]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out
            .contains("0 verified transparency-log entries, 1 required"),
        "{}",
        r.out
    );

    // --tlog-threshold 0 (with or without --timestamp-threshold 1): verified,
    // the time from the timestamp.
    for extra in [
        &["--tlog-threshold", "0"][..],
        &["--tlog-threshold", "0", "--timestamp-threshold", "1"],
    ] {
        let r = verify(dir, &stamped, &[extra, &["--output", "json"]].concat());
        assert_eq!(r.code, 0, "{extra:?}: {}", r.out);
        let v: Value = serde_json::from_str(&r.out).unwrap();
        assert_eq!(v["verified"], true);
        assert_eq!(v["result"]["tlog_entries"], json!([]), "{v}");
        assert_eq!(v["result"]["verified_times"][0]["source"], "tsa", "{v}");
    }
    let r = verify(
        dir,
        &stamped,
        &["--tlog-threshold", "0", "--timestamp-threshold", "2"],
    );
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("1 verified RFC 3161 timestamps, 2 required"),
        "{}",
        r.out
    );

    // Fail closed: no timestamp at all.
    let bare = bundle(dir, &[]);
    let r = verify(dir, &bare, &["--tlog-threshold", "0"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("0 verified RFC 3161 timestamps, 1 required"),
        "{}",
        r.out
    );

    // A timestamp from a TSA the trusted root does not name.
    let rogue = bundle(dir, &[timestamp(dir, "rogue", "sig.bin")]);
    let r = verify(dir, &rogue, &["--tlog-threshold", "0"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("does not chain to a trusted root"),
        "{}",
        r.out
    );

    // A trusted timestamp over another signature.
    std::fs::write(dir.join("other.bin"), b"another signature").unwrap();
    let other = bundle(dir, &[timestamp(dir, "tsa", "other.bin")]);
    let r = verify(dir, &other, &["--tlog-threshold", "0"]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(
        r.out.contains("message imprint does not match"),
        "{}",
        r.out
    );
}
