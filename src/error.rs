//! The one error type of the product and its one table of codes. Each code
//! appears once, with its HTTP status, the heading its error page shows and,
//! where the page should say something kinder than the detail, the page's
//! sentence. The API renders an error as an RFC 9457 problem document, the
//! pages as an error page; both read the same table. Internal failures are
//! logged once and never described to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::domain::cid::InvalidCid;
use crate::domain::job::JobId;
use crate::domain::sso::SsoRefusal;

/// Declares the codes once: the enum and the list of every code.
macro_rules! error_codes {
    ($($code:ident),* $(,)?) => {
        /// The stable machine-readable name of an error (`code` in the
        /// problem document).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($code),*
        }

        impl ErrorCode {
            /// Every code, for tests and documentation.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code),*];
        }
    };
}

error_codes! {
    Unauthenticated,
    InvalidCredentials,
    Forbidden,
    CsrfFailed,
    NotFound,
    RateLimited,
    InvalidBody,
    InvalidQuery,
    PayloadTooLarge,
    MissingIdempotencyKey,
    InvalidIdempotencyKey,
    RequestInProgress,
    RecentDuplicate,
    CidsBusy,
    IdempotencyKeyReused,
    UnknownCluster,
    UnknownAction,
    NoCids,
    TooManyCids,
    InvalidCids,
    TokenRequired,
    ReasonRequired,
    NothingToRetry,
    InvalidState,
    SelfApproval,
    AlreadyDecided,
    CommentRequired,
    InvalidUsername,
    InvalidPassword,
    InvalidRole,
    InvalidTokenName,
    SelfLockout,
    UserExists,
    LocalLoginDisabled,
    SsoProviderDown,
    SsoProviderBroken,
    SsoBadState,
    SsoFailed,
    SsoRefused,
    Unavailable,
    Internal,
}

/// One row of the table.
struct Row {
    code: &'static str,
    status: u16,
    /// The heading of the error page.
    heading: &'static str,
    /// What the error page says instead of the error's own detail.
    page_message: Option<&'static str>,
}

const fn row(code: &'static str, status: u16, heading: &'static str) -> Row {
    Row {
        code,
        status,
        heading,
        page_message: None,
    }
}

const fn row_with_page(
    code: &'static str,
    status: u16,
    heading: &'static str,
    page_message: &'static str,
) -> Row {
    Row {
        code,
        status,
        heading,
        page_message: Some(page_message),
    }
}

impl ErrorCode {
    /// The table.
    const fn row(self) -> Row {
        use ErrorCode::*;
        match self {
            Unauthenticated => row("unauthenticated", 401, "Not logged in"),
            InvalidCredentials => row("invalid_credentials", 401, "Wrong username or password"),
            Forbidden => row_with_page("forbidden", 403, "Forbidden", "Your role may not open this page."),
            CsrfFailed => row_with_page(
                "csrf_failed",
                403,
                "Form out of date",
                "This form is out of date or came from another site. Go back, reload the page and try again.",
            ),
            NotFound => row_with_page("not_found", 404, "Not Found", "There is nothing here, or nothing you may see."),
            RateLimited => row("rate_limited", 429, "Too many attempts"),
            InvalidBody => row("invalid_body", 400, "Bad request"),
            InvalidQuery => row("invalid_query", 400, "Bad request"),
            PayloadTooLarge => row("payload_too_large", 413, "Too large"),
            MissingIdempotencyKey => row("missing_idempotency_key", 400, "Bad request"),
            InvalidIdempotencyKey => row("invalid_idempotency_key", 400, "Bad request"),
            RequestInProgress => row("request_in_progress", 409, "Still running"),
            RecentDuplicate => row("recent_duplicate", 409, "Ran recently"),
            CidsBusy => row("cids_busy", 409, "Customer IDs busy"),
            IdempotencyKeyReused => row("idempotency_key_reused", 422, "Key used for another request"),
            UnknownCluster => row("unknown_cluster", 422, "Unknown cluster"),
            UnknownAction => row("unknown_action", 422, "Unknown action"),
            NoCids => row("no_cids", 422, "No customer IDs"),
            TooManyCids => row("too_many_cids", 422, "Too many customer IDs"),
            InvalidCids => row("invalid_cids", 422, "Invalid customer IDs"),
            TokenRequired => row("token_required", 422, "Token required"),
            ReasonRequired => row("reason_required", 422, "Reason required"),
            NothingToRetry => row("nothing_to_retry", 422, "Nothing to retry"),
            InvalidState => row("invalid_state", 409, "Not possible now"),
            SelfApproval => row("self_approval", 403, "Not your own request"),
            AlreadyDecided => row("already_decided", 409, "Already decided"),
            CommentRequired => row("comment_required", 422, "Comment required"),
            InvalidUsername => row("invalid_username", 422, "Invalid username"),
            InvalidPassword => row("invalid_password", 422, "Password refused"),
            InvalidRole => row("invalid_role", 422, "Unknown role"),
            InvalidTokenName => row("invalid_token_name", 422, "Invalid token name"),
            SelfLockout => row("self_lockout", 422, "Not allowed"),
            UserExists => row("user_exists", 409, "User exists"),
            LocalLoginDisabled => row("local_login_disabled", 403, "Sign-in failed"),
            SsoProviderDown => row("sso_provider_down", 503, "Sign-in failed"),
            SsoProviderBroken => row("sso_provider_broken", 502, "Sign-in failed"),
            SsoBadState => row("sso_bad_state", 400, "Sign-in failed"),
            SsoFailed => row("sso_failed", 401, "Sign-in failed"),
            SsoRefused => row("sso_refused", 403, "Sign-in failed"),
            Unavailable => row_with_page(
                "unavailable",
                503,
                "Unavailable",
                "The store is not answering right now. Try again in a moment.",
            ),
            Internal => row_with_page(
                "internal",
                500,
                "Internal error",
                "Something went wrong on our side. It has been logged; try again in a moment.",
            ),
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.row().code
    }

    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.row().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The heading of the error page.
    pub const fn heading(self) -> &'static str {
        self.row().heading
    }

