//! `/account`: change one's own password and manage one's API tokens.
//!
//! The current password is checked through the ordinary login check, so
//! wrong guesses here count towards the same lock-out as wrong logins: a
//! stolen session cannot be used to try passwords without limit. Changing
//! the password ends every session of the user; this browser gets a new one.
//! Every form follows Post/Redirect/Get; a new token is shown after the
//! redirect and on one reload, then never again (`shown_once`).

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
use super::shown_once::Shown;
use crate::error::Error;
use crate::http::auth::with_session;
use crate::http::AppState;
use crate::store::tokens::TokenInfo;
use crate::time::format_time;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

/// A token as the page lists it.
struct TokenRow {
    id: String,
    name: String,
    created_iso: String,
    created: String,
    last_used: Option<String>,
}

impl TokenRow {
    fn new(token: TokenInfo) -> Self {
        TokenRow {
            id: token.id.to_string(),
            created_iso: format_time(&token.created_at),
            created: show_time(&token.created_at),
            last_used: token.last_used_at.as_ref().map(show_time),
            name: token.name,
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    created: String,
    tokens: Vec<TokenRow>,
    notice: Option<String>,
    error: Option<String>,
    new_token: Option<(String, String)>,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
    /// The id of a new token waiting to be shown (never the token).
    shown: Option<String>,
}

async fn page(
    state: &AppState,
    page_user: &PageUser,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    new_token: Option<(String, String)>,
) -> PageResult {
    let tokens = state.service.list_tokens(&page_user.user).await?;
    let tokens = tokens.into_iter().map(TokenRow::new).collect();
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
    let mut notice = match done.done.as_deref() {
        Some("password") => Some("Your password was changed. Your other sessions were logged out."),
        Some("revoked") => Some("The token was revoked."),
        _ => None,
    };
    let new_token = match done.shown {
        Some(id) => match state.shown_once.show(&page_user.user.username, &id) {
            Shown::Secret { label, secret } => Some((label, secret)),
            Shown::Gone => {
                notice = Some(
                    "The new token was shown and is no longer shown here. If you did not copy it, revoke it and create another.",
                );
                None
            }
        },
        None => None,
    };
    page(
        &state,
        &page_user,
        StatusCode::OK,
        notice.map(str::to_owned),
        None,
        new_token,
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
    let changed = state
        .service
        .change_own_password(
            &page_user.user,
            &f.current_password,
            &f.new_password,
            &f.confirm_password,
        )
        .await;
    let (status, message) = match changed {
        Ok(session) => {
            // Every session of the user ended with the change; this browser
            // goes on in the new one.
            let jar = with_session(jar, session, state.settings.secure_cookies);
            return Ok((jar, see_other("/account?done=password")).into_response());
        }
        Err(Error::Rejected { detail, .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Not changed: {detail}."),
        ),
        Err(Error::RateLimited { retry_after_s }) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong passwords. Try again in {} minutes.",
                minutes(retry_after_s)
            ),
        ),
        Err(e) => return Err(PageError(e)),
    };
    page(&state, &page_user, status, None, Some(message), None).await
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
    match state.service.create_token(&page_user.user, &f.name).await {
        Ok((info, token)) => {
            let id = state
                .shown_once
                .keep(&page_user.user.username, info.name, token);
            Ok(see_other(&format!("/account?done=token&shown={id}")))
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
    state.service.revoke_token(&page_user.user, &id).await?;
    Ok(see_other("/account?done=revoked"))
}
