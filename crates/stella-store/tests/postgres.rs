//! The Postgres backend against a real throwaway cluster (Debian
//! `postgresql`, started by `stella_testkit::postgres::Cluster`), provisioned
//! as docs/service.md says: migrations as the owner, the service as a
//! member of `stella_app` that owns nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use stella_store::postgres::PostgresStore;
use stella_store::{
    ArtifactQuota, ArtifactRepository, DeleteOutcome, NewArtifact, Store, StoreError, TenantContext,
};
use stella_testkit::postgres::{Cluster, StellaDatabase};

const BIG: ArtifactQuota = ArtifactQuota {
    max_count: 1000,
    max_bytes: 1 << 30,
};

fn art(provider: &str, len: usize) -> NewArtifact {
    NewArtifact {
        provider_id: provider.into(),
        mime_type: "application/octet-stream".into(),
        sha256: "00".repeat(32),
        payload: vec![7; len].into(),
    }
}

/// A cluster with database `stella`, migrated by its owner; the store is
/// opened as the service role.
async fn fresh() -> (Cluster, StellaDatabase, Store) {
    let cluster = Cluster::start().unwrap();
    let db = cluster.stella_database("stella").unwrap();
    let owner = Store::open(&db.owner_url).await.unwrap();
    let status = owner.migrate().await.unwrap();
    assert!(status.is_current());
    owner.close().await;
    let store = Store::open(&db.service_url).await.unwrap();
    store.check_service_role().await.unwrap();
    (cluster, db, store)
}

