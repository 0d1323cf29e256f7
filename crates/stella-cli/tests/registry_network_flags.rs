//! The global network flags end to end: `--timeout` stops a whole command
//! that a silent registry would otherwise hold up, and
//! `--no-cross-host-realm` keeps credentials away from a token server on
//! another host.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use stella_testkit::hostile::{HostileServer, Misbehaviour};
use stella_testkit::{DistributionAuth, DistributionConfig, DistributionRegistry};

const STELLA: &str = env!("CARGO_BIN_EXE_stella");

fn stella(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(STELLA)
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent-stella-test-docker-config")
        .env_remove("STELLA_USERNAME")
        .env_remove("STELLA_TIMEOUT")
        .env_remove("STELLA_NO_CROSS_HOST_REALM")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn timeout_flag_stops_a_command_held_up_by_a_silent_registry() {
    let server = HostileServer::start(Misbehaviour::NeverAnswer).unwrap();
    let image = format!("{}/slow/app:v1", server.host_port());
    let out = stella(
        &[
            "--plain-http",
            "--timeout",
            "2s",
            "evidence",
            "list-referrers",
            &image,
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("did not finish within 2s (--timeout)"),
        "{stderr}"
    );
    assert!(!server.requests().is_empty(), "the registry was asked");
}

#[test]
fn timeout_flag_refuses_a_bad_duration() {
    let out = stella(
        &["--timeout", "soon", "evidence", "list-referrers", "x/y:z"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a duration"), "{stderr}");
}

#[test]
fn no_cross_host_realm_flag_keeps_credentials_from_another_host() {
    let reg = DistributionRegistry::start(DistributionConfig {
        auth: DistributionAuth::Token {
            user: "alice".into(),
            password: "wonderland".into(),
        },
        ..DistributionConfig::default()
    })
    .unwrap();
    let tokens = reg.token_server().unwrap();
    let image = format!("{}/realm/app:v1", reg.host_port());
    let out = stella(
        &[
            "--plain-http",
            "--no-cross-host-realm",
            "--username",
            "alice",
            "--password-stdin",
            "evidence",
            "list-referrers",
            &image,
        ],
        Some("wonderland\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--no-cross-host-realm"), "{stderr}");
    assert!(!stderr.contains("wonderland"), "{stderr}");
    assert_eq!(tokens.request_count(), 0);
}
