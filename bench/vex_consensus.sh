#!/usr/bin/env bash
# Benchmark of GET /vex/consensus (issue 13) with N_STATEMENTS OpenVEX
# statements stored, on SQLite and on Postgres (a throwaway cluster, as
# bench/serve.sh). A read benchmark: the rows are loaded straight into the
# database in bulk (sqlite3 / psql), not ingested. Figures: p99 latency of
# the consensus for one (product, vulnerability) pair under oha, and the
# query plan of the statement query (it must use the key indexes, not scan).
# Not run in CI. See bench/README.md, section "Issue 13".
#
#   bench/vex_consensus.sh                        # builds the release binary first
#   STELLA_BIN=/path/to/stella bench/vex_consensus.sh
#   N_STATEMENTS=100000 BACKENDS=sqlite bench/vex_consensus.sh   # quick run
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N_STATEMENTS=${N_STATEMENTS:-1000000}  # statements stored (100 per document)
PAIR=${PAIR:-10}                       # statements about the measured pair (one issuer each)
N_REQUESTS=${N_REQUESTS:-2000}         # oha requests per backend
CONNECTIONS=${CONNECTIONS:-4}          # oha connections
TOOLS=${STELLA_BENCH_TOOLS:-/tmp/stella-bench-tools}
BACKENDS=${BACKENDS:-sqlite postgres}

need() { command -v "$1" >/dev/null || { echo "bench/vex_consensus.sh needs $1" >&2; exit 2; }; }
need sqlite3; need curl; need python3; need jq; need psql

