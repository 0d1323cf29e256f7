//! `stella report --server … [--policy-revision <id>]`: asks a Stella
//! server for the image's report (`POST /api/v1/reports`), which the server
//! computes with the same `stella-report` code as the offline command,
//! judges with the tenant's policy revision and signs with the tenant's
//! report key. Prints the server's `{report, dsse}` unchanged with
//! `--output json`; exit 0 pass/warn, 1 blocked, 2 error (a problem answer,
//! e.g. an unknown revision or image, is one line on stderr).
//!
//! `SOURCE_DATE_EPOCH`, when set, is sent as `generatedAt`, so the server's
//! report has the bytes the offline command gives under the same epoch.
//! `--attach`, `--registry-auth` and `--registry-auth-provider` are sent
//! as `attach`, `registryAuth` and `registryAuthProvider`; with `--attach`
//! the JSON output carries the server's `attached.digest` and the text
//! output names the pushed referrer.
//! Not here: `--sign-key`, `--scan`, `--trusted-root` (offline only).

use std::io::Write;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use stella_report::ReportVerdict;

use crate::cli::{RegistryArgs, ReportArgs, ServiceClientArgs, TextOrJson};
use crate::client::ApiClient;
use crate::exit::Outcome;

pub async fn report(
    args: &ReportArgs,
    registry: &RegistryArgs,
    service: &ServiceClientArgs,
) -> anyhow::Result<Outcome> {
    let Some(image) = args.image.as_deref() else {
        bail!("--image is required");
    };
    if args.sign_key.is_some() || !args.scans.is_empty() || args.trusted_root.is_some() {
        bail!(
            "--sign-key, --scan and --trusted-root are for offline reports (with --policy); \
             the server judges what is attached to the image and signs with the tenant's key"
        );
    }
    let generated_at =
        crate::cmd::evidence::source_date_epoch()?.map(stella_types::timestamp::rfc3339);
    let body = json!({
        "image": image,
        "environment": args.environment,
        "policyRevision": args.policy_revision,
        "plainHttp": registry.plain_http,
        "generatedAt": generated_at,
        "attach": args.attach,
        "registryAuth": args.registry_auth,
        "registryAuthProvider": args.registry_auth_provider,
    });
    let client = ApiClient::authenticated(service)?;
    let url = client.url("/api/v1/reports");
    let body = body.to_string();
    let answer = client
        .send(|http| {
            http.post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await?;
    let value: Value = answer.json()?;
    let report = value
        .get("report")
        .context("the server's answer has no report")?;
    let verdict = match report.get("verdict").and_then(Value::as_str) {
        Some("pass") => ReportVerdict::Pass,
        Some("warn") => ReportVerdict::Warn,
        Some("blocked") => ReportVerdict::Blocked,
        other => bail!("the server's report has no known verdict ({other:?})"),
    };
    let warned = report
        .pointer("/summary/warned")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    match args.output {
        TextOrJson::Json => {
            out.write_all(&answer.body)?;
            out.write_all(b"\n")?;
        }
        TextOrJson::Text => {
            writeln!(out, "{}", text(report))?;
            if let Some(d) = value.pointer("/attached/digest").and_then(Value::as_str) {
                writeln!(out, "  attached as referrer {d}")?;
            }
        }
    }
    out.flush()?;
    Ok(super::report::verdict_outcome(
        verdict,
        usize::try_from(warned).unwrap_or(usize::MAX),
    ))
}

/// A short summary of a report's JSON.
fn text(report: &Value) -> String {
    let s = |p: &str| {
        report
            .pointer(p)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_else(|| "?".into())
    };
    format!(
        "report {} for {}\n  verdict {} (policy revision {})\n  findings {}: {} blocked, {} warned, {} ignored, {} quieted\n  signed by the server's report key (use --output json to get the DSSE envelope)",
        s("/reportId"),
        s("/imageDigest"),
        s("/verdict"),
        s("/policy/revisionId"),
        s("/summary/total"),
        s("/summary/blocked"),
        s("/summary/warned"),
        s("/summary/ignored"),
        s("/summary/quieted"),
    )
}
