//! `stella evidence ...`: push, list, pull and delete referrers, repair a
//! fallback index; `export-bundle` is dispatched to the bundle module.
//! `pull-referrer` (and `export-bundle`) stop cleanly on SIGINT/SIGTERM:
//! the work is dropped, which removes its temporary files.
//!
//! Each command resolves the user's reference once (a tag becomes a digest
//! up front), calls the generic operations in `stella_oci` on whichever store
//! the reference names, and prints text or JSON. The JSON shapes are a
//! documented, stable contract (docs/referrers.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};
use stella_oci::AnyStore;
use stella_oci::artifact::{self, ArtifactSpec, LayerSource};
use stella_oci::referrers::{ReferrerNode, is_index_media_type, walk_referrers_with_buildx};
use stella_oci::store::{ContentRead, ReferrersRead};
use stella_types::Reference;
use stella_types::limits::{DEFAULT_REFERRER_DEPTH, MAX_REFERRER_DEPTH};
use stella_types::media_types::annotations;

use crate::cli::{
    DeleteReferrerArgs, EvidenceCommand, ListFormat, ListReferrersArgs, PullReferrerArgs,
    PushReferrerArgs, RegistryArgs, RepairIndexArgs, TextOrJson,
};
use crate::exit::Outcome;
use crate::store::{OpenMode, open};

pub async fn run(command: EvidenceCommand, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    match command {
        EvidenceCommand::PushReferrer(a) => push(a, registry).await,
        EvidenceCommand::ListReferrers(a) => list(a, registry).await,
        EvidenceCommand::PullReferrer(a) => pull(a, registry).await,
        EvidenceCommand::DeleteReferrer(a) => delete(a, registry).await,
        EvidenceCommand::RepairIndex(a) => repair(a, registry).await,
        EvidenceCommand::ExportBundle(a) => super::bundle::export(a, registry).await,
    }
}

/// Standard output, block-buffered (one write for a whole listing).
fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    let mut out = stdout();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// The media type for a `--file` layer by extension: `.json` is
/// `application/json`, anything else `application/octet-stream`.
pub fn default_media_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Splits `--file` into (path, media type): `path:media/type` when `path`
/// as typed is not an existing file and the part after the last `:`
/// contains a `/`; otherwise the whole value is the path and the media
/// type comes from [`default_media_type`]. Fails if the file is missing.
pub fn parse_file_arg(arg: &Path) -> anyhow::Result<(PathBuf, String)> {
    let (path, media_type) = match arg.to_str() {
        Some(s) if !arg.exists() => match s.rsplit_once(':') {
            Some((p, mt))
                if !p.is_empty() && mt.contains('/') && !mt.contains(char::is_whitespace) =>
            {
                (PathBuf::from(p), mt.to_string())
            }
            _ => (arg.to_path_buf(), default_media_type(arg).to_string()),
        },
        _ => (arg.to_path_buf(), default_media_type(arg).to_string()),
    };
    let meta =
        std::fs::metadata(&path).with_context(|| format!("cannot read file {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a regular file", path.display());
    }
    Ok((path, media_type))
}

/// Parses repeated `KEY=VALUE` annotations (a later key wins).
pub fn parse_annotations(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in raw {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("annotation {a:?} is not KEY=VALUE"))?;
        if k.trim().is_empty() {
            anyhow::bail!("annotation {a:?} has an empty key");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `SOURCE_DATE_EPOCH` when set (and not empty): the time to stamp on what
/// Stella creates, for reproducible output. Only the binary reads it; the
/// libraries take the time as a parameter.
pub(crate) fn source_date_epoch() -> anyhow::Result<Option<time::OffsetDateTime>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => stella_types::timestamp::parse_epoch_seconds(&v)
            .map(Some)
            .map_err(|_| {
                anyhow::anyhow!(
                    "SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds since 1970 in range"
                )
            }),
        _ => Ok(None),
    }
}

/// Sets `org.opencontainers.image.created` from `SOURCE_DATE_EPOCH` (when
/// set) unless the annotations already carry one; the library stamps now
/// when neither is given.
pub(crate) fn stamp_created(ann: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    if let Some(t) = source_date_epoch()? {
        ann.entry(annotations::CREATED.to_string())
            .or_insert_with(|| stella_types::timestamp::rfc3339(t));
    }
    Ok(())
}

