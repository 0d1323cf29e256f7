#!/usr/bin/env bash
# Benchmark of OpenVEX ingest by the OCI OpenVEX provider runner (issue 13),
# on SQLite and on Postgres (a throwaway cluster, bench/lib_pg.sh).
# N_DOCS images on a real distribution 2.8 registry, each with one signed
# OpenVEX attestation of STATEMENTS statements: a DSSE envelope over an
# in-toto statement, signed by PyPI `cryptography` (ECDSA P-256) with a
# key from `stella key generate` (as tests/vex_ingest_registry.rs does),
# attached through the sha256-<hex> fallback tag.
# Figures per backend:
#   - statements/s of the provider's first (scheduled) run, from its
#     startedAt/finishedAt, over the statements/s of inserting the same
#     rows straight into the same database (the rows the run stored, dumped
#     as one INSERT per row and replayed in one transaction by sqlite3 /
#     psql after deleting them);
#   - the shares of the run: the runner logs, per run, the time spent
#     discovering (registry reads of the referrer and the envelope, DSSE
#     signature verification, OpenVEX validation) and storing; share =
#     stage time / the run's wall time.
# Not run in CI. See bench/README.md, section "Issue 13".
#
#   bench/vex_ingest.sh                                   # builds the release binary first
#   STELLA_BIN=/path/to/stella bench/vex_ingest.sh
#   N_DOCS=100 BACKENDS=sqlite bench/vex_ingest.sh       # quick run
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N_DOCS=${N_DOCS:-1000}          # signed documents, one image each
STATEMENTS=${STATEMENTS:-100}   # statements per document
BACKENDS=${BACKENDS:-sqlite postgres}

need() { command -v "$1" >/dev/null || { echo "bench/vex_ingest.sh needs $1" >&2; exit 2; }; }
need docker-registry; need sqlite3; need curl; need python3; need jq; need psql
python3 -c 'import cryptography' || { echo "bench/vex_ingest.sh needs PyPI cryptography" >&2; exit 2; }

