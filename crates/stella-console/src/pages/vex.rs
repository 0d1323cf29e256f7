//! VEX: search the tenant's ingested OpenVEX statements by product (purl,
//! IRI or image digest), vulnerability and issuer; the consensus across issuers
//! (`GET /vex/consensus`) with its rationale and conflicts, and the
//! statements (`GET /vex/statements`) with issuer, status, justification
//! and the digest of the evidence they came from. Every value is text
//! (statements come from registries: never trusted as markup).
//!
//! Not here: editing statements or issuer trust.

use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{Payload, Problem, form};
use crate::layout::{BASE, Page};
use crate::{Console, Signed};

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    product: String,
    #[serde(default)]
    vulnerability: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Items {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(default)]
    next_cursor: Option<String>,
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub async fn page(
    State(console): State<Console>,
    Signed(session): Signed,
    Query(q): Query<Search>,
) -> Response {
    let product = q.product.trim();
    let vulnerability = q.vulnerability.trim();
    let issuer = q.issuer.trim();
    let searched = !product.is_empty() || !vulnerability.is_empty() || !issuer.is_empty();
    let bearer = Some(session.bearer.as_str());
    let mut problem = None;
    let mut consensus = None;
    let mut statements = None;
    if searched {
        let mut pairs = vec![];
        if !product.is_empty() {
            pairs.push(("product", product));
        }
        if !vulnerability.is_empty() {
            pairs.push(("vulnerability", vulnerability));
        }
        if !product.is_empty() {
            let path = format!("/vex/consensus?{}", form(&pairs));
            match console
                .api
                .json::<Items>(Method::GET, &path, bearer, Payload::None)
                .await
            {
                Ok(c) => consensus = Some(c.items),
                Err(p) => problem = Some(p),
            }
        }
        if !issuer.is_empty() {
            pairs.push(("issuer", issuer));
        }
        if let Some(c) = q.cursor.as_deref() {
            pairs.push(("cursor", c));
        }
        pairs.push(("limit", "50"));
        let path = format!("/vex/statements?{}", form(&pairs));
        match console
            .api
            .json::<Items>(Method::GET, &path, bearer, Payload::None)
            .await
        {
            Ok(s) => statements = Some(s),
            Err(p) => problem = problem.or(Some(p)),
        }
    }
    let body = html! {
        (search_form(product, vulnerability, issuer))
        @if searched {
            @if product.is_empty() {
                p.hint { "Give a product to see the consensus across issuers." }
            } @else if !issuer.is_empty() {
                p.hint { "The consensus weighs every issuer; the issuer filter narrows only the statements." }
            }
            @if let Some(c) = &consensus { (consensus_list(c)) }
            @if let Some(s) = &statements { (statement_list(s, &Filter { product, vulnerability, issuer })) }
        }
    };
    let status = problem
        .as_ref()
        .map_or(StatusCode::OK, Problem::status_code);
    Page {
        title: "VEX",
        section: "/vex",
        session: Some(&session),
        problem: problem.as_ref(),
        subnav: None,
        body,
    }
    .respond(status)
}

/// The search as typed (also what paging and per-issuer links keep).
struct Filter<'a> {
    product: &'a str,
    vulnerability: &'a str,
    issuer: &'a str,
}

impl Filter<'_> {
    /// `/console/vex?…` for this search with `issuer` and `cursor`.
    fn href(&self, issuer: &str, cursor: Option<&str>) -> String {
        let mut pairs = vec![
            ("product", self.product),
            ("vulnerability", self.vulnerability),
            ("issuer", issuer),
        ];
        if let Some(c) = cursor {
            pairs.push(("cursor", c));
        }
        format!("{BASE}/vex?{}", form(&pairs))
    }
}

