//! RFC 6962 §2.1 / RFC 9162 §2.1 Merkle tree hashing and proof verification
//! (SHA-256 through stella-types' digest helpers). Verifies proofs only; does
//! not build trees or store anything.

use stella_types::digest::sha256_concat;

/// Longest proof accepted: a tree of 2^64 leaves needs at most 64 hashes
/// (inclusion) or 2*64 (consistency). Longer proofs are rejected up front.
pub const MAX_PROOF_HASHES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("hash has {0} bytes, expected 32")]
    BadHashLength(usize),
    #[error("proof has {0} hashes, more than the {MAX_PROOF_HASHES} allowed")]
    ProofTooLong(usize),
    #[error("proof has the wrong number of hashes for this tree")]
    WrongProofLength,
    #[error("computed root does not match the expected root")]
    RootMismatch,
    #[error("invalid tree sizes {size1} -> {size2}")]
    BadSizes { size1: u64, size2: u64 },
}

/// `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> [u8; 32] {
    sha256_concat(&[&[0u8], leaf])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    sha256_concat(&[&[1u8], left, right])
}

fn hash32(b: &[u8]) -> Result<[u8; 32], MerkleError> {
    <[u8; 32]>::try_from(b).map_err(|_| MerkleError::BadHashLength(b.len()))
}

fn check_proof<P: AsRef<[u8]>>(proof: &[P]) -> Result<(), MerkleError> {
    if proof.len() > MAX_PROOF_HASHES {
        return Err(MerkleError::ProofTooLong(proof.len()));
    }
    for p in proof {
        hash32(p.as_ref())?;
    }
    Ok(())
}

/// Computes the root implied by an inclusion proof (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion_proof<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
) -> Result<[u8; 32], MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut r = hash32(leaf_hash)?;
    check_proof(proof)?;
    let mut fnode = index;
    let mut snode = size - 1;
    for p in proof {
        let p = p.as_ref();
        if snode == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), MerkleError> {
    let root = hash32(root)?;
    let computed = root_from_inclusion_proof(index, size, leaf_hash, proof)?;
    if computed != root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
/// `size1 == 0` is always rejected.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), MerkleError> {
    if size1 == 0 || size1 > size2 {
        return Err(MerkleError::BadSizes { size1, size2 });
    }
    check_proof(proof)?;
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength);
        }
        if root1 != root2 {
            return Err(MerkleError::RootMismatch);
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(MerkleError::WrongProofLength);
    }
    let root1 = hash32(root1)?;
    let root2 = hash32(root2)?;
    let mut path: Vec<[u8; 32]> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1);
    }
    for p in proof {
        path.push(hash32(p.as_ref())?);
    }
    let mut fnode = size1 - 1;
    let mut snode = size2 - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(MerkleError::WrongProofLength);
    };
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if snode == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if fr != root1 || sr != root2 {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}
