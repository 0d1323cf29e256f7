#!/usr/bin/env bash
# Issue 16 benchmark: an image's report over 5,000 findings in 3 scanner
# reports (Trivy, Grype, CycloneDX) with 2,000 VEX statements, against only
# reading and parsing the same reports. Target: ratio <= 2.
# See bench/README.md ("Issue 16"). Not run in CI.
#
#   bench/report.sh [RUNS]        (default 15; medians are reported)
#
# Builds with optimisation (release profile). Set BENCH_PROFILE=dev to reuse
# a dev target directory instead (then CARGO_PROFILE_DEV_OPT_LEVEL=2 is set so
# the workspace crates are optimised like their dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-15}"
if [[ "${BENCH_PROFILE:-release}" == dev ]]; then
  CARGO_PROFILE_DEV_OPT_LEVEL=2 cargo run -q -p stella-report --example bench_report -- "$runs"
else
  cargo run -q --release -p stella-report --example bench_report -- "$runs"
fi

# Service half: p99 latency of POST /api/v1/reports at 20 requests/s
# (bench/report_serve.sh: real registry and server). BENCH_SERVE=0 skips it.
if [[ "${BENCH_SERVE:-1}" != 0 ]]; then
  bench/report_serve.sh
fi
