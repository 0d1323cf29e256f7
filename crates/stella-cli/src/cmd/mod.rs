//! Command runners: one module per command group. Each resolves the user's
//! flags against the environment, calls the libraries and prints.

mod attest;
mod bundle;
mod evidence;
mod key;
mod verify;

use crate::cli::{Cli, Command};
use crate::exit::Outcome;

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Evidence(c) => evidence::run(c, &cli.registry).await,
        Command::Key(c) => key::run(c),
        Command::Attest(a) => attest::run(a, &cli.registry).await,
        Command::Verify(c) => verify::run(c, &cli.registry).await,
        Command::Bundle(c) => bundle::run(c, &cli.registry).await,
    }
}
