//! `/approvals` and `/approvals/{id}`: what waits for a second person, and
//! one request in full (the requester, the cluster, the action, the reason
//! and every CID), with the approve and reject form (`#approve`, `#reject`,
//! `#approval-comment`) for another admin or operator, and `#cancel-approval`
//! for the requester. Decisions follow Post/Redirect/Get; a refusal shows
//! the page again with its reason. The rules are the service's.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::common::{
    render, render_with, see_other, show_time, thousands, with_limit, Chrome, FormBody, PageError,
    PageResult, PageUser, Paging,
};
use super::runs::short_id;
use crate::domain::approval::{may_decide, Approval, ApprovalStatus, Decision};
use crate::domain::job::format_time;
use crate::error::Error;
use crate::http::extract::QueryParams;
use crate::http::AppState;
use crate::service::approvals::{ApprovalFilterParams, DecisionRequest};
use crate::service::jobs::PageParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/approvals", get(list))
        .route("/approvals/{approval_id}", get(show))
        .route("/approvals/{approval_id}/decision", post(decision))
        .route("/approvals/{approval_id}/cancel", post(cancel))
}

/// The list's query: the status (awaiting unless asked), the page size,
/// the cursor and the cursors of the pages before it.
#[derive(Clone, Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    prev: Option<String>,
}

fn value(v: &Option<String>) -> String {
    v.as_deref().map(str::trim).unwrap_or_default().to_owned()
}

/// One row of the list.
struct ApprovalRow {
    id: String,
    short_id: String,
    created: String,
    created_iso: String,
    expires: String,
    requested_by: String,
    action: String,
    cluster: String,
    kind: &'static str,
    customers: String,
    status: &'static str,
    reason: Option<String>,
}

