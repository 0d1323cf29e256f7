//! The web console (`/console/`) in a real browser: `stella serve` runs as
//! a real process, a real `docker-registry` holds an image with signed
//! evidence, and `crates/stella-console/tests/browser/console_flows.py`
//! drives Debian's headless Chromium with PyPI `playwright` (pointed at
//! /usr/bin/chromium, never a downloaded browser) and checks every page
//! with axe-core (npm, installed by scripts/test.sh). Screenshots of each
//! page at 1280 px and 375 px go to `target/console-screenshots/`.
//!
//! A second repository carries two signed, disagreeing OpenVEX
//! attestations; the browser configures the OCI OpenVEX provider for it,
//! runs it and searches the statements it ingested.
//! The Exports pages export the first image (followed live to the end,
//! downloaded, verified) and an unknown tag (failing with its reason).
//!
//! Then the server is restarted on the same data directory (trusting
//! 127.0.0.1 as a TLS-terminating proxy) and the browser, with the cookies
//! it had, is still signed in; cookies through the proxy carry `Secure`;
//! sign-out deletes the stored session and the old cookie is refused; an
//! image check on a registry outside the allow-list is refused at its
//! field.
//!
//! Needs: chromium, python3 with playwright and requests, axe-core
//! (`scripts/test.sh` installs all three); a missing one fails the test
//! with a message saying so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use stella_testkit::cli::Stella;
use stella_testkit::distribution::DistributionRegistry;
use stella_testkit::fixtures::{PythonLayer, python_layout, skopeo_push};

const BIN: &str = env!("CARGO_BIN_EXE_stella");
/// Must match `HOSTILE_PREDICATE` in console_flows.py.
const HOSTILE_PREDICATE: &str = "https://evil.test/<script>window.__pwned=3</script>";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stella-console/tests/browser/console_flows.py")
}

/// Where screenshots go: `<target dir>/console-screenshots`.
fn shot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}

