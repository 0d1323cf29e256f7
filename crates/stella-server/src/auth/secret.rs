//! Client secrets: generated from the system RNG, stored only as argon2id
//! PHC strings, compared in constant time by the argon2 crate.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;

/// A client secret shown to the operator once. `Debug` hides it.
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the system random number generator failed")]
    Random,
    #[error("hashing the secret failed")]
    Hash,
}

fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| SecretError::Random)?;
    Ok(buf)
}

/// A fresh 256-bit secret (base64url) and its argon2id hash.
pub fn generate() -> Result<(ClientSecret, String), SecretError> {
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    let hash = hash(&secret)?;
    Ok((ClientSecret(secret), hash))
}

pub fn hash(secret: &str) -> Result<String, SecretError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|_| SecretError::Hash)?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| SecretError::Hash)
}

/// True if `secret` matches `phc`. A malformed stored hash never matches.
pub fn verify(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_secret_verifies_and_others_do_not() {
        let (secret, phc) = generate().unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(secret.expose(), &phc));
        assert!(!verify("wrong", &phc));
        assert!(!verify(secret.expose(), "not-a-phc"));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}
