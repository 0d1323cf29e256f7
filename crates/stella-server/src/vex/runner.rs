//! The OCI OpenVEX provider runner: for each subscribed image, resolve it,
//! discover and verify its OpenVEX evidence (`stella_engine::vex`) and
//! store the accepted statements (`super::ingest`), recording the status of
//! the run and of each image.
//!
//! A run: readiness (the one configuration validator) → run lease (so two
//! servers on one database never run a provider at once; a crashed run's
//! lease expires) → a materializer session holding the trust material from
//! the artifact store, opened before verification and closed on every path
//! (explicitly, and by drop on a panic or cancellation) → per image work
//! (skipped when the image's fingerprint, `super::poll`, matches the last
//! successful run's) → status. Trust: keypair (`cosignKeys`), offline
//! (`offlineBundle`), or the trusted root fetched through TUF from
//! `tufMirror` starting from the last trusted root a run kept
//! (`super::tuf_state`), else `tufRoot` (`stella_trust`, the client of
//! `stella trust update`, with its cache inside the session). Caps
//! (`maxReferrersPerImage`, `maxDocumentBytes`, `maxDocumentsPerRun`) hit
//! are reported in the image's and the run's reason and `capsHit` count.
//!
//! Not here: scheduling (`crate::serve` ticks [`run_due`]) or HTTP.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use stella_attest::verify::TrustPolicy;
use stella_engine::vex::{VexDiscovery, VexLimits, VexRequest, discover_vex};
use stella_oci::registry::{RegistryClient, RegistryOptions};
use stella_store::{ProviderRunRecord, Store, TenantContext, VexRepository, VexTrustRepository};
use stella_types::reference::{Reference, RegistryReference};

use super::ingest::{DocumentRecords, IngestCounts, ingest_prepared, prepare_discovery};
use super::listed::ListedRepository;
use super::poll::{self, CompanionTags, Fingerprint};
use super::provider::{self, OCI_OPENVEX, OciOpenVexConfig};
use super::tuf_state::{self, TufState};
use crate::materializer::{Materializer, Session};

/// How often the scheduler looks for due providers.
pub const TICK: Duration = Duration::from_secs(10);

/// How long a run lease lasts before another server may take over.
pub const LEASE: Duration = Duration::from_secs(600);

/// What a run did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub provider_id: String,
    /// `succeeded`, `partial` (some images failed), `failed`, `blocked`
    /// (configuration not ready) or `busy` (another server holds the lease).
    pub result: String,
    pub reason: String,
    pub started_at: String,
    pub finished_at: String,
    pub counts: IngestCounts,
    pub images: Vec<ImageRun>,
}

/// One image of a run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRun {
    pub image: String,
    pub result: String,
    pub reason: String,
    pub counts: IngestCounts,
}

fn now_rfc3339() -> String {
    stella_vex::Timestamp(time::OffsetDateTime::now_utc()).to_rfc3339()
}

/// The holder name of this process's leases.
pub fn holder_id() -> String {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER
        .get_or_init(|| format!("stella-{}-{}", std::process::id(), uuid::Uuid::now_v7()))
        .clone()
}

