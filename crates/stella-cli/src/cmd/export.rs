//! `stella export run|verify|inspect|import`: the Export Center from the
//! command line. Resolves flags (selection, keys, recipients, identities,
//! output form), opens the source and target stores, calls
//! `stella-export` and prints. Exit codes: 0 ok, 1 an export that does not
//! verify, 2 usage, input or network errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use stella_bundle::archive::Compression;
use stella_bundle::format::ManifestSigner;
use stella_crypto::PrivateKey;
use stella_engine::bundle::ManifestKeys;
use stella_export::collect::SourceRepository;
use stella_export::crypt::{Identities, Recipients};
use stella_export::verify::DetachedSignatureCheck;
use stella_export::write::BaseExport;
use stella_export::{
    ExportError, OutputKind, OutputSpec, Profile, Selection, VerifyOptions, format,
};
use stella_oci::AnyStore;
use stella_oci::layout::OciLayout;
use stella_oci::registry::RegistryClient;
use stella_types::Reference;
use stella_types::reference::RegistryReference;

use crate::cli::{
    ExportCommand, ExportImportArgs, ExportInspectArgs, ExportProfileArg, ExportRunArgs,
    ExportVerifyArgs, RegistryArgs, TextOrJson,
};
use crate::exit::Outcome;

use super::key::{load_private_key, load_public_key};

pub async fn run(command: ExportCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    match command {
        ExportCommand::Run(a) => export_run(*a, registry).await,
        ExportCommand::Verify(a) => tokio::task::spawn_blocking(move || verify(a)).await?,
        ExportCommand::Inspect(a) => tokio::task::spawn_blocking(move || inspect(a)).await?,
        ExportCommand::Import(a) => import(a, registry).await,
    }
}

/// A verification failure exits 1 with its reason; anything else is exit 2.
fn finish_err(e: ExportError) -> anyhow::Result<Outcome> {
    if e.is_verification_failure() {
        eprintln!("stella: {e}");
        Ok(Outcome::VerificationFailed)
    } else {
        Err(anyhow::Error::new(e))
    }
}

use super::emit;

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    emit(&(serde_json::to_string_pretty(v).context("cannot render JSON")? + "\n"))
}

fn identities(path: Option<&Path>) -> anyhow::Result<Option<Identities>> {
    path.map(Identities::from_file)
        .transpose()
        .map_err(Into::into)
}

// ------------------------------------------------------------------ run

struct KeySigner(PrivateKey);

impl ManifestSigner for KeySigner {
    fn key_id(&self) -> String {
        self.0.public_key().keyid()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.0.sign(message).map_err(|e| e.to_string())
    }
}

fn profile(p: ExportProfileArg) -> Profile {
    match p {
        ExportProfileArg::MirrorFull => Profile::MirrorFull,
        ExportProfileArg::MirrorDelta => Profile::MirrorDelta,
        ExportProfileArg::JsonRaw => Profile::JsonRaw,
    }
}

fn output_kind(path: &Path) -> OutputKind {
    let name = path.to_string_lossy();
    if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
        OutputKind::Archive(Compression::Zstd)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        OutputKind::Archive(Compression::Gzip)
    } else if name.ends_with(".tar") {
        OutputKind::Archive(Compression::None)
    } else {
        OutputKind::Directory
    }
}

