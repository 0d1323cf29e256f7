"""Black-box checks of a running `stella serve`, with an independent client
(Python requests + cryptography), one case per invocation:

    python3 check_api.py <case>

Environment (set by crates/stella-cli/tests/serve_api.rs, which starts the
server): STELLA_URL, STELLA_BIN, STELLA_DATA_DIR, STELLA_ADMIN_SECRET,
STELLA_PID; on Postgres also STELLA_DATABASE / STELLA_MIGRATION_DATABASE
(inherited by the admin commands) and STELLA_TEST_PG_URL (the tables'
owner, for the few direct SQL checks, run with psql); STELLA_URL_2 names a
second server on the same database (case shared_database). Exits non-zero
with a message on the first failed check.
"""

import base64
import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid

import requests
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

URL = os.environ["STELLA_URL"]
BIN = os.environ["STELLA_BIN"]
DATA = os.environ["STELLA_DATA_DIR"]
ADMIN_SECRET = os.environ["STELLA_ADMIN_SECRET"]
ISSUER, AUDIENCE = "urn:stella:server", "stella-api"
PG_URL = os.environ.get("STELLA_TEST_PG_URL")
PROBLEM = "application/problem+json"
# A revoke takes effect within auth.revocationRecheckMillis (default 250 ms)
# plus one database round trip; the checks wait this long before asserting.
REVOCATION_BOUND = 0.25 + 0.75
S = requests.Session()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def problem(r, status, code=None):
    """Asserts r is an RFC 9457 problem with our fields; returns the body."""
    check(r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:300]}")
    check(r.headers.get("content-type", "").startswith(PROBLEM), f"content-type {r.headers.get('content-type')}")
    body = r.json()
    for field in ("type", "title", "status", "detail", "traceId", "code"):
        check(field in body, f"problem lacks {field}: {body}")
    check(body["status"] == status, body)
    check(body["type"] == "https://stella.dev/problems/" + body["code"], body)
    check(len(body["traceId"]) == 32, body)
    if code:
        check(body["code"] == code, f"expected code {code}: {body}")
    return body


def token(client_id="admin", secret=ADMIN_SECRET, **extra):
    r = S.post(f"{URL}/connect/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                               "client_secret": secret, **extra})
    check(r.status_code == 200, f"token: {r.status_code} {r.text}")
    return r.json()["access_token"]


def auth(tok):
    return {"Authorization": f"Bearer {tok}"}


def add_client(cid, tenant, scopes):
    out = subprocess.run([BIN, "admin", "clients", "add", cid, "--tenant", tenant, "--scopes", scopes,
                          "--data-dir", DATA, "--output", "json"], check=True, capture_output=True, text=True)
    doc = json.loads(out.stdout)
    check(set(doc) == {"clientId", "clientSecret", "tenant", "scopes"}, doc)
    check(doc["clientId"] == cid and doc["tenant"] == tenant, doc)
    check(sorted(doc["scopes"]) == sorted(scopes.split(",")), doc)
    return doc["clientSecret"]


def db_rows(sql, tenant="default"):
    """Runs one statement on the server's database, bypassing the API:
    with the sqlite3 module, or on Postgres with psql as the tables' owner in
    a transaction scoped to `tenant` (row-level security is forced, so the
    owner needs it too). Values are interpolated by the caller from checked
    data only. Returns rows as lists of strings."""
    if not PG_URL:
        db = sqlite3.connect(os.path.join(DATA, "stella.db"))
        rows = [[str(v) for v in row] for row in db.execute(sql)]
        db.commit()
        db.close()
        return rows
    script = (f"BEGIN;\nSELECT set_config('app.tenant_id', '{tenant}', true) \\g /dev/null\n"
              f"{sql};\nCOMMIT;\n")
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", PG_URL],
                         input=script, capture_output=True, text=True)
    check(out.returncode == 0, f"psql: {out.stderr}")
    return [line.split("|") for line in out.stdout.splitlines() if line]