/// Runs one provider for `ctx`'s tenant now.
pub async fn run_provider(
    store: &Store,
    ctx: &TenantContext,
    provider_id: &str,
    materializer: &Materializer,
) -> RunSummary {
    let started_at = now_rfc3339();
    let mut summary = RunSummary {
        provider_id: provider_id.to_string(),
        result: "failed".into(),
        reason: String::new(),
        started_at: started_at.clone(),
        finished_at: String::new(),
        counts: IngestCounts::default(),
        images: Vec::new(),
    };
    let config = match load_ready(store, ctx, provider_id).await {
        Ok(c) => c,
        Err(reason) => {
            summary.result = "blocked".into();
            summary.reason = reason;
            return finish(store, ctx, summary).await;
        }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let lease_until = now.saturating_add(i64::try_from(LEASE.as_secs()).unwrap_or(600));
    match store
        .acquire_provider_lease(ctx, provider_id, &holder_id(), now, lease_until)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            summary.result = "busy".into();
            summary.reason = "another server is running this provider".into();
            summary.finished_at = now_rfc3339();
            return summary;
        }
        Err(e) => {
            summary.reason = format!("cannot take the run lease: {e}");
            return finish(store, ctx, summary).await;
        }
    }
    match materializer.open_session() {
        Ok(session) => {
            run_with_session(store, ctx, &config, &session, &mut summary).await;
            if let Err(e) = session.close().await {
                tracing::warn!(error = %e, "closing the artifact session failed");
            }
        }
        Err(e) => summary.reason = format!("cannot open the artifact session: {e}"),
    }
    if let Err(e) = store
        .release_provider_lease(ctx, provider_id, &holder_id())
        .await
    {
        tracing::warn!(error = %e, "releasing the run lease failed");
    }
    finish(store, ctx, summary).await
}

async fn load_ready(
    store: &Store,
    ctx: &TenantContext,
    provider_id: &str,
) -> Result<ReadyConfig, String> {
    if provider_id != OCI_OPENVEX {
        return Err(format!("{provider_id} has no runner"));
    }
    let record = store
        .get_provider_config(ctx, provider_id)
        .await
        .map_err(|e| format!("cannot read the configuration: {e}"))?
        .ok_or("the provider is not configured")?;
    let values: provider::Values = serde_json::from_str(&record.values_json)
        .map_err(|_| "the stored configuration is unreadable".to_string())?;
    let config = provider::validate_oci_openvex(&values).map_err(|issues| {
        let codes: Vec<String> = issues
            .iter()
            .map(|i| format!("{} ({})", i.code, i.path))
            .collect();
        format!("configuration not ready: {}", codes.join(", "))
    })?;
    Ok(ReadyConfig {
        config,
        digest: stella_types::Digest::sha256_of(record.values_json.as_bytes()).to_string(),
    })
}

/// A validated configuration and the digest of its stored values (part of
/// each image's fingerprint, so a changed key or mode re-verifies).
struct ReadyConfig {
    config: OciOpenVexConfig,
    digest: String,
}

async fn run_with_session(
    store: &Store,
    ctx: &TenantContext,
    ready: &ReadyConfig,
    session: &Session,
    summary: &mut RunSummary,
) {
    let config = &ready.config;
    let policy = match trust_policy(store, ctx, config, session).await {
        Ok(p) => p,
        Err(reason) => {
            summary.reason = reason;
            return;
        }
    };
    let auth_dir = match registry_auth(store, ctx, config, session).await {
        Ok(d) => d,
        Err(reason) => {
            summary.reason = reason;
            return;
        }
    };
    let client = match RegistryClient::new(RegistryOptions {
        plain_http: config.allow_http,
        docker_config_dir: Some(auth_dir),
        ..Default::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            summary.reason = format!("cannot build the registry client: {e}");
            return;
        }
    };
    let previous = previous_fingerprints(store, ctx).await;
    let listings = companion_listings(&client, &config.images, &previous).await;
    let job = ImageJob {
        client: &client,
        config,
        config_digest: &ready.digest,
        policy: &policy,
        listings,
        stages: Arc::default(),
    };
    let (images, counts) = run_images(store, ctx, &job, &previous).await;
    summary.images = images;
    summary.counts = counts;
    (summary.result, summary.reason) = run_outcome(&summary.images);
    tracing::info!(
        provider = %summary.provider_id,
        images = summary.images.len(),
        discover_ms = job.stages.discover_us.load(Ordering::Relaxed) / 1000,
        store_ms = job.stages.store_us.load(Ordering::Relaxed) / 1000,
        "provider run stages"
    );
}

