//! Registry authentication: anonymous, HTTP basic, and the bearer token
//! challenge flow (`WWW-Authenticate: Bearer realm=..,service=..,scope=..`,
//! Docker registry token authentication).
//!
//! The scheme a registry asked for is remembered per registry, so after the
//! first challenge auth is attached up front. Bearer tokens are cached per
//! repository with the access level they grant (pull < pull,push <
//! delete,pull,push); a token for a higher level serves lower ones, so a push
//! does not fetch a second token for its reads. Credentials are looked up at
//! most once per registry, and only when a registry asks for them.
//!
//! Who gets what (see `docs/registry.md`): challenges are only ever taken
//! from the registry itself (the request core never passes on a 401 from a
//! host a redirect led to). A token realm must be https when the registry
//! is reached over https (a plain-http realm is refused, not merely sent
//! without credentials); a realm on another host receives the registry's
//! credentials as docker does, unless the strict mode
//! ([`super::RegistryOptions::no_cross_host_realm`]) refuses it.
//!
//! What this module does not do: OAuth2 refresh-token (`identitytoken`)
//! exchange, send requests to the registry itself, or follow redirects
//! (token requests do not follow any).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use url::Url;

use super::credentials::{CredentialProvider, Credentials};
use super::http::{Target, host_port, net_error, origin, read_capped, read_error_body, redact};
use crate::OciError;

/// What the auth flow needs from the client that owns it.
pub(crate) struct AuthEnv<'a> {
    pub http: &'a reqwest::Client,
    pub requests: &'a AtomicU64,
    pub provider: &'a dyn CredentialProvider,
    /// The registry's base URL (`scheme://host[:port]/`).
    pub registry_url: &'a Url,
    /// Refuse token realms on another host than the registry.
    pub no_cross_host_realm: bool,
    /// How messages name the user's remedies.
    pub words: &'a super::RegistryWords,
    /// Deadline of one token request.
    pub token_deadline: Duration,
}

/// Largest token server answer read.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 1024 * 1024;
/// Token lifetime assumed when the server gives none (the spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The repository access a request needs, ordered by what it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Pull,
    Push,
    Delete,
}

impl Access {
    /// The actions of the token scope (`repository:<name>:<actions>`).
    pub fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
            // distribution checks `delete`; asking for all three keeps one token.
            Access::Delete => "delete,pull,push",
        }
    }
}

