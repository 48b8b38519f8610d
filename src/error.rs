//! The one error type of the product and its one wire shape: an RFC 9457
//! problem document with a stable `code`. Internal failures are logged once and
//! never described to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::domain::cid::InvalidCid;
use crate::domain::job::JobId;
use crate::domain::sso::SsoRefusal;

/// Why a single sign-on login, or a local login where only single sign-on is
/// allowed, got no session. The messages are shown to the person signing in.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Single sign-on is not configured on this console.")]
    NotConfigured,
    #[error("The identity provider is not answering right now, so nobody can sign in through it. Try again in a moment.")]
    ProviderDown,
    #[error("The identity provider answered in a way this console cannot use ({0}). No session was started.")]
    ProviderBroken(String),
    #[error("The identity provider refused the sign-in: {0}.")]
    ProviderRefused(String),
    #[error("This sign-in is not valid: it was forged, already used, or started too long ago. Start again from the login page.")]
    BadState,
    #[error("The identity provider's token could not be verified ({0}). No session was started.")]
    BadToken(String),
    #[error("Sign-in refused: {0}.")]
    Refused(#[from] SsoRefusal),
    #[error("local logins are turned off on this console: sign in with single sign-on")]
    LocalLoginOff,
}

impl SignInError {
    fn status(&self) -> StatusCode {
        match self {
            SignInError::NotConfigured => StatusCode::NOT_FOUND,
            SignInError::ProviderDown => StatusCode::SERVICE_UNAVAILABLE,
            SignInError::ProviderBroken(_) => StatusCode::BAD_GATEWAY,
            SignInError::BadState => StatusCode::BAD_REQUEST,
            SignInError::ProviderRefused(_) | SignInError::BadToken(_) => StatusCode::UNAUTHORIZED,
            SignInError::Refused(_) | SignInError::LocalLoginOff => StatusCode::FORBIDDEN,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            SignInError::NotConfigured => "not_found",
            SignInError::LocalLoginOff => "local_login_disabled",
            _ => "sso_failed",
        }
    }
}

/// `Result` with our error as the default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication is required")]
    Unauthenticated,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("missing or wrong CSRF token")]
    CsrfFailed,
    #[error("not found")]
    NotFound,
    #[error("too many failed logins; try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("request body larger than 256 KiB")]
    PayloadTooLarge,
    #[error("the Idempotency-Key header is required")]
    MissingIdempotencyKey,
    #[error("{0}")]
    InvalidIdempotencyKey(String),
    #[error("a request with this Idempotency-Key is still running")]
    RequestInProgress { job_id: JobId },
    #[error("the same action on the same customer IDs ran recently (job {job_id} by {user}); send confirm_duplicate to run it again")]
    RecentDuplicate {
        job_id: JobId,
        user: String,
        created_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("customer IDs {} are in a job still running (job {job_id})", .busy.join(", "))]
    CidsBusy { job_id: JobId, busy: Vec<String> },
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("unknown cluster {0:?}")]
    UnknownCluster(String),
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("no customer IDs given")]
    NoCids,
    #[error("{count} customer IDs given; this action takes at most {max}")]
    TooManyCids { max: usize, count: usize },
    #[error("{} invalid customer ID(s): {}", .0.len(), summarize_invalid(.0))]
    InvalidCids(Vec<InvalidCid>),
    #[error("cluster {0:?} needs a token")]
    TokenRequired(String),
    #[error("{0}")]
    ReasonRequired(String),
    /// A 422 for administrative input (usernames, passwords, roles, token names).
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// A 409 for administrative conflicts (a username already taken).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// A single sign-on login that ended without a session.
    #[error("{0}")]
    SignIn(#[from] SignInError),
    #[error("the store is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

fn summarize_invalid(invalid: &[InvalidCid]) -> String {
    invalid
        .iter()
        .map(|i| format!("{:?} ({})", i.value, i.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // A lost or unreachable store: the client may retry later.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => {
                tracing::error!(error = %e, "store unavailable");
                Error::Unavailable
            }
            other => Error::Internal(anyhow::Error::new(other).context("store query failed")),
        }
    }
}

