//! `stella verify image`: discover evidence, verify it, judge it against a policy.

use crate::cli::{RegistryArgs, VerifyImageArgs};
use crate::exit::Outcome;

pub async fn run(args: VerifyImageArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let _ = (args, registry);
    anyhow::bail!("this command is not available yet")
}
