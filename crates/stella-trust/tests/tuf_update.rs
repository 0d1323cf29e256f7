//! `stella_trust::update` against real TUF repositories made by python-tuf
//! and served over HTTP on 127.0.0.1: the trusted root arrives and is read
//! back offline; root rotation is followed; expired, rolled-back, wrongly
//! signed and tampered metadata are refused and leave the cache as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/tuf_fixture.rs"]
mod tuf_fixture;

use std::path::Path;
use std::time::Duration;

use stella_trust::{
    Mirror, StartingRoot, Timeouts, TrustError, TufCache, UpdateRequest, cached_trusted_root,
    update,
};
use tuf_fixture::{TufFixture, production_root, staging_root};

const NOW: i64 = 1_900_000_000;

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        read: Duration::from_secs(20),
        per_file: Duration::from_secs(30),
        total: Duration::from_secs(120),
    }
}

fn request(url: &str, tuf_root: Option<&Path>) -> UpdateRequest {
    UpdateRequest {
        mirror: Mirror::parse(url).unwrap(),
        tuf_root: tuf_root.map(|p| std::fs::read(p).unwrap()),
        now: NOW,
        timeouts: timeouts(),
        extra_ca_pem: None,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fixture serving production.json, and a cache that already holds it.
fn updated_once() -> (TufFixture, tempfile::TempDir, TufCache) {
    let fx = TufFixture::new(&production_root());
    let home = tempfile::tempdir().unwrap();
    let cache = TufCache::at(home.path().join("tuf"));
    rt().block_on(update(&cache, &request(&fx.url, Some(&fx.root_json()))))
        .unwrap();
    (fx, home, cache)
}

/// Every file under the cache, with its bytes: "left exactly as it was".
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Runs an update that must be refused, and checks the cache is untouched.
fn assert_refused(fx: &TufFixture, cache: &TufCache, must_mention: &[&str]) -> String {
    let before = snapshot(cache.dir());
    let err = rt()
        .block_on(update(cache, &request(&fx.url, None)))
        .expect_err("update must be refused");
    assert!(err.is_refusal(), "not a refusal: {err}");
    let msg = err.to_string();
    for word in must_mention {
        assert!(msg.contains(word), "{msg:?} does not mention {word:?}");
    }
    assert_eq!(snapshot(cache.dir()), before, "the cache changed: {msg}");
    let cached = cache.load_selected().unwrap().unwrap();
    assert_eq!(
        cached.trusted_root_json,
        std::fs::read(production_root()).unwrap()
    );
    msg
}

#[test]
fn update_caches_the_trusted_root_and_reads_it_back_offline() {
    let (mut fx, _home, cache) = updated_once();
    let cached = cache.load_selected().unwrap().expect("cached");
    assert_eq!(
        cached.trusted_root_json,
        std::fs::read(production_root()).unwrap()
    );
    assert_eq!(cached.state.mirror, fx.url);
    assert_eq!(cached.state.updated_at, NOW);
    let t = &cached.state.tuf;
    assert_eq!(
        (
            t.root.version,
            t.timestamp.version,
            t.snapshot.version,
            t.targets.version
        ),
        (1, 1, 1, 1)
    );
    // The timestamp (1 day) expires first, then snapshot (7), targets (30).
    assert_eq!(cached.metadata_expires(), t.timestamp.expires);
    assert!(t.timestamp.expires < t.snapshot.expires && t.snapshot.expires < t.targets.expires);

    // Offline: the mirror is gone, the cache still answers, with its age.
    fx.stop();
    let chosen = cached_trusted_root(&cache, NOW + 7200).unwrap();
    assert_eq!(chosen.json, cached.trusted_root_json);
    match chosen.origin {
        stella_trust::TrustedRootOrigin::TufCache {
            mirror,
            age_seconds,
            ..
        } => {
            assert_eq!(mirror, fx.url);
            assert_eq!(age_seconds, 7200);
        }
        other => panic!("unexpected origin {other:?}"),
    }
    assert!(chosen_describes_age(&cache));
}

fn chosen_describes_age(cache: &TufCache) -> bool {
    cached_trusted_root(cache, NOW + 3 * 3600)
        .unwrap()
        .origin
        .describe()
        .contains("updated 3 h ago")
}

#[test]
fn a_later_update_starts_from_the_cached_root_and_follows_rotation() {
    let (fx, _home, cache) = updated_once();
    fx.rotate_root();
    fx.publish(&["--target", staging_root().to_str().unwrap()]);
    let out = rt()
        .block_on(update(&cache, &request(&fx.url, None)))
        .unwrap();
    assert_eq!(out.started_from, StartingRoot::Cached);
    let t = &out.cached.state.tuf;
    assert_eq!(
        (t.root.version, t.targets.version, t.timestamp.version),
        (2, 2, 2)
    );
    let cached = cache.load_selected().unwrap().unwrap();
    assert_eq!(
        cached.trusted_root_json,
        std::fs::read(staging_root()).unwrap()
    );
    // Only the live generation is left behind.
    let gens: Vec<_> = std::fs::read_dir(cached.dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("gen-") || n.starts_with("tmp-"))
        .collect();
    assert_eq!(gens.len(), 1, "{gens:?}");
}

#[test]
fn expired_timestamp_is_refused() {
    let (fx, _home, cache) = updated_once();
    fx.publish(&["--expire", "timestamp"]);
    assert_refused(&fx, &cache, &["timestamp", "expired"]);
}

#[test]
fn expired_snapshot_is_refused() {
    let (fx, _home, cache) = updated_once();
    fx.publish(&["--expire", "snapshot"]);
    assert_refused(&fx, &cache, &["snapshot", "expired"]);
}

#[test]
fn rolled_back_timestamp_is_refused() {
    let (fx, _home, cache) = updated_once();
    fx.publish(&[]);
    rt().block_on(update(&cache, &request(&fx.url, None)))
        .unwrap();
    let v2 = cache.load_selected().unwrap().unwrap();
    assert_eq!(v2.state.tuf.timestamp.version, 2);
    // A validly signed, unexpired timestamp with a lower version.
    fx.publish(&["--timestamp-version", "1"]);
    let before = snapshot(cache.dir());
    let err = rt()
        .block_on(update(&cache, &request(&fx.url, None)))
        .expect_err("rollback must be refused");
    assert!(err.is_refusal(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("version 1 of timestamp"), "{msg}");
    assert!(msg.contains("version 2"), "{msg}");
    assert_eq!(snapshot(cache.dir()), before);
}

#[test]
fn rollback_is_caught_even_when_the_root_is_given_again() {
    let (fx, _home, cache) = updated_once();
    fx.publish(&[]);
    rt().block_on(update(&cache, &request(&fx.url, None)))
        .unwrap();
    fx.publish(&["--timestamp-version", "1"]);
    let err = rt()
        .block_on(update(&cache, &request(&fx.url, Some(&fx.root_json()))))
        .expect_err("rollback must be refused");
    assert!(
        err.is_refusal() && err.to_string().contains("timestamp"),
        "{err}"
    );
}

#[test]
fn timestamp_signed_by_an_unknown_key_is_refused() {
    let (fx, _home, cache) = updated_once();
    fx.publish(&["--wrong-key", "timestamp"]);
    assert_refused(&fx, &cache, &["timestamp"]);
}

#[test]
fn targets_signed_by_an_unknown_key_are_refused() {
    let (fx, _home, cache) = updated_once();
    fx.publish(&[
        "--target",
        staging_root().to_str().unwrap(),
        "--wrong-key",
        "targets",
    ]);
    assert_refused(&fx, &cache, &["targets"]);
}

#[test]
fn a_tampered_target_is_refused() {
    let (fx, _home, cache) = updated_once();
    fx.publish(&[]);
    for f in fx.target_files() {
        std::fs::write(&f, std::fs::read(staging_root()).unwrap()).unwrap();
    }
    assert_refused(&fx, &cache, &[]);
}

#[test]
fn an_unreachable_mirror_is_a_network_error_and_keeps_the_cache() {
    let (mut fx, _home, cache) = updated_once();
    fx.stop();
    let before = snapshot(cache.dir());
    let err = rt()
        .block_on(update(&cache, &request(&fx.url, None)))
        .expect_err("nothing to fetch from");
    assert!(matches!(err, TrustError::Network { .. }), "{err}");
    assert!(!err.is_refusal());
    assert_eq!(snapshot(cache.dir()), before);
}

#[test]
fn a_file_url_mirror_works_too() {
    let fx = TufFixture::new(&production_root());
    let home = tempfile::tempdir().unwrap();
    let cache = TufCache::at(home.path().join("tuf"));
    let url = url_of_dir(&fx.dir.path().join("repo"));
    let out = rt()
        .block_on(update(&cache, &request(&url, Some(&fx.root_json()))))
        .unwrap();
    assert_eq!(out.started_from, StartingRoot::Given);
    assert_eq!(
        out.cached.trusted_root_json,
        std::fs::read(production_root()).unwrap()
    );
}

fn url_of_dir(p: &Path) -> String {
    format!("file://{}", p.display())
}

#[test]
fn first_update_without_a_root_says_to_give_one() {
    let home = tempfile::tempdir().unwrap();
    let cache = TufCache::at(home.path().join("tuf"));
    // With the embedded root (the default build) the public-good mirror has
    // a starting root, so only a build without it refuses there.
    let mut mirrors = vec!["http://127.0.0.1:9/"];
    if stella_trust::embedded_public_good_root().is_none() {
        mirrors.push(stella_trust::PUBLIC_GOOD_MIRROR);
    }
    for url in mirrors {
        let mut req = request(url, None);
        req.mirror = Mirror::parse(url).unwrap();
        let err = rt().block_on(update(&cache, &req)).unwrap_err();
        assert!(matches!(err, TrustError::NoStartingRoot { .. }), "{err}");
        // The library names no flag; the CLI adds "give --tuf-root".
        assert!(
            err.to_string().contains("no TUF root.json to start from"),
            "{err}"
        );
    }
    if stella_trust::embedded_public_good_root().is_none() {
        let err = rt()
            .block_on(update(
                &cache,
                &request(stella_trust::PUBLIC_GOOD_MIRROR, None),
            ))
            .unwrap_err();
        assert!(err.to_string().contains("does not embed"), "{err}");
    }
    assert!(cache.load_selected().unwrap().is_none());
}

#[test]
fn a_root_that_does_not_sign_itself_is_refused() {
    let fx = TufFixture::new(&production_root());
    let home = tempfile::tempdir().unwrap();
    let cache = TufCache::at(home.path().join("tuf"));
    let mut root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.root_json()).unwrap()).unwrap();
    root["signed"]["expires"] = serde_json::json!("2099-01-01T00:00:00Z");
    let forged = fx.dir.path().join("forged-root.json");
    std::fs::write(&forged, serde_json::to_vec(&root).unwrap()).unwrap();
    let err = rt()
        .block_on(update(&cache, &request(&fx.url, Some(&forged))))
        .unwrap_err();
    assert!(err.is_refusal(), "{err}");
    assert!(cache.load_selected().unwrap().is_none());
}

#[test]
fn concurrent_updates_leave_one_consistent_cache() {
    let (fx, _home, cache) = updated_once();
    fx.publish(&["--target", staging_root().to_str().unwrap()]);
    let results = rt().block_on(async {
        let reqs: Vec<_> = (0..4).map(|_| request(&fx.url, None)).collect();
        let futs = reqs.iter().map(|r| update(&cache, r));
        futures_util::future::join_all(futs).await
    });
    for r in &results {
        assert!(r.is_ok(), "{:?}", r.as_ref().err());
    }
    let cached = cache.load_selected().unwrap().unwrap();
    assert_eq!(
        cached.trusted_root_json,
        std::fs::read(staging_root()).unwrap()
    );
    assert_eq!(cached.state.tuf.targets.version, 2);
    let mirror_dir = cached.dir.parent().unwrap();
    let staging_left = std::fs::read_dir(mirror_dir)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_str().unwrap().starts_with("tmp-")
        })
        .count();
    assert_eq!(staging_left, 0);
}

