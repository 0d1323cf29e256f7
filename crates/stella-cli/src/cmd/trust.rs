//! `stella trust update|show`: refresh the sigstore trusted root through
//! TUF into the user's cache, and show what the cache trusts. The work is
//! stella-trust's; this module reads flags and the clock, and prints.
//! Exit codes: 0 done; 1 the TUF metadata was refused (signature, expiry,
//! rollback...); 2 input, network or cache errors.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::json;
use stella_trust::{
    CachedTrust, Mirror, RoleInfo, Timeouts, TrustError, TrustedRootSummary, TufCache,
    UpdateRequest, human_duration, rfc3339,
};

use crate::cli::{RegistryArgs, TextOrJson, TrustCommand, TrustShowArgs, TrustUpdateArgs};
use crate::exit::Outcome;

/// Largest TUF root.json accepted from --tuf-root.
const MAX_TUF_ROOT_BYTES: u64 = 1024 * 1024;

pub async fn run(command: TrustCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    match command {
        TrustCommand::Update(a) => update(a, registry).await,
        TrustCommand::Show(a) => show(a),
    }
}

/// Unix seconds now (the clock stella-trust is given).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Largest --ca-file read.
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

async fn update(args: TrustUpdateArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let mirror = Mirror::parse(&args.tuf_mirror)?;
    let tuf_root = match &args.tuf_root {
        Some(p) => Some(
            crate::cmd::read_capped(p, MAX_TUF_ROOT_BYTES)
                .with_context(|| format!("cannot read --tuf-root {}", p.display()))?,
        ),
        None => None,
    };
    let extra_ca_pem = match &registry.ca_file {
        Some(p) => Some(
            crate::cmd::read_capped(p, MAX_CA_FILE_BYTES)
                .with_context(|| format!("cannot read --ca-file {}", p.display()))?,
        ),
        None => None,
    };
    let cache = TufCache::from_env().map_err(worded)?;
    let request = UpdateRequest {
        mirror,
        tuf_root,
        now: unix_now(),
        timeouts: Timeouts::default(),
        extra_ca_pem,
    };
    let outcome = match stella_trust::update(&cache, &request).await {
        Ok(o) => o,
        Err(e) if e.is_refusal() => {
            if args.output == TextOrJson::Json {
                let v = json!({"updated": false, "reason": e.to_string()});
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            eprintln!("stella: {e}; the cache was left as it was");
            return Ok(Outcome::VerificationFailed);
        }
        Err(e) => return Err(worded(e)),
    };
    let cached = &outcome.cached;
    match args.output {
        TextOrJson::Json => {
            let mut v = describe_json(&cache, cached, request.now)?;
            v["updated"] = json!(true);
            v["startedFrom"] = json!(outcome.started_from.as_str());
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        TextOrJson::Text => {
            println!(
                "Updated the sigstore trusted root from {}",
                cached.state.mirror
            );
            println!(
                "  TUF root:  version {}, expires {}",
                cached.state.tuf.root.version,
                rfc3339(cached.state.tuf.root.expires)
            );
            println!(
                "  metadata:  valid until {}",
                rfc3339(cached.metadata_expires())
            );
            println!("  digest:    {}", cached.state.trusted_root_digest);
            println!("  cache:     {}", cached.dir.display());
        }
    }
    Ok(Outcome::Success)
}

fn show(args: TrustShowArgs) -> anyhow::Result<Outcome> {
    let cache = TufCache::from_env().map_err(worded)?;
    let now = unix_now();
    let cached = match &args.tuf_mirror {
        Some(m) => cache.load(&Mirror::parse(m)?).map_err(worded)?,
        None => cache.load_selected().map_err(worded)?,
    };
    let Some(cached) = cached else {
        anyhow::bail!(
            "no cached sigstore trusted root in {}: run `stella trust update`",
            cache.dir().display()
        );
    };
    match args.output {
        TextOrJson::Json => {
            let v = describe_json(&cache, &cached, now)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        TextOrJson::Text => print_text(&cached, now)?,
    }
    Ok(Outcome::Success)
}

fn role_json(r: &RoleInfo) -> serde_json::Value {
    json!({"version": r.version, "expires": rfc3339(r.expires)})
}

fn describe_json(
    cache: &TufCache,
    cached: &CachedTrust,
    now: i64,
) -> anyhow::Result<serde_json::Value> {
    let summary = TrustedRootSummary::from_json(&cached.trusted_root_json)?;
    let tuf = &cached.state.tuf;
    Ok(json!({
        "mirror": cached.state.mirror,
        "cacheDir": cache.dir(),
        "updatedAt": rfc3339(cached.state.updated_at),
        "ageSeconds": cached.age_seconds(now),
        "metadataExpires": rfc3339(cached.metadata_expires()),
        "metadataExpired": cached.metadata_expired(now),
        "tuf": {
            "root": role_json(&tuf.root),
            "timestamp": role_json(&tuf.timestamp),
            "snapshot": role_json(&tuf.snapshot),
            "targets": role_json(&tuf.targets),
        },
        "trustedRootDigest": cached.state.trusted_root_digest,
        "trustedRoot": summary,
    }))
}

/// A trust error with the CLI's words for what to do about it: the library
/// names no flag, command or environment variable.
pub(crate) fn worded(e: TrustError) -> anyhow::Error {
    let todo = match &e {
        TrustError::NoStartingRoot { .. } => "give --tuf-root <root.json>",
        TrustError::NoCachedRoot { .. } => {
            "run `stella trust update` (or give --trusted-root <trusted_root.json>)"
        }
        TrustError::DamagedCache { .. } => "run `stella trust update`",
        TrustError::NoCacheDir => "set STELLA_CACHE_DIR, XDG_CACHE_HOME or HOME",
        _ => return e.into(),
    };
    anyhow::anyhow!("{e}: {todo}")
}

fn window(w: &stella_trust::Window) -> String {
    match &w.until {
        Some(u) => format!("{} .. {u}", w.from),
        None => format!("{} .. (open)", w.from),
    }
}

fn print_text(cached: &CachedTrust, now: i64) -> anyhow::Result<()> {
    let s = &cached.state;
    let summary = TrustedRootSummary::from_json(&cached.trusted_root_json)?;
    println!("Mirror:     {}", s.mirror);
    println!(
        "Updated:    {} ({} ago)",
        rfc3339(s.updated_at),
        human_duration(cached.age_seconds(now))
    );
    let expired = if cached.metadata_expired(now) {
        " (expired: run `stella trust update`)"
    } else {
        ""
    };
    println!(
        "Valid until {}{expired}",
        rfc3339(cached.metadata_expires())
    );
    for (name, r) in [
        ("root", &s.tuf.root),
        ("timestamp", &s.tuf.timestamp),
        ("snapshot", &s.tuf.snapshot),
        ("targets", &s.tuf.targets),
    ] {
        println!(
            "  TUF {name:<10} version {:<6} expires {}",
            r.version,
            rfc3339(r.expires)
        );
    }
    println!("Trusted root {}", s.trusted_root_digest);
    println!("Certificate authorities:");
    for a in &summary.certificate_authorities {
        println!("  {}  {}", a.uri, window(&a.valid_for));
    }
    println!("Transparency logs:");
    for l in &summary.tlogs {
        println!("  {}  {}", l.base_url, window(&l.valid_for));
    }
    println!("CT logs:");
    for l in &summary.ctlogs {
        println!("  {}  {}", l.base_url, window(&l.valid_for));
    }
    println!("Timestamp authorities:");
    for a in &summary.timestamp_authorities {
        println!("  {}  {}", a.uri, window(&a.valid_for));
    }
    Ok(())
}
