//! Four-eyes approvals through the API (SPEC §14): list and read them, and
//! approve, reject or cancel one. The rules are the service's
//! (`service::approvals`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::approval::Approval;
use crate::error::Result;
use crate::http::api::actions::answer;
use crate::http::auth::CurrentUser;
use crate::http::extract::{parse_json_body, QueryParams};
use crate::http::openapi::Problem;
use crate::http::schema::ApprovalSchema;
use crate::http::AppState;
use crate::service::approvals::{ApprovalFilterParams, DecisionRequest};
use crate::service::jobs::PageParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/approvals", get(list))
        .route("/api/v1/approvals/{approval_id}", get(show))
        .route("/api/v1/approvals/{approval_id}/approve", post(approve))
        .route("/api/v1/approvals/{approval_id}/reject", post(reject))
        .route("/api/v1/approvals/{approval_id}/cancel", post(cancel))
}

/// `{"approval": Approval}`.
#[derive(Serialize, ToSchema)]
pub struct ApprovalEnvelope {
    #[schema(value_type = ApprovalSchema)]
    pub approval: Approval,
}

/// A page of approvals, newest first.
#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    #[schema(value_type = Vec<ApprovalSchema>)]
    pub approvals: Vec<Approval>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The listing's filter and page.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ApprovalListQuery {
    #[serde(flatten)]
    pub filters: ApprovalFilterParams,
    #[serde(flatten)]
    pub page: PageParams,
}

/// A decision's body: `{"comment"}`, or nothing at all (no comment).
fn decision_body(bytes: &Bytes) -> Result<DecisionRequest> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecisionRequest::default());
    }
    parse_json_body(bytes)
}

/// Requests for approval, newest first, by status; every signed-in role sees them.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals",
    params(ApprovalFilterParams, PageParams),
    responses(
        (status = 200, body = ApprovalList),
        (status = 400, description = "invalid_query", body = Problem),
    ))]
pub async fn list(
    State(state): State<AppState>,
    _current: CurrentUser,
    QueryParams(query): QueryParams<ApprovalListQuery>,
) -> Result<Json<ApprovalList>> {
    let page = state
        .service
        .approvals()
        .list(&query.filters, &query.page)
        .await?;
    Ok(Json(ApprovalList {
        approvals: page.approvals,
        next_cursor: page.next_cursor,
    }))
}

/// One request for approval, with every CID it would send.
#[utoipa::path(get, path = "/api/v1/approvals/{approval_id}", tag = "approvals",
    params(("approval_id" = String, Path)),
    responses(
        (status = 200, body = ApprovalEnvelope),
        (status = 404, description = "not_found", body = Problem),
    ))]
pub async fn show(
    State(state): State<AppState>,
    _current: CurrentUser,
    Path(approval_id): Path<String>,
) -> Result<Json<ApprovalEnvelope>> {
    let approval = state.service.approvals().get(&approval_id).await?;
    Ok(Json(ApprovalEnvelope { approval }))
}

/// Approves the request and executes it once, as its requester, with the
/// approver as `approved_by`.
#[utoipa::path(post, path = "/api/v1/approvals/{approval_id}/approve", tag = "approvals",
    request_body(content = crate::http::schema::DecisionRequestSchema, description = "Optional"),
    params(("approval_id" = String, Path)),
    responses(
        (status = 201, description = "A job, executed; the cluster said success", body = crate::http::api::jobs::JobEnvelope),
        (status = 202, description = "A run, queued (or scheduled)", body = crate::http::api::runs::RunEnvelope),
        (status = 207, description = "A job, executed; applied to some customers and not others", body = crate::http::api::jobs::JobEnvelope),
        (status = 502, description = "A job, executed; the cluster failed or the outcome is unknown", body = crate::http::api::jobs::JobEnvelope),
        (status = 504, description = "A job, executed; no answer in time", body = crate::http::api::jobs::JobEnvelope),
        (status = 400, description = "invalid_body", body = Problem),
        (status = 403, description = "self_approval (the requester), forbidden (an auditor), csrf_failed", body = Problem),
        (status = 404, description = "not_found", body = Problem),
        (status = 409, description = "already_decided (with approval_status), cids_busy (the approval keeps waiting; with job_id, busy, and user and created_at of the job holding them)", body = Problem),
        (status = 422, description = "comment_required (a comment over 500 characters), unknown_cluster, unknown_action", body = Problem),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(approval_id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let executed = state
        .service
        .approvals()
        .approve(&current.user, &approval_id, decision_body(&body))
        .await?;
    answer(executed)
}

/// Rejects the request; a comment (3 to 500 characters) says why.
#[utoipa::path(post, path = "/api/v1/approvals/{approval_id}/reject", tag = "approvals",
    request_body = crate::http::schema::DecisionRequestSchema,
    params(("approval_id" = String, Path)),
    responses(
        (status = 200, body = ApprovalEnvelope),
        (status = 400, description = "invalid_body", body = Problem),
        (status = 403, description = "self_approval (the requester), forbidden (an auditor), csrf_failed", body = Problem),
        (status = 404, description = "not_found", body = Problem),
        (status = 409, description = "already_decided (with approval_status)", body = Problem),
        (status = 422, description = "comment_required", body = Problem),
    ))]
pub async fn reject(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(approval_id): Path<String>,
    body: Bytes,
) -> Result<Json<ApprovalEnvelope>> {
    let approval = state
        .service
        .approvals()
        .reject(&current.user, &approval_id, decision_body(&body))
        .await?;
    Ok(Json(ApprovalEnvelope { approval }))
}

/// Withdraws the request: its requester alone.
#[utoipa::path(post, path = "/api/v1/approvals/{approval_id}/cancel", tag = "approvals",
    request_body(content = crate::http::schema::DecisionRequestSchema, description = "Optional"),
    params(("approval_id" = String, Path)),
    responses(
        (status = 200, body = ApprovalEnvelope),
        (status = 400, description = "invalid_body", body = Problem),
        (status = 403, description = "forbidden (not the requester), csrf_failed", body = Problem),
        (status = 404, description = "not_found", body = Problem),
        (status = 409, description = "already_decided (with approval_status)", body = Problem),
        (status = 422, description = "comment_required (a comment over 500 characters)", body = Problem),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(approval_id): Path<String>,
    body: Bytes,
) -> Result<Json<ApprovalEnvelope>> {
    let approval = state
        .service
        .approvals()
        .cancel(&current.user, &approval_id, decision_body(&body))
        .await?;
    Ok(Json(ApprovalEnvelope { approval }))
}
