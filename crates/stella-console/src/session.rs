//! Console sessions: a random session id (the `HttpOnly`,
//! `SameSite=Strict` cookie) maps to the access token the user signed in
//! with, its identity and a per-session CSRF token.
//!
//! The access token never reaches the browser; the cookie holds only the
//! random id. With a store (what `stella serve` passes), sessions live in
//! the database and survive a restart: the row is keyed by the SHA-256 of
//! the id and holds the session sealed with AES-256-GCM under a key derived
//! (HKDF-SHA256) from the id, so the database holds neither the id nor the
//! token in the clear, and a copy of it opens no session without the
//! browser's cookie. (Re-minting a token at load time instead was
//! rejected: a pasted token has no grant to re-mint from, and keeping the
//! client secret for it would store a longer-lived secret than the token.)
//! Without a store (tests), sessions are in memory. A session ends when the
//! user signs out (the row is deleted), when its token expires, or, in
//! memory only, when the process ends. One-time messages ("flash") are
//! kept in memory either way.
//!
//! What this module does not do: verify tokens (the API does, on every
//! call) or render anything.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use axum::http::{HeaderMap, HeaderValue, header};
use serde::{Deserialize, Serialize};
use stella_store::{ConsoleSessionRecord, ConsoleSessionRepository, Store};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "stella_console";
/// Name of the cookie that ties a sign-in form to the browser that loaded
/// it (login CSRF).
pub const LOGIN_COOKIE: &str = "stella_console_login";
/// Sessions (and pending messages) kept in memory at most; the oldest is
/// dropped past this.
const MAX_SESSIONS: usize = 10_000;
/// HKDF salt and info of the sealing key (a new version gets new labels).
const SEAL_SALT: &[u8] = b"stella-console-session-v1";
const SEAL_INFO: &[u8] = b"seal";

/// A message shown once on the next page.
#[derive(Clone, Debug)]
pub enum Flash {
    /// An artifact was staged: the browser's file name and the metadata.
    Staged {
        file_name: String,
        artifact: serde_json::Value,
        /// The configuration slot it was set in, if any.
        slot: Option<String>,
    },
    /// An artifact was deleted.
    Deleted { artifact_id: String },
    /// A plain message (a saved configuration, a finished run).
    Message(String),
}

/// A signed-in user.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    #[serde(skip)]
    pub id: String,
    pub bearer: String,
    pub csrf: String,
    pub subject: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    /// Unix seconds when the access token (and so the session) expires.
    pub expires_at: i64,
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

/// Why a session could not be started.
#[derive(Debug)]
pub struct SessionStoreFailed;

/// The hex SHA-256 of a session id: the only form of it the database sees.
fn id_hash(id: &str) -> String {
    hex::encode(stella_types::digest::sha256_bytes(id.as_bytes()))
}

/// The AES-256-GCM key a session is sealed with, derived from its id.
fn seal_key(id: &str) -> Option<LessSafeKey> {
    let prk = Salt::new(HKDF_SHA256, SEAL_SALT).extract(id.as_bytes());
    let okm = prk.expand(&[SEAL_INFO], &AES_256_GCM).ok()?;
    Some(LessSafeKey::new(UnboundKey::from(okm)))
}

/// The session encrypted for its row: nonce ‖ ciphertext ‖ tag, bound to
/// the row's id hash and expiry.
fn seal(session: &Session, id_hash: &str) -> Option<Vec<u8>> {
    let key = seal_key(&session.id)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).ok()?;
    let mut data = serde_json::to_vec(session).ok()?;
    let aad = format!("{id_hash}:{}", session.expires_at);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut data,
    )
    .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Some(out)
}

/// The session in a row, if `id` opens it (any tampering fails here).
fn unseal(id: &str, record: &ConsoleSessionRecord) -> Option<Session> {
    let key = seal_key(id)?;
    let (nonce, sealed) = record.sealed.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let aad = format!("{}:{}", record.id_hash, record.expires_at);
    let mut data = sealed.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data)
        .ok()?;
    let mut session: Session = serde_json::from_slice(plain).ok()?;
    session.id = id.to_string();
    (session.expires_at == record.expires_at).then_some(session)
}

/// The console's sessions: in the database when there is a store, else in
/// this process's memory.
pub struct Sessions {
    store: Option<Store>,
    memory: Mutex<HashMap<String, Session>>,
    flashes: Mutex<HashMap<String, Flash>>,
}

