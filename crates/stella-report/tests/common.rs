//! Shared test helpers: fixtures with the image digest filled in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use stella_types::Digest;

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fixture with the image placeholders replaced by `image`.
pub fn fixture(name: &str, image: &Digest) -> Vec<u8> {
    let text = std::fs::read_to_string(fixture_path(name)).unwrap();
    text.replace(
        "@@IMAGE_DIGEST_PURL@@",
        &format!("sha256%3A{}", image.hex()),
    )
    .replace("@@IMAGE_DIGEST@@", &image.to_string())
    .replace("@@IMAGE_HEX@@", image.hex())
    .into_bytes()
}

pub const FIXTURES: [&str; 5] = [
    "trivy.json",
    "grype.json",
    "cyclonedx-vdr.json",
    "sarif.json",
    "vulns-statement.json",
];

pub fn image() -> Digest {
    Digest::sha256_of(b"the image manifest")
}
