//! What every page shares: the logged-in user (or a redirect to the login
//! page), the layout's data, CSRF checks of HTML forms, errors as pages, and
//! small formatting helpers.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::assets;
use crate::domain::user::{Role, User};
use crate::error::Error;
use crate::http::auth::session_id;
use crate::http::AppState;
use crate::service::accounts::constant_time_eq;
use crate::service::Actor;

/// A page's result: the page, or an error page.
pub type PageResult<T = Response> = Result<T, PageError>;

/// The user of a page, from the session cookie. Without a valid session the
/// page answers `303 See Other` to `/login?next=<this path>`.
#[derive(Clone, Debug)]
pub struct PageUser {
    pub user: User,
    pub csrf_token: String,
    /// Approvals waiting for a decision, for the navigation's count.
    pub awaiting_approvals: i64,
}

impl PageUser {
    /// The user as the service knows them.
    pub fn actor(&self) -> Actor {
        Actor::User(self.user.clone())
    }

    /// Refuses a form whose hidden `csrf_token` is not this session's.
    pub fn check_csrf(&self, sent: &str) -> PageResult<()> {
        if constant_time_eq(sent, &self.csrf_token) {
            Ok(())
        } else {
            Err(PageError(Error::CsrfFailed))
        }
    }

    /// Refuses the page unless the user's role passes `allowed`.
    pub fn require(&self, allowed: impl Fn(Role) -> bool) -> PageResult<()> {
        if allowed(self.user.role) {
            Ok(())
        } else {
            Err(PageError(Error::Forbidden(
                "your role may not open this page",
            )))
        }
    }

    /// The layout's data for a page of this user; `active` names the nav item.
    pub fn chrome(&self, active: &'static str) -> Chrome {
        Chrome {
            user: Some(self.user.clone()),
            csrf_token: self.csrf_token.clone(),
            active,
            awaiting_approvals: self.awaiting_approvals,
        }
    }
}

impl PageUser {
    /// The user of the session named by the request's cookie, if any.
    async fn from_headers(
        headers: &axum::http::HeaderMap,
        state: &AppState,
    ) -> Result<Option<PageUser>, Error> {
        let jar = CookieJar::from_headers(headers);
        let Some(id) = session_id(&jar) else {
            return Ok(None);
        };
        match state.service.session_user(&id).await {
            Ok((user, csrf_token)) => {
                let awaiting_approvals = state.service.approvals().count_awaiting().await?;
                Ok(Some(PageUser {
                    user,
                    csrf_token,
                    awaiting_approvals,
                }))
            }
            Err(Error::Unauthenticated) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match PageUser::from_headers(&parts.headers, state).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(login_redirect(&parts.uri)),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

/// `303` to the login page, which comes back here afterwards.
pub fn login_redirect(uri: &axum::http::Uri) -> Response {
    let here = uri.path_and_query().map_or("/", |pq| pq.as_str());
    Redirect::to(&format!("/login?next={}", enc(here))).into_response()
}

/// A return path that stays on this site: it starts with exactly one `/`
/// and holds no backslash, white space or control character (browsers turn
/// `/\host` and `/<TAB>/host` into `//host`). Anything else becomes `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Percent-encodes a query parameter value (`application/x-www-form-urlencoded`).
pub fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `query` with `limit=` added when the page was asked for a page length,
/// so the paging links keep it.
pub fn with_limit(mut query: String, limit: &str) -> String {
    if !limit.is_empty() {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("limit={}", enc(limit)));
    }
    query
}

/// Where a listing paged by opaque cursors stands, and its links: the
/// cursors of the pages before this one travel in `prev`, so "Previous"
/// needs no cursor running backwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paging {
    pub page_number: usize,
    pub next_url: Option<String>,
    pub prev_url: Option<String>,
}

impl Paging {
    /// The paging of the page at `path?query` opened at `cursor` (empty on
    /// the first page) after the pages `prev`, whose next page starts at
    /// `next_cursor`.
    pub fn new(
        path: &str,
        query: &str,
        cursor: &str,
        prev: &[String],
        next_cursor: Option<&str>,
    ) -> Paging {
        let link = |cursor: Option<&str>, prev: &[String]| {
            let mut parts: Vec<String> = Vec::new();
            if !query.is_empty() {
                parts.push(query.to_owned());
            }
            if let Some(c) = cursor {
                parts.push(format!("cursor={}", enc(c)));
            }
            if !prev.is_empty() {
                parts.push(format!("prev={}", enc(&prev.join(","))));
            }
            if parts.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", parts.join("&"))
            }
        };
        let next_url = next_cursor.map(|next| {
            let mut stack = prev.to_vec();
            if !cursor.is_empty() {
                stack.push(cursor.to_owned());
            }
            link(Some(next), &stack)
        });
        let prev_url = (!cursor.is_empty()).then(|| match prev.split_last() {
            Some((last, rest)) => link(Some(last), rest),
            None => link(None, &[]),
        });
        Paging {
            page_number: if cursor.is_empty() { 1 } else { prev.len() + 2 },
            next_url,
            prev_url,
        }
    }
}