/// axe-core's browser build: `STELLA_AXE_JS`, else where scripts/test.sh
/// installs it.
fn axe_js() -> PathBuf {
    if let Some(p) = std::env::var_os("STELLA_AXE_JS") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/stella-test/node_modules/axe-core/axe.min.js")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let r = Stella::new(BIN)
        .current_dir(dir)
        .global_arg("--plain-http")
        .global_arg("--no-progress")
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .run(args);
    assert_eq!(r.code, 0, "stella {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

/// An image on the registry with an unsigned SBOM and a provenance
/// attestation signed by key `ci`; the data directory gets policy
/// `release` for tenant `default` trusting `ci`.
fn seed_registry(work: &Path, data: &Path, host: &str) -> String {
    std::fs::create_dir_all(work.join("docker-config")).unwrap();
    python_layout(&work.join("img"), PythonLayer::Seed("console"));
    let image = format!("{host}/demo/app:v1");
    skopeo_push(&work.join("img"), &image);
    std::fs::write(
        work.join("sbom.spdx.json"),
        br#"{"spdxVersion":"SPDX-2.3"}"#,
    )
    .unwrap();
    std::fs::write(
        work.join("prov.json"),
        br#"{"buildDefinition":{"buildType":"x"}}"#,
    )
    .unwrap();
    ok(
        work,
        &[
            "key",
            "generate",
            "--output-key",
            "ci.pem",
            "--output-pub",
            "ci.pub",
        ],
    );
    ok(
        work,
        &[
            "evidence",
            "push-referrer",
            "--image",
            &image,
            "--artifact-type",
            "application/spdx+json",
            "--file",
            "sbom.spdx.json",
        ],
    );
    ok(
        work,
        &[
            "attest",
            "--image",
            &image,
            "--type",
            "slsaprovenance",
            "--predicate",
            "prov.json",
            "--key",
            "ci.pem",
        ],
    );
    // Registry-borne text the console must show as text: an attestation
    // signed by a key the policy does not trust, claiming a hostile
    // predicate type (the report shows a failed attestation's claimed type).
    ok(
        work,
        &[
            "key",
            "generate",
            "--output-key",
            "other.pem",
            "--output-pub",
            "other.pub",
        ],
    );
    ok(
        work,
        &[
            "attest",
            "--image",
            &image,
            "--type",
            HOSTILE_PREDICATE,
            "--predicate",
            "prov.json",
            "--key",
            "other.pem",
        ],
    );
    let policies = data.join("policies/default");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::copy(work.join("ci.pub"), policies.join("ci.pub")).unwrap();
    std::fs::write(
        policies.join("release.yaml"),
        "version: 1\n\
         signers:\n  ci:\n    keys: [ci.pub]\n\
         requirements:\n\
         \x20 - name: sbom\n    type: application/spdx+json\n    unsigned: ignore\n\
         \x20 - name: provenance\n    type: slsaprovenance\n    signers: [ci]\n\
         \x20 - name: vex\n    type: openvex\n    signers: [ci]\n",
    )
    .unwrap();
    image
}

/// Must match `VEX_PRODUCT`, `VEX_CVE` and `HOSTILE_IMPACT` in console_flows.py.
const VEX_PRODUCT: &str = "pkg:generic/console-demo@1.0";
const VEX_CVE: &str = "CVE-2024-4242";
const HOSTILE_IMPACT: &str = "<img src=x onerror=window.__pwned=4> never loaded";

/// A second repository (`demo/vexed:v1`, the same image) carrying two
/// signed OpenVEX attestations about [`VEX_PRODUCT`] and [`VEX_CVE`] that
/// disagree: `not_affected` signed by `ci` (with a hostile impact
/// statement) and `affected` signed by `other`. The keys' public halves are
/// in `work` for the browser to stage. Answers the image reference.
fn seed_vex(work: &Path, host: &str) -> String {
    let image = format!("{host}/demo/vexed:v1");
    skopeo_push(&work.join("img"), &image);
    for (name, key, status, extra) in [
        (
            "vex-ci.json",
            "ci.pem",
            "not_affected",
            format!(
                r#","justification":"vulnerable_code_not_present","impact_statement":{}"#,
                serde_json::to_string(HOSTILE_IMPACT).unwrap()
            ),
        ),
        (
            "vex-other.json",
            "other.pem",
            "affected",
            String::from(r#","action_statement":"upgrade""#),
        ),
    ] {
        std::fs::write(
            work.join(name),
            format!(
                r#"{{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://vex.test/{name}","author":"Console test",
                "timestamp":"2024-05-01T00:00:00Z","version":1,
                "statements":[{{"vulnerability":{{"name":"{VEX_CVE}"}},"products":[{{"@id":"{VEX_PRODUCT}"}}],"status":"{status}"{extra}}}]}}"#
            ),
        )
        .unwrap();
        ok(
            work,
            &[
                "attest",
                "--image",
                &image,
                "--type",
                "openvex",
                "--predicate",
                name,
                "--key",
                key,
            ],
        );
    }
    image
}

struct Server {
    child: Child,
    url: String,
    admin_secret: String,
}

fn start_server(data: &Path) -> Server {
    let init = Command::new(BIN)
        .args(["serve", "init", "--output", "json", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    let admin_secret = doc["clientSecret"].as_str().unwrap().to_string();
    serve(data, admin_secret, "serve.log", &[])
}

/// `stella serve` on an initialised data directory, logging to `log`.
fn serve(data: &Path, admin_secret: String, log: &str, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000")
        .env("DOCKER_CONFIG", data.join("no-docker-config"))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data.join(log)).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("stella serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server {
        child,
        url,
        admin_secret,
    }
}

/// A client of another tenant (`acme`), for the isolation checks.
fn other_tenant(data: &Path) -> String {
    let out = Command::new(BIN)
        .args([
            "admin",
            "clients",
            "add",
            "acme-bot",
            "--tenant",
            "acme",
            "--scopes",
            "vex.read,vex.admin,evidence.read,export.read,export.admin",
            "--output",
            "json",
            "--data-dir",
        ])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["clientSecret"].as_str().unwrap().to_string()
}

#[test]
fn console_flows_in_headless_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is required (scripts/test.sh installs it)"
    );
    let axe = axe_js();
    assert!(
        axe.exists(),
        "axe-core is required at {} (scripts/test.sh installs it; or set STELLA_AXE_JS)",
        axe.display()
    );
    let registry = DistributionRegistry::start_plain().unwrap();
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let image = seed_registry(work.path(), data.path(), &registry.host_port());
    let vex_image = seed_vex(work.path(), &registry.host_port());
    let acme_secret = other_tenant(data.path());
    let mut server = start_server(data.path());
    let shots = shot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let state = work.path().join("browser-state.json");
    let flows = |server: &Server, phase: Option<&str>| {
        Command::new("python3")
            .arg(script())
            .args(phase)
            .env("STELLA_URL", &server.url)
            .env("STELLA_DATA_DIR", data.path())
            .env("STELLA_ADMIN_SECRET", &server.admin_secret)
            .env("STELLA_ACME_SECRET", &acme_secret)
            .env("STELLA_IMAGE", &image)
            .env("STELLA_VEX_IMAGE", &vex_image)
            .env("STELLA_WORK", work.path())
            .env("STELLA_AXE_JS", &axe)
            .env("STELLA_SHOTS", &shots)
            .env("STELLA_BROWSER_STATE", &state)
            .output()
            .unwrap()
    };
    let out = flows(&server, None);
    let (status, log) = stop(&mut server, data.path(), "serve.log");
    assert_flows_passed(&out, &log);
    assert!(status.success(), "server exit {status:?}\n{log}");
    assert!(
        log.contains("route=/console"),
        "console requests are logged:\n{log}"
    );

    // The same data directory, a new process that trusts 127.0.0.1 as a
    // TLS-terminating proxy: the browser's session survives the restart.
    // It also allows image checks on the test registry only.
    let registry_host = registry.host_port();
    let mut again = serve(
        data.path(),
        server.admin_secret.clone(),
        "serve-restarted.log",
        &[
            ("STELLA_CONSOLE_TRUSTED_PROXIES", "127.0.0.1"),
            ("STELLA_IMAGE_CHECK_ALLOWED_REGISTRIES", &registry_host),
        ],
    );
    let out = flows(&again, Some("restart"));
    let (status, log) = stop(&mut again, data.path(), "serve-restarted.log");
    assert_flows_passed(&out, &log);
    assert!(status.success(), "server exit {status:?}\n{log}");
}

fn stop(server: &mut Server, data: &Path, log: &str) -> (std::process::ExitStatus, String) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let status = server.child.wait().unwrap();
    let log = std::fs::read_to_string(data.join(log)).unwrap();
    assert!(
        !log.contains(&server.admin_secret),
        "the client secret is in the server log"
    );
    assert!(!log.contains("eyJ"), "a token is in the server log");
    (status, log)
}

fn assert_flows_passed(out: &std::process::Output, log: &str) {
    assert!(
        out.status.success(),
        "browser flows failed:\n{}\n{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
}
