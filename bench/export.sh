#!/usr/bin/env bash
# Issue-14 benchmark: the Export Center against skopeo and sha256sum.
#
# Workload: a Debian docker-registry (distribution 2.8) on a free 127.0.0.1
# port; N_IMAGES (20) images in N_IMAGES repositories (rel/app<i>:v1), each
# with LAYERS (4) random layers of LAYER_MIB (13) MiB (about 1 GiB in all),
# pushed with skopeo, and one SBOM referrer each pushed with stella (the
# registry has no Referrers API: tag-schema fallback indexes).
#
# Measures (see bench/README.md, section "Issue 14"):
#   1. `stella export run --profile mirror:full` (directory output) wall time
#      over `skopeo copy --all` of the same images into one OCI layout
#      (target <= 1.2x), and the export's peak RSS (target <= 128 MiB);
#   2. `mirror:delta` after changing 1 of the 20 images (a new tag whose
#      image shares 3 layers and has 1 new layer): delta bytes over the bytes
#      actually new (target <= 1.05, plus at most 1 MiB of metadata);
#   3. `stella export verify` of the full export over `sha256sum -c
#      checksums.txt` of the same files (target <= 1.5x).
#
# Usage:  bench/export.sh
# Knobs:  N_IMAGES=20 LAYERS=4 LAYER_MIB=13 STELLA_BIN=<path> (skip cargo build)
# Exit status: 0 when everything ran (targets are reported, not enforced),
#              1 when a measurement failed, 2 on setup errors.
set -euo pipefail

N_IMAGES=${N_IMAGES:-20}
LAYERS=${LAYERS:-4}
LAYER_MIB=${LAYER_MIB:-13}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "bench: error: $*" >&2; exit 2; }
for tool in docker-registry skopeo sha256sum python3 /usr/bin/time awk curl; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done

WORK=$(mktemp -d -t stella-export-bench-XXXXXX)
REG_PID=
cleanup() { [[ -n "$REG_PID" ]] && kill "$REG_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

if [[ -n "${STELLA_BIN:-}" ]]; then
    STELLA=$STELLA_BIN
else
    (cd "$REPO_ROOT" && cargo build --release -p stella-cli >&2) || die "cargo build failed"
    STELLA=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/stella
fi
[[ -x "$STELLA" ]] || die "no stella binary at $STELLA"
export SOURCE_DATE_EPOCH=1700000000

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# Runs a command under /usr/bin/time -v; sets SECS and RSS_KB.
timed() {
    local t0 t1
    t0=$(now)
    /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || {
        cat "$WORK/err.txt" >&2; echo "bench: failed: $*" >&2; exit 1; }
    t1=$(now)
    SECS=$(elapsed "$t0" "$t1")
    RSS_KB=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$WORK/time.txt")
}

cd "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat >reg.yml <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
  delete:
    enabled: true
http:
  addr: $HOST
EOF
docker-registry serve reg.yml >registry.log 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do curl -fs "http://$HOST/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://$HOST/v2/" >/dev/null || die "the registry did not start"

echo "bench: building $N_IMAGES images of $LAYERS x $LAYER_MIB MiB in $WORK" >&2
python3 - "$N_IMAGES" "$LAYERS" "$LAYER_MIB" <<'EOF'
import hashlib, json, os, sys
n, layers, mib = (int(x) for x in sys.argv[1:4])
def image(d, seed, layer_blobs):
    os.makedirs(d + "/blobs/sha256", exist_ok=True)
    def put(b, mt):
        h = hashlib.sha256(b).hexdigest()
        open(f"{d}/blobs/sha256/{h}", "wb").write(b)
        return {"mediaType": mt, "digest": "sha256:" + h, "size": len(b)}
    ls = [put(b, "application/vnd.oci.image.layer.v1.tar") for b in layer_blobs]
    cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "seed": seed,
                          "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in ls]}}).encode(),
              "application/vnd.oci.image.config.v1+json")
    m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": cfg, "layers": ls}).encode(), "application/vnd.oci.image.manifest.v1+json")
    m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    json.dump({"schemaVersion": 2, "manifests": [m]}, open(d + "/index.json", "w"))
    open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
for i in range(n):
    image(f"img{i}", str(i), [os.urandom(mib << 20) for _ in range(layers)])
