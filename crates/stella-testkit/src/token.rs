//! An in-process Docker-style token server for distribution's `auth.token` mode.
//!
//! `GET /token?service=..&scope=repository:<name>:pull,push` (scope may repeat) with HTTP
//! basic auth answers `{"token", "access_token", "expires_in": 300, "issued_at"}`. The token is
//! a JWS (ES256) whose header carries `x5c` = [the self-signed signing certificate], which the
//! registry verifies against its `rootcertbundle`. Claims: `iss`, `sub`, `aud` (= service),
//! `exp`, `nbf`, `iat`, `jti`, `access`.
//!
//! Granting: the configured user with the right password gets every action it asked for;
//! a request without credentials gets a token with empty `access` (anonymous); wrong
//! credentials get 401. `POST /token` (OAuth2 password grant form) is accepted too.
//! Every requested scope is recorded ([`TokenServer::requested_scopes`]).
//!
//! What this does not do: refresh tokens, per-repository ACLs, or TLS.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::TestkitError;
use crate::server::{BackgroundServer, Reply, Req, response};
use crate::tls::generate_signing_cert;

#[derive(Default)]
struct State {
    scopes: Vec<String>,
    requests: usize,
    issued: usize,
    rejected: usize,
}

struct Inner {
    user: String,
    password: String,
    service: String,
    issuer: String,
    cert_der: Vec<u8>,
    key: EcdsaKeyPair,
    state: Mutex<State>,
}

/// A running token server (stops on drop).
pub struct TokenServer {
    inner: Arc<Inner>,
    cert_pem: String,
    realm: String,
    server: BackgroundServer,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("realm", &self.realm)
            .finish()
    }
}

impl TokenServer {
    /// Starts a token server on a free 127.0.0.1 port.
    pub fn start(
        user: &str,
        password: &str,
        service: &str,
        issuer: &str,
    ) -> Result<Self, TestkitError> {
        let cert = generate_signing_cert("stella-testkit token signer")?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &cert.key_pkcs8_der)
            .map_err(|e| TestkitError::Cert(format!("loading signing key: {e}")))?;
        let inner = Arc::new(Inner {
            user: user.to_string(),
            password: password.to_string(),
            service: service.to_string(),
            issuer: issuer.to_string(),
            cert_der: cert.cert_der,
            key,
            state: Mutex::new(State::default()),
        });
        let handler_inner = inner.clone();
        let server = crate::server::spawn("stella-token-server", move |req| {
            let inner = handler_inner.clone();
            async move { handle(&inner, req) }
        })?;
        let realm = format!("http://{}/token", server.addr());
        Ok(TokenServer {
            inner,
            cert_pem: cert.cert_pem,
            realm,
            server,
        })
    }

    /// The signing certificate (PEM): the registry's `rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.server.addr().to_string()
    }

    /// Every `scope` value requested so far, in order.
    pub fn requested_scopes(&self) -> Vec<String> {
        self.inner
            .state
            .lock()
            .map(|s| s.scopes.clone())
            .unwrap_or_default()
    }

    /// Number of token requests received.
    pub fn request_count(&self) -> usize {
        self.inner.state.lock().map(|s| s.requests).unwrap_or(0)
    }

    /// Number of tokens issued.
    pub fn issued_count(&self) -> usize {
        self.inner.state.lock().map(|s| s.issued).unwrap_or(0)
    }

    /// Number of requests rejected with 401 (wrong credentials).
    pub fn rejected_count(&self) -> usize {
        self.inner.state.lock().map(|s| s.rejected).unwrap_or(0)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Decodes `%XX` and `+` in a query/form component.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'+') => out.push(b' '),
            Some(b'%') => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            Some(b) => out.push(*b),
            None => break,
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=b&c=d` into pairs (decoded).
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn basic_credentials(req: &Req) -> Option<(String, String)> {
    let h = req.headers.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn handle(inner: &Inner, req: Req) -> Reply {
    if req.uri.path() != "/token" {
        return response(404, &[], "not found");
    }
    let (params, creds) = match req.method {
        hyper::Method::GET => (
            parse_query(req.uri.query().unwrap_or("")),
            basic_credentials(&req),
        ),
        hyper::Method::POST => {
            let form = parse_query(&String::from_utf8_lossy(&req.body));
            let user = form
                .iter()
                .find(|(k, _)| k == "username")
                .map(|(_, v)| v.clone());
            let pass = form
                .iter()
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.clone());
            let creds = match (user, pass) {
                (Some(u), Some(p)) => Some((u, p)),
                _ => basic_credentials(&req),
            };
            (form, creds)
        }
        _ => return response(405, &[], "method not allowed"),
    };
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let authenticated = match &creds {
        None => false,
        Some((u, p)) if *u == inner.user && *p == inner.password => true,
        Some(_) => {
            if let Ok(mut st) = inner.state.lock() {
                st.requests += 1;
                st.scopes.extend(scopes.iter().cloned());
                st.rejected += 1;
            }
            return response(
                401,
                &[("content-type", "application/json".to_string())],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid credentials"}]}"#,
            );
        }
    };
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| inner.service.clone());
    let mut access = Vec::new();
    if authenticated {
        for scope in &scopes {
            // type:name:actions; the name may itself contain ':' (e.g. host:port), so split
            // the type off the front and the actions off the back.
            let Some((typ, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
            access.push(serde_json::json!({"type": typ, "name": name, "actions": actions}));
        }
    }
    let now = now_secs();
    let mut jti = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut jti);
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [STANDARD.encode(&inner.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": inner.issuer,
        "sub": if authenticated { inner.user.as_str() } else { "" },
        "aud": service,
        "exp": now + 300,
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": hex::encode(jti),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = match inner
        .key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
    {
        Ok(s) => s,
        Err(_) => return response(500, &[], "signing failed"),
    };
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
    if let Ok(mut st) = inner.state.lock() {
        st.requests += 1;
        st.scopes.extend(scopes);
        st.issued += 1;
    }
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
        "issued_at": rfc3339_utc(now),
    });
    response(
        200,
        &[("content-type", "application/json".to_string())],
        body.to_string(),
    )
}

/// RFC 3339 UTC from UNIX seconds (no external time crate needed).
fn rfc3339_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm, public domain description).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}
