//! The OpenAPI 3 description of the JSON API, generated from the handlers'
//! annotations and served at `/api/v1/openapi.json`.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::api;
use super::AppState;

/// An RFC 9457 problem document, the shape of every error. Members beyond
/// these carry the specifics (`job_id`, `invalid`, `max`, `busy`, ...).
#[derive(Serialize, ToSchema)]
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

#[derive(OpenApi)]
#[openapi(
    info(title = "TMS Dashboard API", description = "One confirmed Set Action, one job."),
    paths(
        api::session::login, api::session::logout, api::session::me,
        api::catalog::catalog,
        api::actions::set_action,
        api::jobs::list, api::jobs::show, api::export::export,
        api::users::list, api::users::create, api::users::update,
        api::tokens::create, api::tokens::list, api::tokens::revoke,
        api::audit::duplicates,
    ),
    components(schemas(Problem)),
    modifiers(&Security),
    security(("session" = []), ("bearer" = [])),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
