//! What a sigstore trusted root trusts, in a form to show users: the
//! certificate authorities, transparency logs, CT logs and timestamp
//! authorities with their validity windows. Parsing is stella-sigstore's;
//! this module only picks out what to display.

use serde::Serialize;
use stella_sigstore::TrustedRoot;
use stella_sigstore::trust_root::{Authority, LogKey, TimeRange};
use stella_types::digest::Digest;

use crate::error::TrustError;

/// A validity window as RFC 3339 times (`until` absent: still valid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl From<TimeRange> for Window {
    fn from(r: TimeRange) -> Self {
        Window {
            from: rfc3339(r.start),
            until: r.end.map(rfc3339),
        }
    }
}

/// Unix seconds as an RFC 3339 UTC time (the number itself if out of range).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A Fulcio CA or a timestamp authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthoritySummary {
    pub uri: String,
    pub valid_for: Window,
    pub certificates: usize,
    /// `sha256:<hex>` of the chain's last (anchor) certificate.
    pub anchor_sha256: Option<String>,
}

/// A Rekor log or a CT log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogSummary {
    pub base_url: String,
    pub key_details: String,
    /// Hex of the log ID.
    pub log_id: String,
    pub valid_for: Window,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedRootSummary {
    pub certificate_authorities: Vec<AuthoritySummary>,
    pub tlogs: Vec<LogSummary>,
    pub ctlogs: Vec<LogSummary>,
    pub timestamp_authorities: Vec<AuthoritySummary>,
}

impl TrustedRootSummary {
    pub fn from_json(json: &[u8]) -> Result<TrustedRootSummary, TrustError> {
        let root = TrustedRoot::from_json(json).map_err(|e| TrustError::DamagedCache {
            dir: std::path::PathBuf::from("trusted_root.json"),
            reason: e.to_string(),
        })?;
        Ok(TrustedRootSummary {
            certificate_authorities: root.certificate_authorities.iter().map(authority).collect(),
            tlogs: root.tlogs.iter().map(log).collect(),
            ctlogs: root.ctlogs.iter().map(log).collect(),
            timestamp_authorities: root.timestamp_authorities.iter().map(authority).collect(),
        })
    }
}

fn authority(a: &Authority) -> AuthoritySummary {
    AuthoritySummary {
        uri: a.uri.clone(),
        valid_for: a.valid_for.into(),
        certificates: a.chain.len(),
        anchor_sha256: a
            .chain
            .last()
            .map(|c| Digest::sha256_of(c.der()).to_string()),
    }
}

fn log(l: &LogKey) -> LogSummary {
    LogSummary {
        base_url: l.base_url.clone(),
        key_details: l.key_details.clone(),
        log_id: l.log_id.iter().map(|b| format!("{b:02x}")).collect(),
        valid_for: l.valid_for.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PRODUCTION: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/sigstore/trusted_root/production.json"
    );

    #[test]
    fn summarises_the_production_root() {
        let json = std::fs::read(PRODUCTION).unwrap();
        let s = TrustedRootSummary::from_json(&json).unwrap();
        // Counted independently from the JSON document itself.
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let n = |k: &str| v[k].as_array().map_or(0, Vec::len);
        assert_eq!(s.certificate_authorities.len(), n("certificateAuthorities"));
        assert_eq!(s.tlogs.len(), n("tlogs"));
        assert_eq!(s.ctlogs.len(), n("ctlogs"));
        assert_eq!(s.timestamp_authorities.len(), n("timestampAuthorities"));
        assert!(s.tlogs.iter().any(|t| t.base_url.contains("rekor")));
        assert!(
            s.certificate_authorities
                .iter()
                .all(|c| c.anchor_sha256.is_some())
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(TrustedRootSummary::from_json(b"{\"tlogs\": 3}").is_err());
    }
}
