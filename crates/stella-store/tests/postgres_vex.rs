//! `VexRepository` on Postgres (a real throwaway cluster, provisioned as
//! docs/service.md says): ingest is idempotent, a higher version supersedes,
//! tenants never see each other's statements, configurations or runs, and
//! two servers (two pools) racing for a provider's run lease never both
//! get it; a run fingerprint is replaced in place and stays in its tenant;
//! the issuer trust configuration and provider state (migration 0008) are
//! replaced in place and per tenant.
//! (That every VEX table has forced row-level security is checked by
//! tests/postgres.rs for every tenant table.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stella_store::{
    ArtifactQuota, ArtifactRepository, IngestOutcome, NewArtifact, ProviderConfigRecord, Store,
    TenantContext, VexDocumentRecord, VexRepository, VexStatementQuery, VexStatementRecord,
    VexTrustRecord, VexTrustRepository,
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

fn doc(version: i64) -> VexDocumentRecord {
    VexDocumentRecord {
        provider_id: "excititor:oci-openvex".into(),
        issuer: "key sha256:aa".into(),
        document_id: "https://example.com/vex/1".into(),
        document_version: version,
        document_timestamp: "2024-01-01T00:00:00Z".into(),
        author: "Vendor".into(),
        signed: true,
        image_digest: "sha256:11".into(),
        evidence_digest: format!("sha256:e{version}"),
        ingested_at: "2024-01-02T00:00:00Z".into(),
    }
}

fn statement(vuln: &str, status: &str) -> VexStatementRecord {
    VexStatementRecord {
        digest: format!("sha256:{vuln}{status}"),
        vulnerability: vuln.into(),
        status: status.into(),
        product_keys: vec!["oci:sha256:11".into()],
        vuln_keys: vec![vuln.to_ascii_uppercase()],
        statement_json: format!(r#"{{"status":"{status}"}}"#),
    }
}

fn all() -> VexStatementQuery {
    VexStatementQuery {
        limit: 100,
        ..Default::default()
    }
}

#[tokio::test]
async fn vex_statements_are_idempotent_superseded_and_per_tenant_on_postgres() {
    let (_c, _db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "runner");
    let b = TenantContext::from_verified_identity("b", "runner");
    let v1 = [statement("CVE-1", "affected"), statement("CVE-2", "fixed")];
    assert_eq!(
        s.ingest_vex_document(&a, &doc(1), &v1).await.unwrap(),
        IngestOutcome::Inserted
    );
    assert_eq!(
        s.ingest_vex_document(&a, &doc(1), &v1).await.unwrap(),
        IngestOutcome::Unchanged
    );
    assert_eq!(s.query_vex_statements(&a, &all()).await.unwrap().len(), 2);
    assert!(s.query_vex_statements(&b, &all()).await.unwrap().is_empty());
    assert!(
        !s.has_vex_evidence(&b, "excititor:oci-openvex", "sha256:11", "sha256:e1")
            .await
            .unwrap()
    );
    assert_eq!(
        s.ingest_vex_document(&a, &doc(2), &[statement("CVE-1", "fixed")])
            .await
            .unwrap(),
        IngestOutcome::Superseded
    );
    let q = VexStatementQuery {
        product_key: Some("oci:sha256:11".into()),
        vuln_key: Some("CVE-1".into()),
        ..all()
    };
    let rows = s.query_vex_statements(&a, &q).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].document.document_version, 2);
    assert!(rows[0].document.signed);
    // Configurations and their artifact references, per tenant.
    let staged = s
        .insert_artifact(
            &a,
            NewArtifact {
                provider_id: "excititor:oci-openvex".into(),
                mime_type: "application/x-pem-file".into(),
                sha256: "00".repeat(32),
                payload: b"pem".to_vec().into(),
            },
            ArtifactQuota {
                max_count: 10,
                max_bytes: 1 << 20,
            },
        )
        .await
        .unwrap();
    let config = ProviderConfigRecord {
        provider_id: "excititor:oci-openvex".into(),
        values_json: "{}".into(),
        updated_at: "2024-01-01T00:00:00Z".into(),
        updated_by: "t".into(),
    };
    let refs = [("cosignKeys[0]".to_string(), staged.artifact_id)];
    assert!(
        !s.save_provider_config(&b, &config, &refs).await.unwrap(),
        "b cannot reference a's artifact"
    );
    assert!(s.save_provider_config(&a, &config, &refs).await.unwrap());
    assert!(
        s.get_provider_config(&b, "excititor:oci-openvex")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.get_provider_config(&a, "excititor:oci-openvex")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.delete_artifact(&a, "excititor:oci-openvex", staged.artifact_id)
            .await
            .unwrap(),
        stella_store::DeleteOutcome::InUse
    );
}

