//! C2SP signed notes (`signed-note`): parsing, verifier keys (`vkey`) and
//! signature-line selection. The actual signature check is delegated to a
//! [`NoteVerifier`] supplied by the caller; this module does no crypto of its
//! own besides the SHA-256 key-ID derivation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use stella_types::digest::{sha256_bytes, sha256_concat};

/// Most signature lines accepted on one note (as golang.org/x/mod/sumdb/note).
pub const MAX_NOTE_SIGNATURES: usize = 100;
/// Largest note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed note (more than {MAX_NOTE_SIGNATURES} signatures)")]
    TooManySignatures,
    #[error("invalid signature for key {0}")]
    InvalidSignature(String),
    #[error("note has no verifiable signatures")]
    NoVerifiableSignature,
    #[error("malformed verifier key: {0}")]
    BadVkey(&'static str),
}

/// One `— <name> <base64(keyID || sig)>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// Something that can check one note signature: a (name, key ID) pair and a key.
pub trait NoteVerifier {
    fn name(&self) -> &str;
    fn key_id(&self) -> u32;
    /// Whether a signature line with this name is meant for this key. The
    /// default is an exact match; Rekor v1 checkpoints are matched by key ID
    /// only, so such a verifier returns `true` for any name.
    fn matches_name(&self, name: &str) -> bool {
        name == self.name()
    }
    /// Checks `signature` (the bytes after the 4-byte key ID) over `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool;
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

impl Note {
    /// Parses a signed note. The text/signature split is the last blank line.
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::Malformed("too large"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed("control character"));
        }
        if !note.ends_with('\n') {
            return Err(NoteError::Malformed("missing final newline"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no signature block"))?;
        let text = note.get(..split + 1).ok_or(NoteError::Malformed("split"))?;
        let sigs = note.get(split + 2..).ok_or(NoteError::Malformed("split"))?;
        if sigs.is_empty() {
            return Err(NoteError::Malformed("no signature lines"));
        }
        let mut signatures = Vec::new();
        for line in sigs.strip_suffix('\n').unwrap_or(sigs).split('\n') {
            if signatures.len() >= MAX_NOTE_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or(NoteError::Malformed("bad signature line"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or(NoteError::Malformed("bad signature line"))?;
            if !valid_name(name) {
                return Err(NoteError::Malformed("bad key name"));
            }
            let raw = STANDARD
                .decode(b64)
                .map_err(|_| NoteError::Malformed("bad signature base64"))?;
            if raw.len() < 5 {
                return Err(NoteError::Malformed("signature too short"));
            }
            let (id, sig) = raw.split_at(4);
            let key_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_id,
                signature: sig.to_vec(),
            });
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// Verifies the note: every signature line whose (name, key ID) matches a
    /// verifier must verify; lines from unknown keys are ignored; at least one
    /// must verify. Returns the indices (into `verifiers`) that verified.
    pub fn verify(&self, verifiers: &[&dyn NoteVerifier]) -> Result<Vec<usize>, NoteError> {
        let mut verified = Vec::new();
        for s in &self.signatures {
            for (i, v) in verifiers.iter().enumerate() {
                if v.key_id() != s.key_id || !v.matches_name(&s.name) {
                    continue;
                }
                if !v.verify(self.text.as_bytes(), &s.signature) {
                    return Err(NoteError::InvalidSignature(format!(
                        "{}+{:08x}",
                        v.name(),
                        v.key_id()
                    )));
                }
                if !verified.contains(&i) {
                    verified.push(i);
                }
            }
        }
        if verified.is_empty() {
            return Err(NoteError::NoVerifiableSignature);
        }
        Ok(verified)
    }
}

/// Signature algorithms of verifier keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VkeyAlgorithm {
    /// Type 0x01: Ed25519, key = 32 raw bytes.
    Ed25519,
    /// Type 0x02: ECDSA, key = DER SubjectPublicKeyInfo (Rekor v1 style).
    Ecdsa,
}

/// A verifier key `<name>+<hex key ID>+<base64(type || key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vkey {
    pub name: String,
    pub key_id: u32,
    pub algorithm: VkeyAlgorithm,
    pub key: Vec<u8>,
}

/// First 4 bytes of SHA-256(name || 0x0A || type || key), big-endian.
pub fn key_id_for_named_key(name: &str, sig_type: u8, key: &[u8]) -> u32 {
    let d = sha256_concat(&[name.as_bytes(), &[0x0a, sig_type], key]);
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// First 4 bytes of SHA-256(SPKI DER), big-endian (Rekor v1 ECDSA key hint).
pub fn key_id_for_spki(spki_der: &[u8]) -> u32 {
    let d = sha256_bytes(spki_der);
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

impl Vkey {
    pub fn parse(s: &str) -> Result<Vkey, NoteError> {
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(hexid), Some(b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadVkey("wrong number of parts"));
        };
        if !valid_name(name) {
            return Err(NoteError::BadVkey("bad name"));
        }
        if hexid.len() != 8 {
            return Err(NoteError::BadVkey("bad key ID"));
        }
        let key_id =
            u32::from_str_radix(hexid, 16).map_err(|_| NoteError::BadVkey("bad key ID"))?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| NoteError::BadVkey("bad base64"))?;
        let (&t, key) = raw.split_first().ok_or(NoteError::BadVkey("empty key"))?;
        let (algorithm, want) = match t {
            0x01 => {
                if key.len() != 32 {
                    return Err(NoteError::BadVkey("Ed25519 key must be 32 bytes"));
                }
                (VkeyAlgorithm::Ed25519, key_id_for_named_key(name, t, key))
            }
            0x02 => (VkeyAlgorithm::Ecdsa, key_id_for_spki(key)),
            _ => return Err(NoteError::BadVkey("unknown algorithm")),
        };
        if want != key_id {
            return Err(NoteError::BadVkey("key ID does not match key"));
        }
        Ok(Vkey {
            name: name.to_string(),
            key_id,
            algorithm,
            key: key.to_vec(),
        })
    }
}
