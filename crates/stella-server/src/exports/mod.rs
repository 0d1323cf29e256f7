//! Export Center jobs inside `stella serve` (issue 14 §4): `POST /exports`
//! queues a job, which runs in the server (at most [`CONCURRENT_JOBS`] at
//! once) through the `stella-export` library and leaves one file,
//! `<data-dir>/exports/<tenant>/<id>/export.tar`, written atomically by
//! the library (temp file + rename).
//!
//! - [`request`]: the request body and its validation.
//! - [`job`]: one run (sources, credentials, signing, the writer thread).
//! - [`signing`]: the tenant's export-signing key.
//!
//! State lives in the store (`export_jobs`, migration 0005); live jobs
//! also publish their record on a `watch` channel for server-sent events.
//! On start-up every job still `queued` or `running` (the server stopped
//! under it) is marked `failed` with reason `interrupted`: it is not
//! re-queued, since its request may have named credentials that changed
//! since; the client posts it again (same inputs, same manifest digest).
//!
//! This module does not speak HTTP (`routes::exports` does).

pub mod job;
pub mod request;
pub mod signing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use uuid::Uuid;

use stella_export::write::BaseExport;
use stella_export::{Selection, format};
use stella_store::{ExportJobRecord, ExportRepository, Store, TenantContext};
use stella_types::Digest;
use stella_types::digest::{DigestAlgorithm, Hasher};

use crate::error::{ApiError, FieldError};
use crate::materializer::{MaterializeError, Materializer, Session};
use crate::metrics::Metrics;
use job::{JobFailure, JobProgress, Prepared};
use request::{ExportCreate, JobPlan};

/// Jobs running at the same time; the rest wait `queued`.
pub const CONCURRENT_JOBS: usize = 2;
/// The reason recorded for jobs a restart found unfinished.
pub const INTERRUPTED: &str = "interrupted";
/// The file of a finished export inside its job directory.
pub const EXPORT_FILE: &str = "export.tar";
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
const CANCEL_WAIT: Duration = Duration::from_secs(30);

/// The directory name of a tenant under `exports/` and `keys/exports/`:
/// the tenant id when it is a plain name, else a hash of it.
pub fn tenant_dir_name(tenant: &str) -> String {
    let plain = !tenant.is_empty()
        && tenant.len() <= 64
        && !tenant.starts_with('-')
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        tenant.to_string()
    } else {
        let d = Digest::sha256_of(tenant.as_bytes());
        format!("t-{}", d.hex().get(..32).unwrap_or_default())
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn now_rfc3339() -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_default()
}

/// True for `succeeded`, `failed` and `deleted`.
pub fn is_final(status: &str) -> bool {
    !matches!(status, "queued" | "running")
}

struct Live {
    events: watch::Sender<ExportJobRecord>,
    cancel: watch::Sender<bool>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// The job runner the routes share.
pub struct ExportService {
    store: Store,
    data_dir: PathBuf,
    metrics: Arc<Metrics>,
    materializer: Materializer,
    permits: Arc<Semaphore>,
    live: Mutex<HashMap<Uuid, Live>>,
    /// Set when the server shuts down: event streams end.
    closing: watch::Sender<bool>,
}

impl ExportService {
    pub fn new(store: Store, data_dir: PathBuf, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            data_dir,
            metrics,
            materializer: Materializer::new(&std::env::temp_dir()),
            permits: Arc::new(Semaphore::new(CONCURRENT_JOBS)),
            live: Mutex::new(HashMap::new()),
            closing: watch::channel(false).0,
        }
    }

    /// Ends every event stream (at shutdown).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves when the server shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// At start-up: marks unfinished jobs `failed` (`interrupted`).
    pub async fn fail_interrupted(&self) -> Result<u64, stella_store::StoreError> {
        let n = self
            .store
            .fail_live_export_jobs(INTERRUPTED, &now_rfc3339())
            .await?;
        for _ in 0..n {
            self.metrics.export_failed(INTERRUPTED);
        }
        Ok(n)
    }

