//! `stella vex merge <doc>... [--trust issuers.yaml] [--output-file merged.json]`:
//! offline merge of OpenVEX documents through `stella_vex::merge`. The
//! documents are unsigned here, so each one's issuer is its `author`.

use std::path::Path;

use anyhow::{Context, bail};

use crate::cli::{TextOrJson, VexMergeArgs};
use crate::exit::Outcome;

/// Reads an issuer trust configuration (YAML, which includes JSON).
pub fn read_trust(path: Option<&Path>) -> anyhow::Result<stella_vex::TrustConfig> {
    let Some(path) = path else {
        return Ok(stella_vex::TrustConfig::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let trust: stella_vex::TrustConfig = serde_yaml_ng::from_str(&text)
        .with_context(|| format!("{}: not a trust configuration", path.display()))?;
    trust
        .validate()
        .with_context(|| format!("{}", path.display()))?;
    Ok(trust)
}

pub fn run(args: VexMergeArgs) -> anyhow::Result<Outcome> {
    let trust = read_trust(args.trust.as_deref())?;
    let mut documents = Vec::with_capacity(args.documents.len());
    for path in &args.documents {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let doc = stella_vex::parse(&bytes)
            .with_context(|| format!("{}: invalid OpenVEX document", path.display()))?;
        documents.push((doc.author.clone(), doc));
    }
    let Some(merged) = stella_vex::merge(&documents, &trust, &stella_vex::MergeOptions::default())?
    else {
        bail!("no statement from a trusted issuer: nothing to merge");
    };
    let mut bytes = merged.to_canonical_json()?;
    bytes.push(b'\n');
    let Some(out) = &args.output_file else {
        use std::io::Write;
        std::io::stdout().write_all(&bytes)?;
        return Ok(Outcome::Success);
    };
    write_atomic(out, &bytes)?;
    let conflicts = merged
        .statements
        .iter()
        .filter(|s| {
            s.status_notes
                .as_deref()
                .is_some_and(|n| n.contains("conflict: "))
        })
        .count();
    match args.output {
        TextOrJson::Text => println!(
            "merged {} document(s) into {} statement(s), {} conflict(s): {}",
            documents.len(),
            merged.statements.len(),
            conflicts,
            out.display()
        ),
        TextOrJson::Json => println!(
            "{}",
            serde_json::json!({
                "outputFile": out,
                "documents": documents.len(),
                "statements": merged.statements.len(),
                "conflicts": conflicts,
                "id": merged.id,
            })
        ),
    }
    Ok(Outcome::Success)
}

/// Temp file in the same directory, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