# The change: image 0 again with its last layer replaced.
base = "img0/blobs/sha256/"
first = json.load(open("img0/index.json"))["manifests"][0]["digest"].split(":")[1]
m = json.load(open(base + first))
kept = [open(base + l["digest"].split(":")[1], "rb").read() for l in m["layers"][:-1]]
image("changed", "changed", kept + [os.urandom(mib << 20)])
EOF
for i in $(seq 0 $((N_IMAGES - 1))); do
    skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:img$i:v1" "docker://$HOST/rel/app$i:v1"
    printf '{"bomFormat":"CycloneDX","specVersion":"1.5","n":%d}' "$i" >sbom.json
    "$STELLA" --plain-http --no-progress evidence push-referrer --image "$HOST/rel/app$i:v1" \
        --artifact-type application/vnd.cyclonedx+json --file sbom.json >/dev/null
    rm -rf "img$i"
done
SELECT=()
for i in $(seq 0 $((N_IMAGES - 1))); do SELECT+=(--repository "$HOST/rel/app$i"); done

# 1. mirror:full vs skopeo copy --all into one OCI layout.
sync
timed "$STELLA" --plain-http --no-progress export run --profile mirror:full "${SELECT[@]}" --output full
FULL_S=$SECS; FULL_RSS=$RSS_KB
sync
t0=$(now)
for i in $(seq 0 $((N_IMAGES - 1))); do
    skopeo copy -q --all --insecure-policy --src-tls-verify=false "docker://$HOST/rel/app$i:v1" "oci:sk:rel/app$i:v1"
done
SKOPEO_S=$(elapsed "$t0" "$(now)")
FULL_BYTES=$(du -sb full | cut -f1)

# 2. Change 1 image of N, then mirror:delta.
skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:changed:v1" "docker://$HOST/rel/app0:v2"
# New content as the registry holds it (skopeo may rewrite the manifest):
# the manifest, the config and the one new layer.
curl -fs -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$HOST/v2/rel/app0/manifests/v2" >changed.json
NEW_BYTES=$(python3 -c 'import json, os; m = json.load(open("changed.json")); print(os.path.getsize("changed.json") + m["config"]["size"] + m["layers"][-1]["size"])')
timed "$STELLA" --plain-http --no-progress export run --profile mirror:delta --since full "${SELECT[@]}" --output delta
DELTA_S=$SECS
DELTA_BYTES=$(du -sb --apparent-size delta | cut -f1)
DELTA_BLOBS=$(python3 -c 'import json; m=json.load(open("delta/manifest.json")); print(sum(e["size"] for e in m["entries"] if e["path"].startswith("blobs/")))')

# 3. export verify vs sha256sum -c.
sync
timed "$STELLA" export verify full
VERIFY_S=$SECS; VERIFY_RSS=$RSS_KB
t0=$(now)
(cd full && sha256sum --quiet --strict -c checksums.txt)
SHA_S=$(elapsed "$t0" "$(now)")

cat <<EOF

Issue 14: Export Center ($N_IMAGES images x $LAYERS layers x $LAYER_MIB MiB, $FULL_BYTES bytes exported; stella: $STELLA)

| # | measurement | stella | baseline | ratio | target |
|---|-------------|--------|----------|-------|--------|
| 1 | mirror:full (dir) vs skopeo copy --all into an OCI layout | ${FULL_S}s | ${SKOPEO_S}s | $(ratio "$FULL_S" "$SKOPEO_S")x | <= 1.2x |
| 1b | mirror:full peak RSS | $((FULL_RSS / 1024)) MiB | - | - | <= 128 MiB |
| 2 | mirror:delta blob bytes / new bytes | $DELTA_BLOBS | $NEW_BYTES | $(ratio "$DELTA_BLOBS" "$NEW_BYTES") | <= 1.05 |
| 2b | mirror:delta total bytes (with metadata) / new bytes | $DELTA_BYTES | $NEW_BYTES | $(ratio "$DELTA_BYTES" "$NEW_BYTES") | <= 1.05 + 1 MiB; delta took ${DELTA_S}s |
| 3 | export verify vs sha256sum -c checksums.txt | ${VERIFY_S}s | ${SHA_S}s | $(ratio "$VERIFY_S" "$SHA_S")x | <= 1.5x |
| 3b | export verify peak RSS | $((VERIFY_RSS / 1024)) MiB | - | - | - |
EOF