#[tokio::test]
async fn repositories_keep_tenants_apart_and_count_quota_on_postgres() {
    let (_cluster, _db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "client-a");
    let b = TenantContext::from_verified_identity("b", "client-b");
    let meta = s.insert_artifact(&a, art("p", 3), BIG).await.unwrap();
    assert_eq!(meta.staged_by, "client-a");
    assert!(
        s.get_artifact(&b, "p", meta.artifact_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.list_artifacts(&b, "p", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.read_payload(&b, "p", meta.artifact_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.delete_artifact(&b, "p", meta.artifact_id).await.unwrap(),
        DeleteOutcome::NotFound
    );
    assert!(
        !s.reference_artifact(&b, "p", "k", meta.artifact_id)
            .await
            .unwrap()
    );
    // Read back exactly as written (timestamps round-trip through timestamptz).
    assert_eq!(
        s.get_artifact(&a, "p", meta.artifact_id).await.unwrap(),
        Some(meta.clone())
    );
    assert_eq!(
        s.read_payload(&a, "p", meta.artifact_id).await.unwrap(),
        Some(vec![7; 3])
    );

    let q = ArtifactQuota {
        max_count: 2,
        max_bytes: 10,
    };
    s.insert_artifact(&b, art("p", 6), q).await.unwrap();
    assert!(matches!(
        s.insert_artifact(&b, art("p", 5), q).await,
        Err(StoreError::QuotaExceeded)
    ));
    s.insert_artifact(&b, art("p", 4), q).await.unwrap();
    assert!(matches!(
        s.insert_artifact(&b, art("p", 0), q).await,
        Err(StoreError::QuotaExceeded)
    ));
    assert_eq!(s.list_artifacts(&b, "p", None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn pages_in_staging_order_and_referenced_artifact_is_in_use() {
    let (_cluster, db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "c");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            s.insert_artifact(&a, art("p", 1), BIG)
                .await
                .unwrap()
                .artifact_id,
        );
    }
    let first = s.list_artifacts(&a, "p", None, 2).await.unwrap();
    let rest = s
        .list_artifacts(&a, "p", Some(first[1].artifact_id), 10)
        .await
        .unwrap();
    let listed: Vec<_> = first.iter().chain(&rest).map(|m| m.artifact_id).collect();
    assert_eq!(listed, ids);
    assert!(
        s.reference_artifact(&a, "p", "cosignKey", ids[0])
            .await
            .unwrap()
    );
    // Re-pointing the same field is an update, not a second row.
    assert!(
        s.reference_artifact(&a, "p", "cosignKey", ids[0])
            .await
            .unwrap()
    );
    assert_eq!(
        s.delete_artifact(&a, "p", ids[0]).await.unwrap(),
        DeleteOutcome::InUse
    );
    assert_eq!(
        s.delete_artifact(&a, "p", ids[1]).await.unwrap(),
        DeleteOutcome::Deleted
    );
    let mut conn = PgConnection::connect(&db.service_url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'a', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        actions.iter().filter(|a| *a == "artifact.create").count(),
        5
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "artifact.delete").count(),
        1
    );
    // The service may append to the audit log, never rewrite it.
    let rewrite = sqlx::query("UPDATE audit_log SET actor = 'someone-else'")
        .execute(&mut *tx)
        .await;
    assert!(
        rewrite.is_err(),
        "the service role could rewrite the audit log"
    );
}

/// The point of row-level security: SQL that forgets `tenant_id = …` still
/// sees, changes and writes only the tenant set for the transaction.
#[tokio::test]
async fn a_query_that_forgets_the_tenant_filter_sees_only_its_tenants_rows() {
    let (_cluster, db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "client-a");
    let b = TenantContext::from_verified_identity("b", "client-b");
    for _ in 0..3 {
        s.insert_artifact(&a, art("p", 1), BIG).await.unwrap();
    }
    let b_meta = s.insert_artifact(&b, art("p", 1), BIG).await.unwrap();
    s.insert_artifact(&b, art("q", 1), BIG).await.unwrap();

    let mut conn = PgConnection::connect(&db.service_url).await.unwrap();
    // No tenant set: nothing visible.
    let none: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vex_provider_artifact_refs")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(none, 0);

    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'a', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let tenants: Vec<String> =
        sqlx::query_scalar("SELECT tenant_id FROM vex_provider_artifact_refs")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(tenants, vec!["a", "a", "a"]);
    let by_id: Option<String> = sqlx::query_scalar(
        "SELECT tenant_id FROM vex_provider_artifact_refs WHERE artifact_id = $1::uuid",
    )
    .bind(b_meta.artifact_id.to_string())
    .fetch_optional(&mut *tx)
    .await
    .unwrap();
    assert_eq!(by_id, None, "another tenant's row by its id");
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(audit, 3);
    let deleted = sqlx::query("DELETE FROM vex_provider_artifact_refs WHERE provider_id = 'q'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0, "deleted another tenant's row");
    tx.commit().await.unwrap();

    // Writing a row for another tenant is refused by the policy's check.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'a', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let forged = sqlx::query(
        "INSERT INTO vex_provider_artifact_refs
            (artifact_id, provider_id, tenant_id, mime_type, size_bytes, sha256, payload,
             staged_at, staged_by)
         VALUES (gen_random_uuid(), 'p', 'b', 'x/y', 0, '', ''::bytea, now(), 'evil')",
    )
    .execute(&mut *tx)
    .await;
    let code = forged
        .unwrap_err()
        .as_database_error()
        .and_then(|e| e.code().map(|c| c.into_owned()));
    assert_eq!(
        code.as_deref(),
        Some("42501"),
        "row-level security violation"
    );
    tx.rollback().await.unwrap();

    // The setting is transaction-local: the pooled connection forgets it.
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vex_provider_artifact_refs")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, 0);

    // The service role cannot switch row-level security off.
    for ddl in [
        "ALTER TABLE vex_provider_artifact_refs DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE vex_provider_artifact_refs NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON vex_provider_artifact_refs",
        "SET ROLE stella_owner",
    ] {
        assert!(
            sqlx::query(ddl).execute(&mut conn).await.is_err(),
            "the service role may run `{ddl}`"
        );
    }
    // Still two rows for b, untouched.
    assert_eq!(s.list_artifacts(&b, "p", None, 10).await.unwrap().len(), 1);
    assert_eq!(s.list_artifacts(&b, "q", None, 10).await.unwrap().len(), 1);

    // FORCE binds the table owner too.
    let mut owner = PgConnection::connect(&db.owner_url).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vex_provider_artifact_refs")
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(seen, 0, "the owner sees rows without a tenant set");
}

/// Every table with a `tenant_id` column (but `clients`, looked up before a
/// tenant is known) has row-level security enabled and forced and a policy;
/// migrations added later (0002…) are held to the same rule.
#[tokio::test]
async fn every_tenant_table_has_forced_row_level_security_and_a_policy() {
    let (cluster, db, _s) = fresh().await;
    let rows = cluster
        .psql(
            &db.name,
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                    (SELECT COUNT(*) FROM pg_policy p WHERE p.polrelid = c.oid)
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
               AND a.attname = 'tenant_id' AND c.relname <> 'clients'
             ORDER BY c.relname",
        )
        .unwrap();
    let tables: Vec<&str> = rows.lines().collect();
    assert!(tables.len() >= 3, "{rows}");
    for line in tables {
        let cols: Vec<&str> = line.split('|').collect();
        assert_eq!(cols[1..3], ["t", "t"], "table {}: {line}", cols[0]);
        let policies: u32 = cols[3].parse().unwrap();
        assert!(policies >= 1, "table {} has no policy", cols[0]);
    }
    let owned = cluster
        .psql(
            &db.name,
            "SELECT COUNT(*) FROM pg_class WHERE relowner = 'stella_svc'::regrole
                OR relowner = 'stella_app'::regrole",
        )
        .unwrap();
    assert_eq!(owned, "0");
}

#[tokio::test]
async fn the_service_refuses_roles_that_row_level_security_does_not_bind() {
    let (cluster, db, _s) = fresh().await;
    let owner = Store::open(&db.owner_url).await.unwrap();
    let err = owner.check_service_role().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::UnsafeServiceRole { why, .. } if why.contains("owns")),
        "{err}"
    );
    let superuser = Store::open(&cluster.url("stella_super", &db.name))
        .await
        .unwrap();
    let err = superuser.check_service_role().await.unwrap_err();
    assert!(err.to_string().contains("superuser"), "{err}");
    cluster
        .psql(
            "postgres",
            "CREATE ROLE bypasser LOGIN PASSWORD 'stella-test-pw' BYPASSRLS IN ROLE stella_app",
        )
        .unwrap();
    let bypass = Store::open(&cluster.url("bypasser", &db.name))
        .await
        .unwrap();
    let err = bypass.check_service_role().await.unwrap_err();
    assert!(err.to_string().contains("BYPASSRLS"), "{err}");
}

/// Two handles on one database (as two `stella serve` processes): the
/// advisory lock keeps the quota exact under concurrent inserts.
#[tokio::test]
async fn concurrent_inserts_from_two_pools_never_pass_the_quota() {
    let (_cluster, db, s1) = fresh().await;
    let s2 = Store::open(&db.service_url).await.unwrap();
    let a = TenantContext::from_verified_identity("a", "c");
    let q = ArtifactQuota {
        max_count: 7,
        max_bytes: 1 << 20,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let store = if i % 2 == 0 { s1.clone() } else { s2.clone() };
        let ctx = a.clone();
        tasks.spawn(async move { store.insert_artifact(&ctx, art("p", 10), q).await });
    }
    let (mut ok, mut over) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::QuotaExceeded) => over += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, over), (7, 17));
    assert_eq!(
        s2.list_artifacts(&a, "p", None, 100).await.unwrap().len(),
        7
    );
}

