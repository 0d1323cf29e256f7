//! Test fixture: a real TUF repository made by python-tuf
//! (`make_tuf_repo.py` beside this file) in a temp dir, served over HTTP(S)
//! on 127.0.0.1 by Python's `http.server` on a free port. Shared by the
//! stella-trust and stella-cli tests (included with `#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../stella-trust/tests/support/make_tuf_repo.py"
);
pub const SIGSTORE_CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/sigstore"
);

/// Python's static file server on 127.0.0.1, port chosen by the kernel and
/// printed as `port N`; TLS when a certificate and key follow the directory.
const SERVER_PY: &str = "
import functools, http.server, ssl, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
if len(sys.argv) > 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print('port', server.server_address[1], flush=True)
server.serve_forever()
";

pub fn production_root() -> PathBuf {
    Path::new(SIGSTORE_CONF).join("trusted_root/production.json")
}

pub fn staging_root() -> PathBuf {
    Path::new(SIGSTORE_CONF).join("trusted_root/staging.json")
}

pub struct TufFixture {
    pub dir: tempfile::TempDir,
    server: Option<Child>,
    pub url: String,
}

impl TufFixture {
    /// A repository whose `trusted_root.json` target has `target`'s bytes,
    /// already being served over HTTP.
    pub fn new(target: &Path) -> TufFixture {
        TufFixture::start(target, None)
    }

    /// The same, served over HTTPS with this server certificate and key.
    pub fn new_https(target: &Path, cert_pem: &Path, key_pem: &Path) -> TufFixture {
        TufFixture::start(target, Some((cert_pem, key_pem)))
    }

    fn start(target: &Path, tls: Option<(&Path, &Path)>) -> TufFixture {
        let dir = tempfile::tempdir().unwrap();
        run_script(&["init", path_str(dir.path()), "--target", path_str(target)]);
        let mut f = TufFixture {
            dir,
            server: None,
            url: String::new(),
        };
        f.serve(tls);
        f
    }

    fn serve(&mut self, tls: Option<(&Path, &Path)>) {
        let repo = self.dir.path().join("repo");
        let mut cmd = Command::new("python3");
        cmd.args(["-u", "-c", SERVER_PY]).arg(&repo);
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 static file server");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port from the file server: {line:?}"));
        let scheme = if tls.is_some() { "https" } else { "http" };
        self.url = format!("{scheme}://127.0.0.1:{port}");
        self.server = Some(child);
    }

    /// Stops serving (the mirror becomes unreachable).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The root.json to start from (version 1).
    pub fn root_json(&self) -> PathBuf {
        self.dir.path().join("root.json")
    }

    /// `make_tuf_repo.py publish DIR <args>`.
    pub fn publish(&self, args: &[&str]) {
        let mut a = vec!["publish", path_str(self.dir.path())];
        a.extend_from_slice(args);
        run_script(&a);
    }

    pub fn rotate_root(&self) {
        run_script(&["rotate-root", path_str(self.dir.path())]);
    }

    /// Path of the served `trusted_root.json` target file(s).
    pub fn target_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join("repo/targets"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
}

impl Drop for TufFixture {
    fn drop(&mut self) {
        self.stop();
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn run_script(args: &[&str]) {
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "make_tuf_repo.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
