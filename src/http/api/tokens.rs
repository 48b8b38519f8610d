//! Each user's own API tokens: created (shown once), listed, revoked.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Result;
use crate::http::auth::CurrentUser;
use crate::http::extract::JsonBody;
use crate::http::openapi::Problem;
use crate::http::AppState;
use crate::store::tokens::TokenInfo;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(list).post(create))
        .route("/api/v1/tokens/{id}", delete(revoke))
}

/// A name to recognise the token by.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "nightly report"}))]
pub struct NewTokenBody {
    /// 1 to 100 characters, not only white space.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
}

/// A created token; `token` is shown this once.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e11", "name": "nightly report",
    "created_at": "2026-11-29T10:00:00.000Z", "token": "tms_3q2-shown-once"}))]
pub struct NewToken {
    pub id: uuid::Uuid,
    pub name: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub token: String,
}

/// What the owner may see of a token (never the token).
#[derive(Clone, Debug, Serialize, ToSchema)]
// The name the document has always given it.
#[schema(as = TokenInfo)]
pub struct TokenView {
    pub id: uuid::Uuid,
    pub name: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<TokenInfo> for TokenView {
    fn from(token: TokenInfo) -> Self {
        TokenView {
            id: token.id,
            name: token.name,
            created_at: token.created_at,
            last_used_at: token.last_used_at,
        }
    }
}

/// The caller's tokens, without their secrets.
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// Creates an API token for the caller; the token is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewTokenBody,
    responses(
        (status = 201, body = NewToken),
        (status = 401, body = Problem),
        (status = 422, description = "invalid_token_name", body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> Result<(StatusCode, Json<NewToken>)> {
    let (info, token) = state
        .service
        .create_token(&current.user, &body.name)
        .await?;
    let created = NewToken {
        id: info.id,
        name: info.name,
        created_at: info.created_at,
        token,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// The caller's API tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = Problem)))]
pub async fn list(State(state): State<AppState>, current: CurrentUser) -> Result<Json<TokenList>> {
    let tokens = state.service.list_tokens(&current.user).await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path, example = "0193f1c2-5a10-7c3e-9a51-2f4b8c1d0e11")),
    responses((status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    state.service.revoke_token(&current.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
