//! `stella verify blob`.

use crate::cli::VerifyBlobArgs;
use crate::exit::Outcome;

pub fn run(args: VerifyBlobArgs) -> anyhow::Result<Outcome> {
    let _ = args;
    anyhow::bail!("this command is not available yet")
}
