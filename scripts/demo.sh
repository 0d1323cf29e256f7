#!/usr/bin/env bash
# The main job on the embedded default, no registry needed: builds stella,
# makes a tiny image in a local OCI image layout, attaches an SBOM and a
# signed provenance attestation as OCI 1.1 referrers, lists them, verifies
# them, exports a deterministic StellaBundle and verifies that offline.
#
# Usage: scripts/demo.sh [WORKDIR]   (default: ./demo-out, recreated)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-demo-out}
rm -rf "$work" && mkdir -p "$work"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

cargo build -q --release -p stella-cli
stella=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/stella
layout=$work/layout

# --- a tiny image, written as a plain OCI layout with nothing but coreutils ---
mkdir -p "$layout/blobs/sha256" "$work/rootfs"
echo "hello from stella" > "$work/rootfs/hello.txt"
put_blob() { # file -> prints "digest size"
  local d; d=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$layout/blobs/sha256/$d"
  echo "sha256:$d $(stat -c %s "$1")"
}
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/rootfs" -cf "$work/layer.tar" hello.txt
diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
gzip -n -9 -c "$work/layer.tar" > "$work/layer.tar.gz"
read -r layer_digest layer_size < <(put_blob "$work/layer.tar.gz")
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff_id" > "$work/config.json"
read -r config_digest config_size < <(put_blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
  "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$work/manifest.json"
read -r manifest_digest manifest_size < <(put_blob "$work/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"demo"}}]}' \
  "$manifest_digest" "$manifest_size" > "$layout/index.json"
image="oci:$layout:demo"
echo "== image $image -> $manifest_digest"

# --- evidence ---
cat > "$work/sbom.cdx.json" <<'JSON'
{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[{"type":"file","name":"hello.txt"}]}
JSON
cat > "$work/provenance.json" <<'JSON'
{"buildDefinition":{"buildType":"https://example.com/demo-build/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.com/demo-builder"}}}
JSON

echo "== push an SBOM as a referrer"
"$stella" evidence push-referrer --image "$image" --artifact-type application/vnd.cyclonedx+json --file "$work/sbom.cdx.json"
echo "== sign a provenance attestation and attach it"
"$stella" key generate --output-key "$work/signing.key" --output-pub "$work/signing.pub"
"$stella" attest --image "$image" --predicate "$work/provenance.json" --type slsaprovenance --key "$work/signing.key"
echo "== list referrers"
"$stella" evidence list-referrers "$image" --format tree
echo "== verify attestations"
"$stella" verify attestation --image "$image" --key "$work/signing.pub"
echo "== export a StellaBundle and verify it offline"
"$stella" evidence export-bundle --image "$image" --include-dsse --output "$work/bundle.tar.gz"
"$stella" bundle verify --bundle "$work/bundle.tar.gz" --key "$work/signing.pub" \
  --require application/vnd.cyclonedx+json --require https://slsa.dev/provenance/v1
echo "== done: everything above verified"

# --- the service: stella serve on its embedded SQLite default ---
echo "== stella serve: init a data dir, start the API, get a token, stage an artifact"
(
  cd "$work"
  secret=$("$stella" serve init --output json | sed -n 's/.*"clientSecret":"\([^"]*\)".*/\1/p')
  "$stella" serve --listen 127.0.0.1:0 > serve.out 2> serve.log &
  pid=$!
  trap 'kill -TERM $pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do grep -q listening serve.out 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^stella serve: listening on //p' serve.out)
  [ -n "$url" ] || { cat serve.log; exit 1; }
  echo "   listening on $url (SQLite at ./stella-data/stella.db)"
  token=$(curl -sf -d grant_type=client_credentials -d client_id=admin \
    --data-urlencode client_secret="$secret" "$url/connect/token" \
    | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  echo "== POST $url/excititor/providers/excititor:oci-openvex/artifacts"
  curl -sf -H "Authorization: Bearer $token" -F file=@sbom.cdx.json -F mimeType=application/vnd.cyclonedx+json \
    "$url/excititor/providers/excititor:oci-openvex/artifacts"; echo
  echo "== GET the provider's artifacts"
  curl -sf -H "Authorization: Bearer $token" "$url/excititor/providers/excititor:oci-openvex/artifacts"; echo
  echo "== the same call without a token is a problem+json 401"
  curl -s "$url/excititor/providers/excititor:oci-openvex/artifacts"; echo
  echo "== the provider's configuration through the CLI client: subscribe an image, validate only (the server names what is missing, with JSON paths and hints)"
  "$stella" --server "$url" --token "$token" vex providers configure excititor:oci-openvex \
    --image localhost:5000/demo/app:v1 --set cosignMode=keypair --validate-only || true
  echo "== the web console: $url/console/ (sign in with client id admin and the secret printed above)"
  curl -sf "$url/console/sign-in" | grep -o '<title>[^<]*</title>'
  if [ -t 0 ] && [ -z "${CI:-}" ]; then
    read -r -p "   the server stays up until you press Enter (open the console in a browser) " _ || true
  fi
  kill -TERM $pid && wait $pid
  trap - EXIT
  echo "== stella serve stopped (API document: $url/openapi/v1.json; see docs/service.md)"
)
