//! A jobs store in the shape the old Flask dashboard wrote, made by the
//! project itself, so the `import legacy` walkthrough and the duplicate
//! audit can be tried without anyone's real file. Its table is the one the
//! old system created (an integer `id`, a UUIDv4 `job_id`, `user_id` as a
//! username, `cids` as a JSON array, `status` always `completed`, times as
//! `YYYY-MM-DD HH:MM:SS` text), with the old bug in it: a click the browser
//! and the server both recorded, 0–2 s apart, and deliberate re-runs of the
//! same customers minutes later, which are not duplicates. Like the old
//! page, each `request_payload` carries the cluster token; the demo's are
//! made up, and show that the import redacts them.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

/// The old dashboard's table, as it created it.
const LEGACY_SCHEMA: [&str; 3] = [
    "CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    action_code INTEGER NOT NULL,
    action_name TEXT NOT NULL,
    cids TEXT NOT NULL,
    cid_count INTEGER NOT NULL DEFAULT 0,
    cluster_url TEXT,
    request_payload TEXT,
    response_summary TEXT,
    status TEXT NOT NULL DEFAULT 'completed',
    created_at TEXT NOT NULL
)",
    "CREATE INDEX idx_jobs_created_at ON jobs(created_at)",
    "CREATE INDEX idx_jobs_user_id ON jobs(user_id)",
];

const INSERT_ROW: &str =
    "INSERT INTO jobs (job_id, user_id, action_code, action_name, cids, cid_count, \
     cluster_url, request_payload, response_summary, status, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'completed', $10)";

/// The hosts the sample's old dashboard talked to, for a file made on its
/// own (`demo legacy PATH`): imported, each becomes a cluster named by its host.
pub const SAMPLE_CLUSTER_URLS: [&str; 3] = [
    "http://tms-eu-1.internal:8443",
    "http://tms-us-2.internal:8443",
    "http://tms-ap-1.internal:8443",
];

/// What the file holds: whose jobs, on which clusters, when.
#[derive(Clone, Debug)]
pub struct LegacyPlan {
    pub seed: u64,
    /// The first day's start, and the end (exclusive) of the history.
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub users: Vec<String>,
    /// The clusters' base URLs, as the old page sent them.
    pub cluster_urls: Vec<String>,
    /// The actions, `(code, name)`.
    pub actions: Vec<(i64, String)>,
}

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegacyFileSummary {
    pub rows: u64,
    /// Clicks the old system recorded twice: the duplicate audit's groups
    /// at its default 2 s window.
    pub doubled_clicks: u64,
    /// The same customers run again, in another order, minutes later: not
    /// duplicates.
    pub reruns: u64,
}

/// One row of the old table.
struct LegacyJob {
    job_id: uuid::Uuid,
    user: String,
    action: (i64, String),
    cids: Vec<String>,
    cluster_url: String,
    token: String,
    created_at: DateTime<Utc>,
}