/// The run's result and reason from its images': `failed` when every
/// image failed, `partial` when some failed or waited for a cap,
/// `succeeded` otherwise; caps hit are named in the reason.
fn run_outcome(images: &[ImageRun]) -> (String, String) {
    let failed = images.iter().filter(|i| i.result == "failed").count();
    let deferred = images.iter().filter(|i| i.result == "deferred").count();
    let capped = images.iter().filter(|i| i.counts.caps_hit > 0).count();
    let mut reason = Vec::new();
    if failed > 0 {
        reason.push(format!("{failed} of {} image(s) failed", images.len()));
    }
    if deferred > 0 {
        reason.push(format!(
            "{deferred} image(s) deferred: cap hit: maxDocumentsPerRun"
        ));
    }
    if capped > 0 {
        reason.push(format!("cap hit on {capped} image(s) (see their reasons)"));
    }
    let result = if failed > 0 && failed == images.len() {
        "failed"
    } else if failed > 0 || deferred > 0 {
        "partial"
    } else {
        "succeeded"
    };
    (result.into(), reason.join("; "))
}

/// An image not searched because the run's document budget is spent: its
/// status says so and no fingerprint is kept, so the next run searches it.
async fn deferred_image(store: &Store, ctx: &TenantContext, image: &str, cap: usize) -> ImageRun {
    let run = ImageRun {
        image: image.to_string(),
        result: "deferred".into(),
        reason: format!("cap hit: maxDocumentsPerRun ({cap}) reached; searched on the next run"),
        counts: IngestCounts {
            caps_hit: 1,
            ..Default::default()
        },
    };
    let now = now_rfc3339();
    let record = ProviderRunRecord {
        provider_id: OCI_OPENVEX.into(),
        image: image.to_string(),
        started_at: now.clone(),
        finished_at: Some(now),
        result: run.result.clone(),
        reason: run.reason.clone(),
        counts_json: serde_json::to_string(&run.counts).unwrap_or_default(),
        fingerprint: String::new(),
    };
    if let Err(e) = store.record_provider_run(ctx, &record).await {
        tracing::warn!(error = %e, "recording the image run failed");
    }
    run
}

async fn trust_policy(
    store: &Store,
    ctx: &TenantContext,
    config: &OciOpenVexConfig,
    session: &Session,
) -> Result<TrustPolicy, String> {
    let mut policy = TrustPolicy::default();
    let read =
        |path: &Path| std::fs::read(path).map_err(|e| format!("cannot read trust material: {e}"));
    match config.mode.as_str() {
        "keypair" => {
            for id in &config.cosign_keys {
                let path = session
                    .materialize(store, ctx, OCI_OPENVEX, *id)
                    .await
                    .map_err(|e| format!("cosignKeys: {e}"))?;
                let pem = String::from_utf8(read(&path)?)
                    .map_err(|_| "cosignKeys: not PEM text".to_string())?;
                let key = stella_crypto::PublicKey::from_pem(&pem)
                    .map_err(|e| format!("cosignKeys artifact {id}: {e}"))?;
                policy.keys.push(key);
            }
        }
        _ => {
            let trusted_root = match config.offline_bundle {
                Some(bundle) => {
                    let path = session
                        .materialize(store, ctx, OCI_OPENVEX, bundle)
                        .await
                        .map_err(|e| format!("offlineBundle: {e}"))?;
                    read(&path)?
                }
                None => tuf_trusted_root(store, ctx, config, session).await?,
            };
            let verifier =
                stella_engine::trust::keyless_verifier(&trusted_root, Default::default())
                    .map_err(|e| format!("trusted root: {e}"))?;
            let identity = stella_engine::trust::matcher(
                config.subject.as_deref(),
                config.subject_regexp.as_deref(),
            )
            .map_err(|e| format!("cosignSubject: {e}"))?
            .ok_or("cosignSubject is required")?;
            let issuer = stella_engine::trust::matcher(
                config.issuer.as_deref(),
                config.issuer_regexp.as_deref(),
            )
            .map_err(|e| format!("cosignIssuer: {e}"))?
            .ok_or("cosignIssuer is required")?;
            policy.keyless = Some(stella_engine::trust::keyless_trust(
                verifier,
                stella_sigstore::verify::IdentityPolicy { identity, issuer },
                None,
            ));
        }
    }
    Ok(policy)
}