    /// What the error page says, when it should not show the detail.
    pub const fn page_message(self) -> Option<&'static str> {
        self.row().page_message
    }

    /// True for the sign-in failures, whose page links back to the login page.
    pub fn is_sign_in(self) -> bool {
        self.heading() == "Sign-in failed"
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    fn code(&self) -> ErrorCode {
        match self {
            SignInError::NotConfigured => ErrorCode::NotFound,
            SignInError::ProviderDown => ErrorCode::SsoProviderDown,
            SignInError::ProviderBroken(_) => ErrorCode::SsoProviderBroken,
            SignInError::BadState => ErrorCode::SsoBadState,
            SignInError::ProviderRefused(_) | SignInError::BadToken(_) => ErrorCode::SsoFailed,
            SignInError::Refused(_) => ErrorCode::SsoRefused,
            SignInError::LocalLoginOff => ErrorCode::LocalLoginDisabled,
        }
    }
}

/// What a recent duplicate is: the job or the run that holds the same
/// request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    Job(JobId),
    Run(crate::domain::run::RunId),
    /// A request of the same intent awaiting approval.
    Approval(crate::domain::approval::ApprovalId),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Job(id) => write!(f, "job {id}"),
            Holder::Run(id) => write!(f, "run {id}"),
            Holder::Approval(id) => write!(f, "approval {id}, awaiting,"),
        }
    }
}

/// The most invalid CIDs an `invalid_cids` error lists (a 50,000-line file
/// of bad values stays readable); `invalid_count` gives the total.
pub const MAX_LISTED_INVALID: usize = 1000;

impl Error {
    /// `invalid_cids` for these values, listing at most `MAX_LISTED_INVALID`.
    pub fn invalid_cids(mut invalid: Vec<InvalidCid>) -> Self {
        let count = invalid.len();
        invalid.truncate(MAX_LISTED_INVALID);
        Error::InvalidCids { invalid, count }
    }
}

