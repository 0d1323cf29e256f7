#!/usr/bin/env bash
# Issue 6 benchmark: `stella verify image --use-referrers` on an image with
# N (200) referrers (mixed SBOM / OpenVEX / SLSA provenance attestations) in a
# local Debian docker-registry (no Referrers API: tag-schema fallback index).
#
# Ratio (one run, release build, medians of RUNS):
#     T(verify image) / ( T(evidence list-referrers) + T(pure signature verification) )
# where the signature part is stella-attest's `verify_envelopes` example run
# (1 thread, in memory) over exactly the attestation bundles that were pushed
# (written with `stella attest --output`). Target <= 1.5.
# HTTP requests: STELLA_REQUEST_STATS=1 makes stella print "stella: <N> HTTP
# requests"; the expected minimum is 1 (resolve the tag) + 1 (the fallback
# index) + one per referrer manifest + one per attestation blob; the registry
# access log is used to check no request is repeated.
# Issue 11 ratios (verify / (raw python fetch of exactly the needed objects
# + signature checks)) come from alternating runs: verify depth 2, raw with
# listings, verify depth 1, raw flat, RUNS times, medians of each column.
#
# Usage: bench/verify-image.sh
# Knobs: N=200 RUNS=5 STELLA_BIN=<path> (skip the build)
#        WORK=<dir> (keep and reuse the seeded registry storage between runs)
# Exit: 0 measured (targets reported, not enforced), 2 setup error.
set -euo pipefail

N=${N:-200}
RUNS=${RUNS:-5}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "bench: error: $*" >&2; exit 2; }
for tool in /usr/bin/docker-registry curl python3 skopeo; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done

KEEP=1
if [[ -z "${WORK:-}" ]]; then WORK=$(mktemp -d -t stella-vi-XXXXXX); KEEP=0; fi
mkdir -p "$WORK"
REGISTRY_PID=""
cleanup() {
    if [[ -n "$REGISTRY_PID" ]]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; fi
    if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n "${STELLA_BIN:-}" ]]; then
    STELLA=$STELLA_BIN
else
    echo "bench: cargo build --release -p stella-cli ..." >&2
    (cd "$REPO_ROOT" && cargo build --release -q -p stella-cli) >&2 || die "build failed"
    STELLA=$REPO_ROOT/target/release/stella
fi
if [[ -z "${VERIFY_ENVELOPES:-}" ]]; then
    (cd "$REPO_ROOT" && cargo build --release -q -p stella-attest --example verify_envelopes) >&2 ||
        die "cannot build the verify_envelopes example"
    VERIFY_ENVELOPES=$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/verify_envelopes
fi
[[ -x "$STELLA" ]] || die "no stella binary at $STELLA"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
start_registry() {
    local port i
    mkdir -p "$WORK/storage"
    port=$(free_port)
    cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: "$WORK/storage"
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: stella-bench-not-a-secret
YML
    : >"$WORK/access.log"
    /usr/bin/docker-registry serve "$WORK/registry.yml" >>"$WORK/access.log" 2>"$WORK/registry.err" &
    REGISTRY_PID=$!
    for i in $(seq 1 200); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then REGISTRY=127.0.0.1:$port; return 0; fi
        sleep 0.05
    done
    cat "$WORK/registry.err" >&2; die "docker-registry did not start"
}
start_registry
IMG=$REGISTRY/bench/app:v1
S() { SOURCE_DATE_EPOCH=1700000000 "$STELLA" --plain-http --no-progress "$@"; }

# --- seeding (skipped when $WORK/seeded exists) -----------------------------------
if [[ ! -f "$WORK/seeded" ]]; then
    echo "bench: seeding $N referrers into $IMG (this takes a few minutes)" >&2
    python3 - "$WORK/img" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]; os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b, mt):
    h = hashlib.sha256(b).hexdigest(); open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"mediaType": mt, "digest": "sha256:" + h, "size": len(b)}
