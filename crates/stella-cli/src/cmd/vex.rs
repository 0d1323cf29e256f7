//! `stella vex`: OpenVEX commands.
//!
//! - `providers artifacts <provider>`: lists a provider's staged artifacts
//!   from a Stella server, following `nextCursor` through every page. A 429
//!   waits `Retry-After` (at most 60 s) and retries once.
//! - `merge` ([`merge`]): offline merge of OpenVEX documents.
//! - `ingest` / `query` ([`local`]): verified OpenVEX into a local
//!   database, and statement / consensus queries.
//! - `providers configure|show|run|status` ([`providers`]): provider
//!   configuration, on-demand runs and run status.

mod local;
mod merge;
mod providers;

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::cli::{TextOrJson, VexArtifactsArgs, VexCommand, VexProvidersCommand};
use crate::exit::Outcome;

pub(super) const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
const MAX_RETRY_WAIT: u64 = 60;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Page {
    pub items: Vec<serde_json::Value>,
    pub next_cursor: Option<String>,
}

pub async fn run(
    command: VexCommand,
    registry: &crate::cli::RegistryArgs,
) -> anyhow::Result<Outcome> {
    match command {
        VexCommand::Providers(VexProvidersCommand::Artifacts(a)) => artifacts(a).await,
        VexCommand::Providers(VexProvidersCommand::Configure(a)) => providers::configure(a).await,
        VexCommand::Providers(VexProvidersCommand::Show(a)) => providers::show(a).await,
        VexCommand::Providers(VexProvidersCommand::Run(a)) => providers::run(a).await,
        VexCommand::Providers(VexProvidersCommand::Status(a)) => providers::status(a).await,
        VexCommand::Merge(a) => merge::run(a),
        VexCommand::Ingest(a) => local::ingest_run(a, registry).await,
        VexCommand::Query(a) => local::query_run(a).await,
    }
}

async fn artifacts(args: VexArtifactsArgs) -> anyhow::Result<Outcome> {
    let token = match args.token.clone().or_else(super::auth::cached_token) {
        Some(t) => t,
        None => bail!("no token: run `stella auth login` or pass --token (STELLA_TOKEN)"),
    };
    let client = reqwest::Client::builder()
        .timeout(REQUEST_DEADLINE)
        .build()
        .context("cannot build the HTTP client")?;
    let base = format!(
        "{}/excititor/providers/{}/artifacts",
        args.server.server.trim_end_matches('/'),
        url::form_urlencoded::byte_serialize(args.provider.as_bytes()).collect::<String>()
    );
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}?limit=500&cursor={c}"),
            None => format!("{base}?limit=500"),
        };
        let page: Page = get_json(&client, &url, &token).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    print_items(&items, args.output);
    Ok(Outcome::Success)
}

pub(super) async fn get_json<T: for<'de> Deserialize<'de>>(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<T> {
    for attempt in 0..2 {
        let response = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS && attempt == 0 {
            let wait = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .min(MAX_RETRY_WAIT);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let body = response
            .bytes()
            .await
            .with_context(|| format!("reading {url}"))?;
        if !status.is_success() {
            bail!(super::auth::describe_failure(status, &body));
        }
        return serde_json::from_slice(&body)
            .with_context(|| format!("{url} answered unexpected JSON"));
    }
    bail!("rate limited twice by the server")
}

fn print_items(items: &[serde_json::Value], output: TextOrJson) {
    match output {
        TextOrJson::Json => println!("{}", serde_json::Value::Array(items.to_vec())),
        TextOrJson::Text => {
            println!("ARTIFACT ID\tMIME TYPE\tSIZE\tSHA256\tSTAGED AT\tSTAGED BY");
            let field = |item: &serde_json::Value, name: &str| match item.get(name) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            for item in items {
                let sha = field(item, "sha256");
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    field(item, "artifactId"),
                    field(item, "mimeType"),
                    field(item, "sizeBytes"),
                    sha.get(..12).unwrap_or(&sha),
                    field(item, "stagedAt"),
                    field(item, "stagedBy")
                );
            }
        }
    }
}