fn search_form(product: &str, vulnerability: &str, issuer: &str) -> Markup {
    html! {
        form.stack.panel method="get" action={ (BASE) "/vex" } role="search" aria-label="VEX statements" {
            div {
                label for="product" { "Product" }
                input type="text" id="product" name="product" value=(product) spellcheck="false" aria-describedby="product-hint";
                p.hint id="product-hint" { "A purl (" code { "pkg:oci/app@sha256:…" } "), an IRI or an image digest." }
            }
            div {
                label for="vulnerability" { "Vulnerability" }
                input type="text" id="vulnerability" name="vulnerability" value=(vulnerability) spellcheck="false" aria-describedby="vulnerability-hint";
                p.hint id="vulnerability-hint" { "A name, an alias or an @id, e.g. CVE-2024-1234." }
            }
            div {
                label for="issuer" { "Issuer" }
                input type="text" id="issuer" name="issuer" value=(issuer) spellcheck="false" aria-describedby="issuer-hint";
                p.hint id="issuer-hint" { "Exactly as recorded (the verified signer, e.g. " code { "key sha256:…" } "); empty for every issuer." }
            }
            div { button type="submit" { "Search" } }
        }
    }
}

fn consensus_list(items: &[Value]) -> Markup {
    html! {
        h2 id="consensus" { "Consensus" }
        @if items.is_empty() {
            p.empty { "No statement about this product" " (so no consensus)." }
        }
        @for c in items {
            section.panel.consensus {
                h3 { span.mono { (text(c, "vulnerability")) } " — " strong { (text(c, "status")) } }
                @if c.get("conflict").and_then(Value::as_bool) == Some(true) {
                    p.conflict { strong { "Conflict: " } "issuers at the deciding weight disagree." }
                }
                p { (text(c, "rationale")) }
                ul {
                    @for k in c.get("contributions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                        li {
                            span.mono { (text(k, "issuer")) } ": " (text(k, "status"))
                            @if !text(k, "justification").is_empty() { " (" (text(k, "justification")) ")" }
                            " · weight " (k.get("weight").and_then(Value::as_u64).unwrap_or(0))
                            @if k.get("decisive").and_then(Value::as_bool) == Some(true) { " · decisive" }
                            br;
                            span.mono.hash { "statement " (text(k, "statementDigest")) }
                        }
                    }
                }
            }
        }
    }
}

fn statement_list(page: &Items, filter: &Filter<'_>) -> Markup {
    html! {
        h2 id="statements" { "Statements" }
        @if page.items.is_empty() {
            p.empty { "No statements match. Statements arrive when a provider run ingests signed OpenVEX attached to a subscribed image." }
        } @else {
            div.scroll tabindex="0" role="region" aria-labelledby="statements" {
                table.stack.statements {
                    thead { tr {
                        th scope="col" { "Vulnerability" }
                        th scope="col" { "Status" }
                        th scope="col" { "Justification / action" }
                        th scope="col" { "Issuer" }
                        th scope="col" { "Evidence digest" }
                    } }
                    tbody {
                        @for s in &page.items { (statement_row(s, filter)) }
                    }
                }
            }
            @if let Some(next) = &page.next_cursor {
                p { a href=(filter.href(filter.issuer, Some(next))) { "Next page" } }
            }
        }
    }
}

fn statement_row(s: &Value, filter: &Filter<'_>) -> Markup {
    let st = s.get("statement").unwrap_or(&Value::Null);
    let vuln = st.get("vulnerability").unwrap_or(&Value::Null);
    let vuln_name = vuln
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| vuln.get("@id").and_then(Value::as_str))
        .unwrap_or_default();
    let action = text(st, "action_statement");
    let action = (!action.is_empty()).then(|| format!("action: {action}"));
    let justification = [text(st, "justification"), text(st, "impact_statement")]
        .into_iter()
        .map(str::to_string)
        .chain(action)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" — ");
    html! {
        tr {
            td.mono data-label="Vulnerability" { (vuln_name) }
            td data-label="Status" { (text(st, "status")) }
            td data-label="Justification / action" { @if justification.is_empty() { "—" } @else { (justification) } }
            td data-label="Issuer" {
                span.mono { (text(s, "issuer")) }
                @if s.get("signed").and_then(Value::as_bool) == Some(false) { " (unsigned)" }
                @if filter.issuer.is_empty() && !text(s, "issuer").is_empty() {
                    br;
                    a href=(filter.href(text(s, "issuer"), None)) aria-label={ "Only this issuer: " (text(s, "issuer")) } { "Only this issuer" }
                }
            }
            td.mono.hash data-label="Evidence digest" { (text(s, "evidenceDigest")) }
        }
    }
}
