//! The Exports pages (Export Center jobs, `/exports` of the API): the
//! tenant's exports with a create form, and a page per export with live
//! progress, the download and the server's verification of the file.
//!
//! Live progress: the detail page names a console route that relays the
//! API's server-sent events (`GET /exports/{id}/events`) with the session's
//! token, since a browser's `EventSource` cannot send one; console.js
//! updates the `<progress>` element and the status text from it and, at the
//! final event, swaps in the re-rendered result section. Without script the
//! page reloads itself every few seconds (`noscript` refresh) while the job
//! runs. Downloads go through a console route that streams the API's
//! answer, passing `Range` on.
//!
//! Not here: running exports (the server's Export Center does).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Payload, Problem, segment};
use crate::layout::{BASE, Page, see_other, size};
use crate::pages::providers::{ArtifactPage, CsrfForm, flash_box};
use crate::session::{Flash, Session};
use crate::{Console, Signed};

/// The profiles the create form offers.
const PROFILES: &[(&str, &str)] = &[
    ("mirror:full", "mirror:full — everything selected"),
    (
        "mirror:delta",
        "mirror:delta — changes since an earlier export",
    ),
    ("json:raw", "json:raw — evidence documents only"),
];

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct Progress {
    #[serde(default)]
    bytes_done: i64,
    #[serde(default)]
    bytes_total: i64,
    #[serde(default)]
    entries_done: i64,
    #[serde(default)]
    entries_total: i64,
}

