//! age encryption of export archives (age v1 format, `age-encryption.org/v1`):
//! recipients are X25519 (`age1…`) or ssh-ed25519 public keys (`ssh-ed25519
//! AAAA…`); identities are age identity files (`AGE-SECRET-KEY-1…`) or
//! unencrypted OpenSSH ed25519 private keys. Built on the `age` crate, so
//! the Debian `age` CLI reads what we write and we read what it writes.
//!
//! What this module does not do: decide what is encrypted (the whole
//! archive, see `write`), or check anything inside it. Encryption uses a
//! fresh random file key, so an encrypted export is not byte-reproducible;
//! the archive inside it is.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::str::FromStr;

use crate::error::{ExportError, codes};

/// The first bytes of an age file (binary format).
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// The first bytes of an ASCII-armored age file.
pub const AGE_ARMOR_MAGIC: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Recipients to encrypt to.
pub struct Recipients(Vec<Box<dyn age::Recipient + Send>>);

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipients({})", self.0.len())
    }
}

impl Recipients {
    /// Parses recipients given one per string (comments `#` and blank lines skipped).
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Self, ExportError> {
        let mut out: Vec<Box<dyn age::Recipient + Send>> = Vec::new();
        for line in lines {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Ok(r) = age::x25519::Recipient::from_str(l) {
                out.push(Box::new(r));
            } else if let Ok(r) = age::ssh::Recipient::from_str(l) {
                out.push(Box::new(r));
            } else {
                let shown: String = l.chars().take(24).collect();
                return Err(ExportError::InvalidInput(format!(
                    "{shown:?}… is not an age recipient (age1… or ssh-ed25519 …)"
                )));
            }
        }
        Ok(Recipients(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Wraps `out` in an age encryptor.
    pub fn encrypt<W: Write>(&self, out: W) -> Result<age::stream::StreamWriter<W>, ExportError> {
        let enc = age::Encryptor::with_recipients(
            self.0.iter().map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| ExportError::InvalidInput(format!("cannot encrypt: {e}")))?;
        enc.wrap_output(out)
            .map_err(|e| ExportError::io("starting encryption", e))
    }
}

/// Identities to decrypt with.
pub struct Identities(Vec<Box<dyn age::Identity>>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({})", self.0.len())
    }
}

impl Identities {
    /// Reads an age identity file or an unencrypted OpenSSH ed25519 private key.
    pub fn from_file(path: &Path) -> Result<Self, ExportError> {
        let bytes = crate::read::read_file_capped(path, 1024 * 1024)?;
        let shown = path.display();
        if bytes.starts_with(b"-----BEGIN OPENSSH PRIVATE KEY-----") {
            let id = age::ssh::Identity::from_buffer(
                std::io::BufReader::new(&bytes[..]),
                Some(shown.to_string()),
            )
            .map_err(|e| {
                ExportError::InvalidInput(format!("{shown}: not a usable ssh key: {e}"))
            })?;
            if !matches!(id, age::ssh::Identity::Unencrypted(_)) {
                return Err(ExportError::InvalidInput(format!(
                    "{shown}: only unencrypted ssh-ed25519 keys can be used as identities"
                )));
            }
            return Ok(Identities(vec![Box::new(id)]));
        }
        let file =
            age::IdentityFile::from_buffer(std::io::BufReader::new(&bytes[..])).map_err(|e| {
                ExportError::InvalidInput(format!("{shown}: not an age identity file: {e}"))
            })?;
        let ids = file
            .into_identities()
            .map_err(|e| ExportError::InvalidInput(format!("{shown}: {e}")))?;
        if ids.is_empty() {
            return Err(ExportError::InvalidInput(format!(
                "{shown} holds no identity"
            )));
        }
        Ok(Identities(ids))
    }

    /// Decrypts `input` (an age file); a wrong identity is a clear error.
    pub fn decrypt<R: BufRead>(
        &self,
        input: R,
    ) -> Result<age::stream::StreamReader<R>, ExportError> {
        let dec = age::Decryptor::new_buffered(input).map_err(|e| {
            ExportError::unusable(codes::DECRYPT, format!("not a readable age file: {e}"))
        })?;
        dec.decrypt(self.0.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => ExportError::unusable(
                    codes::DECRYPT,
                    "the export is encrypted to other recipients: none of the given identities can decrypt it",
                ),
                other => ExportError::unusable(codes::DECRYPT, format!("cannot decrypt the export: {other}")),
            })
    }
}

/// Whether these first bytes start an age file.
pub fn is_age(head: &[u8]) -> bool {
    head.starts_with(AGE_MAGIC) || head.starts_with(AGE_ARMOR_MAGIC)
}

/// Reads up to `n` bytes from the start of `r` without losing them.
pub fn peek<R: Read>(r: &mut std::io::BufReader<R>, n: usize) -> std::io::Result<Vec<u8>> {
    let buf = r.fill_buf()?;
    Ok(buf.get(..n.min(buf.len())).unwrap_or(&[]).to_vec())
}
