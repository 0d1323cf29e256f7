//! The in-toto vulns predicate (`https://in-toto.io/attestation/vulns`,
//! v0.1 and v0.2), bare or inside a statement: `scanner.result[]`, each an
//! `id` and `severity[]` (`method`, `score`: a word such as `medium` or a
//! number such as `5.2`; the most severe counts) with free `annotations`
//! (v0.1 nests these under `vulnerability`). The predicate has no package
//! field: the package URL is the annotation `purl` (or `packageUrl`),
//! `fixedVersion` and `aliases` likewise. The statement's `subject`
//! digests are the image the report is about.

use serde_json::{Map, Value};

use super::{
    FindingsError, Out, Raw, array_at, as_object, most_severe, obj_at, severity_of_score,
    severity_word, str_at, strings_of,
};
use stella_verify::policy::FindingSeverity;

/// Whether a predicate type is the vulns predicate (any version).
pub(super) fn is_vulns_type(t: &str) -> bool {
    t == "https://in-toto.io/attestation/vulns"
        || t.starts_with("https://in-toto.io/attestation/vulns/")
}

pub(super) fn read(root: &Map<String, Value>, out: &mut Out) -> Result<(), FindingsError> {
    let (predicate, ppath) = match obj_at(root, "predicate") {
        Some(p) if root.contains_key("_type") => {
            for s in array_at(out, root, "subject", "$")?
                .iter()
                .filter_map(Value::as_object)
            {
                if let Some(d) = obj_at(s, "digest").and_then(|d| str_at(d, "sha256")) {
                    out.subject(&format!("sha256:{d}"));
                }
            }
            (p, "$.predicate")
        }
        _ => (root, "$"),
    };
    let scanner = obj_at(predicate, "scanner")
        .ok_or_else(|| out.malformed(ppath, "has no scanner object"))?;
    let spath = format!("{ppath}.scanner");
    for (i, r) in array_at(out, scanner, "result", &spath)?.iter().enumerate() {
        let path = format!("{spath}.result[{i}]");
        let r = as_object(out, r, &path)?;
        // v0.1: {vulnerability: {id, severity, annotations}}; v0.2: flat.
        let v = obj_at(r, "vulnerability").unwrap_or(r);
        let notes = annotations(v.get("annotations"));
        let note = |k: &str| notes.iter().find_map(|m| str_at(m, k));
        let aliases = notes
            .iter()
            .flat_map(|m| strings_of(m.get("aliases"), ""))
            .collect();
        out.push(Raw {
            id: str_at(v, "id"),
            purl: note("purl").or_else(|| note("packageUrl")),
            aliases,
            severity: severity(v.get("severity")),
            fixed_version: note("fixedVersion").map(str::to_string),
            published: note("published"),
            path,
        })?;
    }
    Ok(())
}

/// Annotations are "a list of key/value pairs": a list of maps or one map.
fn annotations(v: Option<&Value>) -> Vec<&Map<String, Value>> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
        Some(Value::Object(m)) => vec![m],
        _ => Vec::new(),
    }
}

fn severity(v: Option<&Value>) -> Result<FindingSeverity, String> {
    let Some(Value::Array(list)) = v else {
        return Ok(FindingSeverity::Unknown);
    };
    let mut all = Vec::new();
    for s in list.iter().filter_map(Value::as_object) {
        let score = match s.get("score") {
            Some(Value::String(t)) => t.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        // CVSS vectors (`CVSS:3.1/AV:N/…`) carry no score of their own.
        if score.starts_with("CVSS:") {
            continue;
        }
        match score.parse::<f64>() {
            Ok(n) => all.push(severity_of_score(n)?),
            Err(_) => all.push(severity_word(Some(&score))?),
        }
    }
    Ok(most_severe(all))
}
