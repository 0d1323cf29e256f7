//! `stella trust update|show` and `verify blob` on the cached trusted root,
//! through the built binary, against a TUF repository made by python-tuf
//! and served over HTTP on 127.0.0.1 (fixture shared with stella-trust's
//! tests). Each test has its own cache (`STELLA_CACHE_DIR`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../stella-trust/tests/support/tuf_fixture.rs"]
mod tuf_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tuf_fixture::{SIGSTORE_CONF, TufFixture, production_root, staging_root};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn stella(cache: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_stella"))
        .args(args)
        .env("STELLA_CACHE_DIR", cache)
        .env_remove("XDG_CACHE_HOME")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} / {}", r.stdout, r.stderr))
}

fn update(cache: &Path, fx: &TufFixture, root: bool) -> Run {
    let root_json = fx.root_json();
    let mut a = vec![
        "trust",
        "update",
        "--tuf-mirror",
        &fx.url,
        "--output",
        "json",
    ];
    if root {
        a.extend(["--tuf-root", root_json.to_str().unwrap()]);
    }
    stella(cache, &a)
}

/// The first conformance case that verifies against the production root
/// with a certificate identity: (bundle, identity, issuer, artifact).
fn passing_case() -> (PathBuf, String, String, PathBuf) {
    let conf = Path::new(SIGSTORE_CONF);
    let cases: Value =
        serde_json::from_slice(&std::fs::read(conf.join("cases.json")).unwrap()).unwrap();
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["expected"] == "PASS"
                && c["key"].is_null()
                && c["trusted_root"] == "trusted_root/production.json"
                && c["trusted_root_is_custom"] == false
        })
        .expect("a passing production case");
    let s = |k: &str| case[k].as_str().unwrap().to_string();
    (
        conf.join(s("bundle")),
        s("certificate_identity"),
        s("certificate_oidc_issuer"),
        conf.join(s("artifact")),
    )
}

fn verify_blob(cache: &Path, extra: &[&str]) -> Run {
    let (bundle, id, iss, artifact) = passing_case();
    let mut a = vec![
        "verify",
        "blob",
        "--bundle",
        bundle.to_str().unwrap(),
        "--certificate-identity",
        &id,
        "--certificate-oidc-issuer",
        &iss,
    ];
    a.extend_from_slice(extra);
    a.push(artifact.to_str().unwrap());
    stella(cache, &a)
}

