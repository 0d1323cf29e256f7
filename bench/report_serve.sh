#!/usr/bin/env bash
# Issue 16 benchmark, service half (called by bench/report.sh): p99 latency
# of POST /api/v1/reports at a fixed rate (default 20 requests/s) for one
# image already in a local registry (distribution 2.8, `docker-registry`)
# with 5,000 findings across 3 scanner reports (Trivy, Grype, CycloneDX, the
# shapes of crates/stella-report/examples/bench_report.rs) attached as
# referrers, judged by an active policy revision with rules, signed with the
# tenant's report key. The first request parses the three scanner reports
# and fills the server's report cache (parsed reports by tenant and
# referrer digest); the measured requests list and verify the referrers,
# take the parsed reports from the cache, judge, serialise and sign. The
# cache's hits and misses (/metrics) are printed after the run.
# CACHE=0 runs the server without the cache (reports.cacheMaxEntries=0).
#
#   bench/report_serve.sh
#
# Env: STELLA_BIN (default: a release build), RATE (20), DURATION (15s),
# STELLA_BENCH_TOOLS (where oha is installed when missing, as bench/serve.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${STELLA_BENCH_TOOLS:-/tmp/stella-bench-tools}
RATE=${RATE:-20}
DURATION=${DURATION:-15s}

if [ -z "${STELLA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build -q --release -p stella-cli)
  STELLA_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/stella
fi
OHA=$(command -v oha || true)
if [ -z "$OHA" ]; then
  [ -x "$TOOLS/bin/oha" ] || cargo install oha --locked --root "$TOOLS"
  OHA=$TOOLS/bin/oha
fi

WORK=$(mktemp -d /tmp/stella-bench-report.XXXXXX)
PIDS=()
cleanup() {
  # Under `set -e` a `wait` on a process killed by SIGTERM (status 143)
  # would end this trap after the first PID, leaving the server running.
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- registry, image, scanner reports ---------------------------------
REG_PORT=$(free_port)
cat >"$WORK/registry.yml" <<EOF
version: 0.1
storage: { filesystem: { rootdirectory: $WORK/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$REG_PORT }
log: { level: error }
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && break; sleep 0.05; done
IMAGE=127.0.0.1:$REG_PORT/bench/app:v1

# A one-layer OCI image, pushed with skopeo.
python3 - "$WORK/layout" <<'EOF'
import hashlib, io, json, os, sys, tarfile
d = sys.argv[1]; os.makedirs(f"{d}/blobs/sha256")
def blob(b):
    h = hashlib.sha256(b).hexdigest(); open(f"{d}/blobs/sha256/{h}", "wb").write(b); return h, len(b)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"stella bench\n"; info = tarfile.TarInfo("bench.txt"); info.size = len(data); info.mtime = 0
    t.addfile(info, io.BytesIO(data))
layer = buf.getvalue(); lh, ll = blob(layer)
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [f"sha256:{lh}"]}}).encode()
ch, cl = blob(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{ch}", "size": cl},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{lh}", "size": ll}]}).encode()
mh, ml = blob(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": f"sha256:{mh}", "size": ml, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
    open(f"{d}/index.json", "w"))
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
EOF
skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:v1" "docker://$IMAGE"
DIGEST=$(skopeo inspect --tls-verify=false --raw "docker://$IMAGE" | sha256sum | cut -d' ' -f1)

# 5,000 findings in three reports (as the in-process benchmark).
python3 - "$WORK" "sha256:$DIGEST" <<'EOF'
import json, sys
w, image = sys.argv[1], sys.argv[2]
N = 5000; per = N // 3; rest = N - 2 * per
sev = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
purl = lambda i: f"pkg:npm/package-{i % 1500}@1.{i % 7}.0"
cve = lambda i: f"CVE-2024-{i:05d}"
trivy = [{"VulnerabilityID": cve(i), "PkgIdentifier": {"PURL": purl(i)}, "Severity": sev[i % 5],
          "FixedVersion": "9.9.9", "PublishedDate": "2024-01-01T00:00:00Z"} for i in range(per)]
grype = [{"vulnerability": {"id": cve(i), "severity": "High", "fix": {"versions": ["9.9.9"], "state": "fixed"}},
          "relatedVulnerabilities": [{"id": f"GHSA-{i:04d}-xxxx-yyyy"}], "artifact": {"purl": purl(i)}}
         for i in range(per, 2 * per)]
