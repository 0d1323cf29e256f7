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
//! What this module does not do: OAuth2 refresh-token (`identitytoken`)
//! exchange, or send credentials to a plain-http token realm of a registry
//! reached over TLS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use url::Url;

use super::client::{Shared, Target, chain, read_capped, read_error_body};
use super::credentials::{self, Credentials};
use crate::OciError;

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

#[derive(Debug, Clone)]
struct Token {
    value: String,
    access: Access,
    expires: Instant,
}

/// Auth state of one client.
#[derive(Default)]
pub struct AuthCache {
    schemes: Mutex<HashMap<String, Challenge>>,
    creds: Mutex<HashMap<String, Option<Credentials>>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AuthCache {
    /// The `Authorization` header to send, fetching a token if the registry
    /// is known to want one and none cached covers `access`.
    pub(crate) async fn header_for(
        &self,
        shared: &Shared,
        target: &Target<'_>,
        access: Access,
    ) -> Result<Option<String>, OciError> {
        let scheme = lock(&self.schemes).get(target.registry).cloned();
        match scheme {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credentials(shared, target.registry)
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
                    .fetch_token(shared, target, want, &realm, service.as_deref())
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
        shared: &Shared,
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
                Ok(self.credentials(shared, target.registry).await?.is_some())
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
        shared: &Shared,
        target: &Target<'_>,
        had_auth: bool,
    ) -> OciError {
        let creds = self
            .credentials(shared, target.registry)
            .await
            .ok()
            .flatten();
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

    /// Credentials for a registry: explicit options, else docker config
    /// (looked up once).
    async fn credentials(
        &self,
        shared: &Shared,
        registry: &str,
    ) -> Result<Option<Credentials>, OciError> {
        if let Some((u, p)) = &shared.options.credentials {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        if let Some(c) = lock(&self.creds).get(registry) {
            return Ok(c.clone());
        }
        let found =
            credentials::lookup(shared.options.docker_config_dir.as_deref(), registry).await?;
        lock(&self.creds).insert(registry.to_string(), found.clone());
        Ok(found)
    }

    async fn fetch_token(
        &self,
        shared: &Shared,
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
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(OciError::Protocol(format!(
                "registry {} sent a token realm that is not http(s): {realm:?}",
                target.registry
            )));
        }
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
        let creds = self.credentials(shared, target.registry).await?;
        let mut rb = shared.http.get(url.clone());
        let mut sent_creds = None;
        if let Some(c) = &creds
            && (url.scheme() == "https" || shared.options.plain_http)
        {
            rb = rb.header(reqwest::header::AUTHORIZATION, c.basic_header());
            sent_creds = Some(c.username.clone());
        }
        shared.count_request();
        let resp = rb.send().await.map_err(|e| {
            OciError::Transport(format!(
                "token request to {}: {}",
                super::client::redact(&url),
                chain(&e)
            ))
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
                    "registry {} refused anonymous access to {} ({}); log in with --username/--password-stdin or docker login",
                    target.registry,
                    target.repository,
                    access.actions()
                ),
            }));
        }
        if !status.is_success() {
            let body = read_error_body(resp).await;
            return Err(OciError::Protocol(format!(
                "token server of registry {} answered {status}{}",
                target.registry,
                body.map(|b| format!(": {b}")).unwrap_or_default()
            )));
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
}
