//! `stella evidence ...`.

use crate::cli::{EvidenceCommand, RegistryArgs};
use crate::exit::Outcome;

pub async fn run(command: EvidenceCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let _ = (command, registry);
    anyhow::bail!("this command is not available yet")
}
