//! The provider configuration API and `stella vex providers configure|show`
//! against `stella serve` as a real process, checked with an independent
//! client (Python `requests`): the catalog's field shapes, the seed's
//! validation codes with JSON paths and hints inside a
//! PROVIDER_CONFIG_REQUIRED / PROVIDER_CONFIG_INVALID problem, uploads into
//! artifact fields, 409 on deleting a referenced artifact, the /vex routes
//! and the OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_stella");

struct Server {
    child: Child,
    url: String,
    data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let data = tempfile::tempdir().unwrap();
    let init = Command::new(BIN)
        .args(["serve", "init", "--output", "json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("STELLA_RATE_LIMIT_REQUESTS_PER_SECOND", "100000")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("stella serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server { child, url, data }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env("XDG_CONFIG_HOME", "/nonexistent-stella-test-config")
        .output()
        .unwrap()
}

const PYTHON_CHECKS: &str = r#"
import json, os, sys, requests
URL, TOKEN, STEP = os.environ["STELLA_URL"], os.environ["STELLA_TOKEN"], sys.argv[1]
H = {"Authorization": "Bearer " + TOKEN}
P = "excititor:oci-openvex"
def check(cond, what):
    if not cond:
        print("FAILED:", what); sys.exit(1)
def problem(r, status, code):
    check(r.status_code == status, (r.status_code, r.text))
    check(r.headers["content-type"].startswith("application/problem+json"), r.headers)
    body = r.json()
    check(body["code"] == code, body)
    return body
if STEP == "before":
    cat = requests.get(f"{URL}/excititor/providers", headers=H).json()
    fields = {f["name"]: f for f in cat["items"][0]["fields"]}
    check(cat["items"][0]["id"] == P, cat)
    check(fields["imageSubscriptions"]["shape"] == "list<string>" and fields["imageSubscriptions"]["required"], fields)
    check(fields["cosignKeys"]["shape"] == "list<artifactRef>", fields)
    check(fields["tufRoot"]["shape"] == "artifactRef" and fields["cosignMode"]["shape"] == "scalar", fields)
    cfg = requests.get(f"{URL}/excititor/providers/{P}/config", headers=H).json()
    check(cfg["ready"] is False and cfg["values"] == {}, cfg)
    p = problem(requests.put(f"{URL}/excititor/providers/{P}/config", headers=H, json={"values": {"cosignMode": "keypair"}}), 400, "PROVIDER_CONFIG_REQUIRED")
    got = {(e["path"], e["code"]) for e in p["errors"]}
    check(got == {("$.values.imageSubscriptions", "PROVIDER_CONFIG_MISSING_IMAGE_SUBSCRIPTIONS"), ("$.values.cosignKeys", "PROVIDER_CONFIG_MISSING_COSIGN_KEY")}, got)
    check(all(e["hint"] for e in p["errors"]), p)
    p = problem(requests.put(f"{URL}/excititor/providers/{P}/config", headers=H,
        json={"values": {"imageSubscriptions": "r.example/a:1\nnot a ref", "cosignMode": "magic", "tufMirror": "http://m.local"}}), 400, "PROVIDER_CONFIG_INVALID")
    got = {(e["path"], e["code"]) for e in p["errors"]}
    check(got == {("$.values.imageSubscriptions[1]", "PROVIDER_CONFIG_INVALID_IMAGE_REFERENCE"), ("$.values.cosignMode", "PROVIDER_CONFIG_INVALID_COSIGN_MODE"), ("$.values.tufMirror", "PROVIDER_CONFIG_HTTP_REGISTRY_BLOCKED")}, got)
    problem(requests.put(f"{URL}/excititor/providers/{P}/config", headers=H, json={"values": {"tufRoot": "0190f5a0-0000-7000-8000-000000000000", "imageSubscriptions": ["r.example/a:1"], "cosignMode": "keypair", "cosignKeys": ["0190f5a0-0000-7000-8000-000000000001"]}}), 400, "PROVIDER_CONFIG_INVALID")
    problem(requests.get(f"{URL}/excititor/providers/nope/config", headers=H), 404, "NOT_FOUND")
    check(requests.get(f"{URL}/excititor/providers/{P}/config", headers=H).json()["values"] == {}, "nothing saved")
elif STEP == "after":
    cfg = requests.get(f"{URL}/excititor/providers/{P}/config", headers=H).json()
    check(cfg["ready"] is True and cfg["values"]["imageSubscriptions"] == ["r.example/app:1", "r.example/app@sha256:" + "a" * 64], cfg)
    keys = cfg["values"]["cosignKeys"]
    check(len(keys) == 1, cfg)
    problem(requests.delete(f"{URL}/excititor/providers/{P}/artifacts/{keys[0]}", headers=H), 409, "ARTIFACT_IN_USE")
    r = requests.get(f"{URL}/vex/statements", headers=H, params={"product": "sha256:" + "a" * 64})
    check(r.status_code == 200 and r.json()["items"] == [], r.text)
    r = requests.get(f"{URL}/vex/consensus", headers=H, params={"product": "sha256:" + "a" * 64, "vulnerability": "CVE-1"})
    check(r.status_code == 200 and r.json()["items"] == [], r.text)
    problem(requests.get(f"{URL}/vex/consensus", headers=H), 400, "INVALID_QUERY")
    doc = requests.get(f"{URL}/openapi/v1.json").json()
    for path in ["/excititor/providers", "/excititor/providers/{providerId}/config", "/vex/statements", "/vex/consensus"]:
        check(path in doc["paths"], path)
    check("put" in doc["paths"]["/excititor/providers/{providerId}/config"], "put documented")
print("ok")
"#;

fn python(server: &Server, token: &str, step: &str) {
    let out = Command::new("python3")
        .args(["-c", PYTHON_CHECKS, step])
        .env("STELLA_URL", &server.url)
        .env("STELLA_TOKEN", token)
        .output()
        .unwrap();
    let log = std::fs::read_to_string(server.data.path().join("serve.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{step}: {}{}\nserver log:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn provider_configuration_api_and_cli() {
    let server = start();
    let data = server.data.path().to_str().unwrap().to_string();
    let add = run(
        &[
            "admin",
            "clients",
            "add",
            "vexer",
            "--tenant",
            "t1",
            "--scopes",
            "vex.read,vex.admin",
            "--data-dir",
            &data,
            "--output",
            "json",
        ],
        &[],
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let secret = serde_json::from_slice::<serde_json::Value>(&add.stdout).unwrap()["clientSecret"]
        .as_str()
        .unwrap()
        .to_string();
    let tok = Command::new("curl")
        .args([
            "-sf",
            "-d",
            "grant_type=client_credentials",
            "-d",
            "client_id=vexer",
            "-d",
        ])
        .arg(format!("client_secret={secret}"))
        .arg(format!("{}/connect/token", server.url))
        .output()
        .unwrap();
    assert!(tok.status.success());
    let token = serde_json::from_slice::<serde_json::Value>(&tok.stdout).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    python(&server, &token, "before");

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pub");
    std::fs::write(&key, "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n").unwrap();
    let env = [
        ("STELLA_SERVER", server.url.as_str()),
        ("STELLA_TOKEN", token.as_str()),
    ];
    let p = "excititor:oci-openvex";
    let upload = format!("cosignKeys=@{}", key.display());
    let digest_ref = format!("r.example/app@sha256:{}", "a".repeat(64));
    // --validate-only with a bad mode: exit 2, the code and hint on stderr, nothing saved.
    let bad = run(
        &[
            "vex",
            "providers",
            "configure",
            p,
            "--image",
            "r.example/app:1",
            "--set",
            "cosignMode=magic",
            "--upload-artifact",
            &upload,
            "--validate-only",
        ],
        &env,
    );
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("PROVIDER_CONFIG_INVALID_COSIGN_MODE")
            && stderr.contains("hint: use keyless"),
        "{stderr}"
    );
    let good = run(
        &[
            "vex",
            "providers",
            "configure",
            p,
            "--image",
            "r.example/app:1",
            "--image",
            &digest_ref,
            "--set",
            "cosignMode=keypair",
            "--upload-artifact",
            &upload,
            "--list-artifacts",
            "--output",
            "json",
        ],
        &env,
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(stdout.contains("\"ready\": true"), "{stdout}");
    // Clearing the only key of a keypair configuration is refused.
    let clear = run(
        &[
            "vex",
            "providers",
            "configure",
            p,
            "--clear-artifact",
            "cosignKeys",
        ],
        &env,
    );
    assert_eq!(clear.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&clear.stderr).contains("PROVIDER_CONFIG_MISSING_COSIGN_KEY"));
    let show = run(&["vex", "providers", "show", p], &env);
    assert!(show.status.success());
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("cosignKeys\tlist<artifactRef>\tfalse\t[\"") && text.contains("ready: true"),
        "{text}"
    );
    python(&server, &token, "after");
}
