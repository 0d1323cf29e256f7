#!/usr/bin/env bash
# Issue 3 benchmark: verify N (10,000) key-signed attestation bundles
# (ECDSA P-256, ~2 KiB in-toto statements) from a local file set with
# stella-attest, and compare per-core throughput with
# `openssl speed -seconds 3 ecdsap256` (raw verify/s) on the same machine.
# Ratios are computed in one run. See bench/README.md, "Issue 3".
set -euo pipefail

N=${N:-10000}
PAYLOAD=${PAYLOAD:-2048}
THREADS=${THREADS:-$(nproc)}

cd "$(dirname "$0")/.."
cargo build --release -q -p stella-attest --example verify_envelopes
BIN=target/release/examples/verify_envelopes

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== generating $N bundles (payload ~$PAYLOAD bytes)"
"$BIN" gen "$WORK/set" "$N" "$PAYLOAD"

echo "== stella-attest verify (1 thread, then $THREADS threads)"
OUT=$("$BIN" verify "$WORK/set" "$THREADS")
echo "$OUT"

echo "== openssl speed -seconds 3 ecdsap256"
OSSL_OUT=$(openssl speed -seconds 3 ecdsap256 2>/dev/null)
echo "$OSSL_OUT" | grep -E "sign/s|nistp256" || true
OSSL=$(echo "$OSSL_OUT" | awk '/nistp256\)/ {v=$NF} END {print v}')

S1=$(echo "$OUT" | awk -F= '/^per_sec_1_thread=/ {print $2}')
SN=$(echo "$OUT" | awk -F= -v t="$THREADS" '$1 == "per_sec_" t "_threads" {print $2}')
SPEEDUP=$(echo "$OUT" | awk -F= '/^speedup=/ {print $2}')

awk -v s1="$S1" -v sn="$SN" -v o="$OSSL" -v t="$THREADS" -v sp="$SPEEDUP" 'BEGIN {
  printf "\n== summary\n"
  printf "openssl ecdsap256 verify/s (1 core):        %.0f\n", o
  printf "stella full verifications/s (1 thread):     %.0f\n", s1
  printf "stella full verifications/s (%d threads):    %.0f\n", t, sn
  printf "per-core ratio stella/openssl (target>=0.5): %.2f\n", s1 / o
  printf "speed-up %d threads vs 1:                    %.2f\n", t, sp
}'
