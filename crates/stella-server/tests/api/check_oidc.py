"""Black-box checks of `stella serve` with external OIDC issuers, the
tokens made here with locally generated keys (Python `cryptography`):

    python3 check_oidc.py prepare <dir>   # keys + jwks.json into <dir>
    python3 check_oidc.py <case>          # against a running server

Environment for the cases as for check_api.py, plus OIDC_DIR (the prepared
dir). The server (started by crates/stella-cli/tests/serve_oidc.rs) trusts:
  https://idp.example       jwksFile <dir>/jwks.json, tenantClaim org, scopeClaim scp
  http://idp-url.test       jwksUrl http://127.0.0.1:<port>/jwks.json (same keys)
  https://idp-down.example  jwksUrl on a server that never answers, 1 s deadline
"""

import json
import os
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

FILE_ISS, URL_ISS, DOWN_ISS = "https://idp.example", "http://idp-url.test", "https://idp-down.example"
AUDIENCE = "stella-api"


def b64u(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64u(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(length, "big"))


def prepare(directory):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ecn, rn = ec_key.public_key().public_numbers(), rsa_key.public_key().public_numbers()
    jwks = {"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
         "x": int_b64u(ecn.x, 32), "y": int_b64u(ecn.y, 32)},
        {"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": int_b64u(rn.n), "e": int_b64u(rn.e)},
        # A symmetric key in the set must never be usable (HS256 with it).
        {"kty": "oct", "kid": "hmac-1", "k": b64u(b"shared-secret-shared-secret-1234")},
    ]}
    with open(os.path.join(directory, "jwks.json"), "w") as f:
        json.dump(jwks, f)
    for name, key in (("ec.pem", ec_key), ("rsa.pem", rsa_key)):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))


def load_key(name):
    with open(os.path.join(os.environ["OIDC_DIR"], name), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def sign(header, claims, key):
    signing_input = f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(claims).encode())}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(signing_input)
        sig = mac.finalize()
    return f"{signing_input.decode()}.{b64u(sig)}"


