//! The testkit error type: a launcher failing says why, including the child's stderr.

use std::path::PathBuf;

/// Errors from the testkit launchers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// An I/O failure (temp dirs, config files, spawning).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A required executable is missing.
    #[error("executable not found: {0}")]
    MissingBinary(PathBuf),
    /// The registry process exited before it became ready.
    #[error("docker-registry exited early ({status}); stderr:\n{stderr}")]
    ProcessDied {
        /// Exit status.
        status: String,
        /// The captured stderr of the process.
        stderr: String,
    },
    /// The registry did not answer `GET /v2/` in time.
    #[error(
        "docker-registry did not become ready within {seconds}s; last error: {last_error}; stderr:\n{stderr}"
    )]
    Timeout {
        /// The timeout.
        seconds: u64,
        /// The last probe failure.
        last_error: String,
        /// The captured stderr of the process.
        stderr: String,
    },
    /// A helper command (htpasswd, garbage-collect) failed.
    #[error("command `{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// stdout + stderr.
        output: String,
    },
    /// Certificate or key generation failed.
    #[error("certificate generation: {0}")]
    Cert(String),
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

impl TestkitError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TestkitError::Io {
            context: context.into(),
            source,
        }
    }
}
