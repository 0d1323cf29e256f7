#!/usr/bin/env bash
# Offline sigstore bundle verification throughput, as a ratio to the bound
# set by the bundles' signature checks (openssl speed for the algorithms
# involved, times the number of signatures per bundle). Target: ratio >= 0.3.
#
# Usage: bench/sigstore.sh            (N=1000 bundles; CONF=path to conformance/sigstore)
set -euo pipefail
cd "$(dirname "$0")/.."
CONF=${CONF:-../shared/conformance/sigstore}
N=${N:-1000}
N_CLI=${N_CLI:-50}

# Library crates optimised like the dependencies (the workspace dev profile
# already builds dependencies at opt-level 2); no full release build needed.
# Verification runs through stella-crypto (keys, chain validation) and
# stella-types (hashing) too, so they are optimised as well.
OPT=()
for crate in stella-sigstore stella-tlog stella-crypto stella-types; do
  OPT+=(--config "profile.dev.package.$crate.opt-level=3"
        --config "profile.dev.package.$crate.debug-assertions=false")
done
cargo build -q -p stella-sigstore --example sigstore_bench "${OPT[@]}"

LIB=$(./target/debug/examples/sigstore_bench "$CONF" "$N")
SPEED=$(openssl speed -seconds 2 ecdsap256 ecdsap384 2>/dev/null)
P256=$(echo "$SPEED" | awk '/nistp256\)/ {print $NF}')
P384=$(echo "$SPEED" | awk '/nistp384\)/ {print $NF}')

# End to end through the CLI (one process per bundle: includes process start
# and trusted-root parsing), if the binary is built.
CLI_RATE=""
if [ -x target/debug/stella ]; then
  start=$(date +%s.%N)
  for _ in $(seq "$N_CLI"); do
    target/debug/stella verify blob --bundle "$CONF/test/assets/bundle-verify/happy-path-v0.3/bundle.sigstore.json" \
      --trusted-root "$CONF/trusted_root/production.json" \
      --certificate-identity "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main" \
      --certificate-oidc-issuer https://token.actions.githubusercontent.com "$CONF/test/assets/a.txt" >/dev/null
  done
  end=$(date +%s.%N)
  CLI_RATE=$(python3 -c "print(f'{$N_CLI/($end-$start):.1f}')")
fi

python3 - "$LIB" "$P256" "$P384" "$CLI_RATE" <<'PY'
import json, sys
lib = json.loads(sys.argv[1]); p256 = float(sys.argv[2]); p384 = float(sys.argv[3]); cli = sys.argv[4]
n256, n384 = lib["p256_verifies_per_bundle"], lib["p384_verifies_per_bundle"]
bound = 1.0 / (n256 / p256 + n384 / p384)          # bundles/s if only signatures cost time
rate = lib["bundles_per_s"]
steps = lib["steps_s"]
slowest = max(steps, key=steps.get)
print(f"bundles verified:            {lib['bundles']} in {lib['total_s']:.3f} s  ->  {rate:.1f} bundles/s")
print(f"openssl speed verify/s:      P-256 {p256:.0f}, P-384 {p384:.0f}")
print(f"signatures per bundle:       {n256} x P-256 (artifact/DSSE, SET, checkpoint, SCT) + {n384} x P-384 (leaf; the intermediate-to-root link is verified once and remembered)")
print(f"signature-check bound:       {bound:.1f} bundles/s")
print(f"ratio throughput/bound:      {rate / bound:.2f}   (target >= 0.3)")
print("steps (each timed alone over all bundles, seconds):")
for k, v in sorted(steps.items(), key=lambda kv: -kv[1]):
    print(f"  {k:<32} {v:.4f}")
print(f"slowest step:                {slowest}")
if cli:
    print(f"CLI end to end (1 process per bundle): {cli} bundles/s")
PY
