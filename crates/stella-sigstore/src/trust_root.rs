//! `trusted_root.json` (sigstore protobuf-specs TrustedRoot, v0.1/v0.2):
//! transparency logs, Fulcio CAs, CT logs and timestamp authorities with
//! their validity windows. Parses and indexes; does no verification itself.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use stella_crypto::x509::Certificate;
use stella_crypto::{HashAlgorithm, KeyKind, PublicKey, SignatureAlgorithm};

use crate::error::SigstoreError;
use crate::json::{self, Obj};

/// Largest trusted root accepted.
pub const MAX_TRUSTED_ROOT_BYTES: usize = 8 * 1024 * 1024;

/// A closed interval of Unix seconds; `start` is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: i64,
    pub end: Option<i64>,
}

impl TimeRange {
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency log (Rekor) or CT log.
#[derive(Debug, Clone)]
pub struct LogKey {
    pub base_url: String,
    pub key: PublicKey,
    pub key_details: String,
    pub log_id: Vec<u8>,
    pub checkpoint_key_id: Option<Vec<u8>>,
    pub valid_for: TimeRange,
}

impl LogKey {
    /// Hostname of `baseUrl` (the Rekor v2 checkpoint key name / origin).
    pub fn hostname(&self) -> &str {
        let s = self
            .base_url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.base_url);
        let s = s.split(['/', '?', '#']).next().unwrap_or(s);
        let s = s.rsplit_once('@').map(|(_, h)| h).unwrap_or(s);
        match s.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => s,
        }
    }
    /// The algorithm log signatures (SETs, checkpoints, SCTs) use with this
    /// key and `hash`: ECDSA on the key's curve, RSA PKCS#1 v1.5, Ed25519.
    pub fn signature_algorithm(&self, hash: HashAlgorithm) -> Option<SignatureAlgorithm> {
        SignatureAlgorithm::with_hash(self.key.kind(), hash)
    }

    /// Whether `signature` over `message` verifies with this key and SHA-256
    /// (signed entry timestamps and checkpoints).
    pub fn verifies_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        self.signature_algorithm(HashAlgorithm::Sha256)
            .is_some_and(|alg| self.key.verify(alg, message, signature).is_ok())
    }

    /// The 4-byte signed-note key ID.
    pub fn note_key_id(&self) -> u32 {
        let src = self.checkpoint_key_id.as_deref().unwrap_or(&self.log_id);
        match src {
            [a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => 0,
        }
    }
}

/// A certificate authority (Fulcio) or timestamp authority.
#[derive(Debug, Clone)]
pub struct Authority {
    pub uri: String,
    /// The trusted chain: closest to the leaf first, the anchor last.
    pub chain: Vec<Certificate>,
    pub valid_for: TimeRange,
}

impl Authority {
    /// The chain without its anchor (trusted intermediates).
    pub fn intermediates(&self) -> &[Certificate] {
        self.chain.split_last().map(|(_, rest)| rest).unwrap_or(&[])
    }

