//! CycloneDX (1.4+) with `vulnerabilities[]` (a VDR): each vulnerability has
//! an `id`, `references[].id` (aliases), `ratings[]` (`severity` word or
//! `score`; the most severe rating counts), `published`, and `affects[]`
//! whose `ref` is a component's `bom-ref` (the component's `purl` is the
//! package) or a package URL itself. One finding per affected package; a
//! version listed in `affects[].versions[]` with status `unaffected` is the
//! fixed version. `analysis` (the document's own VEX) is not applied: VEX
//! counts only through the VEX lookup, signed by a trusted signer. The
//! image: `metadata.component.purl` when it is a `pkg:oci/…@sha256:…` URL.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    FindingsError, Out, Raw, array_at, as_object, most_severe, obj_at, severity_of_score,
    severity_word, str_at, strings_of,
};
use stella_verify::policy::FindingSeverity;

pub(super) fn read(root: &Map<String, Value>, out: &mut Out) -> Result<(), FindingsError> {
    if let Some(purl) = obj_at(root, "metadata")
        .and_then(|m| obj_at(m, "component"))
        .and_then(|c| str_at(c, "purl"))
    {
        oci_subject(purl, out);
    }
    let mut purls = BTreeMap::new();
    collect_components(root, &mut purls, 0);
    for (i, v) in array_at(out, root, "vulnerabilities", "$")?
        .iter()
        .enumerate()
    {
        let vpath = format!("$.vulnerabilities[{i}]");
        let v = as_object(out, v, &vpath)?;
        let severity = ratings(out, v, &vpath);
        let affects = array_at(out, v, "affects", &vpath)?;
        if affects.is_empty() {
            return Err(FindingsError::NoPurl {
                format: "cyclonedx",
                path: vpath,
                vulnerability: str_at(v, "id").unwrap_or("(no id)").to_string(),
            });
        }
        for (j, a) in affects.iter().enumerate() {
            let path = format!("{vpath}.affects[{j}]");
            let a = as_object(out, a, &path)?;
            let reference = str_at(a, "ref");
            let purl = reference.and_then(|r| {
                if r.starts_with("pkg:") {
                    Some(r)
                } else {
                    purls.get(r).map(String::as_str)
                }
            });
            let fixed = a.get("versions").and_then(Value::as_array).and_then(|vs| {
                vs.iter()
                    .filter_map(Value::as_object)
                    .find(|x| str_at(x, "status") == Some("unaffected"))
                    .and_then(|x| str_at(x, "version"))
                    .map(str::to_string)
            });
            out.push(Raw {
                id: str_at(v, "id"),
                purl,
                aliases: strings_of(v.get("references"), "id"),
                severity: severity.clone(),
                fixed_version: fixed,
                published: str_at(v, "published"),
                path,
            })?;
        }
    }
    Ok(())
}

/// The most severe rating; an unknown word is an error.
fn ratings(out: &Out, v: &Map<String, Value>, path: &str) -> Result<FindingSeverity, String> {
    let Ok(list) = array_at(out, v, "ratings", path) else {
        return Err("ratings is not a list".into());
    };
    let mut all = Vec::new();
    for r in list.iter().filter_map(Value::as_object) {
        match (
            str_at(r, "severity"),
            r.get("score").and_then(Value::as_f64),
        ) {
            (Some(word), _) => all.push(severity_word(Some(word))?),
            (None, Some(score)) => all.push(severity_of_score(score)?),
            (None, None) => {}
        }
    }
    Ok(most_severe(all))
}

/// `bom-ref` -> `purl` for every component, nested ones included (bounded depth).
fn collect_components(m: &Map<String, Value>, purls: &mut BTreeMap<String, String>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Some(Value::Array(cs)) = m.get("components") else {
        return;
    };
    for c in cs.iter().filter_map(Value::as_object) {
        if let (Some(r), Some(p)) = (str_at(c, "bom-ref"), str_at(c, "purl")) {
            purls.insert(r.to_string(), p.to_string());
        }
        collect_components(c, purls, depth + 1);
    }
}

/// `pkg:oci/name@sha256%3A<hex>` names an image digest.
fn oci_subject(purl: &str, out: &mut Out) {
    if let Some(rest) = purl.strip_prefix("pkg:oci/")
        && let Some((_, version)) = rest.split('?').next().and_then(|p| p.split_once('@'))
    {
        out.subject(&version.replace("%3A", ":").replace("%3a", ":"));
    }
}
