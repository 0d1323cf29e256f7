//! What the report tests (`report_registry.rs`, `report_server.rs`) share:
//! the `stella` runner they call (plain HTTP, no progress, a docker config
//! of the test's own, `SOURCE_DATE_EPOCH` pinned, no `STELLA_SERVER` from
//! the environment) and the scanner-report fixtures of `stella-report`
//! with an image's digest filled in.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use stella_testkit::cli::{Run, Stella};

/// The `SOURCE_DATE_EPOCH` of every run.
pub const EPOCH: &str = "1790000000";

pub fn stella(dir: &Path, args: &[&str]) -> Run {
    Stella::new(env!("CARGO_BIN_EXE_stella"))
        .current_dir(dir)
        .global_arg("--plain-http")
        .global_arg("--no-progress")
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("STELLA_REQUEST_STATS")
        .env_remove("STELLA_SERVER")
        .run_env(args, &[("SOURCE_DATE_EPOCH", EPOCH)])
}

/// `stella args` that must exit 0; its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let r = stella(dir, args);
    assert_eq!(r.code, 0, "stella {args:?}: {}{}", r.stdout, r.stderr);
    r.stdout
}

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../stella-report/tests/fixtures")
}

/// A fixture with the image placeholders filled in, written into `w`.
pub fn write_fixture(w: &Path, name: &str, image_digest: &str, out: &str) {
    let hex = image_digest.trim_start_matches("sha256:");
    let text = std::fs::read_to_string(fixture_dir().join(name))
        .unwrap()
        .replace("@@IMAGE_DIGEST_PURL@@", &format!("sha256%3A{hex}"))
        .replace("@@IMAGE_DIGEST@@", image_digest)
        .replace("@@IMAGE_HEX@@", hex);
    std::fs::write(w.join(out), text).unwrap();
}
