//! Console sessions: an in-memory table from a random session id (the
//! `HttpOnly`, `SameSite=Strict` cookie) to the access token the user
//! signed in with, its identity and a per-session CSRF token.
//!
//! The access token never reaches the browser; the cookie holds only the
//! random id. A session ends when the user signs out, when its token
//! expires, or when the server restarts (sessions are not persisted).
//! What this module does not do: verify tokens (the API does, on every
//! call) or render anything.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, HeaderValue, header};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "stella_console";
/// Name of the cookie that ties a sign-in form to the browser that loaded
/// it (login CSRF).
pub const LOGIN_COOKIE: &str = "stella_console_login";
/// Sessions kept at most; the oldest is dropped past this.
const MAX_SESSIONS: usize = 10_000;

/// A message shown once on the next page.
#[derive(Clone, Debug)]
pub enum Flash {
    /// An artifact was staged: the browser's file name and the metadata.
    Staged {
        file_name: String,
        artifact: serde_json::Value,
    },
    /// An artifact was deleted.
    Deleted { artifact_id: String },
    /// A plain message (a saved configuration, a finished run).
    Message(String),
}

/// A signed-in user.
#[derive(Clone)]
pub struct Session {
    pub id: String,
    pub bearer: String,
    pub csrf: String,
    pub subject: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    /// Unix seconds when the access token (and so the session) expires.
    pub expires_at: i64,
    pub flash: Option<Flash>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("subject", &self.subject)
            .field("tenant", &self.tenant)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// 32 random bytes as hex (session ids, CSRF tokens).
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The sessions of this server process.
#[derive(Default)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Session>) -> R) -> R {
        match self.table.lock() {
            Ok(mut t) => f(&mut t),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Stores a new session (dropping expired ones, and the oldest when full).
    pub fn insert(&self, session: Session) {
        let now = now();
        self.with(|t| {
            t.retain(|_, s| s.expires_at > now);
            if t.len() >= MAX_SESSIONS
                && let Some(oldest) = t
                    .values()
                    .min_by_key(|s| s.expires_at)
                    .map(|s| s.id.clone())
            {
                t.remove(&oldest);
            }
            t.insert(session.id.clone(), session);
        });
    }

    /// The live session with this id (an expired one is removed).
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = now();
        self.with(|t| match t.get(id) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                t.remove(id);
                None
            }
            None => None,
        })
    }

    /// Takes the session's one-time message.
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.with(|t| t.get_mut(id).and_then(|s| s.flash.take()))
    }

    pub fn set_flash(&self, id: &str, flash: Flash) {
        self.with(|t| {
            if let Some(s) = t.get_mut(id) {
                s.flash = Some(flash);
            }
        });
    }

    pub fn remove(&self, id: &str) {
        self.with(|t| {
            t.remove(id);
        });
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A `Set-Cookie` value for a console cookie: `HttpOnly`,
/// `SameSite=Strict`, path `/console`, `Secure` when asked. `max_age`
/// 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn session(id: &str, expires_at: i64) -> Session {
        Session {
            id: id.into(),
            bearer: "secret-token".into(),
            csrf: "c".into(),
            subject: "admin".into(),
            tenant: "default".into(),
            scopes: vec![],
            expires_at,
            flash: None,
        }
    }

    #[test]
    fn expired_sessions_are_gone() {
        let s = Sessions::default();
        s.insert(session("a", now() + 60));
        s.insert(session("b", now() - 1));
        assert!(s.get("a").is_some());
        assert!(s.get("b").is_none());
        s.remove("a");
        assert!(s.get("a").is_none());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let text = format!("{:?}", session("a", 0));
        assert!(!text.contains("secret-token"), "{text}");
    }

    #[test]
    fn cookies_are_parsed_and_checked() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; stella_console=abc123; y=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc123"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("stella_console=<script>"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        let c = set_cookie(SESSION_COOKIE, "ab", 60, true).unwrap();
        let c = c.to_str().unwrap();
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/console"] {
            assert!(c.contains(part), "{c}");
        }
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert_eq!(random_token().unwrap().len(), 64);
    }
}