#[derive(Deserialize, Clone, Debug, Default)]
struct ExportFile {
    #[serde(default)]
    size: u64,
    #[serde(default)]
    sha256: String,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct Job {
    id: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    progress: Progress,
    #[serde(default)]
    manifest_digest: Option<String>,
    #[serde(default)]
    file: Option<ExportFile>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    request: Value,
    #[serde(default)]
    verification: Option<Value>,
}

impl Job {
    fn running(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "running")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobPage {
    #[serde(default)]
    items: Vec<Job>,
}

/// The create form as the browser sends it.
#[derive(Deserialize, Default, Clone)]
pub struct CreateForm {
    csrf: Option<String>,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    images: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    sign: Option<String>,
    #[serde(default)]
    plain_http: Option<String>,
    #[serde(default)]
    registry_auth: String,
}

impl CreateForm {
    fn images(&self) -> Vec<String> {
        self.images
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// The API request (`POST /exports`).
    fn request(&self) -> Value {
        let mut options = json!({
            "sign": self.sign.is_some(),
            "plainHttp": self.plain_http.is_some(),
        });
        if !self.since.is_empty() {
            options["since"] = json!(self.since);
        }
        if !self.registry_auth.is_empty() {
            options["registryAuth"] = json!(self.registry_auth);
        }
        json!({
            "profile": self.profile,
            "selection": { "images": self.images() },
            "options": options,
        })
    }
}

pub async fn list(State(console): State<Console>, Signed(session): Signed) -> Response {
    let flash = console.sessions.take_flash(&session.id);
    let form = CreateForm {
        profile: "mirror:full".into(),
        ..CreateForm::default()
    };
    render_list(&console, &session, &form, None, flash).await
}

async fn jobs(api: &Api, session: &Session) -> Result<Vec<Job>, Problem> {
    let page: JobPage = api
        .json(
            Method::GET,
            "/exports?limit=500",
            Some(&session.bearer),
            Payload::None,
        )
        .await?;
    Ok(page.items)
}

/// The tenant's registry-auth artifacts (staged under provider `exports`);
/// empty when they cannot be listed (the field is optional).
async fn auth_artifacts(api: &Api, session: &Session) -> Vec<String> {
    let listing: Result<ArtifactPage, Problem> = api
        .json(
            Method::GET,
            "/excititor/providers/exports/artifacts?limit=100",
            Some(&session.bearer),
            Payload::None,
        )
        .await;
    listing
        .map(|l| l.items.into_iter().map(|a| a.artifact_id).collect())
        .unwrap_or_default()
}

async fn render_list(
    console: &Console,
    session: &Session,
    form: &CreateForm,
    problem: Option<Problem>,
    flash: Option<Flash>,
) -> Response {
    let listed = jobs(&console.api, session).await;
    let artifacts = auth_artifacts(&console.api, session).await;
    let (problem, all) = match (problem, listed) {
        (Some(p), l) => (Some(p), l.ok()),
        (None, Ok(l)) => (None, Some(l)),
        (None, Err(p)) => (Some(p), None),
    };
    let newest_first: Vec<&Job> = all.iter().flatten().rev().collect();
    let body = html! {
        @if let Some(f) = &flash { (flash_box(f)) }
        h2 id="exports" { "Exports of tenant " (session.tenant) }
        @match &all {
            Some(_) if newest_first.is_empty() => p.empty { "This tenant has no exports yet." },
            Some(_) => (job_table(&newest_first)),
            None => p.empty { "The exports could not be listed (see the error above)." },
        }
        h2 id="create" { "Create an export" }
        (create_form(session, form, problem.as_ref(), &newest_first, &artifacts))
    };
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, Problem::status_code);
    Page {
        title: "Exports",
        section: "/exports",
        session: Some(session),
        problem: problem.as_ref(),
        subnav: None,
        body,
    }
    .respond(status)
}

fn file_size(job: &Job) -> String {
    job.file
        .as_ref()
        .map_or_else(|| "—".into(), |f| size(f.size))
}

fn job_table(all: &[&Job]) -> Markup {
    html! {
        div.scroll tabindex="0" role="region" aria-labelledby="exports" {
            table.stack.exports {
                thead { tr {
                    th scope="col" { "Export" }
                    th scope="col" { "Status" }
                    th scope="col" { "Profile" }
                    th scope="col" { "Created" }
                    th scope="col" { "Size" }
                    th scope="col" { "Manifest digest" }
                } }
                tbody {
                    @for j in all {
                        tr {
                            td.mono data-label="Export" {
                                a href={ (BASE) "/exports/" (segment(&j.id)) } { (j.id) }
                            }
                            td data-label="Status" { span class={ "job-" (j.status) } { (j.status) } }
                            td data-label="Profile" { (j.profile) }
                            td data-label="Created" { (j.created_at) }
                            td data-label="Size" { (file_size(j)) }
                            td.mono.digest data-label="Manifest digest" {
                                (j.manifest_digest.as_deref().unwrap_or("—"))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The first field error whose path starts with `prefix`.
fn error_at<'a>(p: Option<&'a Problem>, prefix: &str) -> Option<&'a crate::api::FieldError> {
    p.and_then(|p| p.errors.iter().find(|e| e.path.starts_with(prefix)))
}

fn field_error(p: Option<&Problem>, prefix: &str, id: &str) -> Markup {
    html! {
        @if let Some(e) = error_at(p, prefix) {
            p.field-error id=(id) {
                @if let Some(line) = line_of(&e.path) { "Line " (line) ": " }
                (e.message) " "
                code { (e.code) }
            }
        }
    }
}

/// The 1-based line of an `images[i]` path.
fn line_of(path: &str) -> Option<usize> {
    let index = path
        .strip_prefix("$.selection.images[")?
        .strip_suffix(']')?;
    index.parse::<usize>().ok().map(|i| i + 1)
}

fn described(p: Option<&Problem>, prefix: &str, id: &str) -> Option<String> {
    error_at(p, prefix).map(|_| id.to_string())
}

fn create_form(
    session: &Session,
    form: &CreateForm,
    p: Option<&Problem>,
    earlier: &[&Job],
    artifacts: &[String],
) -> Markup {
    let bases: Vec<&&Job> = earlier.iter().filter(|j| j.status == "succeeded").collect();
    let images_err = described(p, "$.selection", "images-error");
    let since_err = described(p, "$.options.since", "since-error");
    let profile_err = described(p, "$.profile", "profile-error");
    let auth_err = described(p, "$.options.registryAuth", "auth-error");
    html! {
        form.stack.export-form method="post" action={ (BASE) "/exports" }
            data-busy="Creating…" data-status="create-status" {
            input type="hidden" name="csrf" value=(session.csrf);
            div.field {
                label for="profile" { "Profile" }
                select id="profile" name="profile" aria-describedby=[profile_err.as_deref()] {
                    @for (value, label) in PROFILES {
                        option value=(value) selected[form.profile == *value] { (label) }
                    }
                }
                (field_error(p, "$.profile", "profile-error"))
            }
            div.field {
                label for="images" { "Images (one reference per line)" }
                textarea id="images" name="images" rows="4" spellcheck="false"
                    placeholder="registry.example/team/app:1.0"
                    aria-invalid=[images_err.as_ref().map(|_| "true")]
                    aria-describedby=[images_err.as_deref()] { (form.images) }
                (field_error(p, "$.selection", "images-error"))
            }
            div.field {
                label for="since" { "Since (base of a mirror:delta)" }
                select id="since" name="since" aria-describedby=[since_err.as_deref()] {
                    option value="" { "— none —" }
                    @for j in &bases {
                        option value=(j.id) selected[form.since == j.id] {
                            (j.created_at) " · " (j.profile) " · " (j.id)
                        }
                    }
                }
                (field_error(p, "$.options.since", "since-error"))
            }
            div.field {
                label for="registry-auth" { "Registry credentials (artifact of provider exports)" }
                select id="registry-auth" name="registry_auth" aria-describedby=[auth_err.as_deref()] {
                    option value="" { "— anonymous —" }
                    @for a in artifacts {
                        option value=(a) selected[form.registry_auth == *a] { (a) }
                    }
                }
                (field_error(p, "$.options.registryAuth", "auth-error"))
            }
            div.field.check {
                input type="checkbox" id="sign" name="sign" value="on" checked[form.sign.is_some()];
                label for="sign" { "Sign the manifest with the tenant's export key" }
            }
            div.field.check {
                input type="checkbox" id="plain-http" name="plain_http" value="on"
                    checked[form.plain_http.is_some()];
                label for="plain-http" { "Plain HTTP to the registries (lab registries only)" }
            }
            button type="submit" { "Create export" }
            " "
            span.status-line id="create-status" role="status" {}
        }
    }
}

pub async fn create(
    State(console): State<Console>,
    signed: Signed,
    form_data: Result<Form<CreateForm>, FormRejection>,
) -> Response {
    let form = form_data.map(|Form(f)| f).unwrap_or_default();
    if let Some(r) = signed.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    let session = &signed.0;
    let body = serde_json::to_vec(&form.request()).unwrap_or_default();
    let created: Result<Job, Problem> = console
        .api
        .json(
            Method::POST,
            "/exports",
            Some(&session.bearer),
            Payload::Json(body),
        )
        .await;
    match created {
        Ok(job) => see_other(&format!("/exports/{}", segment(&job.id))),
        Err(p) => render_list(&console, session, &form, Some(p), None).await,
    }
}

async fn job(api: &Api, session: &Session, id: &str) -> Result<Job, Problem> {
    api.json(
        Method::GET,
        &format!("/exports/{}", segment(id)),
        Some(&session.bearer),
        Payload::None,
    )
    .await
}

pub async fn detail(
    State(console): State<Console>,
    Signed(session): Signed,
    Path(id): Path<String>,
) -> Response {
    let flash = console.sessions.take_flash(&session.id);
    let found = job(&console.api, &session, &id).await;
    let (problem, job) = match found {
        Ok(j) => (None, Some(j)),
        Err(p) => (Some(p), None),
    };
    let body = html! {
        @if let Some(f) = &flash { (flash_box(f)) }
        p { a href={ (BASE) "/exports" } { "All exports" } }
        @if let Some(j) = &job { (job_view(&session, j)) }
    };
    let title = format!("Export {id}");
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, Problem::status_code);
    Page {
        title: &title,
        section: "/exports",
        session: Some(&session),
        problem: problem.as_ref(),
        subnav: None,
        body,
    }
    .respond(status)
}

fn images_of(job: &Job) -> Vec<String> {
    job.request["selection"]["images"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn progress_text(p: &Progress) -> String {
    format!(
        "{} of {} entries, {} of {} bytes",
        p.entries_done, p.entries_total, p.bytes_done, p.bytes_total
    )
}

fn job_view(session: &Session, j: &Job) -> Markup {
    let id = segment(&j.id);
    let max = j.progress.bytes_total.max(1);
    // A succeeded job is whole (its last sample may be older than the end).
    let value = if j.status == "succeeded" {
        max
    } else {
        j.progress.bytes_done.clamp(0, max)
    };
    html! {
        @if j.running() {
            noscript { meta http-equiv="refresh" content="3"; }
        }
        // Above the live part, so what the live part adds moves nothing.
        @if j.status != "deleted" {
            form.inline method="post" action={ (BASE) "/exports/" (id) "/delete" }
                data-confirm={ "Delete export " (j.id) "? Its file is removed." } {
                input type="hidden" name="csrf" value=(session.csrf);
                button.danger type="submit" { "Delete export" }
            }
        }
        div id="export-live" data-initial-status=(j.status)
            data-events=[j.running().then(|| format!("{BASE}/exports/{id}/events"))]
            data-page={ (BASE) "/exports/" (id) } {
            dl.meta {
                dt { "Status" }
                dd { strong id="export-status" role="status" class={ "job-" (j.status) } { (j.status) } }
                dt { "Profile" } dd { (j.profile) }
                dt { "Images" }
                dd.mono {
                    @for (n, image) in images_of(j).iter().enumerate() {
                        @if n > 0 { br; }
                        (image)
                    }
                }
                dt { "Created" } dd { (j.created_at) }
                dt { "Finished" } dd id="export-finished" { (j.finished_at.as_deref().unwrap_or("—")) }
                dt { label for="export-progress" { "Progress" } }
                dd {
                    progress id="export-progress" max=(max) value=(value) {}
                    span id="export-progress-text" { (progress_text(&j.progress)) }
                }
            }
            div id="export-result" { (result(j, &id)) }
        }
    }
}

/// The finished part of a job: the reason, or the file, the download and
/// the verification.
fn result(j: &Job, id: &str) -> Markup {
    html! {
        @if !j.reason.is_empty() {
            h2 { "Reason" }
            p.reason id="export-reason" { (j.reason) }
        }
        @if let Some(f) = &j.file {
            h2 id="file" { "File" }
            dl.meta {
                dt { "Manifest digest" }
                dd.mono.digest id="export-manifest-digest" { (j.manifest_digest.as_deref().unwrap_or("—")) }
                dt { "Size" } dd id="export-size" data-bytes=(f.size) { (size(f.size)) " (" (f.size) " bytes)" }
                dt { "SHA-256" } dd.mono.digest id="export-sha256" { (f.sha256) }
            }
            @if j.status == "succeeded" {
                p { a.button id="export-download" href={ (BASE) "/exports/" (id) "/download" } download { "Download export.tar" } }
            }
        }
        @if let Some(v) = &j.verification { (verification(v)) }
    }
}

fn verification(v: &Value) -> Markup {
    let verified = match v["verified"].as_bool() {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not checked (encrypted to recipients)",
    };
    let failures: Vec<String> = v["failures"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["code"].as_str().unwrap_or("?"),
                        f["message"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    html! {
        h2 id="verification" { "Verification" }
        dl.meta {
            dt { "Verified" } dd { strong id="export-verified" class={ "verified-" (verified) } { (verified) } }
            dt { "Signature" } dd { (v["signature"].as_str().unwrap_or("—")) }
            dt { "Signer key id" } dd.mono id="export-signer" { (v["signer"].as_str().unwrap_or("—")) }
            dt { "Files checked" } dd { (v["files"].as_u64().unwrap_or(0)) }
        }
        @if !failures.is_empty() {
            ul.failures { @for f in &failures { li { (f) } } }
        }
    }
}

pub async fn delete(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
    form_data: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let token = form_data.ok().and_then(|Form(f)| f.csrf);
    if let Some(r) = signed.csrf_refusal(token.as_deref()) {
        return r;
    }
    let session = &signed.0;
    let path = format!("/exports/{}", segment(&id));
    match console
        .api
        .empty(Method::DELETE, &path, Some(&session.bearer))
        .await
    {
        Ok(()) => {
            console
                .sessions
                .set_flash(&session.id, Flash::Message(format!("Export {id} deleted.")));
            see_other("/exports")
        }
        Err(p) => p.into_response(),
    }
}

/// Headers of the API's answer a relay passes on.
const RELAYED: &[header::HeaderName] = &[
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::CONTENT_DISPOSITION,
    header::CACHE_CONTROL,
];

/// Streams an API answer to the browser (success statuses only; an error
/// becomes the console's problem page).
async fn relay(
    console: &Console,
    session: &Session,
    path: &str,
    extra: &[(header::HeaderName, HeaderValue)],
) -> Response {
    let answer = match console.api.forward(path, &session.bearer, extra).await {
        Ok(a) => a,
        Err(p) => return p.into_response(),
    };
    let status = answer.status();
    if !(status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE) {
        return Api::problem_of(answer).await.into_response();
    }
    let (parts, body) = answer.into_parts();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    copy_headers(&parts.headers, response.headers_mut());
    response
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for name in RELAYED {
        if let Some(v) = from.get(name) {
            to.insert(name.clone(), v.clone());
        }
    }
}

pub async fn download(
    State(console): State<Console>,
    Signed(session): Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut extra = Vec::new();
    for name in [header::RANGE, header::IF_RANGE] {
        if let Some(v) = headers.get(&name) {
            extra.push((name, v.clone()));
        }
    }
    let path = format!("/exports/{}/download", segment(&id));
    let mut response = relay(&console, &session, &path, &extra).await;
    if response.status().is_success()
        && !response.headers().contains_key(header::CONTENT_DISPOSITION)
    {
        response.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"export.tar\""),
        );
    }
    response
}

pub async fn events(
    State(console): State<Console>,
    Signed(session): Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut extra = Vec::new();
    if let Some(v) = headers.get("last-event-id") {
        extra.push((header::HeaderName::from_static("last-event-id"), v.clone()));
    }
    let path = format!("/exports/{}/events", segment(&id));
    relay(&console, &session, &path, &extra).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_becomes_the_api_request() {
        let form = CreateForm {
            profile: "mirror:delta".into(),
            images: " a.test/x:1 \n\n b.test/y@sha256:00 \n".into(),
            since: "0f".into(),
            sign: Some("on".into()),
            ..CreateForm::default()
        };
        let r = form.request();
        assert_eq!(
            r["selection"]["images"],
            json!(["a.test/x:1", "b.test/y@sha256:00"])
        );
        assert_eq!(r["options"]["since"], "0f");
        assert_eq!(r["options"]["sign"], true);
        assert_eq!(r["options"]["plainHttp"], false);
        assert!(r["options"].get("registryAuth").is_none());
    }

    #[test]
    fn image_errors_name_their_line() {
        assert_eq!(line_of("$.selection.images[2]"), Some(3));
        assert_eq!(line_of("$.selection"), None);
    }

    #[test]
    fn job_text_is_escaped() {
        let job = Job {
            id: "x".into(),
            status: "failed".into(),
            reason: "<script>alert(1)</script>".into(),
            ..Job::default()
        };
        let html = result(&job, "x").into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