    /// `<data-dir>/exports/<tenant>/<id>`.
    pub fn job_dir(&self, ctx: &TenantContext, id: Uuid) -> PathBuf {
        self.data_dir
            .join("exports")
            .join(tenant_dir_name(ctx.tenant()))
            .join(id.to_string())
    }

    /// The downloadable file of a finished job (`None` when it has none).
    pub fn file_of(&self, rec: &ExportJobRecord) -> Option<PathBuf> {
        rec.file_path.as_ref().map(|p| self.data_dir.join(p))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Live>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live record channel of a queued or running job.
    pub fn subscribe(&self, id: Uuid) -> Option<watch::Receiver<ExportJobRecord>> {
        self.lock().get(&id).map(|l| l.events.subscribe())
    }

    /// Checks what needs the store, records the job `queued` and starts it.
    pub async fn submit(
        self: &Arc<Self>,
        ctx: &TenantContext,
        body: &ExportCreate,
        plan: JobPlan,
    ) -> Result<ExportJobRecord, ApiError> {
        let base_file = match plan.since {
            Some(since) => Some(self.base_file(ctx, since).await?),
            None => None,
        };
        let rec = ExportJobRecord {
            export_id: Uuid::now_v7(),
            profile: plan.profile.as_str().to_string(),
            request_json: serde_json::to_string(body).map_err(|_| ApiError::Internal)?,
            status: "queued".into(),
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
            created_at: now_rfc3339(),
            started_at: None,
            finished_at: None,
            created_by: ctx.subject().to_string(),
        };
        self.store.insert_export_job(ctx, &rec).await?;
        let (events, _) = watch::channel(rec.clone());
        let (cancel, cancel_rx) = watch::channel(false);
        let mut live = self.lock();
        live.insert(
            rec.export_id,
            Live {
                events,
                cancel,
                handle: None,
            },
        );
        let run = JobRun {
            svc: self.clone(),
            ctx: ctx.clone(),
            plan,
            base_file,
            rec: rec.clone(),
        };
        let handle = tokio::spawn(run.run(cancel_rx));
        if let Some(l) = live.get_mut(&rec.export_id) {
            l.handle = Some(handle);
        }
        Ok(rec)
    }

    /// The file of `since`, which must be a succeeded export of the tenant.
    async fn base_file(&self, ctx: &TenantContext, since: Uuid) -> Result<PathBuf, ApiError> {
        let invalid = |message: &str| {
            ApiError::Validation(vec![FieldError::new(
                "$.options.since",
                "INVALID_BASE",
                message,
            )])
        };
        let base = self
            .store
            .get_export_job(ctx, since)
            .await?
            .ok_or_else(|| invalid("no such export in this tenant"))?;
        if base.status != "succeeded" {
            return Err(invalid("the base export has not succeeded"));
        }
        self.file_of(&base)
            .ok_or_else(|| invalid("the base export has no file"))
    }

    /// Stops a live job (if it is one) and waits until it has stopped
    /// writing. True when it was live.
    pub async fn cancel(&self, id: Uuid) -> bool {
        let live = self.lock().remove(&id);
        let Some(live) = live else {
            return false;
        };
        let _ = live.cancel.send(true);
        if let Some(handle) = live.handle {
            let _ = tokio::time::timeout(CANCEL_WAIT, handle).await;
        }
        true
    }

    fn publish(&self, rec: &ExportJobRecord) {
        if let Some(l) = self.lock().get(&rec.export_id) {
            l.events.send_replace(rec.clone());
        }
    }

    async fn save(&self, ctx: &TenantContext, rec: &ExportJobRecord) {
        if let Err(e) = self.store.update_export_job(ctx, rec).await {
            tracing::warn!(export = %rec.export_id, error = %e, "recording export progress failed");
        }
        self.publish(rec);
    }
}

/// One job from `queued` to its end.
struct JobRun {
    svc: Arc<ExportService>,
    ctx: TenantContext,
    plan: JobPlan,
    base_file: Option<PathBuf>,
    rec: ExportJobRecord,
}

impl JobRun {
    async fn run(mut self, mut cancel: watch::Receiver<bool>) {
        let permits = self.svc.permits.clone();
        let permit = tokio::select! {
            p = permits.acquire_owned() => p.ok(),
            _ = cancel.wait_for(|c| *c) => None,
        };
        if permit.is_none() {
            return;
        }
        self.rec.status = "running".into();
        self.rec.started_at = Some(now_rfc3339());
        self.svc.save(&self.ctx, &self.rec).await;
        let started = Instant::now();
        let outcome = self.execute(cancel).await;
        let svc = self.svc.clone();
        match outcome {
            Err(f) if f.code == "cancelled" => {
                // DELETE records the end; this job only stops.
                return;
            }
            Ok(()) => {
                self.rec.status = "succeeded".into();
                let bytes = u64::try_from(self.rec.file_size.unwrap_or(0)).unwrap_or(0);
                svc.metrics.export_finished(
                    &self.rec.profile,
                    started.elapsed().as_secs_f64(),
                    bytes,
                );
            }
            Err(f) => {
                tracing::info!(export = %self.rec.export_id, code = f.code, reason = %f.reason, "export failed");
                self.rec.status = "failed".into();
                self.rec.reason = f.reason;
                svc.metrics.export_failed(f.code);
            }
        }
        self.rec.finished_at = Some(now_rfc3339());
        svc.save(&self.ctx, &self.rec).await;
        svc.lock().remove(&self.rec.export_id);
    }

