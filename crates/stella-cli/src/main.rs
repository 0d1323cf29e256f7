//! The `stella` binary: glue between the command line and the library
//! crates. It parses flags (`cli`), wires concrete stores and verifiers
//! together (`cmd::*`), prints results and maps outcomes to exit codes.
//! Libraries never print or exit; this crate does both.

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod exit;
mod progress;
mod store;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::report_error(&anyhow::anyhow!("cannot start async runtime: {e}")),
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(code) => code.into(),
        Err(e) => exit::report_error(&e),
    }
}
