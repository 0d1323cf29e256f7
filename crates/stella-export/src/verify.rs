//! Verifying an export offline in one streaming pass: `manifest.json` is
//! read first and bounds the rest; every file is hashed as it streams and
//! compared with the manifest; the checksum list and the provenance
//! subjects must agree with what was read; the DSSE signature over the
//! manifest is checked against the caller's keys (after decryption, for an
//! encrypted export); and a mirror export's layout must be whole: every
//! manifest's children present (in a delta: present or in the state its
//! base pinned). Every problem is reported, not just the first.
//!
//! Unusable input (hostile archive, not an export, missing part, no or
//! wrong identity) is an error; a readable export that does not verify is
//! a report with failures.
//!
//! What this module does not do: load keys (the caller passes a
//! [`ManifestSignatureVerifier`]), or touch a registry.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::Path;

use serde::Serialize;
use stella_bundle::archive::ArchiveReader;
use stella_bundle::format::ManifestSignatureVerifier;
use stella_types::digest::{DigestAlgorithm, Hasher};
use stella_types::{Digest, Manifest};

use crate::crypt::Identities;
use crate::error::{ExportError, codes};
use crate::format::*;
use crate::read::{Container, ExportStream, StreamEntry, open_export};

/// Total bytes of manifests kept in memory for the layout check.
const MAX_MANIFEST_BYTES_TOTAL: u64 = 256 * 1024 * 1024;

/// Checks a detached sigstore bundle over `manifest.json` (keyless:
/// Fulcio certificate, transparency log, identity policy). The library
/// does not know sigstore; the caller plugs its verifier in.
pub trait DetachedSignatureCheck {
    /// Verifies `bundle` over the exact `manifest` bytes; `Ok(signer)`.
    fn verify(&self, manifest: &[u8], bundle: &[u8]) -> Result<String, String>;
}

/// How to verify.
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// Trusted keys for the manifest signature (`None`: none given).
    pub verifier: Option<&'a dyn ManifestSignatureVerifier>,
    /// Identities to decrypt an encrypted export.
    pub identities: Option<&'a Identities>,
    /// Keyless verification of a sigstore bundle over `manifest.json`.
    pub keyless: Option<&'a dyn DetachedSignatureCheck>,
    /// The sigstore bundle, when given beside the export rather than inside it.
    pub sigstore_bundle: Option<&'a [u8]>,
}

/// One verification failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

/// What verification found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub verified: bool,
    pub manifest_digest: Digest,
    pub profile: Profile,
    pub format_version: u32,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<Digest>,
    pub inputs_hash: Digest,
    pub container: Container,
    /// `verified`, `failed`, `absent` or `not-checked` (a DSSE signature
    /// when only keyless verification was asked for).
    pub signature: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    pub repositories: usize,
    pub files: usize,
    pub bytes: u64,
    pub failures: Vec<Failure>,
}

/// What one pass read.
struct Pass {
    hashes: BTreeMap<String, (u64, String)>,
    signature: Option<Vec<u8>>,
    checksums: Option<Vec<u8>>,
    provenance: Option<Vec<u8>>,
    sigstore: Option<Vec<u8>>,
    manifests: BTreeMap<Digest, Vec<u8>>,
    failures: Vec<Failure>,
}

fn fail(failures: &mut Vec<Failure>, code: &'static str, message: impl Into<String>) {
    failures.push(Failure {
        code,
        message: message.into(),
    });
}

/// Reads `manifest.json`, which must come first.
pub fn read_head(stream: &mut ExportStream) -> Result<(ExportManifest, Vec<u8>), ExportError> {
    match stream.next_entry()? {
        Some(e) if e.path == MANIFEST_NAME && !e.is_dir => {
            let bytes = stream.read_small(&e, MAX_HEAD_FILE_BYTES)?;
            let m = ExportManifest::parse(&bytes)?;
            stream.bound_by(&m, bytes.len() as u64);
            Ok((m, bytes))
        }
        _ => Err(ExportError::unusable(
            codes::NOT_AN_EXPORT,
            format!("the export does not start with {MANIFEST_NAME}: not a Stella export"),
        )),
    }
}

fn allowed_dirs(profile: Profile) -> &'static [&'static str] {
    if profile.is_mirror() {
        &[BLOBS_DIR, BLOBS_SHA256_DIR]
    } else {
        &[EVIDENCE_DIR]
    }
}