/// Writes a new file at `path` (never over an existing one).
pub async fn write_legacy_file(
    path: &Path,
    plan: &LegacyPlan,
) -> anyhow::Result<LegacyFileSummary> {
    if path.exists() {
        anyhow::bail!("{} exists already: name a new file", path.display());
    }
    super::check_until(plan.until)?;
    if plan.users.is_empty() || plan.cluster_urls.is_empty() || plan.actions.is_empty() {
        anyhow::bail!("a legacy file needs users, clusters and actions");
    }
    let (jobs, summary) = legacy_jobs(plan);
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .disable_statement_logging();
    let mut conn = SqliteConnection::connect_with(&connect)
        .await
        .with_context(|| format!("Failed to create {}", path.display()))?;
    let mut tx = conn.begin().await?;
    for statement in LEGACY_SCHEMA {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    for job in &jobs {
        let cids = serde_json::to_string(&job.cids)?;
        let payload = serde_json::json!({
            "action": job.action.1,
            "cids": job.cids,
            "url": job.cluster_url,
            "token": job.token,
        });
        sqlx::query(INSERT_ROW)
            .bind(job.job_id.to_string())
            .bind(&job.user)
            .bind(job.action.0)
            .bind(&job.action.1)
            .bind(cids)
            .bind(job.cids.len() as i64)
            .bind(&job.cluster_url)
            .bind(payload.to_string())
            .bind(format!(
                "Successfully processed {} customer(s)",
                job.cids.len()
            ))
            .bind(job.created_at.format("%Y-%m-%d %H:%M:%S").to_string())
            .execute(&mut *tx)
            .await
            .context("Failed to write a legacy row")?;
    }
    tx.commit().await?;
    conn.close().await.ok();
    Ok(summary)
}

/// The rows, in time order: a working day's clicks, some recorded twice,
/// some re-run on purpose.
fn legacy_jobs(plan: &LegacyPlan) -> (Vec<LegacyJob>, LegacyFileSummary) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x1e6a_c1f1);
    let mut jobs = Vec::new();
    let mut summary = LegacyFileSummary::default();
    let mut day = plan.since;
    while day < plan.until {
        let weekday = super::is_weekday(day);
        let clicks = if weekday {
            rng.gen_range(5..11)
        } else {
            rng.gen_range(0..2)
        };
        let mut times: Vec<DateTime<Utc>> = (0..clicks)
            .map(|_| day + Duration::seconds(rng.gen_range(7 * 3600..19 * 3600)))
            .collect();
        times.sort();
        for at in times.into_iter().filter(|t| *t < plan.until) {
            let cid_count = *[1usize, 1, 1, 2, 3, 5, 8].choose(&mut rng).unwrap_or(&1);
            let job = LegacyJob {
                job_id: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
                user: plan.users.choose(&mut rng).cloned().unwrap_or_default(),
                action: plan.actions.choose(&mut rng).cloned().unwrap_or_default(),
                cids: (0..cid_count)
                    .map(|_| rng.gen_range(10_000_000u32..99_999_999).to_string())
                    .collect(),
                cluster_url: plan
                    .cluster_urls
                    .choose(&mut rng)
                    .cloned()
                    .unwrap_or_default(),
                token: format!(
                    "legacy-demo-token-{:012x}",
                    rng.gen::<u64>() & 0xffff_ffff_ffff
                ),
                created_at: at,
            };
            let doubled = rng.gen_bool(0.12);
            let rerun = !doubled && rng.gen_bool(0.03);
            let twin = doubled.then(|| LegacyJob {
                job_id: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
                created_at: at + Duration::seconds(rng.gen_range(0..=2)),
                cids: job.cids.clone(),
                user: job.user.clone(),
                action: job.action.clone(),
                cluster_url: job.cluster_url.clone(),
                token: job.token.clone(),
            });
            let again = rerun.then(|| LegacyJob {
                job_id: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
                created_at: at + Duration::seconds(rng.gen_range(120..900)),
                cids: job.cids.iter().rev().cloned().collect(),
                user: job.user.clone(),
                action: job.action.clone(),
                cluster_url: job.cluster_url.clone(),
                token: job.token.clone(),
            });
            jobs.push(job);
            if let Some(twin) = twin {
                summary.doubled_clicks += 1;
                jobs.push(twin);
            }
            if let Some(again) = again.filter(|j| j.created_at < plan.until) {
                summary.reruns += 1;
                jobs.push(again);
            }
        }
        day += Duration::days(1);
    }
    jobs.sort_by_key(|j| j.created_at);
    summary.rows = jobs.len() as u64;
    (jobs, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64) -> LegacyPlan {
        let until = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        LegacyPlan {
            seed,
            since: until - Duration::days(28),
            until,
            users: vec!["olga".into(), "piet".into()],
            cluster_urls: SAMPLE_CLUSTER_URLS.iter().map(|u| u.to_string()).collect(),
            actions: vec![(1, "Trans-Begin".into()), (3, "Suspend".into())],
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_rows_and_another_seed_others() {
        let (a, sa) = legacy_jobs(&plan(7));
        let (b, sb) = legacy_jobs(&plan(7));
        let (c, _) = legacy_jobs(&plan(8));
        assert_eq!(sa, sb);
        let ids = |jobs: &[LegacyJob]| jobs.iter().map(|j| j.job_id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&c));
        assert!(sa.doubled_clicks > 0, "{sa:?}");
        assert_eq!(sa.rows as usize, a.len());
    }

    #[test]
    fn each_doubled_click_is_a_pair_within_two_seconds_and_reruns_are_minutes_apart() {
        let (jobs, summary) = legacy_jobs(&plan(3));
        let mut pairs = 0;
        for (i, a) in jobs.iter().enumerate() {
            for b in &jobs[i + 1..] {
                let gap = (b.created_at - a.created_at).num_seconds();
                if a.user == b.user && a.action == b.action && a.cluster_url == b.cluster_url {
                    let mut x = a.cids.clone();
                    let mut y = b.cids.clone();
                    x.sort();
                    y.sort();
                    if x == y && gap <= 2 {
                        pairs += 1;
                    }
                }
            }
        }
        assert_eq!(pairs, summary.doubled_clicks);
    }
}