fn locked<T, R>(m: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match m.lock() {
        Ok(mut t) => f(&mut t),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

impl Sessions {
    /// Sessions kept in `store` (`None`: in memory).
    pub fn new(store: Option<Store>) -> Self {
        Self {
            store,
            memory: Mutex::new(HashMap::new()),
            flashes: Mutex::new(HashMap::new()),
        }
    }

    /// Stores a new session (dropping expired ones).
    pub async fn insert(&self, session: Session) -> Result<(), SessionStoreFailed> {
        let now = now();
        let Some(store) = &self.store else {
            locked(&self.memory, |t| {
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
            return Ok(());
        };
        let hash = id_hash(&session.id);
        let record = ConsoleSessionRecord {
            sealed: seal(&session, &hash).ok_or(SessionStoreFailed)?,
            id_hash: hash,
            expires_at: session.expires_at,
            created_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        };
        store.add_console_session(&record, now).await.map_err(|e| {
            tracing::warn!(error = %e, "console session not stored");
            SessionStoreFailed
        })
    }

    /// The live session with this id (an expired one is gone).
    pub async fn get(&self, id: &str) -> Option<Session> {
        let now = now();
        let Some(store) = &self.store else {
            return locked(&self.memory, |t| match t.get(id) {
                Some(s) if s.expires_at > now => Some(s.clone()),
                Some(_) => {
                    t.remove(id);
                    None
                }
                None => None,
            });
        };
        match store.find_console_session(&id_hash(id), now).await {
            Ok(Some(record)) => unseal(id, &record),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "console session lookup failed");
                None
            }
        }
    }

    /// Takes the session's one-time message.
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        locked(&self.flashes, |t| t.remove(id))
    }

    pub fn set_flash(&self, id: &str, flash: Flash) {
        locked(&self.flashes, |t| {
            if t.len() >= MAX_SESSIONS {
                t.clear();
            }
            t.insert(id.to_string(), flash);
        });
    }

    /// Ends a session (sign-out).
    pub async fn remove(&self, id: &str) {
        locked(&self.memory, |t| t.remove(id));
        locked(&self.flashes, |t| t.remove(id));
        if let Some(store) = &self.store
            && let Err(e) = store.delete_console_session(&id_hash(id)).await
        {
            tracing::warn!(error = %e, "console session not deleted");
        }
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
        }
    }

    #[tokio::test]
    async fn expired_sessions_are_gone() {
        let s = Sessions::new(None);
        s.insert(session("a", now() + 60)).await.unwrap();
        s.insert(session("b", now() - 1)).await.unwrap();
        assert!(s.get("a").await.is_some());
        assert!(s.get("b").await.is_none());
        s.remove("a").await;
        assert!(s.get("a").await.is_none());
    }

    #[test]
    fn a_sealed_session_opens_only_with_its_id() {
        let id = random_token().unwrap();
        let mut original = session(&id, now() + 60);
        original.scopes = vec!["vex.read".into()];
        let hash = id_hash(&id);
        let sealed = seal(&original, &hash).unwrap();
        let text = String::from_utf8_lossy(&sealed);
        assert!(
            !text.contains("secret-token") && !text.contains("admin"),
            "{text}"
        );
        assert!(!hash.contains(&id) && hash.len() == 64);
        let record = ConsoleSessionRecord {
            id_hash: hash.clone(),
            sealed,
            expires_at: original.expires_at,
            created_at: String::new(),
        };
        assert_eq!(unseal(&id, &record), Some(original.clone()));
        let other = random_token().unwrap();
        assert_eq!(unseal(&other, &record), None, "another id opens nothing");
        let mut longer = record.clone();
        longer.expires_at += 3600;
        assert_eq!(unseal(&id, &longer), None, "a changed expiry is refused");
        let mut flipped = record.clone();
        if let Some(b) = flipped.sealed.last_mut() {
            *b ^= 1;
        }
        assert_eq!(unseal(&id, &flipped), None, "a changed byte is refused");
    }

    #[tokio::test]
    async fn sessions_in_a_store_survive_a_new_handle() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        store.migrate().await.unwrap();
        let id = random_token().unwrap();
        let first = Sessions::new(Some(store.clone()));
        first.insert(session(&id, now() + 60)).await.unwrap();
        // A new process: a fresh table in memory, the same database.
        let second = Sessions::new(Some(Store::open(&url).await.unwrap()));
        let found = second.get(&id).await.unwrap();
        assert_eq!(found.bearer, "secret-token");
        assert_eq!(found.id, id);
        second.remove(&id).await;
        assert!(first.get(&id).await.is_none(), "signed out everywhere");
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
