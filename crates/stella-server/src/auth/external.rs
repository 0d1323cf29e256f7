//! Access tokens from external OIDC issuers (a company IdP): which issuer a
//! token claims, that issuer's keys (a JWK Set from a file, or from a URL
//! with a deadline and a cache), and the checks a token must pass before
//! it becomes a [`Principal`]: an algorithm the issuer is configured with
//! (asymmetric only), a known `kid`, the signature, `iss`, `aud`, `exp`,
//! `nbf`, a tenant claim and scopes.
//!
//! This module does not issue tokens and knows nothing of the server's own
//! keys; [`super::Authority`] hands it the tokens whose `iss` names a
//! configured issuer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};

use super::{Principal, Scope};
use crate::config::ExternalIssuer;
use crate::error::ApiError;

/// Largest JWK Set read from a file or URL.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Clock skew allowed on `exp` and `nbf` of external tokens.
const LEEWAY_SECONDS: u64 = 30;
/// After a failed refresh, fetched keys stay usable this long past their
/// cache lifetime (seed 003's offline cache tolerance).
const STALE_TOLERANCE: Duration = Duration::from_secs(600);
/// A token with an unknown `kid` triggers at most one refetch per interval.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Why an issuer's keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS of issuer {issuer}: {message}")]
    Load { issuer: String, message: String },
}

/// One usable key of a JWK Set.
struct IssuerKey {
    key: DecodingKey,
    /// The JWK's `alg`, when it names one; the token must use exactly it.
    alg: Option<Algorithm>,
    family: KeyFamily,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Ec,
    Rsa,
    Okp,
}

struct KeyCache {
    keys: Arc<HashMap<String, IssuerKey>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// One configured issuer and its cached keys.
struct IssuerVerifier {
    config: ExternalIssuer,
    algorithms: Vec<Algorithm>,
    http: Option<reqwest::Client>,
    cache: tokio::sync::Mutex<KeyCache>,
}

/// Every configured external issuer.
pub struct ExternalIssuers {
    issuers: Vec<IssuerVerifier>,
}

impl ExternalIssuers {
    /// Prepares the issuers; JWKS files are read now, so a missing or
    /// malformed file stops the server at start. URLs are fetched on first
    /// use.
    pub fn new(configs: &[ExternalIssuer]) -> Result<Self, JwksError> {
        let mut issuers = Vec::new();
        for config in configs {
            issuers.push(IssuerVerifier::new(config.clone())?);
        }
        Ok(Self { issuers })
    }

    /// Whether `iss` names a configured issuer.
    pub fn handles(&self, iss: &str) -> bool {
        self.issuers.iter().any(|i| i.config.issuer == iss)
    }

    /// Verifies a token whose (unverified) `iss` is `iss`.
    pub async fn verify(
        &self,
        iss: &str,
        token: &str,
        header: &Header,
    ) -> Result<Principal, ApiError> {
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| bad("wrong issuer"))?;
        issuer.verify(token, header).await
    }
}

fn bad(why: &str) -> ApiError {
    ApiError::Unauthorized(format!("the access token is not valid ({why})"))
}

/// The `iss` claim of a token, read without verifying anything: only to
/// choose which issuer's checks apply.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

fn parse_algorithm(name: &str) -> Option<Algorithm> {
    let alg = match name {
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    };
    Some(alg)
}

fn family_of(alg: Algorithm) -> Option<KeyFamily> {
    use Algorithm::*;
    match alg {
        ES256 | ES384 => Some(KeyFamily::Ec),
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(KeyFamily::Rsa),
        EdDSA => Some(KeyFamily::Okp),
        _ => None,
    }
}

/// The usable signing keys of a JWK Set document: keys with a `kid`, of an
/// asymmetric type, not marked for encryption. Other entries are skipped
/// (an IdP may publish keys this server has no use for).
fn parse_jwks(bytes: &[u8]) -> Result<HashMap<String, IssuerKey>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let entries = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("no `keys` array")?;
    let mut keys = HashMap::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(_) => KeyFamily::Ec,
            AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
            AlgorithmParameters::OctetKeyPair(_) => KeyFamily::Okp,
            AlgorithmParameters::OctetKey(_) => continue,
        };
        let alg = match jwk.common.key_algorithm {
            Some(a) => match parse_algorithm(&a.to_string()) {
                Some(alg) => Some(alg),
                None => continue,
            },
            None => None,
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        keys.insert(kid, IssuerKey { key, alg, family });
    }
    Ok(keys)
}

fn read_jwks_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(format!(
            "{}: larger than {MAX_JWKS_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

async fn fetch_jwks(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: status {}", response.status()));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(format!("GET {url}: larger than {MAX_JWKS_BYTES} bytes"));
        }
    }
    Ok(bytes)
}

