//! Writes that meet a full database (`SQLITE_FULL`), then the store going
//! on. The database is made full with SQLite's own page limit
//! (`PRAGMA max_page_count`, per connection): the pager then refuses new
//! pages with `SQLITE_FULL`, the error a full disk gives, through the same
//! code path. The pool has one connection, so a connection left in a bad
//! state after the error is the one every later write gets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::SqliteStore;
use crate::policy::PolicyRevisionRecord;
use crate::vex::{VexDocumentRecord, VexStatementQuery, VexStatementRecord};
use crate::{PoolSettings, StoreError, TenantContext};

async fn one_connection_store(dir: &tempfile::TempDir) -> SqliteStore {
    let settings = PoolSettings {
        max_connections: Some(1),
        acquire_timeout: None,
    };
    let store = SqliteStore::open(&url(dir), &settings).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("full.db").display())
}

/// Lets the pool's connection grow the database by `pages` at most.
async fn fill_after(s: &SqliteStore, pages: i64) {
    let count: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    sqlx::query(&format!("PRAGMA max_page_count = {}", count + pages))
        .execute(&s.pool)
        .await
        .unwrap();
}

/// Space is back: the default limit on whatever connection the pool holds.
async fn free_space(s: &SqliteStore) {
    sqlx::query("PRAGMA max_page_count = 4294967294")
        .execute(&s.pool)
        .await
        .unwrap();
}

fn revision(id: &str, len: usize) -> PolicyRevisionRecord {
    PolicyRevisionRecord {
        revision_id: id.into(),
        policy_digest: format!("sha256:{id}"),
        canonical: vec![b'x'; len],
        created_at: "2026-01-01T00:00:00Z".into(),
        created_by: "admin".into(),
        active: false,
    }
}

fn document(id: &str) -> VexDocumentRecord {
    VexDocumentRecord {
        provider_id: "excititor:oci-openvex".into(),
        issuer: "key sha256:aa".into(),
        document_id: id.into(),
        document_version: 1,
        document_timestamp: "2024-01-01T00:00:00Z".into(),
        author: "Vendor".into(),
        signed: true,
        image_digest: "sha256:11".into(),
        evidence_digest: format!("sha256:{id}"),
        ingested_at: "2024-01-02T00:00:00Z".into(),
    }
}

fn statements(n: usize) -> Vec<VexStatementRecord> {
    (0..n)
        .map(|i| VexStatementRecord {
            digest: format!("sha256:{i:064}"),
            vulnerability: format!("CVE-2024-{i:05}"),
            status: "not_affected".into(),
            product_keys: vec![format!("pkg:generic/p{i}@1")],
            vuln_keys: vec![format!("CVE-2024-{i:05}")],
            statement_json: format!(r#"{{"status":"not_affected","pad":"{}"}}"#, "y".repeat(200)),
        })
        .collect()
}

async fn count(s: &SqliteStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&s.pool).await.unwrap()
}

fn assert_full(result: Result<impl std::fmt::Debug, StoreError>, what: &str) {
    match result {
        Err(e) if e.is_storage_full() => {
            assert!(e.to_string().contains("full"), "{what}: {e}");
        }
        other => panic!("{what}: expected SQLITE_FULL, got {other:?}"),
    }
}

/// After a full database refused a write, the same store: refuses a
/// duplicate cleanly, commits the next write for real (another store on
/// the file sees it and can write too, so no transaction is left open
/// holding the write lock), and shows nothing of the refused write.
async fn store_keeps_working(s: &SqliteStore, dir: &tempfile::TempDir, a: &TenantContext, n: u32) {
    let refused = s.insert_policy_revision(a, &revision("base", 10)).await;
    assert!(
        matches!(refused, Err(StoreError::AlreadyExists(_))),
        "{refused:?}"
    );
    let next = format!("after-{n}");
    s.insert_policy_revision(a, &revision(&next, 10))
        .await
        .unwrap();
    assert!(s.activate_policy_revision(a, &next, "t").await.unwrap());

    let other = SqliteStore::open(&url(dir), &PoolSettings::default())
        .await
        .unwrap();
    let seen = other.get_policy_revision(a, None).await.unwrap();
    assert_eq!(
        seen.map(|r| r.revision_id),
        Some(next.clone()),
        "the write after the full disk is committed"
    );
    let from_other = format!("other-{n}");
    other
        .insert_policy_revision(a, &revision(&from_other, 10))
        .await
        .unwrap();
    other.close().await;
    assert!(
        s.get_policy_revision(a, Some(&from_other))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn writes_that_fill_the_database_fail_cleanly_and_the_store_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let s = one_connection_store(&dir).await;
    let a = TenantContext::from_verified_identity("a", "admin");
    s.insert_policy_revision(&a, &revision("base", 10))
        .await
        .unwrap();

    // A policy import whose 256 KiB revision does not fit.
    fill_after(&s, 8).await;
    assert_full(
        s.insert_policy_revision(&a, &revision("big", 256 * 1024))
            .await,
        "policy import",
    );
    free_space(&s).await;
    store_keeps_working(&s, &dir, &a, 1).await;
    assert!(
        s.get_policy_revision(&a, Some("big"))
            .await
            .unwrap()
            .is_none()
    );

    // A VEX ingest whose 2,000 statements do not fit.
    fill_after(&s, 8).await;
    assert_full(
        s.ingest_vex_document(&a, &document("doc-1"), &statements(2000))
            .await,
        "VEX ingest",
    );
    free_space(&s).await;
    store_keeps_working(&s, &dir, &a, 2).await;
    let all = VexStatementQuery {
        limit: 100,
        ..Default::default()
    };
    assert!(s.query_vex_statements(&a, &all).await.unwrap().is_empty());
    assert_eq!(count(&s, "SELECT COUNT(*) FROM vex_documents").await, 0);

    // Nothing half-written: the audit log names exactly the writes that
    // succeeded (base, after-N imported and activated, other-N).
    let audited = count(
        &s,
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('policy.import', 'policy.activate')",
    )
    .await;
    assert_eq!(audited, 1 + 2 * 3);
    assert_eq!(count(&s, "SELECT COUNT(*) FROM policy_revisions").await, 5);

    // Once space is back the refused writes go through.
    s.insert_policy_revision(&a, &revision("big", 256 * 1024))
        .await
        .unwrap();
    s.ingest_vex_document(&a, &document("doc-1"), &statements(2000))
        .await
        .unwrap();
    assert_eq!(count(&s, "SELECT COUNT(*) FROM vex_statements").await, 2000);
}
