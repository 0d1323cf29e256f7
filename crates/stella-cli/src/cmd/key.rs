//! `stella key ...`.

use crate::cli::KeyCommand;
use crate::exit::Outcome;

pub fn run(command: KeyCommand) -> anyhow::Result<Outcome> {
    let _ = command;
    anyhow::bail!("this command is not available yet")
}