def upload(tok, provider, payload, mime=None, filename="a.bin", part_type="application/octet-stream"):
    files = {"file": (filename, payload, part_type)}
    data = {"mimeType": mime} if mime else None
    return S.post(f"{URL}/excititor/providers/{provider}/artifacts", headers=auth(tok), files=files, data=data)


def server_key():
    keys = os.path.join(DATA, "keys")
    newest = max(os.listdir(keys), key=lambda n: os.path.getmtime(os.path.join(keys, n)))
    with open(os.path.join(keys, newest), "rb") as f:
        return newest[: -len(".p8")], serialization.load_der_private_key(f.read(), None)


def es256(header, claims, key):
    signing_input = f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "admin", "tenant": "default", "scope": "vex.read",
         "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    c.update(over)
    return c


# ---------------------------------------------------------------- cases

def case_token_flow():
    r = S.post(f"{URL}/connect/token", data={"grant_type": "client_credentials", "client_id": "admin",
                                               "client_secret": ADMIN_SECRET})
    check(r.status_code == 200, r.text)
    body = r.json()
    check(body["token_type"] == "Bearer" and isinstance(body["expires_in"], int) and body["expires_in"] > 0, body)
    head_b64, claims_b64, sig_b64 = body["access_token"].split(".")
    header = json.loads(b64u_dec(head_b64))
    check(header["alg"] == "ES256" and header.get("kid"), header)
    jwks = S.get(f"{URL}/.well-known/jwks.json").json()["keys"]
    jwk = next(k for k in jwks if k["kid"] == header["kid"])
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(b64u_dec(jwk["x"]), "big"),
                                        int.from_bytes(b64u_dec(jwk["y"]), "big"), ec.SECP256R1()).public_key()
    sig = b64u_dec(sig_b64)
    pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
               f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    c = json.loads(b64u_dec(claims_b64))
    check(c["iss"] == ISSUER and c["aud"] == AUDIENCE and c["sub"] == "admin" and c["tenant"] == "default", c)
    problem(S.post(f"{URL}/connect/token", data={"grant_type": "client_credentials", "client_id": "admin",
                                                  "client_secret": "wrong"}), 401, "INVALID_CLIENT")
    problem(S.post(f"{URL}/connect/token", data={"grant_type": "client_credentials", "client_id": "nobody",
                                                  "client_secret": "x"}), 401, "INVALID_CLIENT")
    problem(S.post(f"{URL}/connect/token", data={"grant_type": "password", "client_id": "admin",
                                                  "client_secret": ADMIN_SECRET}), 400, "UNSUPPORTED_GRANT_TYPE")
    p = problem(S.post(f"{URL}/connect/token", data={"grant_type": "client_credentials"}), 400, "VALIDATION_FAILED")
    check({e["path"] for e in p["errors"]} == {"$.client_id", "$.client_secret"}, p)
    problem(S.post(f"{URL}/connect/token", json={"grant_type": "client_credentials"}), 415)
    problem(S.post(f"{URL}/connect/token", data={"grant_type": "client_credentials", "client_id": "admin",
                                                  "client_secret": ADMIN_SECRET, "scope": "nope"}), 400, "INVALID_SCOPE")
    narrowed = token(scope="vex.read")
    problem(upload(narrowed, "p", b"x"), 403, "INSUFFICIENT_SCOPE")


