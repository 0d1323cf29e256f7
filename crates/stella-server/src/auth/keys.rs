//! Token-signing keys (ES256, P-256): generated with aws-lc-rs, private
//! halves stored as PKCS#8 DER files (0600) under `<data-dir>/keys/`,
//! public halves as JWKs in the database. The newest key signs; retired
//! keys keep verifying until tokens they signed have expired.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::json;
use sha2::{Digest, Sha256};

use stella_store::{SigningKeyRecord, SigningKeyRepository, Store, StoreError};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("generating a signing key failed")]
    Generate,
    #[error("signing key file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("no signing key; run `stella serve init` first")]
    NoKey,
    #[error("stored key `{0}` is malformed")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    External(#[from] super::external::JwksError),
}

/// The key that signs new tokens.
pub struct ActiveKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// Keys as loaded from the store: the signer and every verifier.
pub struct KeySet {
    pub active: ActiveKey,
    pub verifiers: HashMap<String, DecodingKey>,
    /// `{"keys": [...]}`, newest first.
    pub jwks: serde_json::Value,
}

fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

fn key_path(data_dir: &Path, kid: &str) -> PathBuf {
    keys_dir(data_dir).join(format!("{kid}.p8"))
}

/// The public JWK and RFC 7638 thumbprint (used as `kid`) of a P-256 key.
fn public_jwk(uncompressed_point: &[u8]) -> Result<(String, serde_json::Value), KeyError> {
    let (x, y) = match uncompressed_point {
        [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(KeyError::Generate),
    };
    let (x, y) = (B64.encode(x), B64.encode(y));
    let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = B64.encode(Sha256::digest(thumbprint_input.as_bytes()));
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"});
    Ok((kid, jwk))
}

/// Writes `bytes` to `path` atomically with mode 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let err = |message: String| KeyError::File {
        path: path.to_path_buf(),
        message,
    };
    let dir = path
        .parent()
        .ok_or_else(|| err("no parent directory".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| err(e.to_string()))?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(e.to_string()))?;
    }
    tmp.write_all(bytes).map_err(|e| err(e.to_string()))?;
    tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
    tmp.persist(path).map_err(|e| err(e.error.to_string()))?;
    Ok(())
}

/// Generates a key, stores its private half in the data dir and its public
/// half in the database (retiring the previous key). Returns the kid.
pub async fn generate(store: &Store, data_dir: &Path, now: i64) -> Result<String, KeyError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| KeyError::Generate)?;
    let (kid, jwk) = public_jwk(pair.public_key().as_ref())?;
    write_private(&key_path(data_dir, &kid), pkcs8.as_ref())?;
    let record = SigningKeyRecord {
        kid: kid.clone(),
        created_at: now,
        retired_at: None,
        public_jwk: jwk.to_string(),
    };
    store.add_signing_key(&record).await?;
    Ok(kid)
}

/// Loads the signing key and the verifiers still in use at `now`
/// (retired keys stay for `token_ttl` seconds after retirement).
pub async fn load(
    store: &Store,
    data_dir: &Path,
    now: i64,
    token_ttl: i64,
) -> Result<KeySet, KeyError> {
    let records = store.list_signing_keys().await?;
    let mut active = None;
    let mut verifiers = HashMap::new();
    let mut jwks = Vec::new();
    for record in records {
        let retired_for_long = record.retired_at.is_some_and(|at| at + token_ttl < now);
        if retired_for_long {
            continue;
        }
        let jwk: serde_json::Value = serde_json::from_str(&record.public_jwk)
            .map_err(|_| KeyError::Malformed(record.kid.clone()))?;
        let coord = |name: &str| {
            jwk.get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let decoding = DecodingKey::from_ec_components(&coord("x"), &coord("y"))
            .map_err(|_| KeyError::Malformed(record.kid.clone()))?;
        verifiers.insert(record.kid.clone(), decoding);
        jwks.push(jwk);
        if record.retired_at.is_none() && active.is_none() {
            let path = key_path(data_dir, &record.kid);
            let der = std::fs::read(&path).map_err(|e| KeyError::File {
                path: path.clone(),
                message: e.to_string(),
            })?;
            active = Some(ActiveKey {
                kid: record.kid,
                encoding: EncodingKey::from_ec_der(&der),
            });
        }
    }
    let active = active.ok_or(KeyError::NoKey)?;
    Ok(KeySet {
        active,
        verifiers,
        jwks: json!({ "keys": jwks }),
    })
}
