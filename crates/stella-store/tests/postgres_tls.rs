//! TLS to Postgres (sqlx's rustls, aws-lc-rs provider): a throwaway
//! cluster (`stella_testkit::postgres::Cluster`) switched to `ssl = on`
//! with a server certificate from a throwaway CA made by the `openssl` CLI.
//! `sslmode=verify-full` with that CA connects over TLS; with another CA it
//! fails with a certificate error and opens nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use stella_store::{Store, StoreError};
use stella_testkit::postgres::Cluster;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `<name>.crt`/`<name>.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &crt,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// `server.crt`/`server.key` for 127.0.0.1 only, signed by `ca`.
fn make_server_cert(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
}

/// Turns TLS on in `cluster` with `server.crt`/`server.key` from `certs`
/// (copied into the cluster's dir, owned by its user, key 0600).
fn enable_ssl(cluster: &Cluster, certs: &Path) {
    let meta = std::fs::metadata(cluster.dir()).unwrap();
    for name in ["server.crt", "server.key"] {
        let to = cluster.dir().join(name);
        std::fs::copy(certs.join(name), &to).unwrap();
        std::os::unix::fs::chown(&to, Some(meta.uid()), Some(meta.gid())).unwrap();
        let mode = if name.ends_with(".key") { 0o600 } else { 0o644 };
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    let dir = cluster.dir().display().to_string();
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{dir}/server.crt'"),
        format!("ALTER SYSTEM SET ssl_key_file = '{dir}/server.key'"),
        "ALTER SYSTEM SET ssl = on".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        cluster.psql("postgres", &sql).unwrap();
    }
}

/// Whether the connection at `url` runs over TLS, as the server sees it.
async fn server_says_tls(url: &str) -> bool {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    ssl
}

#[tokio::test]
async fn verify_full_with_the_right_ca_connects_and_with_a_wrong_ca_fails() {
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "ca");
    make_ca(certs.path(), "other-ca");
    make_server_cert(certs.path(), "ca");
    let cluster = Cluster::start().unwrap();
    let db = cluster.stella_database("stella").unwrap();
    enable_ssl(&cluster, certs.path());
    let ca = certs.path().join("ca.crt");
    let other = certs.path().join("other-ca.crt");

    let plain = format!("{}?sslmode=disable", db.owner_url);
    assert!(!server_says_tls(&plain).await, "sslmode=disable is plain");
    let require = format!("{}?sslmode=require", db.owner_url);
    assert!(server_says_tls(&require).await, "sslmode=require uses TLS");

    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.owner_url,
        ca.display()
    );
    assert!(server_says_tls(&verified).await);
    let store = Store::open(&verified).await.unwrap();
    assert!(store.migrate().await.unwrap().is_current());
    store.ping().await.unwrap();
    store.close().await;

    let wrong = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.service_url,
        other.display()
    );
    // rustls' verdict reaches the caller (sqlx wraps it as an I/O error).
    let message = refused(&wrong).await;
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(
        !message.contains(stella_testkit::postgres::PASSWORD),
        "{message}"
    );
    // The right CA but a host name the certificate does not name.
    let wrong_host = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.service_url.replace("@127.0.0.1:", "@localhost:"),
        ca.display()
    );
    let message = refused(&wrong_host).await;
    assert!(message.contains("not valid for name"), "{message}");
}

/// The error of opening `url`, which must fail on the server certificate.
async fn refused(url: &str) -> String {
    match Store::open(url).await {
        Err(e @ StoreError::Database(_)) => {
            let message = e.to_string();
            assert!(message.contains("certificate"), "{message}");
            message
        }
        Err(other) => panic!("expected a certificate error, got {other:?}"),
        Ok(_) => panic!("a server certificate that does not verify was accepted"),
    }
}
