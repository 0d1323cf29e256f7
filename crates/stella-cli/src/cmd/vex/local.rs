//! `stella vex ingest` and `stella vex query`.
//!
//! Ingest: for each image, `stella_engine::vex::discover_vex` finds and
//! verifies its OpenVEX documents (the same engine as `stella verify
//! attestation`), and `stella_server::vex::ingest` stores the accepted ones
//! in a local SQLite database (tenant `local`), one transaction per
//! document. Exit 0 when every image was searched (refused documents are
//! reported, not errors), 2 on bad flags, unreachable registries or an
//! unusable database.
//!
//! Query: statements or the consensus for a product, from that database
//! (`--db`) or from a server (`GET /vex/statements`, `GET /vex/consensus`).

use std::path::Path;

use anyhow::Context;
use stella_attest::verify::TrustPolicy;
use stella_engine::vex::{VexLimits, VexRequest, discover_vex};
use stella_oci::artifact::resolve;
use stella_server::vex::{ingest, query};
use stella_store::{Store, TenantContext};

use crate::cli::{ServiceClientArgs, TextOrJson, VexIngestArgs, VexQueryArgs};
use crate::client::ApiClient;
use crate::cmd::key::{load_certificates, load_public_key};
use crate::cmd::verify::trust::{cli_words, keyless_trust};
use crate::exit::Outcome;
use crate::store::{OpenMode, open_store, parse_reference};

/// The tenant of a local database.
pub const LOCAL_TENANT: &str = "local";

async fn open_db(path: &Path) -> anyhow::Result<Store> {
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate {}", path.display()))?;
    Ok(store)
}

fn trust_policy(args: &VexIngestArgs) -> anyhow::Result<TrustPolicy> {
    let loaded = keyless_trust(&args.keyless, None, crate::cmd::trust::unix_now())?;
    if args.keys.is_empty() && args.trust_roots.is_empty() && loaded.is_none() {
        anyhow::bail!(
            "give --key <public-key>, --trust-root <ca-pem>, or --certificate-identity and --certificate-oidc-issuer with --trusted-root <trusted_root.json>"
        );
    }
    let mut policy = TrustPolicy {
        keyless: loaded.map(|l| l.trust),
        words: cli_words(),
        ..TrustPolicy::default()
    };
    for k in &args.keys {
        policy.keys.push(load_public_key(k)?);
    }
    for r in &args.trust_roots {
        policy.ca_roots.extend(load_certificates(r, "trust root")?);
    }
    Ok(policy)
}

fn now_rfc3339() -> String {
    stella_vex::Timestamp(time::OffsetDateTime::now_utc()).to_rfc3339()
}

pub async fn ingest_run(
    args: VexIngestArgs,
    registry: &crate::cli::RegistryArgs,
) -> anyhow::Result<Outcome> {
    let policy = trust_policy(&args)?;
    let store = open_db(&args.db).await?;
    let ctx = TenantContext::from_verified_identity(LOCAL_TENANT, "stella vex ingest");
    let mut total = ingest::IngestCounts::default();
    let mut images = Vec::new();
    for image in &args.images {
        let reference = parse_reference(image)?;
        let oci = open_store(&reference, registry, OpenMode::Existing)?;
        let resolved = resolve(&oci, &reference)
            .await
            .with_context(|| format!("cannot resolve {reference}"))?;
        let request = VexRequest {
            image_name: crate::cmd::attest::subject_name(&reference),
            image: resolved.clone(),
            require_signatures: !args.allow_unsigned,
            limits: VexLimits::default(),
        };
        let now = time::OffsetDateTime::now_utc();
        let found = discover_vex(&oci, &request, &policy, now)
            .await
            .with_context(|| format!("searching {reference}"))?;
        let (counts, rejections) =
            ingest::ingest_discovery(&store, &ctx, &args.provider, &found, &now_rfc3339())
                .await
                .context("storing statements")?;
        total.add(&counts);
        images.push(serde_json::json!({
            "image": image,
            "digest": resolved.digest.to_string(),
            "counts": counts,
            "rejected": rejections,
            "capsHit": found.caps_hit,
        }));
    }
    store.close().await;
    match args.output {
        TextOrJson::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"images": images, "total": total}))?
        ),
        TextOrJson::Text => {
            for i in &images {
                for r in i["rejected"].as_array().into_iter().flatten() {
                    println!(
                        "REJECTED {} {}",
                        r["source"].as_str().unwrap_or("-"),
                        r["reason"].as_str().unwrap_or("-")
                    );
                }
            }
            println!(
                "{} document(s) found, {} new, {} superseded, {} unchanged, {} rejected; {} statement(s) stored in {}",
                total.found,
                total.inserted,
                total.superseded,
                total.unchanged,
                total.rejected,
                total.statements,
                args.db.display()
            );
        }
    }
    Ok(Outcome::Success)
}