/// Hashes an entry's data, keeping it if `keep` (up to `cap` bytes).
fn hash_entry(
    data: &mut dyn Read,
    e: &StreamEntry,
    keep: Option<u64>,
) -> Result<(u64, String, Option<Vec<u8>>), ExportError> {
    let mut h = Hasher::new(DigestAlgorithm::Sha256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut kept = keep.filter(|cap| e.size <= *cap).map(|_| Vec::new());
    let mut n_total = 0u64;
    loop {
        let n = data
            .read(&mut buf)
            .map_err(|err| ArchiveReader::io_error(&e.path, err))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or(&[]);
        h.update(chunk);
        if let Some(k) = kept.as_mut() {
            k.extend_from_slice(chunk);
        }
        n_total += n as u64;
    }
    if n_total != e.size {
        return Err(ExportError::unusable(
            codes::NOT_AN_EXPORT,
            format!("{} changed size while being read", e.path),
        ));
    }
    Ok((n_total, h.finish().hex().to_string(), kept))
}

fn read_pass(stream: &mut ExportStream, m: &ExportManifest) -> Result<Pass, ExportError> {
    let mut p = Pass {
        hashes: BTreeMap::new(),
        signature: None,
        checksums: None,
        provenance: None,
        sigstore: None,
        manifests: BTreeMap::new(),
        failures: Vec::new(),
    };
    let manifest_items: BTreeSet<String> = m
        .images
        .iter()
        .flat_map(|r| r.content.iter())
        .filter(|c| c.kind == ContentKind::Manifest)
        .map(|c| blob_path(&c.digest))
        .collect();
    let mut seen = BTreeSet::new();
    let mut kept_bytes = 0u64;
    while let Some(e) = stream.next_entry()? {
        if !seen.insert(e.path.clone()) || e.path == MANIFEST_NAME {
            return Err(ExportError::unusable(
                codes::NOT_AN_EXPORT,
                format!("{} appears twice", e.path),
            ));
        }
        if e.is_dir {
            if !allowed_dirs(m.profile).contains(&e.path.as_str()) {
                return Err(ExportError::unusable(
                    codes::NOT_AN_EXPORT,
                    format!("unexpected directory {}", e.path),
                ));
            }
            continue;
        }
        match e.path.as_str() {
            SIGNATURE_NAME => p.signature = Some(stream.read_small(&e, MAX_SIGNATURE_BYTES)?),
            CHECKSUMS_NAME => p.checksums = Some(stream.read_small(&e, MAX_HEAD_FILE_BYTES)?),
            PROVENANCE_NAME => p.provenance = Some(stream.read_small(&e, MAX_HEAD_FILE_BYTES)?),
            SIGSTORE_NAME => p.sigstore = Some(stream.read_small(&e, MAX_SIGNATURE_BYTES)?),
            path => {
                if check_entry_path(path, m.profile).is_err() {
                    return Err(ExportError::unusable(
                        codes::NOT_AN_EXPORT,
                        format!(
                            "{path:?} is not a file a {} export holds",
                            m.profile.as_str()
                        ),
                    ));
                }
                let keep = (manifest_items.contains(path) && kept_bytes < MAX_MANIFEST_BYTES_TOTAL)
                    .then_some(stella_types::limits::MAX_MANIFEST_BYTES);
                let (size, hex, kept) = hash_entry(&mut stream.data(), &e, keep)?;
                if let Some(bytes) = kept
                    && let Ok(d) = Digest::parse(&format!("sha256:{hex}"))
                {
                    kept_bytes += bytes.len() as u64;
                    p.manifests.insert(d, bytes);
                }
                p.hashes.insert(e.path.clone(), (size, hex));
            }
        }
    }
    Ok(p)
}

/// Compares the files read with the manifest's entries.
fn check_entries(m: &ExportManifest, p: &mut Pass) {
    for e in &m.entries {
        match p.hashes.get(&e.path) {
            None => fail(
                &mut p.failures,
                codes::MISSING_FILE,
                format!("{} is listed in the manifest but absent", e.path),
            ),
            Some((size, _)) if *size != e.size => fail(
                &mut p.failures,
                codes::SIZE_MISMATCH,
                format!("{} is {size} bytes, the manifest says {}", e.path, e.size),
            ),
            Some((_, hex)) if *hex != e.sha256 => fail(
                &mut p.failures,
                codes::DIGEST_MISMATCH,
                format!(
                    "{} has sha256 {hex}, the manifest says {}",
                    e.path, e.sha256
                ),
            ),
            Some(_) => {}
        }
    }
    for path in p.hashes.keys() {
        if m.entry(path).is_none() {
            p.failures.push(Failure {
                code: codes::EXTRA_FILE,
                message: format!("{path} is not listed in the manifest"),
            });
        }
    }
}

fn check_checksums(p: &mut Pass, manifest_hex: &str) {
    let Some(bytes) = p.checksums.clone() else {
        fail(
            &mut p.failures,
            codes::CHECKSUMS,
            format!("{CHECKSUMS_NAME} is absent"),
        );
        return;
    };
    let listed = match parse_checksums(&bytes) {
        Ok(l) => l,
        Err(e) => {
            fail(&mut p.failures, codes::CHECKSUMS, e.to_string());
            return;
        }
    };
    let mut actual: BTreeMap<String, String> = p
        .hashes
        .iter()
        .map(|(k, (_, h))| (k.clone(), h.clone()))
        .collect();
    actual.insert(MANIFEST_NAME.into(), manifest_hex.to_string());
    for (name, bytes) in [
        (SIGNATURE_NAME, &p.signature),
        (PROVENANCE_NAME, &p.provenance),
    ] {
        if let Some(b) = bytes {
            actual.insert(name.into(), Digest::sha256_of(b).hex().to_string());
        }
    }
    // A detached keyless signature may be added after the export was made.
    let listed: BTreeMap<String, String> = listed
        .into_iter()
        .filter(|(name, _)| name != SIGSTORE_NAME)
        .collect();
    if listed != actual {
        let differ: Vec<&String> = actual
            .keys()
            .chain(listed.keys())
            .filter(|k| listed.get(*k) != actual.get(*k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .take(5)
            .collect();
        fail(
            &mut p.failures,
            codes::CHECKSUMS,
            format!("{CHECKSUMS_NAME} disagrees with the files about {differ:?}"),
        );
    }
}

fn check_provenance(p: &mut Pass, manifest_hex: &str) {
    let Some(bytes) = p.provenance.clone() else {
        fail(
            &mut p.failures,
            codes::PROVENANCE,
            format!("{PROVENANCE_NAME} is absent"),
        );
        return;
    };
    let subjects = match provenance_subjects(&bytes) {
        Ok(s) => s,
        Err(e) => {
            fail(&mut p.failures, codes::PROVENANCE, e.to_string());
            return;
        }
    };
    let mut actual: Vec<(String, String)> = p
        .hashes
        .iter()
        .map(|(k, (_, h))| (k.clone(), h.clone()))
        .collect();
    actual.push((MANIFEST_NAME.into(), manifest_hex.to_string()));
    actual.sort();
    if subjects != actual {
        fail(
            &mut p.failures,
            codes::PROVENANCE,
            format!("the subjects of {PROVENANCE_NAME} are not the export's files"),
        );
    }
}

/// Every manifest's config, layers and children must be in the export (a
/// delta: or in the state of its base, which the delta does not hold).
fn check_layout(m: &ExportManifest, p: &mut Pass) {
    if !m.profile.is_mirror() {
        return;
    }
    let held: BTreeSet<Digest> = m
        .entries
        .iter()
        .filter_map(|e| e.path.strip_prefix(BLOBS_SHA256_DIR))
        .filter_map(|h| Digest::parse(&format!("sha256:{h}")).ok())
        .collect();
    let state = m.state_digests();
    for c in &state {
        if m.profile == Profile::MirrorFull && !held.contains(c) {
            fail(
                &mut p.failures,
                codes::LAYOUT,
                format!("{c} belongs to the exported state but is not in the export"),
            );
        }
    }
    for d in &held {
        if !state.contains(d) {
            fail(
                &mut p.failures,
                codes::LAYOUT,
                format!("{d} is in the export but in no repository's state"),
            );
        }
    }
    let filtered = m.selection.platforms.is_some();
    let mut problems = Vec::new();
    for (d, bytes) in &p.manifests {
        let Ok(parsed) = Manifest::parse(bytes, None) else {
            problems.push(format!("manifest {d} does not parse"));
            continue;
        };
        let is_index = matches!(parsed, Manifest::Index(_));
        for c in parsed.children() {
            let present = held.contains(&c.digest) || state.contains(&c.digest);
            if !(present || is_index && filtered) {
                problems.push(format!(
                    "manifest {d} needs {} which the export lacks",
                    c.digest
                ));
            }
        }
    }
    for pr in problems {
        fail(&mut p.failures, codes::LAYOUT, pr);
    }
}

fn check_signature(
    p: &mut Pass,
    manifest_bytes: &[u8],
    opts: &VerifyOptions<'_>,
) -> (&'static str, Option<String>) {
    match (&p.signature, opts.verifier) {
        (None, None) => ("absent", None),
        (None, Some(_)) => {
            fail(
                &mut p.failures,
                codes::UNSIGNED,
                format!(
                    "the export is not signed ({SIGNATURE_NAME} is absent) but a key was given"
                ),
            );
            ("absent", None)
        }
        (Some(_), None) if opts.keyless.is_some() => ("not-checked", None),
        (Some(_), None) => {
            fail(
                &mut p.failures,
                codes::SIGNATURE,
                "the export is signed but no key was given to check the signature",
            );
            ("failed", None)
        }
        (Some(sig), Some(v)) => match verify_manifest_signature(sig, manifest_bytes, v) {
            Ok(signer) => ("verified", Some(signer)),
            Err(e) => {
                fail(&mut p.failures, codes::SIGNATURE, e.to_string());
                ("failed", None)
            }
        },
    }
}

/// The keyless check, when asked for: a sigstore bundle over
/// `manifest.json` (given beside the export, or `manifest.sigstore.json`
/// inside it) must verify.
fn check_keyless(
    p: &mut Pass,
    manifest_bytes: &[u8],
    opts: &VerifyOptions<'_>,
) -> Option<(&'static str, Option<String>)> {
    let check = opts.keyless?;
    let bundle = opts
        .sigstore_bundle
        .map(<[u8]>::to_vec)
        .or_else(|| p.sigstore.clone());
    let Some(bundle) = bundle else {
        fail(
            &mut p.failures,
            codes::UNSIGNED,
            format!(
                "keyless verification was asked for but there is no sigstore bundle over {MANIFEST_NAME} ({SIGSTORE_NAME})"
            ),
        );
        return Some(("absent", None));
    };
    match check.verify(manifest_bytes, &bundle) {
        Ok(who) => Some(("verified", Some(who))),
        Err(e) => {
            fail(
                &mut p.failures,
                codes::SIGNATURE,
                format!("keyless signature over {MANIFEST_NAME}: {e}"),
            );
            Some(("failed", None))
        }
    }
}

/// Verifies the export at `path`.
pub fn verify_export(path: &Path, opts: &VerifyOptions<'_>) -> Result<VerifyReport, ExportError> {
    let mut stream = open_export(path, opts.identities)?;
    let (m, manifest_bytes) = read_head(&mut stream)?;
    let mut p = read_pass(&mut stream, &m)?;
    let container = stream.container.clone();
    stream.finish()?;
    let digest = manifest_digest(&manifest_bytes);
    check_entries(&m, &mut p);
    check_checksums(&mut p, digest.hex());
    check_provenance(&mut p, digest.hex());
    check_layout(&m, &mut p);
    match inputs_hash(m.profile, &m.selection, m.base.as_ref(), &m.images) {
        Ok(h) if h == m.inputs_hash => {}
        _ => fail(
            &mut p.failures,
            codes::DIGEST_MISMATCH,
            "inputsHash does not match the profile, selection, base and images",
        ),
    }
    let (mut signature, mut signer) = check_signature(&mut p, &manifest_bytes, opts);
    let keyless = check_keyless(&mut p, &manifest_bytes, opts);
    if let Some((status, who)) = keyless {
        if status == "failed" || signature != "verified" {
            signature = status;
        }
        signer = match (signer, who) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
    }
    Ok(VerifyReport {
        verified: p.failures.is_empty(),
        manifest_digest: digest,
        profile: m.profile,
        format_version: m.format_version,
        created: m.created.clone(),
        base: m.base.clone(),
        inputs_hash: m.inputs_hash.clone(),
        container,
        signature,
        signer,
        repositories: m.images.len(),
        files: p.hashes.len(),
        bytes: p.hashes.values().map(|(s, _)| *s).sum(),
        failures: p.failures,
    })
}

/// Drains what is left of a reader (so an archive moves on).
pub fn drain(r: &mut dyn Read) -> io::Result<u64> {
    io::copy(r, &mut io::sink())
}
