//! Throwaway Postgres clusters of Debian's `postgresql` package for tests.
//!
//! [`Cluster::start`] runs `initdb` into a fresh temp dir and `pg_ctl start`
//! on a free `127.0.0.1` port (the Unix socket goes into the temp dir too),
//! with SCRAM password authentication over TCP for every role and the
//! superuser `stella_super`. The cluster is stopped (`pg_ctl stop -m
//! immediate`) and its directory removed on drop. Binaries are taken from
//! the newest `/usr/lib/postgresql/<version>/bin`.
//!
//! `initdb` refuses to run as root, so when the test runs as root every
//! Postgres command runs through `runuser -u <user>` (the `postgres` user
//! the package creates, else `nobody`) and the temp dir is handed to that
//! user; as any other user the commands run directly.
//!
//! [`Cluster::stella_database`] provisions a database the way
//! docs/service.md tells an operator to: an owner role that runs the
//! migrations and a service login role in the group `stella_app` that owns
//! nothing.
//!
//! What this does not do: tune Postgres for speed beyond `fsync=off`, or
//! speak TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::TestkitError;
use crate::net::free_port;

/// The cluster's superuser.
pub const SUPERUSER: &str = "stella_super";
/// Password of every role the testkit creates (SCRAM over loopback).
pub const PASSWORD: &str = "stella-test-pw";

/// A running throwaway cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
}

/// A database provisioned for Stella: URLs for its owner (migrations) and
/// for the service role (member of `stella_app`, owns nothing).
#[derive(Clone, Debug)]
pub struct StellaDatabase {
    pub name: String,
    pub owner_url: String,
    pub service_url: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .finish()
    }
}

/// The newest installed `/usr/lib/postgresql/<version>/bin` with `initdb`.
pub fn find_bin_dir() -> Result<PathBuf, TestkitError> {
    let root = Path::new("/usr/lib/postgresql");
    let entries =
        std::fs::read_dir(root).map_err(|e| TestkitError::io(root.display().to_string(), e))?;
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| TestkitError::MissingBinary(root.join("<version>/bin/initdb")))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// `id -u USER` and `id -g USER`, if the user exists.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        std::str::from_utf8(&out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn describe(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Cluster {
    /// initdb + pg_ctl start on a free loopback port; retried with a new
    /// port if another process took it first.
    pub fn start() -> Result<Cluster, TestkitError> {
        let bin = find_bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("stella-pg-")
            .tempdir()
            .map_err(|e| TestkitError::io("creating the cluster temp dir", e))?;
        let run_as = if is_root() {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find(|u| user_ids(u).is_some())
                .ok_or_else(|| TestkitError::Other("no `postgres` or `nobody` user".into()))?;
            let (uid, gid) = user_ids(user).unwrap_or((65534, 65534));
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| TestkitError::io("handing the cluster dir to its user", e))?;
            Some(user.to_string())
        } else {
            None
        };
        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            run_as,
        };
        cluster.initdb()?;
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = e.to_string(),
            }
        }
        Err(TestkitError::Other(format!(
            "postgres did not start: {last}"
        )))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command for a Postgres binary, run as the cluster's user.
    fn pg_command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run(&self, mut cmd: Command, what: &str) -> Result<Output, TestkitError> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| TestkitError::io(what.to_string(), e))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(TestkitError::Command {
                command: what.to_string(),
                status: out.status.to_string(),
                output: describe(&out),
            })
        }
    }

    fn initdb(&self) -> Result<(), TestkitError> {
        let pwfile = self.dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n"))
            .map_err(|e| TestkitError::io("writing the password file", e))?;
        if let Some(user) = &self.run_as
            && let Some((uid, gid)) = user_ids(user)
        {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                .map_err(|e| TestkitError::io("chown password file", e))?;
        }
        let mut cmd = self.pg_command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", SUPERUSER, "-E", "UTF8", "--no-sync", "--locale=C"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        self.run(cmd, "initdb")?;
        Ok(())
    }

    fn start_server(&self) -> Result<(), TestkitError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("postgres.log"))
            .args(["-w", "-t", "30", "start"]);
        self.run(cmd, "pg_ctl start").map(|_| ())
    }

    /// Stops the server (fast shutdown: sessions are terminated), keeping
    /// the data; [`Cluster::restart`] brings it back on the same port.
    pub fn stop(&self) -> Result<(), TestkitError> {
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "30", "stop"]);
        self.run(cmd, "pg_ctl stop").map(|_| ())
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) -> Result<(), TestkitError> {
        self.start_server()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp dir holding the data directory, socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// `postgres://user:PASSWORD@127.0.0.1:port/database`.
    pub fn url(&self, user: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Runs SQL with `psql` as the superuser (over the socket), stopping at
    /// the first error; returns unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, TestkitError> {
        let mut cmd = self.pg_command("psql");
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ]);
        let out = self.run(cmd, &format!("psql -c {sql:?}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Creates database `name` with an owner role `<name>_owner` (runs the
    /// migrations) and a service login role `<name>_svc` in the group role
    /// `stella_app` (created here if missing, as an operator would), as
    /// docs/service.md describes. Neither is a superuser.
    pub fn stella_database(&self, name: &str) -> Result<StellaDatabase, TestkitError> {
        let owner = format!("{name}_owner");
        let service = format!("{name}_svc");
        let setup = format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stella_app') THEN
                 CREATE ROLE stella_app NOLOGIN;
               END IF;
             END $$;
             CREATE ROLE {owner} LOGIN PASSWORD '{PASSWORD}';
             CREATE ROLE {service} LOGIN PASSWORD '{PASSWORD}' IN ROLE stella_app;"
        );
        self.psql("postgres", &setup)?;
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {owner}"))?;
        Ok(StellaDatabase {
            name: name.to_string(),
            owner_url: self.url(&owner, name),
            service_url: self.url(&service, name),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = cmd.status();
    }
}