    async fn execute(&mut self, cancel: watch::Receiver<bool>) -> Result<(), JobFailure> {
        let session = self
            .svc
            .materializer
            .open_session()
            .map_err(|e| JobFailure::new("io", e.to_string()))?;
        let prepared = self.prepare(&session).await?;
        let output = prepared.output.clone();
        let public = prepared.key.as_ref().map(|k| k.public_key().clone());
        let progress = Arc::new(JobProgress::default());
        let fut = job::run(prepared, progress.clone(), cancel);
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        let result = loop {
            tokio::select! {
                r = &mut fut => break r,
                _ = tick.tick() => {
                    if self.sample(&progress) {
                        self.svc.save(&self.ctx, &self.rec).await;
                    }
                }
            }
        };
        let _ = session.close().await;
        let summary = result?;
        self.sample(&progress);
        let (size, sha256) = hash_file(output.clone()).await?;
        let entries = i64::try_from(summary.manifest.entries.len()).unwrap_or(i64::MAX);
        self.rec.entries_total = entries;
        self.rec.entries_done = entries;
        self.rec.manifest_digest = Some(summary.manifest_digest.to_string());
        self.rec.file_path = output
            .strip_prefix(&self.svc.data_dir)
            .ok()
            .map(|p| p.to_string_lossy().to_string());
        self.rec.file_size = Some(i64::try_from(size).unwrap_or(i64::MAX));
        self.rec.file_sha256 = Some(sha256);
        let encrypted = !self.plan.recipients.is_empty();
        let verification = verify_file(output, public, encrypted).await?;
        let verified = verification
            .get("verified")
            .and_then(serde_json::Value::as_bool);
        self.rec.verification_json = Some(verification.to_string());
        if verified == Some(false) {
            return Err(JobFailure::new(
                "verification",
                format!("the written export does not verify: {verification}"),
            ));
        }
        Ok(())
    }

    /// Copies the counters into the record; true when something moved.
    fn sample(&mut self, p: &JobProgress) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let now = (
            as_i64(p.bytes_done.load(Relaxed)),
            as_i64(p.bytes_total.load(Relaxed)),
            as_i64(p.entries_done.load(Relaxed)),
            as_i64(p.entries_started.load(Relaxed)),
        );
        let before = (
            self.rec.bytes_done,
            self.rec.bytes_total,
            self.rec.entries_done,
            self.rec.entries_total,
        );
        (
            self.rec.bytes_done,
            self.rec.bytes_total,
            self.rec.entries_done,
            self.rec.entries_total,
        ) = now;
        now != before
    }

