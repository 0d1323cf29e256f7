//! `stella verify blob`: verifies a sigstore bundle for a file or a digest
//! against a trusted_root.json, fully offline, requiring the transparency-log
//! entries and RFC 3161 timestamps `--tlog-threshold` / `--timestamp-threshold`
//! say (stella-sigstore does the work; this module reads inputs, builds the
//! policy, prints the result and words library errors in flag terms).
//! The trusted root is `--trusted-root`, else the one `stella trust update`
//! cached (stella-trust picks it; its origin and age are reported).
//! Exit codes: 0 verified, 1 did not verify, 2 unusable input.

use std::path::Path;

use anyhow::Context as _;
use stella_sigstore::{
    Artifact, Bundle, HashAlg, IdentityPolicy, Policy, PublicKey, SignerKind, SigstoreError,
    TrustedRoot, Verifier,
};
use stella_types::digest::{DigestAlgorithm, Hasher};
use stella_types::limits;

use super::trust::{matcher, read_capped};
use crate::cli::{TextOrJson, VerifyBlobArgs};
use crate::exit::Outcome;

/// Largest artifact file read into memory; larger files are verified by
/// their streamed SHA-256 (fine for ECDSA P-256 and RSA-SHA256 message
/// signatures and DSSE; Ed25519 message signatures need the bytes).
const MAX_ARTIFACT_BYTES: u64 = 64 * 1024 * 1024;

/// SHA-256 of a file, hashed as it streams (never held whole).
fn sha256_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let cannot = || format!("cannot read artifact {}", path.display());
    let mut file = std::fs::File::open(path).with_context(cannot)?;
    let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).with_context(cannot)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    hex_bytes(hasher.finish().hex()).context("internal error: digest is not hex")
}

/// Lowercase or uppercase hex to bytes.
fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// `sha256:<hex>` (also sha384/sha512) when it is not an existing file.
fn parse_digest(s: &str) -> Option<(HashAlg, Vec<u8>)> {
    let (alg, hex) = s.split_once(':')?;
    let alg = match alg {
        "sha256" => HashAlg::Sha256,
        "sha384" => HashAlg::Sha384,
        "sha512" => HashAlg::Sha512,
        _ => return None,
    };
    if hex.len() != alg.output_len() * 2 {
        return None;
    }
    Some((alg, hex_bytes(hex)?))
}

pub fn run(args: VerifyBlobArgs) -> anyhow::Result<Outcome> {
    let chosen = stella_trust::choose_trusted_root(
        args.keyless.trusted_root.as_deref(),
        crate::cmd::trust::unix_now(),
    )
    .map_err(crate::cmd::trust::worded)?;
    let origin = chosen.origin;
    let root = TrustedRoot::from_json(&chosen.json).context("trusted root is unusable")?;

    let policy = match &args.key {
        Some(k) => {
            if args.keyless.certificate_identity.is_some()
                || args.keyless.certificate_identity_regexp.is_some()
            {
                anyhow::bail!("--key cannot be combined with --certificate-identity");
            }
            let pem = read_capped(k, 1024 * 1024, "public key")?;
            let pem = String::from_utf8(pem).context("public key is not PEM text")?;
            Policy::Key(PublicKey::from_pem(&pem).context("public key is unusable")?)
        }
        None => Policy::Identity(IdentityPolicy {
            identity: matcher(
                &args.keyless.certificate_identity,
                &args.keyless.certificate_identity_regexp,
                "identity",
            )?,
            issuer: matcher(
                &args.keyless.certificate_oidc_issuer,
                &args.keyless.certificate_oidc_issuer_regexp,
                "oidc-issuer",
            )?,
        }),
    };

    let bundle_bytes = read_capped(&args.bundle, limits::MAX_JSON_DOCUMENT_BYTES, "bundle")?;

    let is_file = Path::new(&args.artifact).exists();
    let digest = if is_file {
        None
    } else {
        parse_digest(&args.artifact)
    };
    let file_bytes;
    let streamed;
    let artifact = match &digest {
        Some((alg, d)) => Artifact::Digest {
            algorithm: *alg,
            digest: d,
        },
        None => {
            let path = Path::new(&args.artifact);
            let size = std::fs::metadata(path)
                .with_context(|| format!("cannot read artifact {}", path.display()))?
                .len();
            if size <= MAX_ARTIFACT_BYTES {
                file_bytes = read_capped(path, MAX_ARTIFACT_BYTES, "artifact")?;
                Artifact::Bytes(&file_bytes)
            } else {
                // Larger files are hashed as they stream, never held whole.
                streamed = sha256_file(path)?;
                Artifact::Digest {
                    algorithm: HashAlg::Sha256,
                    digest: &streamed,
                }
            }
        }
    };

    let result = Bundle::parse(&bundle_bytes)
        .map_err(|e| e.context("bundle"))
        .and_then(|b| {
            Verifier::new(root, super::trust::thresholds(&args.keyless).config())
                .verify(&b, artifact, &policy)
        });
    match result {
        Ok(r) => {
            match args.output {
                TextOrJson::Json => {
                    let v =
                        serde_json::json!({"verified": true, "result": r, "trustedRoot": origin});
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                TextOrJson::Text => {
                    println!("Verified OK");
                    if let stella_trust::TrustedRootOrigin::TufCache { .. } = origin {
                        println!("  {}", origin.describe());
                    }
                    if let Some(id) = &r.identity {
                        println!("  identity: {id}");
                    }
                    if let Some(iss) = &r.issuer {
                        println!("  issuer:   {iss}");
                    }
                    println!("  key:      sha256:{}", r.key_sha256);
                    for t in &r.verified_times {
                        println!("  time:     {} ({})", t.unix, t.source);
                    }
                    for e in &r.tlog_entries {
                        println!(
                            "  tlog:     {} index {} ({})",
                            e.log_url, e.log_index, e.kind
                        );
                    }
                }
            }
            Ok(Outcome::Success)
        }
        Err(e @ SigstoreError::Unusable(_)) => Err(anyhow::Error::new(e)),
        Err(e) => {
            if args.output == TextOrJson::Json {
                let v = serde_json::json!({"verified": false, "reason": format!("{e}{}", hint(&e)), "trustedRoot": origin});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if let stella_trust::TrustedRootOrigin::TufCache { .. } = origin {
                eprintln!("stella: {}", origin.describe());
            }
            eprintln!("stella: verification failed: {e}{}", hint(&e));
            Ok(Outcome::VerificationFailed)
        }
    }
}

/// How to ask for the other kind of signer, in this command's words.
fn hint(e: &SigstoreError) -> &'static str {
    match e {
        SigstoreError::WrongSignerKind {
            found: SignerKind::ManagedKey,
            ..
        } => "; verify it with --key <public-key>",
        SigstoreError::WrongSignerKind {
            found: SignerKind::Certificate,
            ..
        } => {
            "; verify it with --certificate-identity and --certificate-oidc-issuer instead of --key"
        }
        _ => "",
    }
}
