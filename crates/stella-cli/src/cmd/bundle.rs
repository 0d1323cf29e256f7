//! `stella bundle ...`.

use crate::cli::{BundleCommand, RegistryArgs};
use crate::exit::Outcome;

pub async fn run(command: BundleCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let _ = (command, registry);
    anyhow::bail!("this command is not available yet")
}
