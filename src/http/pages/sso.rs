//! `/auth/oidc/login` and `/auth/oidc/callback`: single sign-on's two legs.
//!
//! The login under way (`state`, `nonce`, PKCE verifier, return path) is kept
//! in the store under the hash of a random id, and the id in a short-lived
//! HttpOnly cookie scoped to `/auth/oidc`. The store rather than a signed
//! cookie: instances need no shared signing key, any instance finishes a
//! login another started, and the callback deletes the record, so each login
//! is used once. The cookie binds it to the browser that started it, so a
//! callback URL planted in another browser (login CSRF) finds nothing.
//! It is `SameSite=Lax` because the provider's redirect back is a cross-site
//! top-level navigation, which a `Strict` cookie would not follow.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use super::common::{render_with, safe_next, Chrome, PageError, PageResult};
use crate::accounts;
use crate::domain::job::now_millis;
use crate::error::{Error, SignInError};
use crate::http::auth::{session_cookie, session_id};
use crate::http::AppState;
use crate::oidc::Sso;

/// The cookie naming the login under way; the store forgets it after
/// `PENDING_MINUTES`.
pub const PENDING_COOKIE: &str = "tms_oidc";
/// How long a person may take at the provider.
const PENDING_MINUTES: i64 = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/login", get(begin))
        .route("/auth/oidc/callback", get(callback))
}

fn pending_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((PENDING_COOKIE, value))
        .path("/auth/oidc")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
}

fn sso(state: &AppState) -> Result<&Sso, Error> {
    state
        .sso
        .as_deref()
        .ok_or(Error::SignIn(SignInError::NotConfigured))
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

#[derive(Deserialize)]
struct BeginQuery {
    next: Option<String>,
}

/// Sends the browser to the provider.
#[tracing::instrument(skip_all)]
async fn begin(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Query(query): Query<BeginQuery>,
) -> PageResult {
    let sso = sso(&state)?;
    let secure = state.settings.secure_cookies;
    let redirect = sso
        .redirect_url(host(&headers), secure)
        .map_err(Error::from)?;
    let authorization = sso
        .begin(redirect, safe_next(query.next.as_deref()))
        .await
        .map_err(Error::from)?;
    let id = accounts::random_token(32);
    let now = now_millis();
    let expires = now + chrono::Duration::minutes(PENDING_MINUTES);
    state
        .db
        .insert_pending_login(
            &accounts::sha256_hex(&id),
            &authorization.pending,
            now,
            expires,
        )
        .await?;
    let jar = jar.add(pending_cookie(id, secure));
    Ok((jar, Redirect::to(&authorization.url)).into_response())
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// The provider that answered (RFC 9207), when it says.
    iss: Option<String>,
}

#[derive(Template)]
#[template(path = "sso_continue.html")]
struct ContinuePage {
    chrome: Chrome,
    next: String,
}

/// The provider's answer: a session, or a page saying why not. Either way
/// the login under way is used up.
#[tracing::instrument(skip_all)]
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let secure = state.settings.secure_cookies;
    let pending = jar.get(PENDING_COOKIE).map(|c| c.value().to_owned());
    let mut used = pending_cookie(String::new(), secure);
    used.make_removal();
    let jar = jar.add(used);
    match finish(&state, &headers, &jar, pending, query).await {
        Ok((session, next)) => {
            let jar = jar.add(session_cookie(session, secure));
            // A page that moves on by itself rather than a redirect: the
            // session cookie is `SameSite=Strict`, and a browser does not send
            // it on a redirect that continues the provider's cross-site one.
            match render_with(
                StatusCode::OK,
                &ContinuePage {
                    chrome: Chrome::anonymous(),
                    next,
                },
            ) {
                Ok(page) => (jar, page).into_response(),
                Err(e) => (jar, e).into_response(),
            }
        }
        Err(e) => {
            if let Error::SignIn(failure) = &e {
                tracing::warn!(error = %failure, "single sign-on refused");
            }
            (jar, PageError(e)).into_response()
        }
    }
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
    pending: Option<String>,
    query: CallbackQuery,
) -> Result<(String, String), Error> {
    let sso = sso(state)?;
    let Some(pending_id) = pending else {
        return Err(SignInError::BadState.into());
    };
    let pending = state
        .db
        .take_pending_login(&accounts::sha256_hex(&pending_id), now_millis())
        .await?
        .ok_or(SignInError::BadState)?;
    let sent_state = query.state.unwrap_or_default();
    if !accounts::constant_time_eq(&sent_state, &pending.state) {
        return Err(SignInError::BadState.into());
    }
    // An answer from another provider than the one asked (mix-up attack).
    if query.iss.as_deref().is_some_and(|iss| iss != sso.issuer()) {
        return Err(SignInError::BadState.into());
    }
    if let Some(error) = query.error {
        let detail = match query.error_description {
            Some(description) => format!("{error} ({description})"),
            None => error,
        };
        return Err(SignInError::ProviderRefused(detail).into());
    }
    let code = query
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| SignInError::ProviderBroken("no authorization code".into()))?;
    let redirect = sso.redirect_url(host(headers), state.settings.secure_cookies)?;
    let claims = sso.finish(redirect, code, &pending).await?;
    let identity = claims.identify(&sso.roles).map_err(SignInError::Refused)?;
    let user = accounts::sso_login(&state.db, &identity).await?;
    // A session the browser held before ends, so a planted one never lives on.
    if let Some(old) = session_id(jar) {
        accounts::end_session(&state.db, &old).await?;
    }
    let session =
        accounts::start_session(&state.db, &user.username, state.settings.session_ttl).await?;
    tracing::info!(username = %user.username, role = user.role.as_str(), "logged in (single sign-on)");
    Ok((session.id, pending.next))
}