/// The sigstore trusted root fetched through TUF from `tufMirror`,
/// starting from the last trusted root an earlier run kept for this
/// provider (`super::tuf_state`), else from the uploaded `tufRoot`, with
/// `stella_trust` (the client of `stella trust update`) and a cache inside
/// the session. Expired, badly signed or rolled-back metadata fails with
/// the TUF reason; a success is kept for the next run.
async fn tuf_trusted_root(
    store: &Store,
    ctx: &TenantContext,
    config: &OciOpenVexConfig,
    session: &Session,
) -> Result<Vec<u8>, String> {
    let (Some(root), Some(mirror_url)) = (config.tuf_root, config.tuf_mirror.as_deref()) else {
        return Err("no trusted root: set offlineBundle, or tufRoot and tufMirror".into());
    };
    let mirror = stella_trust::Mirror::parse(mirror_url).map_err(|e| format!("tufMirror: {e}"))?;
    if mirror.as_str().starts_with("http://") && !config.allow_http {
        return Err("tufMirror: plain HTTP needs allowHttpRegistries".into());
    }
    let cache_dir = session.dir().join("tuf");
    let resumed = resume_tuf(store, ctx, &root.to_string(), mirror.as_str(), &cache_dir).await?;
    let tuf_root = if resumed {
        None
    } else {
        let path = session
            .materialize(store, ctx, OCI_OPENVEX, root)
            .await
            .map_err(|e| format!("tufRoot: {e}"))?;
        Some(std::fs::read(&path).map_err(|e| format!("tufRoot: {e}"))?)
    };
    let request = stella_trust::UpdateRequest {
        mirror: mirror.clone(),
        tuf_root,
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
        timeouts: Default::default(),
        extra_ca_pem: None,
    };
    let cache = stella_trust::TufCache::at(&cache_dir);
    let outcome = stella_trust::update(&cache, &request)
        .await
        .map_err(|e| format!("TUF refresh from tufMirror failed: {e}"))?;
    keep_tuf(store, ctx, &root.to_string(), mirror.as_str(), &cache_dir).await;
    Ok(outcome.cached.trusted_root_json)
}

/// Restores the TUF cache an earlier run kept for this `tufRoot` and
/// mirror into `dir`; false when there is none (start from `tufRoot`).
async fn resume_tuf(
    store: &Store,
    ctx: &TenantContext,
    tuf_root: &str,
    mirror: &str,
    dir: &Path,
) -> Result<bool, String> {
    let stored = store
        .get_provider_state(ctx, OCI_OPENVEX, tuf_state::STATE_NAME)
        .await
        .map_err(|e| format!("cannot read the kept TUF state: {e}"))?;
    let Some(state) = stored.and_then(|t| serde_json::from_str::<TufState>(&t).ok()) else {
        return Ok(false);
    };
    if !state.continues(tuf_root, mirror) {
        return Ok(false);
    }
    tuf_state::restore(dir, &state.files).map_err(|e| format!("kept TUF state: {e}"))?;
    Ok(true)
}

/// Keeps the cache of a successful refresh for the next run (a failure to
/// keep it is logged: the next run then starts from `tufRoot` again).
async fn keep_tuf(store: &Store, ctx: &TenantContext, tuf_root: &str, mirror: &str, dir: &Path) {
    let files = match tuf_state::capture(dir) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the TUF cache to keep it");
            return;
        }
    };
    let state = TufState {
        tuf_root: tuf_root.to_string(),
        mirror: mirror.to_string(),
        files,
    };
    let Ok(json) = serde_json::to_string(&state) else {
        return;
    };
    let saved = store
        .save_provider_state(
            ctx,
            OCI_OPENVEX,
            tuf_state::STATE_NAME,
            &json,
            &now_rfc3339(),
        )
        .await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "cannot keep the TUF state");
    }
}