/// What a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone)]
struct Token {
    value: String,
    access: Access,
    expires: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// Auth state of one client. `Debug` shows which registries have cached
/// state, never a credential or token.
#[derive(Default)]
pub struct AuthCache {
    schemes: Mutex<HashMap<String, Challenge>>,
    creds: Mutex<HashMap<String, Option<Credentials>>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field(
                "schemes",
                &lock(&self.schemes).keys().cloned().collect::<Vec<_>>(),
            )
            .field("tokens", &lock(&self.tokens).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AuthCache {
    /// The `Authorization` header to send, fetching a token if the registry
    /// is known to want one and none cached covers `access`.
    pub(crate) async fn header_for(
        &self,
        env: &AuthEnv<'_>,
        target: &Target<'_>,
        access: Access,
    ) -> Result<Option<String>, OciError> {
        let scheme = lock(&self.schemes).get(target.registry).cloned();
        match scheme {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credentials(env, target.registry)
                .await?
                .map(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service }) => {
                let key = (target.registry.to_string(), target.repository.to_string());
                let cached = lock(&self.tokens).get(&key).cloned();
                let mut want = access;
                if let Some(t) = &cached
                    && t.expires > Instant::now()
                {
                    if t.access >= access {
                        return Ok(Some(format!("Bearer {}", t.value)));
                    }
                    want = want.max(t.access);
                }
                let token = self
                    .fetch_token(env, target, want, &realm, service.as_deref())
                    .await?;
                let header = format!("Bearer {}", token.value);
                lock(&self.tokens).insert(key, token);
                Ok(Some(header))
            }
        }
    }

    /// Records a 401 challenge. Returns whether a retry can succeed.
    pub(crate) async fn on_challenge(
        &self,
        env: &AuthEnv<'_>,
        target: &Target<'_>,
        _access: Access,
        header: Option<&str>,
        had_auth: bool,
    ) -> Result<bool, OciError> {
        let Some(challenge) = header.and_then(parse_challenge) else {
            return Ok(false);
        };
        let previous = lock(&self.schemes).insert(target.registry.to_string(), challenge.clone());
        match challenge {
            Challenge::Basic => {
                if had_auth && previous == Some(Challenge::Basic) {
                    return Ok(false);
                }
                Ok(self.credentials(env, target.registry).await?.is_some())
            }
            Challenge::Bearer { .. } => {
                // The token we sent (if any) is expired or too narrow.
                lock(&self.tokens)
                    .remove(&(target.registry.to_string(), target.repository.to_string()));
                Ok(true)
            }
        }
    }

    /// The error for a 401 after a retry with fresh auth.
    pub(crate) async fn refused(
        &self,
        env: &AuthEnv<'_>,
        target: &Target<'_>,
        had_auth: bool,
    ) -> OciError {
        let creds = self.credentials(env, target.registry).await.ok().flatten();
        match creds {
            Some(c) if had_auth => OciError::Unauthorized(format!(
                "registry {} refused the credentials of user {:?} for {}",
                target.registry, c.username, target.repository
            )),
            _ => OciError::Unauthorized(format!(
                "registry {} requires authentication for {} and no credentials were found \
                 (use --username with --password-stdin, or docker login)",
                target.registry, target.repository
            )),
        }
    }

    /// Credentials for a registry host from the provider (asked once per host).
    async fn credentials(
        &self,
        env: &AuthEnv<'_>,
        registry: &str,
    ) -> Result<Option<Credentials>, OciError> {
        if let Some(c) = lock(&self.creds).get(registry) {
            return Ok(c.clone());
        }
        let found = env.provider.credentials(registry).await?;
        lock(&self.creds).insert(registry.to_string(), found.clone());
        Ok(found)
    }

    async fn fetch_token(
        &self,
        env: &AuthEnv<'_>,
        target: &Target<'_>,
        access: Access,
        realm: &str,
        service: Option<&str>,
    ) -> Result<Token, OciError> {
        let mut url = Url::parse(realm).map_err(|e| {
            OciError::Protocol(format!(
                "registry {} sent an unusable token realm {realm:?}: {e}",
                target.registry
            ))
        })?;
        check_realm(&url, env.registry_url, env.no_cross_host_realm, env.words).map_err(|why| {
            OciError::Unauthorized(format!("registry {}: {why}", target.registry))
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair(
                "scope",
                &format!("repository:{}:{}", target.repository, access.actions()),
            );
        }
        let creds = self.credentials(env, target.registry).await?;
        let mut rb = env.http.get(url.clone()).timeout(env.token_deadline);
        let mut sent_creds = None;
        if let Some(c) = &creds {
            rb = rb.header(reqwest::header::AUTHORIZATION, c.basic_header());
            sent_creds = Some(c.username.clone());
        }
        env.requests.fetch_add(1, Ordering::Relaxed);
        let resp = rb.send().await.map_err(|e| {
            net_error(
                &format!(
                    "token request for registry {} to {}",
                    target.registry,
                    redact(&url)
                ),
                e,
                "",
            )
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = read_error_body(resp).await;
            return Err(OciError::Unauthorized(match sent_creds {
                Some(u) => format!(
                    "registry {} refused the credentials of user {u:?} for {} ({}){}",
                    target.registry,
                    target.repository,
                    access.actions(),
                    body.map(|b| format!(": {b}")).unwrap_or_default()
                ),
                None => format!(
                    "registry {} refused anonymous access to {} ({}); {}",
                    target.registry,
                    target.repository,
                    access.actions(),
                    env.words.log_in
                ),
            }));
        }
        if !status.is_success() {
            let body = read_error_body(resp).await;
            let message = format!(
                "token server of registry {} answered {status}{}",
                target.registry,
                body.map(|b| format!(": {b}")).unwrap_or_default()
            );
            return Err(if status.is_server_error() {
                OciError::Unavailable(message)
            } else {
                OciError::Protocol(message)
            });
        }
        let bytes = read_capped(resp, MAX_TOKEN_RESPONSE_BYTES, "token response").await?;
        parse_token(&bytes, access).ok_or_else(|| {
            OciError::Protocol(format!(
                "token server of registry {} sent no usable token",
                target.registry
            ))
        })
    }
}

/// Whether credentials may go to a token `realm` the registry at
/// `registry` named in its own challenge: http(s) only; never plain http
/// when the registry is reached over https; no userinfo; with `strict`, the
/// realm must be on the registry's own host and port.
pub(crate) fn check_realm(
    realm: &Url,
    registry: &Url,
    strict: bool,
    words: &super::RegistryWords,
) -> Result<(), String> {
    match realm.scheme() {
        "https" => {}
        "http" if registry.scheme() == "http" => {}
        "http" => {
            return Err(format!(
                "its token realm {} is plain http while the registry is reached over https; \
                 refusing to fetch a token over plain http",
                redact(realm)
            ));
        }
        other => {
            return Err(format!(
                "its token realm uses the unsupported scheme {other:?}"
            ));
        }
    }
    if !realm.username().is_empty() || realm.password().is_some() {
        return Err("its token realm carries user information; refusing it".to_string());
    }
    if strict && origin(realm) != origin(registry) {
        return Err(format!(
            "its token realm is on another host ({}); refused by {}",
            host_port(realm),
            words.strict_realm
        ));
    }
    Ok(())
}

fn parse_token(bytes: &[u8], access: Access) -> Option<Token> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let a: Answer = serde_json::from_slice(bytes).ok()?;
    let value = a
        .token
        .filter(|t| !t.is_empty())
        .or(a.access_token.filter(|t| !t.is_empty()))?;
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    // Renew a little early; never trust absurd lifetimes.
    let life = a
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME)
        .min(Duration::from_secs(3600));
    let life = life
        .saturating_sub(Duration::from_secs(5))
        .max(Duration::from_secs(1));
    Some(Token {
        value,
        access,
        expires: Instant::now() + life,
    })
}

/// Parses a `WWW-Authenticate` header (one challenge: Basic or Bearer).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

/// `key="value", key=value` pairs; commas inside quotes are kept.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        if chars.next() != Some('=') {
            if chars.peek().is_none() {
                break;
            }
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    _ => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

impl Credentials {
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn token_answers() {
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#, Access::Pull);
        assert_eq!(t.map(|t| t.value), Some("abc".to_string()));
        let t = parse_token(br#"{"access_token":"xyz"}"#, Access::Push);
        assert_eq!(
            t.map(|t| (t.value, t.access)),
            Some(("xyz".to_string(), Access::Push))
        );
        assert!(parse_token(br#"{"token":""}"#, Access::Pull).is_none());
        assert!(parse_token(b"{\"token\":\"a\\nb\"}", Access::Pull).is_none());
        assert!(Access::Delete > Access::Push && Access::Push > Access::Pull);
    }

    #[test]
    fn realm_rules() {
        let words = crate::registry::RegistryWords::default();
        let https_reg = Url::parse("https://reg.example:5000/").unwrap();
        let http_reg = Url::parse("http://reg.example:5000/").unwrap();
        let same = Url::parse("https://reg.example:5000/token").unwrap();
        let other = Url::parse("https://auth.example/token").unwrap();
        let plain = Url::parse("http://auth.example/token").unwrap();
        assert!(check_realm(&same, &https_reg, true, &words).is_ok());
        assert!(check_realm(&other, &https_reg, false, &words).is_ok());
        let strict = check_realm(&other, &https_reg, true, &words).unwrap_err();
        assert!(strict.contains("auth.example"), "{strict}");
        let downgrade = check_realm(&plain, &https_reg, false, &words).unwrap_err();
        assert!(downgrade.contains("plain http"), "{downgrade}");
        assert!(check_realm(&plain, &http_reg, false, &words).is_ok());
        // Another port on the same host is another host.
        let port = Url::parse("http://reg.example:5001/token").unwrap();
        assert!(check_realm(&port, &http_reg, true, &words).is_err());
        let userinfo = Url::parse("https://u:p@auth.example/token").unwrap();
        assert!(check_realm(&userinfo, &https_reg, false, &words).is_err());
        let ftp = Url::parse("ftp://auth.example/token").unwrap();
        assert!(check_realm(&ftp, &https_reg, false, &words).is_err());
    }
}
