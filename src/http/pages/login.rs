//! `/login` and `/logout`. The login form is protected against login CSRF
//! (a foreign site logging the browser into another account) by a
//! double-submit token: a `SameSite=Strict` cookie set with the form and the
//! same value in a hidden field. A successful login ends any session the
//! browser held and starts a new one, so a planted session id never lives on.
//! With single sign-on configured the page also offers `#sso-login`; where
//! only single sign-on is allowed the password form is for `admin` alone and
//! hidden behind `/login?local=1` (linked as `#local-login`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::common::{
    enc, minutes, render_with, safe_next, see_other, Chrome, FormBody, PageError, PageResult,
};
use crate::error::{Error, SignInError};
use crate::http::auth::{removal_cookie, session_id, with_session};
use crate::http::AppState;
use crate::service::accounts::{constant_time_eq, random_token, Credentials};

/// The cookie holding the login form's anti-CSRF token.
pub const LOGIN_COOKIE: &str = "tms_login";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(show).post(submit))
        .route("/logout", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    login_token: String,
    username: String,
    /// An error ("wrong password") or a notice ("logged out").
    message: Option<String>,
    is_error: bool,
    /// The single sign-on button's text and link, when it is configured.
    sso_label: Option<String>,
    sso_href: String,
    /// The password form is shown (always, unless only single sign-on is
    /// allowed and the break-glass form was not asked for).
    show_form: bool,
    /// Only single sign-on is allowed: the form is for `admin` alone.
    admin_only: bool,
    /// Where the break-glass form is, when it is hidden.
    local_href: String,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    logged_out: Option<String>,
    /// Shows the password form where only single sign-on is allowed, for
    /// `admin` (break-glass).
    local: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    login_token: String,
}

fn login_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((LOGIN_COOKIE, value))
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build()
}

/// The form, with a fresh anti-CSRF token in the cookie and the field.
/// `local` asks for the password form where only single sign-on is allowed.
fn form(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    next: String,
    username: String,
    message: Option<(String, bool)>,
    local: bool,
) -> PageResult {
    let login_token = random_token(24);
    let jar = jar.add(login_cookie(
        login_token.clone(),
        state.settings.secure_cookies,
    ));
    let (message, is_error) = match message {
        Some((m, e)) => (Some(m), e),
        None => (None, false),
    };
    let sso = state.service.sso();
    let admin_only = sso.is_some_and(|s| !s.local_login);
    let page = LoginPage {
        chrome: Chrome::anonymous(),
        sso_label: sso.map(|s| s.label.clone()),
        sso_href: format!("/auth/oidc/login?next={}", enc(&next)),
        show_form: !admin_only || local,
        admin_only,
        local_href: format!("/login?local=1&next={}", enc(&next)),
        next,
        login_token,
        username,
        message,
        is_error,
    };
    Ok((jar, render_with(status, &page)?).into_response())
}

async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> PageResult {
    let next = safe_next(query.next.as_deref());
    // Already logged in: straight on.
    if let Some(id) = session_id(&jar) {
        if state.service.session_user(&id).await.is_ok() {
            return Ok(see_other(&next));
        }
    }
    let notice = query
        .logged_out
        .is_some()
        .then(|| ("You are logged out.".to_owned(), false));
    let local = query.local.is_some();
    form(
        &state,
        jar,
        StatusCode::OK,
        next,
        String::new(),
        notice,
        local,
    )
}

#[tracing::instrument(skip_all, fields(username = %f.username))]
async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    FormBody(f): FormBody<LoginForm>,
) -> PageResult {
    let next = safe_next(Some(&f.next));
    let cookie_token = jar
        .get(LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if cookie_token.is_empty() || !constant_time_eq(&cookie_token, &f.login_token) {
        let message = "This login form had expired. Please log in again.".to_owned();
        return form(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            next,
            f.username,
            Some((message, true)),
            true,
        );
    }
    let credentials = Credentials::Password {
        username: &f.username,
        password: &f.password,
    };
    match state
        .service
        .sign_in(credentials, session_id(&jar).as_deref())
        .await
    {
        Ok(signed_in) => {
            let secure = state.settings.secure_cookies;
            let mut used = login_cookie(String::new(), secure);
            used.make_removal();
            let jar = with_session(jar, signed_in.session, secure).add(used);
            Ok((jar, see_other(&next)).into_response())
        }
        Err(Error::SignIn(SignInError::LocalLoginOff)) => {
            let label = state
                .service
                .sso()
                .map_or("single sign-on", |s| s.label.as_str());
            let message =
                format!("Local logins are turned off on this console: sign in with {label}.");
            form(
                &state,
                jar,
                StatusCode::FORBIDDEN,
                next,
                String::new(),
                Some((message, true)),
                false,
            )
        }
        Err(Error::InvalidCredentials) => {
            let message = "Wrong username or password.".to_owned();
            form(
                &state,
                jar,
                StatusCode::UNAUTHORIZED,
                next,
                f.username,
                Some((message, true)),
                true,
            )
        }
        Err(Error::RateLimited { retry_after_s }) => {
            let wait = minutes(retry_after_s);
            let message = format!(
                "Too many failed attempts for this username. Try again in {wait} minute{}.",
                if wait == 1 { "" } else { "s" }
            );
            let mut response = form(
                &state,
                jar,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                f.username,
                Some((message, true)),
                true,
            )?;
            if let Ok(v) = retry_after_s.to_string().parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            Ok(response)
        }
        Err(e) => Err(PageError(e)),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// Ends the session (the form carries the CSRF token, so no other site can
/// log a user out) and goes back to the login page.
async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    FormBody(f): FormBody<LogoutForm>,
) -> Result<Response, PageError> {
    if let Some(id) = session_id(&jar) {
        if let Ok((user, csrf)) = state.service.session_user(&id).await {
            if !constant_time_eq(&f.csrf_token, &csrf) {
                return Err(PageError(Error::CsrfFailed));
            }
            state.service.sign_out(&id).await?;
            tracing::info!(username = %user.username, "logged out (console)");
        }
    }
    let jar = jar.add(removal_cookie(state.settings.secure_cookies));
    Ok((jar, see_other("/login?logged_out=1")).into_response())
}