#[test]
fn expired_metadata_still_verifies_offline_but_says_to_update() {
    let (_fx, _home, cache) = updated_once();
    let cached = cache.load_selected().unwrap().unwrap();
    let later = cached.metadata_expires() + 1;
    let chosen = cached_trusted_root(&cache, later).unwrap();
    match &chosen.origin {
        stella_trust::TrustedRootOrigin::TufCache {
            metadata_expired, ..
        } => assert!(*metadata_expired),
        other => panic!("unexpected origin {other:?}"),
    }
    assert!(
        chosen
            .origin
            .describe()
            .contains("run `stella trust update`")
    );
    let fresh = cached_trusted_root(&cache, cached.metadata_expires() - 10).unwrap();
    assert!(!fresh.origin.describe().contains("expired"));
}

#[cfg(unix)]
#[test]
fn the_cache_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_fx, _home, cache) = updated_once();
    let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
}

#[test]
fn endless_metadata_is_cut_off() {
    let (fx, _home, cache) = updated_once();
    // A 2 MiB "timestamp.json": over tough's 1 MiB timestamp limit.
    let ts = fx.dir.path().join("repo/timestamp.json");
    std::fs::write(&ts, vec![b' '; 2 * 1024 * 1024]).unwrap();
    let before = snapshot(cache.dir());
    let err = rt()
        .block_on(update(&cache, &request(&fx.url, None)))
        .unwrap_err();
    assert!(err.to_string().contains("Maximum size"), "{err}");
    assert_eq!(snapshot(cache.dir()), before);
}

