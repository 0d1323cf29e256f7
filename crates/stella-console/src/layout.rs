//! The page shell every console page shares (header, navigation, the
//! signed-in identity and sign-out, the problem box) and the one way a
//! page becomes a response.
//!
//! Every string that reaches HTML goes through maud, which escapes text
//! and attribute values; nothing here writes raw HTML from data.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::api::Problem;
use crate::session::Session;

/// Where the console is mounted.
pub const BASE: &str = "/console";

/// Navigation entries: path under [`BASE`] and label.
const NAV: &[(&str, &str)] = &[
    ("/providers", "Providers"),
    ("/vex", "VEX"),
    ("/check", "Image check"),
    ("/exports", "Exports"),
];

/// A complete page.
pub struct Page<'a> {
    pub title: &'a str,
    /// The nav entry this page belongs to.
    pub section: &'a str,
    pub session: Option<&'a Session>,
    pub problem: Option<&'a Problem>,
    /// Links between related pages, shown above the problem box.
    pub subnav: Option<Markup>,
    pub body: Markup,
}

impl Page<'_> {
    /// The page as a response with `status`.
    pub fn respond(self, status: StatusCode) -> Response {
        html_response(status, self.render())
    }

    fn render(self) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Stella console" }
                    link rel="stylesheet" href={ (BASE) "/static/console.css" };
                    script src={ (BASE) "/static/console.js" } defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href={ (BASE) "/" } { "Stella console" }
                        @if let Some(s) = self.session {
                            nav aria-label="Main" {
                                ul {
                                    @for (path, label) in NAV {
                                        li {
                                            @if *path == self.section {
                                                a href={ (BASE) (path) } aria-current="page" { (label) }
                                            } @else {
                                                a href={ (BASE) (path) } { (label) }
                                            }
                                        }
                                    }
                                }
                            }
                            div.who {
                                span { (s.subject) " · tenant " (s.tenant) }
                                form method="post" action={ (BASE) "/sign-out" } {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    button type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                    main id="main" tabindex="-1" {
                        h1 { (self.title) }
                        @if let Some(n) = self.subnav { (n) }
                        @if let Some(p) = self.problem {
                            (problem_box(p))
                        }
                        (self.body)
                    }
                }
            }
        }
    }
}

/// The box that shows a problem: its title and detail, code and trace id.
pub fn problem_box(p: &Problem) -> Markup {
    html! {
        div.problem role="alert" {
            h2 { (p.title) }
            p.detail { (p.detail) }
            p.meta {
                "Status " (p.status)
                @if !p.code.is_empty() { " · code " code { (p.code) } }
                @if !p.trace_id.is_empty() { " · trace " code { (p.trace_id) } }
            }
            @if p.code == "ARTIFACT_IN_USE" {
                p {
                    "A provider configuration still names this artifact in one of its slots. "
                    "Clear the slot (or point it at another artifact) and save the configuration, then delete it."
                }
            }
        }
    }
}

/// The inline error under a form field, when the problem names it.
pub fn field_error(p: Option<&Problem>, path: &str, id: &str) -> Markup {
    html! {
        @if let Some(e) = p.and_then(|p| p.field(path)) {
            p.field-error id=(id) {
                (e.message) " "
                code { (e.code) }
            }
        }
    }
}

/// An HTML answer, never cached.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A 303 to a console path.
pub fn see_other(path: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{BASE}{path}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Human size: bytes, KiB or MiB.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_text_is_escaped() {
        let p = Problem::new(
            StatusCode::BAD_REQUEST,
            "X",
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
        );
        let html = problem_box(&p).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(10), "10 B");
        assert_eq!(size(2048), "2.0 KiB");
    }
}
