//! The verifier: runs the sigstore client-spec checks in a fixed order
//! (sigstore-go order: transparency log → observer time → certificate →
//! SCT → signature → statement subject → identity policy) and fails closed.
//!
//! Two-stage configuration: a [`Verifier`] holds the trusted root and what
//! evidence is required ([`VerifierConfig`]); each call supplies the artifact
//! and the [`Policy`]. Offline only: never fetches anything.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;
use stella_crypto::x509::{self, Certificate, ChainOptions};
use stella_crypto::{CryptoError, KeyKind, PublicKey};
use stella_tlog::note::{Note, NoteVerifier};
use stella_tlog::{Checkpoint, leaf_hash, verify_inclusion};
use stella_types::digest::sha256_bytes;

use crate::bundle::{Bundle, Content, SignerMaterial, TlogEntry};
use crate::error::{SignerKind, SigstoreError};
use crate::fulcio;
use crate::hash::HashAlg;
use crate::json;
use crate::sct;
use crate::trust_root::{Authority, LogKey, TrustedRoot};
use crate::tsa;

pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// What was signed.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    /// The artifact bytes.
    Bytes(&'a [u8]),
    /// Only the artifact's digest (e.g. `sha256:<hex>`).
    Digest {
        algorithm: HashAlg,
        digest: &'a [u8],
    },
}

/// Exact string or regular expression.
#[derive(Debug, Clone)]
pub enum Matcher {
    Exact(String),
    Regex(regex::Regex),
}

impl Matcher {
    pub fn regex(re: &str) -> Result<Matcher, SigstoreError> {
        regex::Regex::new(re)
            .map(Matcher::Regex)
            .map_err(|e| SigstoreError::unusable(format!("invalid regular expression {re:?}: {e}")))
    }
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(e) => e == s,
            Matcher::Regex(r) => r.is_match(s),
        }
    }
    fn describe(&self) -> String {
        match self {
            Matcher::Exact(e) => format!("{e:?}"),
            Matcher::Regex(r) => format!("/{}/", r.as_str()),
        }
    }
}

/// Who must have signed (keyless): SAN and OIDC issuer of the Fulcio certificate.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    pub identity: Matcher,
    pub issuer: Matcher,
}

#[derive(Debug, Clone)]
pub enum Policy {
    /// Keyless: Fulcio certificate with this identity.
    Identity(IdentityPolicy),
    /// A managed key: the bundle must carry `publicKey` and verify with this key.
    Key(PublicKey),
}

/// Evidence the verifier requires. The default is the public-good
/// deployment's: at least one transparency-log entry, no RFC 3161 timestamp
/// required, an embedded SCT.
///
/// Fail closed: with `tlog_threshold` 0 (bundles that carry only a signed
/// timestamp, as GitHub makes for private repositories) at least one RFC
/// 3161 timestamp must verify against the trusted root's timestamp
/// authorities, whatever `timestamp_threshold` says.
#[derive(Debug, Clone, Copy)]
pub struct VerifierConfig {
    /// Minimum number of verified transparency-log entries.
    pub tlog_threshold: usize,
    /// Minimum number of verified RFC 3161 timestamps.
    pub timestamp_threshold: usize,
    /// Require an embedded SCT in keyless certificates.
    pub require_sct: bool,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            tlog_threshold: 1,
            timestamp_threshold: 0,
            require_sct: true,
        }
    }
}