impl Error {
    pub fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            Unauthenticated | InvalidCredentials => StatusCode::UNAUTHORIZED,
            Forbidden(_) | CsrfFailed => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            InvalidBody(_) | InvalidQuery(_) | MissingIdempotencyKey | InvalidIdempotencyKey(_) => {
                StatusCode::BAD_REQUEST
            }
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestInProgress { .. }
            | RecentDuplicate { .. }
            | CidsBusy { .. }
            | Conflict { .. } => StatusCode::CONFLICT,
            IdempotencyKeyReused
            | UnknownCluster(_)
            | UnknownAction(_)
            | NoCids
            | TooManyCids { .. }
            | InvalidCids(_)
            | TokenRequired(_)
            | ReasonRequired(_)
            | Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            SignIn(e) => e.status(),
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            Unauthenticated => "unauthenticated",
            InvalidCredentials => "invalid_credentials",
            Forbidden(_) => "forbidden",
            CsrfFailed => "csrf_failed",
            NotFound => "not_found",
            RateLimited { .. } => "rate_limited",
            InvalidBody(_) => "invalid_body",
            InvalidQuery(_) => "invalid_query",
            PayloadTooLarge => "payload_too_large",
            MissingIdempotencyKey => "missing_idempotency_key",
            InvalidIdempotencyKey(_) => "invalid_idempotency_key",
            RequestInProgress { .. } => "request_in_progress",
            RecentDuplicate { .. } => "recent_duplicate",
            CidsBusy { .. } => "cids_busy",
            IdempotencyKeyReused => "idempotency_key_reused",
            UnknownCluster(_) => "unknown_cluster",
            UnknownAction(_) => "unknown_action",
            NoCids => "no_cids",
            TooManyCids { .. } => "too_many_cids",
            InvalidCids(_) => "invalid_cids",
            TokenRequired(_) => "token_required",
            ReasonRequired(_) => "reason_required",
            Unprocessable { code, .. } | Conflict { code, .. } => code,
            SignIn(e) => e.code(),
            Unavailable => "unavailable",
            Internal(_) => "internal",
        }
    }

    /// The problem document (RFC 9457) describing this error.
    pub fn problem(&self) -> Value {
        let status = self.status();
        let mut body = Map::new();
        body.insert("type".into(), json!("about:blank"));
        body.insert("title".into(), json!(title(status)));
        body.insert("status".into(), json!(status.as_u16()));
        body.insert("detail".into(), json!(self.to_string()));
        body.insert("code".into(), json!(self.code()));
        match self {
            Error::RequestInProgress { job_id } => {
                body.insert("job_id".into(), json!(job_id));
            }
            Error::RecentDuplicate {
                job_id,
                user,
                created_at,
            } => {
                body.insert("job_id".into(), json!(job_id));
                body.insert("user".into(), json!(user));
                body.insert(
                    "created_at".into(),
                    json!(crate::domain::job::format_time(created_at)),
                );
            }
            Error::CidsBusy { job_id, busy } => {
                body.insert("job_id".into(), json!(job_id));
                body.insert("busy".into(), json!(busy));
            }
            Error::InvalidCids(invalid) => {
                body.insert("invalid".into(), json!(invalid));
            }
            Error::TooManyCids { max, .. } => {
                body.insert("max".into(), json!(max));
            }
            Error::RateLimited { retry_after_s } => {
                body.insert("retry_after_s".into(), json!(retry_after_s));
            }
            _ => {}
        }
        Value::Object(body)
    }
}

/// The status's name as RFC 9110 writes it.
fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// Marker put in response extensions so the logging middleware can report an
/// internal error once, inside the request's span.
#[derive(Clone, Debug)]
pub struct InternalErrorReport(pub String);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Error::RateLimited { retry_after_s } = &self {
            if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        if let Error::Internal(e) = &self {
            response
                .extensions_mut()
                .insert(InternalErrorReport(format!("{e:#}")));
        }
        response
    }
}