/// A docker config directory for the registry client: the session's
/// `auth/` with `registryAuth` as `config.json`, or empty (never the
/// server user's own credentials).
async fn registry_auth(
    store: &Store,
    ctx: &TenantContext,
    config: &OciOpenVexConfig,
    session: &Session,
) -> Result<std::path::PathBuf, String> {
    let dir = session.dir().join("auth");
    std::fs::create_dir(&dir).map_err(|e| format!("cannot prepare registry auth: {e}"))?;
    if let Some(id) = config.registry_auth {
        let path = session
            .materialize(store, ctx, OCI_OPENVEX, id)
            .await
            .map_err(|e| format!("registryAuth: {e}"))?;
        std::fs::rename(&path, dir.join("config.json"))
            .map_err(|e| format!("cannot prepare registry auth: {e}"))?;
    }
    Ok(dir)
}

/// The fingerprint each image's last successful run stored.
async fn previous_fingerprints(store: &Store, ctx: &TenantContext) -> HashMap<String, Fingerprint> {
    let runs = match store.provider_runs(ctx, OCI_OPENVEX).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "reading the last runs failed; discovering every image");
            return Default::default();
        }
    };
    runs.into_iter()
        .filter(|r| r.result == "succeeded")
        .filter_map(|r| Fingerprint::from_text(&r.fingerprint).map(|f| (r.image, f)))
        .collect()
}

/// The registry of a subscription (`""` for one that is not a registry
/// reference).
fn registry_of(image: &str) -> String {
    repository_key(image)
        .map(|(_, r)| r.registry)
        .unwrap_or_default()
}

/// `registry/repository` of a subscription, `None` for one that is not a
/// registry reference.
fn repository_key(image: &str) -> Option<(String, RegistryReference)> {
    match Reference::parse(image) {
        Ok(Reference::Registry(r)) => Some((format!("{}/{}", r.registry, r.repository), r)),
        _ => None,
    }
}

/// One tag listing per repository whose subscribed images it saves
/// requests for (`poll::should_list`), keyed by `registry/repository`. A
/// listing that fails is left out (those images HEAD their companions).
async fn companion_listings(
    client: &RegistryClient,
    images: &[String],
    previous: &HashMap<String, Fingerprint>,
) -> HashMap<String, CompanionTags> {
    let mut groups: BTreeMap<String, (RegistryReference, Vec<Option<&Fingerprint>>)> =
        BTreeMap::new();
    for image in images {
        if let Some((key, reference)) = repository_key(image) {
            groups
                .entry(key)
                .or_insert_with(|| (reference, Vec::new()))
                .1
                .push(previous.get(image));
        }
    }
    let mut out = HashMap::new();
    for (key, (reference, seen)) in groups {
        if !poll::should_list(&seen) {
            continue;
        }
        match poll::list_companions(&client.repository(&reference)).await {
            Ok(tags) => {
                out.insert(key, tags);
            }
            Err(e) => tracing::warn!(error = %e, repository = %key, "tag listing failed"),
        }
    }
    out
}

/// What every image of a run shares.
struct ImageJob<'a> {
    client: &'a RegistryClient,
    config: &'a OciOpenVexConfig,
    config_digest: &'a str,
    policy: &'a TrustPolicy,
    /// Companion tags of the repositories this run listed.
    listings: HashMap<String, CompanionTags>,
    /// Time spent discovering (registry reads, signature verification,
    /// OpenVEX validation) and storing, over the run's images.
    stages: Arc<StageTimes>,
}

/// Microseconds per stage of a run, logged once at its end (the ingest
/// benchmark, bench/vex_ingest.sh, reads them).
#[derive(Default)]
struct StageTimes {
    discover_us: AtomicU64,
    store_us: AtomicU64,
}

impl StageTimes {
    fn add(counter: &AtomicU64, since: Instant) {
        let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        counter.fetch_add(us, Ordering::Relaxed);
    }
}