if [ -z "${STELLA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p stella-cli)
  STELLA_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/stella
fi

WORK=$(mktemp -d /tmp/stella-bench-vexi.XXXXXX)
SERVER_PID=
REG_PID=
# shellcheck source=bench/lib_pg.sh
. "$ROOT/bench/lib_pg.sh"
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DIR" ]; then pg_stop; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export STELLA_RATE_LIMIT_REQUESTS_PER_SECOND=100000000

# ---- the registry and the documents ------------------------------------
PORT=$(free_port)
REG=127.0.0.1:$PORT
cat >"$WORK/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REG
  secret: stella-bench-not-a-secret
log:
  level: warn
  accesslog:
    disabled: true
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.out" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
"$STELLA_BIN" key generate --algorithm ecdsa-p256 --output-key "$WORK/k.key" --output-pub "$WORK/k.pub" >/dev/null

t0=$(date +%s.%N)
python3 - "$REG" "$N_DOCS" "$STATEMENTS" "$WORK" <<'PY'
import base64, hashlib, http.client, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
reg, n, per, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
key = serialization.load_pem_private_key(open(f"{work}/k.key", "rb").read(), password=None)
conn = http.client.HTTPConnection(reg)
def req(method, path, body=b"", headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse(); data = r.read()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return r
def blob(repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = req("POST", f"/v2/{repo}/blobs/uploads/").getheader("Location").split(reg, 1)[-1]
    req("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={d}", data,
        {"Content-Type": "application/octet-stream"})
    return d, len(data)
def manifest(repo, ref, obj, mt):
    data = json.dumps(obj, separators=(",", ":")).encode()
    req("PUT", f"/v2/{repo}/manifests/{ref}", data, {"Content-Type": mt})
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
IMG = "application/vnd.oci.image.manifest.v1+json"
IDX = "application/vnd.oci.image.index.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
VEX = "application/openvex+json"
def dsse(digest_hex, predicate):
    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": "app", "digest": {"sha256": digest_hex}}],
                 "predicateType": "https://openvex.dev/ns/v0.2.0", "predicate": predicate}
    payload = json.dumps(statement).encode()
    ptype = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    sig = key.sign(pae, ec.ECDSA(hashes.SHA256()))
    return json.dumps({"payloadType": ptype.decode(), "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}]}).encode()
for repo, mt in (("bench/signed", DSSE),):
    empty_d, empty_n = blob(repo, b"{}")
    subs = []
    for i in range(n):
        cfg_d, cfg_n = blob(repo, json.dumps({"architecture": "amd64", "os": "linux", "bench": i}).encode())
        img_d, img_n = manifest(repo, f"img-{i}", {"schemaVersion": 2, "mediaType": IMG,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d, "size": cfg_n},
            "layers": []}, IMG)
        product = f"pkg:oci/app@{img_d.replace(':', '%3A')}"
        doc = {"@context": "https://openvex.dev/ns/v0.2.0", "@id": f"https://bench/{i}",
            "author": "bench", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
            "statements": [{"vulnerability": {"name": f"CVE-2024-{i}-{j}"}, "products": [{"@id": product}],
                            "status": "not_affected", "justification": "component_not_present"}
                           for j in range(per)]}
        body = dsse(img_d.split(":", 1)[1], doc) if mt == DSSE else json.dumps(doc).encode()
        doc_d, doc_n = blob(repo, body)
        ref = {"schemaVersion": 2, "mediaType": IMG, "artifactType": mt,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_d, "size": empty_n},
            "layers": [{"mediaType": mt, "digest": doc_d, "size": doc_n}],
            "subject": {"mediaType": IMG, "digest": img_d, "size": img_n}}
        ref_d, ref_n = manifest(repo, "r", ref, IMG)
        manifest(repo, img_d.replace(":", "-"), {"schemaVersion": 2, "mediaType": IDX, "manifests": [
            {"mediaType": IMG, "digest": ref_d, "size": ref_n, "artifactType": mt}]}, IDX)
        subs.append(f"{reg}/{repo}@{img_d}")
    open(f"{work}/{repo.split('/')[1]}.txt", "w").write("\n".join(subs) + "\n")
PY
echo "pushed $N_DOCS documents of $STATEMENTS statements in $(echo "$(date +%s.%N) - $t0" | bc -l | cut -c1-6)s"

# ---- per backend ---------------------------------------------------------
# run_seconds: wall time of the provider's last whole run (status route)
run_seconds() {
  local status
  for _ in $(seq 1 7200); do
    status=$(curl -sf -H "Authorization: Bearer $TOKEN" \
      "$URL/excititor/providers/excititor:oci-openvex/status" |
      jq -c '.runs[] | select(.image == "" and .finishedAt != null)' || true)
    if [ -n "$status" ] && [ "$(jq -r .startedAt <<<"$status")" != "${1:-}" ]; then break; fi
    status=; sleep 0.5
  done
  [ -n "$status" ] || { echo "the run did not finish" >&2; exit 2; }
  echo "$status" >"$WORK/last-run.json"
  python3 - "$status" <<'PY'
import json, sys
from datetime import datetime
s = json.loads(sys.argv[1])
p = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))
print(f"{(p(s['finishedAt']) - p(s['startedAt'])).total_seconds():.3f}")
PY
}
configure() { # LIST EXTRA...
  local list=$1; shift
  local images=()
  while read -r l; do images+=(--image "$l"); done <"$WORK/$list.txt"
  "$STELLA_BIN" vex providers configure excititor:oci-openvex "${images[@]}" \
    --set cosignMode=keypair --set allowHttpRegistries=true --set pollInterval=24h "$@" \
    --upload-artifact "cosignKeys=@$WORK/k.pub" >/dev/null
}
count_sql="SELECT count(*) FROM vex_statements"
TABLES="vex_documents vex_statements vex_statement_products vex_statement_vulns"

