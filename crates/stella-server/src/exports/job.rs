//! Running one export: the selection is resolved against registries and
//! written by `stella_export::run_export` on a thread of its own (with a
//! current-thread runtime, because the writer's future is not `Send`),
//! which a cancel signal stops at its next await point. Credentials come
//! only from the docker config directory the caller prepared (the tenant's
//! `registryAuth` artifact, or an empty directory): never the server's.
//!
//! This module does not touch the store; `mod.rs` records what happens.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use stella_bundle::archive::Compression;
use stella_bundle::format::ManifestSigner;
use stella_crypto::PrivateKey;
use stella_export::collect::{SourceRepository, is_schema_tag};
use stella_export::crypt::Recipients;
use stella_export::write::BaseExport;
use stella_export::{ExportRequest, ExportSummary, OutputKind, OutputSpec, Selection};
use stella_oci::AnyStore;
use stella_oci::registry::RegistryClient;
use stella_oci::store::Progress;
use stella_types::reference::RegistryReference;

use super::request::JobPlan;
use super::signing::KeySigner;

/// Why a job failed: a bounded code (the metrics label) and the reason.
#[derive(Clone, Debug)]
pub struct JobFailure {
    pub code: &'static str,
    pub reason: String,
}

impl JobFailure {
    pub fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

impl From<stella_export::ExportError> for JobFailure {
    fn from(e: stella_export::ExportError) -> Self {
        JobFailure::new(e.code(), e.to_string())
    }
}

/// Progress counters the writer advances and the job loop samples.
#[derive(Debug, Default)]
pub struct JobProgress {
    pub bytes_done: AtomicU64,
    pub bytes_total: AtomicU64,
    pub entries_done: AtomicU64,
    pub entries_started: AtomicU64,
}

impl Progress for JobProgress {
    fn start(&self, _label: &str, total: u64) {
        self.bytes_total.fetch_add(total, Ordering::Relaxed);
        self.entries_started.fetch_add(1, Ordering::Relaxed);
    }
    fn advance(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }
    fn finish(&self) {
        self.entries_done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything a job needs, resolved from the store beforehand.
pub struct Prepared {
    pub plan: JobPlan,
    pub selection: Selection,
    pub output: PathBuf,
    pub base: Option<BaseExport>,
    pub key: Option<PrivateKey>,
    /// Holds `config.json` (the tenant's registry credentials) or nothing.
    pub docker_config_dir: PathBuf,
}

/// Runs the export on its own thread; resolves when it ends or is cancelled.
pub async fn run(
    prepared: Prepared,
    progress: Arc<JobProgress>,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<ExportSummary, JobFailure> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("stella-export-job".into())
        .spawn(move || {
            let _ = tx.send(run_on_thread(prepared, progress, cancel));
        });
    if let Err(e) = spawned {
        return Err(JobFailure::new("io", format!("cannot start the job: {e}")));
    }
    rx.await
        .unwrap_or_else(|_| Err(JobFailure::new("internal", "the export job ended abruptly")))
}

fn run_on_thread(
    prepared: Prepared,
    progress: Arc<JobProgress>,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<ExportSummary, JobFailure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| JobFailure::new("io", format!("cannot start the job runtime: {e}")))?;
    rt.block_on(async move {
        tokio::select! {
            r = export(prepared, progress.as_ref()) => r,
            _ = cancel.wait_for(|c| *c) => Err(JobFailure::new("cancelled", "cancelled")),
        }
    })
}

async fn export(p: Prepared, progress: &JobProgress) -> Result<ExportSummary, JobFailure> {
    let client = crate::registry_auth::client(p.docker_config_dir.clone(), p.plan.plain_http)
        .map_err(|e| JobFailure::new("store", format!("cannot build the registry client: {e}")))?;
    let sources = sources(&client, &p.plan).await?;
    let recipients = if p.plan.recipients.is_empty() {
        None
    } else {
        Some(Recipients::parse(
            p.plan.recipients.iter().map(String::as_str),
        )?)
    };
    let signer = p.key.map(KeySigner);
    let request = ExportRequest {
        profile: p.plan.profile,
        selection: p.selection,
        sources,
        platforms: p
            .plan
            .platforms
            .as_ref()
            .map(|l| l.iter().cloned().collect::<BTreeSet<_>>()),
        base: p.base,
        // The server never reads SOURCE_DATE_EPOCH: `created` comes from
        // the images, as in the CLI without it.
        created: None,
        signer: signer.as_ref().map(|s| s as &dyn ManifestSigner),
        output: OutputSpec {
            path: p.output,
            kind: OutputKind::Archive(Compression::None),
            recipients,
            max_part_size: None,
        },
        progress,
    };
    Ok(stella_export::run_export(request).await?)
}

/// One source per repository, with the tags and digests the selection names.
async fn sources(
    client: &RegistryClient,
    plan: &JobPlan,
) -> Result<Vec<SourceRepository>, JobFailure> {
    let mut repos: BTreeMap<String, SourceRepository> = BTreeMap::new();
    for (_, r) in &plan.images {
        let entry = entry(&mut repos, client, r)?;
        match (&r.digest, &r.tag) {
            (Some(d), _) => {
                entry.digests.insert(d.clone());
            }
            (None, Some(t)) => {
                entry.tags.insert(t.clone());
            }
            (None, None) => {
                entry.tags.insert("latest".into());
            }
        }
    }
    for (raw, r) in &plan.repositories {
        let entry = entry(&mut repos, client, r)?;
        let AnyStore::Registry(repo) = &entry.store else {
            continue;
        };
        let tags = repo
            .list_tags()
            .await
            .map_err(|e| JobFailure::new("store", format!("cannot list the tags of {raw}: {e}")))?;
        if tags.is_empty() {
            return Err(JobFailure::new(
                "invalid-input",
                format!("repository {raw} has no tags"),
            ));
        }
        entry
            .tags
            .extend(tags.into_iter().filter(|t| !is_schema_tag(t)));
    }
    Ok(repos.into_values().collect())
}

fn entry<'a>(
    repos: &'a mut BTreeMap<String, SourceRepository>,
    client: &RegistryClient,
    r: &RegistryReference,
) -> Result<&'a mut SourceRepository, JobFailure> {
    let key = format!("{}/{}", r.registry, r.repository);
    if !repos.contains_key(&key) && repos.values().any(|s| s.repository == r.repository) {
        return Err(JobFailure::new(
            "invalid-input",
            format!(
                "two registries would both be exported as repository {:?}",
                r.repository
            ),
        ));
    }
    let plain = RegistryReference {
        registry: r.registry.clone(),
        repository: r.repository.clone(),
        tag: None,
        digest: None,
    };
    Ok(repos.entry(key).or_insert_with(|| SourceRepository {
        repository: r.repository.clone(),
        store: AnyStore::Registry(client.repository(&plain)),
        tags: BTreeSet::new(),
        digests: BTreeSet::new(),
    }))
}