    /// The anchor (last certificate), as a one-element slice.
    pub fn anchor(&self) -> &[Certificate] {
        match self.chain.split_last() {
            Some((last, _)) => std::slice::from_ref(last),
            None => &[],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TrustedRoot {
    pub tlogs: Vec<LogKey>,
    pub certificate_authorities: Vec<Authority>,
    pub ctlogs: Vec<LogKey>,
    pub timestamp_authorities: Vec<Authority>,
}

fn parse_time(s: &str, path: &str, round_up: bool) -> Result<i64, SigstoreError> {
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| SigstoreError::unusable(format!("{path}: not an RFC 3339 time: {s:?}")))?;
    let secs = t.unix_timestamp();
    Ok(if round_up && t.nanosecond() > 0 {
        secs + 1
    } else {
        secs
    })
}

fn parse_range(o: Option<&Obj>, path: &str) -> Result<TimeRange, SigstoreError> {
    let o = o.ok_or_else(|| SigstoreError::unusable(format!("{path}.validFor is required")))?;
    let p = format!("{path}.validFor");
    let start = json::opt_str(o, "start", &p)?.ok_or_else(|| {
        SigstoreError::unusable(format!(
            "{p}.start is required (an open start is not accepted)"
        ))
    })?;
    let start = parse_time(start, &p, true)?;
    let end = json::opt_str(o, "end", &p)?
        .map(|e| parse_time(e, &p, false))
        .transpose()?;
    Ok(TimeRange { start, end })
}

fn parse_log(v: &Value, path: &str) -> Result<LogKey, SigstoreError> {
    let o = json::as_obj(v, path)?;
    let base_url = json::opt_str(o, "baseUrl", path)?.unwrap_or("").to_string();
    let pk = json::req_obj(o, "publicKey", path)?;
    let pkp = format!("{path}.publicKey");
    let raw = json::req_bytes(pk, "rawBytes", &pkp)?;
    let key_details = json::opt_str(pk, "keyDetails", &pkp)?
        .unwrap_or("")
        .to_string();
    let key = if key_details.starts_with("PKCS1_") {
        PublicKey::from_pkcs1_rsa_der(&raw)
    } else {
        PublicKey::from_spki_der(&raw)
    }
    .map_err(|e| SigstoreError::unusable(format!("{pkp}: public key: {e}")))?;
    let valid_for = parse_range(json::opt_obj(pk, "validFor", &pkp)?, &pkp)?;
    let lid = json::req_obj(o, "logId", path)?;
    let log_id = json::req_bytes(lid, "keyId", &format!("{path}.logId"))?;
    let checkpoint_key_id = match json::opt_obj(o, "checkpointKeyId", path)? {
        Some(c) => json::opt_bytes(c, "keyId", &format!("{path}.checkpointKeyId"))?,
        None => None,
    };
    Ok(LogKey {
        base_url,
        key,
        key_details,
        log_id,
        checkpoint_key_id,
        valid_for,
    })
}

fn parse_authority(v: &Value, path: &str) -> Result<Authority, SigstoreError> {
    let o = json::as_obj(v, path)?;
    let uri = json::opt_str(o, "uri", path)?.unwrap_or("").to_string();
    let chain = json::req_obj(o, "certChain", path)?;
    let mut certs = Vec::new();
    for (i, c) in json::opt_array(chain, "certificates", &format!("{path}.certChain"))?
        .iter()
        .enumerate()
    {
        let cp = format!("{path}.certChain.certificates[{i}]");
        let co = json::as_obj(c, &cp)?;
        let der = json::req_bytes(co, "rawBytes", &cp)?;
        certs.push(
            Certificate::from_der(&der)
                .map_err(|e| SigstoreError::unusable(format!("{cp}: {e}")))?,
        );
    }
    if certs.is_empty() {
        return Err(SigstoreError::unusable(format!(
            "{path}.certChain has no certificates"
        )));
    }
    let valid_for = parse_range(json::opt_obj(o, "validFor", path)?, path)?;
    Ok(Authority {
        uri,
        chain: certs,
        valid_for,
    })
}

impl TrustedRoot {
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, SigstoreError> {
        if bytes.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(SigstoreError::unusable("trusted root is too large"));
        }
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| SigstoreError::unusable(format!("trusted root is not valid JSON: {e}")))?;
        let o = json::as_obj(&v, "trusted root")?;
        if let Some(mt) = json::opt_str(o, "mediaType", "trustedRoot")? {
            if !mt.starts_with("application/vnd.dev.sigstore.trustedroot") {
                return Err(SigstoreError::unusable(format!(
                    "trusted root has unknown mediaType {mt:?}"
                )));
            }
        }
        let mut root = TrustedRoot::default();
        for (i, t) in json::opt_array(o, "tlogs", "trustedRoot")?
            .iter()
            .enumerate()
        {
            root.tlogs.push(parse_log(t, &format!("tlogs[{i}]"))?);
        }
        for (i, t) in json::opt_array(o, "ctlogs", "trustedRoot")?
            .iter()
            .enumerate()
        {
            root.ctlogs.push(parse_log(t, &format!("ctlogs[{i}]"))?);
        }
        for (i, t) in json::opt_array(o, "certificateAuthorities", "trustedRoot")?
            .iter()
            .enumerate()
        {
            root.certificate_authorities
                .push(parse_authority(t, &format!("certificateAuthorities[{i}]"))?);
        }
        for (i, t) in json::opt_array(o, "timestampAuthorities", "trustedRoot")?
            .iter()
            .enumerate()
        {
            root.timestamp_authorities
                .push(parse_authority(t, &format!("timestampAuthorities[{i}]"))?);
        }
        Ok(root)
    }

    pub fn tlog_by_id(&self, log_id: &[u8]) -> Option<&LogKey> {
        self.tlogs.iter().find(|t| t.log_id == log_id)
    }

    pub fn ctlog_by_id(&self, log_id: &[u8]) -> Option<&LogKey> {
        self.ctlogs.iter().find(|t| t.log_id == log_id)
    }
}

/// Whether a log key is an Ed25519 key (Rekor v2 style note keys).
pub fn is_ed25519(k: &LogKey) -> bool {
    k.key.kind() == KeyKind::Ed25519
}
