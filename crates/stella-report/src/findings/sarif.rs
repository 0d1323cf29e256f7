//! SARIF 2.1.0 from container scanners (Trivy `-f sarif`, Grype `-o sarif`):
//! `runs[].results[]`, each naming a rule (`ruleId`, `ruleIndex`) of
//! `runs[].tool.driver.rules[]`. SARIF has no field for a package, so the
//! package URL is taken from, in order: the result's `properties.purl`,
//! its `properties.purls[0]`, the rule's `properties.purl` / `purls[0]`,
//! a `logicalLocations[].fullyQualifiedName` that is a package URL. The
//! severity is the CVSS score in `properties.security-severity` (result,
//! then rule; the GitHub code-scanning convention both scanners follow),
//! else a `properties.severity` word, else Unknown. The vulnerability id is
//! the rule id, cut to its CVE / GHSA prefix when the scanner suffixed the
//! package name (Grype: `CVE-2020-28493-jinja2`). Fixed version:
//! `properties.fixedVersion`.

use serde_json::{Map, Value};

use super::{
    FindingsError, Out, Raw, array_at, as_object, obj_at, severity_of_score, severity_word, str_at,
};
use stella_verify::policy::FindingSeverity;

pub(super) fn read(root: &Map<String, Value>, out: &mut Out) -> Result<(), FindingsError> {
    for (r, run) in array_at(out, root, "runs", "$")?.iter().enumerate() {
        let rpath = format!("$.runs[{r}]");
        let run = as_object(out, run, &rpath)?;
        let rules = obj_at(run, "tool")
            .and_then(|t| obj_at(t, "driver"))
            .and_then(|d| d.get("rules"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (i, res) in array_at(out, run, "results", &rpath)?.iter().enumerate() {
            let path = format!("{rpath}.results[{i}]");
            let res = as_object(out, res, &path)?;
            let rule = find_rule(res, rules);
            let rprops = rule.and_then(|r| obj_at(r, "properties"));
            let props = obj_at(res, "properties");
            let rule_id = str_at(res, "ruleId").or_else(|| rule.and_then(|r| str_at(r, "id")));
            let purl = props
                .and_then(purl_of)
                .or_else(|| rprops.and_then(purl_of))
                .or_else(|| logical_purl(res));
            let fixed = props
                .and_then(|p| str_at(p, "fixedVersion"))
                .or_else(|| rprops.and_then(|p| str_at(p, "fixedVersion")))
                .map(str::to_string);
            out.push(Raw {
                id: rule_id.map(vulnerability_id),
                purl,
                aliases: Vec::new(),
                severity: severity(props)
                    .or_else(|| severity(rprops))
                    .unwrap_or(Ok(FindingSeverity::Unknown)),
                fixed_version: fixed,
                published: None,
                path,
            })?;
        }
    }
    Ok(())
}

fn find_rule<'a>(res: &Map<String, Value>, rules: &'a [Value]) -> Option<&'a Map<String, Value>> {
    let by_index = res
        .get("ruleIndex")
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| rules.get(i))
        .and_then(Value::as_object);
    let id = str_at(res, "ruleId");
    by_index
        .filter(|r| id.is_none() || str_at(r, "id") == id)
        .or_else(|| {
            rules
                .iter()
                .filter_map(Value::as_object)
                .find(|r| id.is_some() && str_at(r, "id") == id)
        })
}

fn purl_of(props: &Map<String, Value>) -> Option<&str> {
    str_at(props, "purl").or_else(|| {
        props
            .get("purls")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
    })
}

fn logical_purl(res: &Map<String, Value>) -> Option<&str> {
    res.get("locations")?
        .as_array()?
        .iter()
        .filter_map(|l| l.get("logicalLocations")?.as_array())
        .flatten()
        .filter_map(|l| l.get("fullyQualifiedName")?.as_str())
        .find(|n| n.starts_with("pkg:"))
}

fn severity(props: Option<&Map<String, Value>>) -> Option<Result<FindingSeverity, String>> {
    let p = props?;
    if let Some(v) = p.get("security-severity") {
        let score = match v {
            Value::String(s) => s.trim().parse::<f64>().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        return Some(match score {
            Some(s) => severity_of_score(s),
            None => Err(v.to_string()),
        });
    }
    str_at(p, "severity").map(|w| severity_word(Some(w)))
}

/// `CVE-2020-28493-jinja2` -> `CVE-2020-28493`; `GHSA-xxxx-xxxx-xxxx-pkg`
/// -> `GHSA-xxxx-xxxx-xxxx`; other ids unchanged.
fn vulnerability_id(rule_id: &str) -> &str {
    let parts: Vec<&str> = rule_id.splitn(5, '-').collect();
    let keep = match parts.first().copied() {
        Some("CVE")
            if parts.len() >= 3
                && parts
                    .get(1)
                    .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
                && parts
                    .get(2)
                    .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            3
        }
        Some("GHSA") if parts.len() >= 4 => 4,
        _ => return rule_id,
    };
    let len: usize = parts.iter().take(keep).map(|p| p.len()).sum::<usize>() + keep - 1;
    rule_id.get(..len).unwrap_or(rule_id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_ids_are_cut_to_the_vulnerability() {
        use super::vulnerability_id as v;
        assert_eq!(v("CVE-2020-28493-jinja2"), "CVE-2020-28493");
        assert_eq!(v("CVE-2020-28493"), "CVE-2020-28493");
        assert_eq!(v("GHSA-g3rq-g295-4j3m-jinja2"), "GHSA-g3rq-g295-4j3m");
        assert_eq!(v("GHSA-g3rq-g295-4j3m"), "GHSA-g3rq-g295-4j3m");
        assert_eq!(v("DLA-3482-1"), "DLA-3482-1");
        assert_eq!(v("CVE-x-1"), "CVE-x-1");
    }
}