/// The layout's data: who is logged in, their CSRF token, the active nav item.
#[derive(Clone, Debug)]
pub struct Chrome {
    pub user: Option<User>,
    pub csrf_token: String,
    pub active: &'static str,
    /// Approvals waiting for a decision (shown beside "Approvals").
    pub awaiting_approvals: i64,
}

impl Chrome {
    /// The layout of a page nobody is logged in to.
    pub fn anonymous() -> Self {
        Chrome {
            user: None,
            csrf_token: String::new(),
            active: "",
            awaiting_approvals: 0,
        }
    }

    /// Admins and auditors see every job and the duplicate report.
    pub fn sees_all_jobs(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role.sees_all_jobs())
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == Role::Admin)
    }

    /// Admins and operators run actions; the first nav item says what `/` is for them.
    pub fn can_execute(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role.can_execute())
    }

    /// The URL of an embedded asset, with its version for caching.
    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }

    /// `aria-current="page"` belongs on the nav item of this page.
    pub fn current(&self, item: &str) -> bool {
        self.active == item
    }
}

/// Renders a template into an HTML response.
pub fn render<T: Template>(template: &T) -> PageResult<Response> {
    render_with(StatusCode::OK, template)
}

/// Renders a template with a status other than 200 (a form shown again with
/// its error).
pub fn render_with<T: Template>(status: StatusCode, template: &T) -> PageResult<Response> {
    let html = template.render().map_err(|e| {
        PageError(Error::Internal(anyhow::anyhow!(
            "Failed to render a page: {e}"
        )))
    })?;
    Ok((status, Html(html)).into_response())
}

/// `303 See Other`: the "Get" of Post/Redirect/Get.
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    page: &'a ErrorPageText,
}

/// What an error page says. It travels in the response's extensions so
/// that `keep_navigation` can draw it again inside the signed-in layout.
#[derive(Clone, Debug)]
pub struct ErrorPageText {
    pub status: u16,
    pub title: String,
    pub message: String,
    /// A failed sign-in links back to the login page, not into the console.
    pub sign_in: bool,
}

impl ErrorPageText {
    fn render(&self, chrome: Chrome) -> Option<String> {
        ErrorPage { chrome, page: self }.render().ok()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status = code.status();
        let text = ErrorPageText {
            status: status.as_u16(),
            title: code.heading().to_owned(),
            message: self.0.page_message(),
            sign_in: code.is_sign_in(),
        };
        let mut response = match text.render(Chrome::anonymous()) {
            Some(html) => (status, Html(html)).into_response(),
            None => (status, "error").into_response(),
        };
        self.0.decorate(&mut response);
        response.extensions_mut().insert(text);
        response
    }
}

/// Middleware: an error page shown to someone signed in (a 403, a 404, an
/// unknown path) keeps the console's navigation, so they are never
/// stranded. Other responses pass through untouched.
pub async fn keep_navigation(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    // Only the cookies are kept for after the answer (none on most API
    // calls), not a copy of every header of every request.
    let cookies: axum::http::HeaderMap = request
        .headers()
        .get_all(axum::http::header::COOKIE)
        .iter()
        .map(|value| (axum::http::header::COOKIE, value.clone()))
        .collect();
    let response = next.run(request).await;
    let Some(text) = response.extensions().get::<ErrorPageText>().cloned() else {
        return response;
    };
    if text.sign_in {
        return response;
    }
    let Ok(Some(user)) = PageUser::from_headers(&cookies, &state).await else {
        return response;
    };
    let Some(html) = text.render(user.chrome("")) else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(html))
}

