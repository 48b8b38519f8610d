//! `/auth/oidc/login` and `/auth/oidc/callback`: single sign-on's two legs
//! (the rules are `service::sso`). The id of the login under way travels in
//! a short-lived HttpOnly cookie scoped to `/auth/oidc`, `SameSite=Lax`
//! because the provider's redirect back is a cross-site top-level
//! navigation, which a `Strict` cookie would not follow.

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
use crate::error::Error;
use crate::http::auth::{session_id, with_session};
use crate::http::AppState;
use crate::service::sso::{Site, SsoAnswer};

/// The cookie naming the login under way; the store forgets it after
/// `service::sso::PENDING_MINUTES`.
pub const PENDING_COOKIE: &str = "tms_oidc";

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

fn site<'a>(state: &AppState, headers: &'a HeaderMap) -> Site<'a> {
    Site {
        host: headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        secure: state.settings.secure_cookies,
    }
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
    let start = state
        .service
        .begin_sso(site(&state, &headers), safe_next(query.next.as_deref()))
        .await?;
    let jar = jar.add(pending_cookie(
        start.pending_id,
        state.settings.secure_cookies,
    ));
    Ok((jar, Redirect::to(&start.provider_url)).into_response())
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
    let answer = SsoAnswer {
        code: query.code,
        state: query.state,
        error: query.error,
        error_description: query.error_description,
        iss: query.iss,
    };
    let finished = state
        .service
        .finish_sso(
            site(&state, &headers),
            pending.as_deref(),
            answer,
            session_id(&jar).as_deref(),
        )
        .await;
    match finished {
        Ok((signed_in, next)) => {
            let jar = with_session(jar, signed_in.session, secure);
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
