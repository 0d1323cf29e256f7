#!/usr/bin/env bash
# Static checks, run by scripts/test.sh before the tests (and on their own):
#   1. formatting: `cargo fmt --check` on the workspace and the fuzz crate;
#   2. clippy on every target of the workspace (tests, examples, benches),
#      warnings are errors;
#   3. a build of the fuzz targets (fuzz/, its own cargo project) on the
#      current toolchain, stable included: a plain build without sanitizer
#      or coverage flags, which checks that every target compiles and links
#      against libFuzzer. Fuzzing itself needs nightly: see fuzz/README.md.
#
# The fuzz build shares the workspace's target directory (the fuzz crate
# pins the same dependency versions and dev profile), so most dependencies
# are not compiled twice.
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "installing rustup component $component"
    rustup component add "$component"
  fi
done

# Every step runs; the script fails at the end if any step failed.
failed=()
step() {
  local name=$1
  shift
  echo "lint: $name"
  "$@" || failed+=("$name")
}

step "cargo fmt --check" cargo fmt --all --check
step "cargo fmt --check (fuzz)" cargo fmt --manifest-path fuzz/Cargo.toml --check
step "cargo clippy --workspace --all-targets -- -D warnings" \
  cargo clippy --workspace --all-targets -- -D warnings
step "fuzz target build" env CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" \
  cargo build --manifest-path fuzz/Cargo.toml --bins

if ((${#failed[@]})); then
  printf 'lint: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "lint: ok"
