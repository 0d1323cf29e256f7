//! The Sigstore public-good TUF root shipped in `data/public-good-root.json`:
//! it is the file `data/README.md` says it is (digest, version, expiry), and
//! python-tuf's Metadata API (a third-party oracle) accepts it as root
//! metadata signed to its own root threshold. With the
//! `embedded-public-good-root` feature the binary carries exactly these bytes.

use std::path::PathBuf;
use std::process::Command;

use stella_types::Digest;

/// SHA-256 of `sigstore/root-signing` `metadata/root_history/15.root.json`,
/// as recorded in `data/README.md`.
const RECORDED_SHA256: &str = "73747011d0857ada15479a16c4cae0f3ed03aac698b523b97e1de314ac9d9ca8";

fn data_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/public-good-root.json")
}

#[test]
fn embedded_root_is_the_recorded_file() {
    let bytes = std::fs::read(data_file()).unwrap();
    assert_eq!(Digest::sha256_of(&bytes).hex(), RECORDED_SHA256);
    let embedded = stella_trust::embedded_public_good_root();
    assert_eq!(
        embedded.is_some(),
        cfg!(feature = "embedded-public-good-root")
    );
    if let Some(embedded) = embedded {
        assert_eq!(embedded, bytes.as_slice());
    }
}

#[test]
fn embedded_root_is_self_signed_tuf_root_metadata() {
    let script = r#"
import sys
from tuf.api.metadata import Metadata, Root
m = Metadata[Root].from_bytes(open(sys.argv[1], "rb").read())
m.signed.verify_delegate("root", m.signed_bytes, m.signatures)
r = m.signed.get_verification_result("root", m.signed_bytes, m.signatures)
print(m.signed.version, m.signed.expires.strftime("%Y-%m-%dT%H:%M:%SZ"), len(r.signed), r.threshold)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(data_file())
        .output()
        .expect("python3 with the tuf package (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "python-tuf refused the root: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(fields[0], "15", "version");
    assert_eq!(fields[1], "2026-11-20T13:58:18Z", "expiry");
    let signed: u32 = fields[2].parse().unwrap();
    let threshold: u32 = fields[3].parse().unwrap();
    assert_eq!(threshold, 3);
    assert!(signed >= threshold, "{signed} of {threshold}");
}

#[test]
fn python_tuf_refuses_the_root_with_fewer_signatures_than_its_threshold() {
    // The oracle is not a rubber stamp: dropping signatures below the
    // threshold makes it refuse.
    let mut root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_file()).unwrap()).unwrap();
    let sigs = root["signatures"].as_array_mut().unwrap();
    sigs.truncate(2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two-sigs.json");
    std::fs::write(&path, serde_json::to_vec(&root).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys\nfrom tuf.api.metadata import Metadata, Root\n\
             m = Metadata[Root].from_bytes(open(sys.argv[1], 'rb').read())\n\
             m.signed.verify_delegate('root', m.signed_bytes, m.signatures)",
        )
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UnsignedMetadataError"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
