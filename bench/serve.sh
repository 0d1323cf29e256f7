#!/usr/bin/env bash
# Benchmarks of `stella serve` (issue 12) on SQLite and on Postgres (a
# throwaway cluster of Debian's postgresql: initdb + pg_ctl on a free port,
# as stella-testkit's postgres::Cluster does). Not run in CI.
# Load generator: oha (crates.io), installed into $STELLA_BENCH_TOOLS when
# it is not on PATH. See bench/README.md, section "Issue 12".
#
#   bench/serve.sh                                    # builds the release binary first
#   STELLA_BIN=/path/to/stella bench/serve.sh         # use an existing binary
#   N_ARTIFACTS=5000 N_UPLOADS=500 DURATION=3s bench/serve.sh   # quick smoke run
#   BACKENDS=sqlite bench/serve.sh                    # one backend (default: sqlite postgres)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N_ARTIFACTS=${N_ARTIFACTS:-100000}   # metadata rows in the tenant for the GET figures
N_UPLOADS=${N_UPLOADS:-10000}        # 4 KiB uploads over 8 connections
N_BIG=${N_BIG:-640}                  # 1 MiB (cap-sized) uploads, 64 at a time
DURATION=${DURATION:-10s}            # each oha rate run
ROUNDS=${ROUNDS:-3}                  # alternating /healthz + GET rounds for figure 1
TOOLS=${STELLA_BENCH_TOOLS:-/tmp/stella-bench-tools}
BACKENDS=${BACKENDS:-sqlite postgres}

need() { command -v "$1" >/dev/null || { echo "bench/serve.sh needs $1" >&2; exit 2; }; }
need sqlite3; need curl; need python3; need jq

