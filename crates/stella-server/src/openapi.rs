//! The OpenAPI 3.1 document, generated from the route annotations.

use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::Scope;
use crate::routes::{artifacts, exports, ops, policy, providers, reports, token, verify, vex};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stella service API",
        description = "Tenant-scoped supply-chain evidence service. Every 4xx/5xx body is application/problem+json; every response carries X-Stella-Quota-Remaining and X-Stella-Reset.",
    ),
    paths(
        token::token,
        ops::jwks,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::version,
        ops::openapi_json,
        ops::openapi_yaml,
        artifacts::upload,
        artifacts::list,
        artifacts::get,
        artifacts::delete,
        verify::policies,
        verify::verify_image,
        providers::list_providers,
        providers::get_provider_config,
        providers::put_provider_config,
        providers::run_provider,
        providers::provider_status,
        vex::list_vex_statements,
        vex::get_vex_consensus,
        policy::import,
        policy::export,
        policy::validate,
        policy::preview,
        policy::activate,
        reports::create_report,
        reports::report_keys,
        vex::get_vex_trust,
        vex::put_vex_trust,
        exports::create,
        exports::list,
        exports::get,
        exports::delete,
        exports::events,
        exports::download,
        exports::signing_key,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError, crate::routes::providers::ConfigProblem)),
    modifiers(&Security, &EdgeResponses),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scopes = Scopes::from_iter(
            Scope::ALL
                .iter()
                .map(|s| (s.as_str(), scope_description(*s))),
        );
        let flow = Flow::ClientCredentials(ClientCredentials::new("/connect/token", scopes));
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::OAuth2(OAuth2::new([flow])));
    }
}

/// Answers any route can give before its handler runs: 408 (request not
/// done within `requestTimeoutSeconds`) and 431 (request head over the
/// limits, see `middleware`).
struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    crate::error::PROBLEM_CONTENT_TYPE,
                    Content::new(Some(Ref::from_schema_name("Problem"))),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses
                    .entry("408".into())
                    .or_insert_with(|| problem("Request not complete in time").into());
                responses
                    .entry("431".into())
                    .or_insert_with(|| problem("Request header fields too large").into());
            }
        }
    }
}

fn scope_description(s: Scope) -> &'static str {
    match s {
        Scope::VexRead => "Read VEX provider data and staged artifacts",
        Scope::VexAdmin => "Stage and delete VEX provider artifacts",
        Scope::EvidenceRead => "Read evidence",
        Scope::EvidenceWrite => "Store evidence",
        Scope::ExportRead => "Read exports",
        Scope::ExportAdmin => "Manage exports",
        Scope::Admin => "Administer the service",
        Scope::PolicyRead => "Read and preview policy revisions",
        Scope::PolicyWrite => "Import and activate policy revisions",
        Scope::ScannerReports => "Compute signed image reports",
    }
}
