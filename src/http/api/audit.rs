//! The duplicate audit through the API, for admins and auditors.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::audit::duplicates::{find_duplicates, DuplicateParams, DuplicateReport, Window};
use crate::error::{Error, Result};
use crate::http::auth::CurrentUser;
use crate::http::extract::QueryParams;
use crate::http::openapi::Problem;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit/duplicates", get(duplicates))
}

/// The query parameters of the duplicate report, as sent.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DuplicatesQuery {
    /// Seconds between two jobs of a group, fractions allowed; default 2.
    #[param(value_type = Option<f64>, minimum = 0, maximum = 86400, example = 2)]
    pub window_s: Option<String>,
    /// RFC 3339, inclusive; all history when absent.
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// `true`: also the groups already marked by `audit dedupe`.
    #[param(value_type = Option<bool>)]
    pub include_marked: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_time(name: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>> {
    present(v)
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Error::InvalidQuery(format!("{name}: {s:?} is not an RFC 3339 time")))
        })
        .transpose()
}

impl DuplicatesQuery {
    pub fn parse(&self) -> Result<DuplicateParams> {
        let window = match present(&self.window_s) {
            None => Window::DEFAULT,
            Some(s) => Window::from_secs_str(s)
                .map_err(|why| Error::InvalidQuery(format!("window_s: {why}")))?,
        };
        let include_marked = match present(&self.include_marked) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(other) => {
                return Err(Error::InvalidQuery(format!(
                    "include_marked: {other:?} is not true or false"
                )))
            }
        };
        Ok(DuplicateParams {
            window,
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
            include_marked,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/audit/duplicates", tag = "audit", params(DuplicatesQuery),
    responses(
        (status = 200, description = "groups of jobs that look like one click recorded several times", body = DuplicateReport),
        (status = 400, description = "invalid_query", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "only admins and auditors see the duplicate audit", body = Problem),
    ))]
pub async fn duplicates(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<DuplicatesQuery>,
) -> Result<Json<DuplicateReport>> {
    current.require(|role| role.sees_all_jobs())?;
    let params = query.parse()?;
    Ok(Json(find_duplicates(&state.db, &params).await?))
}