/// Discovers the subscribed images, up to `maxConcurrentImages` at once
/// (registry reads, signature checks and OpenVEX validation), while the
/// results are stored one image after the other in subscription order: the
/// per-run document budget is spent in that order, so the stored result
/// does not depend on which discovery finished first. Once the budget is
/// spent, the remaining images are deferred (and not discovered, unless
/// their discovery had already started).
async fn run_images(
    store: &Store,
    ctx: &TenantContext,
    job: &ImageJob<'_>,
    previous: &HashMap<String, Fingerprint>,
) -> (Vec<ImageRun>, IngestCounts) {
    use futures_util::StreamExt;
    let config = job.config;
    let limits = VexLimits {
        max_referrers: config.caps.referrers_per_image,
        max_document_bytes: config.caps.document_bytes,
        max_documents: config.caps.documents_per_run,
    };
    let spent = Arc::new(AtomicBool::new(false));
    let width = config.caps.concurrent_images.max(1);
    let (tx, rx) = tokio::sync::mpsc::channel(width);
    // Storing runs as its own task, so it goes on while this one verifies
    // and parses the next images (on another core when there is one).
    let storing = tokio::spawn(store_in_order(
        store.clone(),
        ctx.clone(),
        rx,
        Arc::clone(&job.stages),
        Arc::clone(&spent),
        config.caps.documents_per_run,
    ));
    let mut pending = futures_util::stream::FuturesOrdered::new();
    let mut in_flight: VecDeque<String> = VecDeque::new();
    let mut warm: HashSet<String> = HashSet::new();
    let mut images = config.images.iter().peekable();
    loop {
        // The first image of a registry goes alone: it fills the client's
        // per-registry state (referrers mode probe, token) that the others
        // then share, instead of each of them probing at once.
        while pending.len() < width {
            let Some(&image) = images.peek() else { break };
            let registry = registry_of(image);
            if !warm.contains(&registry) && in_flight.contains(&registry) {
                break;
            }
            images.next();
            in_flight.push_back(registry);
            pending.push_back(look_unless_spent(
                job,
                limits,
                image,
                previous.get(image.as_str()),
                &spent,
            ));
        }
        let Some(item) = pending.next().await else {
            break;
        };
        if let Some(registry) = in_flight.pop_front() {
            warm.insert(registry);
        }
        if tx.send(item).await.is_err() {
            break;
        }
    }
    drop(tx);
    match storing.await {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(error = %e, "storing the run's images failed");
            (Vec::new(), IngestCounts::default())
        }
    }
}

/// Stores the images' findings as they arrive, in subscription order,
/// spending the run's document budget (`documents_per_run`) in that
/// order; once it is spent, the remaining images are deferred and
/// `spent` tells the discovery side to stop.
async fn store_in_order(
    store: Store,
    ctx: TenantContext,
    mut rx: tokio::sync::mpsc::Receiver<Look>,
    stages: Arc<StageTimes>,
    spent: Arc<AtomicBool>,
    documents_per_run: usize,
) -> (Vec<ImageRun>, IngestCounts) {
    let mut budget = documents_per_run;
    let mut images = Vec::new();
    let mut counts = IngestCounts::default();
    while let Some((image, started_at, looked)) = rx.recv().await {
        let run = match looked {
            Some(looked) if budget > 0 => {
                store_image(&store, &ctx, &stages, budget, &image, started_at, looked).await
            }
            _ => deferred_image(&store, &ctx, &image, documents_per_run).await,
        };
        let accepted = run.counts.inserted + run.counts.superseded + run.counts.unchanged;
        budget = budget.saturating_sub(usize::try_from(accepted).unwrap_or(usize::MAX));
        if budget == 0 {
            spent.store(true, Ordering::Relaxed);
        }
        counts.add(&run.counts);
        images.push(run);
    }
    (images, counts)
}

/// The image, when its discovery started, and what it saw (`None`: not
/// discovered because the run's document budget was already spent).
type Look = (String, String, Option<Result<Looked, String>>);

