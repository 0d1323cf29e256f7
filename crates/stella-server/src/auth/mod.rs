//! Authentication and authorisation: the client-credentials token
//! endpoint's logic, ES256 access tokens, and [`Principal`], the verified
//! caller every protected handler extracts. The tenant a handler acts for
//! comes only from [`Principal::require`], i.e. from a verified token.
//! Tokens whose `iss` names a configured external OIDC issuer are checked
//! by [`external`] against that issuer's keys instead.

pub mod cache;
pub mod clients;
pub mod external;
pub mod keys;
pub mod scope;
pub mod secret;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use stella_store::{ClientRepository, Store, TenantContext};

use crate::error::ApiError;
use crate::state::AppState;
pub use scope::Scope;

/// Claims of a Stella access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    tenant: String,
    scope: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// `POST /connect/token` success body (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A verified caller.
#[derive(Clone, Debug)]
pub struct Principal {
    pub client_id: String,
    tenant: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// The tenant context for a call that needs `scope`; 403 without it.
    pub fn require(&self, scope: Scope) -> Result<TenantContext, ApiError> {
        if self.scopes.contains(&scope) {
            Ok(TenantContext::from_verified_identity(
                &self.tenant,
                &self.client_id,
            ))
        } else {
            Err(ApiError::MissingScope(scope.as_str()))
        }
    }
}

/// Issues and verifies tokens.
pub struct Authority {
    store: Store,
    data_dir: PathBuf,
    issuer: String,
    audience: String,
    ttl: u64,
    keys: RwLock<Arc<keys::KeySet>>,
    last_reload: Mutex<Instant>,
    /// Verified against when the client id is unknown, so the answer takes
    /// as long as for a known client.
    dummy_hash: String,
    external: external::ExternalIssuers,
    /// Tokens whose signature was already checked (see [`cache`]).
    verified: cache::TokenCache,
    /// Client rows, trusted while the database's client generation holds
    /// (see [`clients`]).
    clients: clients::ClientCache,
}