#[test]
fn a_mirror_that_never_answers_hits_the_deadline() {
    let (fx, _home, cache) = updated_once();
    // Accepts connections and never writes a byte.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(16) {
            held.push(conn);
        }
    });
    let mut req = request(&url, Some(&fx.root_json()));
    req.timeouts = Timeouts {
        connect: Duration::from_secs(2),
        read: Duration::from_secs(1),
        per_file: Duration::from_secs(2),
        total: Duration::from_secs(10),
    };
    let err = rt().block_on(update(&cache, &req)).unwrap_err();
    assert!(
        matches!(err, TrustError::Network { .. } | TrustError::Timeout { .. }),
        "{err}"
    );
    // The other mirror's cache is untouched and still selected.
    let cached = cache.load_selected().unwrap().unwrap();
    assert_eq!(
        cached.trusted_root_json,
        std::fs::read(production_root()).unwrap()
    );
}

#[test]
fn a_starting_root_that_is_not_json_is_unusable_input() {
    let fx = TufFixture::new(&production_root());
    let home = tempfile::tempdir().unwrap();
    let cache = TufCache::at(home.path().join("tuf"));
    let mut req = request(&fx.url, None);
    req.tuf_root = Some(b"not json".to_vec());
    let err = rt().block_on(update(&cache, &req)).unwrap_err();
    assert!(
        matches!(err, TrustError::UnusableStartingRoot { .. }),
        "{err}"
    );
    assert!(!err.is_refusal());
}

#[test]
fn a_cached_root_changed_on_disk_is_reported_not_used() {
    let (_fx, _home, cache) = updated_once();
    let cached = cache.load_selected().unwrap().unwrap();
    std::fs::write(
        cached.dir.join("trusted_root.json"),
        std::fs::read(staging_root()).unwrap(),
    )
    .unwrap();
    let err = cached_trusted_root(&cache, NOW).unwrap_err();
    assert!(matches!(err, TrustError::DamagedCache { .. }), "{err}");
    assert!(err.to_string().contains("update it again"), "{err}");
}
