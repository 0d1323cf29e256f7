//! `stella attest`.

use crate::cli::{AttestArgs, RegistryArgs};
use crate::exit::Outcome;

pub async fn run(args: AttestArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let _ = (args, registry);
    anyhow::bail!("this command is not available yet")
}