l = put(b"bench layer\n" * 100, "application/vnd.oci.image.layer.v1.tar")
c = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l["digest"]]}}).encode(), "application/vnd.oci.image.config.v1+json")
m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": [l]}).encode(), "application/vnd.oci.image.manifest.v1+json")
m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
    skopeo copy -q --insecure-policy --dest-tls-verify=false --preserve-digests \
        "oci:$WORK/img:v1" "docker://$IMG" >&2 || die "skopeo copy failed"
    S key generate --output-key "$WORK/signer.key" --output-pub "$WORK/signer.pub" >/dev/null
    mkdir -p "$WORK/sigset" "$WORK/files"
    for i in $(seq 1 "$N"); do
        case $((i % 3)) in
        0)
            printf '{"spdxVersion":"SPDX-2.3","name":"sbom-%d","packages":[]}' "$i" >"$WORK/files/sbom-$i.spdx.json"
            S evidence push-referrer --image "$IMG" --artifact-type application/spdx+json \
                --file "$WORK/files/sbom-$i.spdx.json" >/dev/null ;;
        1)
            printf '{"@context":"https://openvex.dev/ns/v0.2.0","@id":"vex-%d","statements":[]}' "$i" >"$WORK/files/vex-$i.json"
            S attest --image "$IMG" --type openvex --predicate "$WORK/files/vex-$i.json" \
                --key "$WORK/signer.key" --output "$WORK/sigset/att-$(printf %05d "$i").json" >/dev/null ;;
        2)
            printf '{"buildDefinition":{"buildType":"https://example.com/bench","externalParameters":{"i":%d}},"runDetails":{}}' "$i" >"$WORK/files/prov-$i.json"
            S attest --image "$IMG" --type slsaprovenance --predicate "$WORK/files/prov-$i.json" \
                --key "$WORK/signer.key" --output "$WORK/sigset/att-$(printf %05d "$i").json" >/dev/null ;;
        esac
    done
    cp "$WORK/signer.pub" "$WORK/sigset/key.pub"
    touch "$WORK/seeded"
fi
DIGEST=$(skopeo inspect --tls-verify=false --raw "docker://$IMG" | sha256sum | cut -d' ' -f1)
echo "sha256:$DIGEST" >"$WORK/sigset/subject.txt"
IMG_DIGEST=$REGISTRY/bench/app@sha256:$DIGEST

cat >"$WORK/policy.yaml" <<YML
version: 1
signers:
  ci:
    keys: [sigset/key.pub]
requirements:
  - type: application/spdx+json
    unsigned: ignore
  - type: slsaprovenance
    signers: [ci]
  - type: openvex
    signers: [ci]
YML

# --- measurements ---------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wall() { # wall seconds of one command (stdout/stderr to $WORK/last.*)
    local t0 t1
    t0=$(date +%s.%N); "$@" >"$WORK/last.out" 2>"$WORK/last.err" || true; t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
export SOURCE_DATE_EPOCH=1700000000
# Warm-up (and a correctness check).
S verify image "$IMG_DIGEST" --use-referrers --policy "$WORK/policy.yaml" --output json >"$WORK/report.json" ||
    { cat "$WORK/report.json"; die "verify image did not pass on the seeded image"; }
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("bench: report", r["verdict"], r["summary"])' "$WORK/report.json" >&2

T_LIST=$(for r in $(seq "$RUNS"); do wall "$STELLA" --plain-http --no-progress evidence list-referrers "$IMG_DIGEST"; done | median)
LISTED=$(grep -c sha256 "$WORK/last.out" || true)
SIG_OUT=$("$VERIFY_ENVELOPES" verify "$WORK/sigset" 1)
T_SIG=$(echo "$SIG_OUT" | awk -F= '/^seconds_1_thread=/ {print $2}')
N_SIG=$(echo "$SIG_OUT" | awk -F= '/^envelopes=/ {print $2}')

