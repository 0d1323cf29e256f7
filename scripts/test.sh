#!/usr/bin/env bash
# Installs what the test suite needs and runs all of it.
#
# Needs: Debian's docker-registry (distribution 2.8), skopeo and htpasswd
# (apache2-utils), openssl, sqlite3, curl, age and ssh-keygen (export encryption interop), a C++ compiler (libFuzzer, for the
# fuzz target build); PyPI oras, securesystemslib, cryptography, tuf, requests,
# openapi-spec-validator, pyyaml, schemathesis (independent implementations used
# as test oracles; `stella serve` API tests). Installs whatever is missing (as
# root via apt-get / pip), runs scripts/lint.sh (fmt, clippy, fuzz target
# build; skipped with STELLA_SKIP_LINT=1), then every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v sha256sum >/dev/null || need+=(coreutils)
command -v c++ >/dev/null || need+=(g++)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v curl >/dev/null || need+=(curl)
# postgresql: initdb/pg_ctl/psql for the testkit's throwaway clusters (as root
# it runs them as the package's `postgres` user).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v age >/dev/null || need+=(age)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
# The web console's browser test: Debian's headless Chromium (never a downloaded browser) and npm.
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
# The offline VEX ingest test (vex_ingest_layout.rs): strace counts connect calls under unshare -n.
command -v strace >/dev/null || need+=(strace)
command -v unshare >/dev/null || need+=(util-linux)
# The SQLite disk-full test (serve_api.rs) reads the database in the server's namespaces with nsenter.
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  echo "installing Debian packages: ${need[*]}"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}"
fi

if ! python3 -c 'import oras, securesystemslib, cryptography, tuf, requests, openapi_spec_validator, yaml, schemathesis' 2>/dev/null; then
  echo "installing PyPI test oracles: oras securesystemslib cryptography tuf requests openapi-spec-validator pyyaml schemathesis"
  python3 -m pip install -q 'oras==0.2.43' 'securesystemslib==1.6.0' 'cryptography>=42' 'tuf==7.0.1' \
    'requests>=2.31' 'openapi-spec-validator>=0.7' 'pyyaml>=6' 'schemathesis>=4,<5'
fi

# Console browser test: PyPI playwright drives /usr/bin/chromium; axe-core (npm) is
# injected into each page. `playwright install` is never run.
if ! python3 -c 'import playwright.sync_api' 2>/dev/null; then
  echo "installing PyPI playwright (driver only; the browser is Debian's chromium)"
  python3 -m pip install -q 'playwright>=1.40'
fi
axe_dir="${HOME:-/root}/.cache/stella-test"
if [ ! -f "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
  echo "installing npm axe-core into $axe_dir"
  mkdir -p "$axe_dir"
  npm install --prefix "$axe_dir" --no-audit --no-fund --silent 'axe-core@4'
fi
export STELLA_AXE_JS="$axe_dir/node_modules/axe-core/axe.min.js"

# A lint failure does not hide the test results: both run, either fails the script.
lint_status=0
if [ "${STELLA_SKIP_LINT:-0}" != 1 ]; then
  bash scripts/lint.sh || lint_status=$?
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
if [ "$lint_status" != 0 ]; then
  echo "scripts/lint.sh failed (exit $lint_status); see its output above" >&2
  exit "$lint_status"
fi
