//! A provider's configuration (seed 002 OCI-CFG-003): one form built from
//! the field shapes the API reports (`GET /excititor/providers/{id}/config`):
//! `list<string>` as one item per line (add, remove or paste many lines),
//! artifact slots as a choice among the tenant's staged artifacts (staged
//! on the provider page), scalars as text or a choice. Saving sends
//! `PUT …/config` with `values` and `clearKeys`; the API's validation
//! errors are shown next to the field their JSON path names.
//!
//! The page also carries the artifact store's upload form (it comes back
//! here, with the staged metadata, so the new artifact can be chosen).
//!
//! Not here: validation (the API's validator is the only one).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::{FieldError, Payload, Problem, segment};
use crate::layout::{BASE, Page, see_other};
use crate::pages::providers::{Artifact, ArtifactPage, flash_box, upload_form_to};
use crate::session::{Flash, Session};
use crate::{Console, Signed};

#[derive(Deserialize, Clone, Debug)]
pub(crate) struct FieldDef {
    pub name: String,
    pub shape: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigView {
    #[serde(default)]
    values: Map<String, Value>,
    fields: Vec<FieldDef>,
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    issues: Vec<FieldError>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    updated_by: Option<String>,
}

/// Choices offered for scalar fields with a closed set of values.
fn choices(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "cosignMode" => Some(&["keyless", "keypair", "tuf-offline"]),
        "allowHttpRegistries" | "requireSignatures" => Some(&["true", "false"]),
        _ => None,
    }
}

/// A value as the text the form shows (lists: one item per line).
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(as_text).collect::<Vec<_>>().join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The errors whose JSON path names `field` (`$.values.field`,
/// `$.values.field[2]` or plain `field`).
fn errors_for<'a>(errors: &'a [FieldError], field: &str) -> Vec<&'a FieldError> {
    errors
        .iter()
        .filter(|e| {
            let p = e.path.strip_prefix("$.values.").unwrap_or(&e.path);
            p == field || p.strip_prefix(field).is_some_and(|r| r.starts_with('['))
        })
        .collect()
}

/// The list index a path names (`…[2]` → 2).
fn index_of(path: &str) -> Option<usize> {
    let inner = path.strip_suffix(']')?;
    let open = inner.rfind('[')?;
    inner.get(open + 1..)?.parse().ok()
}

pub async fn page(
    State(console): State<Console>,
    Signed(session): Signed,
    Path(provider): Path<String>,
) -> Response {
    let flash = console.sessions.take_flash(&session.id);
    render(&console, &session, &provider, None, None, flash).await
}

async fn render(
    console: &Console,
    session: &Session,
    provider: &str,
    submitted: Option<Map<String, Value>>,
    problem: Option<Problem>,
    flash: Option<Flash>,
) -> Response {
    let bearer = Some(session.bearer.as_str());
    let path = format!("/excititor/providers/{}/config", segment(provider));
    let view: Result<ConfigView, Problem> = console
        .api
        .json(Method::GET, &path, bearer, Payload::None)
        .await;
    let listing: Option<ArtifactPage> = console
        .api
        .json(
            Method::GET,
            &format!(
                "/excititor/providers/{}/artifacts?limit=100",
                segment(provider)
            ),
            bearer,
            Payload::None,
        )
        .await
        .ok();
    let artifacts = listing.map(|l| l.items).unwrap_or_default();
    let (problem, view) = match (problem, view) {
        (Some(p), v) => (Some(p), v.ok()),
        (None, Ok(v)) => (None, Some(v)),
        (None, Err(p)) => (Some(p), None),
    };
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, Problem::status_code);
    let body = html! {
        (sub_nav(provider, "config"))
        @if let Some(f) = &flash { (flash_box(f)) }
        @if let Some(v) = &view {
            (readiness(v))
            (config_form(provider, session, v, submitted.as_ref(), problem.as_ref(), &artifacts))
            (upload_form_to(provider, &session.csrf, Some("config")))
        } @else {
            p.empty { "The configuration could not be read (see the error above)." }
        }
    };
    let title = format!("Configure {provider}");
    Page {
        title: &title,
        section: "/providers",
        session: Some(session),
        problem: problem.as_ref(),
        body,
    }
    .respond(status)
}