fn read_lines(path: &Path, what: &str) -> anyhow::Result<Vec<String>> {
    let bytes = super::read_capped(path, 16 * 1024 * 1024)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// The repository name a layout directory is exported as: its directory
/// name, lowercased, other characters replaced by `-`.
fn layout_repository(dir: &Path) -> anyhow::Result<String> {
    let base = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut name: String = base
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    format::check_repository_name(&name).map_err(|e| {
        anyhow::anyhow!(
            "the layout {} cannot be named as a repository: {e}",
            dir.display()
        )
    })?;
    Ok(name)
}

/// Collects the sources: one store per repository, with its tags and digests.
struct Sources {
    clients: BTreeMap<String, RegistryClient>,
    repos: BTreeMap<String, SourceRepository>,
}

impl Sources {
    fn client(&mut self, args: &RegistryArgs, registry: &str) -> anyhow::Result<RegistryClient> {
        if let Some(c) = self.clients.get(registry) {
            return Ok(c.clone());
        }
        let c = crate::store::registry_client(args, registry)?;
        self.clients.insert(registry.to_string(), c.clone());
        Ok(c)
    }

    fn entry(
        &mut self,
        args: &RegistryArgs,
        r: &Reference,
    ) -> anyhow::Result<&mut SourceRepository> {
        let (key, name, store) = match r {
            Reference::Registry(rr) => {
                let key = format!("{}/{}", rr.registry, rr.repository);
                let client = self.client(args, &rr.registry)?;
                let plain = RegistryReference {
                    registry: rr.registry.clone(),
                    repository: rr.repository.clone(),
                    tag: None,
                    digest: None,
                };
                (
                    key,
                    rr.repository.clone(),
                    AnyStore::Registry(client.repository(&plain)),
                )
            }
            Reference::Layout(l) => {
                let key = format!("oci:{}", l.dir.display());
                let name = layout_repository(&l.dir)?;
                let layout = OciLayout::open(&l.dir)
                    .with_context(|| format!("cannot open layout {}", l.dir.display()))?;
                (key, name, AnyStore::Layout(layout))
            }
        };
        if !self.repos.contains_key(&key) && self.repos.values().any(|s| s.repository == name) {
            anyhow::bail!("two sources would both be exported as repository {name:?}");
        }
        Ok(self.repos.entry(key).or_insert_with(|| SourceRepository {
            repository: name,
            store,
            tags: BTreeSet::new(),
            digests: BTreeSet::new(),
        }))
    }
}

async fn list_tags(store: &AnyStore) -> anyhow::Result<Vec<String>> {
    match store {
        AnyStore::Registry(r) => Ok(r.list_tags().await?),
        AnyStore::Layout(l) => {
            let l = l.clone();
            let idx = tokio::task::spawn_blocking(move || l.read_index()).await??;
            Ok(idx
                .manifests
                .iter()
                .filter_map(|d| d.annotation(stella_types::media_types::annotations::REF_NAME))
                .filter(|t| stella_types::reference::is_valid_tag(t))
                .map(str::to_string)
                .collect())
        }
    }
}

async fn build_sources(
    args: &ExportRunArgs,
    registry: &RegistryArgs,
) -> anyhow::Result<(Selection, Vec<SourceRepository>)> {
    let mut images = args.images.clone();
    if let Some(f) = &args.images_file {
        images.extend(read_lines(f, "images file")?);
    }
    if images.is_empty() && args.repositories.is_empty() {
        anyhow::bail!("nothing to export: give --image, --images-file or --repository");
    }
    let mut sources = Sources {
        clients: BTreeMap::new(),
        repos: BTreeMap::new(),
    };
    for s in &images {
        let r = crate::store::parse_reference(s)?;
        let entry = sources.entry(registry, &r)?;
        match (r.digest(), r.tag()) {
            (Some(d), _) => {
                entry.digests.insert(d.clone());
            }
            (None, Some(t)) => {
                entry.tags.insert(t.to_string());
            }
            (None, None) => {
                entry.tags.insert("latest".into());
            }
        }
    }
    for s in &args.repositories {
        let r = crate::store::parse_reference(s)?;
        if r.tag().is_some() || r.digest().is_some() {
            anyhow::bail!("--repository {s} names a tag or digest; give the repository only");
        }
        let entry = sources.entry(registry, &r)?;
        let tags = list_tags(&entry.store)
            .await
            .with_context(|| format!("cannot list the tags of {s}"))?;
        if tags.is_empty() {
            anyhow::bail!("--repository {s} has no tags");
        }
        // Fallback indexes are found through the referrers; cosign legacy
        // tags are not exported.
        entry
            .tags
            .extend(tags.into_iter().filter(|t| !is_schema_tag(t)));
    }
    let platforms = match args.include_platforms.trim() {
        "all" | "" => None,
        list => Some(
            list.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect::<BTreeSet<String>>()
                .into_iter()
                .collect::<Vec<_>>(),
        ),
    };
    let selection = Selection {
        images,
        repositories: args.repositories.clone(),
        platforms,
    };
    Ok((selection, sources.repos.into_values().collect()))
}

use stella_export::collect::is_schema_tag;

async fn export_run(args: ExportRunArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let profile = profile(args.profile);
    let (selection, sources) = build_sources(&args, registry).await?;
    let ids = identities(args.identity.as_deref())?;
    let base = match &args.since {
        Some(p) => {
            let (manifest, bytes) = stella_export::read::read_manifest(p, ids.as_ref())
                .with_context(|| format!("cannot read the base export {}", p.display()))?;
            Some(BaseExport {
                manifest,
                digest: format::manifest_digest(&bytes),
            })
        }
        None => None,
    };
    let signer = match &args.sign_key {
        Some(p) => Some(KeySigner(load_private_key(p)?)),
        None => None,
    };
    let mut recipient_lines = args.recipients.clone();
    if let Some(f) = &args.recipients_file {
        recipient_lines.extend(read_lines(f, "recipients file")?);
    }
    let recipients = if recipient_lines.is_empty() {
        None
    } else {
        Some(Recipients::parse(
            recipient_lines.iter().map(String::as_str),
        )?)
    };
    let platforms = selection
        .platforms
        .as_ref()
        .map(|p| p.iter().cloned().collect::<BTreeSet<_>>());
    let progress = crate::progress::for_args(registry);
    let request = stella_export::ExportRequest {
        profile,
        selection,
        sources,
        platforms,
        base,
        created: super::evidence::source_date_epoch()?,
        signer: signer.as_ref().map(|s| s as &dyn ManifestSigner),
        output: OutputSpec {
            kind: output_kind(&args.output),
            path: args.output.clone(),
            recipients,
            max_part_size: args.max_part_size,
        },
        progress: progress.as_ref(),
    };
    let summary = match stella_export::run_export(request).await {
        Ok(s) => s,
        Err(e) => return finish_err(e),
    };
    match args.format {
        TextOrJson::Text => {
            eprintln!(
                "exported {} ({} repositories, {} files, {} bytes) to {}",
                summary.manifest.profile.as_str(),
                summary.manifest.images.len(),
                summary.manifest.entries.len(),
                summary.entry_bytes,
                summary
                    .written
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            emit(&format!("{}\n", summary.manifest_digest))?;
        }
        TextOrJson::Json => print_json(&serde_json::json!({
            "manifestDigest": summary.manifest_digest,
            "profile": summary.manifest.profile,
            "base": summary.manifest.base,
            "inputsHash": summary.manifest.inputs_hash,
            "repositories": summary.manifest.images.len(),
            "files": summary.manifest.entries.len(),
            "bytes": summary.entry_bytes,
            "fetchedBlobs": summary.fetched_blobs,
            "written": summary.written,
        }))?,
    }
    Ok(Outcome::Success)
}

// ------------------------------------------------------------------ verify

fn key_verifier(keys: &[PathBuf]) -> anyhow::Result<Option<ManifestKeys>> {
    if keys.is_empty() {
        return Ok(None);
    }
    let mut loaded = Vec::new();
    for p in keys {
        loaded.push(load_public_key(p)?);
    }
    Ok(Some(ManifestKeys::new(
        loaded,
        super::verify::trust::cli_words(),
    )))
}

/// Keyless verification of a sigstore bundle over manifest.json, by the
/// same engine as `stella verify blob`.
struct KeylessManifest {
    verifier: stella_sigstore::Verifier,
    policy: stella_sigstore::Policy,
}

impl DetachedSignatureCheck for KeylessManifest {
    fn verify(&self, manifest: &[u8], bundle: &[u8]) -> Result<String, String> {
        let b = stella_sigstore::Bundle::parse(bundle).map_err(|e| format!("bundle: {e}"))?;
        let r = self
            .verifier
            .verify(&b, stella_sigstore::Artifact::Bytes(manifest), &self.policy)
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "keyless {} ({})",
            r.identity.as_deref().unwrap_or("?"),
            r.issuer.as_deref().unwrap_or("?")
        ))
    }
}