if [ -z "${STELLA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p stella-cli)
  STELLA_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/stella
fi
OHA=$(command -v oha || true)
if [ -z "$OHA" ]; then
  [ -x "$TOOLS/bin/oha" ] || cargo install oha --locked --root "$TOOLS"
  OHA=$TOOLS/bin/oha
fi

WORK=$(mktemp -d /tmp/stella-bench-vexc.XXXXXX)
SERVER_PID=
PG_DIR=
export STELLA_RATE_LIMIT_REQUESTS_PER_SECOND=100000000

# shellcheck source=bench/lib_pg.sh
. "$ROOT/bench/lib_pg.sh"
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DIR" ]; then pg_stop; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The pair measured: product sha256:aa..a, vulnerability CVE-2099-0001,
# PAIR statements from PAIR issuers. Every other statement is about
# product sha256:<i mod 10000> and CVE-2024-<i mod 1000>, so the measured
# product and vulnerability keys each also have many other rows around them.
TARGET_HEX=$(printf 'a%.0s' $(seq 1 64))
TENANT=t1

# load_sql DIALECT: the bulk insert (documents of 100 statements)
load_sql() {
  local series ts hex ov=
  if [ "$1" = sqlite ]; then
    series="WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %s - 1) SELECT i FROM n"
    hex="printf('%%064x', i %% 10000)"
  else
    series="SELECT generate_series(0, %s - 1) AS i"
    hex="lpad(to_hex(i %% 10000), 64, '0')"
    ov="OVERRIDING SYSTEM VALUE" # explicit keys into the identity columns
  fi
  ts="'2024-01-01T00:00:00Z'"
  local ndocs=$(((N_STATEMENTS + 99) / 100))
  # shellcheck disable=SC2059
  cat <<SQL
BEGIN;
INSERT INTO vex_documents (doc_key, tenant_id, provider_id, issuer, document_id, document_version,
  document_timestamp, author, signed, image_digest, evidence_digest, ingested_at) $ov
SELECT i + 1, '$TENANT', 'excititor:oci-openvex', 'issuer-' || (i % 50), 'https://bench/doc/' || i, 1,
  $ts, 'bench', TRUE, 'sha256:' || '$TARGET_HEX', 'sha256:' || '$TARGET_HEX', $ts
FROM ($(printf "$series" "$ndocs")) AS s;
INSERT INTO vex_statements (statement_key, tenant_id, doc_key, statement_digest, vulnerability, status, statement_json) $ov
SELECT i + 1, '$TENANT', i / 100 + 1, 'sha256:' || i, 'CVE-2024-' || (i % 1000), 'not_affected',
  '{"vulnerability":{"name":"CVE-2024-' || (i % 1000) || '"},"timestamp":"2024-01-01T00:00:00Z",'
  || '"products":[{"@id":"sha256:' || $(printf "$hex") || '"}],"status":"not_affected",'
  || '"justification":"component_not_present"}'
FROM ($(printf "$series" "$N_STATEMENTS")) AS s;
INSERT INTO vex_statement_products (tenant_id, statement_key, product_key)
SELECT '$TENANT', i + 1, 'oci:sha256:' || $(printf "$hex") FROM ($(printf "$series" "$N_STATEMENTS")) AS s;
INSERT INTO vex_statement_vulns (tenant_id, statement_key, vuln_key)
SELECT '$TENANT', i + 1, 'CVE-2024-' || (i % 1000) FROM ($(printf "$series" "$N_STATEMENTS")) AS s;
-- the measured pair: PAIR more documents, one issuer each
INSERT INTO vex_documents (doc_key, tenant_id, provider_id, issuer, document_id, document_version,
  document_timestamp, author, signed, image_digest, evidence_digest, ingested_at) $ov
SELECT $ndocs + i + 1, '$TENANT', 'excititor:oci-openvex', 'pair-issuer-' || i, 'https://bench/pair/' || i, 1,
  $ts, 'bench', TRUE, 'sha256:' || '$TARGET_HEX', 'sha256:' || '$TARGET_HEX', $ts
FROM ($(printf "$series" "$PAIR")) AS s;
INSERT INTO vex_statements (statement_key, tenant_id, doc_key, statement_digest, vulnerability, status, statement_json) $ov
SELECT $N_STATEMENTS + i + 1, '$TENANT', $ndocs + i + 1, 'sha256:pair' || i, 'CVE-2099-0001',
  CASE WHEN i % 2 = 0 THEN 'not_affected' ELSE 'affected' END,
  '{"vulnerability":{"name":"CVE-2099-0001"},"timestamp":"2024-01-01T00:00:00Z",'
  || '"products":[{"@id":"sha256:$TARGET_HEX"}],"status":"'
  || CASE WHEN i % 2 = 0 THEN 'not_affected","justification":"component_not_present"}'
     ELSE 'affected","action_statement":"upgrade"}' END
FROM ($(printf "$series" "$PAIR")) AS s;
INSERT INTO vex_statement_products (tenant_id, statement_key, product_key)
SELECT '$TENANT', $N_STATEMENTS + i + 1, 'oci:sha256:$TARGET_HEX' FROM ($(printf "$series" "$PAIR")) AS s;
INSERT INTO vex_statement_vulns (tenant_id, statement_key, vuln_key)
SELECT '$TENANT', $N_STATEMENTS + i + 1, 'CVE-2099-0001' FROM ($(printf "$series" "$PAIR")) AS s;
COMMIT;
SQL
}

# The statement query the consensus route runs (stella-store, query_vex_statements).
QUERY="SELECT s.statement_key FROM vex_statements s JOIN vex_documents d
  ON d.doc_key = s.doc_key AND d.tenant_id = s.tenant_id
  WHERE s.tenant_id = '$TENANT' AND s.statement_key > 0
  AND s.statement_key IN (SELECT statement_key FROM vex_statement_products
      WHERE tenant_id = '$TENANT' AND product_key = 'oci:sha256:$TARGET_HEX')
  AND s.statement_key IN (SELECT statement_key FROM vex_statement_vulns
      WHERE tenant_id = '$TENANT' AND vuln_key = 'CVE-2099-0001')
  ORDER BY s.statement_key LIMIT 500"

echo "stella: $("$STELLA_BIN" --version)   oha: $("$OHA" --version)   $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for backend in $BACKENDS; do
  DATA=$WORK/$backend
  unset STELLA_DATABASE STELLA_MIGRATION_DATABASE
  if [ "$backend" = postgres ]; then pg_start; fi
  "$STELLA_BIN" serve init --data-dir "$DATA" --output json >/dev/null
  t0=$(date +%s.%N)
  if [ "$backend" = sqlite ]; then
    load_sql sqlite | sqlite3 "$DATA/stella.db"
    sqlite3 "$DATA/stella.db" "ANALYZE"
    plan=$(sqlite3 "$DATA/stella.db" "EXPLAIN QUERY PLAN $QUERY")
  else
    load_sql postgres | pg_psql_file stella
    pg_psql stella "ANALYZE"
    # as the service role, under the forced row-level security policies
    plan=$(psql -X -q -A -t -v ON_ERROR_STOP=1 "$STELLA_DATABASE" \
      -c "SELECT set_config('app.tenant_id', '$TENANT', false)" -c "EXPLAIN $QUERY" | tail -n +2)
  fi
  echo "$backend: loaded $N_STATEMENTS + $PAIR statements in $(echo "$(date +%s.%N) - $t0" | bc -l | cut -c1-6)s"
  echo "$backend: query plan:"; sed 's/^/    /' <<<"$plan"
  if grep -qiE 'SCAN (s|vex_statements)( |$)|Seq Scan on vex_statement' <<<"$plan"; then
    echo "$backend: the statement query scans a table" >&2; exit 1
  fi

  "$STELLA_BIN" serve --listen 127.0.0.1:0 --data-dir "$DATA" >"$DATA/out" 2>"$DATA/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 1 500); do grep -q "listening on" "$DATA/out" 2>/dev/null && break; sleep 0.02; done
  URL=$(sed -n 's/^stella serve: listening on //p' "$DATA/out")
  [ -n "$URL" ] || { echo "server did not start"; cat "$DATA/serve.log"; exit 2; }
  SECRET=$("$STELLA_BIN" admin clients add bench --tenant "$TENANT" --scopes vex.read \
    --data-dir "$DATA" --output json | jq -r .clientSecret)
  TOKEN=$(curl -sf -d grant_type=client_credentials -d client_id=bench \
    --data-urlencode client_secret="$SECRET" "$URL/connect/token" | jq -r .access_token)
  Q="$URL/vex/consensus?product=sha256:$TARGET_HEX&vulnerability=CVE-2099-0001"
  body=$(curl -sf -H "Authorization: Bearer $TOKEN" "$Q")
  n=$(jq '[.items[] | select(.vulnerability == "CVE-2099-0001")] | length' <<<"$body")
  [ "$n" = 1 ] || { echo "$backend: no consensus for the pair: $body" >&2; exit 1; }
  echo "$backend: consensus: $(jq -c '.items[0] | {status: (.status // .outcome // null)}' <<<"$body")"
  run=$("$OHA" --no-tui --output-format json -n "$N_REQUESTS" -c "$CONNECTIONS" \
    -H "Authorization: Bearer $TOKEN" "$Q")
  codes=$(jq -r '.statusCodeDistribution | keys | join(",")' <<<"$run")
  [ "$codes" = 200 ] || { echo "$backend: not all 200: $codes" >&2; exit 1; }
  p50=$(jq -r '.latencyPercentiles.p50 * 1000' <<<"$run")
  p99=$(jq -r '.latencyPercentiles.p99 * 1000' <<<"$run")
  rps=$(jq -r '.summary.requestsPerSec' <<<"$run")
  echo "RESULT backend=$backend statements=$((N_STATEMENTS + PAIR)) connections=$CONNECTIONS consensus_p50_ms=$p50 consensus_p99_ms=$p99 rps=$rps (target: p99 <= 10 ms)"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  if [ "$backend" = postgres ]; then pg_stop; fi
done
