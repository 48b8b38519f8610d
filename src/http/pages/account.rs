//! `/account`: change one's own password and manage one's API tokens.
//!
//! The current password is checked through the ordinary login check, so
//! wrong guesses here count towards the same lock-out as wrong logins: a
//! stolen session cannot be used to try passwords without limit. Changing
//! the password ends every session of the user; this browser gets a new one.
//! A new token is shown in the answer to the POST itself (never in a URL),
//! once; everything else follows Post/Redirect/Get.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::common::{
    minutes, render_with, see_other, show_time, Chrome, FormBody, PageError, PageResult, PageUser,
};
use crate::accounts;
use crate::domain::user::check_password_policy;
use crate::error::Error;
use crate::http::auth::session_cookie;
use crate::http::AppState;
use crate::store::tokens::TokenInfo;
use crate::store::users::UserChanges;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    created: String,
    tokens: Vec<TokenInfo>,
    notice: Option<String>,
    error: Option<String>,
    new_token: Option<(String, String)>,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn page(
    state: &AppState,
    page_user: &PageUser,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    new_token: Option<(String, String)>,
) -> PageResult {
    let tokens = state.db.list_tokens(&page_user.user.username).await?;
    render_with(
        status,
        &AccountPage {
            chrome: page_user.chrome("account"),
            created: show_time(&page_user.user.created_at),
            tokens,
            notice,
            error,
            new_token,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    page_user: PageUser,
    Query(done): Query<Done>,
) -> PageResult {
    let notice = match done.done.as_deref() {
        Some("password") => Some("Your password was changed. Your other sessions were logged out."),
        Some("revoked") => Some("The token was revoked."),
        _ => None,
    };
    page(
        &state,
        &page_user,
        StatusCode::OK,
        notice.map(str::to_owned),
        None,
        None,
    )
    .await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn change_password(
    State(state): State<AppState>,
    page_user: PageUser,
    jar: CookieJar,
    FormBody(f): FormBody<PasswordForm>,
) -> PageResult {
    page_user.check_csrf(&f.csrf_token)?;
    let username = page_user.user.username.clone();
    let refuse = |message: String, status: StatusCode| {
        let state = state.clone();
        let page_user = page_user.clone();
        async move { page(&state, &page_user, status, None, Some(message), None).await }
    };
    match accounts::login(&state.db, &username, &f.current_password).await {
        Ok(_) => {}
        Err(Error::InvalidCredentials) => {
            return refuse(
                "The current password is wrong.".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(Error::RateLimited { retry_after_s }) => {
            let message = format!(
                "Too many wrong passwords. Try again in {} minutes.",
                minutes(retry_after_s)
            );
            return refuse(message, StatusCode::TOO_MANY_REQUESTS).await;
        }
        Err(e) => return Err(PageError(e)),
    }
    if f.new_password != f.confirm_password {
        return refuse(
            "The two new passwords differ.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    if let Err(why) = check_password_policy(&f.new_password) {
        return refuse(
            format!("The new password is refused: {why}."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let changes = UserChanges {
        password_hash: Some(accounts::hash_password(&f.new_password).await?),
        ..UserChanges::default()
    };
    state
        .db
        .update_user(&username, &changes)
        .await?
        .ok_or(PageError(Error::NotFound))?;
    // Every session of the user ended with the change; this browser goes on in a new one.
    let session = accounts::start_session(&state.db, &username, state.settings.session_ttl).await?;
    tracing::info!(username = %username, "password changed (console)");
    let jar = jar.add(session_cookie(session.id, state.settings.secure_cookies));
    Ok((jar, see_other("/account?done=password")).into_response())
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn create_token(
    State(state): State<AppState>,
    page_user: PageUser,
    FormBody(f): FormBody<TokenForm>,
) -> PageResult {
    page_user.check_csrf(&f.csrf_token)?;
    match accounts::create_api_token(&state.db, &page_user.user.username, &f.name).await {
        Ok((info, token)) => {
            tracing::info!(token_id = %info.id, "API token created (console)");
            page(
                &state,
                &page_user,
                StatusCode::CREATED,
                None,
                None,
                Some((info.name, token)),
            )
            .await
        }
        Err(Error::Rejected { detail, .. }) => {
            page(
                &state,
                &page_user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(format!("The token was not created: {detail}.")),
                None,
            )
            .await
        }
        Err(e) => Err(PageError(e)),
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    csrf_token: String,
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn revoke_token(
    State(state): State<AppState>,
    page_user: PageUser,
    Path(id): Path<String>,
    FormBody(f): FormBody<RevokeForm>,
) -> PageResult {
    page_user.check_csrf(&f.csrf_token)?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| PageError(Error::NotFound))?;
    if !state.db.delete_token(&page_user.user.username, id).await? {
        return Err(PageError(Error::NotFound));
    }
    tracing::info!(token_id = %id, "API token revoked (console)");
    Ok(see_other("/account?done=revoked"))
}
