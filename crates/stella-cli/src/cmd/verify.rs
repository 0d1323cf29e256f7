//! `stella verify ...`.

use crate::cli::{VerifyCommand, RegistryArgs};
use crate::exit::Outcome;

pub async fn run(command: VerifyCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let _ = (command, registry);
    anyhow::bail!("this command is not available yet")
}
