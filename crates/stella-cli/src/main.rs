//! The `stella` binary: glue between the command line and the library
//! crates. It parses flags (`cli`), wires concrete stores and verifiers
//! together (`cmd::*`), prints results and maps outcomes to exit codes.
//! Libraries never print or exit; this crate does both.

#![forbid(unsafe_code)]

mod cli;
mod client;
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
    let deadline = cli.registry.timeout;
    let result = match deadline {
        None => runtime.block_on(cmd::run(cli)),
        Some(limit) => match runtime
            .block_on(async move { tokio::time::timeout(limit, cmd::run(cli)).await })
        {
            Ok(result) => result,
            Err(_) => {
                // Do not wait for blocking work the command left behind.
                runtime.shutdown_background();
                return exit::report_error(&anyhow::anyhow!(
                    "the command did not finish within {} (--timeout) and was stopped",
                    describe(limit)
                ));
            }
        },
    };
    match result {
        Ok(code) => code.into(),
        Err(e) => exit::report_error(&e),
    }
}

/// `90s`, `1.5s`, `10m` for messages.
fn describe(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() == 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if d.subsec_millis() == 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}
