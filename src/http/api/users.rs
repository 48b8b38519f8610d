//! User management (admin only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::accounts;
use crate::domain::user::{check_password_policy, Role};
use crate::error::{Error, Result};
use crate::http::auth::CurrentUser;
use crate::http::extract::JsonBody;
use crate::http::AppState;
use crate::store::users::UserChanges;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{username}", patch(update))
}

fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| Error::Unprocessable {
        code: "invalid_role",
        detail: format!("role {s:?} is not admin, operator or auditor"),
    })
}

async fn list(State(state): State<AppState>, current: CurrentUser) -> Result<Json<Value>> {
    current.require_admin()?;
    Ok(Json(json!({ "users": state.db.list_users().await? })))
}

#[derive(Deserialize)]
struct NewUserBody {
    username: String,
    password: String,
    role: String,
}

async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    body: Result<JsonBody<NewUserBody>>,
) -> Result<(StatusCode, Json<Value>)> {
    current.require_admin()?;
    let JsonBody(body) = body?;
    let role = parse_role(&body.role)?;
    let (user, _) =
        accounts::create_user(&state.db, &body.username, Some(&body.password), role).await?;
    tracing::info!(by = %current.user.username, username = %user.username, role = role.as_str(), "user created");
    Ok((StatusCode::CREATED, Json(json!({ "user": user }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChangesBody {
    role: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(username): Path<String>,
    body: Result<JsonBody<UserChangesBody>>,
) -> Result<Json<Value>> {
    current.require_admin()?;
    let JsonBody(body) = body?;
    let role = body.role.as_deref().map(parse_role).transpose()?;
    if username == current.user.username
        && (body.disabled == Some(true) || role.is_some_and(|r| r != Role::Admin))
    {
        return Err(Error::Unprocessable {
            code: "self_lockout",
            detail: "you cannot disable yourself or give up your own admin role".into(),
        });
    }
    let password_hash = match body.password.as_deref() {
        Some(p) => {
            check_password_policy(p).map_err(|detail| Error::Unprocessable {
                code: "invalid_password",
                detail,
            })?;
            Some(accounts::hash_password(p).await?)
        }
        None => None,
    };
    let changes = UserChanges {
        role,
        disabled: body.disabled,
        password_hash,
    };
    let user = state
        .db
        .update_user(&username, &changes)
        .await?
        .ok_or(Error::NotFound)?;
    tracing::info!(by = %current.user.username, username = %user.username, "user changed");
    Ok(Json(json!({ "user": user })))
}
