#!/usr/bin/env bash
# Benchmark of the OCI OpenVEX provider runner (issue 13): polling N
# unchanged subscribed images on a real distribution 2.8 registry.
# Figures: registry requests per image (from the registry's access log) and
# the wall time of one on-demand run over one `curl` HEAD per image to the
# same registry. Not run in CI. See bench/README.md, section "Issue 13".
# Issue 13's other figures: bench/vex_ingest.sh (ingest of 100,000 signed
# statements vs raw inserts) and bench/vex_consensus.sh (consensus p99 with
# 1,000,000 statements stored), both on SQLite and Postgres.
#
#   bench/vex.sh                              # builds the stella binary first (dev profile)
#   STELLA_BIN=/path/to/stella bench/vex.sh   # use an existing binary
#   N_IMAGES=200 bench/vex.sh                 # quick run
#   SUBSCRIBE=digest bench/vex.sh             # subscribe repo@digest instead of repo:tag
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N_IMAGES=${N_IMAGES:-1000}
SUBSCRIBE=${SUBSCRIBE:-tag}
REPEAT=${REPEAT:-3}

need() { command -v "$1" >/dev/null || { echo "bench/vex.sh needs $1" >&2; exit 2; }; }
need docker-registry; need curl; need python3; need jq

if [ -z "${STELLA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -p stella-cli)
  STELLA_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/stella
fi

WORK=$(mktemp -d /tmp/stella-bench-vex.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the registry (distribution 2.8, access log on stdout) ---
PORT=$(free_port)
REG=127.0.0.1:$PORT
cat >"$WORK/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry
  delete:
    enabled: true
http:
  addr: $REG
  secret: stella-bench-not-a-secret
log:
  level: warn
  accesslog:
    disabled: false
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/access.log" 2>"$WORK/registry.err" &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done

# --- N images in one repository, each with one OpenVEX referrer found
# through the sha256-<hex> fallback tag (how distribution 2.8 keeps them) ---
python3 - "$REG" "$N_IMAGES" "$WORK/images.txt" "$SUBSCRIBE" <<'PY'
import hashlib, http.client, json, sys
reg, n, out, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conn = http.client.HTTPConnection(reg)
def req(method, path, body=b"", headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse(); data = r.read()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return r
def blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = req("POST", "/v2/bench/app/blobs/uploads/").getheader("Location")
    loc = loc.split(reg, 1)[-1]
    req("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={d}", data,
        {"Content-Type": "application/octet-stream"})
    return d, len(data)
def manifest(ref, obj, mt):
    data = json.dumps(obj, separators=(",", ":")).encode()
    req("PUT", f"/v2/bench/app/manifests/{ref}", data, {"Content-Type": mt})
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
IMG = "application/vnd.oci.image.manifest.v1+json"
IDX = "application/vnd.oci.image.index.v1+json"
empty_d, empty_n = blob(b"{}")
subs = []
for i in range(n):
    cfg_d, cfg_n = blob(json.dumps({"architecture": "amd64", "os": "linux", "bench": i}).encode())
    img_d, img_n = manifest(f"img-{i}", {"schemaVersion": 2, "mediaType": IMG,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d, "size": cfg_n},
        "layers": []}, IMG)
    doc = json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": f"https://bench/{i}",
        "author": "bench", "timestamp": "2024-01-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": f"CVE-2024-{i}"}, "status": "fixed"}]}).encode()
    doc_d, doc_n = blob(doc)
    ref = {"schemaVersion": 2, "mediaType": IMG, "artifactType": "application/openvex+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_d, "size": empty_n},
        "layers": [{"mediaType": "application/openvex+json", "digest": doc_d, "size": doc_n}],
        "subject": {"mediaType": IMG, "digest": img_d, "size": img_n}}
    data = json.dumps(ref, separators=(",", ":")).encode()
    ref_d = "sha256:" + hashlib.sha256(data).hexdigest()
    manifest(ref_d, ref, IMG)
    manifest(img_d.replace(":", "-"), {"schemaVersion": 2, "mediaType": IDX, "manifests": [
        {"mediaType": IMG, "digest": ref_d, "size": len(data), "artifactType": "application/openvex+json"}]}, IDX)
    subs.append(f"{reg}/bench/app:img-{i}" if mode == "tag" else f"{reg}/bench/app@{img_d}")
open(out, "w").write("\n".join(subs) + "\n")
PY

