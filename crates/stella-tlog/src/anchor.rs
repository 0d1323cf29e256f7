//! Anchoring inclusion proofs to a pinned checkpoint (`--rekor-checkpoint`).
//!
//! Given a checkpoint the user trusts (already signature-checked by the
//! caller) and the tree heads that a bundle's inclusion proofs lead to, says
//! for each whether it is the same tree head or is proven consistent with the
//! pinned one. Does not verify inclusion proofs themselves.

use crate::checkpoint::Checkpoint;
use crate::merkle::verify_consistency;

/// One tree head reached by a verified inclusion proof.
#[derive(Debug, Clone, Copy)]
pub struct AnchorInput<'a> {
    /// Origin of the bundle's checkpoint, when known (must equal the pinned origin).
    pub origin: Option<&'a str>,
    pub tree_size: u64,
    pub root_hash: &'a [u8],
    /// Consistency proof between this tree head and the pinned one (from the
    /// smaller tree to the larger), if the sizes differ.
    pub consistency_proof: Option<&'a [Vec<u8>]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorStatus {
    /// Same size and root as the pinned checkpoint.
    SameTreeHead,
    /// Different size, proven consistent by the given proof.
    Consistent,
    /// Not anchored, with the reason.
    Unanchored(String),
}

impl AnchorStatus {
    pub fn is_anchored(&self) -> bool {
        !matches!(self, AnchorStatus::Unanchored(_))
    }
}

/// Checks each input against `pinned`.
pub fn anchor_inclusion_proofs(
    pinned: &Checkpoint,
    inputs: &[AnchorInput<'_>],
) -> Vec<AnchorStatus> {
    inputs.iter().map(|i| anchor_one(pinned, i)).collect()
}

fn anchor_one(pinned: &Checkpoint, i: &AnchorInput<'_>) -> AnchorStatus {
    if let Some(o) = i.origin {
        if o != pinned.origin {
            return AnchorStatus::Unanchored(format!(
                "checkpoint is from log {o:?}, pinned checkpoint is from {:?}",
                pinned.origin
            ));
        }
    }
    if i.tree_size == pinned.size {
        return if i.root_hash == pinned.root_hash.as_slice() {
            AnchorStatus::SameTreeHead
        } else {
            AnchorStatus::Unanchored(format!(
                "root hash differs from the pinned checkpoint at tree size {}",
                i.tree_size
            ))
        };
    }
    let Some(proof) = i.consistency_proof else {
        return AnchorStatus::Unanchored(format!(
            "tree size {} differs from pinned size {} and no consistency proof was given",
            i.tree_size, pinned.size
        ));
    };
    let res = if i.tree_size < pinned.size {
        verify_consistency(
            i.tree_size,
            pinned.size,
            proof,
            i.root_hash,
            &pinned.root_hash,
        )
    } else {
        verify_consistency(
            pinned.size,
            i.tree_size,
            proof,
            &pinned.root_hash,
            i.root_hash,
        )
    };
    match res {
        Ok(()) => AnchorStatus::Consistent,
        Err(e) => AnchorStatus::Unanchored(format!("consistency proof does not verify: {e}")),
    }
}