/// `Result` with our error as the default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication is required: log in, or send a valid API token")]
    Unauthenticated,
    /// A bearer token was sent but names no active token: the same
    /// `unauthenticated` refusal, saying why, so a script's author looks at
    /// the token rather than at the login.
    #[error(
        "the API token is not valid: it is unknown, revoked or expired, or its user is disabled"
    )]
    InvalidToken,
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
    #[error("the same action on the same customer IDs ran recently ({holder} by {user}); send confirm_duplicate to run it again")]
    RecentDuplicate {
        holder: Holder,
        user: String,
        created_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("the run is {status}: it cannot be {command}")]
    InvalidState {
        status: crate::domain::run::RunStatus,
        command: &'static str,
    },
    #[error("only another person may approve or reject this request: you asked for it")]
    SelfApproval,
    #[error("this approval is already {status}: it can no longer be decided")]
    AlreadyDecided {
        status: crate::domain::approval::ApprovalStatus,
    },
    #[error("{0}")]
    CommentRequired(String),
    #[error("customer IDs {} are in a job still running (job {job_id})", .busy.join(", "))]
    CidsBusy {
        job_id: JobId,
        busy: Vec<String>,
        /// Who started the job holding them, and when: a page names them
        /// to someone who may not open that job.
        user: String,
        created_at: chrono::DateTime<chrono::Utc>,
    },
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
    /// `invalid` lists at most `MAX_LISTED_INVALID` values; `count` is their total.
    #[error("{count} invalid customer {}: {}", if *.count == 1 { "ID" } else { "IDs" }, summarize_invalid(.invalid, *.count))]
    InvalidCids {
        invalid: Vec<InvalidCid>,
        count: usize,
    },
    #[error("cluster {0:?} needs a token")]
    TokenRequired(String),
    #[error("{0}")]
    ReasonRequired(String),
    #[error(
        "no customer of this job failed (or is unknown, when asked): there is nothing to retry"
    )]
    NothingToRetry,
    /// A refusal that is only its code and a sentence (administrative input
    /// and rules: usernames, passwords, roles, token names, self-lockout, a
    /// taken username).
    #[error("{detail}")]
    Rejected { code: ErrorCode, detail: String },
    /// A single sign-on login that ended without a session.
    #[error("{0}")]
    SignIn(#[from] SignInError),
    #[error("the store is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// The first few invalid values for the error's sentence; the problem's
/// `invalid` member lists them all (up to `MAX_LISTED_INVALID`).
fn summarize_invalid(invalid: &[InvalidCid], count: usize) -> String {
    const IN_SENTENCE: usize = 10;
    let mut text = invalid
        .iter()
        .take(IN_SENTENCE)
        .map(|i| format!("{:?} ({})", i.value, i.reason))
        .collect::<Vec<_>>()
        .join(", ");
    if count > IN_SENTENCE {
        text.push_str(&format!(" and {} more", count - IN_SENTENCE));
    }
    text
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
    /// A refusal with its code and a sentence for the person.
    pub fn rejected(code: ErrorCode, detail: impl Into<String>) -> Self {
        Error::Rejected {
            code,
            detail: detail.into(),
        }
    }

    /// The error's code: its row in the table.
    pub fn code(&self) -> ErrorCode {
        use Error::*;
        match self {
            Unauthenticated | InvalidToken => ErrorCode::Unauthenticated,
            InvalidCredentials => ErrorCode::InvalidCredentials,
            Forbidden(_) => ErrorCode::Forbidden,
            CsrfFailed => ErrorCode::CsrfFailed,
            NotFound => ErrorCode::NotFound,
            RateLimited { .. } => ErrorCode::RateLimited,
            InvalidBody(_) => ErrorCode::InvalidBody,
            InvalidQuery(_) => ErrorCode::InvalidQuery,
            PayloadTooLarge => ErrorCode::PayloadTooLarge,
            MissingIdempotencyKey => ErrorCode::MissingIdempotencyKey,
            InvalidIdempotencyKey(_) => ErrorCode::InvalidIdempotencyKey,
            RequestInProgress { .. } => ErrorCode::RequestInProgress,
            RecentDuplicate { .. } => ErrorCode::RecentDuplicate,
            CidsBusy { .. } => ErrorCode::CidsBusy,
            IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            UnknownCluster(_) => ErrorCode::UnknownCluster,
            UnknownAction(_) => ErrorCode::UnknownAction,
            NoCids => ErrorCode::NoCids,
            TooManyCids { .. } => ErrorCode::TooManyCids,
            InvalidCids { .. } => ErrorCode::InvalidCids,
            TokenRequired(_) => ErrorCode::TokenRequired,
            ReasonRequired(_) => ErrorCode::ReasonRequired,
            NothingToRetry => ErrorCode::NothingToRetry,
            InvalidState { .. } => ErrorCode::InvalidState,
            SelfApproval => ErrorCode::SelfApproval,
            AlreadyDecided { .. } => ErrorCode::AlreadyDecided,
            CommentRequired(_) => ErrorCode::CommentRequired,
            Rejected { code, .. } => *code,
            SignIn(e) => e.code(),
            Unavailable => ErrorCode::Unavailable,
            Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// The problem document (RFC 9457) describing this error.
    pub fn problem(&self) -> Value {
        let status = self.status();
        let mut body = Map::new();
        body.insert("type".into(), json!("about:blank"));
        body.insert("title".into(), json!(title(status)));
        body.insert("status".into(), json!(status.as_u16()));
        body.insert("detail".into(), json!(self.to_string()));
        body.insert("code".into(), json!(self.code().as_str()));
        match self {
            Error::RequestInProgress { job_id } => {
                body.insert("job_id".into(), json!(job_id));
            }
            Error::RecentDuplicate {
                holder,
                user,
                created_at,
            } => {
                match holder {
                    Holder::Job(id) => {
                        body.insert("job_id".into(), json!(id));
                    }
                    Holder::Run(id) => {
                        body.insert("run_id".into(), json!(id));
                    }
                    Holder::Approval(id) => {
                        // Nothing ran yet: the request waits for a second person.
                        body.insert("approval_id".into(), json!(id));
                        body.insert("job_id".into(), Value::Null);
                        body.insert("run_id".into(), Value::Null);
                    }
                }
                body.insert("user".into(), json!(user));
                body.insert(
                    "created_at".into(),
                    json!(crate::domain::job::format_time(created_at)),
                );
            }
            Error::CidsBusy {
                job_id,
                busy,
                user,
                created_at,
            } => {
                body.insert("job_id".into(), json!(job_id));
                body.insert("busy".into(), json!(busy));
                body.insert("user".into(), json!(user));
                body.insert(
                    "created_at".into(),
                    json!(crate::domain::job::format_time(created_at)),
                );
            }
            Error::InvalidCids { invalid, count } => {
                body.insert("invalid".into(), json!(invalid));
                body.insert("invalid_count".into(), json!(count));
            }
            Error::TooManyCids { max, .. } => {
                body.insert("max".into(), json!(max));
            }
            Error::RateLimited { retry_after_s } => {
                body.insert("retry_after_s".into(), json!(retry_after_s));
            }
            Error::InvalidState { status, .. } => {
                body.insert("run_status".into(), json!(status.as_str()));
            }
            Error::AlreadyDecided { status } => {
                // `status` is the HTTP status's member.
                body.insert("approval_status".into(), json!(status.as_str()));
            }
            _ => {}
        }
        Value::Object(body)
    }

    /// What an error page says about this error.
    pub fn page_message(&self) -> String {
        match self.code().page_message() {
            Some(message) => message.to_owned(),
            None => self.to_string(),
        }
    }

    /// The `Retry-After` seconds of a throttled request.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after_s } => Some(*retry_after_s),
            _ => None,
        }
    }

    /// The internal failure to log, kept out of the answer.
    pub fn internal_report(&self) -> Option<InternalErrorReport> {
        match self {
            Error::Internal(e) => Some(InternalErrorReport(format!("{e:#}"))),
            _ => None,
        }
    }

    /// Puts what every error answer carries besides its body: `Retry-After`
    /// for a throttled request, the internal report for the logging layer.
    pub fn decorate(&self, response: &mut Response) {
        if let Some(seconds) = self.retry_after() {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if let Some(report) = self.internal_report() {
            response.extensions_mut().insert(report);
        }
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
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        self.decorate(&mut response);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_name_and_a_client_or_server_error_status() {
        let mut names = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(names.insert(code.as_str()), "{code} appears twice");
            let status = code.status().as_u16();
            assert!((400..600).contains(&status), "{code}: {status}");
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code} is not snake_case"
            );
        }
    }

    #[test]
    fn the_problem_document_carries_the_code_and_status_of_the_table() {
        let e = Error::rejected(ErrorCode::UserExists, "user \"olga\" already exists");
        let p = e.problem();
        assert_eq!(p["code"], "user_exists");
        assert_eq!(p["status"], 409);
        assert_eq!(p["title"], "Conflict");
        assert_eq!(p["detail"], "user \"olga\" already exists");
    }
}