impl ApprovalRow {
    fn new(a: &Approval) -> Self {
        ApprovalRow {
            id: a.approval_id.to_string(),
            short_id: short_id(&a.approval_id.as_uuid()),
            created: show_time(&a.created_at),
            created_iso: format_time(&a.created_at),
            expires: show_time(&a.expires_at),
            requested_by: a.requested_by.clone(),
            action: a.action.clone(),
            cluster: a.cluster.clone(),
            kind: a.kind.as_str(),
            customers: thousands(a.cid_count),
            status: a.status.as_str(),
            reason: a.reason.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ListPage {
    chrome: Chrome,
    status: String,
    statuses: Vec<&'static str>,
    limit: String,
    rows: Vec<ApprovalRow>,
    page_number: usize,
    next_url: Option<String>,
    prev_url: Option<String>,
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn list(
    State(state): State<AppState>,
    page_user: PageUser,
    QueryParams(q): QueryParams<ListQuery>,
) -> PageResult {
    // What awaits is what a person comes here for; `status=all` shows every one.
    let status = match value(&q.status).as_str() {
        "" => "awaiting".to_owned(),
        other => other.to_owned(),
    };
    let filter = ApprovalFilterParams {
        status: (status != "all").then(|| status.clone()),
    };
    let limit = value(&q.limit);
    let cursor = value(&q.cursor);
    let prev: Vec<String> = value(&q.prev)
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let page = PageParams {
        limit: Some(limit.clone()),
        cursor: Some(cursor.clone()),
    };
    let found = state.service.approvals().list(&filter, &page).await?;
    let query = with_limit(format!("status={}", super::common::enc(&status)), &limit);
    let Paging {
        page_number,
        next_url,
        prev_url,
    } = Paging::new(
        "/approvals",
        &query,
        &cursor,
        &prev,
        found.next_cursor.as_deref(),
    );
    let mut statuses = vec!["all"];
    statuses.extend(ApprovalStatus::ALL.iter().map(|s| s.as_str()));
    render(&ListPage {
        chrome: page_user.chrome("approvals"),
        status,
        statuses,
        limit,
        rows: found.approvals.iter().map(ApprovalRow::new).collect(),
        page_number,
        next_url,
        prev_url,
    })
}

/// What the viewer may do with the approval shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offer {
    /// Approve or reject (another admin or operator).
    Decide,
    /// Cancel (the requester).
    Cancel,
    /// Nothing: it no longer waits, or the viewer may not decide (an auditor).
    Nothing,
}

#[derive(Template)]
#[template(path = "approval.html")]
struct DetailPage {
    chrome: Chrome,
    a: Approval,
    id: String,
    kind: &'static str,
    status: &'static str,
    cids: String,
    cid_count: String,
    created: String,
    created_iso: String,
    expires: String,
    expires_iso: String,
    decided_at: Option<String>,
    run_at: Option<String>,
    offer: Offer,
    /// The job or run it executed, linked when the viewer may open it.
    result_link: Option<(String, String)>,
    result_text: Option<String>,
    error: Option<String>,
    comment: String,
}

async fn detail(
    state: &AppState,
    page_user: &PageUser,
    approval_id: &str,
    status: StatusCode,
    error: Option<String>,
    comment: String,
) -> PageResult {
    let a = state.service.approvals().get(approval_id).await?;
    let user = &page_user.user;
    let open = a.is_open(chrono::Utc::now());
    let offer = if !open {
        Offer::Nothing
    } else if may_decide(user, &a.requested_by, Decision::Cancel).is_ok() {
        Offer::Cancel
    } else if may_decide(user, &a.requested_by, Decision::Approve).is_ok() {
        Offer::Decide
    } else {
        Offer::Nothing
    };
    // Operators open only their own jobs and runs: others get the name.
    let may_open = user.role.sees_all_jobs() || user.username == a.requested_by;
    let executed = match (a.job_id, a.run_id) {
        (Some(job), _) => Some(("job", format!("/jobs/{job}"), job.to_string())),
        (None, Some(run)) => Some(("run", format!("/runs/{run}"), run.to_string())),
        _ => None,
    };
    let (result_link, result_text) = match executed {
        Some((what, href, id)) if may_open => (Some((href, format!("{what} {id}"))), None),
        Some((what, _, id)) => (
            None,
            Some(format!("{what} {id}, run as {}", a.requested_by)),
        ),
        None => (None, None),
    };
    render_with(
        status,
        &DetailPage {
            chrome: page_user.chrome("approvals"),
            id: a.approval_id.to_string(),
            kind: a.kind.as_str(),
            status: a.status.as_str(),
            cids: a.cids.join("\n"),
            cid_count: thousands(a.cid_count),
            created: show_time(&a.created_at),
            created_iso: format_time(&a.created_at),
            expires: show_time(&a.expires_at),
            expires_iso: format_time(&a.expires_at),
            decided_at: a.decided_at.as_ref().map(show_time),
            run_at: a.run_at.as_ref().map(show_time),
            offer,
            result_link,
            result_text,
            error,
            comment,
            a,
        },
    )
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn show(
    State(state): State<AppState>,
    page_user: PageUser,
    Path(approval_id): Path<String>,
) -> PageResult {
    detail(
        &state,
        &page_user,
        &approval_id,
        StatusCode::OK,
        None,
        String::new(),
    )
    .await
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

/// A refused decision, shown on the approval's page with its reason; other
/// errors are error pages.
async fn refused(
    state: &AppState,
    page_user: &PageUser,
    approval_id: &str,
    e: Error,
    comment: String,
) -> PageResult {
    match e {
        Error::NotFound | Error::Internal(_) | Error::Unavailable | Error::CsrfFailed => {
            Err(PageError(e))
        }
        other => {
            let message = format!("Not done: {}.", other.to_string().trim_end_matches('.'));
            detail(
                state,
                page_user,
                approval_id,
                other.status(),
                Some(message),
                comment,
            )
            .await
        }
    }
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn decision(
    State(state): State<AppState>,
    page_user: PageUser,
    Path(approval_id): Path<String>,
    FormBody(f): FormBody<DecisionForm>,
) -> PageResult {
    page_user.check_csrf(&f.csrf_token)?;
    let request = Ok(DecisionRequest {
        comment: Some(f.comment.clone()),
    });
    let approvals = state.service.approvals();
    let done = match f.decision.as_str() {
        // The job's own outcome is on its page; the approval links to it.
        "approve" => approvals
            .approve(&page_user.user, &approval_id, request)
            .await
            .map(|_| ()),
        "reject" => approvals
            .reject(&page_user.user, &approval_id, request)
            .await
            .map(|_| ()),
        other => Err(Error::InvalidBody(format!(
            "decision: {other:?} is not approve or reject"
        ))),
    };
    match done {
        Ok(()) => Ok(see_other(&format!("/approvals/{approval_id}"))),
        Err(e) => refused(&state, &page_user, &approval_id, e, f.comment).await,
    }
}

#[derive(Deserialize)]
struct CancelForm {
    #[serde(default)]
    csrf_token: String,
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn cancel(
    State(state): State<AppState>,
    page_user: PageUser,
    Path(approval_id): Path<String>,
    FormBody(f): FormBody<CancelForm>,
) -> PageResult {
    page_user.check_csrf(&f.csrf_token)?;
    let cancelled = state
        .service
        .approvals()
        .cancel(
            &page_user.user,
            &approval_id,
            Ok(DecisionRequest::default()),
        )
        .await;
    match cancelled {
        Ok(_) => Ok(see_other(&format!("/approvals/{approval_id}"))),
        Err(e) => refused(&state, &page_user, &approval_id, e, String::new()).await,
    }
}