    async fn prepare(&self, session: &Session) -> Result<Prepared, JobFailure> {
        let auth_dir = crate::registry_auth::stage(
            session,
            &self.svc.store,
            &self.ctx,
            self.plan.registry_auth.as_ref(),
        )
        .await
        .map_err(|e| match e {
            MaterializeError::Io { .. } => {
                JobFailure::new("io", format!("cannot prepare registry auth: {e}"))
            }
            other => JobFailure::new("registry-auth", format!("registryAuth: {other}")),
        })?;
        let base = match self.base_file.clone() {
            Some(file) => Some(read_base(file).await?),
            None => None,
        };
        let key = if self.plan.sign {
            let data_dir = self.svc.data_dir.clone();
            let tenant = self.ctx.tenant().to_string();
            let key = tokio::task::spawn_blocking(move || signing::tenant_key(&data_dir, &tenant))
                .await
                .map_err(|_| JobFailure::new("internal", "loading the signing key failed"))?
                .map_err(|e| JobFailure::new("signing-key", e.to_string()))?;
            Some(key)
        } else {
            None
        };
        let dir = self.svc.job_dir(&self.ctx, self.rec.export_id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| JobFailure::new("io", format!("cannot create the job directory: {e}")))?;
        Ok(Prepared {
            selection: Selection {
                images: self
                    .plan
                    .images
                    .iter()
                    .map(|(raw, _)| raw.clone())
                    .collect(),
                repositories: self
                    .plan
                    .repositories
                    .iter()
                    .map(|(raw, _)| raw.clone())
                    .collect(),
                platforms: self.plan.platforms.clone(),
            },
            plan: self.plan.clone(),
            output: dir.join(EXPORT_FILE),
            base,
            key,
            docker_config_dir: auth_dir,
        })
    }
}

async fn read_base(file: PathBuf) -> Result<BaseExport, JobFailure> {
    tokio::task::spawn_blocking(move || {
        let (manifest, bytes) = stella_export::read::read_manifest(&file, None)?;
        Ok(BaseExport {
            manifest,
            digest: format::manifest_digest(&bytes),
        })
    })
    .await
    .map_err(|_| JobFailure::new("internal", "reading the base export failed"))?
    .map_err(|e: stella_export::ExportError| {
        JobFailure::new(e.code(), format!("the base export (since): {e}"))
    })
}

/// Verifies the finished file with the `stella-export` verifier (as
/// `stella export verify --key <the tenant's key>` would): the report as
/// JSON. An encrypted export cannot be read without its recipients'
/// identities, which the server does not hold: `verified` is then null.
async fn verify_file(
    path: PathBuf,
    key: Option<stella_crypto::PublicKey>,
    encrypted: bool,
) -> Result<serde_json::Value, JobFailure> {
    if encrypted {
        return Ok(serde_json::json!({
            "verified": null,
            "note": "encrypted to its recipients: verify after decrypting (stella export verify --identity)",
        }));
    }
    tokio::task::spawn_blocking(move || {
        let words = stella_attest::verify::TrustWords {
            key: "the tenant's export key".into(),
            ca_root: "a CA root".into(),
            via_ca_root: "a CA root".into(),
        };
        let keys = key.map(|k| stella_engine::bundle::ManifestKeys::new(vec![k], words));
        let opts = stella_export::VerifyOptions {
            verifier: keys
                .as_ref()
                .map(|k| k as &dyn stella_bundle::ManifestSignatureVerifier),
            identities: None,
            keyless: None,
            sigstore_bundle: None,
        };
        match stella_export::verify_export(&path, &opts) {
            Ok(report) => serde_json::to_value(&report).unwrap_or_default(),
            Err(e) => serde_json::json!({
                "verified": false,
                "failures": [{"code": e.code(), "message": e.to_string()}],
            }),
        }
    })
    .await
    .map_err(|_| JobFailure::new("internal", "verifying the export failed"))
}

/// Size and hex sha256 of a file (the download's ETag).
async fn hash_file(path: PathBuf) -> Result<(u64, String), JobFailure> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)?;
        let mut h = Hasher::new(DigestAlgorithm::Sha256);
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            h.update(buf.get(..n).unwrap_or_default());
        }
        Ok::<_, std::io::Error>((size, h.finish().hex().to_string()))
    })
    .await
    .map_err(|_| JobFailure::new("internal", "hashing the export failed"))?
    .map_err(|e| JobFailure::new("io", format!("hashing the export: {e}")))
}