#[tokio::test]
async fn a_stopped_database_is_unavailable_and_loses_nothing() {
    let (cluster, _db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "c");
    let kept = s.insert_artifact(&a, art("p", 5), BIG).await.unwrap();
    cluster.stop().unwrap();
    let err = s.insert_artifact(&a, art("p", 5), BIG).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    let err = s.list_artifacts(&a, "p", None, 10).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(s.ping().await.unwrap_err().is_unavailable());
    cluster.restart().unwrap();
    let listed = s.list_artifacts(&a, "p", None, 10).await.unwrap();
    assert_eq!(listed, vec![kept], "the failed insert left no row");
}

/// The pool hands out a recently used connection without a ping, but pings
/// one idle for `PING_WHEN_IDLE_FOR` first: after a database restart the
/// pooled (now dead) connections are replaced before any request uses one.
#[tokio::test]
async fn after_a_database_restart_no_request_gets_a_dead_pooled_connection() {
    let (cluster, _db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "c");
    let kept = s.insert_artifact(&a, art("p", 5), BIG).await.unwrap();
    // Open several connections, then leave them idle in the pool.
    let (r1, r2, r3, r4) = tokio::join!(
        s.list_artifacts(&a, "p", None, 10),
        s.list_artifacts(&a, "p", None, 10),
        s.list_artifacts(&a, "p", None, 10),
        s.list_artifacts(&a, "p", None, 10)
    );
    for listed in [r1, r2, r3, r4] {
        assert_eq!(listed.unwrap(), vec![kept.clone()]);
    }
    cluster.stop().unwrap();
    cluster.restart().unwrap();
    tokio::time::sleep(stella_store::postgres::PING_WHEN_IDLE_FOR).await;
    for _ in 0..12 {
        assert_eq!(
            s.list_artifacts(&a, "p", None, 10).await.unwrap(),
            vec![kept.clone()]
        );
        assert!(
            s.get_artifact(&a, "p", kept.artifact_id)
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn a_newer_postgres_schema_is_refused() {
    let (cluster, db, s) = fresh().await;
    s.close().await;
    cluster
        .psql(
            &db.name,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'future', true, '\\x00', 0)",
        )
        .unwrap();
    match PostgresStore::open(&db.service_url, &Default::default()).await {
        Err(StoreError::SchemaTooNew { found: 9999, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn the_service_role_cannot_migrate_and_a_fresh_database_reports_version_0() {
    let cluster = Cluster::start().unwrap();
    let db = cluster.stella_database("fresh").unwrap();
    let svc = Store::open(&db.service_url).await.unwrap();
    let status = svc.schema_status().await.unwrap();
    assert_eq!(status.applied, 0);
    assert!(!status.is_current());
    assert!(svc.migrate().await.is_err(), "the service role ran DDL");
}

/// The quota reads the per-tenant usage row (migration 0003): a delete
/// frees room, and another tenant's usage never counts.
#[tokio::test]
async fn usage_row_follows_deletes_and_stays_per_tenant_on_postgres() {
    let (_cluster, _db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "c");
    let b = TenantContext::from_verified_identity("b", "c");
    let q = ArtifactQuota {
        max_count: 2,
        max_bytes: 10,
    };
    let first = s.insert_artifact(&a, art("p", 6), q).await.unwrap();
    s.insert_artifact(&a, art("p", 4), q).await.unwrap();
    s.insert_artifact(&b, art("p", 10), q).await.unwrap();
    assert!(matches!(
        s.insert_artifact(&a, art("p", 0), q).await,
        Err(StoreError::QuotaExceeded)
    ));
    assert_eq!(
        s.delete_artifact(&a, "p", first.artifact_id).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(matches!(
        s.insert_artifact(&a, art("p", 7), q).await,
        Err(StoreError::QuotaExceeded)
    ));
    s.insert_artifact(&a, art("p", 6), q).await.unwrap();
    assert!(matches!(
        s.insert_artifact(&a, art("p", 0), q).await,
        Err(StoreError::QuotaExceeded)
    ));
    assert!(matches!(
        s.insert_artifact(&b, art("p", 1), q).await,
        Err(StoreError::QuotaExceeded)
    ));
}

/// Console sessions (migration 0007) as the service role: add, find until
/// expiry, delete; the role cannot change a row, and the table carries no
/// tenant column (it is operator data, found by id hash).
#[tokio::test]
async fn console_sessions_are_added_found_and_deleted_by_the_service_role() {
    use stella_store::{ConsoleSessionRecord, ConsoleSessionRepository};
    let (cluster, db, store) = fresh().await;
    let record = |hash: &str, expires_at: i64| ConsoleSessionRecord {
        id_hash: hash.into(),
        sealed: vec![0, 1, 2, 255],
        expires_at,
        created_at: "2026-01-01T00:00:00Z".into(),
    };
    store
        .add_console_session(&record("a", 200), 100)
        .await
        .unwrap();
    store
        .add_console_session(&record("old", 150), 100)
        .await
        .unwrap();
    let clash = store.add_console_session(&record("a", 300), 100).await;
    assert!(
        matches!(clash, Err(StoreError::AlreadyExists(_))),
        "{clash:?}"
    );
    assert_eq!(
        store.find_console_session("a", 199).await.unwrap(),
        Some(record("a", 200))
    );
    assert_eq!(store.find_console_session("a", 200).await.unwrap(), None);
    store
        .add_console_session(&record("b", 400), 160)
        .await
        .unwrap();
    let left = cluster
        .psql(
            &db.name,
            "SELECT string_agg(id_hash, ',' ORDER BY id_hash) FROM console_sessions",
        )
        .unwrap();
    assert_eq!(left, "a,b", "the expired row was swept");
    assert!(store.delete_console_session("b").await.unwrap());
    assert!(!store.delete_console_session("b").await.unwrap());

    let mut conn = PgConnection::connect(&db.service_url).await.unwrap();
    let update = sqlx::query("UPDATE console_sessions SET expires_at = 999999")
        .execute(&mut conn)
        .await;
    assert!(update.is_err(), "the service role changed a session row");
    let tenant_columns = cluster
        .psql(
            &db.name,
            "SELECT COUNT(*) FROM information_schema.columns
             WHERE table_name = 'console_sessions' AND column_name = 'tenant_id'",
        )
        .unwrap();
    assert_eq!(tenant_columns, "0");
}

/// The one-statement reads of migration 0011 (`stella_artifact_meta`,
/// `stella_artifact_page`) set the tenant only for their own statement: the
/// same connection sees nothing afterwards, and the functions, called with
/// one tenant, return none of another's rows.
#[tokio::test]
async fn one_statement_tenant_reads_leave_no_tenant_on_the_connection() {
    let (_cluster, db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "client-a");
    let b = TenantContext::from_verified_identity("b", "client-b");
    let a_meta = s.insert_artifact(&a, art("p", 1), BIG).await.unwrap();
    let b_meta = s.insert_artifact(&b, art("p", 1), BIG).await.unwrap();

    let mut conn = PgConnection::connect(&db.service_url).await.unwrap();
    let seen: Option<String> =
        sqlx::query_scalar("SELECT artifact_id FROM stella_artifact_meta($1, 'p', $2::uuid)")
            .bind("a")
            .bind(a_meta.artifact_id.to_string())
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    assert_eq!(seen, Some(a_meta.artifact_id.to_string()));
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vex_provider_artifact_refs")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, 0, "the tenant outlived the function's statement");
    let setting: Option<String> =
        sqlx::query_scalar("SELECT NULLIF(current_setting('app.tenant_id', true), '')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(setting, None);

    // Tenant a asking for b's id, or paging, sees only a's rows.
    let cross: Option<String> =
        sqlx::query_scalar("SELECT artifact_id FROM stella_artifact_meta($1, 'p', $2::uuid)")
            .bind("a")
            .bind(b_meta.artifact_id.to_string())
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    assert_eq!(cross, None);
    let page: Vec<String> = sqlx::query_scalar(
        "SELECT artifact_id FROM stella_artifact_page($1, 'p', \
         '00000000-0000-0000-0000-000000000000'::uuid, 10)",
    )
    .bind("a")
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(page, vec![a_meta.artifact_id.to_string()]);

    // Through the store: the same answers.
    assert!(
        s.get_artifact(&a, "p", b_meta.artifact_id)
            .await
            .unwrap()
            .is_none()
    );
    let listed = s.list_artifacts(&b, "p", None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].artifact_id, b_meta.artifact_id);
    assert_eq!(listed[0].staged_at, b_meta.staged_at);
}

/// Pages come from the `(tenant_id, provider_id, artifact_id)` index in
/// order, not from a sort of the tenant's every row (the page query once
/// ordered by the text form of the id, which no index serves).
#[tokio::test]
async fn the_artifact_page_reads_the_index_in_order() {
    let (_cluster, db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "client-a");
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(
            s.insert_artifact(&a, art("p", 1), BIG)
                .await
                .unwrap()
                .artifact_id,
        );
    }
    // Thirty rows would make a sequential scan cheapest; with it off, a
    // page that had to be sorted would still fetch all thirty rows through
    // the index, a page read in index order only its own seven.
    let mut conn = PgConnection::connect(&db.service_url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let page: Vec<String> = sqlx::query_scalar(
        "SELECT artifact_id FROM stella_artifact_page('a', 'p', \
         '00000000-0000-0000-0000-000000000000'::uuid, 7)",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(page.len(), 7);
    let fetched: i64 = sqlx::query_scalar(
        "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables
         WHERE relname = 'vex_provider_artifact_refs'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert!(fetched <= 8, "one page of 7 fetched {fetched} rows");
    tx.rollback().await.unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_artifacts(&a, "p", after, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|m| m.artifact_id);
        seen.extend(page.into_iter().map(|m| m.artifact_id));
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
}

/// Payload chunks (migration 0012) on Postgres: a file payload over two
/// chunks comes back byte for byte, another tenant sees neither the
/// artifact nor its chunks, and a delete takes the chunks with it.
#[tokio::test]
async fn file_payloads_are_chunked_per_tenant_on_postgres() {
    let (_cluster, db, s) = fresh().await;
    let a = TenantContext::from_verified_identity("a", "client-a");
    let b = TenantContext::from_verified_identity("b", "client-b");
    let len = stella_store::PAYLOAD_CHUNK_BYTES + 77;
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload.bin");
    std::fs::write(&path, &bytes).unwrap();
    let new = NewArtifact {
        payload: stella_store::ArtifactPayload::File {
            file: tokio::fs::File::open(&path).await.unwrap(),
            len: len as u64,
        },
        ..art("p", 0)
    };
    let meta = s.insert_artifact(&a, new, BIG).await.unwrap();
    let back = s.read_payload(&a, "p", meta.artifact_id).await.unwrap();
    assert!(back.as_deref() == Some(&bytes[..]), "payload changed");
    assert_eq!(
        s.read_payload(&b, "p", meta.artifact_id).await.unwrap(),
        None
    );

    let mut conn = PgConnection::connect(&db.service_url).await.unwrap();
    let mut chunks_seen_by = async |tenant: &str| -> i64 {
        sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
            .bind(tenant)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM vex_provider_artifact_chunks")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(chunks_seen_by("b").await, 0);
    assert_eq!(chunks_seen_by("a").await, 2);
    assert_eq!(
        s.delete_artifact(&a, "p", meta.artifact_id).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(chunks_seen_by("a").await, 0);
}

/// The service role's connections other than `conn`'s own.
async fn service_connections(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity
         WHERE usename = current_user AND pid <> pg_backend_pid()",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

/// The one-statement reads run on a lane of their own (no ping on release),
/// and the lane's connections come out of `pool.maxConnections`, not on
/// top of it.
#[tokio::test]
async fn reads_and_writes_together_stay_within_the_connection_budget() {
    let (_cluster, db, s) = fresh().await;
    s.close().await;
    let settings = stella_store::PoolSettings {
        max_connections: Some(4),
        acquire_timeout: None,
    };
    let s = Store::open_with(&db.service_url, &settings).await.unwrap();
    let a = TenantContext::from_verified_identity("a", "c");
    let kept = s.insert_artifact(&a, art("p", 5), BIG).await.unwrap();
    let reads = (0..16).map(|i| {
        let (s, a, kept) = (&s, &a, &kept);
        async move {
            if i % 2 == 0 {
                let got = s.get_artifact(a, "p", kept.artifact_id).await.unwrap();
                assert_eq!(got.as_ref(), Some(kept));
            } else {
                let page = s.list_artifacts(a, "p", None, 10).await.unwrap();
                assert!(page.contains(kept));
            }
        }
    });
    let writes = (0..6).map(|_| {
        let (s, a) = (&s, &a);
        async move {
            s.insert_artifact(a, art("q", 3), BIG).await.unwrap();
        }
    });
    tokio::join!(
        futures_util::future::join_all(reads),
        futures_util::future::join_all(writes)
    );
    let mut conn = PgConnection::connect(&db.service_url).await.unwrap();
    let open = service_connections(&mut conn).await;
    assert!(open <= 4, "{open} connections open for a budget of 4");
    assert!(
        open > 2,
        "only {open} open: reads and writes did not run side by side"
    );
    let (reported, _idle) = s.pool_stats();
    assert_eq!(i64::from(reported), open, "pool_stats counts the lane too");
}

/// A read cancelled mid-statement (its request went away) loses its
/// connection rather than handing a half-read one to the next request,
/// and gives its place in the lane back: the next read, on a lane of one
/// connection, gets its own answer at once.
#[tokio::test]
async fn a_cancelled_read_frees_its_place_and_poisons_nothing() {
    let (_cluster, db, s) = fresh().await;
    s.close().await;
    let settings = stella_store::PoolSettings {
        max_connections: Some(2),
        acquire_timeout: Some(std::time::Duration::from_secs(2)),
    };
    let s = Store::open_with(&db.service_url, &settings).await.unwrap();
    let a = TenantContext::from_verified_identity("a", "c");
    let first = s.insert_artifact(&a, art("p", 5), BIG).await.unwrap();
    let second = s.insert_artifact(&a, art("p", 6), BIG).await.unwrap();

    // The owner locks the table, so the read blocks inside Postgres.
    let mut owner = PgConnection::connect(&db.owner_url).await.unwrap();
    let mut lock = owner.begin().await.unwrap();
    sqlx::query("LOCK TABLE vex_provider_artifact_refs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let cancelled = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        s.get_artifact(&a, "p", first.artifact_id),
    )
    .await;
    assert!(cancelled.is_err(), "the read should have been blocked");
    lock.commit().await.unwrap();

    let started = std::time::Instant::now();
    let got = s.get_artifact(&a, "p", second.artifact_id).await.unwrap();
    assert_eq!(got, Some(second.clone()));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "the next read waited {:?}: the cancelled read kept its place",
        started.elapsed()
    );
    let page = s.list_artifacts(&a, "p", None, 10).await.unwrap();
    assert_eq!(page, vec![first, second]);
}

/// A database made before usage tracking (migration 0003) and upgraded:
/// 0003's own backfill ran as the owner, whom forced row-level security
/// hides every row from, and counted nothing; 0013 recounts. The quota
/// then counts the artifacts that were already there, and their payloads
/// (moved into chunks by 0012) still read back.
#[tokio::test]
async fn an_upgrade_from_before_usage_tracking_counts_the_existing_artifacts() {
    let cluster = Cluster::start().unwrap();
    let db = cluster.stella_database("stella").unwrap();
    let old = tempfile::tempdir().unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for name in ["0001_initial.sql", "0002_vex.sql"] {
        std::fs::copy(all.join(name), old.path().join(name)).unwrap();
    }
    let mut owner = PgConnection::connect(&db.owner_url).await.unwrap();
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&mut owner)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (tenant, size) in [("a", 10_i64), ("a", 20), ("a", 30), ("b", 5)] {
        let id = uuid::Uuid::now_v7();
        ids.push((tenant, id, size));
        let mut tx = owner.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO vex_provider_artifact_refs (artifact_id, provider_id, tenant_id,
                mime_type, size_bytes, sha256, payload, staged_at, staged_by)
             VALUES ($1::uuid, 'p', $2, 'application/octet-stream', $3, $4, $5, now(), 'old')",
        )
        .bind(id.to_string())
        .bind(tenant)
        .bind(size)
        .bind("00".repeat(32))
        .bind(vec![1_u8; usize::try_from(size).unwrap()])
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    owner.close().await.unwrap();

    let migrated = Store::open(&db.owner_url).await.unwrap();
    assert!(migrated.migrate().await.unwrap().is_current());
    migrated.close().await;
    let s = Store::open(&db.service_url).await.unwrap();
    let a = TenantContext::from_verified_identity("a", "c");
    let b = TenantContext::from_verified_identity("b", "c");
    let three = ArtifactQuota {
        max_count: 3,
        max_bytes: 1 << 20,
    };
    let refused = s.insert_artifact(&a, art("p", 1), three).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::QuotaExceeded),
        "tenant a already has 3 artifacts: {refused:?}"
    );
    let sixty_five = ArtifactQuota {
        max_count: 10,
        max_bytes: 65,
    };
    let refused = s
        .insert_artifact(&a, art("p", 6), sixty_five)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::QuotaExceeded),
        "tenant a already has 60 bytes: {refused:?}"
    );
    s.insert_artifact(&a, art("p", 5), sixty_five)
        .await
        .unwrap();
    s.insert_artifact(&b, art("p", 1), three).await.unwrap();
    for (tenant, id, size) in ids {
        let ctx = if tenant == "a" { &a } else { &b };
        let payload = s.read_payload(ctx, "p", id).await.unwrap().unwrap();
        assert_eq!(payload.len(), usize::try_from(size).unwrap());
    }
}