def case_bad_tokens():
    kid, key = server_key()
    good = es256({"alg": "ES256", "kid": kid, "typ": "JWT"}, claims(), key)
    list_url = f"{URL}/excititor/providers/p/artifacts"
    check(S.get(list_url, headers=auth(good)).status_code == 200, "a correctly made token is accepted")
    now = int(time.time())
    other = ec.generate_private_key(ec.SECP256R1())
    pub_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_input = f"{b64u(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{b64u(json.dumps(claims()).encode())}"
    mac = hmac.HMAC(pub_pem, hashes.SHA256())
    mac.update(hs_input.encode())
    bad = {
        "expired": es256({"alg": "ES256", "kid": kid}, claims(iat=now - 900, exp=now - 120), key),
        "wrong issuer": es256({"alg": "ES256", "kid": kid}, claims(iss="https://evil.example"), key),
        "wrong audience": es256({"alg": "ES256", "kid": kid}, claims(aud="other"), key),
        "alg none": f"{b64u(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{b64u(json.dumps(claims()).encode())}.",
        "HS256 with the public key": f"{hs_input}.{b64u(mac.finalize())}",
        "unknown kid": es256({"alg": "ES256", "kid": "not-a-key"}, claims(), key),
        "foreign key, our kid": es256({"alg": "ES256", "kid": kid}, claims(), other),
        "no kid": es256({"alg": "ES256"}, claims(), key),
        "unknown client": es256({"alg": "ES256", "kid": kid}, claims(sub="ghost"), key),
        "tenant not the client's": es256({"alg": "ES256", "kid": kid}, claims(tenant="other"), key),
        "garbage": "not.a.jwt",
    }
    for name, tok in bad.items():
        r = S.get(list_url, headers=auth(tok))
        try:
            problem(r, 401, "UNAUTHORIZED")
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}")
        check(r.headers.get("www-authenticate", "").startswith("Bearer"), f"{name}: WWW-Authenticate")
    problem(S.get(list_url), 401, "UNAUTHORIZED")
    problem(S.get(list_url, headers={"Authorization": "Basic YWRtaW46eA=="}), 401, "UNAUTHORIZED")


def case_scopes():
    reader = token("reader", add_client("reader", "default", "vex.read"))
    evidence = token("ev", add_client("ev", "default", "evidence.read,evidence.write"))
    admin = token()
    created = upload(admin, "p", b"hello")
    check(created.status_code == 201, created.text)
    aid = created.json()["artifactId"]
    check(S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(reader)).status_code == 200, "reader lists")
    check(S.get(f"{URL}/excititor/providers/p/artifacts/{aid}", headers=auth(reader)).status_code == 200, "reader gets")
    problem(upload(reader, "p", b"x"), 403, "INSUFFICIENT_SCOPE")
    problem(S.delete(f"{URL}/excititor/providers/p/artifacts/{aid}", headers=auth(reader)), 403, "INSUFFICIENT_SCOPE")
    problem(S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(evidence)), 403, "INSUFFICIENT_SCOPE")


def case_isolation():
    """>= 1,000 randomised cross-tenant requests; counts leaks."""
    tenants = {}
    for t in ("acme", "globex", "initech"):
        tenants[t] = token(f"c-{t}", add_client(f"c-{t}", t, "vex.read,vex.admin"))
    providers = ["excititor:oci-openvex", "p1", "shared"]
    owned = {t: {} for t in tenants}
    for t, tok in tenants.items():
        for i in range(8):
            prov = random.choice(providers)
            r = upload(tok, prov, os.urandom(64) + t.encode())
            check(r.status_code == 201, r.text)
            owned[t][r.json()["artifactId"]] = prov
    rng = random.Random(int(os.environ.get("STELLA_SEED", "12")))
    leaks, requests_made = [], 0
    names = list(tenants)
    while requests_made < 1200:
        caller = rng.choice(names)
        victim = rng.choice([n for n in names if n != caller])
        aid, prov = rng.choice(list(owned[victim].items()))
        tok = tenants[caller]
        action = rng.choice(["get", "delete", "list", "upload"])
        if action == "get":
            r = S.get(f"{URL}/excititor/providers/{prov}/artifacts/{aid}", headers=auth(tok))
            if r.status_code != 404 or aid in r.text:
                leaks.append((action, r.status_code))
        elif action == "delete":
            r = S.delete(f"{URL}/excititor/providers/{prov}/artifacts/{aid}", headers=auth(tok))
            if r.status_code != 404:
                leaks.append((action, r.status_code))
        elif action == "list":
            r = S.get(f"{URL}/excititor/providers/{prov}/artifacts?limit=500", headers=auth(tok))
            ids = {i["artifactId"] for i in r.json()["items"]}
            foreign = {a for n in names if n != caller for a in owned[n]}
            if r.status_code != 200 or ids & foreign:
                leaks.append((action, r.status_code))
        else:
            r = upload(tok, prov, b"cross")
            if r.status_code != 201:
                leaks.append((action, r.status_code))
            else:
                owned[caller][r.json()["artifactId"]] = prov
        requests_made += 1
    for t, tok in tenants.items():
        for aid, prov in owned[t].items():
            r = S.get(f"{URL}/excititor/providers/{prov}/artifacts/{aid}", headers=auth(tok))
            if r.status_code != 200:
                leaks.append(("owner lost its artifact", r.status_code))
    check(not leaks, f"{len(leaks)} leaks in {requests_made} cross-tenant requests: {leaks[:5]}")
    print(f"isolation: {requests_made} cross-tenant requests, 0 leaks")


