//! Image check: an image reference and one of the tenant's stored
//! policies go to the API's `POST /verify/image` (stella-engine on the
//! server); the report (docs/policy.md) is shown requirement by
//! requirement, each with the evidence behind it, then every piece of
//! evidence found.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use crate::api::{Payload, Problem};
use crate::layout::{BASE, Page, field_error};
use crate::session::Session;
use crate::{Console, Signed};

#[derive(Deserialize)]
struct PolicyList {
    items: Vec<PolicySummary>,
}

#[derive(Deserialize)]
struct PolicySummary {
    name: String,
    #[serde(default)]
    requirements: Vec<String>,
}

/// The report fields the page shows (docs/policy.md).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Report {
    evaluated_at: String,
    verdict: String,
    image: ImageInfo,
    policy: PolicyInfo,
    summary: serde_json::Map<String, serde_json::Value>,
    requirements: Vec<RequirementResult>,
    evidence: Vec<EvidenceResult>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ImageInfo {
    reference: String,
    digest: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PolicyInfo {
    digest: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RequirementResult {
    name: String,
    r#type: String,
    status: String,
    reason: String,
    evidence: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct EvidenceResult {
    digest: String,
    artifact_type: String,
    predicate_type: Option<String>,
    status: String,
    signers: Vec<String>,
    satisfies: Vec<String>,
    reason: String,
}

#[derive(Deserialize, Default)]
pub struct CheckForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    plain_http: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyBody<'a> {
    reference: &'a str,
    policy: &'a str,
    plain_http: bool,
}

pub async fn form(State(console): State<Console>, Signed(session): Signed) -> Response {
    render(&console, &session, &CheckForm::default(), None, None).await
}

pub async fn run(
    State(console): State<Console>,
    signed: Signed,
    form_data: Result<Form<CheckForm>, FormRejection>,
) -> Response {
    let f = form_data.map(|Form(f)| f).unwrap_or_default();
    if let Some(r) = signed.csrf_refusal(f.csrf.as_deref()) {
        return r;
    }
    let body = VerifyBody {
        reference: f.reference.trim(),
        policy: &f.policy,
        plain_http: f.plain_http.is_some(),
    };
    let answer: Result<Report, Problem> = match serde_json::to_vec(&body) {
        Ok(json) => {
            console
                .api
                .json(
                    Method::POST,
                    "/verify/image",
                    Some(&signed.0.bearer),
                    Payload::Json(json),
                )
                .await
        }
        Err(_) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "INVALID_FORM",
            "Bad request",
            "the form could not be encoded",
        )),
    };
    match answer {
        Ok(report) => render(&console, &signed.0, &f, None, Some(&report)).await,
        Err(p) => render(&console, &signed.0, &f, Some(&p), None).await,
    }
}

async fn render(
    console: &Console,
    session: &Session,
    f: &CheckForm,
    problem: Option<&Problem>,
    report: Option<&Report>,
) -> Response {
    let policies: Result<PolicyList, Problem> = console
        .api
        .json(
            Method::GET,
            "/verify/policies",
            Some(&session.bearer),
            Payload::None,
        )
        .await;
    let (policies, list_problem) = match policies {
        Ok(l) => (l.items, None),
        Err(p) => (Vec::new(), Some(p)),
    };
    let problem = problem.or(list_problem.as_ref());
    let status = problem.map_or(StatusCode::OK, Problem::status_code);
    let invalid = |path: &str| problem.and_then(|p| p.field(path)).is_some();
    let body = html! {
        section.panel {
            form.stack method="post" action={ (BASE) "/check" } data-busy="Checking…" data-status="check-status" {
                input type="hidden" name="csrf" value=(session.csrf);
                div {
                    label for="reference" { "Image reference" }
                    input type="text" id="reference" name="reference" required spellcheck="false"
                        value=(f.reference)
                        aria-describedby=(if invalid("$.reference") { "reference-hint reference-error" } else { "reference-hint" })
                        aria-invalid=[invalid("$.reference").then_some("true")];
                    p.hint id="reference-hint" { "e.g. " code { "registry.example/app:1.0" } " or " code { "registry.example/app@sha256:…" } }
                    (field_error(problem, "$.reference", "reference-error"))
                }
                div {
                    label for="policy" { "Policy" }
                    select id="policy" name="policy" required aria-invalid=[invalid("$.policy").then_some("true")]
                        aria-describedby=[invalid("$.policy").then_some("policy-error")] {
                        @for p in &policies {
                            option value=(p.name) selected[p.name == f.policy] {
                                (p.name)
                                @if !p.requirements.is_empty() { " (" (p.requirements.join(", ")) ")" }
                            }
                        }
                    }
                    @if policies.is_empty() {
                        p.hint { "No stored policies for this tenant. An operator adds them as " code { "<dataDir>/policies/" (session.tenant) "/<name>.yaml" } "." }
                    }
                    (field_error(problem, "$.policy", "policy-error"))
                }
                div {
                    label.check for="plain-http" {
                        input type="checkbox" id="plain-http" name="plain_http" value="1" checked[f.plain_http.is_some()];
                        "The registry speaks plain HTTP (no TLS)"
                    }
                }
                div { button type="submit" { "Check image" } }
                p.status-line id="check-status" role="status" {}
            }
        }
        @if let Some(r) = report { (report_view(r)) }
    };
    Page {
        title: "Image check",
        section: "/check",
        session: Some(session),
        problem,
        subnav: None,
        body,
    }
    .respond(status)
}

