//! `stella verify ...`: dispatch to one module per subcommand.

mod attestation;
mod blob;
pub(crate) mod image;
pub(crate) mod trust;

use crate::cli::{RegistryArgs, VerifyCommand};
use crate::exit::Outcome;

pub async fn run(command: VerifyCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    match command {
        VerifyCommand::Attestation(a) => attestation::run(a, registry).await,
        VerifyCommand::Blob(b) => blob::run(b),
        VerifyCommand::Image(i) => image::run(i, registry).await,
    }
}