def case_artifacts():
    tok = token()
    payload = os.urandom(3000)
    r = upload(tok, "excititor:oci-openvex", payload, mime="application/vnd.stella.test+json")
    check(r.status_code == 201, r.text)
    a = r.json()
    check(set(a) == {"artifactId", "providerId", "sha256", "sizeBytes", "mimeType", "stagedAt", "stagedBy"}, a)
    check(a["sha256"] == hashlib.sha256(payload).hexdigest() and a["sizeBytes"] == 3000, a)
    check(a["mimeType"] == "application/vnd.stella.test+json" and a["stagedBy"] == "admin", a)
    check(uuid.UUID(a["artifactId"]), a)
    check(r.headers["location"].endswith(a["artifactId"]), r.headers)
    got = S.get(f"{URL}/excititor/providers/excititor:oci-openvex/artifacts/{a['artifactId']}", headers=auth(tok))
    check(got.status_code == 200 and got.json() == a, got.text)
    check("payload" not in got.text, "metadata never carries the payload")
    part_typed = upload(tok, "excititor:oci-openvex", b"{}", part_type="application/json").json()
    check(part_typed["mimeType"] == "application/json", part_typed)
    ids = [a["artifactId"], part_typed["artifactId"]]
    for i in range(5):
        ids.append(upload(tok, "excititor:oci-openvex", bytes([i])).json()["artifactId"])
    seen, cursor = [], None
    while True:
        q = f"?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = S.get(f"{URL}/excititor/providers/excititor:oci-openvex/artifacts{q}", headers=auth(tok)).json()
        seen += [i["artifactId"] for i in page["items"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    check(seen == ids, f"pages in staging order: {seen} vs {ids}")
    problem(S.get(f"{URL}/excititor/providers/p/artifacts?limit=0", headers=auth(tok)), 400, "VALIDATION_FAILED")
    problem(S.get(f"{URL}/excititor/providers/p/artifacts?cursor=zz", headers=auth(tok)), 400, "VALIDATION_FAILED")
    # A provider configuration references the first artifact: DELETE answers 409.
    db_rows("INSERT INTO vex_provider_artifact_uses (tenant_id, provider_id, field_key, artifact_id) "
            f"VALUES ('default', 'excititor:oci-openvex', 'cosignKey', '{uuid.UUID(ids[0])}')")
    base = f"{URL}/excititor/providers/excititor:oci-openvex/artifacts"
    problem(S.delete(f"{base}/{ids[0]}", headers=auth(tok)), 409, "ARTIFACT_IN_USE")
    check(S.delete(f"{base}/{ids[1]}", headers=auth(tok)).status_code == 204, "delete")
    problem(S.get(f"{base}/{ids[1]}", headers=auth(tok)), 404, "NOT_FOUND")
    problem(S.delete(f"{base}/{ids[1]}", headers=auth(tok)), 404, "NOT_FOUND")
    actions = [row[0] for row in db_rows("SELECT action FROM audit_log WHERE actor = 'admin' ORDER BY id")]
    check(actions.count("artifact.create") == 7 and actions.count("artifact.delete") == 1, actions)
    # Around the 64 KiB the server stages in memory before spilling to a
    # temp file, and past one 256 KiB chunk: the stored bytes, read back
    # from the database, are the payload's.
    for size in (0, 1, 65535, 65536, 65537, 300000, 1 << 20):
        payload = os.urandom(size)
        r = upload(tok, "spill", payload)
        check(r.status_code == 201, f"{size}: {r.text}")
        a = r.json()
        check(a["sizeBytes"] == size and a["sha256"] == hashlib.sha256(payload).hexdigest(), a)
        hex_of = "encode(bytes, 'hex')" if PG_URL else "hex(bytes)"
        rows = db_rows(f"SELECT {hex_of} FROM vex_provider_artifact_chunks "
                       f"WHERE artifact_id = '{uuid.UUID(a['artifactId'])}' ORDER BY seq")
        stored = bytes.fromhex("".join(row[0] for row in rows))
        check(stored == payload, f"{size}: stored {len(stored)} bytes differ from the upload")


def case_limits():
    """Server runs with maxBytes 4096, quotaCount 4, quotaBytes 9000."""
    tok = token()
    problem(upload(tok, "p", os.urandom(4097)), 413, "PAYLOAD_TOO_LARGE")
    problem(upload(tok, "p", os.urandom(200_000)), 413, "PAYLOAD_TOO_LARGE")
    check(S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(tok)).json()["items"] == [], "nothing stored")
    for _ in range(2):
        check(upload(tok, "p", os.urandom(4096)).status_code == 201, "under quota")
    problem(upload(tok, "p", os.urandom(1000)), 413, "QUOTA_EXCEEDED")  # bytes: 8192 + 1000 > 9000
    check(upload(tok, "q", os.urandom(800)).status_code == 201, "still under the byte quota")
    check(upload(tok, "q", b"").status_code == 201, "empty artifact")
    problem(upload(tok, "q", b"x"), 413, "QUOTA_EXCEEDED")  # count 4


def case_bad_input():
    tok = token()
    base = f"{URL}/excititor/providers"
    problem(S.post(f"{base}/p/artifacts", headers=auth(tok), data=b"raw", ), 415, "UNSUPPORTED_MEDIA_TYPE")
    problem(S.post(f"{base}/p/artifacts", headers={**auth(tok), "Content-Type": "application/json"}, data=b"{}"), 415)
    p = problem(S.post(f"{base}/p/artifacts", headers=auth(tok), files={"mimeType": (None, "text/plain")}),
                400, "VALIDATION_FAILED")
    check(p["errors"][0]["path"] == "$.file" and p["errors"][0]["code"] == "REQUIRED", p)
    problem(S.post(f"{base}/p/artifacts", headers=auth(tok), files={"file": ("a", b"x"), "other": ("b", b"y")}),
            400, "VALIDATION_FAILED")
    problem(upload(tok, "p", b"x", mime="not a mime"), 400, "VALIDATION_FAILED")
    garbage = b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"  # never closed
    problem(S.post(f"{base}/p/artifacts", headers={**auth(tok), "Content-Type": "multipart/form-data; boundary=XYZ"},
                   data=garbage), 400, "MALFORMED_MULTIPART")
    for bad in ["a%2Fb", "%2E%2E", "a..b", ".hidden", "a%00b", "a%20b", "x" * 129]:
        for method, path in (("GET", f"{base}/{bad}/artifacts"),
                             ("GET", f"{base}/{bad}/artifacts/{uuid.uuid4()}"),
                             ("DELETE", f"{base}/{bad}/artifacts/{uuid.uuid4()}")):
            p = problem(S.request(method, path, headers=auth(tok)), 400, "VALIDATION_FAILED")
            check(p["errors"][0]["code"] == "INVALID_PROVIDER_ID", (bad, p))
        problem(upload(tok, bad, b"x"), 400, "VALIDATION_FAILED")
    p = problem(S.get(f"{base}/p/artifacts/not-a-uuid", headers=auth(tok)), 400, "VALIDATION_FAILED")
    check(p["errors"][0]["path"] == "artifactId", p)
    problem(S.get(f"{URL}/no/such/route"), 404, "NOT_FOUND")
    r = S.put(f"{URL}/healthz")
    problem(r, 405, "METHOD_NOT_ALLOWED")
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    p = problem(S.get(f"{base}/p/artifacts", headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}), 401)
    check(p["traceId"] == trace, p)