async fn push(a: PushReferrerArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let mut layers = Vec::new();
    for f in &a.files {
        let (path, media_type) = parse_file_arg(f)?;
        layers.push(LayerSource::File { path, media_type });
    }
    let mut annotations = parse_annotations(&a.annotations)?;
    stamp_created(&mut annotations)?;
    let (reference, store) = open(&a.image, registry, OpenMode::Existing)?;
    let subject = artifact::resolve(&store, &reference).await?;
    let spec = ArtifactSpec {
        artifact_type: a.artifact_type.clone(),
        layers,
        annotations,
    };
    let progress = crate::progress::for_args(registry);
    let pushed = artifact::push_referrer(&store, &subject, &spec, progress.as_ref()).await?;
    let d = &pushed.descriptor;
    match a.output {
        TextOrJson::Text => println!("{}", d.digest),
        TextOrJson::Json => print_json(&json!({
            "digest": d.digest.to_string(),
            "mediaType": d.media_type,
            "artifactType": d.artifact_type,
            "size": d.size,
            "subject": pushed.subject.digest.to_string(),
            "reference": pinned(&reference, &d.digest).to_string(),
            "mode": pushed.mode.as_str(),
        }))?,
    }
    Ok(Outcome::Success)
}

/// `reference`'s repository or layout pinned to `digest`, without its tag.
fn pinned(reference: &Reference, digest: &stella_types::Digest) -> Reference {
    let mut r = reference.with_digest(digest.clone());
    match &mut r {
        Reference::Registry(x) => x.tag = None,
        Reference::Layout(x) => x.tag = None,
    }
    r
}

/// The subject descriptor of a reference, resolved once.
async fn subject_of(
    store: &AnyStore,
    reference: &Reference,
) -> anyhow::Result<stella_types::Descriptor> {
    Ok(artifact::resolve(store, reference).await?)
}

fn node_json(n: &ReferrerNode) -> Value {
    let d = &n.descriptor;
    let mut ann = d.annotations.clone();
    let tag = if n.legacy.is_some() {
        ann.remove(annotations::REF_NAME)
    } else {
        None
    };
    let mut o = serde_json::Map::new();
    o.insert("digest".into(), json!(d.digest.to_string()));
    o.insert("mediaType".into(), json!(d.media_type));
    o.insert("artifactType".into(), json!(d.artifact_type));
    o.insert("size".into(), json!(d.size));
    o.insert("annotations".into(), json!(ann));
    if n.dangling {
        o.insert("dangling".into(), json!(true));
    }
    if let Some(kind) = &n.legacy {
        o.insert("legacy".into(), json!(kind));
        o.insert("tag".into(), json!(tag));
    }
    if let Some(about) = &n.buildx_about {
        o.insert("source".into(), json!(BUILDX_SOURCE));
        o.insert("about".into(), json!(about.to_string()));
    }
    if !n.children.is_empty() {
        o.insert(
            "referrers".into(),
            Value::Array(n.children.iter().map(node_json).collect()),
        );
    }
    Value::Object(o)
}

/// The `source` of a listed buildx attestation manifest (JSON output).
const BUILDX_SOURCE: &str = "buildx-attestation-manifest";

fn flags(n: &ReferrerNode) -> String {
    let mut f = Vec::new();
    if n.dangling {
        f.push("dangling".to_string());
    }
    if let Some(k) = &n.legacy {
        f.push(format!("legacy-{k}"));
    }
    if n.buildx_about.is_some() {
        f.push("buildx".to_string());
    }
    f.join(",")
}

fn created(n: &ReferrerNode) -> &str {
    n.descriptor.annotation(annotations::CREATED).unwrap_or("-")
}

fn artifact_type_of(n: &ReferrerNode) -> &str {
    n.descriptor.artifact_type.as_deref().unwrap_or("-")
}

