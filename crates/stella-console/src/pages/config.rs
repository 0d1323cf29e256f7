//! A provider's configuration (seed 002 OCI-CFG-003): one form built from
//! the field shapes the API reports (`GET /excititor/providers/{id}/config`):
//! `list<string>` as a list editor (one input per item, each with its own
//! remove button, an add button and a paste-many box), artifact slots as a
//! choice among the tenant's staged artifacts with the chosen one's staged
//! metadata, an upload of their own and a clear button, scalars as text or
//! a choice. Saving sends `PUT …/config` with `values` and `clearKeys`; the
//! API's validation errors are shown next to the field (and the list item)
//! their JSON path names.
//!
//! Works without JavaScript: add and remove send the form back and the page
//! returns with the list changed and nothing saved; a slot's clear button
//! works the same way. A slot's upload is a form of its own (a `form=`
//! attribute ties the file input shown inside the slot to it, since forms
//! cannot nest): it stages the file and comes back with the new artifact
//! chosen in that slot (`?slot=&artifact=`), to be saved with the rest.
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
use crate::layout::size;
use crate::layout::{BASE, Page, see_other};
use crate::pages::providers::{Artifact, ArtifactPage, flash_box};
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

/// `?slot=&artifact=`: an artifact just staged for a slot, shown chosen
/// there (not saved).
#[derive(Deserialize, Default)]
pub struct Chosen {
    slot: Option<String>,
    artifact: Option<String>,
}

pub async fn page(
    State(console): State<Console>,
    Signed(session): Signed,
    Path(provider): Path<String>,
    chosen: Result<axum::extract::Query<Chosen>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let flash = console.sessions.take_flash(&session.id);
    let chosen = chosen.map(|q| q.0).unwrap_or_default();
    let submitted = match (chosen.slot, chosen.artifact) {
        (Some(slot), Some(artifact)) => {
            with_choice(&console, &session, &provider, &slot, &artifact).await
        }
        _ => None,
    };
    render(&console, &session, &provider, submitted, None, flash).await
}