/// A URL-encoded HTML form body; a malformed one is a `400` page.
pub struct FormBody<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for FormBody<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|f| FormBody(f.0))
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    PageError(Error::PayloadTooLarge)
                } else {
                    PageError(Error::InvalidBody(format!(
                        "the form could not be read: {}",
                        e.body_text()
                    )))
                }
            })
    }
}

/// A time as pages show it: `2026-11-29 10:00:00 UTC`.
pub fn show_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A duration as pages show it: `17 ms`, `1.2 s`, `2 min 5 s`, `3 h 5 min`,
/// `2 d 4 h`.
pub fn show_duration(ms: Option<i64>) -> String {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    match ms {
        None => "—".to_owned(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < MIN => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) if ms < HOUR => format!("{} min {} s", ms / MIN, (ms % MIN) / 1000),
        Some(ms) if ms < DAY => format!("{} h {} min", ms / HOUR, (ms % HOUR) / MIN),
        Some(ms) => format!("{} d {} h", ms / DAY, (ms % DAY) / HOUR),
    }
}

/// Milliseconds as a duration a person reads (templates pass a reference).
pub fn duration_ms(ms: impl std::borrow::Borrow<i64>) -> String {
    show_duration(Some(*ms.borrow()))
}

/// A count as pages show it: `1,203`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// An enum's word as a person reads it: `timed_out` → `timed out`.
pub fn words(value: &str) -> String {
    value.replace('_', " ")
}

/// A count with its noun, singular or plural: `1 job`, `1,203 jobs`.
pub fn count_of(n: impl std::borrow::Borrow<i64>, noun: &str) -> String {
    let n = *n.borrow();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
    }
}

/// Minutes to wait, rounded up, for a throttling message.
pub fn minutes(seconds: u64) -> u64 {
    seconds.div_ceil(60).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_links_keep_the_query_and_the_cursors_before() {
        let first = Paging::new("/runs", "status=running&limit=2", "", &[], Some("c1"));
        assert_eq!(first.page_number, 1);
        assert_eq!(first.prev_url, None);
        assert_eq!(
            first.next_url.as_deref(),
            Some("/runs?status=running&limit=2&cursor=c1")
        );
        let third = Paging::new("/runs", "", "c2", &["c1".to_owned()], None);
        assert_eq!(third.page_number, 3);
        assert_eq!(third.next_url, None);
        assert_eq!(third.prev_url.as_deref(), Some("/runs?cursor=c1"));
        let second = Paging::new("/jobs", "", "c1", &[], Some("c2"));
        assert_eq!(second.prev_url.as_deref(), Some("/jobs"));
        assert_eq!(second.next_url.as_deref(), Some("/jobs?cursor=c2&prev=c1"));
        assert_eq!(with_limit(String::new(), "25"), "limit=25");
        assert_eq!(with_limit("a=1".into(), ""), "a=1");
    }

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(
            safe_next(Some("/jobs?status=failed")),
            "/jobs?status=failed"
        );
        assert_eq!(safe_next(Some("/")), "/");
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\\evil.example",
            "/\t/evil.example",
            "evil",
            "",
            "/é",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?} was accepted");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(enc("/jobs?a=1&b=2"), "%2Fjobs%3Fa%3D1%26b%3D2");
        assert_eq!(enc("C-1_2.3*"), "C-1_2.3*");
        assert_eq!(enc("a b"), "a+b");
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1203), "1,203");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
    }

    #[test]
    fn enum_words_and_counts_read_as_english() {
        assert_eq!(words("timed_out"), "timed out");
        assert_eq!(words("not_run"), "not run");
        assert_eq!(words("succeeded"), "succeeded");
        assert_eq!(count_of(1, "job"), "1 job");
        assert_eq!(count_of(0, "job"), "0 jobs");
        assert_eq!(count_of(1203, "group"), "1,203 groups");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(show_duration(None), "—");
        assert_eq!(show_duration(Some(17)), "17 ms");
        assert_eq!(show_duration(Some(1300)), "1.3 s");
        assert_eq!(show_duration(Some(125_000)), "2 min 5 s");
        assert_eq!(show_duration(Some(101_688)), "1 min 41 s");
        assert_eq!(show_duration(Some(850)), "850 ms");
        assert_eq!(show_duration(Some(11_100_000)), "3 h 5 min");
        assert_eq!(show_duration(Some(187_200_000)), "2 d 4 h");
        assert_eq!(minutes(1), 1);
        assert_eq!(minutes(900), 15);
        assert_eq!(minutes(61), 2);
    }
}