impl VerifierConfig {
    /// The number of verified RFC 3161 timestamps actually required: the
    /// configured threshold, but at least one when no log entry is.
    pub fn required_timestamps(&self) -> usize {
        if self.tlog_threshold == 0 {
            self.timestamp_threshold.max(1)
        } else {
            self.timestamp_threshold
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VerifiedTime {
    /// `tlog` (signed entry timestamp) or `tsa` (RFC 3161).
    pub source: String,
    pub unix: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TlogSummary {
    pub log_url: String,
    pub log_index: u64,
    pub kind: String,
    pub integrated_time: Option<i64>,
    pub tree_size: Option<u64>,
    pub root_hash: Option<String>,
    pub checkpoint_origin: Option<String>,
}

/// What a successful verification established.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VerificationResult {
    pub media_type: String,
    pub content: String,
    /// SAN of the signing certificate (keyless) or `None` (key).
    pub identity: Option<String>,
    pub issuer: Option<String>,
    pub key_sha256: String,
    pub verified_times: Vec<VerifiedTime>,
    pub tlog_entries: Vec<TlogSummary>,
    pub predicate_type: Option<String>,
    /// The checks that ran, in order.
    pub steps: Vec<String>,
}

pub struct Verifier {
    root: TrustedRoot,
    config: VerifierConfig,
}

fn failed(m: impl Into<String>) -> SigstoreError {
    SigstoreError::failed(m)
}

/// DSSE pre-authentication encoding (shared implementation in stella-types).
pub use stella_types::dsse::pae;

struct LogNoteKey<'a> {
    log: &'a LogKey,
    name: String,
    any_name: bool,
}

impl NoteVerifier for LogNoteKey<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.log.note_key_id()
    }
    fn matches_name(&self, name: &str) -> bool {
        self.any_name || name == self.name
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.log.verifies_sha256(message, signature)
    }
}

fn hash_name(alg: HashAlg) -> &'static str {
    alg.name()
}

fn hash_from_name(s: &str) -> Option<HashAlg> {
    HashAlg::from_name(s)
}

/// The DER of every PEM block labelled `label` in `pem`.
fn pem_ders(pem: &[u8], label: &str) -> Vec<Vec<u8>> {
    std::str::from_utf8(pem)
        .ok()
        .and_then(|s| stella_crypto::pem::parse_all(s).ok())
        .map(|blocks| {
            blocks
                .into_iter()
                .filter(|b| b.label == label)
                .map(|b| b.der)
                .collect()
        })
        .unwrap_or_default()
}

fn system_time(unix: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
}

/// Validates the Fulcio leaf against one certificate authority of the
/// trusted root at `t`, with stella-crypto's one chain validator (the same
/// as organisation PKI): codeSigning EKU required, digitalSignature, not a
/// CA, CA basic constraints, keyCertSign and path length on the issuers,
/// every certificate valid at `t`. Returns the leaf's issuer (`None` when the
/// trusted root names the leaf itself).
fn fulcio_path(
    leaf: &Certificate,
    ca: &Authority,
    t: i64,
) -> Result<Option<Certificate>, SigstoreError> {
    let opts =
        ChainOptions::code_signing(system_time(t)).requiring_eku(fulcio::OID_EKU_CODE_SIGNING);
    let path = x509::verify_chain(leaf, ca.intermediates(), ca.anchor(), &opts)?;
    Ok(path.get(1).cloned())
}

/// Maps a signature check to the verifier's outcome: a bad signature is a
/// failure with `what`; an algorithm the key cannot do is unusable input.
fn signature_check(r: Result<(), CryptoError>, what: &str) -> Result<(), SigstoreError> {
    match r {
        Ok(()) => Ok(()),
        Err(CryptoError::UnsupportedAlgorithm(m)) => Err(SigstoreError::unusable(m)),
        Err(_) => Err(failed(what)),
    }
}

/// The signer as the log entry must show it.
enum SignerRef<'a> {
    Cert(&'a Certificate),
    Key(&'a PublicKey),
}

impl SignerRef<'_> {
    /// Whether a PEM (certificate or public key) from a log body names this signer.
    fn matches_pem(&self, pem: &[u8]) -> bool {
        let Ok(s) = std::str::from_utf8(pem) else {
            return false;
        };
        match self {
            SignerRef::Cert(c) => pem_ders(s.as_bytes(), "CERTIFICATE")
                .first()
                .is_some_and(|d| d.as_slice() == c.der()),
            SignerRef::Key(k) => pem_ders(s.as_bytes(), "PUBLIC KEY")
                .first()
                .is_some_and(|d| d.as_slice() == k.spki_der()),
        }
    }
}

impl Verifier {
    pub fn new(root: TrustedRoot, config: VerifierConfig) -> Verifier {
        Verifier { root, config }
    }

    pub fn trusted_root(&self) -> &TrustedRoot {
        &self.root
    }

