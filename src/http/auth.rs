//! Who is calling: a session cookie (browsers, with the CSRF rule on
//! state-changing methods) or `Authorization: Bearer` (scripts, exempt);
//! and the session cookie itself, set the same way by every door that
//! signs someone in.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::AppState;
use crate::domain::user::User;
use crate::error::{Error, Result};
use crate::service::accounts::{constant_time_eq, NewSession};
use crate::service::Actor;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tms_session";

/// How the caller authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Session { csrf_token: String },
    Bearer,
}

/// The authenticated, active caller.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: User,
    pub method: AuthMethod,
}

impl CurrentUser {
    /// The caller as the service knows it.
    pub fn actor(&self) -> Actor {
        Actor::User(self.user.clone())
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(Error::Unauthenticated)?;
            let user = state.service.token_user(token).await?;
            return Ok(CurrentUser {
                user,
                method: AuthMethod::Bearer,
            });
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let session_id = session_id(&jar).ok_or(Error::Unauthenticated)?;
        let (user, csrf_token) = state.service.session_user(&session_id).await?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent, &csrf_token) {
                return Err(Error::CsrfFailed);
            }
        }
        Ok(CurrentUser {
            user,
            method: AuthMethod::Session { csrf_token },
        })
    }
}

/// The session id from the request's cookie, if any.
pub fn session_id(jar: &CookieJar) -> Option<String> {
    jar.get(SESSION_COOKIE).map(|c| c.value().to_owned())
}

/// The session cookie: HttpOnly, SameSite=Strict, Secure when configured.
/// It has no Max-Age: the store decides when a session ends.
pub fn session_cookie(id: String, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, id))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build()
}

/// The jar with a session started by the service: what every sign-in
/// (and every change that ended the user's other sessions) answers.
pub fn with_session(jar: CookieJar, session: NewSession, secure: bool) -> CookieJar {
    jar.add(session_cookie(session.id, secure))
}

/// A cookie that removes the session cookie.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), secure);
    cookie.make_removal();
    cookie
}
