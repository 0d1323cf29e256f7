//! The throwaway Postgres cluster: it answers over TCP with SCRAM
//! passwords, stops and restarts with its data, and leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use stella_testkit::postgres::Cluster;

fn psql_tcp(url: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .unwrap()
}

#[test]
fn cluster_serves_over_tcp_restarts_with_its_data_and_is_removed_on_drop() {
    let cluster = Cluster::start().unwrap();
    let db = cluster.stella_database("kit").unwrap();
    let out = psql_tcp(
        &db.owner_url,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (42); SELECT current_user, x FROM t",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kit_owner|42");
    // Passwords are checked (SCRAM over TCP), not trusted.
    let wrong = db.owner_url.replace("stella-test-pw", "wrong");
    assert!(!psql_tcp(&wrong, "SELECT 1").status.success());
    // The service role is no superuser and owns nothing.
    let out = psql_tcp(
        &db.service_url,
        "SELECT rolsuper, pg_has_role('kit_svc', 'stella_app', 'MEMBER') FROM pg_roles WHERE rolname = current_user",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "f|t");

    cluster.stop().unwrap();
    assert!(!psql_tcp(&db.owner_url, "SELECT 1").status.success());
    cluster.restart().unwrap();
    let out = psql_tcp(&db.owner_url, "SELECT x FROM t");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");

    let dir = cluster.dir().to_path_buf();
    let url = db.owner_url.clone();
    drop(cluster);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        !psql_tcp(&url, "SELECT 1").status.success(),
        "still running"
    );
}