pub async fn query_run(args: VexQueryArgs, service: &ServiceClientArgs) -> anyhow::Result<Outcome> {
    let value = match &args.db {
        Some(db) => query_local(&args, db).await?,
        None => query_server(&args, service).await?,
    };
    match args.output {
        TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&value)?),
        TextOrJson::Text => print_text(&value, args.consensus),
    }
    Ok(Outcome::Success)
}

async fn query_local(args: &VexQueryArgs, db: &Path) -> anyhow::Result<serde_json::Value> {
    if !db.exists() {
        anyhow::bail!(
            "{} does not exist (write it with `stella vex ingest`)",
            db.display()
        );
    }
    let store = open_db(db).await?;
    let ctx = TenantContext::from_verified_identity(LOCAL_TENANT, "stella vex query");
    let value = if args.consensus {
        let trust = super::merge::read_trust(args.trust.as_deref())?;
        let results = query::consensus_for(
            &store,
            &ctx,
            &args.product,
            args.vulnerability.as_deref(),
            &trust,
        )
        .await?;
        serde_json::json!({ "items": results })
    } else {
        let mut q = query::statement_query(
            Some(&args.product),
            args.vulnerability.as_deref(),
            args.issuer.as_deref(),
        );
        let mut items = Vec::new();
        loop {
            let page = stella_store::VexRepository::query_vex_statements(&store, &ctx, &q).await?;
            let Some(last) = page.last() else { break };
            q.after = Some(last.key);
            items.extend(page.iter().map(query::StatementView::from_stored));
        }
        serde_json::json!({ "items": items })
    };
    store.close().await;
    Ok(value)
}

async fn query_server(
    args: &VexQueryArgs,
    service: &ServiceClientArgs,
) -> anyhow::Result<serde_json::Value> {
    let client = ApiClient::authenticated(service)?;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut params = format!("product={}", enc(&args.product));
    if let Some(v) = &args.vulnerability {
        params.push_str(&format!("&vulnerability={}", enc(v)));
    }
    if args.consensus {
        return client.get_json(&format!("/vex/consensus?{params}")).await;
    }
    if let Some(i) = &args.issuer {
        params.push_str(&format!("&issuer={}", enc(i)));
    }
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/vex/statements?{params}&limit=500&cursor={}", enc(c)),
            None => format!("/vex/statements?{params}&limit=500"),
        };
        let page: super::Page = client.get_json(&path).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(serde_json::json!({ "items": items }))
}

fn print_text(value: &serde_json::Value, consensus: bool) {
    let items = value["items"].as_array().cloned().unwrap_or_default();
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    if consensus {
        for c in &items {
            println!(
                "{}\t{}\t{}{}\t{}",
                s(&c["product"]),
                s(&c["vulnerability"]),
                s(&c["status"]),
                if c["conflict"].as_bool() == Some(true) {
                    " (conflict)"
                } else {
                    ""
                },
                s(&c["rationale"])
            );
        }
        if items.is_empty() {
            println!("no statement from a trusted issuer");
        }
        return;
    }
    println!("VULNERABILITY\tSTATUS\tISSUER\tDOCUMENT\tVERSION\tIMAGE");
    for i in &items {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            s(&i["statement"]["vulnerability"]["name"]),
            s(&i["statement"]["status"]),
            s(&i["issuer"]),
            s(&i["documentId"]),
            i["documentVersion"],
            s(&i["imageDigest"])
        );
    }
}
