//! Each user's own API tokens: created (shown once), listed, revoked.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::accounts;
use crate::error::{Error, Result};
use crate::http::auth::CurrentUser;
use crate::http::extract::JsonBody;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(list).post(create))
        .route("/api/v1/tokens/{id}", delete(revoke))
}

#[derive(Deserialize)]
struct NewTokenBody {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let (info, token) =
        accounts::create_api_token(&state.db, &current.user.username, &body.name).await?;
    tracing::info!(username = %current.user.username, token_id = %info.id, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": info.id, "name": info.name, "created_at": info.created_at, "token": token }),
        ),
    ))
}

async fn list(State(state): State<AppState>, current: CurrentUser) -> Result<Json<Value>> {
    Ok(Json(
        json!({ "tokens": state.db.list_tokens(&current.user.username).await? }),
    ))
}

async fn revoke(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::NotFound)?;
    if state.db.delete_token(&current.user.username, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound)
    }
}