def case_rate_limit():
    """Server runs with 5 requests/s."""
    tok = token()
    r = S.get(f"{URL}/healthz")
    check(r.status_code == 200 and r.text == "ok", r.text)
    for resp in (r, S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth("bad"))):
        check("x-stella-quota-remaining" in resp.headers and "x-stella-reset" in resp.headers, resp.headers)
    statuses = []
    for _ in range(3):
        burst = [S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(tok)) for _ in range(12)]
        statuses += burst
        if any(b.status_code == 429 for b in burst):
            break
    limited = [b for b in statuses if b.status_code == 429]
    check(limited, "a burst over 5/s is limited")
    p = problem(limited[0], 429, "RATE_LIMITED")
    check(int(limited[0].headers["retry-after"]) >= 1, limited[0].headers)
    check(limited[0].headers["x-stella-quota-remaining"] == "0", limited[0].headers)
    ok = [b for b in statuses if b.status_code == 200]
    check(all(int(b.headers["x-stella-quota-remaining"]) < 5 for b in ok), "remaining counts down")
    time.sleep(int(limited[0].headers["retry-after"]) + 0.2)
    check(S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(tok)).status_code == 200, "after Retry-After")


def case_ops_and_openapi():
    from openapi_spec_validator import validate
    import yaml
    check(S.get(f"{URL}/healthz").text == "ok", "healthz")
    ready = S.get(f"{URL}/readyz")
    check(ready.status_code == 200 and ready.json()["status"] == "ready", ready.text)
    v = S.get(f"{URL}/version").json()
    check(set(v) == {"version", "gitSha", "buildDate"}, v)
    S.get(f"{URL}/healthz")
    m = S.get(f"{URL}/metrics").text
    check('stella_http_requests_total{route="/healthz",method="GET",status="200"}' in m, m[:500])
    check("stella_http_request_duration_seconds_bucket" in m and "stella_db_pool_connections" in m, m[:500])
    doc = S.get(f"{URL}/openapi/v1.json").json()
    check(doc["openapi"].startswith("3.1"), doc["openapi"])
    validate(doc)
    check(yaml.safe_load(S.get(f"{URL}/openapi/v1.yaml").text) == doc, "yaml and json documents agree")
    expected = {"/connect/token", "/.well-known/jwks.json", "/healthz", "/readyz", "/metrics", "/version",
                "/openapi/v1.json", "/openapi/v1.yaml", "/excititor/providers/{providerId}/artifacts",
                "/excititor/providers/{providerId}/artifacts/{artifactId}",
                # OpenVEX providers and statements (issue 13, docs/vex.md)
                "/excititor/providers", "/excititor/providers/{providerId}/config",
                "/excititor/providers/{providerId}/run", "/excititor/providers/{providerId}/status",
                "/vex/statements", "/vex/consensus", "/vex/trust"}
    expected |= {"/verify/policies", "/verify/image"}  # the console's image check (docs/console.md)
    # policy store and signed reports (issue 16, docs/policy.md "Service")
    expected |= {"/policy/import", "/policy/export", "/policy/validate", "/policy/preview",
                 "/policy/activate", "/api/v1/reports", "/api/v1/reports/keys"}
    # Export Center jobs (issue 14 section 4, docs/service.md)
    expected |= {"/exports", "/exports/{id}", "/exports/{id}/events", "/exports/{id}/download",
                 "/exports/signing-key"}
    check(set(doc["paths"]) == expected, set(doc["paths"]) ^ expected)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path.startswith("/excititor"):
                scopes = op["security"][0]["bearer"]
                check(scopes in (["vex.read"], ["vex.admin"]), (path, method, scopes))
                for status in ("401", "403", "429"):
                    content = op["responses"][status]["content"]
                    check(PROBLEM in content, (path, method, status))


