//! User management (admin only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::user::User;
use crate::error::Result;
use crate::http::api::session::UserEnvelope;
use crate::http::auth::CurrentUser;
use crate::http::extract::JsonBody;
use crate::http::openapi::Problem;
use crate::http::schema::{RoleSchema, UserSchema};
use crate::http::AppState;
use crate::service::accounts::{parse_role, NewUser, UserChange};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{username}", patch(update))
}

/// Every user.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    #[schema(value_type = Vec<UserSchema>)]
    pub users: Vec<User>,
}

/// A new local user.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"username": "olga", "password": "a-long-passphrase-1", "role": "operator"}))]
pub struct NewUserBody {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
    pub username: String,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// admin, operator or auditor.
    #[schema(value_type = RoleSchema)]
    pub role: String,
}

/// Changes to a user; absent members stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "auditor", "disabled": false}))]
pub struct UserChangesBody {
    #[schema(value_type = Option<RoleSchema>)]
    pub role: Option<String>,
    pub disabled: Option<bool>,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

/// Every user with role and state (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list(State(state): State<AppState>, current: CurrentUser) -> Result<Json<UserList>> {
    Ok(Json(UserList {
        users: state.service.list_users(&current.actor()).await?,
    }))
}

/// Creates a user; a generated password is in this answer only (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUserBody,
    responses(
        (status = 201, body = UserEnvelope),
        (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "user_exists", body = Problem),
        (status = 422, description = "invalid_username, invalid_password, invalid_role", body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    body: Result<JsonBody<NewUserBody>>,
) -> Result<(StatusCode, Json<UserEnvelope>)> {
    let actor = current.actor();
    actor.require_admin()?;
    let JsonBody(body) = body?;
    let new = NewUser {
        role: parse_role(&body.role)?,
        username: body.username,
        password: Some(body.password),
    };
    let (user, _) = state.service.create_user(&actor, new).await?;
    Ok((StatusCode::CREATED, Json(UserEnvelope { user })))
}

/// Changes a user's role, disables or enables them, or sets a password (admin).
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", request_body = UserChangesBody,
    params(("username" = String, Path, example = "olga")),
    responses(
        (status = 200, body = UserEnvelope),
        (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 422, description = "invalid_role, invalid_password, self_lockout", body = Problem),
    ))]
pub async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(username): Path<String>,
    body: Result<JsonBody<UserChangesBody>>,
) -> Result<Json<UserEnvelope>> {
    let actor = current.actor();
    actor.require_admin()?;
    let JsonBody(body) = body?;
    let change = UserChange {
        role: body.role.as_deref().map(parse_role).transpose()?,
        disabled: body.disabled,
        password: body.password,
    };
    let user = state.service.change_user(&actor, &username, change).await?;
    Ok(Json(UserEnvelope { user }))
}