/// The saved values with `artifact` chosen in artifact slot `slot` (added
/// to a list slot); `None` if `slot` is not an artifact slot.
async fn with_choice(
    console: &Console,
    session: &Session,
    provider: &str,
    slot: &str,
    artifact: &str,
) -> Option<Map<String, Value>> {
    let path = format!("/excititor/providers/{}/config", segment(provider));
    let view: ConfigView = console
        .api
        .json(Method::GET, &path, Some(&session.bearer), Payload::None)
        .await
        .ok()?;
    let field = view.fields.iter().find(|f| f.name == slot && is_slot(f))?;
    let mut values = view.values;
    let id = Value::String(artifact.to_string());
    if field.shape == "list<artifactRef>" {
        let entry = values
            .entry(slot.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(ids) = entry
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    } else {
        values.insert(slot.to_string(), id);
    }
    Some(values)
}

pub(crate) async fn render(
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
        @if let Some(f) = &flash { (flash_box(f)) }
        @if let Some(v) = &view {
            (readiness(v))
            (config_form(provider, session, v, submitted.as_ref(), problem.as_ref(), &artifacts))
            (slot_forms(provider, &session.csrf, &v.fields))
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
        subnav: Some(crate::pages::config::sub_nav(provider, "config")),
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
        form.stack.config id="config-form" method="post" action={ (BASE) "/providers/" (segment(provider)) "/config" }
            data-status="save-status" novalidate {
            input type="hidden" name="csrf" value=(session.csrf);
            // The default button: Enter in a text field saves (it never
            // removes a line).
            button type="submit" name="action" value="save" hidden { "Save configuration" }
            @for f in &v.fields {
                (field(f, values.get(&f.name), &errors_for(errors, &f.name), artifacts))
            }
            div {
                button type="submit" name="action" value="save" data-busy="Saving…" { "Save configuration" }
                " "
                button.secondary type="submit" name="action" value="validate" data-busy="Validating…" { "Validate only" }
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
        "list<string>" => list_editor(f, value, errors, &label),
        "artifactRef" => html! {
            fieldset.slot aria-describedby=(described) {
                legend { (label) }
                label for=(id) { "Staged artifact" }
                select id=(id) name=(f.name) aria-invalid=[invalid] {
                    option value="" selected[text.is_empty()] { "(none)" }
                    @if !text.is_empty() && !artifacts.iter().any(|a| a.artifact_id == text) {
                        option value=(text) selected { (text) " (not staged)" }
                    }
                    @for a in artifacts {
                        option value=(a.artifact_id) selected[a.artifact_id == text] { (artifact_label(a)) }
                    }
                }
                @if let Some(a) = artifacts.iter().find(|a| a.artifact_id == text) { (staged_meta(a)) }
                p.hint id=(hint_id) { (sentence(&f.description)) " Choose a staged artifact, or upload a file to this slot." }
                (errs)
                (slot_controls(f))
            }
        },
        "list<artifactRef>" => {
            let chosen: Vec<&str> = text.lines().collect();
            html! {
                fieldset.slot aria-describedby=(described) {
                    legend { (label) }
                    @if artifacts.is_empty() {
                        p.empty { "No artifacts are staged yet." }
                    }
                    @for (n, a) in artifacts.iter().enumerate() {
                        @let on = chosen.contains(&a.artifact_id.as_str());
                        div.check {
                            input type="checkbox" id={ (id) "-" (n) } name=(f.name) value=(a.artifact_id)
                                checked[on];
                            label for={ (id) "-" (n) } { (artifact_label(a)) }
                        }
                        @if on { (staged_meta(a)) }
                    }
                    p.hint id=(hint_id) { (sentence(&f.description)) " Tick the staged artifacts to use, or upload a file to add one." }
                    (errs)
                    (slot_controls(f))
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

/// The list editor of a `list<string>` field: one input per item with its
/// own remove button, an add button and a paste-many box. The buttons
/// send the form back (`action=remove:<field>:<n>` / `add:<field>`); the
/// page returns with the list changed and nothing saved.
fn list_editor(
    f: &FieldDef,
    value: Option<&Value>,
    errors: &[&FieldError],
    label: &Markup,
) -> Markup {
    let id = format!("f-{}", f.name);
    let items = list_items(value);
    // Errors naming no item belong to the whole list.
    let whole: Vec<&FieldError> = errors
        .iter()
        .copied()
        .filter(|e| index_of(&e.path).is_none())
        .collect();
    let whole_id = format!("{id}-error");
    html! {
        fieldset.list-editor id=(id) aria-describedby={ (id) "-hint" @if !whole.is_empty() { " " (whole_id) } } {
            legend { (label) }
            p.hint id={ (id) "-hint" } { (sentence(&f.description)) " One per line: edit, add or remove lines, or paste many below." }
            ol.lines {
                @for (n, item) in items.iter().enumerate() {
                    @let line_id = format!("{id}-{n}");
                    @let line_errors: Vec<&&FieldError> = errors.iter().filter(|e| index_of(&e.path) == Some(n)).collect();
                    li.line {
                        label for=(line_id) { "Line " (n + 1) }
                        div.line-row {
                            input type="text" id=(line_id) name=(f.name) value=(item) spellcheck="false"
                                aria-invalid=[(!line_errors.is_empty()).then_some("true")]
                                aria-describedby=[(!line_errors.is_empty()).then(|| format!("{line_id}-error"))];
                            button.secondary.remove type="submit" name="action" value={ "remove:" (f.name) ":" (n) }
                                aria-label={ "Remove line " (n + 1) } { "Remove" }
                        }
                        @if !line_errors.is_empty() {
                            div.field-error id={ (line_id) "-error" } {
                                @for e in &line_errors {
                                    p { "Line " (n + 1) ": " (e.message) " " code { (e.code) }
                                        @if !e.hint.is_empty() { br; span.hint { (e.hint) } } }
                                }
                            }
                        }
                    }
                }
            }
            p { button.secondary type="submit" name="action" value={ "add:" (f.name) } { "Add a line" } }
            label for={ (id) "-paste" } { "Paste many" }
            textarea id={ (id) "-paste" } name={ (f.name) ".paste" } rows="3" spellcheck="false" aria-describedby={ (id) "-paste-hint" } {}
            p.hint id={ (id) "-paste-hint" } { "One per line; added to the list when you save, validate or add a line." }
            @if !whole.is_empty() {
                div.field-error id=(whole_id) {
                    @for e in &whole {
                        p { (e.message) " " code { (e.code) } @if !e.hint.is_empty() { br; span.hint { (e.hint) } } }
                    }
                }
            }
        }
    }
}

/// The items a list editor shows: the value's items (at least one input).
fn list_items(value: Option<&Value>) -> Vec<String> {
    let mut items: Vec<String> = match value {
        Some(Value::Array(a)) => a.iter().map(as_text).collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    };
    if items.is_empty() {
        items.push(String::new());
    }
    items
}

/// An artifact's staged metadata (seed 002: sha256, size, staged by/at).
fn staged_meta(a: &Artifact) -> Markup {
    html! {
        dl.meta.staged {
            dt { "SHA-256" } dd.mono { (a.sha256) }
            dt { "Size" } dd { (size(a.size_bytes)) }
            dt { "Staged by" } dd { (a.staged_by) }
            dt { "Staged at" } dd { (a.staged_at) }
        }
    }
}

/// The upload and clear controls shown inside a slot. The upload belongs
/// to the slot's own form ([`slot_forms`]); clear is a button of the
/// configuration form (the slot is emptied, nothing is saved).
fn slot_controls(f: &FieldDef) -> Markup {
    let upload = format!("slot-upload-{}", f.name);
    let file_id = format!("f-{}-file", f.name);
    html! {
        div.slot-actions {
            label for=(file_id) { "Upload a file to " (f.name) }
            input type="file" id=(file_id) name="file" form=(upload) aria-describedby={ (file_id) "-hint" };
            p.hint id={ (file_id) "-hint" } { "Staged in this tenant and chosen for this slot; save the configuration to keep it (other unsaved edits on this page are not kept)." }
            div.buttons {
                button.secondary type="submit" form=(upload) data-busy="Uploading…" { "Upload to " (f.name) }
                button.danger type="submit" name="action" value={ "clear:" (f.name) } { "Clear " (f.name) }
            }
        }
    }
}

/// One upload form per artifact slot, empty: its file input and button sit
/// inside the slot in the configuration form.
fn slot_forms(provider: &str, csrf: &str, fields: &[FieldDef]) -> Markup {
    let base = format!("{BASE}/providers/{}", segment(provider));
    html! {
        @for f in fields.iter().filter(|f| is_slot(f)) {
            form id={ "slot-upload-" (f.name) } method="post" enctype="multipart/form-data" action={ (base) "/artifacts" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="returnTo" value="config";
                input type="hidden" name="slot" value=(f.name);
            }
        }
    }
}

fn is_slot(f: &FieldDef) -> bool {
    f.shape == "artifactRef" || f.shape == "list<artifactRef>"
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

/// What the form's submit button asked for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Save,
    Validate,
    /// Show one more (empty) line in a list editor; saves nothing.
    AddLine(String),
    /// Drop line `n` of a list editor; saves nothing.
    RemoveLine(String, usize),
    /// Empty an artifact slot; saves nothing.
    ClearSlot(String),
}

impl Action {
    fn parse(v: &str) -> Action {
        if v == "validate" {
            return Action::Validate;
        }
        if let Some(field) = v.strip_prefix("add:") {
            return Action::AddLine(field.to_string());
        }
        if let Some(field) = v.strip_prefix("clear:") {
            return Action::ClearSlot(field.to_string());
        }
        if let Some((field, n)) = v.strip_prefix("remove:").and_then(|r| r.rsplit_once(':'))
            && let Ok(n) = n.parse()
        {
            return Action::RemoveLine(field.to_string(), n);
        }
        Action::Save
    }
}

/// The form as `values` (what it shows) plus the CSRF token and action.
struct Submitted {
    csrf: Option<String>,
    action: Action,
    values: Map<String, Value>,
}

/// Reads the form. A list editor's items come in as one field per input
/// (kept in order, blanks included, so a remove button's number names the
/// line the user saw) plus `<field>.paste`, whose lines are appended.
fn read_form(fields: &[FieldDef], pairs: Vec<(String, String)>) -> Submitted {
    let mut out = Submitted {
        csrf: None,
        action: Action::Save,
        values: Map::new(),
    };
    let mut pasted: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "csrf" => out.csrf = Some(v),
            "action" => out.action = Action::parse(&v),
            _ => {
                if let Some(base) = k.strip_suffix(".paste") {
                    pasted.push((base.to_string(), v));
                    continue;
                }
                let Some(f) = fields.iter().find(|f| f.name == k) else {
                    continue;
                };
                if f.shape == "list<artifactRef>" || f.shape == "list<string>" {
                    let item = if f.shape == "list<string>" {
                        v.trim().to_string()
                    } else {
                        v
                    };
                    push_item(&mut out.values, k, item);
                } else {
                    out.values.insert(k, Value::String(v.trim().to_string()));
                }
            }
        }
    }
    for (k, text) in pasted {
        if fields
            .iter()
            .any(|f| f.name == k && f.shape == "list<string>")
        {
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                push_item(&mut out.values, k.clone(), line.to_string());
            }
        }
    }
    out
}

fn push_item(values: &mut Map<String, Value>, key: String, item: String) {
    let entry = values
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = entry {
        a.push(Value::String(item));
    }
}

/// Applies an add or remove to the submitted lists; blank lines are
/// dropped except the one just added.
fn edit_lists(fields: &[FieldDef], values: &mut Map<String, Value>, action: &Action) {
    for f in fields.iter().filter(|f| f.shape == "list<string>") {
        let mut items: Vec<Value> = match values.remove(&f.name) {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        if let Action::RemoveLine(field, n) = action
            && *field == f.name
            && *n < items.len()
        {
            items.remove(*n);
        }
        items.retain(|v| v.as_str().is_some_and(|s| !s.is_empty()));
        if matches!(action, Action::AddLine(field) if *field == f.name) {
            items.push(Value::String(String::new()));
        }
        values.insert(f.name.clone(), Value::Array(items));
    }
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
    let mut form = read_form(&fields, pairs);
    edit_lists(&fields, &mut form.values, &form.action);
    let edited = match &form.action {
        Action::AddLine(_) | Action::RemoveLine(..) => {
            Some("List changed; nothing is saved until you save.".to_string())
        }
        Action::ClearSlot(slot) => {
            form.values.remove(slot);
            Some(format!(
                "Cleared {slot}; save the configuration to keep it (the artifact stays staged)."
            ))
        }
        Action::Save | Action::Validate => None,
    };
    if let Some(message) = edited {
        let flash = Flash::Message(message);
        return render(
            &console,
            session,
            &provider,
            Some(form.values),
            None,
            Some(flash),
        )
        .await;
    }
    let validate_only = form.action == Action::Validate;
    let body = update_body(&fields, &form.values);
    let put_path = if validate_only {
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
        Ok(_) if validate_only => {
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
                ("imageSubscriptions".into(), "a/b:1".into()),
                ("imageSubscriptions.paste".into(), "\r\n c/d:2 \n".into()),
                ("cosignIssuer".into(), " ".into()),
            ],
        );
        let mut values = form.values;
        edit_lists(&fields, &mut values, &form.action);
        let body = update_body(&fields, &values);
        assert_eq!(
            body["values"]["imageSubscriptions"],
            serde_json::json!(["a/b:1", "c/d:2"])
        );
        assert_eq!(body["clearKeys"], serde_json::json!(["cosignIssuer"]));
    }

    #[test]
    fn list_editor_lines_are_removed_added_and_pasted() {
        let fields = vec![FieldDef {
            name: "imageSubscriptions".into(),
            shape: "list<string>".into(),
            required: true,
            description: String::new(),
        }];
        let pairs = |action: &str| {
            vec![
                ("imageSubscriptions".to_string(), "a/b:1".to_string()),
                ("imageSubscriptions".to_string(), " ".to_string()),
                ("imageSubscriptions".to_string(), "c/d:2".to_string()),
                (
                    "imageSubscriptions.paste".to_string(),
                    "e/f:3\n\ng/h:4".to_string(),
                ),
                ("action".to_string(), action.to_string()),
            ]
        };
        // Line 3 as the user saw it (the blank line 2 counts).
        let mut form = read_form(&fields, pairs("remove:imageSubscriptions:2"));
        assert_eq!(
            form.action,
            Action::RemoveLine("imageSubscriptions".into(), 2)
        );
        edit_lists(&fields, &mut form.values, &form.action);
        assert_eq!(
            form.values["imageSubscriptions"],
            serde_json::json!(["a/b:1", "e/f:3", "g/h:4"])
        );
        let mut form = read_form(&fields, pairs("add:imageSubscriptions"));
        edit_lists(&fields, &mut form.values, &form.action);
        assert_eq!(
            form.values["imageSubscriptions"],
            serde_json::json!(["a/b:1", "c/d:2", "e/f:3", "g/h:4", ""])
        );
        assert_eq!(Action::parse("remove:x"), Action::Save);
        assert_eq!(
            Action::parse("clear:tufRoot"),
            Action::ClearSlot("tufRoot".into())
        );
        assert_eq!(Action::parse("validate"), Action::Validate);
    }
}