def case_admin_cli():
    secret = add_client("rotator", "default", "vex.read")
    old = token("rotator", secret)
    listed = json.loads(subprocess.run([BIN, "admin", "clients", "list", "--data-dir", DATA, "--output", "json"],
                                       check=True, capture_output=True, text=True).stdout)
    check({c["clientId"] for c in listed} >= {"admin", "rotator"}, listed)
    check(all("clientSecret" not in c and "secretHash" not in c for c in listed), listed)
    subprocess.run([BIN, "admin", "keys", "rotate", "--data-dir", DATA], check=True, capture_output=True)
    new = token("rotator", secret)
    kid = lambda t: json.loads(b64u_dec(t.split(".")[0]))["kid"]
    check(kid(old) != kid(new), "a new key signs after rotation")
    kids = {k["kid"] for k in S.get(f"{URL}/.well-known/jwks.json").json()["keys"]}
    check({kid(old), kid(new)} <= kids, kids)
    for t in (old, new):
        check(S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(t)).status_code == 200, "both valid")
    subprocess.run([BIN, "admin", "clients", "revoke", "rotator", "--data-dir", DATA], check=True, capture_output=True)
    time.sleep(REVOCATION_BOUND)
    problem(S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(new)), 401, "UNAUTHORIZED")
    problem(S.post(f"{URL}/connect/token", data={"grant_type": "client_credentials", "client_id": "rotator",
                                                  "client_secret": secret}), 401, "INVALID_CLIENT")
    dup = subprocess.run([BIN, "admin", "clients", "add", "admin", "--tenant", "x", "--scopes", "vex.read",
                          "--data-dir", DATA], capture_output=True, text=True)
    check(dup.returncode == 2 and "already exists" in dup.stderr, dup.stderr)
    bad = subprocess.run([BIN, "admin", "clients", "add", "z", "--tenant", "x", "--scopes", "vex.reed",
                          "--data-dir", DATA], capture_output=True, text=True)
    check(bad.returncode == 2 and "vex.reed" in bad.stderr, bad.stderr)