impl IssuerVerifier {
    fn new(config: ExternalIssuer) -> Result<Self, JwksError> {
        let err = |message: String| JwksError::Load {
            issuer: config.issuer.clone(),
            message,
        };
        let algorithms = config
            .algorithms
            .iter()
            .filter_map(|a| parse_algorithm(a))
            .collect();
        let mut cache = KeyCache {
            keys: Arc::new(HashMap::new()),
            fetched_at: None,
            last_attempt: None,
        };
        let http = match (&config.jwks_file, &config.jwks_url) {
            (Some(path), _) => {
                let keys = parse_jwks(&read_jwks_file(path).map_err(err)?)
                    .map_err(|m| err(format!("{}: {m}", path.display())))?;
                cache.keys = Arc::new(keys);
                cache.fetched_at = Some(Instant::now());
                cache.last_attempt = cache.fetched_at;
                None
            }
            (None, Some(url)) => {
                let https_only = url.starts_with("https://");
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(config.jwks_timeout_seconds))
                    .connect_timeout(Duration::from_secs(config.jwks_timeout_seconds))
                    .https_only(https_only)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| err(format!("HTTP client: {e}")))?;
                Some(client)
            }
            (None, None) => return Err(err("neither jwksFile nor jwksUrl is set".into())),
        };
        Ok(Self {
            config,
            algorithms,
            http,
            cache: tokio::sync::Mutex::new(cache),
        })
    }

    async fn load(&self) -> Result<HashMap<String, IssuerKey>, String> {
        let bytes = match (&self.http, &self.config.jwks_url, &self.config.jwks_file) {
            (Some(http), Some(url), _) => fetch_jwks(http, url).await?,
            (_, _, Some(path)) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_jwks_file(&path))
                    .await
                    .map_err(|e| e.to_string())??
            }
            _ => return Err("no JWKS source".into()),
        };
        parse_jwks(&bytes)
    }

    /// The issuer's keys: cached while fresh; refetched when stale or when
    /// `kid` is unknown (at most once per [`MIN_REFETCH_INTERVAL`]). When a
    /// refetch fails, keys past their lifetime stay usable for
    /// [`STALE_TOLERANCE`]; after that the call is a 503.
    async fn keys_for(&self, kid: &str) -> Result<Arc<HashMap<String, IssuerKey>>, ApiError> {
        let mut cache = self.cache.lock().await;
        let lifetime = Duration::from_secs(self.config.jwks_cache_seconds);
        let fresh = cache.fetched_at.is_some_and(|at| at.elapsed() < lifetime);
        let may_refetch = cache
            .last_attempt
            .is_none_or(|at| at.elapsed() >= MIN_REFETCH_INTERVAL);
        if may_refetch && (!fresh || !cache.keys.contains_key(kid)) {
            cache.last_attempt = Some(Instant::now());
            match self.load().await {
                Ok(keys) => {
                    cache.keys = Arc::new(keys);
                    cache.fetched_at = Some(Instant::now());
                }
                Err(message) => {
                    tracing::warn!(issuer = %self.config.issuer, error = %message, "fetching an issuer's keys failed");
                }
            }
        }
        let usable = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < lifetime + STALE_TOLERANCE);
        if !usable {
            return Err(ApiError::IssuerUnavailable(self.config.issuer.clone()));
        }
        Ok(Arc::clone(&cache.keys))
    }

    async fn verify(&self, token: &str, header: &Header) -> Result<Principal, ApiError> {
        if !self.algorithms.contains(&header.alg) {
            return Err(bad("algorithm not accepted"));
        }
        let kid = header.kid.as_deref().ok_or_else(|| bad("no key id"))?;
        let keys = self.keys_for(kid).await?;
        let key = keys.get(kid).ok_or_else(|| bad("unknown key id"))?;
        let alg_fits =
            family_of(header.alg) == Some(key.family) && key.alg.is_none_or(|a| a == header.alg);
        if !alg_fits {
            return Err(bad("algorithm does not fit the key"));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key.key,
            &validation,
        )
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => bad("expired"),
                ErrorKind::ImmatureSignature => bad("not valid yet"),
                ErrorKind::InvalidIssuer => bad("wrong issuer"),
                ErrorKind::InvalidAudience => bad("wrong audience"),
                ErrorKind::InvalidSignature => bad("bad signature"),
                _ => bad("rejected"),
            }
        })?;
        self.principal(&data.claims)
    }

    fn principal(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Principal, ApiError> {
        let subject = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("no subject"))?;
        let tenant = claims
            .get(&self.config.tenant_claim)
            .and_then(|v| v.as_str())
            .filter(|t| valid_tenant(t))
            .ok_or_else(|| bad("no usable tenant claim"))?;
        let scopes = match claims.get(&self.config.scope_claim) {
            Some(serde_json::Value::String(s)) => {
                s.split_whitespace().filter_map(Scope::parse).collect()
            }
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str())
                .filter_map(Scope::parse)
                .collect(),
            _ => Vec::new(),
        };
        Ok(Principal {
            client_id: subject.to_string(),
            tenant: tenant.to_string(),
            scopes,
        })
    }
}

/// Tenants as `stella admin clients add` accepts them: 1-64 of
/// `A-Z a-z 0-9 . _ -`.
fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn jwks_keeps_only_asymmetric_signing_keys_with_a_kid() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-256", "kid": "e", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "s", "alg": "ES256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "weird"}
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        let only = keys.get("s").unwrap();
        assert!(only.family == KeyFamily::Ec && only.alg == Some(Algorithm::ES256));
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"not json").is_err());
    }

    #[test]
    fn unverified_issuer_reads_iss_only_from_a_jwt_shape() {
        let b = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let token = format!(
            "{}.{}.sig",
            b(&serde_json::json!({"alg": "RS256"})),
            b(&serde_json::json!({"iss": "https://idp"}))
        );
        assert_eq!(unverified_issuer(&token).as_deref(), Some("https://idp"));
        assert_eq!(unverified_issuer("garbage"), None);
        assert_eq!(unverified_issuer("a.!!.c"), None);
    }

    #[test]
    fn tenants_follow_the_client_rules() {
        assert!(valid_tenant("acme-1.eu_west"));
        for bad in ["", "a/b", "a b", &"x".repeat(65)] {
            assert!(!valid_tenant(bad), "{bad}");
        }
    }
}