    /// The evidence this verifier requires.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    pub fn verify(
        &self,
        bundle: &Bundle,
        artifact: Artifact<'_>,
        policy: &Policy,
    ) -> Result<VerificationResult, SigstoreError> {
        let mut steps = Vec::new();
        // 0. Signer material must fit the policy.
        let leaf;
        let leaf_key;
        let (key, signer) = match (policy, &bundle.signer) {
            (Policy::Identity(_), SignerMaterial::Certificate(der)) => {
                leaf = Certificate::from_der(der)
                    .map_err(|e| SigstoreError::from(e).context("signing certificate"))?;
                leaf_key = leaf
                    .public_key()
                    .map_err(|e| SigstoreError::from(e).context("signing certificate"))?;
                (&leaf_key, SignerRef::Cert(&leaf))
            }
            (Policy::Identity(_), SignerMaterial::PublicKey { .. }) => {
                return Err(SigstoreError::WrongSignerKind {
                    found: SignerKind::ManagedKey,
                    wanted: SignerKind::Certificate,
                });
            }
            (Policy::Key(k), SignerMaterial::PublicKey { .. }) => (k, SignerRef::Key(k)),
            (Policy::Key(_), SignerMaterial::Certificate(_)) => {
                return Err(SigstoreError::WrongSignerKind {
                    found: SignerKind::Certificate,
                    wanted: SignerKind::ManagedKey,
                });
            }
        };

        // What the log entries must bind to.
        let sig = bundle.content.signature();
        let artifact_digest: (HashAlg, Vec<u8>) = match artifact {
            Artifact::Bytes(b) => (HashAlg::Sha256, HashAlg::Sha256.digest(b)),
            Artifact::Digest { algorithm, digest } => (algorithm, digest.to_vec()),
        };

        // 1. Transparency log.
        let mut times = Vec::new();
        let mut summaries = Vec::new();
        let mut seen: Vec<(&[u8], u64)> = Vec::new();
        let mut v2_windows = Vec::new();
        for (i, e) in bundle.tlog_entries.iter().enumerate() {
            if seen.contains(&(e.log_id.as_slice(), e.log_index)) {
                return Err(failed(format!("tlogEntries[{i}]: duplicate log entry")));
            }
            seen.push((e.log_id.as_slice(), e.log_index));
            let (summary, t) = self
                .verify_entry(e, bundle, &signer, &artifact_digest)
                .map_err(|err| err.context(&format!("transparency log entry {i}")))?;
            if let Some(t) = t {
                times.push(VerifiedTime {
                    source: "tlog".into(),
                    unix: t,
                });
            }
            if e.is_rekor_v2() {
                if let Some(log) = self.root.tlog_by_id(&e.log_id) {
                    v2_windows.push((i, log.valid_for));
                }
            }
            summaries.push(summary);
        }
        if summaries.len() < self.config.tlog_threshold {
            return Err(failed(format!(
                "bundle has {} verified transparency-log entries, {} required",
                summaries.len(),
                self.config.tlog_threshold
            )));
        }
        steps.push(format!(
            "transparency log: {} entr(y/ies) verified",
            summaries.len()
        ));

        // 2. Observer timestamps (RFC 3161). Every timestamp present must
        // verify; the threshold counts them.
        for (i, ts) in bundle.rfc3161_timestamps.iter().enumerate() {
            let t = tsa::verify(ts, sig, &self.root)
                .map_err(|e| e.context(&format!("timestamp {i}")))?;
            times.push(VerifiedTime {
                source: "tsa".into(),
                unix: t,
            });
        }
        let required = self.config.required_timestamps();
        if bundle.rfc3161_timestamps.len() < required {
            return Err(failed(format!(
                "bundle has {} verified RFC 3161 timestamps, {required} required",
                bundle.rfc3161_timestamps.len()
            )));
        }
        if times.is_empty() {
            return Err(failed(
                "no verified observer time (need a signed entry timestamp or an RFC 3161 timestamp)",
            ));
        }
        // Rekor v2 entries carry no time of their own: the log key must have
        // been valid at a verified observer time.
        for (i, w) in &v2_windows {
            if !times.iter().any(|t| w.contains(t.unix)) {
                return Err(failed(format!(
                    "transparency log entry {i}: the log key is not valid at any verified observer time"
                )));
            }
        }
        steps.push(format!("observer times: {} verified", times.len()));

        // 3. Certificate path at every verified time; 4. SCT.
        let mut identity = None;
        let mut issuer_name = None;
        if let SignerRef::Cert(leaf) = &signer {
            let mut issuer_cert: Option<Certificate> = None;
            for vt in &times {
                let mut last =
                    failed("no trusted certificate authority is valid at the signing time");
                let mut ok = false;
                for ca in &self.root.certificate_authorities {
                    if !ca.valid_for.contains(vt.unix) {
                        continue;
                    }
                    match fulcio_path(leaf, ca, vt.unix) {
                        Ok(issuer) => {
                            ok = true;
                            issuer_cert = issuer;
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                if !ok {
                    return Err(
                        last.context(&format!("certificate at {} time {}", vt.source, vt.unix))
                    );
                }
            }
            steps.push("certificate chains to a trusted CA at every verified time".into());
            if self.config.require_sct {
                let issuer = issuer_cert
                    .ok_or_else(|| failed("certificate has no issuer in the trusted root"))?;
                sct::verify_embedded(leaf, &issuer, &self.root)?;
                steps.push("embedded SCT verified".into());
            }
            identity = fulcio::sans(leaf)?.into_iter().next();
            issuer_name = fulcio::oidc_issuer(leaf)?;
        }

        // 5. Signature; 6. statement subject.
        let mut predicate_type = None;
        let content_kind;
        match &bundle.content {
            Content::MessageSignature { digest, signature } => {
                content_kind = "messageSignature";
                if let Some((alg, d)) = digest {
                    let alg = hash_from_name(alg).unwrap_or(artifact_digest.0);
                    let want = match artifact {
                        Artifact::Bytes(b) => alg.digest(b),
                        Artifact::Digest { .. } => artifact_digest.1.clone(),
                    };
                    if alg == artifact_digest.0 || matches!(artifact, Artifact::Bytes(_)) {
                        if *d != want {
                            return Err(failed("bundle messageDigest does not match the artifact"));
                        }
                    }
                }
                let alg = key.default_algorithm();
                let outcome = match artifact {
                    Artifact::Bytes(b) => key.verify(alg, b, signature),
                    Artifact::Digest { algorithm, digest } => {
                        if key.kind() == KeyKind::Ed25519 {
                            return Err(SigstoreError::unusable(
                                "an Ed25519 message signature cannot be verified from a digest alone; pass the artifact file",
                            ));
                        }
                        let own = alg.hash().and_then(HashAlg::from_crypto);
                        if own != Some(algorithm) {
                            return Err(SigstoreError::unusable(format!(
                                "the key signs {} digests but a {} digest was given",
                                own.map(hash_name).unwrap_or("other"),
                                hash_name(algorithm)
                            )));
                        }
                        key.verify_prehashed(alg, digest, signature)
                    }
                };
                signature_check(outcome, "signature does not verify over the artifact")?;
                steps.push("message signature verified".into());
            }
            Content::Dsse {
                payload_type,
                payload,
                signature,
            } => {
                content_kind = "dsseEnvelope";
                if payload_type != IN_TOTO_PAYLOAD_TYPE {
                    return Err(failed(format!(
                        "unsupported DSSE payloadType {payload_type:?}"
                    )));
                }
                signature_check(
                    key.verify(
                        key.default_algorithm(),
                        &pae(payload_type, payload),
                        signature,
                    ),
                    "DSSE signature does not verify",
                )?;
                steps.push("DSSE signature verified".into());
                predicate_type = Some(check_subject(payload, &artifact_digest)?);
                steps.push("in-toto statement subject matches the artifact".into());
            }
        }

        // 7. Identity policy.
        if let Policy::Identity(p) = policy {
            let SignerRef::Cert(leaf) = &signer else {
                return Err(failed("identity policy needs a certificate"));
            };
            let sans = fulcio::sans(leaf)?;
            let Some(san) = sans.iter().find(|s| p.identity.matches(s)) else {
                return Err(failed(format!(
                    "certificate identity {:?} does not match {}",
                    sans.first().map(String::as_str).unwrap_or(""),
                    p.identity.describe()
                )));
            };
            identity = Some(san.clone());
            let iss = issuer_name.clone().unwrap_or_default();
            if issuer_name.is_none() || !p.issuer.matches(&iss) {
                return Err(failed(format!(
                    "certificate OIDC issuer {iss:?} does not match {}",
                    p.issuer.describe()
                )));
            }
            steps.push("identity policy satisfied".into());
        }

        Ok(VerificationResult {
            media_type: bundle.media_type.clone(),
            content: content_kind.into(),
            identity,
            issuer: issuer_name,
            key_sha256: hex_lower(&sha256_bytes(key.spki_der())),
            verified_times: times,
            tlog_entries: summaries,
            predicate_type,
            steps,
        })
    }

    /// Verifies one log entry: binding, SET, inclusion proof and checkpoint.
    /// Returns the SET-verified integrated time, if any.
    fn verify_entry(
        &self,
        e: &TlogEntry,
        bundle: &Bundle,
        signer: &SignerRef<'_>,
        artifact_digest: &(HashAlg, Vec<u8>),
    ) -> Result<(TlogSummary, Option<i64>), SigstoreError> {
        let log = self
            .root
            .tlog_by_id(&e.log_id)
            .ok_or_else(|| failed("log ID is not a transparency log of the trusted root"))?;
        let body: Value = serde_json::from_slice(&e.canonicalized_body)
            .map_err(|_| failed("canonicalizedBody is not JSON"))?;
        let bo = json::as_obj(&body, "canonicalizedBody").map_err(|e| failed(e.to_string()))?;
        let kind = bo.get("kind").and_then(Value::as_str).unwrap_or("");
        let api = bo.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if kind != e.kind || api != e.version {
            return Err(failed(format!(
                "kindVersion {}/{} does not match the logged body {kind}/{api}",
                e.kind, e.version
            )));
        }
        bind_body(bo, &e.kind, &e.version, bundle, signer, artifact_digest)?;

        let mut verified_time = None;
        if e.is_rekor_v2() {
            // Rekor v2 has neither a SET nor an integrated time; anything
            // in those fields is ignored rather than trusted.
            if e.inclusion_proof.is_none() {
                return Err(failed("Rekor v2 entry has no inclusion proof"));
            }
        } else {
            if let Some(set) = &e.signed_entry_timestamp {
                let t = e.integrated_time;
                let payload = format!(
                    "{{\"body\":\"{}\",\"integratedTime\":{},\"logID\":\"{}\",\"logIndex\":{}}}",
                    STANDARD.encode(&e.canonicalized_body),
                    t,
                    hex_lower(&e.log_id),
                    e.log_index
                );
                if !log.verifies_sha256(payload.as_bytes(), set) {
                    return Err(failed("signed entry timestamp does not verify"));
                }
                if !log.valid_for.contains(t) {
                    return Err(failed(format!(
                        "integratedTime {t} is outside the log key's validity window"
                    )));
                }
                verified_time = Some(t);
            } else if e.inclusion_proof.is_none() {
                return Err(failed(
                    "entry has neither a signed entry timestamp nor an inclusion proof",
                ));
            }
        }

        let mut summary = TlogSummary {
            log_url: log.base_url.clone(),
            log_index: e.log_index,
            kind: format!("{}/{}", e.kind, e.version),
            integrated_time: verified_time,
            tree_size: None,
            root_hash: None,
            checkpoint_origin: None,
        };
        if let Some(p) = &e.inclusion_proof {
            let leaf = leaf_hash(&e.canonicalized_body);
            verify_inclusion(p.log_index, p.tree_size, &leaf, &p.hashes, &p.root_hash)
                .map_err(|err| failed(format!("inclusion proof does not verify: {err}")))?;
            let note =
                Note::parse(&p.checkpoint).map_err(|err| failed(format!("checkpoint: {err}")))?;
            let v2 = e.is_rekor_v2();
            let nk = LogNoteKey {
                log,
                name: log.hostname().to_string(),
                any_name: !v2,
            };
            note.verify(&[&nk as &dyn NoteVerifier])
                .map_err(|err| failed(format!("checkpoint: {err}")))?;
            let cp = Checkpoint::parse_body(&note.text)
                .map_err(|err| failed(format!("checkpoint: {err}")))?;
            if v2 && cp.origin != nk.name {
                return Err(failed(format!(
                    "checkpoint origin {:?} is not the log {:?}",
                    cp.origin, nk.name
                )));
            }
            if cp.root_hash != p.root_hash || cp.size != p.tree_size {
                return Err(failed(
                    "checkpoint tree head does not match the inclusion proof's root hash and size",
                ));
            }
            summary.tree_size = Some(cp.size);
            summary.root_hash = Some(hex_lower(&cp.root_hash));
            summary.checkpoint_origin = Some(cp.origin);
        }
        Ok((summary, verified_time))
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    Some(cur)
}

fn sv<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, SigstoreError> {
    s(v, path)
        .and_then(Value::as_str)
        .ok_or_else(|| failed(format!("log entry body lacks {}", path.join("."))))
}

fn body_b64(v: &Value, path: &[&str]) -> Result<Vec<u8>, SigstoreError> {
    let st = sv(v, path)?;
    json::decode_bytes(&path.join("."), st).map_err(|e| failed(e.to_string()))
}

/// Checks that the logged body describes this bundle's signature, signer and artifact.
fn bind_body(
    bo: &json::Obj,
    kind: &str,
    version: &str,
    bundle: &Bundle,
    signer: &SignerRef<'_>,
    artifact_digest: &(HashAlg, Vec<u8>),
) -> Result<(), SigstoreError> {
    let body = Value::Object(bo.clone());
    let sig = bundle.content.signature();
    match (kind, version, &bundle.content) {
        ("hashedrekord", "0.0.1", Content::MessageSignature { digest, .. }) => {
            if body_b64(&body, &["spec", "signature", "content"])? != sig {
                return Err(failed(
                    "logged signature differs from the bundle's signature",
                ));
            }
            let pem = body_b64(&body, &["spec", "signature", "publicKey", "content"])?;
            if !signer.matches_pem(&pem) {
                return Err(failed(
                    "logged certificate/key differs from the bundle's signer",
                ));
            }
            let alg = sv(&body, &["spec", "data", "hash", "algorithm"])?;
            let val = sv(&body, &["spec", "data", "hash", "value"])?;
            let alg = hash_from_name(alg)
                .ok_or_else(|| failed("unsupported hash algorithm in log entry"))?;
            if let Some((_, d)) = digest {
                if hex_lower(d) != val.to_ascii_lowercase() {
                    return Err(failed(
                        "logged artifact digest differs from the bundle's messageDigest",
                    ));
                }
            }
            if alg == artifact_digest.0 && hex_lower(&artifact_digest.1) != val.to_ascii_lowercase()
            {
                return Err(failed("logged artifact digest differs from the artifact"));
            }
        }
        ("hashedrekord", "0.0.2", content) => {
            let spec = s(&body, &["spec", "hashedRekordV002"])
                .ok_or_else(|| failed("log entry body lacks spec"))?;
            if body_b64(spec, &["signature", "content"])? != sig {
                return Err(failed(
                    "logged signature differs from the bundle's signature",
                ));
            }
            let logged = body_b64(spec, &["data", "digest"])?;
            let want = match content {
                Content::MessageSignature { digest, .. } => {
                    if let Some((_, d)) = digest {
                        if *d != logged {
                            return Err(failed(
                                "logged digest differs from the bundle's messageDigest",
                            ));
                        }
                    }
                    artifact_digest.1.clone()
                }
                Content::Dsse {
                    payload_type,
                    payload,
                    ..
                } => sha256_bytes(&pae(payload_type, payload)).to_vec(),
            };
            if want != logged {
                return Err(failed("logged digest differs from the signed content"));
            }
            let ver = s(spec, &["signature", "verifier"])
                .ok_or_else(|| failed("log entry body lacks verifier"))?;
            let ok = match signer {
                SignerRef::Cert(c) => s(ver, &["x509Certificate", "rawBytes"])
                    .and_then(Value::as_str)
                    .and_then(|x| json::decode_bytes("rawBytes", x).ok())
                    .is_some_and(|d| d == c.der()),
                SignerRef::Key(k) => s(ver, &["publicKey", "rawBytes"])
                    .and_then(Value::as_str)
                    .and_then(|x| json::decode_bytes("rawBytes", x).ok())
                    .is_some_and(|d| d == k.spki_der()),
            };
            if !ok {
                return Err(failed("logged verifier differs from the bundle's signer"));
            }
        }
        ("dsse", "0.0.1", Content::Dsse { payload, .. }) => {
            let ph = sv(&body, &["spec", "payloadHash", "value"])?;
            if ph.to_ascii_lowercase() != hex_lower(&sha256_bytes(payload)) {
                return Err(failed(
                    "logged payload hash differs from the envelope payload",
                ));
            }
            let sigs = s(&body, &["spec", "signatures"])
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let bound = sigs.iter().any(|x| {
                let sig_ok = body_b64(x, &["signature"]).is_ok_and(|v| v == sig);
                let key_ok = body_b64(x, &["verifier"]).is_ok_and(|pem| signer.matches_pem(&pem));
                sig_ok && key_ok
            });
            if sigs.len() != 1 || !bound {
                return Err(failed(
                    "logged DSSE signature/verifier differs from the envelope",
                ));
            }
        }
        ("intoto", "0.0.2", Content::Dsse { payload, .. }) => {
            let ph = sv(&body, &["spec", "content", "payloadHash", "value"])?;
            if ph.to_ascii_lowercase() != hex_lower(&sha256_bytes(payload)) {
                return Err(failed(
                    "logged payload hash differs from the envelope payload",
                ));
            }
            let sigs = s(&body, &["spec", "content", "envelope", "signatures"])
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let bound = sigs.iter().any(|x| {
                // `sig` is base64 of the base64 text of the signature.
                let sig_ok = body_b64(x, &["sig"])
                    .ok()
                    .and_then(|t| String::from_utf8(t).ok())
                    .and_then(|t| json::decode_bytes("sig", &t).ok())
                    .is_some_and(|v| v == sig);
                let key_ok = body_b64(x, &["publicKey"]).is_ok_and(|pem| signer.matches_pem(&pem));
                sig_ok && key_ok
            });
            if sigs.len() != 1 || !bound {
                return Err(failed(
                    "logged in-toto envelope signature/key differs from the bundle",
                ));
            }
        }
        (k, v, _) => {
            return Err(failed(format!(
                "log entry kind {k}/{v} does not fit the bundle content"
            )));
        }
    }
    Ok(())
}

/// Parses the in-toto statement and checks one subject carries the artifact digest.
/// Returns the predicate type.
fn check_subject(
    payload: &[u8],
    artifact_digest: &(HashAlg, Vec<u8>),
) -> Result<String, SigstoreError> {
    let st: Value = serde_json::from_slice(payload)
        .map_err(|_| failed("DSSE payload is not a JSON in-toto statement"))?;
    let t = st.get("_type").and_then(Value::as_str).unwrap_or("");
    if t != "https://in-toto.io/Statement/v1" && t != "https://in-toto.io/Statement/v0.1" {
        return Err(failed(format!(
            "DSSE payload is not an in-toto statement (_type {t:?})"
        )));
    }
    let want = hex_lower(&artifact_digest.1);
    let name = hash_name(artifact_digest.0);
    let subjects = st
        .get("subject")
        .and_then(Value::as_array)
        .ok_or_else(|| failed("statement has no subject"))?;
    let hit = subjects.iter().any(|s| {
        s.get("digest")
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .is_some_and(|h| h.to_ascii_lowercase() == want)
    });
    if !hit {
        return Err(failed(format!(
            "no statement subject has {name} digest {want}"
        )));
    }
    Ok(st
        .get("predicateType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}
