//! `/audit/duplicates` (admin, auditor): the duplicate groups of the audit
//! with links to every job, the window as a filter, and for admins a "mark"
//! button that does what `tms-dashboard audit dedupe --apply` does.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::common::{enc, render, see_other, show_time, Chrome, FormBody, PageResult, PageUser};
use crate::domain::user::Role;
use crate::http::extract::QueryParams;
use crate::http::AppState;
use crate::service::audit::DuplicatesQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/duplicates", get(show))
        .route("/audit/duplicates/mark", post(mark))
}

/// One member of a group as the page lists it.
pub struct MemberView {
    pub id: String,
    pub created: String,
    /// Set when the job is already marked as a duplicate.
    pub marked: bool,
    pub first: bool,
}

/// One group of duplicates.
pub struct GroupView {
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub cid_count: i64,
    pub first_at: String,
    pub span_ms: i64,
    pub marked: bool,
    pub members: Vec<MemberView>,
}

#[derive(Template)]
#[template(path = "duplicates.html")]
struct DuplicatesPage {
    chrome: Chrome,
    window_s: String,
    include_marked: bool,
    groups: Vec<GroupView>,
    unmarked: usize,
    can_mark: bool,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    window_s: Option<String>,
    include_marked: Option<String>,
    marked: Option<String>,
}

#[tracing::instrument(skip_all, fields(user = %viewer.user.username))]
async fn show(
    State(state): State<AppState>,
    viewer: PageUser,
    QueryParams(q): QueryParams<PageQuery>,
) -> PageResult {
    let actor = viewer.actor();
    actor.require_sees_all()?;
    let query = DuplicatesQuery {
        window_s: q.window_s.clone(),
        include_marked: q.include_marked.clone(),
        ..DuplicatesQuery::default()
    };
    let params = query.parse()?;
    let report = state.service.duplicate_report(&actor, &params).await?;
    let groups: Vec<GroupView> = report
        .groups
        .iter()
        .map(|g| GroupView {
            user: g.user.clone(),
            cluster: g.cluster.clone(),
            action: g.action.clone(),
            cid_count: g.cid_count,
            first_at: show_time(&g.first_at),
            span_ms: (g.last_at - g.first_at).num_milliseconds(),
            marked: g.marked,
            members: g
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| MemberView {
                    id: m.job_id.to_string(),
                    created: show_time(&m.created_at),
                    marked: m.duplicate_of.is_some(),
                    first: i == 0,
                })
                .collect(),
        })
        .collect();
    let unmarked = groups.iter().filter(|g| !g.marked).count();
    let notice = q.marked.as_deref().map(|n| {
        format!(
            "Marked {n} job(s) as duplicates of the first job of their group. Nothing was deleted."
        )
    });
    render(&DuplicatesPage {
        chrome: viewer.chrome("duplicates"),
        window_s: params.window.to_string().trim_end_matches('s').to_owned(),
        include_marked: params.include_marked,
        groups,
        unmarked,
        can_mark: viewer.user.role == Role::Admin,
        notice,
    })
}

#[derive(Deserialize)]
struct MarkForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    window_s: String,
}

/// Marks the later jobs of every group, as `audit dedupe --apply` does.
#[tracing::instrument(skip_all, fields(by = %admin.user.username))]
async fn mark(
    State(state): State<AppState>,
    admin: PageUser,
    FormBody(f): FormBody<MarkForm>,
) -> PageResult<Response> {
    admin.check_csrf(&f.csrf_token)?;
    let query = DuplicatesQuery {
        window_s: Some(f.window_s.clone()),
        ..DuplicatesQuery::default()
    };
    let params = query.parse()?;
    let summary = state
        .service
        .mark_duplicates(&admin.actor(), &params)
        .await?;
    Ok(see_other(&format!(
        "/audit/duplicates?window_s={}&include_marked=true&marked={}",
        enc(&f.window_s),
        summary.marked
    )))
}