#[test]
fn update_then_show_then_verify_offline_from_the_cache() {
    let mut fx = TufFixture::new(&production_root());
    let cache = tempfile::tempdir().unwrap();

    let up = update(cache.path(), &fx, true);
    assert_eq!(up.code, 0, "{} {}", up.stdout, up.stderr);
    let v = json(&up);
    assert_eq!(v["updated"], true);
    assert_eq!(v["startedFrom"], "given");
    assert_eq!(v["mirror"], fx.url.as_str());
    assert_eq!(v["tuf"]["root"]["version"], 1);

    // show: what is trusted, counted from the production root itself.
    let show = stella(cache.path(), &["trust", "show", "--output", "json"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let s = json(&show);
    let prod: Value = serde_json::from_slice(&std::fs::read(production_root()).unwrap()).unwrap();
    for key in [
        "certificateAuthorities",
        "tlogs",
        "ctlogs",
        "timestampAuthorities",
    ] {
        assert_eq!(
            s["trustedRoot"][key].as_array().unwrap().len(),
            prod[key].as_array().map_or(0, Vec::len),
            "{key}"
        );
    }
    assert_eq!(s["mirror"], fx.url.as_str());
    assert_eq!(s["metadataExpired"], false);
    assert!(s["ageSeconds"].as_i64().unwrap() >= 0);
    let text = stella(cache.path(), &["trust", "show"]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("Transparency logs:"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("rekor.sigstore.dev"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains(&fx.url), "{}", text.stdout);

    // verify blob without --trusted-root: the cache, offline (mirror gone).
    fx.stop();
    let ok = verify_blob(cache.path(), &["--output", "json"]);
    assert_eq!(ok.code, 0, "{} {}", ok.stdout, ok.stderr);
    let r = json(&ok);
    assert_eq!(r["verified"], true);
    assert_eq!(r["trustedRoot"]["source"], "tufCache");
    assert_eq!(r["trustedRoot"]["mirror"], fx.url.as_str());
    assert!(r["trustedRoot"]["ageSeconds"].as_i64().is_some());
    let ok_text = verify_blob(cache.path(), &[]);
    assert_eq!(ok_text.code, 0, "{}", ok_text.stderr);
    assert!(
        ok_text.stdout.contains(&format!("TUF cache of {}", fx.url))
            && ok_text.stdout.contains(" ago"),
        "{}",
        ok_text.stdout
    );

    // --trusted-root still overrides the cache: staging does not verify it.
    let staging = staging_root();
    let over = verify_blob(
        cache.path(),
        &[
            "--trusted-root",
            staging.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(over.code, 1, "{} {}", over.stdout, over.stderr);
    assert_eq!(json(&over)["trustedRoot"]["source"], "file");
}

#[test]
fn refused_updates_exit_1_and_keep_the_cache() {
    let fx = TufFixture::new(&production_root());
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(update(cache.path(), &fx, true).code, 0);
    let before = stella(cache.path(), &["trust", "show", "--output", "json"]).stdout;

    for (args, words) in [
        (vec!["--expire", "timestamp"], vec!["timestamp", "expired"]),
        (vec!["--expire", "snapshot"], vec!["snapshot", "expired"]),
        (vec!["--wrong-key", "timestamp"], vec!["timestamp"]),
        (
            vec!["--timestamp-version", "1"],
            vec!["version 1 of timestamp"],
        ),
    ] {
        // A good publish first, so the rollback case has a v2 to roll back from.
        fx.publish(&[]);
        let good = update(cache.path(), &fx, false);
        assert_eq!(good.code, 0, "{}", good.stderr);
        let good_state = stella(cache.path(), &["trust", "show", "--output", "json"]).stdout;

        fx.publish(&args);
        let r = update(cache.path(), &fx, false);
        assert_eq!(r.code, 1, "{args:?}: {} {}", r.stdout, r.stderr);
        let reason = json(&r)["reason"].as_str().unwrap().to_string();
        for w in &words {
            assert!(reason.contains(w), "{args:?}: {reason}");
        }
        assert!(r.stderr.contains("left as it was"), "{}", r.stderr);
        let after = stella(cache.path(), &["trust", "show", "--output", "json"]).stdout;
        assert_eq!(
            strip_age(&after),
            strip_age(&good_state),
            "{args:?} changed the cache"
        );
        assert_eq!(verify_blob(cache.path(), &[]).code, 0);
    }
    assert_ne!(strip_age(&before), "");
}

/// `trust show` JSON without the fields that move with the clock.
fn strip_age(show_json: &str) -> String {
    let mut v: Value = serde_json::from_str(show_json).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("ageSeconds");
    o.remove("metadataExpired");
    v.to_string()
}

#[test]
fn without_cache_or_root_the_commands_say_what_to_do() {
    let cache = tempfile::tempdir().unwrap();
    let v = verify_blob(cache.path(), &[]);
    assert_eq!(v.code, 2, "{}", v.stderr);
    assert!(v.stderr.contains("stella trust update"), "{}", v.stderr);

    let s = stella(cache.path(), &["trust", "show"]);
    assert_eq!(s.code, 2);
    assert!(s.stderr.contains("stella trust update"), "{}", s.stderr);

    // The default mirror with nothing cached and no root built in: no
    // network call is made, the error names --tuf-root.
    if cfg!(feature = "embedded-public-good-root") {
        return;
    }
    let u = stella(cache.path(), &["trust", "update"]);
    assert_eq!(u.code, 2, "{}", u.stderr);
    assert!(u.stderr.contains("--tuf-root"), "{}", u.stderr);
    assert!(
        u.stderr.contains("tuf-repo-cdn.sigstore.dev"),
        "{}",
        u.stderr
    );
}

#[test]
fn an_https_mirror_behind_a_private_ca_needs_ca_file() {
    let tls_dir = tempfile::tempdir().unwrap();
    let tls = stella_testkit::tls::generate_server_tls(tls_dir.path()).unwrap();
    let fx = TufFixture::new_https(&production_root(), &tls.cert_pem, &tls.key_pem);
    assert!(fx.url.starts_with("https://"));
    let cache = tempfile::tempdir().unwrap();

    // Not trusted by the system roots: a network error, nothing cached.
    let r = update(cache.path(), &fx, true);
    assert_eq!(r.code, 2, "{} {}", r.stdout, r.stderr);
    assert_eq!(stella(cache.path(), &["trust", "show"]).code, 2);

    let root = fx.root_json();
    let ok = stella(
        cache.path(),
        &[
            "trust",
            "update",
            "--tuf-mirror",
            &fx.url,
            "--tuf-root",
            root.to_str().unwrap(),
            "--ca-file",
            tls.ca_pem.to_str().unwrap(),
        ],
    );
    assert_eq!(ok.code, 0, "{} {}", ok.stdout, ok.stderr);
    assert_eq!(verify_blob(cache.path(), &[]).code, 0);
}