async fn look_unless_spent(
    job: &ImageJob<'_>,
    limits: VexLimits,
    image: &str,
    previous: Option<&Fingerprint>,
    spent: &AtomicBool,
) -> Look {
    let started_at = now_rfc3339();
    if spent.load(Ordering::Relaxed) {
        return (image.to_string(), started_at, None);
    }
    let looked = look(job, limits, image, previous).await;
    (image.to_string(), started_at, Some(looked))
}

/// What discovery saw of one image, before anything is stored.
enum Looked {
    /// The fingerprint matches the last successful run's: nothing to do.
    Unchanged(Option<Fingerprint>),
    /// Discovered (and verified) for the resolved image digest, with the
    /// storage records of its accepted documents; the fingerprint to
    /// remember once stored.
    Found(Found),
}

/// What discovery found for one image, ready to store.
struct Found {
    discovery: VexDiscovery,
    records: Vec<Option<DocumentRecords>>,
    seen: Option<Fingerprint>,
    image_digest: stella_types::Digest,
}

/// Stores what discovery found for one image (at most `budget` documents)
/// and records the image's run status.
async fn store_image(
    store: &Store,
    ctx: &TenantContext,
    stages: &StageTimes,
    budget: usize,
    image: &str,
    started_at: String,
    looked: Result<Looked, String>,
) -> ImageRun {
    let mut run = ImageRun {
        image: image.to_string(),
        result: "failed".into(),
        reason: String::new(),
        counts: IngestCounts::default(),
    };
    let mut fingerprint = String::new();
    let stored = match looked {
        Ok(Looked::Unchanged(seen)) => Ok((
            IngestCounts::default(),
            "unchanged since the last run: discovery skipped".to_string(),
            seen,
        )),
        Ok(Looked::Found(mut found)) => {
            found.discovery.cap_documents(budget, &found.image_digest);
            ingest_found(store, ctx, stages, found).await
        }
        Err(reason) => Err(reason),
    };
    match stored {
        Ok((counts, reason, seen)) => {
            run.result = "succeeded".into();
            run.counts = counts;
            run.reason = reason;
            fingerprint = seen.map(|f| f.to_text()).unwrap_or_default();
        }
        Err(reason) => run.reason = reason,
    }
    let record = ProviderRunRecord {
        provider_id: OCI_OPENVEX.into(),
        image: image.to_string(),
        started_at,
        finished_at: Some(now_rfc3339()),
        result: run.result.clone(),
        reason: run.reason.clone(),
        counts_json: serde_json::to_string(&run.counts).unwrap_or_default(),
        fingerprint,
    };
    if let Err(e) = store.record_provider_run(ctx, &record).await {
        tracing::warn!(error = %e, "recording the image run failed");
    }
    run
}

/// Takes the image's fingerprint and, unless it matches the last
/// successful run's, resolves the image and discovers and verifies its
/// OpenVEX evidence. Reads the registry only; stores nothing.
async fn look(
    job: &ImageJob<'_>,
    limits: VexLimits,
    image: &str,
    previous: Option<&Fingerprint>,
) -> Result<Looked, String> {
    let reference = Reference::parse(image).map_err(|e| e.to_string())?;
    let Reference::Registry(registry_ref) = &reference else {
        return Err("not a registry reference".into());
    };
    let repo = job.client.repository(registry_ref);
    let how = poll::Observe {
        known_mode: previous.map(|p| p.mode.as_str()),
        config: job.config_digest,
        listed: job.listings.get(&format!(
            "{}/{}",
            registry_ref.registry, registry_ref.repository
        )),
    };
    let seen = match poll::observe(&repo, registry_ref, &how).await {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(error = %e, image, "change check failed; discovering");
            None
        }
    };
    if seen.is_some() && seen.as_ref() == previous {
        return Ok(Looked::Unchanged(seen));
    }
    let t0 = Instant::now();
    let resolved = stella_oci::artifact::resolve(&repo, &reference)
        .await
        .map_err(|e| format!("cannot resolve: {e}"))?;
    let request = VexRequest {
        image_name: format!("{}/{}", registry_ref.registry, registry_ref.repository),
        image: resolved,
        require_signatures: job.config.require_signatures,
        limits,
    };
    let listed = ListedRepository::new(&repo, how.listed);
    let found = discover_vex(
        &listed,
        &request,
        job.policy,
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let discovery = found.map_err(|e| e.to_string())?;
    let records = prepare_discovery(&discovery, OCI_OPENVEX).map_err(|e| e.to_string())?;
    StageTimes::add(&job.stages.discover_us, t0);
    Ok(Looked::Found(Found {
        discovery,
        records,
        seen,
        image_digest: request.image.digest,
    }))
}