fn keyless_check(args: &ExportVerifyArgs) -> anyhow::Result<Option<KeylessManifest>> {
    let k = &args.keyless;
    let wanted = k.certificate_identity.is_some()
        || k.certificate_identity_regexp.is_some()
        || k.certificate_oidc_issuer.is_some()
        || k.certificate_oidc_issuer_regexp.is_some()
        || args.sigstore_bundle.is_some();
    if !wanted {
        if k.trusted_root.is_some() {
            anyhow::bail!(
                "--trusted-root is for keyless verification: give --certificate-identity and --certificate-oidc-issuer"
            );
        }
        return Ok(None);
    }
    let identity = stella_sigstore::IdentityPolicy {
        identity: super::verify::trust::matcher(
            &k.certificate_identity,
            &k.certificate_identity_regexp,
            "identity",
        )?,
        issuer: super::verify::trust::matcher(
            &k.certificate_oidc_issuer,
            &k.certificate_oidc_issuer_regexp,
            "oidc-issuer",
        )?,
    };
    let chosen = super::verify::trust::choose_root(
        k.trusted_root.as_deref(),
        crate::cmd::trust::unix_now(),
    )?;
    let root = stella_sigstore::TrustedRoot::from_json(&chosen.json)
        .context("trusted root is unusable")?;
    Ok(Some(KeylessManifest {
        verifier: stella_sigstore::Verifier::new(
            root,
            super::verify::trust::thresholds(k).config(),
        ),
        policy: stella_sigstore::Policy::Identity(identity),
    }))
}

