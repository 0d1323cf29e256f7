//! `stella admin clients add|list|revoke`, `stella admin keys rotate` and
//! `stella admin report-keys rotate --tenant`: work directly on the service's data directory or database.

use stella_server::admin;
use stella_store::Store;

use crate::cli::{
    AdminClientsCommand, AdminCommand, AdminKeysCommand, AdminReportKeysCommand, ServiceStoreArgs,
    TextOrJson,
};
use crate::exit::Outcome;

async fn open(store: &ServiceStoreArgs) -> anyhow::Result<(Store, std::path::PathBuf)> {
    let config = super::serve::resolve(store, None)?;
    let opened = admin::open_configured(&config).await?;
    Ok((opened, config.data_dir))
}

pub async fn run(command: AdminCommand) -> anyhow::Result<Outcome> {
    match command {
        AdminCommand::Clients(AdminClientsCommand::Add(a)) => {
            let (store, _) = open(&a.store).await?;
            let client = admin::add_client(&store, &a.client_id, &a.tenant, &a.scopes).await;
            store.close().await;
            let client = client?;
            match a.output {
                TextOrJson::Json => println!(
                    "{}",
                    serde_json::json!({
                        "clientId": client.client_id,
                        "clientSecret": client.secret.expose(),
                        "tenant": client.tenant,
                        "scopes": client.scopes,
                    })
                ),
                TextOrJson::Text => {
                    println!(
                        "client {} (tenant {}, scopes {})",
                        client.client_id,
                        client.tenant,
                        client.scopes.join(",")
                    );
                    println!("client secret (shown only now): {}", client.secret.expose());
                }
            }
        }
        AdminCommand::Clients(AdminClientsCommand::List(a)) => {
            let (store, _) = open(&a.store).await?;
            let clients = admin::list_clients(&store).await;
            store.close().await;
            print_clients(&clients?, a.output);
        }
        AdminCommand::Clients(AdminClientsCommand::Revoke(a)) => {
            let (store, _) = open(&a.store).await?;
            let result = admin::revoke_client(&store, &a.client_id).await;
            store.close().await;
            result?;
            println!("revoked client {}", a.client_id);
        }
        AdminCommand::Keys(AdminKeysCommand::Rotate(s)) => {
            let (store, data_dir) = open(&s).await?;
            let kid = admin::rotate_key(&store, &data_dir).await;
            store.close().await;
            println!(
                "new signing key {}; tokens signed by the previous key stay valid until they expire",
                kid?
            );
        }
        AdminCommand::ReportKeys(AdminReportKeysCommand::Rotate(a)) => {
            let (store, data_dir) = open(&a.store).await?;
            let kid = admin::rotate_report_key(&store, &data_dir, &a.tenant).await;
            store.close().await;
            println!(
                "new report key {} for tenant {}; the previous key stays published",
                kid?, a.tenant
            );
        }
    }
    Ok(Outcome::Success)
}

fn print_clients(clients: &[admin::ClientSummary], output: TextOrJson) {
    match output {
        TextOrJson::Json => {
            let items: Vec<_> = clients
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "clientId": c.client_id,
                        "tenant": c.tenant,
                        "scopes": c.scopes,
                        "createdAt": c.created_at,
                        "revokedAt": c.revoked_at,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
        }
        TextOrJson::Text => {
            for c in clients {
                let state = if c.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}",
                    c.client_id,
                    c.tenant,
                    c.scopes.join(","),
                    state
                );
            }
        }
    }
}