fn print_table(nodes: &[ReferrerNode]) -> anyhow::Result<()> {
    let mut out = stdout();
    let rows: Vec<[String; 5]> = nodes
        .iter()
        .map(|n| {
            [
                n.descriptor.digest.to_string(),
                artifact_type_of(n).to_string(),
                n.descriptor.size.to_string(),
                created(n).to_string(),
                flags(n),
            ]
        })
        .collect();
    let header = ["DIGEST", "ARTIFACT TYPE", "SIZE", "CREATED", "FLAGS"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header))?;
    for r in &rows {
        writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]))?;
    }
    out.flush()?;
    Ok(())
}

fn tree_lines(nodes: &[ReferrerNode], prefix: &str, out: &mut Vec<String>) {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let (branch, cont) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let mut s = format!(
            "{prefix}{branch}{} {} {}",
            n.descriptor.digest,
            artifact_type_of(n),
            n.descriptor.size
        );
        let f = flags(n);
        if !f.is_empty() {
            s.push_str(&format!(" [{f}]"));
        }
        if let Some(tag) = n
            .descriptor
            .annotation(annotations::REF_NAME)
            .filter(|_| n.legacy.is_some())
        {
            s.push_str(&format!(" tag={tag}"));
        }
        if let Some(about) = &n.buildx_about {
            s.push_str(&format!(" about={about}"));
        }
        out.push(s);
        tree_lines(&n.children, &format!("{prefix}{cont}"), out);
    }
}

async fn list(a: ListReferrersArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let (reference, store) = open(&a.reference, registry, OpenMode::Existing)?;
    let subject = subject_of(&store, &reference).await?;
    let default_depth = match a.format {
        ListFormat::Tree => DEFAULT_REFERRER_DEPTH,
        ListFormat::Table | ListFormat::Json => 1,
    };
    let depth = a.depth.unwrap_or(default_depth);
    if depth == 0 {
        anyhow::bail!("--depth must be at least 1");
    }
    let depth = depth.min(MAX_REFERRER_DEPTH);
    let mode = store.referrers_mode().await?;
    let parent = parent_index(&store, &reference, &subject).await?;
    let nodes =
        walk_referrers_with_buildx(&store, &subject, parent.as_ref(), &a.artifact_types, depth)
            .await?;
    match a.format {
        ListFormat::Json => print_json(&json!({
            "subject": subject.digest.to_string(),
            "reference": reference.with_digest(subject.digest.clone()).to_string(),
            "mode": mode.as_str(),
            "depth": depth,
            "referrers": nodes.iter().map(node_json).collect::<Vec<_>>(),
        }))?,
        ListFormat::Table => print_table(&nodes)?,
        ListFormat::Tree => {
            let mut lines = vec![reference.with_digest(subject.digest.clone()).to_string()];
            tree_lines(&nodes, "", &mut lines);
            let mut out = stdout();
            for l in lines {
                writeln!(out, "{l}")?;
            }
            out.flush()?;
        }
    }
    print_request_stats(&store);
    Ok(Outcome::Success)
}

/// The image index to search for buildx attestation manifests about a
/// platform manifest: when the reference names both a tag and a digest
/// (`repo:tag@sha256:…`) and the tag resolves to an index other than the
/// digest, that index. A bare digest names no parent (none is searched).
pub(crate) async fn parent_index(
    store: &AnyStore,
    reference: &Reference,
    subject: &stella_types::Descriptor,
) -> anyhow::Result<Option<stella_types::Digest>> {
    let (Some(tag), Some(_)) = (reference.tag(), reference.digest()) else {
        return Ok(None);
    };
    if is_index_media_type(&subject.media_type) {
        return Ok(None);
    }
    let tagged = store
        .resolve_tag(tag)
        .await
        .with_context(|| format!("cannot resolve the tag of {reference}"))?;
    Ok(
        (is_index_media_type(&tagged.media_type) && tagged.digest != subject.digest)
            .then_some(tagged.digest),
    )
}

/// Resolves when the process receives SIGINT or SIGTERM (Ctrl-C on other
/// platforms), with the signal's name. If no handler can be installed it
/// never resolves (the default action, dying, then applies).
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

