//! `stella evidence ...`.

use crate::cli::{EvidenceCommand, RegistryArgs};
use crate::exit::Outcome;

pub async fn run(command: EvidenceCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    match command {
        EvidenceCommand::ExportBundle(a) => super::bundle::export(a, registry).await,
        other => {
            let _ = (other, registry);
            anyhow::bail!("this command is not available yet")
        }
    }
}
