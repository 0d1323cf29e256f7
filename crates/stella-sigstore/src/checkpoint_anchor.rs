//! `--rekor-checkpoint` (library side): anchors a bundle's inclusion proofs to
//! a checkpoint the user pinned. The pinned note is verified against the
//! trusted root's log keys; each proof's tree head must equal the pinned one
//! at the same size or be proven consistent with it, else it is reported
//! "unanchored". Pure: consistency proofs are supplied by the caller.

use stella_tlog::note::{Note, NoteVerifier};
use stella_tlog::{AnchorInput, AnchorStatus, Checkpoint, anchor_inclusion_proofs};

use crate::bundle::Bundle;
use crate::error::SigstoreError;
use crate::trust_root::{LogKey, TrustedRoot};

/// A checkpoint whose signature verified with a trusted-root log key.
#[derive(Debug, Clone)]
pub struct PinnedCheckpoint {
    pub checkpoint: Checkpoint,
    /// `logId.keyId` of the log that signed it.
    pub log_id: Vec<u8>,
    pub log_url: String,
}

struct Key<'a> {
    log: &'a LogKey,
    name: String,
    any_name: bool,
}

impl NoteVerifier for Key<'_> {
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

impl PinnedCheckpoint {
    /// Parses a signed checkpoint note and verifies it with the trusted root's
    /// transparency-log keys (Rekor v1 ECDSA keys by key ID; Ed25519 keys by
    /// name = log hostname, and the origin must equal that name).
    pub fn from_note(note: &str, root: &TrustedRoot) -> Result<PinnedCheckpoint, SigstoreError> {
        let n = Note::parse(note)
            .map_err(|e| SigstoreError::unusable(format!("pinned checkpoint: {e}")))?;
        let cp = Checkpoint::parse_body(&n.text)
            .map_err(|e| SigstoreError::unusable(format!("pinned checkpoint: {e}")))?;
        for log in &root.tlogs {
            let ed = crate::trust_root::is_ed25519(log);
            let k = Key {
                log,
                name: log.hostname().to_string(),
                any_name: !ed,
            };
            if n.verify(&[&k as &dyn NoteVerifier]).is_ok() {
                if ed && cp.origin != k.name {
                    continue;
                }
                return Ok(PinnedCheckpoint {
                    checkpoint: cp,
                    log_id: log.log_id.clone(),
                    log_url: log.base_url.clone(),
                });
            }
        }
        Err(SigstoreError::failed(
            "pinned checkpoint is not signed by a transparency log of the trusted root",
        ))
    }
}

/// One status per transparency-log entry of the bundle (in order).
/// `consistency_proofs` maps a bundle tree size to a consistency proof between
/// that tree and the pinned one (smaller tree first).
pub fn anchor_bundle(
    pinned: &PinnedCheckpoint,
    bundle: &Bundle,
    consistency_proofs: &[(u64, Vec<Vec<u8>>)],
) -> Vec<AnchorStatus> {
    bundle
        .tlog_entries
        .iter()
        .map(|e| {
            if e.log_id != pinned.log_id {
                return AnchorStatus::Unanchored(
                    "entry is from another log than the pinned checkpoint".into(),
                );
            }
            let Some(p) = &e.inclusion_proof else {
                return AnchorStatus::Unanchored("entry has no inclusion proof".into());
            };
            let origin = Note::parse(&p.checkpoint)
                .ok()
                .and_then(|n| Checkpoint::parse_body(&n.text).ok())
                .map(|c| c.origin);
            let proof = consistency_proofs
                .iter()
                .find(|(s, _)| *s == p.tree_size)
                .map(|(_, v)| v.as_slice());
            let input = AnchorInput {
                origin: origin.as_deref(),
                tree_size: p.tree_size,
                root_hash: &p.root_hash,
                consistency_proof: proof,
            };
            anchor_inclusion_proofs(&pinned.checkpoint, &[input])
                .into_iter()
                .next()
                .unwrap_or(AnchorStatus::Unanchored("internal: no status".into()))
        })
        .collect()
}
