//! `PolicyRepository` on Postgres (a real throwaway cluster, provisioned as
//! docs/service.md says, the service connecting as the row-level-security
//! bound role): revisions and report keys stay in their tenant, exactly
//! one revision is active per tenant, and a new report key retires only its
//! own tenant's current key. (That both tables have forced row-level
//! security is checked by tests/postgres.rs for every tenant table.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_store::{
    PolicyRepository, PolicyRevisionRecord, ReportKeyRecord, Store, StoreError, TenantContext,
};
use stella_testkit::postgres::{Cluster, StellaDatabase};

async fn fresh() -> (Cluster, StellaDatabase, Store) {
    let cluster = Cluster::start().unwrap();
    let db = cluster.stella_database("stella").unwrap();
    let owner = Store::open(&db.owner_url).await.unwrap();
    assert!(owner.migrate().await.unwrap().is_current());
    owner.close().await;
    let store = Store::open(&db.service_url).await.unwrap();
    store.check_service_role().await.unwrap();
    (cluster, db, store)
}

fn revision(id: &str, body: &str) -> PolicyRevisionRecord {
    PolicyRevisionRecord {
        revision_id: id.into(),
        policy_digest: format!("sha256:{id}"),
        canonical: body.as_bytes().to_vec(),
        created_at: "2026-01-01T00:00:00Z".into(),
        created_by: "admin".into(),
        active: false,
    }
}

fn key(kid: &str, at: &str) -> ReportKeyRecord {
    ReportKeyRecord {
        kid: kid.into(),
        algorithm: "ed25519".into(),
        public_pem: format!("PEM {kid}"),
        created_at: at.into(),
        retired_at: None,
    }
}

#[tokio::test]
async fn policy_revisions_and_report_keys_stay_in_their_tenant_on_postgres() {
    let (_c, _db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "ca");
    let b = TenantContext::from_verified_identity("b", "cb");
    s.insert_policy_revision(&a, &revision("r1", "{\"version\":1}"))
        .await
        .unwrap();
    s.insert_policy_revision(&a, &revision("r2", "{\"version\":2}"))
        .await
        .unwrap();
    assert!(matches!(
        s.insert_policy_revision(&a, &revision("r1", "{}")).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(s.get_policy_revision(&a, None).await.unwrap().is_none());
    let at = "2026-01-02T00:00:00Z";
    assert!(s.activate_policy_revision(&a, "r1", at).await.unwrap());
    assert!(s.activate_policy_revision(&a, "r2", at).await.unwrap());
    let active = s.get_policy_revision(&a, None).await.unwrap().unwrap();
    assert_eq!(
        (active.revision_id.as_str(), active.canonical.as_slice()),
        ("r2", b"{\"version\":2}".as_slice())
    );
    assert!(
        !s.get_policy_revision(&a, Some("r1"))
            .await
            .unwrap()
            .unwrap()
            .active
    );
    // Tenant b sees none of a's revisions and cannot activate them.
    assert!(
        s.get_policy_revision(&b, Some("r1"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.get_policy_revision(&b, None).await.unwrap().is_none());
    assert!(!s.activate_policy_revision(&b, "r2", at).await.unwrap());
    assert_eq!(
        s.get_policy_revision(&a, None)
            .await
            .unwrap()
            .unwrap()
            .revision_id,
        "r2",
        "b's attempt changed nothing"
    );
    // b's own revision with the same id is its own row.
    s.insert_policy_revision(&b, &revision("r1", "{\"b\":1}"))
        .await
        .unwrap();
    assert!(s.activate_policy_revision(&b, "r1", at).await.unwrap());
    assert_eq!(
        s.get_policy_revision(&a, None)
            .await
            .unwrap()
            .unwrap()
            .revision_id,
        "r2"
    );

    // Report keys: rotating in a retires a's previous key only.
    s.add_report_key(&a, &key("k1", "2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    s.add_report_key(&b, &key("kb", "2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    s.add_report_key(&a, &key("k2", "2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    let keys = s.list_report_keys(&a).await.unwrap();
    let kids: Vec<_> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["k2", "k1"]);
    assert_eq!(keys[0].retired_at, None);
    assert!(keys[1].retired_at.is_some());
    let b_keys = s.list_report_keys(&b).await.unwrap();
    assert_eq!(b_keys.len(), 1);
    assert_eq!(
        (b_keys[0].kid.as_str(), &b_keys[0].retired_at),
        ("kb", &None)
    );
    s.close().await;
}