def claims(iss=FILE_ISS, **over):
    now = int(time.time())
    c = {"iss": iss, "aud": AUDIENCE, "sub": "alice@idp", "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    if iss == FILE_ISS:
        c.update({"org": "acme", "scp": ["vex.read", "vex.admin"]})
    else:
        c.update({"tenant": "acme", "scope": "vex.read vex.admin"})
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def case_oidc():
    import check_api as api
    from check_api import S, URL, auth, check, problem, upload
    ec_key, rsa_key = load_key("ec.pem"), load_key("rsa.pem")
    rs = sign({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}, claims(), rsa_key)
    es = sign({"alg": "ES256", "kid": "ec-1"}, claims(), ec_key)

    # Good tokens: tenant from the configured claim, scopes from an array claim.
    created = upload(rs, "p", b"from the idp")
    check(created.status_code == 201, created.text)
    body = created.json()
    check(body["stagedBy"] == "alice@idp", body)
    listed = S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(es))
    check(listed.status_code == 200 and [i["artifactId"] for i in listed.json()["items"]] == [body["artifactId"]],
          listed.text)
    # The tenant is the token's: the server's own admin (tenant default) sees none of acme's.
    admin = api.token()
    check(S.get(f"{URL}/excititor/providers/p/artifacts", headers=auth(admin)).json()["items"] == [], "tenant split")
    problem(S.get(f"{URL}/excititor/providers/p/artifacts/{body['artifactId']}", headers=auth(admin)), 404)
    other = sign({"alg": "ES256", "kid": "ec-1"}, claims(org="globex"), ec_key)
    problem(S.get(f"{URL}/excititor/providers/p/artifacts/{body['artifactId']}", headers=auth(other)), 404)
    reader = sign({"alg": "ES256", "kid": "ec-1"}, claims(scp=["vex.read"]), ec_key)
    problem(upload(reader, "p", b"x"), 403, "INSUFFICIENT_SCOPE")

    # Bad tokens from a configured issuer: all 401.
    now = int(time.time())
    rsa_pub_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    ec_pub_pem = ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    foreign_ec = ec.generate_private_key(ec.SECP256R1())
    _, server_key = api.server_key()
    bad = {
        "wrong audience": sign({"alg": "RS256", "kid": "rsa-1"}, claims(aud="someone-else"), rsa_key),
        "expired": sign({"alg": "RS256", "kid": "rsa-1"}, claims(iat=now - 900, exp=now - 120), rsa_key),
        "not valid yet": sign({"alg": "RS256", "kid": "rsa-1"}, claims(nbf=now + 600), rsa_key),
        "no exp": sign({"alg": "RS256", "kid": "rsa-1"}, claims(exp=None), rsa_key),
        "alg none": f"{b64u(json.dumps({'alg': 'none', 'kid': 'rsa-1'}).encode())}."
                    f"{b64u(json.dumps(claims()).encode())}.",
        "HS256 with the RSA public key": sign({"alg": "HS256", "kid": "rsa-1"}, claims(), rsa_pub_pem),
        "HS256 with the EC public key": sign({"alg": "HS256", "kid": "ec-1"}, claims(), ec_pub_pem),
        "HS256 with a symmetric key of the set": sign({"alg": "HS256", "kid": "hmac-1"}, claims(),
                                                      b"shared-secret-shared-secret-1234"),
        "unknown kid": sign({"alg": "ES256", "kid": "not-in-the-set"}, claims(), ec_key),
        "no kid": sign({"alg": "ES256"}, claims(), ec_key),
        "foreign key under a known kid": sign({"alg": "ES256", "kid": "ec-1"}, claims(), foreign_ec),
        "RS256 naming the EC key": sign({"alg": "RS256", "kid": "ec-1"}, claims(), rsa_key),
        "ES384 not configured": sign({"alg": "ES384", "kid": "ec-1"}, claims(), ec_key),
        "no tenant claim": sign({"alg": "ES256", "kid": "ec-1"}, claims(org=None), ec_key),
        "tenant claim not a name": sign({"alg": "ES256", "kid": "ec-1"}, claims(org="../x"), ec_key),
        "tenant claim not a string": sign({"alg": "ES256", "kid": "ec-1"}, claims(org=["acme"]), ec_key),
        "unconfigured issuer": sign({"alg": "ES256", "kid": "ec-1"}, claims(iss="https://evil.example"), ec_key),
        "issuer's claim, server's key": sign({"alg": "ES256", "kid": "ec-1"}, claims(), server_key),
        "server's issuer, idp's key": sign({"alg": "ES256", "kid": "ec-1"},
                                           claims(iss="urn:stella:server", tenant="default", sub="admin"), ec_key),
    }
    list_url = f"{URL}/excititor/providers/p/artifacts"
    for name, tok in bad.items():
        r = S.get(list_url, headers=auth(tok))
        try:
            problem(r, 401, "UNAUTHORIZED")
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}")

    # The issuer whose keys come from a URL: fetched once, then cached.
    url_tok = sign({"alg": "RS256", "kid": "rsa-1"}, claims(iss=URL_ISS), rsa_key)
    for _ in range(5):
        r = S.get(list_url, headers=auth(url_tok))
        check(r.status_code == 200 and len(r.json()["items"]) == 1, r.text)
    for _ in range(5):
        problem(S.get(list_url, headers=auth(sign({"alg": "RS256", "kid": "rotated-away"}, claims(iss=URL_ISS),
                                                   rsa_key))), 401, "UNAUTHORIZED")
    problem(S.get(list_url, headers=auth(sign({"alg": "RS256", "kid": "rsa-1"},
                                              claims(iss=URL_ISS, aud="x"), rsa_key))), 401, "UNAUTHORIZED")

    # The issuer whose key server never answers: a 503 problem after the deadline, not a hang.
    down = sign({"alg": "ES256", "kid": "ec-1"}, claims(iss=DOWN_ISS), ec_key)
    r = S.get(list_url, headers=auth(down), timeout=30)
    problem(r, 503, "ISSUER_UNAVAILABLE")


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        globals()[f"case_{sys.argv[1]}"]()
        print(f"{sys.argv[1]}: ok")
