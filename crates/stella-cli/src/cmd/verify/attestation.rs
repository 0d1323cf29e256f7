//! `stella verify attestation`.

use crate::cli::{RegistryArgs, VerifyAttestationArgs};
use crate::exit::Outcome;

pub async fn run(args: VerifyAttestationArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let _ = (args, registry);
    anyhow::bail!("this command is not available yet")
}