# Baseline 2: the network work any verifier must do, without stella: python
# (16 threads, keep-alive) GETs the fallback index, every referrer manifest
# and every attestation blob once.
cat >"$WORK/rawfetch.py" <<'PY'
import http.client, json, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
reg, repo, subject = sys.argv[1], sys.argv[2], sys.argv[3]
nested = len(sys.argv) > 4 and sys.argv[4] == "nested"  # also list each plain artifact's referrers
local = threading.local()
def get(path, accept=None, missing_ok=False):
    c = getattr(local, "c", None)
    if c is None:
        c = local.c = http.client.HTTPConnection(reg)
    c.request("GET", path, headers={"Accept": accept} if accept else {})
    r = c.getresponse(); b = r.read()
    if r.status == 404 and missing_ok: return b
    if r.status != 200: raise SystemExit(f"GET {path}: {r.status}")
    return b
OCI_M = "application/vnd.oci.image.manifest.v1+json"
t0 = time.monotonic()
idx = json.loads(get(f"/v2/{repo}/manifests/{subject.replace(':', '-')}", "application/vnd.oci.image.index.v1+json"))
def one(d):
    m = json.loads(get(f"/v2/{repo}/manifests/{d['digest']}", OCI_M))
    n = 1
    signed = False
    for l in m.get("layers", []):
        if "sigstore.bundle" in l["mediaType"] or "dsse" in l["mediaType"]:
            get(f"/v2/{repo}/blobs/{l['digest']}"); n += 1; signed = True
    if nested and not signed:  # who vouches for this SBOM: its fallback index
        get(f"/v2/{repo}/manifests/{d['digest'].replace(':', '-')}", "application/vnd.oci.image.index.v1+json",
            missing_ok=True); n += 1
    return n
with ThreadPoolExecutor(16) as ex:
    n = 1 + sum(ex.map(one, idx["manifests"]))
print(f"{time.monotonic() - t0:.4f} {n}")
PY
RAW_N=$(python3 "$WORK/rawfetch.py" "$REGISTRY" bench/app "sha256:$DIGEST" | cut -d' ' -f2)
RAW2_N=$(python3 "$WORK/rawfetch.py" "$REGISTRY" bench/app "sha256:$DIGEST" nested | cut -d' ' -f2)
# Each side of a ratio is measured alternately with the other, run after
# run (medians of RUNS), so a change in machine load hits both alike:
# verify depth 2, raw fetch with the listings (the default depth also
# needs one fallback-index GET per plain artifact, who vouches for an
# SBOM, all in one pool), verify depth 1, the flat raw fetch.
: >"$WORK/alt.txt"
for r in $(seq "$RUNS"); do
    v2=$(wall "$STELLA" --plain-http --no-progress verify image "$IMG_DIGEST" --use-referrers --policy "$WORK/policy.yaml" --output json)
    r2=$(python3 "$WORK/rawfetch.py" "$REGISTRY" bench/app "sha256:$DIGEST" nested | cut -d' ' -f1)
    v1=$(wall "$STELLA" --plain-http --no-progress verify image "$IMG_DIGEST" --use-referrers --policy "$WORK/policy.yaml" --output json --depth 1)
    r1=$(python3 "$WORK/rawfetch.py" "$REGISTRY" bench/app "sha256:$DIGEST" | cut -d' ' -f1)
    echo "$v2 $r2 $v1 $r1" >>"$WORK/alt.txt"
done
T_VERIFY=$(cut -d' ' -f1 "$WORK/alt.txt" | median)
RAW2=$(cut -d' ' -f2 "$WORK/alt.txt" | median)
T_VERIFY1=$(cut -d' ' -f3 "$WORK/alt.txt" | median)
RAW=$(cut -d' ' -f4 "$WORK/alt.txt" | median)
echo "bench: alternating runs (verify depth 2, raw with listings, verify depth 1, raw flat):" >&2
cat "$WORK/alt.txt" >&2
STELLA_REQUEST_STATS=1 "$STELLA" --plain-http --no-progress verify image "$IMG_DIGEST" --use-referrers \
    --policy "$WORK/policy.yaml" --output json --depth 1 >/dev/null 2>"$WORK/stats1.err" || true
