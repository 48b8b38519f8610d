//! Logging in and out, and who am I.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::user::User;
use crate::error::Result;
use crate::http::auth::{removal_cookie, session_id, with_session, AuthMethod, CurrentUser};
use crate::http::extract::JsonBody;
use crate::http::openapi::Problem;
use crate::http::schema::UserSchema;
use crate::http::AppState;
use crate::service::accounts::Credentials;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(login).delete(logout))
        .route("/api/v1/me", get(me))
}

/// Credentials of a local account.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"username": "olga", "password": "a-long-passphrase-1"}))]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// A started session: the user and the token to send as `X-CSRF-Token`.
#[derive(Serialize, ToSchema)]
pub struct SessionStarted {
    #[schema(value_type = UserSchema)]
    pub user: User,
    pub csrf_token: String,
}

/// `{"user": User}`.
#[derive(Serialize, ToSchema)]
pub struct UserEnvelope {
    #[schema(value_type = UserSchema)]
    pub user: User,
}

/// Checks the credentials and starts a new session; any session the browser
/// held before is ended, so a planted session id is never promoted.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginBody, security(()),
    responses(
        (status = 200, description = "Logged in; the session cookie is set", body = SessionStarted),
        (status = 401, description = "invalid_credentials", body = Problem),
        (status = 403, description = "local_login_disabled: only single sign-on (and `admin`) may log in", body = Problem),
        (status = 429, description = "rate_limited", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(username = %body.username))]
pub async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<impl IntoResponse> {
    let credentials = Credentials::Password {
        username: &body.username,
        password: &body.password,
    };
    let signed_in = state
        .service
        .sign_in(credentials, session_id(&jar).as_deref())
        .await?;
    let csrf_token = signed_in.session.csrf_token.clone();
    let jar = with_session(jar, signed_in.session, state.settings.secure_cookies);
    Ok((
        jar,
        Json(SessionStarted {
            user: signed_in.user,
            csrf_token,
        }),
    ))
}

/// Ends the session.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "Logged out"), (status = 401, body = Problem)))]
pub async fn logout(
    State(state): State<AppState>,
    current: CurrentUser,
    jar: CookieJar,
) -> Result<impl IntoResponse> {
    if let (AuthMethod::Session { .. }, Some(id)) = (&current.method, session_id(&jar)) {
        state.service.sign_out(&id).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        jar.add(removal_cookie(state.settings.secure_cookies)),
    ))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = UserEnvelope), (status = 401, body = Problem)))]
pub async fn me(current: CurrentUser) -> Json<UserEnvelope> {
    Json(UserEnvelope { user: current.user })
}
