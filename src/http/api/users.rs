//! User management (admin only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts;
use crate::domain::user::{check_password_policy, Role, User};
use crate::error::{Error, ErrorCode, Result};
use crate::http::api::session::UserEnvelope;
use crate::http::auth::CurrentUser;
use crate::http::extract::JsonBody;
use crate::http::openapi::Problem;
use crate::http::AppState;
use crate::store::users::UserChanges;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{username}", patch(update))
}

/// Applies an admin's changes to a user, with the rules every surface shares:
/// nobody disables themselves or gives up their own admin role, and a new
/// password follows the policy. Used by the API and the Users page.
pub async fn change_user(
    state: &AppState,
    admin: &User,
    username: &str,
    role: Option<Role>,
    disabled: Option<bool>,
    password: Option<&str>,
) -> Result<User> {
    let demotes_self = role.is_some_and(|r| r != Role::Admin);
    if username == admin.username && (disabled == Some(true) || demotes_self) {
        return Err(Error::rejected(
            ErrorCode::SelfLockout,
            "you cannot disable yourself or give up your own admin role",
        ));
    }
    let password_hash = match password {
        Some(p) => {
            check_password_policy(p)
                .map_err(|detail| Error::rejected(ErrorCode::InvalidPassword, detail))?;
            Some(accounts::hash_password(p).await?)
        }
        None => None,
    };
    let changes = UserChanges {
        role,
        disabled,
        password_hash,
    };
    state
        .db
        .update_user(username, &changes)
        .await?
        .ok_or(Error::NotFound)
}

pub fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| {
        Error::rejected(
            ErrorCode::InvalidRole,
            format!("role {s:?} is not admin, operator or auditor"),
        )
    })
}

/// Every user.
#[derive(Serialize, ToSchema)]
pub struct UserList {
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
    #[schema(value_type = Role)]
    pub role: String,
}

/// Changes to a user; absent members stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "auditor", "disabled": false}))]
pub struct UserChangesBody {
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    pub disabled: Option<bool>,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list(State(state): State<AppState>, current: CurrentUser) -> Result<Json<UserList>> {
    current.require_admin()?;
    Ok(Json(UserList {
        users: state.db.list_users().await?,
    }))
}

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
    current.require_admin()?;
    let JsonBody(body) = body?;
    let role = parse_role(&body.role)?;
    let (user, _) =
        accounts::create_user(&state.db, &body.username, Some(&body.password), role).await?;
    tracing::info!(by = %current.user.username, username = %user.username, role = role.as_str(), "user created");
    Ok((StatusCode::CREATED, Json(UserEnvelope { user })))
}

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
    current.require_admin()?;
    let JsonBody(body) = body?;
    let role = body.role.as_deref().map(parse_role).transpose()?;
    let user = change_user(
        &state,
        &current.user,
        &username,
        role,
        body.disabled,
        body.password.as_deref(),
    )
    .await?;
    tracing::info!(by = %current.user.username, username = %user.username, "user changed");
    Ok(Json(UserEnvelope { user }))
}
