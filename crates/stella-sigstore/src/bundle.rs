//! Sigstore bundle parsing (protobuf-specs Bundle v0.1, v0.2, v0.3 in both
//! media-type spellings) into typed structures, enforcing the structural
//! rules of the spec (one content, one DSSE signature, per-version required
//! fields). Protobuf-JSON rules apply: an absent `int64` (`logIndex`,
//! `integratedTime`, `treeSize`) is 0, never "missing". Parsing only:
//! nothing here checks a signature or a proof.

use serde_json::Value;
use stella_types::limits;

use crate::error::SigstoreError;
use crate::json::{self, Obj};

/// Most transparency-log entries / timestamps accepted in one bundle.
pub const MAX_TLOG_ENTRIES: usize = 32;
pub const MAX_TIMESTAMPS: usize = 32;
pub const MAX_CHAIN_CERTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BundleVersion {
    V0_1,
    V0_2,
    V0_3,
}

impl BundleVersion {
    /// The version a bundle `mediaType` names, through the one classifier
    /// (`stella_types::media_types::AttestationFormat`), so every spelling
    /// Stella reads elsewhere is read here too.
    pub fn from_media_type(mt: &str) -> Result<BundleVersion, SigstoreError> {
        use stella_types::media_types::{AttestationFormat, SigstoreBundleVersion as V};
        match AttestationFormat::of_media_type(mt) {
            AttestationFormat::SigstoreBundle {
                version: Some(V::V0_1),
            } => Ok(BundleVersion::V0_1),
            AttestationFormat::SigstoreBundle {
                version: Some(V::V0_2),
            } => Ok(BundleVersion::V0_2),
            AttestationFormat::SigstoreBundle {
                version: Some(V::V0_3),
            } => Ok(BundleVersion::V0_3),
            _ => Err(SigstoreError::unusable(format!(
                "unsupported bundle mediaType {mt:?}"
            ))),
        }
    }
}

