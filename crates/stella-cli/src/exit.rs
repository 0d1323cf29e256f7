//! Exit codes and the one-line error report.
//!
//! 0 success; 1 verification or policy failure; 2 usage, input, network or
//! internal error. A closed stdout (`stella ... | head`) is not an error.

use std::process::ExitCode;

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Evidence or policy did not verify.
    VerificationFailed,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::VerificationFailed => ExitCode::from(1),
        }
    }
}

/// Prints `stella: error: <cause chain>` on one line and returns exit code 2
/// (0 for a broken pipe).
pub fn report_error(e: &anyhow::Error) -> ExitCode {
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    // A server's problem answer is reported as exactly
    // `stella: error: <title>: <detail> (<code>)`.
    if let Some(problem) = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::client::ProblemError>())
    {
        eprintln!("stella: error: {problem}");
        return ExitCode::from(2);
    }
    let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let mut line = String::new();
    for part in msg {
        if !line.is_empty() {
            if line.contains(&part) {
                continue;
            }
            line.push_str(": ");
        }
        line.push_str(&part);
    }
    eprintln!("stella: error: {}", line.replace('\n', " "));
    ExitCode::from(2)
}
