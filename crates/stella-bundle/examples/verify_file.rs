//! Times one integrity-only streaming verification of a bundle file (no
//! signatures): `cargo run --release -p stella-bundle --example verify_file -- <bundle>`.
//! Used to separate the hashing cost from signature checks in `bench/bundle.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_bundle::{BundleReader, ReadLimits, VerifyOptions};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: verify_file <bundle>");
    let t = std::time::Instant::now();
    let mut r =
        BundleReader::open_path(std::path::Path::new(&path), ReadLimits::default()).unwrap();
    let opts = VerifyOptions {
        integrity_only: true,
        ..VerifyOptions::default()
    };
    let report = stella_bundle::verify::verify_open(&mut r, &opts).unwrap();
    println!(
        "verified={} artifacts={} seconds={:.3}",
        report.verified,
        report.artifacts.len(),
        t.elapsed().as_secs_f64()
    );
}