/// How the signer is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerMaterial {
    /// DER of the leaf certificate (bundle CA certificates are dropped: never trusted).
    Certificate(Vec<u8>),
    /// A key identified out of band (`publicKey.hint`).
    PublicKey { hint: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub log_index: u64,
    pub root_hash: Vec<u8>,
    pub tree_size: u64,
    pub hashes: Vec<Vec<u8>>,
    pub checkpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry {
    pub log_index: u64,
    pub log_id: Vec<u8>,
    pub kind: String,
    pub version: String,
    /// Unix seconds; 0 when the bundle leaves it out (Rekor v2 has none).
    pub integrated_time: i64,
    pub signed_entry_timestamp: Option<Vec<u8>>,
    pub inclusion_proof: Option<InclusionProof>,
    pub canonicalized_body: Vec<u8>,
}

impl TlogEntry {
    /// Rekor v2 (rekor-tiles) entry kinds.
    pub fn is_rekor_v2(&self) -> bool {
        self.version == "0.0.2" && (self.kind == "hashedrekord" || self.kind == "dsse")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    MessageSignature {
        /// (algorithm name as in the bundle, digest bytes)
        digest: Option<(String, Vec<u8>)>,
        signature: Vec<u8>,
    },
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
        signature: Vec<u8>,
    },
}

impl Content {
    pub fn signature(&self) -> &[u8] {
        match self {
            Content::MessageSignature { signature, .. } | Content::Dsse { signature, .. } => {
                signature
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub media_type: String,
    pub version: BundleVersion,
    pub signer: SignerMaterial,
    pub tlog_entries: Vec<TlogEntry>,
    pub rfc3161_timestamps: Vec<Vec<u8>>,
    pub content: Content,
}

fn unusable(m: impl Into<String>) -> SigstoreError {
    SigstoreError::unusable(m)
}

/// A protobuf `int64` that must not be negative; absent means 0.
fn u64_field(o: &Obj, k: &str, path: &str) -> Result<u64, SigstoreError> {
    let v = json::int64_or_zero(o, k, path)?;
    u64::try_from(v).map_err(|_| unusable(format!("{path}.{k} must not be negative ({v})")))
}

fn parse_entry(v: &Value, path: &str, version: BundleVersion) -> Result<TlogEntry, SigstoreError> {
    let o = json::as_obj(v, path)?;
    let log_index = u64_field(o, "logIndex", path)?;
    let log_id = json::req_bytes(
        json::req_obj(o, "logId", path)?,
        "keyId",
        &format!("{path}.logId"),
    )?;
    let kv = json::req_obj(o, "kindVersion", path)?;
    let kvp = format!("{path}.kindVersion");
    let kind = json::req_str(kv, "kind", &kvp)?.to_string();
    let kversion = json::req_str(kv, "version", &kvp)?.to_string();
    let integrated_time = json::int64_or_zero(o, "integratedTime", path)?;
    if integrated_time < 0 {
        return Err(unusable(format!(
            "{path}.integratedTime must not be negative"
        )));
    }
    let set = match json::opt_obj(o, "inclusionPromise", path)? {
        Some(p) => Some(json::req_bytes(
            p,
            "signedEntryTimestamp",
            &format!("{path}.inclusionPromise"),
        )?),
        None => None,
    };
    let inclusion_proof = match json::opt_obj(o, "inclusionProof", path)? {
        None => None,
        Some(p) => {
            let pp = format!("{path}.inclusionProof");
            let mut hashes = Vec::new();
            let hs = json::opt_array(p, "hashes", &pp)?;
            if hs.len() > stella_tlog::merkle::MAX_PROOF_HASHES {
                return Err(unusable(format!(
                    "{pp}.hashes: too many hashes ({})",
                    hs.len()
                )));
            }
            for (i, h) in hs.iter().enumerate() {
                let hp = format!("{pp}.hashes[{i}]");
                let s = h
                    .as_str()
                    .ok_or_else(|| unusable(format!("{hp} must be a string")))?;
                hashes.push(json::decode_bytes(&hp, s)?);
            }
            let cp = json::opt_obj(p, "checkpoint", &pp)?;
            let checkpoint = match cp {
                Some(c) => json::opt_str(c, "envelope", &format!("{pp}.checkpoint"))?.unwrap_or(""),
                None => "",
            };
            if checkpoint.is_empty() {
                return Err(unusable(format!("{pp}.checkpoint.envelope is required")));
            }
            Some(InclusionProof {
                log_index: u64_field(p, "logIndex", &pp)?,
                root_hash: json::req_bytes(p, "rootHash", &pp)?,
                tree_size: u64_field(p, "treeSize", &pp)?,
                hashes,
                checkpoint: checkpoint.to_string(),
            })
        }
    };
    let canonicalized_body = json::req_bytes(o, "canonicalizedBody", path)?;
    if version == BundleVersion::V0_1 && set.is_none() {
        return Err(unusable(format!(
            "{path}: a v0.1 bundle requires inclusionPromise"
        )));
    }
    if version >= BundleVersion::V0_2 && inclusion_proof.is_none() {
        return Err(unusable(format!(
            "{path}: a v0.2+ bundle requires inclusionProof"
        )));
    }
    Ok(TlogEntry {
        log_index,
        log_id,
        kind,
        version: kversion,
        integrated_time,
        signed_entry_timestamp: set,
        inclusion_proof,
        canonicalized_body,
    })
}

impl Bundle {
    pub fn parse(bytes: &[u8]) -> Result<Bundle, SigstoreError> {
        if bytes.len() as u64 > limits::MAX_JSON_DOCUMENT_BYTES {
            return Err(unusable("bundle is too large"));
        }
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| unusable(format!("bundle is not valid JSON: {e}")))?;
        Bundle::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Bundle, SigstoreError> {
        let o = json::as_obj(v, "bundle")?;
        let media_type = json::req_str(o, "mediaType", "bundle")?.to_string();
        let version = BundleVersion::from_media_type(&media_type)?;
        let vm = json::req_obj(o, "verificationMaterial", "bundle")?;
        let vmp = "verificationMaterial";

        let chain = json::opt_obj(vm, "x509CertificateChain", vmp)?;
        let cert = json::opt_obj(vm, "certificate", vmp)?;
        let pk = json::opt_obj(vm, "publicKey", vmp)?;
        let present = [chain.is_some(), cert.is_some(), pk.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if present != 1 {
            return Err(unusable(
                "verificationMaterial must hold exactly one of x509CertificateChain, certificate, publicKey",
            ));
        }
        let signer = if let Some(c) = chain {
            if version >= BundleVersion::V0_3 {
                return Err(unusable(
                    "a v0.3 bundle must use certificate, not x509CertificateChain",
                ));
            }
            let certs = json::opt_array(c, "certificates", "x509CertificateChain")?;
            if certs.len() > MAX_CHAIN_CERTS {
                return Err(unusable("x509CertificateChain has too many certificates"));
            }
            let first = certs
                .first()
                .ok_or_else(|| unusable("x509CertificateChain.certificates is empty"))?;
            let fo = json::as_obj(first, "x509CertificateChain.certificates[0]")?;
            SignerMaterial::Certificate(json::req_bytes(
                fo,
                "rawBytes",
                "x509CertificateChain.certificates[0]",
            )?)
        } else if let Some(c) = cert {
            SignerMaterial::Certificate(json::req_bytes(
                c,
                "rawBytes",
                "verificationMaterial.certificate",
            )?)
        } else if let Some(p) = pk {
            SignerMaterial::PublicKey {
                hint: json::opt_str(p, "hint", "publicKey")?.map(str::to_string),
            }
        } else {
            return Err(unusable("verificationMaterial has no signer material"));
        };

        let entries = json::opt_array(vm, "tlogEntries", vmp)?;
        if entries.len() > MAX_TLOG_ENTRIES {
            return Err(unusable("too many tlogEntries"));
        }
        let mut tlog_entries = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            tlog_entries.push(parse_entry(e, &format!("tlogEntries[{i}]"), version)?);
        }

        let mut rfc3161_timestamps = Vec::new();
        if let Some(tvd) = json::opt_obj(vm, "timestampVerificationData", vmp)? {
            let ts = json::opt_array(tvd, "rfc3161Timestamps", "timestampVerificationData")?;
            if ts.len() > MAX_TIMESTAMPS {
                return Err(unusable("too many rfc3161Timestamps"));
            }
            for (i, t) in ts.iter().enumerate() {
                let p = format!("rfc3161Timestamps[{i}]");
                rfc3161_timestamps.push(json::req_bytes(
                    json::as_obj(t, &p)?,
                    "signedTimestamp",
                    &p,
                )?);
            }
        }

        let ms = json::opt_obj(o, "messageSignature", "bundle")?;
        let de = json::opt_obj(o, "dsseEnvelope", "bundle")?;
        let content = match (ms, de) {
            (Some(m), None) => {
                let digest = match json::opt_obj(m, "messageDigest", "messageSignature")? {
                    Some(d) => Some((
                        json::opt_str(d, "algorithm", "messageDigest")?
                            .unwrap_or("")
                            .to_string(),
                        json::req_bytes(d, "digest", "messageSignature.messageDigest")?,
                    )),
                    None => None,
                };
                Content::MessageSignature {
                    digest,
                    signature: json::req_bytes(m, "signature", "messageSignature")?,
                }
            }
            (None, Some(d)) => {
                let payload = json::req_bytes(d, "payload", "dsseEnvelope")?;
                if payload.len() as u64 > limits::MAX_DSSE_PAYLOAD_BYTES {
                    return Err(unusable("dsseEnvelope.payload is too large"));
                }
                let sigs = json::opt_array(d, "signatures", "dsseEnvelope")?;
                if sigs.len() != 1 {
                    return Err(unusable(format!(
                        "dsseEnvelope must have exactly one signature, found {}",
                        sigs.len()
                    )));
                }
                let so = json::as_obj(
                    sigs.first().unwrap_or(&Value::Null),
                    "dsseEnvelope.signatures[0]",
                )?;
                Content::Dsse {
                    payload_type: json::req_str(d, "payloadType", "dsseEnvelope")?.to_string(),
                    payload,
                    signature: json::req_bytes(so, "sig", "dsseEnvelope.signatures[0]")?,
                }
            }
            _ => {
                return Err(unusable(
                    "bundle must hold exactly one of messageSignature, dsseEnvelope",
                ));
            }
        };

        Ok(Bundle {
            media_type,
            version,
            signer,
            tlog_entries,
            rfc3161_timestamps,
            content,
        })
    }
}