/// Links between a provider's pages.
pub(crate) fn sub_nav(provider: &str, current: &str) -> Markup {
    let base = format!("{BASE}/providers/{}", segment(provider));
    let entries = [
        ("config", format!("{base}/config"), "Configuration"),
        ("artifacts", base.clone(), "Artifact store"),
        ("status", format!("{base}/status"), "Run status"),
    ];
    html! {
        nav.subnav aria-label="Provider pages" {
            ul {
                @for (key, href, label) in &entries {
                    li {
                        @if *key == current {
                            a href=(href) aria-current="page" { (label) }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                }
            }
        }
    }
}

fn readiness(v: &ConfigView) -> Markup {
    html! {
        section.panel aria-labelledby="readiness" {
            h2 id="readiness" { "Readiness" }
            @if v.ready {
                p.ok { "The saved configuration is ready: the runner will run this provider." }
            } @else {
                p { "The saved configuration is not ready: the runner will not run this provider until these are fixed." }
                ul {
                    @for i in &v.issues {
                        li { code { (i.path) } " — " (i.message) " " code { (i.code) } }
                    }
                }
            }
            @if let Some(at) = &v.updated_at {
                p.hint { "Last saved " (at) @if let Some(by) = &v.updated_by { " by " (by) } "." }
            }
        }
    }
}

fn config_form(
    provider: &str,
    session: &Session,
    v: &ConfigView,
    submitted: Option<&Map<String, Value>>,
    problem: Option<&Problem>,
    artifacts: &[Artifact],
) -> Markup {
    let values = submitted.unwrap_or(&v.values);
    let errors: &[FieldError] = problem.map_or(&[], |p| p.errors.as_slice());
    html! {
        form.stack.config method="post" action={ (BASE) "/providers/" (segment(provider)) "/config" }
            data-busy="Saving…" data-status="save-status" novalidate {
            input type="hidden" name="csrf" value=(session.csrf);
            @for f in &v.fields {
                (field(f, values.get(&f.name), &errors_for(errors, &f.name), artifacts))
            }
            div {
                button type="submit" name="action" value="save" { "Save configuration" }
                " "
                button.secondary type="submit" name="action" value="validate" { "Validate only" }
            }
            p.status-line id="save-status" role="status" {}
        }
    }
}

fn field(
    f: &FieldDef,
    value: Option<&Value>,
    errors: &[&FieldError],
    artifacts: &[Artifact],
) -> Markup {
    let id = format!("f-{}", f.name);
    let hint_id = format!("{id}-hint");
    let err_id = format!("{id}-error");
    let described = if errors.is_empty() {
        hint_id.clone()
    } else {
        format!("{hint_id} {err_id}")
    };
    let invalid = (!errors.is_empty()).then_some("true");
    let text = value.map(as_text).unwrap_or_default();
    let label = html! { (f.name) @if f.required { " (required)" } };
    let errs = html! {
        @if !errors.is_empty() {
            div.field-error id=(err_id) {
                @for e in errors {
                    p {
                        @if let Some(i) = index_of(&e.path) { "Line " (i + 1) ": " }
                        (e.message) " " code { (e.code) }
                        @if !e.hint.is_empty() { br; span.hint { (e.hint) } }
                    }
                }
            }
        }
    };
    match f.shape.as_str() {
        "list<string>" => html! {
            div {
                label for=(id) { (label) }
                textarea id=(id) name=(f.name) rows="5" spellcheck="false" aria-describedby=(described) aria-invalid=[invalid] { (text) }
                p.hint id=(hint_id) { (sentence(&f.description)) " One per line; paste many at once, delete a line to remove it." }
                (errs)
            }
        },
        "artifactRef" => html! {
            div {
                label for=(id) { (label) }
                select id=(id) name=(f.name) aria-describedby=(described) aria-invalid=[invalid] {
                    option value="" selected[text.is_empty()] { "(none)" }
                    @if !text.is_empty() && !artifacts.iter().any(|a| a.artifact_id == text) {
                        option value=(text) selected { (text) " (not staged)" }
                    }
                    @for a in artifacts {
                        option value=(a.artifact_id) selected[a.artifact_id == text] { (artifact_label(a)) }
                    }
                }
                p.hint id=(hint_id) { (sentence(&f.description)) " Stage a file below (or in the artifact store), then choose it here." }
                (errs)
            }
        },
        "list<artifactRef>" => {
            let chosen: Vec<&str> = text.lines().collect();
            html! {
                fieldset aria-describedby=(described) {
                    legend { (label) }
                    @if artifacts.is_empty() {
                        p.empty { "No artifacts are staged; stage a file below, then choose it here." }
                    }
                    @for (n, a) in artifacts.iter().enumerate() {
                        div.check {
                            input type="checkbox" id={ (id) "-" (n) } name=(f.name) value=(a.artifact_id)
                                checked[chosen.contains(&a.artifact_id.as_str())];
                            label for={ (id) "-" (n) } { (artifact_label(a)) }
                        }
                    }
                    p.hint id=(hint_id) { (f.description) }
                    (errs)
                }
            }
        }
        _ => match choices(&f.name) {
            Some(options) => html! {
                div {
                    label for=(id) { (label) }
                    select id=(id) name=(f.name) aria-describedby=(described) aria-invalid=[invalid] {
                        option value="" selected[text.is_empty()] { "(default)" }
                        @if !text.is_empty() && !options.contains(&text.as_str()) {
                            option value=(text) selected { (text) }
                        }
                        @for o in options {
                            option value=(o) selected[*o == text] { (o) }
                        }
                    }
                    p.hint id=(hint_id) { (f.description) }
                    (errs)
                }
            },
            None => html! {
                div {
                    label for=(id) { (label) }
                    input type="text" id=(id) name=(f.name) value=(text) spellcheck="false" aria-describedby=(described) aria-invalid=[invalid];
                    p.hint id=(hint_id) { (f.description) }
                    (errs)
                }
            },
        },
    }
}

/// A description ending with a full stop, so a note can follow it.
fn sentence(s: &str) -> String {
    let t = s.trim_end();
    if t.is_empty() || t.ends_with('.') {
        t.to_string()
    } else {
        format!("{t}.")
    }
}

fn artifact_label(a: &Artifact) -> String {
    let short = a.sha256.get(..12).unwrap_or(&a.sha256);
    format!("{} · sha256 {short}… · {}", a.artifact_id, a.mime_type)
}

/// The form as `values` (what it shows) plus the CSRF token and action.
struct Submitted {
    csrf: Option<String>,
    validate_only: bool,
    values: Map<String, Value>,
}

fn read_form(fields: &[FieldDef], pairs: Vec<(String, String)>) -> Submitted {
    let mut out = Submitted {
        csrf: None,
        validate_only: false,
        values: Map::new(),
    };
    for (k, v) in pairs {
        match k.as_str() {
            "csrf" => out.csrf = Some(v),
            "action" => out.validate_only = v == "validate",
            _ => {
                let Some(f) = fields.iter().find(|f| f.name == k) else {
                    continue;
                };
                if f.shape == "list<artifactRef>" {
                    let entry = out
                        .values
                        .entry(k)
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(a) = entry {
                        a.push(Value::String(v));
                    }
                } else if f.shape == "list<string>" {
                    let items = v
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(|l| Value::String(l.to_string()))
                        .collect();
                    out.values.insert(k, Value::Array(items));
                } else {
                    out.values.insert(k, Value::String(v.trim().to_string()));
                }
            }
        }
    }
    out
}

/// `PUT` body: non-empty values are set, empty fields are cleared.
fn update_body(fields: &[FieldDef], values: &Map<String, Value>) -> Value {
    let mut set = Map::new();
    let mut clear = Vec::new();
    for f in fields {
        match values.get(&f.name) {
            Some(Value::String(s)) if !s.is_empty() => {
                set.insert(f.name.clone(), Value::String(s.clone()));
            }
            Some(Value::Array(a)) if !a.is_empty() => {
                set.insert(f.name.clone(), Value::Array(a.clone()));
            }
            _ => clear.push(Value::String(f.name.clone())),
        }
    }
    serde_json::json!({ "values": set, "clearKeys": clear })
}

pub async fn save(
    State(console): State<Console>,
    signed: Signed,
    Path(provider): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let pairs = form.map(|Form(p)| p).unwrap_or_default();
    let token = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if let Some(r) = signed.csrf_refusal(token) {
        return r;
    }
    let session = &signed.0;
    let path = format!("/excititor/providers/{}/config", segment(&provider));
    let view: Result<ConfigView, Problem> = console
        .api
        .json(Method::GET, &path, Some(&session.bearer), Payload::None)
        .await;
    let fields = match view {
        Ok(v) => v.fields,
        Err(p) => return render(&console, session, &provider, None, Some(p), None).await,
    };
    let form = read_form(&fields, pairs);
    let body = update_body(&fields, &form.values);
    let put_path = if form.validate_only {
        format!("{path}?validateOnly=true")
    } else {
        path
    };
    let answer: Result<Value, Problem> = console
        .api
        .json(
            Method::PUT,
            &put_path,
            Some(&session.bearer),
            Payload::Json(body.to_string().into_bytes()),
        )
        .await;
    match answer {
        Ok(_) if form.validate_only => {
            let flash = Flash::Message("The configuration is valid (nothing was saved).".into());
            render(
                &console,
                session,
                &provider,
                Some(form.values),
                None,
                Some(flash),
            )
            .await
        }
        Ok(_) => {
            console
                .sessions
                .set_flash(&session.id, Flash::Message("Configuration saved.".into()));
            see_other(&format!("/providers/{}/config", segment(&provider)))
        }
        Err(p) => {
            render(
                &console,
                session,
                &provider,
                Some(form.values),
                Some(p),
                None,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(path: &str) -> FieldError {
        FieldError {
            path: path.into(),
            ..FieldError::default()
        }
    }

    #[test]
    fn errors_go_to_the_field_their_path_names() {
        let errors = [
            err("$.values.imageSubscriptions[1]"),
            err("$.values.cosignMode"),
            err("$.values.cosignModeX"),
        ];
        assert_eq!(errors_for(&errors, "imageSubscriptions").len(), 1);
        assert_eq!(errors_for(&errors, "cosignMode").len(), 1);
        assert_eq!(index_of("$.values.imageSubscriptions[1]"), Some(1));
        assert_eq!(index_of("$.values.cosignMode"), None);
    }

    #[test]
    fn empty_fields_are_cleared() {
        let fields = vec![
            FieldDef {
                name: "imageSubscriptions".into(),
                shape: "list<string>".into(),
                required: true,
                description: String::new(),
            },
            FieldDef {
                name: "cosignIssuer".into(),
                shape: "scalar".into(),
                required: false,
                description: String::new(),
            },
        ];
        let form = read_form(
            &fields,
            vec![
                ("imageSubscriptions".into(), "a/b:1\r\n\n c/d:2 \n".into()),
                ("cosignIssuer".into(), " ".into()),
            ],
        );
        let body = update_body(&fields, &form.values);
        assert_eq!(
            body["values"]["imageSubscriptions"],
            serde_json::json!(["a/b:1", "c/d:2"])
        );
        assert_eq!(body["clearKeys"], serde_json::json!(["cosignIssuer"]));
    }
}
