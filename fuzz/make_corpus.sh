#!/usr/bin/env bash
# Regenerates the committed seed corpora under fuzz/corpus/<target>/ from
# scratch, with the stella binary, openssl and python only (no third-party
# test data). Usage: fuzz/make_corpus.sh [path/to/stella]
# Seeds are small on purpose (the whole corpus stays well under 1 MB); the
# fuzzers grow their own working corpora elsewhere (see README.md).
set -euo pipefail
STELLA=$(realpath "${1:-$(dirname "$0")/../target/debug/stella}")
cd "$(dirname "$0")"
export SOURCE_DATE_EPOCH=1700000000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
C=corpus
rm -rf "$C"
mkdir -p "$C"/{bundle_read,policy_parse,dsse_envelope,pem_keys,oci_index,registry_responses}

# seed <target> <name> <selector byte (decimal) or -> <file>
seed() {
  local out="$C/$1/$2"
  if [ "$3" = - ]; then cp "$4" "$out"; else { printf "\\$(printf '%03o' "$3")"; cat "$4"; } >"$out"; fi
}

# ---- an image, evidence, a signed attestation and bundles (stella + python)
python3 - "$work/lay" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b, mt):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"mediaType": mt, "digest": "sha256:" + h, "size": len(b)}
l = put(b"layer seed", "application/vnd.oci.image.layer.v1.tar")
cfg = put(json.dumps({"architecture": "amd64", "os": "linux"}).encode(), "application/vnd.oci.image.config.v1+json")
m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [l]}).encode(),
        "application/vnd.oci.image.manifest.v1+json")
m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [m]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
cd "$work"
echo '{"spdxVersion":"SPDX-2.3","name":"seed"}' >sbom.json
echo '{"buildDefinition":{"buildType":"https://example.com/seed"},"runDetails":{}}' >prov.json
# The attestation is signed with the key the dsse_envelope harness trusts.
sed -n '/BEGIN PRIVATE KEY/,/END PRIVATE KEY/p' "$OLDPWD/harness/dsse_envelope.rs" | sed 's/^.*"-----BEGIN/-----BEGIN/' >k.pem
openssl pkey -in k.pem -pubout -out k.pub
"$STELLA" key generate --output-key s.pem --output-pub s.pub >/dev/null
"$STELLA" key generate --algorithm ed25519 --output-key ed.pem --output-pub ed.pub >/dev/null
"$STELLA" evidence push-referrer --image oci:lay:v1 --artifact-type application/spdx+json --file sbom.json >/dev/null
"$STELLA" attest --image oci:lay:v1 --type slsaprovenance --predicate prov.json --key k.pem >/dev/null
for c in none gzip zstd; do
  "$STELLA" evidence export-bundle --image oci:lay:v1 --include-dsse --compression "$c" --output "b-$c" >/dev/null
done
"$STELLA" evidence export-bundle --image oci:lay:v1 --include-dsse --compression none --include-image --sign-key ed.pem --output b-signed >/dev/null
cd - >/dev/null
seed bundle_read plain-raw 0 "$work/b-none"
seed bundle_read plain-gzipped-by-harness 1 "$work/b-none"
seed bundle_read plain-zstd-by-harness 2 "$work/b-none"
seed bundle_read gzip-raw 0 "$work/b-gzip"
seed bundle_read zstd-raw 0 "$work/b-zstd"
seed bundle_read signed-with-image 0 "$work/b-signed"

# ---- DSSE envelopes and sigstore bundles written by stella attest
python3 - "$work" "$C/dsse_envelope" <<'PY'
import base64, glob, json, os, sys
work, out = sys.argv[1], sys.argv[2]
n = 0
for p in sorted(glob.glob(work + "/lay/blobs/sha256/*")):
    b = open(p, "rb").read()
    try:
        v = json.loads(b)
    except Exception:
        continue
    if isinstance(v, dict) and "dsseEnvelope" in v:
        env = json.dumps(v["dsseEnvelope"]).encode()
        stmt = base64.b64decode(v["dsseEnvelope"]["payload"])
        for sel, name, data in [(1, "bundle-v03", b), (2, "bundle-as-v02", b), (0, "envelope", env), (3, "statement", stmt)]:
            open(f"{out}/{name}-{n}", "wb").write(bytes([sel]) + data)
        n += 1
