//! `/`: Customer Set. The form is rendered from the catalog on the server;
//! `static/customer-set.js` counts the CIDs live, asks for confirmation and
//! sends the one request per confirmed click (SPEC §5): a job, or beyond the
//! action's `max_cids` a run of batches (SPEC §13).

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::routing::get;
use axum::Router;

use super::common::{render, thousands, Chrome, PageResult, PageUser};
use super::jobs::JobRowView;
use crate::domain::cid::DEFAULT_CID_PATTERN;
// The page offers what the API's catalog shows, so it renders the same views.
use crate::http::api::catalog::{ActionView, ClusterView};
use crate::http::AppState;
use crate::service::jobs::{JobFilterParams, PageParams};

/// How much longer than the server's upstream timeout the page waits for an
/// answer: the server always answers first, unless the network is lost.
pub const CLIENT_TIMEOUT_MARGIN: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(show))
}

#[derive(Template)]
#[template(path = "customer_set.html")]
struct CustomerSetPage {
    chrome: Chrome,
    can_execute: bool,
    role: &'static str,
    /// Who is looking, and whether they may open every job (admins) or
    /// only their own (operators): the page links another user's job only
    /// for someone who may open it, and otherwise names its user and time.
    username: String,
    sees_all_jobs: bool,
    clusters: Vec<ClusterView>,
    actions: Vec<ActionView>,
    cid_pattern: String,
    default_pattern: bool,
    upstream_timeout_ms: u128,
    client_timeout_ms: u128,
    first_needs_token: bool,
    /// The most CIDs one run takes; beyond the action's `max_cids` the
    /// page sends a run.
    max_run_cids: usize,
    max_run_cids_text: String,
    /// For someone who cannot run actions (an auditor), `/` is an overview:
    /// the latest jobs and where to go next.
    latest: Vec<JobRowView>,
}

/// How many of the latest jobs the overview lists.
const OVERVIEW_JOBS: &str = "10";

/// A cluster as its option reads: its label, and its name too unless the
/// label already says it ("Sandbox (simulated)", not "… (sandbox)" again).
pub fn cluster_option_text(label: &str, name: &str) -> String {
    if label.to_lowercase().contains(&name.to_lowercase()) {
        label.to_owned()
    } else {
        format!("{label} ({name})")
    }
}

#[tracing::instrument(skip_all, fields(user = %page_user.user.username))]
async fn show(State(state): State<AppState>, page_user: PageUser) -> PageResult {
    let execution = state.service.execution();
    let clusters: Vec<ClusterView> = execution.clusters().iter().map(ClusterView::from).collect();
    let actions = execution.catalog().iter().map(ActionView::from).collect();
    let cid_pattern = execution.cid_policy().pattern().to_owned();
    let upstream = execution.upstream_timeout();
    let can_execute = page_user.user.role.can_execute();
    let latest = if can_execute {
        Vec::new()
    } else {
        let page = PageParams {
            limit: Some(OVERVIEW_JOBS.to_owned()),
            cursor: None,
        };
        let list = state
            .service
            .list_jobs(&page_user.actor(), &JobFilterParams::default(), &page)
            .await?;
        list.jobs.iter().map(JobRowView::new).collect()
    };
    render(&CustomerSetPage {
        chrome: page_user.chrome("set"),
        can_execute,
        latest,
        role: page_user.user.role.as_str(),
        username: page_user.user.username.clone(),
        sees_all_jobs: page_user.user.role.sees_all_jobs(),
        first_needs_token: clusters.first().is_some_and(|c| c.needs_token),
        clusters,
        actions,
        default_pattern: cid_pattern == DEFAULT_CID_PATTERN,
        cid_pattern,
        upstream_timeout_ms: upstream.as_millis(),
        client_timeout_ms: (upstream + CLIENT_TIMEOUT_MARGIN).as_millis(),
        max_run_cids: state.service.runs().max_run_cids(),
        max_run_cids_text: thousands(state.service.runs().max_run_cids() as i64),
    })
}
