//! Command runners: one module per command group. Each resolves the user's
//! flags against the environment, calls the libraries and prints.

mod admin;
mod attest;
pub(crate) mod auth;
mod bundle;
mod evidence;
mod export;
mod key;
mod policy;
mod report;
mod report_server;
mod serve;
mod trust;
mod verify;
mod vex;

use crate::cli::{Cli, Command};
use crate::exit::Outcome;

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Evidence(c) => evidence::run(c, &cli.registry).await,
        Command::Key(c) => key::run(c),
        Command::Attest(a) => attest::run(a, &cli.registry).await,
        Command::Verify(c) => verify::run(c, &cli.registry).await,
        Command::Bundle(c) => bundle::run(c, &cli.registry).await,
        Command::Policy(c) => policy::run(c),
        Command::Trust(c) => trust::run(c, &cli.registry).await,
        Command::Serve(c) => serve::run(c).await,
        Command::Admin(c) => admin::run(c).await,
        Command::Auth(c) => auth::run(c, &cli.service).await,
        Command::Vex(c) => vex::run(c, &cli.registry, &cli.service).await,
        Command::Export(c) => export::run(c, &cli.registry).await,
        Command::Report(c) => report::run(c, &cli.registry, &cli.service).await,
    }
}

/// Reads a whole file the user named, refusing anything over `cap` bytes.
pub fn read_capped(path: &std::path::Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    file.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("file is larger than the {cap}-byte limit"),
        ));
    }
    Ok(buf)
}

/// Writes to stdout, returning (not panicking on) a closed pipe.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
