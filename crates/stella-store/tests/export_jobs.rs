//! Export job records (migration 0005) on both backends: a job is visible,
//! listable and updatable only in its own tenant, and the start-up sweep
//! fails every live job of every tenant (and nothing else). SQLite in a
//! temp file; Postgres in a real throwaway cluster opened as the service
//! role (row-level security applies).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_store::{
    ClientRecord, ClientRepository, ExportJobRecord, ExportRepository, Store, TenantContext,
};
use stella_testkit::postgres::Cluster;
use uuid::Uuid;

fn job(status: &str) -> ExportJobRecord {
    ExportJobRecord {
        export_id: Uuid::now_v7(),
        profile: "mirror:full".into(),
        request_json: r#"{"profile":"mirror:full"}"#.into(),
        status: status.into(),
        bytes_done: 0,
        bytes_total: 0,
        entries_done: 0,
        entries_total: 0,
        manifest_digest: None,
        file_path: None,
        file_size: None,
        file_sha256: None,
        reason: String::new(),
        verification_json: None,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        started_at: None,
        finished_at: None,
        created_by: "client-a".into(),
    }
}

async fn client(s: &Store, id: &str, tenant: &str) {
    s.add_client(&ClientRecord {
        client_id: id.into(),
        tenant: tenant.into(),
        scopes: vec!["export.admin".into()],
        secret_hash: "x".into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        revoked_at: None,
    })
    .await
    .unwrap();
}

async fn exercise(s: &Store) {
    client(s, "ca", "a").await;
    client(s, "cb", "b").await;
    let a = TenantContext::from_verified_identity("a", "client-a");
    let b = TenantContext::from_verified_identity("b", "client-b");
    let mut running = job("running");
    let done = job("succeeded");
    let queued_b = job("queued");
    s.insert_export_job(&a, &running).await.unwrap();
    s.insert_export_job(&a, &done).await.unwrap();
    s.insert_export_job(&b, &queued_b).await.unwrap();

    // Tenant b sees none of a's jobs and cannot change them.
    assert!(
        s.get_export_job(&b, running.export_id)
            .await
            .unwrap()
            .is_none()
    );
    let listed_b = s.list_export_jobs(&b, None, 10).await.unwrap();
    assert_eq!(listed_b.len(), 1);
    assert_eq!(listed_b[0].export_id, queued_b.export_id);
    running.bytes_done = 42;
    assert!(!s.update_export_job(&b, &running).await.unwrap());
    assert!(s.update_export_job(&a, &running).await.unwrap());
    assert_eq!(
        s.get_export_job(&a, running.export_id)
            .await
            .unwrap()
            .unwrap(),
        running
    );

    // Pages in creation order.
    let page = s.list_export_jobs(&a, None, 1).await.unwrap();
    assert_eq!(page[0].export_id, running.export_id);
    let next = s
        .list_export_jobs(&a, Some(page[0].export_id), 1)
        .await
        .unwrap();
    assert_eq!(next[0].export_id, done.export_id);

    // The start-up sweep: running (a) and queued (b) fail, succeeded stays.
    let n = s
        .fail_live_export_jobs("interrupted", "2026-01-02T00:00:00.000Z")
        .await
        .unwrap();
    assert_eq!(n, 2);
    let r = s
        .get_export_job(&a, running.export_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.status.as_str(), r.reason.as_str()),
        ("failed", "interrupted")
    );
    let q = s
        .get_export_job(&b, queued_b.export_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.status, "failed");
    let d = s.get_export_job(&a, done.export_id).await.unwrap().unwrap();
    assert_eq!(d.status, "succeeded");
}

#[tokio::test]
async fn export_jobs_stay_in_their_tenant_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("s.db").display());
    let s = Store::open(&url).await.unwrap();
    assert!(s.migrate().await.unwrap().is_current());
    exercise(&s).await;
}

#[tokio::test]
async fn export_jobs_stay_in_their_tenant_on_postgres() {
    let cluster = Cluster::start().unwrap();
    let db = cluster.stella_database("stella").unwrap();
    let owner = Store::open(&db.owner_url).await.unwrap();
    assert!(owner.migrate().await.unwrap().is_current());
    owner.close().await;
    let s = Store::open(&db.service_url).await.unwrap();
    s.check_service_role().await.unwrap();
    exercise(&s).await;
}