#[tokio::test]
async fn two_pools_racing_for_the_run_lease_get_it_once() {
    let (_c, db, s1) = fresh().await;
    let s2 = Store::open(&db.service_url).await.unwrap();
    let t = TenantContext::from_verified_identity("a", "runner");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { s1.clone() } else { s2.clone() };
        let ctx = t.clone();
        tasks.spawn(async move {
            store
                .acquire_provider_lease(
                    &ctx,
                    "excititor:oci-openvex",
                    &format!("server-{i}"),
                    100,
                    700,
                )
                .await
                .unwrap()
        });
    }
    let mut winners = 0;
    while let Some(r) = tasks.join_next().await {
        winners += usize::from(r.unwrap());
    }
    assert_eq!(winners, 1);
    // Expired: another server takes over.
    assert!(
        s2.acquire_provider_lease(&t, "excititor:oci-openvex", "late", 701, 900)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_run_fingerprint_round_trips_is_replaced_and_stays_in_its_tenant() {
    let (_cluster, _db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "t");
    let b = TenantContext::from_verified_identity("b", "t");
    let mut run = stella_store::ProviderRunRecord {
        provider_id: "excititor:oci-openvex".into(),
        image: "r/app:v1".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: Some("2026-01-01T00:00:01Z".into()),
        result: "succeeded".into(),
        reason: String::new(),
        counts_json: "{}".into(),
        fingerprint: "first".into(),
    };
    s.record_provider_run(&a, &run).await.unwrap();
    run.fingerprint = "second".into();
    s.record_provider_run(&a, &run).await.unwrap();
    let runs = s.provider_runs(&a, "excititor:oci-openvex").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].fingerprint, "second");
    assert!(
        s.provider_runs(&b, "excititor:oci-openvex")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn trust_configuration_and_provider_state_are_per_tenant_on_postgres() {
    let (_cluster, _db, store) = fresh().await;
    let t1 = TenantContext::from_verified_identity("t1", "admin");
    let t2 = TenantContext::from_verified_identity("t2", "admin");
    assert_eq!(store.get_vex_trust(&t1).await.unwrap(), None);
    let trust = |json: &str| VexTrustRecord {
        trust_json: json.into(),
        updated_at: "2024-01-01T00:00:00Z".into(),
        updated_by: "admin".into(),
    };
    store
        .save_vex_trust(&t1, &trust(r#"{"issuers":[]}"#))
        .await
        .unwrap();
    store
        .save_vex_trust(&t1, &trust(r#"{"defaultWeight":0}"#))
        .await
        .unwrap();
    assert_eq!(
        store.get_vex_trust(&t1).await.unwrap(),
        Some(trust(r#"{"defaultWeight":0}"#))
    );
    assert_eq!(store.get_vex_trust(&t2).await.unwrap(), None);

    let p = "excititor:oci-openvex";
    store
        .save_provider_state(&t1, p, "tuf", "{\"v\":1}", "2024-01-01T00:00:00Z")
        .await
        .unwrap();
    store
        .save_provider_state(&t1, p, "tuf", "{\"v\":2}", "2024-01-02T00:00:00Z")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_provider_state(&t1, p, "tuf")
            .await
            .unwrap()
            .as_deref(),
        Some("{\"v\":2}")
    );
    assert_eq!(store.get_provider_state(&t2, p, "tuf").await.unwrap(), None);
    assert_eq!(
        store.get_provider_state(&t1, p, "other").await.unwrap(),
        None
    );
}