/// Runs `work` until it finishes or the process is interrupted. On SIGINT
/// or SIGTERM the work's future is dropped, which removes its temporary
/// files (and an output directory it created, while empty), and the
/// command fails (exit 2) saying so.
pub(crate) async fn until_interrupted<T>(
    work: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    tokio::select! {
        out = work => Ok(out),
        sig = interrupted() => {
            anyhow::bail!("interrupted by {sig}: stopped and removed the partial files")
        }
    }
}

async fn pull(a: PullReferrerArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let (reference, store) = open(&a.reference, registry, OpenMode::Existing)?;
    let digest = reference.require_digest()?.clone();
    let progress = crate::progress::for_args(registry);
    let pulled = artifact::pull_referrer(&store, &digest, &a.output, progress.as_ref());
    let files = until_interrupted(pulled)
        .await?
        .with_context(|| format!("cannot pull {reference}"))?;
    let mut out = stdout();
    for f in files {
        let verb = if f.unchanged { "unchanged" } else { "wrote" };
        writeln!(
            out,
            "{verb} {} ({} bytes, {})",
            f.path.display(),
            f.descriptor.size,
            f.descriptor.digest
        )?;
    }
    out.flush()?;
    Ok(Outcome::Success)
}

async fn delete(a: DeleteReferrerArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let (reference, store) = open(&a.reference, registry, OpenMode::Existing)?;
    let digest = reference.require_digest()?.clone();
    let subject = artifact::delete_referrer(&store, &digest).await?;
    println!("deleted {digest} (referrer of {})", subject.digest);
    Ok(Outcome::Success)
}

async fn repair(a: RepairIndexArgs, registry: &RegistryArgs) -> anyhow::Result<Outcome> {
    let (reference, store) = open(&a.reference, registry, OpenMode::Existing)?;
    let subject = subject_of(&store, &reference).await?;
    let repo = match &store {
        AnyStore::Layout(_) => {
            let note = "OCI image layouts have no referrers fallback index: nothing to repair";
            match a.output {
                TextOrJson::Text => println!("{note} ({reference})"),
                TextOrJson::Json => print_json(&json!({
                    "subject": subject.digest.to_string(),
                    "mode": "layout",
                    "dryRun": a.dry_run,
                    "changed": false,
                    "written": false,
                    "findings": [],
                    "note": note,
                }))?,
            }
            return Ok(Outcome::Success);
        }
        AnyStore::Registry(r) => r,
    };
    let mode = store.referrers_mode().await?;
    let report = repo.repair_referrers_index(&subject, a.dry_run).await?;
    match a.output {
        TextOrJson::Text => {
            let mut out = stdout();
            for f in &report.findings {
                let d = f
                    .digest
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "-".into());
                writeln!(out, "{} {} {}", f.kind, d, f.detail)?;
            }
            let what = match (report.changed, report.written) {
                (false, _) => "fallback index is consistent: nothing to change",
                (true, true) => "fallback index repaired",
                (true, false) => "fallback index needs repair (not written: --dry-run)",
            };
            writeln!(
                out,
                "{what} ({} finding(s), mode {})",
                report.findings.len(),
                mode.as_str()
            )?;
            out.flush()?;
        }
        TextOrJson::Json => print_json(&json!({
            "subject": subject.digest.to_string(),
            "mode": mode.as_str(),
            "dryRun": a.dry_run,
            "changed": report.changed,
            "written": report.written,
            "findings": report.findings.iter().map(|f| json!({
                "kind": f.kind,
                "digest": f.digest.as_ref().map(ToString::to_string),
                "detail": f.detail,
            })).collect::<Vec<_>>(),
        }))?,
    }
    Ok(Outcome::Success)
}

/// With `STELLA_REQUEST_STATS=1`, prints `stella: <N> HTTP requests` (sent
/// by this run's registry client) to stderr: benchmarks count requests
/// with it. Nothing for a local layout.
pub(crate) fn print_request_stats(store: &stella_oci::AnyStore) {
    if let stella_oci::AnyStore::Registry(repo) = store
        && std::env::var_os("STELLA_REQUEST_STATS").is_some_and(|v| v == "1")
    {
        eprintln!("stella: {} HTTP requests", repo.request_count());
    }
}