/// Stores the accepted documents of one image's discovery, one
/// transaction per document. Returns the counts, notes and
/// the fingerprint to remember (`None`: search the image again next run).
async fn ingest_found(
    store: &Store,
    ctx: &TenantContext,
    stages: &StageTimes,
    found: Found,
) -> Result<(IngestCounts, String, Option<Fingerprint>), String> {
    let Found {
        discovery: found,
        records,
        seen,
        ..
    } = found;
    let t0 = Instant::now();
    let stored = ingest_prepared(store, ctx, &found, records, &now_rfc3339()).await;
    StageTimes::add(&stages.store_us, t0);
    let (mut counts, rejections) = stored.map_err(|e| e.to_string())?;
    counts.caps_hit = found.caps_hit.len() as u64;
    // A capped image is searched again next run (and reported again), and
    // so is one with a document refused for a timestamp still in the
    // future: the next run accepts it once that time has come, even when
    // nothing about the image changed.
    let seen = if found.caps_hit.is_empty() && found.not_yet_valid() == 0 {
        seen
    } else {
        None
    };
    let mut notes: Vec<String> = rejections
        .iter()
        .map(|r| format!("rejected {}: {}", r.source, r.reason))
        .collect();
    notes.extend(found.caps_hit.iter().map(|c| format!("cap hit: {c}")));
    Ok((counts, notes.join("; "), seen))
}

async fn finish(store: &Store, ctx: &TenantContext, mut summary: RunSummary) -> RunSummary {
    summary.finished_at = now_rfc3339();
    let record = ProviderRunRecord {
        provider_id: summary.provider_id.clone(),
        image: String::new(),
        started_at: summary.started_at.clone(),
        finished_at: Some(summary.finished_at.clone()),
        result: summary.result.clone(),
        reason: summary.reason.clone(),
        counts_json: serde_json::to_string(&summary.counts).unwrap_or_default(),
        fingerprint: String::new(),
    };
    if let Err(e) = store.record_provider_run(ctx, &record).await {
        tracing::warn!(error = %e, "recording the run failed");
    }
    summary
}

/// Runs every configured provider of every tenant whose poll interval has
/// passed since its last run (the scheduler calls this on a tick).
pub async fn run_due(store: &Store, materializer: &Materializer) {
    let configs = match store.list_provider_configs_all().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "listing provider configurations failed");
            return;
        }
    };
    let now = time::OffsetDateTime::now_utc();
    for (tenant, record) in configs {
        let ctx = TenantContext::from_verified_identity(tenant, "runner");
        let Ok(values) = serde_json::from_str::<provider::Values>(&record.values_json) else {
            continue;
        };
        let Ok(config) = provider::validate_oci_openvex(&values) else {
            continue;
        };
        let last = store
            .provider_runs(&ctx, &record.provider_id)
            .await
            .ok()
            .and_then(|runs| runs.into_iter().find(|r| r.image.is_empty()))
            .and_then(|r| stella_vex::Timestamp::parse(&r.started_at));
        let due = match last {
            Some(t) => {
                now - t.0
                    >= time::Duration::try_from(config.poll_interval)
                        .unwrap_or(time::Duration::HOUR)
            }
            None => true,
        };
        if due {
            let summary = run_provider(store, &ctx, &record.provider_id, materializer).await;
            tracing::info!(provider = %summary.provider_id, result = %summary.result, "provider run");
        }
    }
}
