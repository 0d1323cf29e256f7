//! Runs the built `stella` binary for CLI tests and checks what it did.
//!
//! A test binary passes `env!("CARGO_BIN_EXE_stella")` (only known inside the
//! test crate) to [`Stella::new`], optionally sets a working directory,
//! global flags and environment, then runs commands:
//!
//! ```no_run
//! # fn demo(dir: &std::path::Path) {
//! use stella_testkit::cli::Stella;
//! let stella = Stella::new("target/debug/stella").current_dir(dir);
//! let listing = stella.ok(&["evidence", "list-referrers", "oci:lay:v1"]);
//! stella.fails(&["evidence", "list-referrers", "oci:missing:v1"], "missing");
//! # let _ = listing;
//! # }
//! ```
//!
//! Every run is deterministic by default: `SOURCE_DATE_EPOCH` is set to
//! [`SOURCE_DATE_EPOCH`] and the credential variables `STELLA_USERNAME` and
//! `STELLA_PASSWORD` of the developer's shell are removed.
//!
//! What this module does not do: it does not build the binary (cargo does,
//! for integration tests) and it does not interpret any command's output
//! beyond the exit code, the one-line error contract and JSON parsing.
//! Its assertion helpers panic with the command line and both output
//! streams, which is how a test reports a failure.

#![allow(clippy::panic)]

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The `SOURCE_DATE_EPOCH` every run gets unless the test overrides it.
pub const SOURCE_DATE_EPOCH: &str = "1700000000";

/// How to run the `stella` binary: path, working directory, global flags and
/// environment. Cheap to clone; every method that runs it takes `&self`.
#[derive(Debug, Clone)]
pub struct Stella {
    bin: PathBuf,
    dir: Option<PathBuf>,
    global_args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
}

impl Stella {
    /// A runner for the binary at `bin` (pass `env!("CARGO_BIN_EXE_stella")`).
    pub fn new(bin: impl AsRef<Path>) -> Self {
        Stella {
            bin: bin.as_ref().to_path_buf(),
            dir: None,
            global_args: Vec::new(),
            env: vec![
                ("SOURCE_DATE_EPOCH".into(), Some(SOURCE_DATE_EPOCH.into())),
                ("STELLA_USERNAME".into(), None),
                ("STELLA_PASSWORD".into(), None),
            ],
        }
    }

    /// Runs commands in `dir` (relative paths in arguments resolve there).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Adds a flag placed before every command's own arguments (e.g. `--plain-http`).
    pub fn global_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.global_args.push(arg.as_ref().to_os_string());
        self
    }

    /// Sets an environment variable for every run.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.set_env(key.as_ref(), Some(value.as_ref()));
        self
    }

    /// Removes an environment variable for every run.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.set_env(key.as_ref(), None);
        self
    }

    fn set_env(&mut self, key: &OsStr, value: Option<&OsStr>) {
        self.env.retain(|(k, _)| k != key);
        self.env
            .push((key.to_os_string(), value.map(OsStr::to_os_string)));
    }

    /// The command that [`Stella::run`] would execute, for tests that need to
    /// spawn it themselves (racing processes, signals).
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.global_args).args(args);
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// Runs `stella <args>` with extra environment variables and an optional
    /// stdin, and returns the raw process output.
    pub fn output_with<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        env: &[(&str, &OsStr)],
        stdin: Option<&[u8]>,
    ) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A command that exits without reading stdin closes the pipe; its
            // exit code tells the test what happened, so a write error is fine.
            let _ = pipe.write_all(bytes);
        }
        drop(child.stdin.take());
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.bin.display()))
    }

    /// Runs `stella <args>`; stdin is empty.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        Run::from_output(args, self.output_with(args, &[], None))
    }

    /// Runs `stella <args>` with extra environment variables.
    pub fn run_env<S: AsRef<OsStr>>(&self, args: &[S], env: &[(&str, &str)]) -> Run {
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
        Run::from_output(args, self.output_with(args, &env, None))
    }

    /// Runs `stella <args>` with `stdin` piped in.
    pub fn run_stdin<S: AsRef<OsStr>>(&self, args: &[S], stdin: &[u8]) -> Run {
        Run::from_output(args, self.output_with(args, &[], Some(stdin)))
    }

    /// Runs `stella <args>`, asserts exit 0 and returns stdout.
    #[track_caller]
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        self.code(args, 0).stdout
    }

    /// Runs `stella <args>` and asserts the exit code.
    #[track_caller]
    pub fn code<S: AsRef<OsStr>>(&self, args: &[S], expected: i32) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code,
            expected,
            "stella {}: expected exit {expected}\nstdout: {}\nstderr: {}",
            command_line(args),
            run.stdout,
            run.stderr
        );
        run
    }

    /// Runs `stella <args>` and asserts the usage/input error contract: exit
    /// 2 and one `stella: error: ` line on stderr that contains `needle`.
    #[track_caller]
    pub fn fails<S: AsRef<OsStr>>(&self, args: &[S], needle: &str) -> Run {
        let run = self.code(args, 2);
        run.assert_error_line(needle);
        run
    }
}

/// What one run of the binary did.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output (asserted to be UTF-8).
    pub stdout: String,
    /// Standard error (asserted to be UTF-8).
    pub stderr: String,
}

impl Run {
    /// Converts a finished process; panics if an output stream is not UTF-8.
    pub fn from_output<S: AsRef<OsStr>>(args: &[S], out: Output) -> Run {
        let utf8 = |bytes: Vec<u8>, stream: &str| {
            String::from_utf8(bytes).unwrap_or_else(|e| {
                panic!("stella {}: {stream} is not UTF-8: {e}", command_line(args))
            })
        };
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: utf8(out.stdout, "stdout"),
            stderr: utf8(out.stderr, "stderr"),
        }
    }

    /// Both streams, stderr first, for "the output mentions X" checks.
    pub fn output(&self) -> String {
        format!("{}{}", self.stderr, self.stdout)
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "expected exit {expected}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stdout or stderr contains `needle`.
    #[track_caller]
    pub fn assert_mentions(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "output lacks {needle:?}\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts the error contract: stderr is exactly one line, starting with
    /// `stella: error: ` and containing `needle`.
    #[track_caller]
    pub fn assert_error_line(&self, needle: &str) -> &Self {
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "error is not one line: {:?}",
            self.stderr
        );
        assert!(
            self.stderr.starts_with("stella: error: "),
            "not a stella error line: {:?}",
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "{:?} lacks {needle:?}",
            self.stderr
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        json(self.stdout.trim())
    }
}

/// Asserts exit `code`, that the output mentions `needle`, and for exit 2
/// the one-line error contract; `what` names the step in failure messages.
#[track_caller]
pub fn expect(run: &Run, code: i32, needle: &str, what: &str) {
    assert_eq!(
        run.code, code,
        "{what}: expected exit {code}\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains(needle) || run.stderr.contains(needle),
        "{what}: output lacks {needle:?}\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    if code == 2 {
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{what}: error not one line: {:?}",
            run.stderr
        );
        assert!(
            run.stderr.starts_with("stella: error: "),
            "{what}: {:?}",
            run.stderr
        );
    }
}

/// Asserts that `stderr` holds exactly one non-blank line and that it is a
/// `stella: error: ` line.
#[track_caller]
pub fn one_error_line(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("stella: error: ")),
        "{stderr}"
    );
}

/// Parses `s` as JSON; panics with the text when it is not.
#[track_caller]
pub fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn command_line<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lossy UTF-8 text of a process stream.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
