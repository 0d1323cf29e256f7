//! Trivy JSON (`trivy image -f json`, `SchemaVersion: 2`): `Results[]`, each
//! with `Vulnerabilities[]` (`VulnerabilityID`, `PkgIdentifier.PURL`,
//! `Severity`, `FixedVersion`, `VendorIDs`, `PublishedDate`). The image the
//! report is about: `Metadata.RepoDigests[]` (`repo@sha256:…`).

use serde_json::{Map, Value};

use super::{
    FindingsError, Out, Raw, array_at, as_object, obj_at, severity_word, str_at, strings_of,
};

pub(super) fn read(root: &Map<String, Value>, out: &mut Out) -> Result<(), FindingsError> {
    if let Some(meta) = obj_at(root, "Metadata") {
        for d in strings_of(meta.get("RepoDigests"), "") {
            out.subject(&d);
        }
    }
    for (i, result) in array_at(out, root, "Results", "$")?.iter().enumerate() {
        let rpath = format!("$.Results[{i}]");
        let result = as_object(out, result, &rpath)?;
        for (j, v) in array_at(out, result, "Vulnerabilities", &rpath)?
            .iter()
            .enumerate()
        {
            let path = format!("{rpath}.Vulnerabilities[{j}]");
            let v = as_object(out, v, &path)?;
            let raw = Raw {
                id: str_at(v, "VulnerabilityID"),
                purl: obj_at(v, "PkgIdentifier").and_then(|p| str_at(p, "PURL")),
                aliases: strings_of(v.get("VendorIDs"), ""),
                severity: severity_word(str_at(v, "Severity")),
                fixed_version: str_at(v, "FixedVersion").map(str::to_string),
                published: str_at(v, "PublishedDate"),
                path,
            };
            out.push(raw)?;
        }
    }
    Ok(())
}