fn verify(args: ExportVerifyArgs) -> anyhow::Result<Outcome> {
    let keys = key_verifier(&args.keys)?;
    let ids = identities(args.identity.as_deref())?;
    let keyless = keyless_check(&args)?;
    let bundle = match &args.sigstore_bundle {
        Some(p) => Some(
            super::read_capped(p, 16 * 1024 * 1024)
                .with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let opts = VerifyOptions {
        verifier: keys
            .as_ref()
            .map(|k| k as &dyn stella_bundle::ManifestSignatureVerifier),
        identities: ids.as_ref(),
        keyless: keyless.as_ref().map(|k| k as &dyn DetachedSignatureCheck),
        sigstore_bundle: bundle.as_deref(),
    };
    let report = match stella_export::verify_export(&args.export, &opts) {
        Ok(r) => r,
        Err(e) => return finish_err(e),
    };
    match args.output {
        TextOrJson::Json => print_json(&report)?,
        TextOrJson::Text => {
            let mut out = format!(
                "export {} ({}, {} files, {} bytes, signature {})\n",
                report.manifest_digest,
                report.profile.as_str(),
                report.files,
                report.bytes,
                report.signature
            );
            if let Some(b) = &report.base {
                out.push_str(&format!("base: {b}\n"));
            }
            for f in &report.failures {
                out.push_str(&format!("FAIL [{}] {}\n", f.code, f.message));
            }
            out.push_str(if report.verified {
                "verified\n"
            } else {
                "NOT verified\n"
            });
            emit(&out)?;
        }
    }
    Ok(if report.verified {
        Outcome::Success
    } else {
        Outcome::VerificationFailed
    })
}

// ------------------------------------------------------------------ inspect

fn inspect(args: ExportInspectArgs) -> anyhow::Result<Outcome> {
    let ids = identities(args.identity.as_deref())?;
    let (m, bytes) = match stella_export::read::read_manifest(&args.export, ids.as_ref()) {
        Ok(x) => x,
        Err(e) => return finish_err(e),
    };
    let digest = format::manifest_digest(&bytes);
    match args.output {
        TextOrJson::Json => print_json(&serde_json::json!({
            "manifestDigest": digest,
            "manifest": m,
        }))?,
        TextOrJson::Text => {
            let mut out = format!(
                "export {digest}\nprofile: {}\ncreated: {}\nfiles: {} ({} bytes)\n",
                m.profile.as_str(),
                m.created,
                m.entries.len(),
                m.total_bytes()
            );
            if let Some(b) = &m.base {
                out.push_str(&format!("base: {b}\n"));
            }
            for r in &m.images {
                out.push_str(&format!(
                    "{}: {} tags, {} images, {} referrers, {} items\n",
                    r.repository,
                    r.tags.len(),
                    r.images.len(),
                    r.referrers.len(),
                    r.content.len()
                ));
                for (t, d) in &r.tags {
                    out.push_str(&format!("  {t} {d}\n"));
                }
            }
            emit(&out)?;
        }
    }
    Ok(Outcome::Success)
}

// ------------------------------------------------------------------ import

enum Target {
    Registry {
        client: RegistryClient,
        registry: String,
        prefix: String,
    },
    Layouts(PathBuf),
}

fn parse_target(s: &str, registry: &RegistryArgs) -> anyhow::Result<Target> {
    if let Some(dir) = s.strip_prefix("oci:") {
        if dir.is_empty() {
            anyhow::bail!("--to oci: needs a directory");
        }
        return Ok(Target::Layouts(PathBuf::from(dir)));
    }
    let (host, prefix) = s
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("--to {s:?} is not <registry>/<prefix> or oci:<dir>"))?;
    let prefix = prefix.trim_matches('/').to_string();
    format::check_repository_name(&prefix).map_err(|e| anyhow::anyhow!("--to {s:?}: {e}"))?;
    Ok(Target::Registry {
        client: crate::store::registry_client(registry, host)?,
        registry: host.to_string(),
        prefix,
    })
}

fn open_target(target: &Target, repo: &str) -> Result<AnyStore, ExportError> {
    match target {
        Target::Registry {
            client,
            registry,
            prefix,
        } => Ok(AnyStore::Registry(client.repository(&RegistryReference {
            registry: registry.clone(),
            repository: format!("{prefix}/{repo}"),
            tag: None,
            digest: None,
        }))),
        Target::Layouts(dir) => OciLayout::open_or_create(&dir.join(repo))
            .map(AnyStore::Layout)
            .map_err(|e| {
                ExportError::store(format!("opening layout {}", dir.join(repo).display()), e)
            }),
    }
}

async fn import(args: ExportImportArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let target = parse_target(&args.to, registry)?;
    let keys = key_verifier(&args.keys)?;
    let ids = identities(args.identity.as_deref())?;
    let opts = VerifyOptions {
        verifier: keys
            .as_ref()
            .map(|k| k as &dyn stella_bundle::ManifestSignatureVerifier),
        identities: ids.as_ref(),
        keyless: None,
        sigstore_bundle: None,
    };
    let open = |repo: &str| open_target(&target, repo);
    let report = match stella_export::import::import_export(
        &args.export,
        args.base.as_deref(),
        &open,
        &opts,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return finish_err(e),
    };
    match args.output {
        TextOrJson::Json => print_json(&report)?,
        TextOrJson::Text => {
            let mut out = format!(
                "imported {} repositories: {} blobs pushed ({} already there), {} manifests pushed ({} already there), {} tags, {} referrers recorded, {} removed\n",
                report.repositories,
                report.blobs_pushed,
                report.blobs_skipped,
                report.manifests_pushed,
                report.manifests_skipped,
                report.tags,
                report.referrers_recorded,
                report.referrers_removed
            );
            for t in &report.tags_left {
                out.push_str(&format!("note: tag {t} was removed at the source but registries cannot delete a tag alone\n"));
            }
            emit(&out)?;
        }
    }
    Ok(Outcome::Success)
}