REQS1=$(sed -n 's/^stella: \([0-9]*\) HTTP requests$/\1/p' "$WORK/stats1.err")

# Requests: stella's own count, and the registry access log of one run.
: >"$WORK/access.log"
STELLA_REQUEST_STATS=1 "$STELLA" --plain-http --no-progress verify image "$IMG_DIGEST" --use-referrers \
    --policy "$WORK/policy.yaml" --output json >/dev/null 2>"$WORK/stats.err" || true
sleep 0.3
REQS=$(sed -n 's/^stella: \([0-9]*\) HTTP requests$/\1/p' "$WORK/stats.err")
LOG_REQS=$(grep -cE '"(GET|HEAD|PUT|POST) /v2/' "$WORK/access.log" || true)
REPEATED=$(grep -oE '"(GET|HEAD) /v2/[^ ]+' "$WORK/access.log" | sort | uniq -d | wc -l)
: >"$WORK/access.log"
STELLA_REQUEST_STATS=1 "$STELLA" --plain-http --no-progress evidence list-referrers "$IMG_DIGEST" \
    >/dev/null 2>"$WORK/stats-list.err" || true
LIST_REQS=$(sed -n 's/^stella: \([0-9]*\) HTTP requests$/\1/p' "$WORK/stats-list.err")
EXPECTED=$((1 + 1 + N + N_SIG))   # one fallback-index fetch is counted as the listing; see README

echo "== raw"
echo "referrers listed: $LISTED   attestations: $N_SIG"
echo "$SIG_OUT"
awk -v l="$T_LIST" -v s="$T_SIG" -v v="$T_VERIFY" -v q="${REQS:-?}" -v lq="$LOG_REQS" -v rep="$REPEATED" \
    -v e="$EXPECTED" -v lr="${LIST_REQS:-?}" -v n="$N" -v raw="$RAW" -v rn="$RAW_N" -v v1="$T_VERIFY1" -v q1="${REQS1:-?}" \
    -v raw2="$RAW2" -v rn2="$RAW2_N" 'BEGIN {
  printf "\n== summary (N=%d referrers, medians)\n", n
  printf "list-referrers wall:                    %.3f s  (%s HTTP requests)\n", l, lr
  printf "pure signature verification (1 thread): %.3f s\n", s
  printf "verify image wall:                      %.3f s\n", v
  printf "ratio verify / (list + sig) (<= 1.5):   %.2f\n", v / (l + s)
  printf "verify image HTTP requests (stella):    %s   (registry log: %s, repeated GET/HEAD: %s)\n", q, lq, rep
  printf "needed (tag + index + manifests + attestation blobs): %d\n", e
  printf "\n== against the raw network work (python, 16 threads, %d GETs)\n", rn
  printf "raw fetch of index + manifests + attestation blobs: %.3f s\n", raw
  printf "verify image --depth 1 wall:                      %.3f s  (%s HTTP requests)\n", v1, q1
  printf "ratio verify --depth 1 / (raw fetch + sig):        %.2f\n", v1 / (raw + s)
  printf "ratio verify (depth 2) / (raw fetch + sig):        %.2f\n", v / (raw + s)
  printf "\n== issue 11: exactly the needed objects (targets: requests <= needed + 2, wall <= 1.2x)\n"
  printf "depth 1: needed %d (tag + index + manifests + blobs), stella %s: +%d\n", e, q1, q1 - e
  printf "depth 2 (default): needed %d (+ one fallback-index GET per plain artifact), stella %s: +%d\n", e + rn2 - rn, q, q - (e + rn2 - rn)
  printf "raw fetch with those listings: %.3f s (%d GETs); ratio verify (depth 2) / (raw fetch + sig): %.2f\n", raw2, rn2, v / (raw2 + s)
  printf "ratio verify --depth 1 / (raw fetch + sig): %.2f\n", v1 / (raw + s)
}'