open(f"{out}/pae-split", "wb").write(b"\x00application/vnd.in-toto+json\x00{}")
open(f"{out}/envelope-unsigned", "wb").write(b"\x00" + json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": base64.b64encode(b'{"_type":"https://in-toto.io/Statement/v1"}').decode(), "signatures": []}).encode())
assert n > 0, "no sigstore bundle found in the layout"
PY

# ---- the layout's index.json and manifests
seed oci_index layout-index 0 "$work/lay/index.json"
i=0
for f in "$work"/lay/blobs/sha256/*; do
  if python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); sys.exit(0 if isinstance(v,dict) and v.get("schemaVersion")==2 else 1)' "$f" 2>/dev/null; then
    seed oci_index "manifest-$i" $((i % 4)) "$f"; i=$((i + 1))
  fi
done

# ---- keys and certificates made by openssl (PEM and DER)
( cd "$work" && mkdir pki && cd pki
  openssl ecparam -name prime256v1 -genkey -noout -out sec1.pem 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in sec1.pem -out p256.pem
  openssl genpkey -algorithm ED25519 -out ed.pem
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
  openssl ecparam -name secp384r1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out p384.pem
  openssl pkcs8 -topk8 -in p256.pem -passout pass:seed -v2 aes-256-cbc -iter 1000 -out enc.pem
  for k in p256 ed rsa p384; do
    openssl pkey -in $k.pem -pubout -out $k.pub
    openssl pkey -in $k.pem -pubout -outform DER -out $k.pub.der
    openssl pkey -in $k.pem -outform DER -out $k.der
  done
  openssl req -x509 -key p256.pem -subj /CN=seed-root -days 3650 -out root.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  openssl req -new -key ed.pem -subj /CN=seed-leaf -out leaf.csr
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' >leaf.ext
  openssl x509 -req -in leaf.csr -CA root.pem -CAkey p256.pem -CAcreateserial -days 365 -extfile leaf.ext -out leaf.pem 2>/dev/null
  openssl x509 -in leaf.pem -outform DER -out leaf.der
  cat leaf.pem root.pem >chain.pem )
for f in sec1.pem p256.pem ed.pem rsa.pem p384.pem enc.pem p256.pub ed.pub rsa.pub p384.pub \
         p256.pub.der ed.pub.der p256.der ed.der root.pem leaf.pem leaf.der chain.pem; do
  seed pem_keys "$f" - "$work/pki/$f"
done
seed pem_keys stella-written.pub - "$work/s.pub"
seed pem_keys stella-written.pem - "$work/s.pem"

# ---- policies (valid, with warnings, and with errors)
P=$C/policy_parse
cat >"$P/full.yaml" <<'Y'
version: 1
signers:
  release:
    keys: [keys/release.pub]
  org-pki:
    caRoots: [pki/root-ca.pem]
  github-release:
    keyless:
      identity: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main
      issuer: https://token.actions.githubusercontent.com
unsignedEvidence: fail
maxEvidenceAge: 90d
requireTransparencyLog: false
requirements:
  - name: sbom
    type: cyclonedx
    signers: [release, org-pki]
  - name: provenance
    type: slsaprovenance
    signers: [github-release]
    transparencyLog: true
    maxAge: 30d
  - name: vex
    type: application/vnd.openvex+json
    unsigned: warn
Y
cat >"$P/regexp.yaml" <<'Y'
version: 1
signers:
  ci:
    keyless:
      identityRegexp: ^https://github\.com/acme/.*$
      issuerRegexp: ^https://token\.actions\.githubusercontent\.com$
requirements:
  - type: openvex
    signers: [ci]
Y
cat >"$P/errors.yaml" <<'Y'
version: 1
colour: blue
signers:
  a: {}
requirements:
  - type: "not a type"
    signers: [nobody]
    maxAge: 3x
  - name: dup
    type: spdx
    unsigned: sometimes
Y
printf '{"version":1,"signers":{"k":{"keys":["k.pub"]}},"requirements":[{"type":"slsaprovenance","signers":["k"]}]}' >"$P/json.json"
printf 'version: 2\n' >"$P/version2.yaml"
printf 'a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\nversion: 1\n' >"$P/aliases.yaml"
printf -- '- just\n- a list\n' >"$P/list.yaml"

# ---- registry responses (selector: 0 challenge, 1 Link, 2 Retry-After, 3 error body, 4 referrers index)
R=$C/registry_responses
w() { printf "\\$(printf '%03o' "$2")%s" "$3" >"$R/$1"; }
w challenge-bearer 0 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:app:pull"'
w challenge-basic 0 'Basic realm="Registry Realm"'
w challenge-escaped 0 'Bearer realm="https://a.example/t\"x",service=unquoted, error="insufficient_scope"'
w link-next 1 '</v2/app/referrers/sha256:abc?n=10&last=x>; rel="next"'
w link-many 1 '<https://other.example/p2>; rel="prev", </v2/x?last=y>; rel="next last"'
w retry-seconds 2 '120'
w retry-date 2 'Wed, 21 Oct 2015 07:28:00 GMT'
w error-body 3 '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}},{"code":"DENIED","message":""}]}'
w error-text 3 '<html>502 Bad Gateway</html>'
printf '\004' >"$R/referrers-index"
cat "$work/lay/index.json" >>"$R/referrers-index"
w referrers-dupes 4 '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10,"artifactType":"application/spdx+json"},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":10}]}'

du -sh "$C"
