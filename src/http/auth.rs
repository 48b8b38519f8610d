//! Who is calling: a session cookie (browsers, with the CSRF rule on
//! state-changing methods) or `Authorization: Bearer` (scripts, exempt).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::AppState;
use crate::accounts;
use crate::domain::user::{Role, User};
use crate::error::{Error, Result};

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
    /// Refuses the request unless the caller's role passes `allowed`.
    pub fn require(&self, allowed: impl Fn(Role) -> bool) -> Result<()> {
        if allowed(self.user.role) {
            Ok(())
        } else {
            Err(Error::Forbidden("your role may not do this"))
        }
    }

    pub fn require_admin(&self) -> Result<()> {
        self.require(|r| r == Role::Admin)
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
            let user = accounts::authenticate_token(&state.db, token).await?;
            return Ok(CurrentUser {
                user,
                method: AuthMethod::Bearer,
            });
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let session_id = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .ok_or(Error::Unauthenticated)?;
        let (user, csrf_token) = accounts::session_user(&state.db, &session_id).await?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !accounts::constant_time_eq(sent, &csrf_token) {
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

/// A cookie that removes the session cookie.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), secure);
    cookie.make_removal();
    cookie
}
