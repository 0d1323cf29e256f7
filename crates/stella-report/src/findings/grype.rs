//! Grype JSON (`grype -o json`): `matches[]`, each with `vulnerability`
//! (`id`, `severity`, `fix.versions`, `fix.state`), `relatedVulnerabilities[].id`
//! (aliases) and `artifact.purl`. The image: `source.target.manifestDigest`
//! and `source.target.repoDigests[]`.

use serde_json::{Map, Value};

use super::{
    FindingsError, Out, Raw, array_at, as_object, obj_at, severity_word, str_at, strings_of,
};

pub(super) fn read(root: &Map<String, Value>, out: &mut Out) -> Result<(), FindingsError> {
    if let Some(target) = obj_at(root, "source").and_then(|s| obj_at(s, "target")) {
        if let Some(d) = str_at(target, "manifestDigest") {
            out.subject(d);
        }
        for d in strings_of(target.get("repoDigests"), "") {
            out.subject(&d);
        }
    }
    for (i, m) in array_at(out, root, "matches", "$")?.iter().enumerate() {
        let path = format!("$.matches[{i}]");
        let m = as_object(out, m, &path)?;
        let vuln = obj_at(m, "vulnerability")
            .ok_or_else(|| out.malformed(&path, "has no vulnerability object"))?;
        let fix = obj_at(vuln, "fix");
        let fixed = fix
            .filter(|f| str_at(f, "state").is_none_or(|s| s == "fixed"))
            .and_then(|f| strings_of(f.get("versions"), "").into_iter().next());
        let raw = Raw {
            id: str_at(vuln, "id"),
            purl: obj_at(m, "artifact").and_then(|a| str_at(a, "purl")),
            aliases: strings_of(m.get("relatedVulnerabilities"), "id"),
            severity: severity_word(str_at(vuln, "severity")),
            fixed_version: fixed,
            published: None,
            path,
        };
        out.push(raw)?;
    }
    Ok(())
}