# --- stella serve with the provider subscribed to every image ---
DATA=$WORK/serve
"$STELLA_BIN" serve init --data-dir "$DATA" --output json >/dev/null
STELLA_RATE_LIMIT_REQUESTS_PER_SECOND=100000 \
  "$STELLA_BIN" serve --listen 127.0.0.1:0 --data-dir "$DATA" >"$WORK/serve.out" 2>"$WORK/serve.log" &
PIDS+=($!)
for _ in $(seq 1 500); do grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break; sleep 0.02; done
URL=$(sed -n 's/^stella serve: listening on //p' "$WORK/serve.out")
SECRET=$("$STELLA_BIN" admin clients add bench --tenant t1 --scopes vex.read,vex.admin \
  --data-dir "$DATA" --output json | jq -r .clientSecret)
export STELLA_SERVER=$URL
export STELLA_TOKEN=$(curl -sf -d grant_type=client_credentials -d client_id=bench \
  --data-urlencode client_secret="$SECRET" "$URL/connect/token" | jq -r .access_token)
"$STELLA_BIN" key generate --algorithm ecdsa-p256 --output-key "$WORK/k.key" --output-pub "$WORK/k.pub" >/dev/null
IMAGES=()
while read -r l; do IMAGES+=(--image "$l"); done <"$WORK/images.txt"
"$STELLA_BIN" vex providers configure excititor:oci-openvex "${IMAGES[@]}" \
  --set cosignMode=keypair --set allowHttpRegistries=true --set pollInterval=1h \
  --upload-artifact "cosignKeys=@$WORK/k.pub" >/dev/null

run() { # one on-demand run (waits while a scheduled run holds the lease)
  local out
  for _ in $(seq 1 600); do
    out=$("$STELLA_BIN" vex providers run excititor:oci-openvex --output json || true)
    [ "$(jq -r .result <<<"$out")" != busy ] && { echo "$out"; return; }
    sleep 0.5
  done
  echo "the provider stayed busy" >&2; exit 2
}
now() { date +%s.%N; }
registry_requests() { grep -cE '"(GET|HEAD) /v2/bench/' "$WORK/access.log" || true; }

# The scheduler's first run searches every image (full discovery); wait
# for it through the status route (it can outlast the CLI's deadline).
t0=$(now)
for _ in $(seq 1 3600); do
  first=$(curl -sf -H "Authorization: Bearer $STELLA_TOKEN" \
    "$URL/excititor/providers/excititor:oci-openvex/status" |
    jq -c '.runs[] | select(.image == "" and .finishedAt != null) | {result, counts}' || true)
  [ -n "$first" ] && break
  sleep 1
done
[ -n "$first" ] || { echo "the first run did not finish"; exit 2; }
echo "first run (scheduled, full discovery, ~$(echo "$(now) - $t0" | bc -l | cut -c1-5)s after configure): $first"

best_run=; best_curl=; per_image=
for r in $(seq 1 "$REPEAT"); do
  before=$(registry_requests)
  t0=$(now); again=$(run); t1=$(now)
  after=$(registry_requests)
  [ "$(jq -r .counts.found <<<"$again")" = 0 ] || { echo "run $r was not idle: $again"; exit 1; }
  run_s=$(echo "$t1 - $t0" | bc -l)
  per_image=$(echo "scale=4; ($after - $before) / $N_IMAGES" | bc -l)
  t0=$(now)
  while read -r l; do
    path=${l#"$REG/"}; repo=${path%%[:@]*}; ref=${path#"$repo"}; ref=${ref:1}
    curl -s -o /dev/null -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      "http://$REG/v2/$repo/manifests/$ref"
  done <"$WORK/images.txt"
  t1=$(now)
  curl_s=$(echo "$t1 - $t0" | bc -l)
  echo "idle run $r: $((after - before)) registry requests for $N_IMAGES images ($per_image per image), run ${run_s}s, one curl per image ${curl_s}s"
  if [ -z "$best_run" ] || (( $(echo "$run_s < $best_run" | bc -l) )); then best_run=$run_s; fi
  if [ -z "$best_curl" ] || (( $(echo "$curl_s < $best_curl" | bc -l) )); then best_curl=$curl_s; fi
done
ratio=$(echo "scale=3; $best_run / $best_curl" | bc -l)
echo "RESULT subscribe=$SUBSCRIBE images=$N_IMAGES requests_per_image=$per_image run_s=$best_run curl_s=$best_curl ratio=$ratio (targets: <= 2 requests per image, ratio <= 1.5)"