/// How many verified tokens [`Authority`] remembers.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Authority {
    pub async fn new(
        store: Store,
        data_dir: PathBuf,
        issuer: String,
        audience: String,
        ttl: u64,
        external_issuers: &[crate::config::ExternalIssuer],
        revocation_recheck: Duration,
    ) -> Result<Self, keys::KeyError> {
        let external = external::ExternalIssuers::new(external_issuers)?;
        let ttl_i = i64::try_from(ttl).unwrap_or(i64::MAX);
        let set = keys::load(&store, &data_dir, unix_now(), ttl_i).await?;
        let dummy_hash = secret::hash("stella-dummy").map_err(|_| keys::KeyError::Generate)?;
        Ok(Self {
            store,
            data_dir,
            issuer,
            audience,
            ttl,
            keys: RwLock::new(Arc::new(set)),
            last_reload: Mutex::new(Instant::now()),
            dummy_hash,
            external,
            verified: cache::TokenCache::new(TOKEN_CACHE_CAPACITY),
            clients: clients::ClientCache::new(revocation_recheck),
        })
    }

    fn current(&self) -> Arc<keys::KeySet> {
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    async fn reload(&self) -> Result<Arc<keys::KeySet>, ApiError> {
        let ttl = i64::try_from(self.ttl).unwrap_or(i64::MAX);
        let set = keys::load(&self.store, &self.data_dir, unix_now(), ttl)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "loading signing keys failed");
                ApiError::Internal
            })?;
        let set = Arc::new(set);
        if let Ok(mut slot) = self.keys.write() {
            *slot = Arc::clone(&set);
        }
        if let Ok(mut at) = self.last_reload.lock() {
            *at = Instant::now();
        }
        Ok(set)
    }

    /// The JWKS document (public keys still in use).
    pub fn jwks(&self) -> serde_json::Value {
        self.current().jwks.clone()
    }

    /// Client-credentials grant.
    pub async fn issue(
        &self,
        client_id: &str,
        client_secret: &str,
        requested: Option<&str>,
    ) -> Result<TokenResponse, ApiError> {
        let client = self.store.find_client(client_id).await?;
        let phc = client
            .as_ref()
            .map(|c| c.secret_hash.clone())
            .unwrap_or(self.dummy_hash.clone());
        let secret = client_secret.to_string();
        let matches = tokio::task::spawn_blocking(move || secret::verify(&secret, &phc))
            .await
            .map_err(|_| ApiError::Internal)?;
        let client = match client {
            Some(c) if matches && c.revoked_at.is_none() => c,
            _ => return Err(ApiError::InvalidClient),
        };
        let granted = grant_scopes(&client.scopes, requested)?;
        // Pick up a rotated key without a restart.
        let set = self.reload().await?;
        let now = unix_now();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: client.client_id.clone(),
            tenant: client.tenant.clone(),
            scope: granted.clone(),
            iat: now,
            exp: now.saturating_add(i64::try_from(self.ttl).unwrap_or(i64::MAX)),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(set.active.kid.clone());
        header.typ = Some("at+jwt".into());
        let access_token =
            jsonwebtoken::encode(&header, &claims, &set.active.encoding).map_err(|e| {
                tracing::error!(error = %e, "signing a token failed");
                ApiError::Internal
            })?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.ttl,
            scope: granted,
        })
    }

    /// Verifies a bearer token. A token whose `iss` names a configured
    /// external issuer goes to [`external`]; every other token must be one
    /// of ours: ES256 only, known `kid`, issuer, audience, expiry, and a
    /// client that is still active. The signature check is skipped for a
    /// token already verified (see [`cache`]); the client is checked on
    /// every call against rows cached while the database's client
    /// generation holds (see [`clients`]), so a revocation made by any
    /// process takes effect within the recheck interval.
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let now = unix_now();
        let set = self.current();
        let cached = self
            .verified
            .get(token, now, |kid| set.verifiers.contains_key(kid));
        let claims = match cached {
            Some(hit) => hit,
            None => {
                let Some(claims) = self.verify_signed(token).await? else {
                    return self.verify_external(token).await;
                };
                self.verified.insert(token, claims.clone(), now);
                claims
            }
        };
        let bad =
            |why: &str| ApiError::Unauthorized(format!("the access token is not valid ({why})"));
        let client = self.client_status(&claims.sub).await?;
        if !client.is_some_and(|c| c.active && c.tenant == claims.tenant) {
            return Err(bad("client revoked"));
        }
        let scopes = claims
            .scope
            .split_whitespace()
            .filter_map(Scope::parse)
            .collect();
        Ok(Principal {
            client_id: claims.sub,
            tenant: claims.tenant,
            scopes,
        })
    }

    async fn verify_external(&self, token: &str) -> Result<Principal, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            ApiError::Unauthorized(
                "the access token is not valid (malformed or unsupported header)".into(),
            )
        })?;
        match external::unverified_issuer(token) {
            Some(iss) => self.external.verify(&iss, token, &header).await,
            None => Err(ApiError::Internal),
        }
    }

    /// Checks one of our own tokens' header, signature and claims; `None`
    /// when the token names a configured external issuer instead.
    async fn verify_signed(&self, token: &str) -> Result<Option<cache::VerifiedToken>, ApiError> {
        let bad =
            |why: &str| ApiError::Unauthorized(format!("the access token is not valid ({why})"));
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| bad("malformed or unsupported header"))?;
        if external::unverified_issuer(token).is_some_and(|i| self.external.handles(&i)) {
            return Ok(None);
        }
        if header.alg != Algorithm::ES256 {
            return Err(bad("algorithm not accepted"));
        }
        let kid = header.kid.ok_or_else(|| bad("no key id"))?;
        let mut set = self.current();
        if !set.verifiers.contains_key(&kid) && self.may_reload() {
            set = self.reload().await?;
        }
        let key = set
            .verifiers
            .get(&kid)
            .ok_or_else(|| bad("unknown key id"))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => bad("expired"),
                ErrorKind::InvalidIssuer => bad("wrong issuer"),
                ErrorKind::InvalidAudience => bad("wrong audience"),
                ErrorKind::InvalidSignature => bad("bad signature"),
                _ => bad("rejected"),
            }
        })?;
        let c = data.claims;
        Ok(Some(cache::VerifiedToken {
            kid,
            exp: c.exp,
            sub: c.sub,
            tenant: c.tenant,
            scope: c.scope,
        }))
    }

    /// The client's tenant and whether it is active (`None`: no such
    /// client), from the cache when the client generation allows.
    async fn client_status(
        &self,
        client_id: &str,
    ) -> Result<Option<clients::ClientStatus>, ApiError> {
        if self.clients.enabled() {
            let now = Instant::now();
            if self.clients.needs_recheck(now) {
                let generation = self.store.client_generation().await?;
                self.clients.observe_generation(generation, now);
            }
        }
        let epoch = match self.clients.get(client_id) {
            Ok(hit) => return Ok(Some(hit)),
            Err(epoch) => epoch,
        };
        let Some(row) = self.store.find_client(client_id).await? else {
            return Ok(None);
        };
        let status = clients::ClientStatus {
            tenant: row.tenant,
            active: row.revoked_at.is_none(),
        };
        self.clients.insert(client_id, status.clone(), epoch);
        Ok(Some(status))
    }

    fn may_reload(&self) -> bool {
        self.last_reload
            .lock()
            .map(|at| at.elapsed() > Duration::from_secs(1))
            .unwrap_or(false)
    }
}

/// The scopes to grant: all of the client's when none are requested,
/// otherwise the requested ones, each of which the client must have.
fn grant_scopes(allowed: &[String], requested: Option<&str>) -> Result<String, ApiError> {
    let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
        return Ok(allowed.join(" "));
    };
    let mut granted = Vec::new();
    for name in requested.split_whitespace() {
        if !allowed.iter().any(|a| a == name) {
            return Err(ApiError::BadRequest {
                code: "INVALID_SCOPE",
                detail: format!("the client may not request scope `{name}`"),
            });
        }
        granted.push(name);
    }
    Ok(granted.join(" "))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("an access token is required".into()))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into())
            })?;
        state.authority.verify(token).await
    }
}