if [ -z "${STELLA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p stella-cli)
  STELLA_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/stella
fi
OHA=$(command -v oha || true)
if [ -z "$OHA" ]; then
  [ -x "$TOOLS/bin/oha" ] || cargo install oha --locked --root "$TOOLS"
  OHA=$TOOLS/bin/oha
fi

WORK=$(mktemp -d /tmp/stella-bench-serve.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export STELLA_RATE_LIMIT_REQUESTS_PER_SECOND=100000000
export STELLA_ARTIFACTS_QUOTA_COUNT=100000000
export STELLA_ARTIFACTS_QUOTA_BYTES=1000000000000

# init DIR -> prints the admin secret
init() {
  "$STELLA_BIN" serve init --data-dir "$1" --output json | jq -r .clientSecret
}

# start DIR: starts the server, sets SERVER_PID and URL
start() {
  local dir=$1
  rm -f "$dir/url"
  "$STELLA_BIN" serve --listen 127.0.0.1:0 --data-dir "$dir" >"$dir/out" 2>"$dir/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 1 500); do
    if grep -q "listening on" "$dir/out" 2>/dev/null; then break; fi
    sleep 0.02
  done
  URL=$(sed -n 's/^stella serve: listening on //p' "$dir/out")
  [ -n "$URL" ] || { echo "server did not start"; cat "$dir/serve.log"; exit 2; }
}

stop() {
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
}

token() { # client secret
  curl -sf -d grant_type=client_credentials -d client_id="$1" --data-urlencode client_secret="$2" \
    "$URL/connect/token" | jq -r .access_token
}

# oha_json ARGS...: one oha run, its JSON summary on stdout
oha_json() {
  if "$OHA" --help | grep -q -- '--output-format'; then
    "$OHA" --no-tui --output-format json "$@"
  else
    "$OHA" --no-tui --json "$@"
  fi
}

echo "stella: $("$STELLA_BIN" --version)   oha: $("$OHA" --version)   $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo

# ---- 1. start to ready on an empty SQLite database ---------------------
ready_ms=()
for i in 1 2 3 4 5; do
  d=$WORK/ready$i; init "$d" >/dev/null
  ready_ms+=("$(python3 - "$STELLA_BIN" "$d" <<'EOF'
import subprocess, sys, time, urllib.request
binary, d = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
p = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", d],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
url = p.stdout.readline().strip().removeprefix("stella serve: listening on ")
while True:
    try:
        if urllib.request.urlopen(url + "/readyz", timeout=1).status == 200:
            break
    except Exception:
        time.sleep(0.001)
print(f"{(time.perf_counter() - t0) * 1000:.1f}")
p.terminate(); p.wait()
EOF
)")
done
READY=$(printf '%s\n' "${ready_ms[@]}" | sort -n | sed -n 3p)

# ---- Postgres: a throwaway cluster (bench/lib_pg.sh: initdb + pg_ctl, roles
# as docs/service.md; default durability settings, fsync on) ---------------
PG_EXTRA_OPTS="-c max_connections=100"
# shellcheck source=bench/lib_pg.sh
source "$ROOT/bench/lib_pg.sh"
# owner_sql: stdin as the tables' owner (row-level security binds it too)
owner_sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$PG_OWNER_URL"; }
trap 'cleanup; if [ -n "$PG_DIR" ]; then pg_stop; fi' EXIT

# backend_env BACKEND: points stella at the backend (Postgres: a fresh cluster)
backend_env() {
  if [ -n "$PG_DIR" ]; then pg_stop; fi
  if [ "$1" = postgres ]; then
    pg_start
    export STELLA_DATABASE=$PG_SERVICE_URL STELLA_MIGRATION_DATABASE=$PG_OWNER_URL
  else
    unset STELLA_DATABASE STELLA_MIGRATION_DATABASE
  fi
}

rps() { jq -r '.summary.requestsPerSec' <<<"$1"; }
median() { python3 -c "import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }
p99_ms() { jq -r '.latencyPercentiles.p99 * 1000' <<<"$1"; }
only_status() { # RUN CODE
  [ "$(jq -r '.statusCodeDistribution | keys | join(",")' <<<"$1")" = "$2" ] || {
    echo "not all $2: $(jq -c .statusCodeDistribution <<<"$1")"; exit 1; }
}

# ---- 2. metadata GET with N_ARTIFACTS rows vs /healthz -----------------
# fill_rows BACKEND DIR: N_ARTIFACTS - 1 more rows in tenant default,
# provider bench, straight into the database (server stopped); prints the count
fill_rows() {
  if [ "$1" = postgres ]; then
    owner_sql >/dev/null <<EOF
SELECT set_config('app.tenant_id', 'default', false);
INSERT INTO vex_provider_artifact_refs
  (artifact_id, provider_id, tenant_id, mime_type, size_bytes, sha256, payload, staged_at, staged_by)
SELECT ('00000000-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, 'bench', 'default',
       'application/json', 64, md5(i::text) || md5((i + 1)::text),
       decode(repeat(md5(i::text), 4), 'hex'), '2026-01-01T00:00:00Z', 'admin'
FROM generate_series(1, $N_ARTIFACTS - 1) AS i;
ANALYZE vex_provider_artifact_refs;
EOF
    owner_sql <<<"SELECT set_config('app.tenant_id', 'default', false); SELECT COUNT(*) FROM vex_provider_artifact_refs WHERE tenant_id = 'default';" | tail -1
  else
    sqlite3 "$2/stella.db" <<EOF
PRAGMA synchronous=NORMAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N_ARTIFACTS - 1)
INSERT INTO vex_provider_artifact_refs
  (artifact_id, provider_id, tenant_id, mime_type, size_bytes, sha256, payload, staged_at, staged_by)
SELECT printf('00000000-0000-7000-8000-%012d', i), 'bench', 'default', 'application/json', 64,
       lower(hex(randomblob(32))), randomblob(64), '2026-01-01T00:00:00Z', 'admin' FROM n;
COMMIT;
EOF
    sqlite3 "$2/stella.db" "SELECT COUNT(*) FROM vex_provider_artifact_refs WHERE tenant_id = 'default'"
  fi
}

# bench_get BACKEND: sets H_RPS G_RPS L_RPS Q_RPS G_P99 ROWS
bench_get() {
  local D=$WORK/get-$1 SECRET AID AUTH GET_URL HEALTH GET LIST P500
  backend_env "$1"; SECRET=$(init "$D")
  start "$D"; TOK=$(token admin "$SECRET")
  AID=$(printf 'stella bench' | curl -sf -H "Authorization: Bearer $TOK" -F 'file=@-;type=application/json' \
    "$URL/excititor/providers/bench/artifacts" | jq -r .artifactId)
  stop
  ROWS=$(fill_rows "$1" "$D")
  start "$D"; TOK=$(token admin "$SECRET")
  AUTH="Authorization: Bearer $TOK"
  GET_URL="$URL/excititor/providers/bench/artifacts/$AID"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$GET_URL")" = 200 ]
  oha_json -z 2s -c 32 "$URL/healthz" >/dev/null   # warm-up
  # /healthz and the GET alternate, ROUNDS times each: the machine's speed
  # drifts over a run (a first fast phase, other tenants of the host), and
  # two back-to-back blocks would put the drift into the ratio. Reported:
  # the median rate of each and the median of the per-round ratios.
  local hs=() gs=() rs=()
  for _ in $(seq 1 "$ROUNDS"); do
    HEALTH=$(oha_json -z "$DURATION" -c 32 "$URL/healthz")
    GET=$(oha_json -z "$DURATION" -c 32 -H "$AUTH" "$GET_URL")
    only_status "$HEALTH" 200; only_status "$GET" 200
    hs+=("$(rps "$HEALTH")"); gs+=("$(rps "$GET")")
    rs+=("$(python3 -c "print(${gs[-1]} / ${hs[-1]})")")
  done
  LIST=$(oha_json -z "$DURATION" -c 32 -H "$AUTH" "$URL/excititor/providers/bench/artifacts?limit=100")
  P500=$(oha_json -z "$DURATION" -c 32 -q 500 -H "$AUTH" "$GET_URL")
  stop
  for run in "$HEALTH" "$GET" "$LIST" "$P500"; do only_status "$run" 200; done
  H_RPS=$(median "${hs[@]}"); G_RPS=$(median "${gs[@]}"); G_RATIO=$(median "${rs[@]}")
  G_ROUNDS=$(python3 -c "import sys; print(' / '.join(f'{float(x):.2f}' for x in sys.argv[1:]))" "${rs[@]}")
  L_RPS=$(rps "$LIST"); Q_RPS=$(rps "$P500")
  G_P99=$(p99_ms "$P500")
}

# ---- 3. N_UPLOADS uploads of 4 KiB over 8 connections vs direct inserts --
head -c 4096 /dev/urandom >"$WORK/payload.bin"
python3 - "$WORK/payload.bin" "$WORK/body.multipart" <<'EOF'
import sys
payload = open(sys.argv[1], "rb").read()
body = (b"--stellabench\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + payload + b"\r\n--stellabench--\r\n")
open(sys.argv[2], "wb").write(body)
EOF

# direct_inserts BACKEND DIR: the same rows (artifact + audit row), one
# transaction per row, into the same database; prints rows/s. SQLite: the
# same file, WAL and synchronous=NORMAL as the server. Postgres: psql as the
# owner, the tenant set per transaction as the server does.
direct_inserts() {
  python3 - "$WORK/payload.bin" "$N_UPLOADS" "$1" >"$WORK/inserts.sql" <<'EOF'
import hashlib, sys, uuid
payload = open(sys.argv[1], "rb").read()
sha, hexpay, pg = hashlib.sha256(payload).hexdigest(), payload.hex(), sys.argv[3] == "postgres"
blob = f"'\\x{hexpay}'::bytea" if pg else f"x'{hexpay}'"
if not pg:
    print("PRAGMA synchronous=NORMAL;")
for i in range(int(sys.argv[2])):
    aid = str(uuid.uuid4())
    print("BEGIN;")
    if pg:
        print("SELECT set_config('app.tenant_id', 'default', true);")
    print("INSERT INTO vex_provider_artifact_refs (artifact_id, provider_id, tenant_id, mime_type, size_bytes, "
          f"sha256, payload, staged_at, staged_by) VALUES ('{aid}', 'direct', 'default', "
          f"'application/octet-stream', 4096, '{sha}', {blob}, '2026-01-01T00:00:00Z', 'admin');")
    print("INSERT INTO audit_log (tenant_id, actor, action, target, at) VALUES "
          f"('default', 'admin', 'artifact.create', 'direct/{aid}', '2026-01-01T00:00:00Z');")
    print("COMMIT;")
EOF
  python3 - "$1" "$2/stella.db" "$WORK/inserts.sql" "${PG_OWNER_URL:-}" "$N_UPLOADS" <<'EOF'
import subprocess, sys, time
backend, db, script, pg_url, n = sys.argv[1:6]
cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", pg_url] if backend == "postgres" else ["sqlite3", db]
t0 = time.perf_counter()
subprocess.run(cmd, stdin=open(script), check=True, stdout=subprocess.DEVNULL)
print(f"{int(n) / (time.perf_counter() - t0):.1f}")
EOF
}

stored_rows() { # BACKEND DIR
  if [ "$1" = postgres ]; then
    owner_sql <<<"SELECT set_config('app.tenant_id', 'default', false); SELECT COUNT(*) FROM vex_provider_artifact_refs;" | tail -1
  else
    sqlite3 "$2/stella.db" "SELECT COUNT(*) FROM vex_provider_artifact_refs"
  fi
}

# bench_uploads BACKEND: sets U_RPS S_RPS
bench_uploads() {
  local D=$WORK/up-$1 SECRET UP STORED
  backend_env "$1"; SECRET=$(init "$D")
  start "$D"; TOK=$(token admin "$SECRET")
  UP=$(oha_json -n "$N_UPLOADS" -c 8 -m POST -H "Authorization: Bearer $TOK" \
    -T "multipart/form-data; boundary=stellabench" -D "$WORK/body.multipart" \
    "$URL/excititor/providers/bench/artifacts")
  stop
  only_status "$UP" 201
  STORED=$(stored_rows "$1" "$D")
  [ "$STORED" = "$N_UPLOADS" ] || { echo "stored $STORED rows, expected $N_UPLOADS"; exit 1; }
  U_RPS=$(rps "$UP")
  S_RPS=$(direct_inserts "$1" "$D")
}

# ---- 4. peak RSS during 64 concurrent uploads at the cap (1 MiB) -------
python3 - "$WORK/big.multipart" <<'EOF'
import os, sys
cap = 1024 * 1024
body = (b"--stellabench\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + os.urandom(cap) + b"\r\n--stellabench--\r\n")
open(sys.argv[1], "wb").write(body)
EOF

# bench_rss BACKEND: sets RSS_START RSS_PEAK (KiB)
bench_rss() {
  local D=$WORK/rss-$1 SECRET BIG
  backend_env "$1"; SECRET=$(init "$D")
  start "$D"; TOK=$(token admin "$SECRET")
  RSS_START=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
  BIG=$(oha_json -n "$N_BIG" -c 64 -m POST -H "Authorization: Bearer $TOK" \
    -T "multipart/form-data; boundary=stellabench" -D "$WORK/big.multipart" \
    "$URL/excititor/providers/bench/artifacts")
  RSS_PEAK=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
  stop
  only_status "$BIG" 201
}

# ---- report -------------------------------------------------------------
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo "| backend | # | measure | value | baseline | ratio | target |"
echo "|---------|---|---------|-------|----------|-------|--------|"
echo "| sqlite | 5 | start to ready (spawn to first 200 on /readyz), empty SQLite, median of 5 | $READY ms | | | reported |"
for B in $BACKENDS; do
  bench_get "$B"; bench_uploads "$B"; bench_rss "$B"
  if [ "$B" = postgres ]; then DIRECT="psql as the owner"; else DIRECT="sqlite3 CLI"; fi
  cat <<EOF
| $B | 1 | metadata GET /excititor/providers/bench/artifacts/{id}, $ROWS rows in the tenant, 32 connections, $ROUNDS rounds of $DURATION alternating with /healthz (medians; per-round ratios $G_ROUNDS) | $(printf %.0f "$G_RPS") req/s | /healthz $(printf %.0f "$H_RPS") req/s | $(printf %.2f "$G_RATIO") | >= 0.3 |
| $B | 1b | list GET ?limit=100 (same tenant) | $(printf %.0f "$L_RPS") req/s | /healthz | $(ratio "$L_RPS" "$H_RPS") | reported |
| $B | 2 | p99 of the metadata GET at 500 req/s (achieved $(printf %.0f "$Q_RPS") req/s) | $(printf %.2f "$G_P99") ms | | | <= 20 ms |
| $B | 3 | $N_UPLOADS uploads of 4 KiB, 8 connections | $(printf %.0f "$U_RPS") uploads/s | $DIRECT, same rows, 1 transaction each: $S_RPS rows/s | $(ratio "$U_RPS" "$S_RPS") | >= 0.3 |
| $B | 4 | peak RSS, $N_BIG uploads of 1 MiB (the cap), 64 concurrent | $((RSS_PEAK / 1024)) MiB (at start: $((RSS_START / 1024)) MiB) | | | <= 128 MiB |
EOF
done
