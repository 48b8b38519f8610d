//! `/admin/users` (admin): list, create, change role, disable or enable,
//! reset a password. The rules are the service's (`Service::change_user`).
//! Successful changes follow Post/Redirect/Get; a generated password is
//! shown after the redirect and on one reload, then never again
//! (`shown_once`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::common::{
    enc, render_with, see_other, show_time, Chrome, FormBody, PageError, PageResult, PageUser,
};
use super::shown_once::Shown;
use crate::domain::user::User;
use crate::error::Error;
use crate::http::auth::with_session;
use crate::http::AppState;
use crate::service::accounts::{parse_role, NewUser, UserChange};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(show).post(create))
        .route("/admin/users/{username}/role", post(set_role))
        .route("/admin/users/{username}/disabled", post(set_disabled))
        .route("/admin/users/{username}/password", post(reset_password))
}

/// A row of the table.
pub struct UserRow {
    pub username: String,
    pub role: &'static str,
    pub disabled: bool,
    pub created: String,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    rows: Vec<UserRow>,
    roles: [&'static str; 3],
    notice: Option<String>,
    error: Option<String>,
    generated: Option<(String, String)>,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
    user: Option<String>,
    /// The id of a generated password waiting to be shown (never the password).
    shown: Option<String>,
}

async fn page(
    state: &AppState,
    admin: &PageUser,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    generated: Option<(String, String)>,
) -> PageResult {
    let users: Vec<User> = state.service.list_users(&admin.actor()).await?;
    let rows = users
        .into_iter()
        .map(|u| UserRow {
            is_me: u.username == admin.user.username,
            role: u.role.as_str(),
            disabled: u.disabled,
            created: show_time(&u.created_at),
            username: u.username,
        })
        .collect();
    render_with(
        status,
        &UsersPage {
            chrome: admin.chrome("users"),
            rows,
            roles: ["operator", "auditor", "admin"],
            notice,
            error,
            generated,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    admin: PageUser,
    Query(done): Query<Done>,
) -> PageResult {
    let who = done.user.unwrap_or_default();
    let generated = match done.shown {
        Some(id) => match state.shown_once.show(&admin.user.username, &id) {
            Shown::Secret { label, secret } => Some((label, secret)),
            Shown::Gone => {
                let notice = format!(
                    "User {who} was created. Their generated password was shown and is no longer shown here: if it was not passed on, reset it."
                );
                return page(&state, &admin, StatusCode::OK, Some(notice), None, None).await;
            }
        },
        None => None,
    };
    let notice = match done.done.as_deref() {
        Some("created") => Some(format!("User {who} was created.")),
        Some("role") => Some(format!("The role of {who} was changed.")),
        Some("disabled") => Some(format!("{who} was disabled and logged out.")),
        Some("enabled") => Some(format!("{who} was enabled.")),
        Some("password") => Some(format!(
            "The password of {who} was reset; their sessions were logged out."
        )),
        _ => None,
    };
    page(&state, &admin, StatusCode::OK, notice, None, generated).await
}

/// A refused change, shown on the page with its reason.
async fn refused(state: &AppState, admin: &PageUser, e: Error) -> PageResult {
    let status = e.status();
    match e {
        Error::Rejected { detail, .. } => {
            let error = Some(format!("Not done: {detail}."));
            page(state, admin, status, None, error, None).await
        }
        Error::NotFound => {
            let error = Some("Not done: there is no such user.".into());
            page(state, admin, status, None, error, None).await
        }
        other => Err(PageError(other)),
    }
}

#[derive(Deserialize)]
struct NewUserForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

#[tracing::instrument(skip_all, fields(by = %admin.user.username))]
async fn create(
    State(state): State<AppState>,
    admin: PageUser,
    FormBody(f): FormBody<NewUserForm>,
) -> PageResult {
    admin.check_csrf(&f.csrf_token)?;
    let role = match parse_role(&f.role) {
        Ok(role) => role,
        Err(e) => return refused(&state, &admin, e).await,
    };
    let new = NewUser {
        username: f.username,
        password: (!f.password.is_empty()).then_some(f.password),
        role,
    };
    match state.service.create_user(&admin.actor(), new).await {
        Ok((user, generated)) => match generated {
            Some(password) => {
                let location = format!("/admin/users?done=created&user={}", enc(&user.username));
                let id = state
                    .shown_once
                    .keep(&admin.user.username, user.username, password);
                Ok(see_other(&format!("{location}&shown={id}")))
            }
            None => Ok(see_other(&format!(
                "/admin/users?done=created&user={}",
                enc(&user.username)
            ))),
        },
        Err(e) => refused(&state, &admin, e).await,
    }
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    role: String,
}

async fn set_role(
    State(state): State<AppState>,
    admin: PageUser,
    Path(username): Path<String>,
    FormBody(f): FormBody<RoleForm>,
) -> PageResult {
    admin.check_csrf(&f.csrf_token)?;
    let role = match parse_role(&f.role) {
        Ok(role) => role,
        Err(e) => return refused(&state, &admin, e).await,
    };
    let change = UserChange {
        role: Some(role),
        ..UserChange::default()
    };
    match state
        .service
        .change_user(&admin.actor(), &username, change)
        .await
    {
        Ok(user) => Ok(see_other(&format!(
            "/admin/users?done=role&user={}",
            enc(&user.username)
        ))),
        Err(e) => refused(&state, &admin, e).await,
    }
}

#[derive(Deserialize)]
struct DisabledForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    disabled: String,
}

async fn set_disabled(
    State(state): State<AppState>,
    admin: PageUser,
    Path(username): Path<String>,
    FormBody(f): FormBody<DisabledForm>,
) -> PageResult {
    admin.check_csrf(&f.csrf_token)?;
    let disabled = f.disabled == "true";
    let change = UserChange {
        disabled: Some(disabled),
        ..UserChange::default()
    };
    match state
        .service
        .change_user(&admin.actor(), &username, change)
        .await
    {
        Ok(user) => {
            let done = if disabled { "disabled" } else { "enabled" };
            Ok(see_other(&format!(
                "/admin/users?done={done}&user={}",
                enc(&user.username)
            )))
        }
        Err(e) => refused(&state, &admin, e).await,
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    admin: PageUser,
    jar: CookieJar,
    Path(username): Path<String>,
    FormBody(f): FormBody<PasswordForm>,
) -> PageResult {
    admin.check_csrf(&f.csrf_token)?;
    let change = UserChange {
        password: Some(f.password),
        ..UserChange::default()
    };
    match state
        .service
        .change_user(&admin.actor(), &username, change)
        .await
    {
        Ok(user) => {
            let location = format!("/admin/users?done=password&user={}", enc(&user.username));
            if user.username == admin.user.username {
                // The reset ended every session of the admin, this one too.
                let session = state.service.resume_after_own_reset(&admin.user).await?;
                let jar = with_session(jar, session, state.settings.secure_cookies);
                return Ok((jar, see_other(&location)).into_response());
            }
            Ok(see_other(&location))
        }
        Err(e) => refused(&state, &admin, e).await,
    }
}
