//! `stella serve`, `stella serve init`, `stella serve migrate`: resolve the
//! service configuration and hand over to `stella-server`.

use std::io::Write;

use anyhow::Context;
use stella_server::config::{self, Overrides, ServerConfig};

use crate::cli::{ServeArgs, ServeCommand, ServeInitArgs, ServiceStoreArgs, TextOrJson};
use crate::exit::Outcome;

/// Resolves the configuration with the command-line values on top.
pub fn resolve(
    store: &ServiceStoreArgs,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<ServerConfig> {
    let overrides = Overrides {
        config: store.config.clone(),
        listen,
        database: store.database.clone(),
        data_dir: store.data_dir.clone(),
    };
    Ok(config::load(&overrides, &config::process_env)?)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<Outcome> {
    match args.command {
        Some(ServeCommand::Init(init_args)) => init(init_args).await,
        Some(ServeCommand::Migrate(store)) => migrate(&store).await,
        None => serve(&args.store, args.listen).await,
    }
}

async fn serve(
    store: &ServiceStoreArgs,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<Outcome> {
    let config = resolve(store, listen)?;
    stella_server::init_logging();
    stella_server::serve(config, |addr| {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "stella serve: listening on http://{addr}");
        let _ = out.flush();
    })
    .await
    .context("stella serve")?;
    Ok(Outcome::Success)
}

async fn migrate(store: &ServiceStoreArgs) -> anyhow::Result<Outcome> {
    let config = resolve(store, None)?;
    let owner = config.migration_database.as_deref();
    let status = stella_server::admin::migrate(owner.unwrap_or(&config.database)).await?;
    println!("database schema is at version {} (current)", status.applied);
    Ok(Outcome::Success)
}

async fn init(args: ServeInitArgs) -> anyhow::Result<Outcome> {
    let config = resolve(&args.store, None)?;
    let report = stella_server::admin::init(&config).await?;
    let admin = &report.admin;
    match args.output {
        TextOrJson::Json => {
            let doc = serde_json::json!({
                "dataDir": config.data_dir.display().to_string(),
                "kid": report.kid,
                "clientId": admin.client_id,
                "clientSecret": admin.secret.expose(),
                "tenant": admin.tenant,
                "scopes": admin.scopes,
            });
            println!("{doc}");
        }
        TextOrJson::Text => {
            println!(
                "initialised {} (signing key {})",
                config.data_dir.display(),
                report.kid
            );
            println!(
                "admin client: {} (tenant {})",
                admin.client_id, admin.tenant
            );
            println!("client secret (shown only now): {}", admin.secret.expose());
        }
    }
    Ok(Outcome::Success)
}
