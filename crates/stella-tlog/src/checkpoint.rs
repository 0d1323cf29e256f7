//! C2SP tlog-checkpoint bodies: `origin\nsize\nbase64(root)\n[extensions]`.
//! Parses the note text only; signatures are checked by [`crate::note`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::note::NoteError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root_hash: Vec<u8>,
    /// Extension lines after the root hash, each without its newline.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses the signed text of a checkpoint note.
    pub fn parse_body(text: &str) -> Result<Checkpoint, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Malformed("checkpoint lacks final newline"));
        }
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or("");
        if origin.is_empty() {
            return Err(NoteError::Malformed("checkpoint origin is empty"));
        }
        let size = lines
            .next()
            .ok_or(NoteError::Malformed("checkpoint lacks size"))?;
        let root = lines
            .next()
            .ok_or(NoteError::Malformed("checkpoint lacks root hash"))?;
        let rest: Vec<&str> = lines.collect();
        if rest.is_empty() {
            // "a\nb\n" splits into ["a","b",""]: the root line was the empty tail.
            return Err(NoteError::Malformed("checkpoint lacks root hash"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(NoteError::Malformed(
                "checkpoint size is not a decimal number",
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| NoteError::Malformed("checkpoint size out of range"))?;
        if root.is_empty() {
            return Err(NoteError::Malformed("checkpoint lacks root hash"));
        }
        let root_hash = STANDARD
            .decode(root)
            .map_err(|_| NoteError::Malformed("checkpoint root hash is not base64"))?;
        let extensions = rest[..rest.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root_hash,
            extensions,
        })
    }
}
