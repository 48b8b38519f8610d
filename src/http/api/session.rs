//! Logging in and out, and who am I.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;

use crate::accounts;
use crate::error::Result;
use crate::http::auth::{removal_cookie, session_cookie, session_id, AuthMethod, CurrentUser};
use crate::http::extract::JsonBody;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(login).delete(logout))
        .route("/api/v1/me", get(me))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// Checks the credentials and starts a new session; any session the browser
/// held before is ended, so a planted session id is never promoted.
#[tracing::instrument(skip_all, fields(username = %body.username))]
async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<impl IntoResponse> {
    let user = accounts::login(&state.db, &body.username, &body.password).await?;
    if let Some(old) = session_id(&jar) {
        accounts::end_session(&state.db, &old).await?;
    }
    let session =
        accounts::start_session(&state.db, &user.username, state.settings.session_ttl).await?;
    tracing::info!(username = %user.username, "logged in");
    let jar = jar.add(session_cookie(session.id, state.settings.secure_cookies));
    Ok((
        jar,
        Json(json!({ "user": user, "csrf_token": session.csrf_token })),
    ))
}

async fn logout(
    State(state): State<AppState>,
    current: CurrentUser,
    jar: CookieJar,
) -> Result<impl IntoResponse> {
    if let (AuthMethod::Session { .. }, Some(id)) = (&current.method, session_id(&jar)) {
        accounts::end_session(&state.db, &id).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        jar.add(removal_cookie(state.settings.secure_cookies)),
    ))
}

async fn me(current: CurrentUser) -> Json<serde_json::Value> {
    Json(json!({ "user": current.user }))
}