comps = [{"type": "library", "bom-ref": f"c{j}", "name": "x", "purl": purl(2 * per + j)} for j in range(rest)]
vulns = [{"id": cve(2 * per + j), "ratings": [{"severity": "medium"}], "affects": [{"ref": f"c{j}"}]}
         for j in range(rest)]
json.dump({"SchemaVersion": 2, "Metadata": {"RepoDigests": [f"r@{image}"]},
           "Results": [{"Target": "t", "Vulnerabilities": trivy}]}, open(f"{w}/trivy.json", "w"))
json.dump({"matches": grype, "source": {"target": {"manifestDigest": image}}}, open(f"{w}/grype.json", "w"))
json.dump({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": comps, "vulnerabilities": vulns},
          open(f"{w}/bom.json", "w"))
EOF
mkdir -p "$WORK/docker-config"
push() {
  DOCKER_CONFIG=$WORK/docker-config "$STELLA_BIN" --plain-http --no-progress evidence push-referrer \
    --image "$IMAGE" --artifact-type "$1" --file "$2" >/dev/null
}
push application/vnd.aquasec.trivy.report+json "$WORK/trivy.json"
push application/vnd.anchore.grype.report+json "$WORK/grype.json"
push application/vnd.cyclonedx+json "$WORK/bom.json"

# ---- server, policy revision -------------------------------------------
export STELLA_RATE_LIMIT_REQUESTS_PER_SECOND=100000000
[ "${CACHE:-1}" = 0 ] && export STELLA_REPORTS_CACHE_MAX_ENTRIES=0
D=$WORK/serve
SECRET=$("$STELLA_BIN" serve init --data-dir "$D" --output json | jq -r .clientSecret)
"$STELLA_BIN" serve --listen 127.0.0.1:0 --data-dir "$D" >"$D/out" 2>"$D/serve.log" &
PIDS+=($!)
for _ in $(seq 1 500); do grep -q "listening on" "$D/out" 2>/dev/null && break; sleep 0.02; done
URL=$(sed -n 's/^stella serve: listening on //p' "$D/out")
TOK=$(curl -sf -d grant_type=client_credentials -d client_id=admin --data-urlencode client_secret="$SECRET" \
  "$URL/connect/token" | jq -r .access_token)
AUTH="Authorization: Bearer $TOK"
REV=$(printf 'version: 1\nrules:\n  - {name: Ignore low, severity: [Low, Unknown], action: ignore}\n  - {name: Block critical, severity: [Critical], action: block}\n  - {name: Warn rest, severity: [High, Medium], action: warn}\n' |
  curl -sf -H "$AUTH" -H 'Content-Type: application/yaml' --data-binary @- "$URL/policy/import" | jq -r .revisionId)
curl -sf -H "$AUTH" -H 'Content-Type: application/json' -d "{\"revisionId\":\"$REV\"}" "$URL/policy/activate" >/dev/null
BODY="{\"image\":\"$IMAGE\",\"plainHttp\":true,\"generatedAt\":\"2026-09-21T14:13:20Z\"}"
TOTAL=$(curl -sf -H "$AUTH" -H 'Content-Type: application/json' -d "$BODY" "$URL/api/v1/reports" | jq .report.summary.total)
[ "$TOTAL" = 5000 ] || { echo "expected 5000 findings, got $TOTAL"; cat "$D/serve.log"; exit 2; }

# ---- the measurement ---------------------------------------------------
oha_json() {
  if "$OHA" --help | grep -q -- '--output-format'; then "$OHA" --no-tui --output-format json "$@"
  else "$OHA" --no-tui --json "$@"; fi
}
OUT=$(oha_json -q "$RATE" -z "$DURATION" -c 8 -m POST -H "$AUTH" -H 'Content-Type: application/json' \
  -d "$BODY" "$URL/api/v1/reports")
echo "$OUT" | python3 -c '
import json, sys
r = json.load(sys.stdin)
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
print("POST /api/v1/reports, 5,000 findings in 3 scanner reports, at %s req/s for %s:" % (sys.argv[1], sys.argv[2]))
print("  requests/s %.1f  p50 %.0f ms  p99 %.0f ms  status %s"
      % (s["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000, codes))
' "$RATE" "$DURATION"
curl -sf "$URL/metrics" | grep '^stella_report_cache_lookups_total' | sed 's/^/  /'
