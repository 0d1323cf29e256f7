//! `stella vex`: OpenVEX commands.
//!
//! - `providers artifacts <provider>`: lists a provider's staged artifacts
//!   from a Stella server, following `nextCursor` through every page,
//!   through [`crate::client`] (global `--server`, `--token`, `--wait-quota`).
//! - `merge` ([`merge`]): offline merge of OpenVEX documents.
//! - `ingest` / `query` ([`local`]): verified OpenVEX into a local
//!   database, and statement / consensus queries.
//! - `providers configure|show|run|status` ([`providers`]): provider
//!   configuration, on-demand runs and run status.

mod local;
mod merge;
mod providers;

use serde::Deserialize;

use crate::cli::{
    ServiceClientArgs, TextOrJson, VexArtifactsArgs, VexCommand, VexProvidersCommand,
};
use crate::client::ApiClient;
use crate::exit::Outcome;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Page {
    pub items: Vec<serde_json::Value>,
    pub next_cursor: Option<String>,
}

pub async fn run(
    command: VexCommand,
    registry: &crate::cli::RegistryArgs,
    service: &ServiceClientArgs,
) -> anyhow::Result<Outcome> {
    match command {
        VexCommand::Providers(VexProvidersCommand::Artifacts(a)) => artifacts(a, service).await,
        VexCommand::Providers(VexProvidersCommand::Configure(a)) => {
            providers::configure(a, service).await
        }
        VexCommand::Providers(VexProvidersCommand::Show(a)) => providers::show(a, service).await,
        VexCommand::Providers(VexProvidersCommand::Run(a)) => providers::run(a, service).await,
        VexCommand::Providers(VexProvidersCommand::Status(a)) => {
            providers::status(a, service).await
        }
        VexCommand::Merge(a) => merge::run(a),
        VexCommand::Ingest(a) => local::ingest_run(a, registry).await,
        VexCommand::Query(a) => local::query_run(a, service).await,
    }
}

async fn artifacts(args: VexArtifactsArgs, service: &ServiceClientArgs) -> anyhow::Result<Outcome> {
    let client = ApiClient::authenticated(service)?;
    let base = format!(
        "/excititor/providers/{}/artifacts",
        url::form_urlencoded::byte_serialize(args.provider.as_bytes()).collect::<String>()
    );
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!(
                "{base}?limit=500&cursor={}",
                url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
            ),
            None => format!("{base}?limit=500"),
        };
        let page: Page = client.get_json(&path).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    print_items(&items, args.output);
    Ok(Outcome::Success)
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