def case_sigterm_drain():
    """An upload in flight when SIGTERM arrives still completes with 201."""
    tok = token()
    host, port = URL.removeprefix("http://").split(":")
    body_head = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n"
                 b"Content-Type: application/octet-stream\r\n\r\n")
    body_tail = b"x" * 100 + b"\r\n--B--\r\n"
    length = len(body_head) + len(body_tail)
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall((f"POST /excititor/providers/p/artifacts HTTP/1.1\r\nHost: {host}\r\n"
                  f"Authorization: Bearer {tok}\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                  f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode() + body_head)
    time.sleep(0.5)
    os.kill(int(os.environ["STELLA_PID"]), signal.SIGTERM)
    time.sleep(0.5)
    sock.sendall(body_tail)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    check(reply.startswith(b"HTTP/1.1 201"), reply[:200])


def case_slow_client():
    """Server runs with headerReadTimeoutSeconds 1: a client that never
    finishes its request head is disconnected; others are still served."""
    host, port = URL.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    reply = b""
    try:
        while chunk := sock.recv(4096):
            reply += chunk
    except socket.timeout:
        raise AssertionError("the server kept a connection with an unfinished request head open")
    check(reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply[:200])
    check(S.get(f"{URL}/healthz").text == "ok", "the server still answers")


def case_schemathesis():
    """A bounded schemathesis run (PyPI, seeded) against the served
    document: no 5xx, and every answer matches the document's statuses,
    content types and schemas."""
    import shutil
    st = os.path.join(os.path.dirname(sys.executable), "st")
    st = st if os.path.exists(st) else shutil.which("st")
    check(st, "schemathesis is not installed (scripts/test.sh installs it)")
    tok = token()
    out = subprocess.run([st, "run", f"{URL}/openapi/v1.json", "--url", URL, "-H", f"Authorization: Bearer {tok}",
                          "--max-examples", "60", "--seed", "20261129", "--no-color", "--checks",
                          "not_a_server_error,status_code_conformance,content_type_conformance,"
                          "response_schema_conformance"],
                         capture_output=True, text=True, timeout=120, cwd=DATA)
    check(out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:])
    summary = [line for line in out.stdout.splitlines() if "generated" in line]
    print("schemathesis:", summary[-1].strip() if summary else "ok")


def case_shared_database():
    """Two servers on one Postgres database serve the same data: what one
    stages, the other lists, reads and deletes, and the reverse; a token from
    either works on both (the signing keys are shared)."""
    url2 = os.environ["STELLA_URL_2"]
    tok_a, tok_b = token(), None
    r = S.post(f"{url2}/connect/token", data={"grant_type": "client_credentials", "client_id": "admin",
                                              "client_secret": ADMIN_SECRET})
    check(r.status_code == 200, r.text)
    tok_b = r.json()["access_token"]
    prov = "excititor:shared"
    staged = []
    for i in range(6):
        base, tok = (URL, tok_a) if i % 2 == 0 else (url2, tok_b)
        r = S.post(f"{base}/excititor/providers/{prov}/artifacts", headers=auth(tok),
                   files={"file": ("a.bin", os.urandom(100 + i), "application/octet-stream")})
        check(r.status_code == 201, r.text)
        staged.append(r.json())
    for base, tok in ((URL, tok_b), (url2, tok_a)):
        listed = S.get(f"{base}/excititor/providers/{prov}/artifacts", headers=auth(tok)).json()["items"]
        check(listed == staged, f"{base} lists {listed} vs staged {staged}")
        for a in staged:
            got = S.get(f"{base}/excititor/providers/{prov}/artifacts/{a['artifactId']}", headers=auth(tok))
            check(got.status_code == 200 and got.json() == a, got.text)
    # Delete through the other server than the one that staged it.
    for i, a in enumerate(staged[:4]):
        base, tok = (url2, tok_b) if i % 2 == 0 else (URL, tok_a)
        check(S.delete(f"{base}/excititor/providers/{prov}/artifacts/{a['artifactId']}",
                       headers=auth(tok)).status_code == 204, "delete through the other server")
    for base in (URL, url2):
        for a in staged[:4]:
            problem(S.get(f"{base}/excititor/providers/{prov}/artifacts/{a['artifactId']}", headers=auth(tok_a)),
                    404, "NOT_FOUND")
        left = S.get(f"{base}/excititor/providers/{prov}/artifacts", headers=auth(tok_b)).json()["items"]
        check(left == staged[4:], left)
    actions = [row[0] for row in db_rows("SELECT action FROM audit_log ORDER BY id")]
    check(actions.count("artifact.create") == 6 and actions.count("artifact.delete") == 4, actions)
    revoke_reaches_both_servers(url2, prov)


def revoke_reaches_both_servers(url2, prov):
    """A client revoked with `stella admin clients revoke` (a third process,
    straight on the database) is refused by both servers within the
    documented bound, although both had its row cached."""
    out = subprocess.run([BIN, "admin", "clients", "add", "shared-reader", "--tenant", "default",
                          "--scopes", "vex.read", "--output", "json", "--data-dir", DATA],
                         check=True, capture_output=True, text=True)
    tok = token("shared-reader", json.loads(out.stdout)["clientSecret"])
    other = token()
    for _ in range(20):
        for base in (URL, url2):
            r = S.get(f"{base}/excititor/providers/{prov}/artifacts", headers=auth(tok))
            check(r.status_code == 200, r.text)
    subprocess.run([BIN, "admin", "clients", "revoke", "shared-reader", "--data-dir", DATA],
                   check=True, capture_output=True)
    time.sleep(REVOCATION_BOUND)
    for base in (URL, url2):
        for _ in range(5):
            problem(S.get(f"{base}/excititor/providers/{prov}/artifacts", headers=auth(tok)), 401, "UNAUTHORIZED")
        r = S.get(f"{base}/excititor/providers/{prov}/artifacts", headers=auth(other))
        check(r.status_code == 200, f"another client is unaffected: {r.text}")


if __name__ == "__main__":
    globals()[f"case_{sys.argv[1]}"]()
    print(f"{sys.argv[1]}: ok")