for backend in $BACKENDS; do
  DATA=$WORK/$backend
  unset STELLA_DATABASE STELLA_MIGRATION_DATABASE
  if [ "$backend" = postgres ]; then pg_start; fi
  "$STELLA_BIN" serve init --data-dir "$DATA" --output json >/dev/null
  "$STELLA_BIN" serve --listen 127.0.0.1:0 --data-dir "$DATA" >"$DATA/out" 2>"$DATA/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 1 500); do grep -q "listening on" "$DATA/out" 2>/dev/null && break; sleep 0.02; done
  URL=$(sed -n 's/^stella serve: listening on //p' "$DATA/out")
  [ -n "$URL" ] || { echo "server did not start"; cat "$DATA/serve.log"; exit 2; }
  SECRET=$("$STELLA_BIN" admin clients add bench --tenant t1 --scopes vex.read,vex.admin \
    --data-dir "$DATA" --output json | jq -r .clientSecret)
  TOKEN=$(curl -sf -d grant_type=client_credentials -d client_id=bench \
    --data-urlencode client_secret="$SECRET" "$URL/connect/token" | jq -r .access_token)
  export STELLA_SERVER=$URL STELLA_TOKEN=$TOKEN
  sql() { if [ "$backend" = sqlite ]; then sqlite3 -cmd "PRAGMA foreign_keys=ON" "$DATA/stella.db" "$1"; else pg_psql stella "$1"; fi; }

  # 1. signed documents: the scheduler's first run after configure
  configure signed
  signed_s=$(run_seconds)
  stored=$(sql "$count_sql")
  [ "$stored" = $((N_DOCS * STATEMENTS)) ] || {
    echo "$backend: stored $stored statements, want $((N_DOCS * STATEMENTS)): $(cat "$WORK/last-run.json")" >&2; exit 1; }
  echo "$backend: signed run: $(jq -c .counts "$WORK/last-run.json") in ${signed_s}s"

  # 2. the same rows straight into the same database: dump, delete, replay
  if [ "$backend" = sqlite ]; then
    # shellcheck disable=SC2086
    { echo "PRAGMA foreign_keys=ON; BEGIN;"; sqlite3 "$DATA/stella.db" ".dump $TABLES" | grep '^INSERT'; echo "COMMIT;"; } >"$WORK/rows.sql"
  else
    # shellcheck disable=SC2046
    pg_as "$PG_BIN/pg_dump" -h "$PG_DIR" -p "$PG_PORT" -U stella_super --data-only --inserts \
      $(printf -- '-t %s ' $TABLES) stella >"$WORK/rows.sql"
  fi
  sql "DELETE FROM vex_documents"
  [ "$(sql "$count_sql")" = 0 ] || { echo "$backend: the delete did not cascade" >&2; exit 1; }
  t0=$(date +%s.%N)
  if [ "$backend" = sqlite ]; then sqlite3 "$DATA/stella.db" <"$WORK/rows.sql"; else pg_psql_file stella -1 <"$WORK/rows.sql"; fi
  raw_s=$(echo "$(date +%s.%N) - $t0" | bc -l)
  [ "$(sql "$count_sql")" = "$stored" ] || { echo "$backend: the replay did not restore every row" >&2; exit 1; }
  echo "$backend: raw insert of the same rows ($(grep -c '^INSERT' "$WORK/rows.sql") INSERTs, one transaction): ${raw_s}s"

  # 3. where the run's time went (the runner's "provider run stages" line)
  stages=$(grep 'provider run stages' "$DATA/serve.log" | tail -1)
  discover_ms=$(sed -n 's/.*discover_ms=\([0-9]*\).*/\1/p' <<<"$stages")
  store_ms=$(sed -n 's/.*store_ms=\([0-9]*\).*/\1/p' <<<"$stages")
  [ -n "$discover_ms" ] && [ -n "$store_ms" ] || { echo "$backend: no stage timing in the log" >&2; exit 1; }
  echo "$backend: stages: discover (registry reads + verification + validation) ${discover_ms} ms, store ${store_ms} ms"

  n=$((N_DOCS * STATEMENTS))
  ratio=$(echo "scale=3; ($n / $signed_s) / ($n / $raw_s)" | bc -l)
  share=$(echo "scale=3; $discover_ms / 1000 / $signed_s" | bc -l)
  store_share=$(echo "scale=3; $store_ms / 1000 / $signed_s" | bc -l)
  echo "RESULT backend=$backend statements=$n ingest_per_s=$(echo "$n / $signed_s" | bc) raw_per_s=$(echo "$n / $raw_s" | bc) ratio=$ratio discover_share=$share store_share=$store_share (target: ratio >= 0.3)"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  if [ "$backend" = postgres ]; then pg_stop; fi
done
