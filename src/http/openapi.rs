//! The OpenAPI 3 description of the JSON API, generated from the handlers'
//! annotations and served at `/api/v1/openapi.json`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use super::AppState;
use super::{api, ops};

/// The media type of every error (RFC 9457).
pub const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document, the shape of every error. Members beyond
/// these carry the specifics (`job_id`, `invalid`, `max`, `busy`, ...).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Unprocessable Content", "status": 422,
    "detail": "1 invalid customer ID", "code": "invalid_cids",
    "invalid": [{"value": "bad!", "reason": "not a customer ID: use letters, digits, _ . or -, starting with a letter or digit"}]}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable name, e.g. `invalid_cids`.
    pub code: String,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "Session cookie from POST /api/v1/session; POST, PATCH and DELETE also need X-CSRF-Token",
            ))),
        );
    }
}

/// What every operation may answer besides its own outcomes, added once
/// here rather than on each handler: errors carry `application/problem+json`
/// (not the `application/json` the annotations default to); authenticated
/// operations may answer `401`; cookie-authenticated unsafe ones `403
/// csrf_failed`; a JSON body may be malformed (`400 invalid_body`) or too
/// large (`413`); query parameters may be unreadable (`400 invalid_query`);
/// and anything touching the store answers `503 unavailable` while it is
/// unreachable.
struct Conventions;

/// An example problem for `status`; when the response's description starts
/// with an error code (`invalid_role, invalid_password`), the example uses it.
fn problem_example(status: u16, description: &str) -> serde_json::Value {
    let (title, mut code, mut detail) = match status {
        400 => (
            "Bad Request",
            "invalid_body",
            "the body is not valid JSON of the expected shape",
        ),
        401 => (
            "Unauthorized",
            "unauthenticated",
            "log in or send a bearer token",
        ),
        403 => ("Forbidden", "forbidden", "your role may not do this"),
        404 => ("Not Found", "not_found", "no such resource"),
        409 => (
            "Conflict",
            "request_in_progress",
            "a request with this key is still running",
        ),
        413 => (
            "Payload Too Large",
            "payload_too_large",
            "the body is larger than 256 KiB",
        ),
        422 => (
            "Unprocessable Content",
            "unknown_cluster",
            "no cluster is named \"eu-prod\"",
        ),
        429 => (
            "Too Many Requests",
            "rate_limited",
            "too many failed logins; try again in 15 minutes",
        ),
        503 => (
            "Service Unavailable",
            "unavailable",
            "the store is unreachable; try again",
        ),
        _ => ("Error", "internal", "internal error"),
    };
    let first = description
        .split([',', ' ', ':'])
        .next()
        .unwrap_or_default();
    if first.contains('_') && first.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        code = first;
        detail = description;
    }
    json!({"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code})
}

fn problem_response(description: &str, status: u16) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_MEDIA_TYPE,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .example(Some(problem_example(status, description)))
                    .build(),
            )
            .build(),
    )
}

fn is_problem(content: &utoipa::openapi::Content) -> bool {
    matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
}

impl Conventions {
    fn apply(method: &HttpMethod, path: &str, op: &mut Operation) {
        let public = op
            .security
            .as_ref()
            .is_some_and(|s| s.iter().any(|r| *r == SecurityRequirement::default()));
        let responses = &mut op.responses.responses;
        for (status, response) in responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if let Some(content) = response.content.shift_remove("application/json") {
                if is_problem(&content) {
                    let example =
                        problem_example(status.parse().unwrap_or(500), &response.description);
                    let content = ContentBuilder::new()
                        .schema(content.schema)
                        .example(Some(example))
                        .build();
                    response.content.insert(PROBLEM_MEDIA_TYPE.into(), content);
                } else {
                    response.content.insert("application/json".into(), content);
                }
            }
        }
        let mut add = |status: u16, description: &str| {
            responses
                .entry(status.to_string())
                .or_insert_with(|| problem_response(description, status));
        };
        let store = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
        if !public {
            add(
                401,
                "unauthenticated: no session or token, or one that ended",
            );
        }
        if !public && !matches!(method, HttpMethod::Get | HttpMethod::Head) {
            add(403, "csrf_failed: a cookie session without X-CSRF-Token");
        }
        if op.request_body.is_some() {
            add(400, "invalid_body: not JSON of the documented shape");
            add(413, "payload_too_large: a body over 256 KiB");
        }
        let has_query = op.parameters.as_ref().is_some_and(|ps| {
            ps.iter()
                .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query)
        });
        if has_query {
            add(400, "invalid_query: a parameter out of range or unreadable");
        }
        if store || path == "/readyz" {
            add(503, "unavailable: the store is unreachable");
        }
    }
}

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Patch, &mut item.patch),
                (HttpMethod::Delete, &mut item.delete),
            ] {
                if let Some(op) = op.as_mut() {
                    Conventions::apply(&method, path, op);
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "TMS Dashboard API", description = "One confirmed Set Action, one job."),
    paths(
        api::session::login, api::session::logout, api::session::me,
        api::catalog::catalog,
        api::actions::set_action, api::actions::retry,
        api::customers::job_customers, api::customers::history,
        api::runs::create, api::runs::list, api::runs::show, api::runs::customers,
        api::runs::pause, api::runs::resume, api::runs::cancel, api::runs::retry,
        api::approvals::list, api::approvals::show, api::approvals::approve,
        api::approvals::reject, api::approvals::cancel,
        api::jobs::list, api::jobs::show, api::jobs::export,
        api::users::list, api::users::create, api::users::update,
        api::tokens::create, api::tokens::list, api::tokens::revoke,
        api::audit::duplicates,
        api::events::events, api::events::sinks,
        ops::healthz, ops::readyz, ops::metrics, openapi_json,
    ),
    components(schemas(Problem, api::jobs::ExportFormatName)),
    modifiers(&Security, &Conventions),
    security(("session" = []), ("bearer" = [])),
)]
pub struct ApiDoc;

/// The document as served. Every query parameter takes an empty value as
/// absent (the pages' filter forms send their empty fields), which the
/// document says with `allowEmptyValue`, a member utoipa does not model.
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let operations = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let parameters = operation
            .get_mut("parameters")
            .and_then(serde_json::Value::as_array_mut)
            .into_iter()
            .flatten();
        for parameter in parameters.filter(|p| p["in"] == "query") {
            parameter["allowEmptyValue"] = json!(true);
        }
    }
    document
}

/// Limits the Set Action's `cluster` and `action` to the names this server
/// is configured with: the catalog is configuration, so only the running
/// server can say it.
pub fn with_catalog(
    mut document: serde_json::Value,
    clusters: &[&str],
    actions: &[&str],
) -> serde_json::Value {
    for (member, names) in [("cluster", clusters), ("action", actions)] {
        let pointer = format!("/components/schemas/SetActionRequest/properties/{member}");
        if let Some(schema) = document
            .pointer_mut(&pointer)
            .and_then(serde_json::Value::as_object_mut)
        {
            schema.insert("enum".into(), json!(names));
        }
    }
    document
}

/// This document, for this server's catalog.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3 description of this API", body = Object)))]
pub async fn openapi_json(State(state): State<AppState>) -> Json<serde_json::Value> {
    let execution = state.service.execution();
    let clusters: Vec<&str> = execution
        .clusters()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let actions: Vec<&str> = execution
        .catalog()
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    Json(with_catalog(document(), &clusters, &actions))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}
