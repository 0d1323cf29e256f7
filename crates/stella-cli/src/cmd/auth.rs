//! `stella auth login|status|whoami|logout`: the client side of the
//! service's client-credentials grant. The token is cached as JSON (0600)
//! in `$XDG_CONFIG_HOME/stella/token.json` (default
//! `~/.config/stella/token.json`), written atomically. The server comes
//! from the global `--server`; requests go through [`crate::client`].

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::cli::{AuthCommand, AuthLoginArgs, AuthShowArgs, ServiceClientArgs, TextOrJson};
use crate::client::ApiClient;
use crate::exit::Outcome;

const MAX_SECRET_BYTES: u64 = 4096;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedToken {
    server: String,
    client_id: String,
    access_token: String,
    scope: String,
    expires_at: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
    #[serde(default)]
    scope: String,
}

fn cache_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home =
                std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("stella").join("token.json"))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub async fn run(command: AuthCommand, service: &ServiceClientArgs) -> anyhow::Result<Outcome> {
    match command {
        AuthCommand::Login(a) => login(a, service).await,
        AuthCommand::Status(a) => status(&a),
        AuthCommand::Whoami(a) => whoami(&a, service),
        AuthCommand::Logout => logout(),
    }
}

async fn login(args: AuthLoginArgs, service: &ServiceClientArgs) -> anyhow::Result<Outcome> {
    let mut secret = String::new();
    std::io::stdin()
        .take(MAX_SECRET_BYTES)
        .read_to_string(&mut secret)
        .context("cannot read the client secret from standard input")?;
    let secret = secret.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        bail!("no client secret on standard input");
    }
    let client = ApiClient::anonymous(service)?;
    let server = client.base().to_string();
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", args.client_id.as_str()),
        ("client_secret", secret),
    ];
    if let Some(scope) = args.scope.as_deref() {
        form.push(("scope", scope));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let url = client.url("/connect/token");
    let answer: TokenAnswer = client
        .send(|http| {
            http.post(&url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone())
        })
        .await?
        .json()
        .with_context(|| format!("{url} did not answer with a token"))?;
    let cached = CachedToken {
        server,
        client_id: args.client_id,
        access_token: answer.access_token,
        scope: answer.scope,
        expires_at: now().saturating_add(answer.expires_in),
    };
    let path = cache_path()?;
    write_cache(&path, &serde_json::to_vec_pretty(&cached)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "logged in to {} as {} (token cached in {}, expires in {} s)",
        cached.server,
        cached.client_id,
        path.display(),
        answer.expires_in
    );
    Ok(Outcome::Success)
}

fn write_cache(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("the token cache path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The cached access token, if one is cached and not expired.
pub fn cached_token() -> Option<String> {
    read_cache()
        .ok()
        .filter(|c| c.expires_at > now())
        .map(|c| c.access_token)
}

fn read_cache() -> anyhow::Result<CachedToken> {
    let path = cache_path()?;
    let bytes = match super::read_capped(&path, 64 * 1024) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "not logged in (no {}); run `stella auth login`",
                path.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a stella token cache", path.display()))
}

fn status(args: &AuthShowArgs) -> anyhow::Result<Outcome> {
    let cached = read_cache()?;
    let remaining = cached.expires_at - now();
    match args.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::json!({
                "server": cached.server,
                "clientId": cached.client_id,
                "scopes": cached.scope.split_whitespace().collect::<Vec<_>>(),
                "expiresAt": cached.expires_at,
                "expired": remaining <= 0,
            })
        ),
        TextOrJson::Text => {
            println!("server:  {}", cached.server);
            println!("client:  {}", cached.client_id);
            println!("scopes:  {}", cached.scope);
            if remaining > 0 {
                println!("expires: in {remaining} s");
            } else {
                println!("expires: expired; run `stella auth login` again");
            }
        }
    }
    Ok(Outcome::Success)
}

/// Decodes the claims of `--token` (env `STELLA_TOKEN`) when given, else
/// of the cached token. Nothing is verified: this shows what a token says.
fn whoami(args: &AuthShowArgs, service: &ServiceClientArgs) -> anyhow::Result<Outcome> {
    let token = match &service.token {
        Some(t) => t.clone(),
        None => read_cache()?.access_token,
    };
    let payload = token
        .split('.')
        .nth(1)
        .context("the cached token is not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .context("the cached token's claims are not base64url")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).context("the cached token's claims are not JSON")?;
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let exp = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    match args.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::json!({
                "subject": text("sub"),
                "tenant": text("tenant"),
                "issuer": text("iss"),
                "audience": text("aud"),
                "scopes": text("scope").split_whitespace().collect::<Vec<_>>(),
                "remainingSeconds": (exp - now()).max(0),
            })
        ),
        TextOrJson::Text => {
            println!("subject:  {}", text("sub"));
            println!("tenant:   {}", text("tenant"));
            println!("issuer:   {}", text("iss"));
            println!("audience: {}", text("aud"));
            println!("scopes:   {}", text("scope"));
            println!("remaining: {} s", (exp - now()).max(0));
        }
    }
    Ok(Outcome::Success)
}

fn logout() -> anyhow::Result<Outcome> {
    let path = cache_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => println!("removed {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("not logged in"),
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
    Ok(Outcome::Success)
}
