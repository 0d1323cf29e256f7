//! Providers: the catalog, and one provider's artifact store (seed 002
//! OCI-CFG-003): upload with staged metadata, the staged-artifact table,
//! delete (a 409 "in use" is explained).
//!
//! The catalog is the API's (`GET /excititor/providers`); any other
//! provider id can still be opened by name.

use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::{Payload, Problem, segment};
use crate::layout::{BASE, Page, see_other, size};
use crate::session::{self, Flash};
use crate::{Console, Signed};

/// One provider of the API's catalog (`GET /excititor/providers`).
#[derive(Deserialize)]
struct CatalogEntry {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
struct Catalog {
    items: Vec<CatalogEntry>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Artifact {
    pub artifact_id: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub staged_at: String,
    #[serde(default)]
    pub staged_by: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ArtifactPage {
    pub items: Vec<Artifact>,
    #[serde(default)]
    next_cursor: Option<String>,
}

pub async fn catalog(State(console): State<Console>, Signed(session): Signed) -> Response {
    let listed: Result<Catalog, Problem> = console
        .api
        .json(
            Method::GET,
            "/excititor/providers",
            Some(&session.bearer),
            Payload::None,
        )
        .await;
    let (items, problem) = match listed {
        Ok(c) => (c.items, None),
        Err(p) => (Vec::new(), Some(p)),
    };
    let body = html! {
        p { "Providers bring VEX statements into Stella. Configure one, stage its trust material, run it and see its status." }
        div.scroll tabindex="0" role="region" aria-label="Provider catalog" {
            table.stack {
                thead { tr {
                    th scope="col" { "Provider" }
                    th scope="col" { "What it reads" }
                    th scope="col" { "Pages" }
                } }
                tbody {
                    @for p in &items {
                        tr {
                            td data-label="Provider" {
                                a href={ (BASE) "/providers/" (segment(&p.id)) "/config" } { code { (p.id) } }
                                @if !p.name.is_empty() { br; (p.name) }
                            }
                            td data-label="What it reads" { (p.description) }
                            td data-label="Pages" {
                                a href={ (BASE) "/providers/" (segment(&p.id)) "/config" } aria-label={ "Configuration of " (p.id) } { "Configuration" }
                                " · "
                                a href={ (BASE) "/providers/" (segment(&p.id)) } aria-label={ "Artifacts of " (p.id) } { "Artifacts" }
                                " · "
                                a href={ (BASE) "/providers/" (segment(&p.id)) "/status" } aria-label={ "Run status of " (p.id) } { "Status" }
                            }
                        }
                    }
                }
            }
        }
        section.panel {
            h2 { "Open a provider by id" }
            form.stack method="get" action={ (BASE) "/providers/open" } {
                div {
                    label for="provider-id" { "Provider id" }
                    input type="text" id="provider-id" name="id" required spellcheck="false" aria-describedby="provider-id-hint";
                    p.hint id="provider-id-hint" { "1–128 characters of A–Z a–z 0–9 . _ : -" }
                }
                div { button type="submit" { "Open" } }
            }
        }
    };
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, Problem::status_code);
    Page {
        title: "Providers",
        section: "/providers",
        session: Some(&session),
        problem: problem.as_ref(),
        subnav: None,
        body,
    }
    .respond(status)
}

#[derive(Deserialize)]
pub struct OpenQuery {
    #[serde(default)]
    id: String,
}

pub async fn open(_: Signed, Query(q): Query<OpenQuery>) -> Response {
    see_other(&format!("/providers/{}", segment(q.id.trim())))
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    cursor: Option<String>,
}

pub async fn page(
    State(console): State<Console>,
    Signed(session): Signed,
    Path(provider): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let flash = console.sessions.take_flash(&session.id);
    render(
        &console,
        &session,
        &provider,
        q.cursor.as_deref(),
        None,
        flash,
    )
    .await
}

async fn render(
    console: &Console,
    session: &session::Session,
    provider: &str,
    cursor: Option<&str>,
    problem: Option<Problem>,
    flash: Option<Flash>,
) -> Response {
    let mut path = format!(
        "/excititor/providers/{}/artifacts?limit=100",
        segment(provider)
    );
    if let Some(c) = cursor {
        path.push_str(&format!("&cursor={}", segment(c)));
    }
    let listed: Result<ArtifactPage, Problem> = console
        .api
        .json(Method::GET, &path, Some(&session.bearer), Payload::None)
        .await;
    // The action's problem wins; else the listing's.
    let (problem, listing) = match (problem, listed) {
        (Some(p), l) => (Some(p), l.ok()),
        (None, Ok(l)) => (None, Some(l)),
        (None, Err(p)) => (Some(p), None),
    };
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, Problem::status_code);
    let body = html! {
        @if let Some(f) = &flash { (flash_box(f)) }
        (upload_form(provider, &session.csrf))
        h2 id="staged" { "Staged artifacts" }
        @if let Some(l) = &listing {
            (artifact_table(provider, &l.items, &session.csrf))
            @if let Some(next) = &l.next_cursor {
                p { a href={ (BASE) "/providers/" (segment(provider)) "?cursor=" (segment(next)) } { "Next page" } }
            }
        } @else {
            p.empty { "The staged artifacts could not be listed (see the error above)." }
        }
    };
    let title = format!("Provider {provider}");
    Page {
        title: &title,
        section: "/providers",
        session: Some(session),
        problem: problem.as_ref(),
        subnav: Some(crate::pages::config::sub_nav(provider, "artifacts")),
        body,
    }
    .respond(status)
}

pub(crate) fn flash_box(f: &Flash) -> Markup {
    html! {
        div.notice role="status" {
            @match f {
                Flash::Staged { file_name, artifact, slot } => {
                    p {
                        "Staged " strong.mono { (file_name) } "."
                        @if let Some(slot) = slot { " It is chosen for " code { (slot) } " below: save the configuration to keep it." }
                    }
                    dl.meta {
                        dt { "Artifact id" } dd.mono { (artifact["artifactId"].as_str().unwrap_or_default()) }
                        dt { "SHA-256" } dd.mono { (artifact["sha256"].as_str().unwrap_or_default()) }
                        dt { "Size" } dd { (size(artifact["sizeBytes"].as_u64().unwrap_or(0))) }
                        dt { "Media type" } dd.mono { (artifact["mimeType"].as_str().unwrap_or_default()) }
                        dt { "Staged by" } dd { (artifact["stagedBy"].as_str().unwrap_or_default()) }
                        dt { "Staged at" } dd { (artifact["stagedAt"].as_str().unwrap_or_default()) }
                    }
                }
                Flash::Deleted { artifact_id } => {
                    p { "Deleted artifact " span.mono { (artifact_id) } "." }
                }
                Flash::Message(m) => { p { (m) } }
            }
        }
    }
}

/// The artifact store's upload form (a configuration slot has its own).
fn upload_form(provider: &str, csrf: &str) -> Markup {
    html! {
        section.panel {
            h2 { "Stage an artifact" }
            p.hint { "Cosign public keys, a TUF root, an offline bundle or registry credentials. The payload is stored in this tenant and never shown again; only its metadata is." }
            form.stack method="post" enctype="multipart/form-data"
                action={ (BASE) "/providers/" (segment(provider)) "/artifacts" }
                data-busy="Uploading…" data-status="upload-status" {
                input type="hidden" name="csrf" value=(csrf);
                div {
                    label for="artifact-file" { "Artifact file" }
                    input type="file" id="artifact-file" name="file" required;
                }
                div {
                    label for="mime-type" { "Media type (optional)" }
                    input type="text" id="mime-type" name="mimeType" spellcheck="false" aria-describedby="mime-hint";
                    p.hint id="mime-hint" { "e.g. " code { "application/x-pem-file" } "; the browser's type when empty." }
                }
                div { button type="submit" { "Stage artifact" } }
                p.status-line id="upload-status" role="status" {}
            }
        }
    }
}

fn artifact_table(provider: &str, items: &[Artifact], csrf: &str) -> Markup {
    html! {
        @if items.is_empty() {
            p.empty { "No artifacts are staged for this provider." }
        } @else {
            div.scroll tabindex="0" role="region" aria-labelledby="staged" {
                table.stack {
                    thead { tr {
                        th scope="col" { "Artifact id" }
                        th scope="col" { "SHA-256" }
                        th scope="col" { "Size" }
                        th scope="col" { "Media type" }
                        th scope="col" { "Staged by" }
                        th scope="col" { "Staged at" }
                        th scope="col" { "Action" }
                    } }
                    tbody {
                        @for a in items {
                            tr {
                                td.mono data-label="Artifact id" { (a.artifact_id) }
                                td.mono.hash data-label="SHA-256" { (a.sha256) }
                                td data-label="Size" { (size(a.size_bytes)) }
                                td.mono data-label="Media type" { (a.mime_type) }
                                td data-label="Staged by" { (a.staged_by) }
                                td data-label="Staged at" { (a.staged_at) }
                                td data-label="Action" {
                                    form.inline method="post"
                                        action={ (BASE) "/providers/" (segment(provider)) "/artifacts/" (segment(&a.artifact_id)) "/delete" }
                                        data-confirm={ "Delete artifact " (a.artifact_id) "?" } {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.danger type="submit" aria-label={ "Delete artifact " (a.artifact_id) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The parts of the console's upload form.
struct Upload {
    csrf: Option<String>,
    /// `config`: go back to the configuration page afterwards.
    return_to: Option<String>,
    /// The configuration slot to set to the new artifact.
    slot: Option<String>,
    mime_type: Option<String>,
    file_name: String,
    content_type: Option<String>,
    payload: Vec<u8>,
}

async fn read_text(field: Field<'_>) -> Result<String, Problem> {
    let bytes = field
        .bytes()
        .await
        .map_err(|e| multipart_problem(e.status(), e.body_text()))?;
    if bytes.len() > 1024 {
        return Err(bad_form("a text field is too long"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| bad_form("a text field is not UTF-8"))
}

fn bad_form(detail: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "INVALID_FORM",
        "Bad request",
        detail,
    )
}

fn multipart_problem(status: StatusCode, detail: String) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            status,
            "PAYLOAD_TOO_LARGE",
            "Payload too large",
            "the upload is larger than the server's artifact limit",
        )
    } else {
        Problem::new(status, "MALFORMED_MULTIPART", "Bad request", detail)
    }
}

async fn read_upload(mut multipart: Multipart, cap: u64) -> Result<Upload, Problem> {
    let mut up = Upload {
        csrf: None,
        return_to: None,
        slot: None,
        mime_type: None,
        file_name: String::new(),
        content_type: None,
        payload: Vec::new(),
    };
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_problem(e.status(), e.body_text()))?
    {
        match field.name().unwrap_or_default() {
            "csrf" => up.csrf = Some(read_text(field).await?),
            "returnTo" => up.return_to = Some(read_text(field).await?),
            "slot" => up.slot = Some(read_text(field).await?).filter(|s| !s.is_empty()),
            "mimeType" => {
                up.mime_type = Some(read_text(field).await?).filter(|m| !m.trim().is_empty())
            }
            "file" => {
                up.file_name = field.file_name().unwrap_or("(unnamed)").to_string();
                up.content_type = field.content_type().map(str::to_string);
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_problem(e.status(), e.body_text()))?
                {
                    up.payload.extend_from_slice(&chunk);
                    if up.payload.len() as u64 > cap {
                        return Err(multipart_problem(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            String::new(),
                        ));
                    }
                }
            }
            _ => return Err(bad_form("the upload form has an unexpected field")),
        }
    }
    Ok(up)
}

/// The API's multipart body: part `file` (under a neutral file name: the
/// browser's name is only shown, never stored) and `mimeType` if given.
fn api_multipart(up: &Upload) -> Option<(String, Vec<u8>)> {
    let boundary = format!("stella-console-{}", session::random_token()?);
    let mut body = Vec::with_capacity(up.payload.len() + 512);
    let content_type = up
        .content_type
        .as_deref()
        .filter(|c| c.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .unwrap_or("application/octet-stream");
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&up.payload);
    if let Some(m) = &up.mime_type {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"mimeType\"\r\n\r\n{}",
                m.trim()
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Some((boundary, body))
}

pub async fn upload(
    State(console): State<Console>,
    signed: Signed,
    Path(provider): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let session = &signed.0;
    let up = match multipart {
        Ok(m) => read_upload(m, console.options.max_upload_bytes).await,
        Err(_) => Err(bad_form("expected a multipart/form-data upload")),
    };
    let up = match up {
        Ok(up) => up,
        Err(p) => {
            return render(&console, session, &provider, None, Some(p), None).await;
        }
    };
    if let Some(r) = signed.csrf_refusal(up.csrf.as_deref()) {
        return r;
    }
    let Some((boundary, body)) = api_multipart(&up) else {
        return bad_form("no random numbers for the upload").into_response();
    };
    let path = format!("/excititor/providers/{}/artifacts", segment(&provider));
    let staged: Result<serde_json::Value, Problem> = console
        .api
        .json(
            Method::POST,
            &path,
            Some(&session.bearer),
            Payload::Multipart { boundary, body },
        )
        .await;
    match staged {
        Ok(artifact) => {
            let id = artifact["artifactId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            console.sessions.set_flash(
                &session.id,
                Flash::Staged {
                    file_name: up.file_name,
                    artifact,
                    slot: up.slot.clone(),
                },
            );
            let provider = segment(&provider);
            match (up.return_to.as_deref(), &up.slot) {
                (Some("config"), Some(slot)) => see_other(&format!(
                    "/providers/{provider}/config?slot={}&artifact={}",
                    segment(slot),
                    segment(&id)
                )),
                (Some("config"), None) => see_other(&format!("/providers/{provider}/config")),
                _ => see_other(&format!("/providers/{provider}")),
            }
        }
        Err(p) => render(&console, session, &provider, None, Some(p), None).await,
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

pub async fn delete(
    State(console): State<Console>,
    signed: Signed,
    Path((provider, artifact_id)): Path<(String, String)>,
    form_data: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let token = form_data.ok().and_then(|Form(f)| f.csrf);
    if let Some(r) = signed.csrf_refusal(token.as_deref()) {
        return r;
    }
    let session = &signed.0;
    let path = format!(
        "/excititor/providers/{}/artifacts/{}",
        segment(&provider),
        segment(&artifact_id)
    );
    match console
        .api
        .empty(Method::DELETE, &path, Some(&session.bearer))
        .await
    {
        Ok(()) => {
            console
                .sessions
                .set_flash(&session.id, Flash::Deleted { artifact_id });
            see_other(&format!("/providers/{}", segment(&provider)))
        }
        Err(p) => render(&console, session, &provider, None, Some(p), None).await,
    }
}