fn badge(status: &str) -> Markup {
    let class = match status {
        "satisfied" | "verified" | "pass" => "good",
        "warned" | "unsigned" => "warn",
        _ => "bad",
    };
    html! { span.badge.(class) { (status) } }
}

fn report_view(r: &Report) -> Markup {
    let pass = r.verdict == "pass";
    html! {
        h2 { "Report" }
        p.verdict.(if pass { "good" } else { "bad" }) role="status" {
            @if pass { "PASS" } @else { "FAIL" }
            span.ref.mono { (r.image.reference) }
        }
        dl.meta {
            dt { "Image digest" } dd.mono { (r.image.digest) }
            dt { "Policy digest" } dd.mono { (r.policy.digest) }
            dt { "Evaluated at" } dd { (r.evaluated_at) }
            dt { "Requirements" } dd { (counts(&r.summary, "requirements", &["satisfied", "unsatisfied", "warnings"])) }
            dt { "Evidence" } dd { (counts(&r.summary, "evidence", &["verified", "unsigned", "failed", "rejected"])) }
        }
        h2 { "Requirements" }
        ul.tree {
            @for req in &r.requirements {
                li {
                    strong { (req.name) } " " (badge(&req.status))
                    p { (req.reason) }
                    p.hint { "Type " code { (req.r#type) } }
                    @if !req.evidence.is_empty() {
                        ul.tree {
                            @for d in &req.evidence {
                                @if let Some(e) = r.evidence.iter().find(|e| &e.digest == d) {
                                    li { (evidence_item(e)) }
                                } @else {
                                    li.mono { (d) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "All evidence found" }
        @if r.evidence.is_empty() {
            p.empty { "No evidence is attached to this image." }
        } @else {
            ul.tree { @for e in &r.evidence { li { (evidence_item(e)) } } }
        }
    }
}

/// `3 (2 satisfied, 1 unsatisfied, 0 warnings)` from the report summary.
fn counts(
    summary: &serde_json::Map<String, serde_json::Value>,
    total: &str,
    parts: &[&str],
) -> String {
    let n = |k: &str| {
        summary
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let detail: Vec<String> = parts.iter().map(|k| format!("{} {k}", n(k))).collect();
    format!("{} ({})", n(total), detail.join(", "))
}

fn evidence_item(e: &EvidenceResult) -> Markup {
    html! {
        details {
            summary { (badge(&e.status)) " " span.mono { (e.digest) } }
            dl.meta {
                dt { "Artifact type" } dd.mono { (e.artifact_type) }
                @if let Some(p) = &e.predicate_type { dt { "Predicate type" } dd.mono { (p) } }
                dt { "Signers" } dd { @if e.signers.is_empty() { "none" } @else { (e.signers.join(", ")) } }
                dt { "Satisfies" } dd { @if e.satisfies.is_empty() { "nothing" } @else { (e.satisfies.join(", ")) } }
                dt { "Reason" } dd { (e.reason) }
            }
        }
    }
}
