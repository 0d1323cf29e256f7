//! `stella bundle ...` and `stella evidence export-bundle`.

use crate::cli::{BundleCommand, ExportBundleArgs, RegistryArgs};
use crate::exit::Outcome;

pub async fn run(command: BundleCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let _ = (command, registry);
    anyhow::bail!("this command is not available yet")
}

pub async fn export(args: ExportBundleArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let _ = (args, registry);
    anyhow::bail!("this command is not available yet")
}
