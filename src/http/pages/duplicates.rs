//! `/audit/duplicates` (admin, auditor): the duplicate groups of the audit
//! with links to every job, the window as a filter, the jobs run again on
//! purpose (`confirm_duplicate`) left out unless asked for, and for admins a
//! "Mark…" link on each group that asks first, then marks that group alone
//! (what `tms-dashboard audit dedupe --apply` does for every group).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::common::{
    enc, render, see_other, show_duration, show_time, Chrome, FormBody, PageResult, PageUser,
};
use crate::domain::job::JobId;
use crate::domain::user::Role;
use crate::error::Error;
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
    /// The group's first job: the one the others are marked against.
    pub first_id: String,
    pub user: String,
    pub cluster: String,
    pub action: String,
    pub cid_count: i64,
    pub first_at: String,
    /// From the first job to the last, as a person reads it (`1 min 42 s`).
    pub span: String,
    pub marked: bool,
    /// Later jobs not marked yet.
    pub to_mark: usize,
    pub members: Vec<MemberView>,
}

#[derive(Template)]
#[template(path = "duplicates.html")]
struct DuplicatesPage {
    chrome: Chrome,
    window_s: String,
    include_marked: bool,
    include_confirmed: bool,
    groups: Vec<GroupView>,
    unmarked: usize,
    can_mark: bool,
    notice: Option<String>,
    /// The group an admin asked to mark, waiting for the confirmation.
    confirming: Option<GroupView>,
    /// This page's own query, for the links back to it.
    here: String,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    window_s: Option<String>,
    include_marked: Option<String>,
    include_confirmed: Option<String>,
    marked: Option<String>,
    /// The first job of the group to confirm marking.
    confirm: Option<String>,
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
        include_confirmed: q.include_confirmed.clone(),
        ..DuplicatesQuery::default()
    };
    let params = query.parse()?;
    let include_confirmed = query.include_confirmed()?;
    let report = state
        .service
        .duplicate_report(&actor, &params, include_confirmed)
        .await?;
    let mut groups: Vec<GroupView> = report
        .groups
        .iter()
        .map(|g| GroupView {
            first_id: g.members[0].job_id.to_string(),
            user: g.user.clone(),
            cluster: g.cluster.clone(),
            action: g.action.clone(),
            cid_count: g.cid_count,
            first_at: show_time(&g.first_at),
            span: show_duration(Some((g.last_at - g.first_at).num_milliseconds())),
            marked: g.marked,
            to_mark: g.members[1..]
                .iter()
                .filter(|m| m.duplicate_of.is_none())
                .count(),
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
    let notice = q.marked.as_deref().map(|n| match n {
        "1" => "Marked 1 job as a duplicate of the first job of its group. Nothing was deleted."
            .to_owned(),
        n => format!(
            "Marked {n} jobs as duplicates of the first job of their group. Nothing was deleted."
        ),
    });
    let can_mark = viewer.user.role == Role::Admin;
    let confirming = match q.confirm.as_deref() {
        Some(first) if can_mark => {
            let at = groups
                .iter()
                .position(|g| g.first_id == first && g.to_mark > 0);
            at.map(|i| groups.remove(i))
        }
        _ => None,
    };
    let window_s = params.window.to_string();
    let window_s = match window_s.strip_suffix("ms") {
        Some(ms) => format!("{}", ms.parse::<f64>().unwrap_or(0.0) / 1000.0),
        None => window_s.trim_end_matches('s').to_owned(),
    };
    let here = format!(
        "/audit/duplicates?window_s={}{}{}",
        enc(&window_s),
        if params.include_marked {
            "&include_marked=true"
        } else {
            ""
        },
        if include_confirmed {
            "&include_confirmed=true"
        } else {
            ""
        },
    );
    render(&DuplicatesPage {
        chrome: viewer.chrome("duplicates"),
        window_s,
        include_marked: params.include_marked,
        include_confirmed,
        groups,
        unmarked,
        can_mark,
        notice,
        confirming,
        here,
    })
}

#[derive(Deserialize)]
struct MarkForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    window_s: String,
    #[serde(default)]
    include_confirmed: String,
    /// The group's first job.
    #[serde(default)]
    first: String,
}

/// Marks the later jobs of one group, after the page's confirmation.
#[tracing::instrument(skip_all, fields(by = %admin.user.username))]
async fn mark(
    State(state): State<AppState>,
    admin: PageUser,
    FormBody(f): FormBody<MarkForm>,
) -> PageResult<Response> {
    admin.check_csrf(&f.csrf_token)?;
    let query = DuplicatesQuery {
        window_s: Some(f.window_s.clone()),
        include_confirmed: Some(f.include_confirmed.clone()),
        ..DuplicatesQuery::default()
    };
    let params = query.parse()?;
    let include_confirmed = query.include_confirmed()?;
    let first = JobId::parse(f.first.trim()).ok_or(Error::NotFound)?;
    let summary = state
        .service
        .mark_duplicate_group(&admin.actor(), &params, include_confirmed, first)
        .await?;
    Ok(see_other(&format!(
        "/audit/duplicates?window_s={}&include_marked=true{}&marked={}",
        enc(&f.window_s),
        if include_confirmed {
            "&include_confirmed=true"
        } else {
            ""
        },
        summary.marked
    )))
}
