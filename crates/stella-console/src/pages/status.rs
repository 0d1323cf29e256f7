//! A provider's run status (`GET /excititor/providers/{id}/status`): the
//! last run as a whole and per image, with result, reason and counts, and a
//! "Run now" button (a CSRF-protected POST to `…/run`, which runs
//! synchronously). While a run has no finish time the page asks the
//! browser to reload itself (an HTTP `Refresh` header: no script, CSP-safe).
//!
//! Not here: scheduling (the server's runner does it).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{Payload, Problem, segment};
use crate::layout::{BASE, Page, see_other};
use crate::pages::config::sub_nav;
use crate::pages::providers::{CsrfForm, flash_box};
use crate::session::{Flash, Session};
use crate::{Console, Signed};

/// Seconds between reloads while a run is in progress.
const REFRESH_SECONDS: &str = "3";

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    runs: Vec<Run>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    #[serde(default)]
    image: String,
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    result: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    counts: Value,
}

pub async fn page(
    State(console): State<Console>,
    Signed(session): Signed,
    Path(provider): Path<String>,
) -> Response {
    let flash = console.sessions.take_flash(&session.id);
    render(&console, &session, &provider, None, flash).await
}

async fn render(
    console: &Console,
    session: &Session,
    provider: &str,
    problem: Option<Problem>,
    flash: Option<Flash>,
) -> Response {
    let path = format!("/excititor/providers/{}/status", segment(provider));
    let status: Result<Status, Problem> = console
        .api
        .json(Method::GET, &path, Some(&session.bearer), Payload::None)
        .await;
    let (problem, status) = match (problem, status) {
        (Some(p), s) => (Some(p), s.ok()),
        (None, Ok(s)) => (None, Some(s)),
        (None, Err(p)) => (Some(p), None),
    };
    let in_progress = status
        .as_ref()
        .is_some_and(|s| s.runs.iter().any(|r| r.finished_at.is_none()));
    let body = html! {
        @if let Some(f) = &flash { (flash_box(f)) }
        form.inline method="post" action={ (BASE) "/providers/" (segment(provider)) "/run" }
            data-busy="Running…" data-status="run-status" {
            input type="hidden" name="csrf" value=(session.csrf);
            button type="submit" { "Run now" }
            " "
            span.status-line id="run-status" role="status" {
                @if in_progress { "A run is in progress; this page reloads every " (REFRESH_SECONDS) " s." }
            }
        }
        @if let Some(s) = &status { (runs(&s.runs)) }
    };
    let title = format!("Run status of {provider}");
    let code = problem
        .as_ref()
        .map_or(StatusCode::OK, Problem::status_code);
    let mut response = Page {
        title: &title,
        section: "/providers",
        session: Some(session),
        problem: problem.as_ref(),
        subnav: Some(sub_nav(provider, "status")),
        body,
    }
    .respond(code);
    if in_progress {
        response
            .headers_mut()
            .insert("refresh", HeaderValue::from_static(REFRESH_SECONDS));
    }
    response
}

fn counts(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "—".into(),
    }
}

fn runs(all: &[Run]) -> Markup {
    let whole = all.iter().find(|r| r.image.is_empty());
    let images: Vec<&Run> = all.iter().filter(|r| !r.image.is_empty()).collect();
    html! {
        h2 id="last-run" { "Last run" }
        @match whole {
            None => p.empty { "This provider has not run yet." },
            Some(r) => dl.meta {
                dt { "Result" } dd { strong class={ "result-" (r.result) } { (r.result) } }
                dt { "Reason" } dd { @if r.reason.is_empty() { "—" } @else { (r.reason) } }
                dt { "Started" } dd { (r.started_at) }
                dt { "Finished" } dd { (r.finished_at.as_deref().unwrap_or("in progress")) }
                dt { "Counts" } dd { (counts(&r.counts)) }
            },
        }
        h2 id="per-image" { "Per image" }
        @if images.is_empty() {
            p.empty { "No image results." }
        } @else {
            div.scroll tabindex="0" role="region" aria-labelledby="per-image" {
                table.stack.images {
                    thead { tr {
                        th scope="col" { "Image" }
                        th scope="col" { "Result" }
                        th scope="col" { "Reason" }
                        th scope="col" { "Counts" }
                        th scope="col" { "Finished" }
                    } }
                    tbody {
                        @for r in &images {
                            tr {
                                td.mono data-label="Image" { (r.image) }
                                td data-label="Result" { (r.result) }
                                td data-label="Reason" { @if r.reason.is_empty() { "—" } @else { (r.reason) } }
                                td data-label="Counts" { (counts(&r.counts)) }
                                td data-label="Finished" { (r.finished_at.as_deref().unwrap_or("in progress")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn run(
    State(console): State<Console>,
    signed: Signed,
    Path(provider): Path<String>,
    form_data: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let token = form_data.ok().and_then(|Form(f)| f.csrf);
    if let Some(r) = signed.csrf_refusal(token.as_deref()) {
        return r;
    }
    let session = &signed.0;
    let path = format!("/excititor/providers/{}/run", segment(&provider));
    let summary: Result<Value, Problem> = console
        .api
        .json(Method::POST, &path, Some(&session.bearer), Payload::None)
        .await;
    match summary {
        Ok(s) => {
            let result = s["result"].as_str().unwrap_or("unknown");
            let reason = s["reason"].as_str().unwrap_or_default();
            let message = if reason.is_empty() {
                format!("Run finished: {result}.")
            } else {
                format!("Run finished: {result} ({reason}).")
            };
            console
                .sessions
                .set_flash(&session.id, Flash::Message(message));
            see_other(&format!("/providers/{}/status", segment(&provider)))
        }
        Err(p) => render(&console, session, &provider, Some(p), None).await,
    }
}
