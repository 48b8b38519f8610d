//! `tms-dashboard demo`: a fresh store filled with three weeks of the
//! console's life, so a newcomer opens a populated console rather than an
//! empty one, and screenshots come out the same for the same seed.
//!
//! Nothing here is written around the rules. Each job is claimed with
//! `Db::claim_job` (its key, the recent-duplicate guard of its time, the
//! per-customer lock, its `job.created` event) and finalised with
//! `Db::finalize_job` from a simulated cluster answer read the way every
//! answer is read (`upstream::read_answer`, `execution::settle`); the run is
//! committed with `claim_run` and its batches started with `start_batch`,
//! as the dispatcher does; the old dashboard's history comes in through
//! `import legacy` from a file made by `legacy_file`. Only the clock is the
//! demo's: every write takes its time from the job, the run or the batch,
//! which the demo sets in the past. Then the audit chain is sealed, so
//! `audit verify` and `events verify` pass on the result.
//!
//! What is in it: two admins, four operators and two auditors; about 280
//! jobs over 21 days (weekdays busy, weekends quiet) across the configured
//! clusters and actions, mostly succeeded, some partial (customers the
//! cluster refused or left out), failed (refusals, 5xx, an unreachable
//! cluster) and timed out; a deliberate re-run (`confirm_duplicate`) and a
//! retry of a partial job's failed customers; one finished run of three
//! batches; and the two weeks before, imported from the old dashboard, with
//! its doubled clicks for the duplicate audit to find. Actions and clusters
//! that need four eyes are left out: an approval is a second person's to
//! give, and the demo does not pretend one was given.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::domain::action::Action;
use crate::domain::cid::{CidsInput, RawCids};
use crate::domain::cluster::Cluster;
use crate::domain::fingerprint::RequestFingerprint;
use crate::domain::job::JobId;
use crate::domain::outcome::Outcome as CustomerState;
use crate::domain::run::RunId;
use crate::domain::user::Role;
use crate::error::Error;
use crate::service::audit::legacy::{import_legacy, ImportOptions, ImportSummary};
use crate::service::audit::seal::seal_pending;
use crate::service::runs::RunRequest;
use crate::service::{accounts, execution, Service};
use crate::store::jobs::{Claim, NewJob};
use crate::store::runs::{RunClaim, StartBatch, StartOutcome};
use crate::upstream::{self, Outcome};

pub mod legacy_file;

use legacy_file::{write_legacy_file, LegacyFileSummary, LegacyPlan};

/// The seed when none is given.
pub const DEFAULT_SEED: u64 = 20;
/// Days of the console's own history.
pub const HISTORY_DAYS: i64 = 21;
/// Days before those, imported from the old dashboard.
pub const LEGACY_DAYS: i64 = 14;

/// The demo's people: `admin` is the first admin, made as `serve` makes it.
const PEOPLE: [(&str, Role); 7] = [
    ("mara", Role::Admin),
    ("olga", Role::Operator),
    ("piet", Role::Operator),
    ("sanjay", Role::Operator),
    ("wen", Role::Operator),
    ("audra", Role::Auditor),
    ("kofi", Role::Auditor),
];
/// Who ran the old dashboard's jobs: the operators, and one who has since
/// left (the import creates them disabled, with no password).
const LEGACY_USERS: [&str; 4] = ["olga", "piet", "sanjay", "jonas"];

/// Why customers are refused, as clusters say it.
const REFUSALS: [&str; 4] = [
    "customer is locked by a billing hold",
    "customer account is closed",
    "customer is already in the requested state",
    "customer not found on this cluster",
];
/// Why whole requests are refused.
const REJECTIONS: [&str; 2] = [
    "action not allowed while a transition is open",
    "request refused: cluster is read-only during maintenance",
];
const SERVER_ERRORS: [(u16, &str); 2] = [
    (500, "internal error: customer database unavailable"),
    (503, "maintenance window in progress, try again later"),
];
const REASONS: [&str; 5] = [
    "customer asked for it on the phone",
    "follow-up of the weekend incident",
    "billing dispute resolved",
    "scheduled maintenance change",
    "onboarding of a migrated customer",
];

/// What the demo is asked for.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub seed: u64,
    /// The end of the history (its last job is before it).
    pub until: DateTime<Utc>,
    /// The first admin's password (`TMS_ADMIN_PASSWORD`); generated when absent.
    pub admin_password: Option<String>,
}

/// A user the demo made, with the password to show once (`None`: the user
/// existed already, or the password was given).
#[derive(Clone, Debug)]
pub struct DemoUser {
    pub username: String,
    pub role: Role,
    pub password: Option<String>,
}

/// What the demo wrote.
#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    pub users: Vec<DemoUser>,
    /// Jobs of the console's own history (the run's batches included), by status.
    pub jobs_by_status: BTreeMap<&'static str, u64>,
    /// Requests the recent-duplicate guard of their time refused: not jobs.
    pub refused_by_guard: u64,
    pub rerun: Option<JobId>,
    pub retry: Option<JobId>,
    pub run: Option<RunId>,
    pub legacy: LegacyFileSummary,
    pub imported: ImportSummary,
    pub sealed: u64,
}

impl DemoSummary {
    pub fn jobs(&self) -> u64 {
        self.jobs_by_status.values().sum()
    }
}

/// How a simulated call ends.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Succeeded,
    /// Some customers refused, and maybe one left out of the answer.
    Partial,
    Rejected,
    ServerError,
    Unreachable,
    TimedOut,
}

/// One request of the plan.
#[derive(Clone, Debug)]
struct Planned {
    at: DateTime<Utc>,
    user: String,
    cluster: String,
    action: Action,
    cids: Vec<String>,
    reason: Option<String>,
    fate: Fate,
    confirm_duplicate: bool,
    retry_of: Option<JobId>,
    /// Run this job's failed customers again, this long after it.
    retry_after: Option<Duration>,
}

pub(crate) fn is_weekday(day: DateTime<Utc>) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The midnight (UTC) starting `at`'s day.
fn day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    at.date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
}

/// A UUIDv7 of `at` with the rng's bits: the same seed, the same ids.
fn id_at(rng: &mut StdRng, at: DateTime<Utc>) -> uuid::Uuid {
    let random: [u8; 10] = rng.gen();
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &random)
        .into_uuid()
}

/// A key as the page makes one (a random UUID).
fn key(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.gen())
        .into_uuid()
        .to_string()
}

/// The console's own requests from `history_start` to `until`, in time
/// order: busy weekdays and quiet weekends, operators mostly, one CID
/// usually and hundreds sometimes, most answered with success; a re-run on
/// purpose, and a partial job whose refused customers are retried.
fn plan_jobs(
    rng: &mut StdRng,
    clusters: &[Cluster],
    actions: &[Action],
    history_start: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Planned> {
    let operators: Vec<&str> = PEOPLE
        .iter()
        .filter(|(_, r)| *r == Role::Operator)
        .map(|(n, _)| *n)
        .collect();
    let pools: Vec<Vec<String>> = clusters
        .iter()
        .enumerate()
        .map(|(i, _)| {
            rand::seq::index::sample(rng, 100_000, 400)
                .into_iter()
                .map(|n| format!("C{}{n:05}", i + 1))
                .collect()
        })
        .collect();
    let mut plan = Vec::new();
    for day in 0..HISTORY_DAYS {
        let start = history_start + Duration::days(day);
        let count = if is_weekday(start) {
            rng.gen_range(12..23)
        } else {
            rng.gen_range(0..4)
        };
        for _ in 0..count {
            let at = start + Duration::milliseconds(rng.gen_range(7 * 3_600_000..19 * 3_600_000));
            let user = if rng.gen_bool(0.1) {
                "admin"
            } else {
                operators.choose(rng).copied().unwrap_or("admin")
            };
            let c = rng.gen_range(0..clusters.len());
            let action = actions
                .choose(rng)
                .cloned()
                .unwrap_or_else(|| actions[0].clone());
            let n = match rng.gen_range(0..100) {
                0..=54 => 1,
                55..=79 => rng.gen_range(2..=5),
                80..=92 => rng.gen_range(6..=30),
                93..=97 => rng.gen_range(31..=120),
                _ => rng.gen_range(200..=480),
            }
            .min(action.max_cids)
            .min(pools[c].len());
            let cids: Vec<String> = pools[c].choose_multiple(rng, n).cloned().collect();
            let fate = match rng.gen_range(0..100) {
                _ if n >= 2 && rng.gen_bool(0.15) => Fate::Partial,
                0..=86 => Fate::Succeeded,
                87..=90 => Fate::Rejected,
                91..=93 => Fate::ServerError,
                94..=95 => Fate::Unreachable,
                _ => Fate::TimedOut,
            };
            let reason = (action.reason_required || rng.gen_bool(0.3)).then(|| {
                format!(
                    "INC-{}: {}",
                    rng.gen_range(4000..9000),
                    REASONS.choose(rng).copied().unwrap_or(REASONS[0])
                )
            });
            plan.push(Planned {
                at,
                user: user.into(),
                cluster: clusters[c].name.clone(),
                action,
                cids,
                reason,
                fate,
                confirm_duplicate: false,
                retry_of: None,
                retry_after: None,
            });
        }
    }
    plan.sort_by_key(|p| p.at);
    plan.retain(|p| p.at < until);
    // A colleague runs a job again on purpose; a partial job's refused
    // customers are retried later that morning.
    if let Some(first) = plan
        .iter()
        .skip(plan.len() / 2)
        .find(|p| matches!(p.fate, Fate::Succeeded) && p.cids.len() <= 5)
        .cloned()
    {
        plan.push(Planned {
            at: first.at + Duration::seconds(252),
            confirm_duplicate: true,
            reason: Some("INC-7311: the customer asked to apply it again after their fix".into()),
            ..first
        });
        plan.sort_by_key(|p| p.at);
    }
    let two_thirds = plan.len() * 2 / 3;
    if let Some(partial) = plan
        .iter_mut()
        .skip(two_thirds)
        .find(|p| matches!(p.fate, Fate::Partial))
    {
        partial.retry_after = Some(Duration::minutes(38));
    }
    plan
}

/// Refuses a history that would end in the future (checked before any
/// store is opened, and again by the writers).
pub fn check_until(until: DateTime<Utc>) -> anyhow::Result<()> {
    if until > crate::time::now_millis() {
        anyhow::bail!("the demo's history cannot end in the future (--until)");
    }
    Ok(())
}

impl Service {
    /// Fills a store that holds no job and no run with the demo's history;
    /// refuses any other store, writing nothing.
    pub async fn fill_demo(&self, options: &DemoOptions) -> anyhow::Result<DemoSummary> {
        check_until(options.until)?;
        if self.db.holds_history().await? {
            anyhow::bail!(
                "this store already has jobs: the demo fills only a fresh store, \
                 so it never mixes made-up history into a real audit"
            );
        }
        let execution = self.execution();
        // What four eyes guard is left out: the demo claims its jobs, and
        // an approval is a second person's to give.
        let clusters: Vec<Cluster> = execution
            .clusters()
            .iter()
            .filter(|c| !c.approval_required)
            .cloned()
            .collect();
        let actions: Vec<Action> = execution
            .catalog()
            .iter()
            .filter(|a| !a.approval_required)
            .cloned()
            .collect();
        if clusters.is_empty() || actions.is_empty() {
            anyhow::bail!(
                "the configuration has no cluster or no action without four-eyes approval to fill a demo with"
            );
        }
        let mut rng = StdRng::seed_from_u64(options.seed);
        let mut summary = DemoSummary::default();
        let history_start = day_start(options.until) - Duration::days(HISTORY_DAYS - 1);

        summary.users = self.demo_people(options.admin_password.as_deref()).await?;

        // The old dashboard's last two weeks, imported as a team would.
        (summary.legacy, summary.imported) = self
            .import_old_dashboard(options.seed, history_start, &clusters, &actions)
            .await?;

        // The console's own three weeks.
        let mut plan = plan_jobs(&mut rng, &clusters, &actions, history_start, options.until);
        let mut i = 0;
        while i < plan.len() {
            let planned = plan[i].clone();
            i += 1;
            let Some((job_id, failed)) = self.demo_job(&mut rng, &planned, &mut summary).await?
            else {
                continue;
            };
            if planned.confirm_duplicate {
                summary.rerun = Some(job_id);
            }
            if planned.retry_of.is_some() {
                summary.retry = Some(job_id);
            }
            if let (Some(after), false) = (planned.retry_after, failed.is_empty()) {
                let retry = Planned {
                    at: planned.at + after,
                    cids: failed,
                    fate: Fate::Succeeded,
                    retry_of: Some(job_id),
                    retry_after: None,
                    reason: Some(
                        "retry of the refused customers once the holds were lifted".into(),
                    ),
                    ..planned
                };
                let at = plan.partition_point(|p| p.at <= retry.at);
                plan.insert(at.max(i), retry);
            }
        }

        // A finished run over a migration wave, three days ago.
        if let Some(cluster) = clusters.iter().find(|c| c.token.is_some()) {
            let action = actions
                .iter()
                .find(|a| a.name == "Trans-Begin")
                .unwrap_or(&actions[0])
                .clone();
            let at = day_start(options.until) - Duration::days(3) + Duration::minutes(9 * 60 + 40);
            if at < options.until {
                let run = self
                    .demo_run(&mut rng, cluster, &action, at, &mut summary)
                    .await?;
                summary.run = Some(run);
            }
        }

        summary.sealed = seal_pending(&self.db).await?;
        Ok(summary)
    }

    /// The first admin, made as `serve` makes it, and the demo's people,
    /// each with a generated password (a user that exists already is kept).
    async fn demo_people(&self, admin_password: Option<&str>) -> anyhow::Result<Vec<DemoUser>> {
        let admin = accounts::ensure_admin(&self.db, admin_password).await?;
        let mut users = vec![DemoUser {
            username: "admin".into(),
            role: Role::Admin,
            password: admin,
        }];
        for (name, role) in PEOPLE {
            let password = match accounts::insert_local_user(&self.db, name, None, role, None).await
            {
                Ok((_, generated)) => generated,
                Err(e) if e.code() == crate::error::ErrorCode::UserExists => None,
                Err(e) => return Err(e.into()),
            };
            users.push(DemoUser {
                username: name.into(),
                role,
                password,
            });
        }
        Ok(users)
    }

    /// The old dashboard's last `LEGACY_DAYS` before `until`, written as
    /// its file and brought in by `import legacy`'s own code.
    async fn import_old_dashboard(
        &self,
        seed: u64,
        until: DateTime<Utc>,
        clusters: &[Cluster],
        actions: &[Action],
    ) -> anyhow::Result<(LegacyFileSummary, ImportSummary)> {
        let legacy_plan = LegacyPlan {
            seed,
            since: until - Duration::days(LEGACY_DAYS),
            until,
            users: LEGACY_USERS.iter().map(|u| u.to_string()).collect(),
            cluster_urls: clusters.iter().map(|c| c.base_url.clone()).collect(),
            actions: actions.iter().map(|a| (a.code, a.name.clone())).collect(),
        };
        let folder =
            std::env::temp_dir().join(format!("tms-dashboard-demo-{}-{seed}", std::process::id()));
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("Failed to create {}", folder.display()))?;
        let legacy_path = folder.join("legacy-flask-jobs.db");
        let imported = async {
            let written = write_legacy_file(&legacy_path, &legacy_plan).await?;
            let import = ImportOptions {
                clusters: clusters
                    .iter()
                    .map(|c| (c.name.clone(), c.base_url.clone()))
                    .collect(),
                catalog: self.execution().catalog().clone(),
                ..ImportOptions::default()
            };
            let imported = import_legacy(&self.db, &legacy_path, &import, |_| {}).await?;
            Ok::<_, anyhow::Error>((written, imported))
        }
        .await;
        std::fs::remove_dir_all(&folder).ok();
        imported
    }

    /// Claims, "sends" and finalises one planned job. Returns its id and
    /// its failed customers, or `None` when the guard of its time refused it.
    async fn demo_job(
        &self,
        rng: &mut StdRng,
        planned: &Planned,
        summary: &mut DemoSummary,
    ) -> anyhow::Result<Option<(JobId, Vec<String>)>> {
        let execution = self.execution();
        let raw = RawCids::from_input(&CidsInput::List(planned.cids.clone()));
        execution
            .cid_policy()
            .parse_list(&raw, planned.action.max_cids)
            .map_err(|e| {
                anyhow::anyhow!(
                    "the configured CID pattern refuses the demo's customer IDs (such as {:?}): {e:?}",
                    planned.cids.first()
                )
            })?;
        let fingerprint = RequestFingerprint::new(
            &planned.cluster,
            &planned.action.name,
            &raw,
            planned.reason.as_deref(),
        );
        let guard_on = !planned.confirm_duplicate && planned.retry_of.is_none();
        let new = NewJob {
            job_id: JobId::from_uuid(id_at(rng, planned.at)),
            user: planned.user.clone(),
            key: key(rng),
            payload_hash: fingerprint.payload_hash,
            intent_hash: fingerprint.intent_hash,
            cluster: planned.cluster.clone(),
            action: planned.action.name.clone(),
            action_code: planned.action.code,
            cids: planned.cids.clone(),
            reason: planned.reason.clone(),
            created_at: planned.at,
            // Counted from now, not from the job's past: a `serve` on this
            // store must not sweep it between its claim and its end.
            deadline_at: execution.deadline_for(crate::time::now_millis())?,
            confirm_duplicate: planned.confirm_duplicate,
            duplicate_guard_since: execution
                .duplicate_guard_since(planned.at)
                .filter(|_| guard_on),
            retry_of: planned.retry_of,
            batch: None,
            approval: None,
        };
        match self.db.claim_job(&new).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Existing(_)) => anyhow::bail!("a demo key was used twice"),
            Err(Error::RecentDuplicate { .. } | Error::CidsBusy { .. }) => {
                summary.refused_by_guard += 1;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let job = self
            .finish_demo_job(rng, new, planned.fate, summary)
            .await?;
        Ok(Some(job))
    }

    /// The simulated call of a claimed job, read and finalised as a real
    /// one is. Returns the job's id and its failed customers.
    async fn finish_demo_job(
        &self,
        rng: &mut StdRng,
        new: NewJob,
        fate: Fate,
        summary: &mut DemoSummary,
    ) -> anyhow::Result<(JobId, Vec<String>)> {
        let timeout = self.execution().upstream_timeout();
        let mut job = new.pending_job();
        let sent_at = job.created_at + Duration::milliseconds(rng.gen_range(2..9));
        let latency = Duration::milliseconds(match fate {
            Fate::Unreachable => rng.gen_range(1..4),
            _ if job.cids.len() > 100 => rng.gen_range(1_500..4_000),
            _ => rng.gen_range(60..900),
        });
        let (outcome, answered_at) = match fate {
            Fate::TimedOut => (upstream::timed_out(timeout), None),
            Fate::Unreachable => (upstream::unreachable("connection refused"), None),
            Fate::Rejected => {
                let message = REJECTIONS.choose(rng).copied().unwrap_or(REJECTIONS[0]);
                let body = json!({"status": "error", "message": message});
                (
                    upstream::read_answer(200, body.to_string().as_bytes()),
                    Some(sent_at + latency),
                )
            }
            Fate::ServerError => {
                let (status, message) = *SERVER_ERRORS.choose(rng).unwrap_or(&SERVER_ERRORS[0]);
                let body = json!({"status": "error", "message": message});
                (
                    upstream::read_answer(status, body.to_string().as_bytes()),
                    Some(sent_at + latency),
                )
            }
            Fate::Succeeded | Fate::Partial => {
                let refused = if matches!(fate, Fate::Partial) {
                    rng.gen_range(1..=job.cids.len().div_ceil(4).max(1))
                } else {
                    0
                };
                let mut refused_at: Vec<usize> = (0..job.cids.len()).collect();
                refused_at.shuffle(rng);
                refused_at.truncate(refused);
                let left_out =
                    matches!(fate, Fate::Partial) && job.cids.len() >= 6 && rng.gen_bool(0.3);
                let results: Vec<serde_json::Value> = job
                    .cids
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !(left_out && refused_at.first() == Some(i)))
                    .map(|(i, cid)| {
                        if refused_at.contains(&i) {
                            let error = REFUSALS.choose(rng).copied().unwrap_or(REFUSALS[0]);
                            json!({"cid": cid, "ok": false, "error": error})
                        } else {
                            json!({"cid": cid, "ok": true})
                        }
                    })
                    .collect();
                let processed = results.iter().filter(|r| r["ok"] == true).count();
                let body = json!({"status": "success", "processed": processed, "results": results});
                (
                    upstream::read_answer(200, body.to_string().as_bytes()),
                    Some(sent_at + latency),
                )
            }
        };
        let finished_at = match outcome {
            Outcome::TimedOut { .. } => sent_at + Duration::from_std(timeout).unwrap_or_default(),
            _ => {
                answered_at.unwrap_or(sent_at + latency)
                    + Duration::milliseconds(rng.gen_range(1..6))
            }
        };
        job.phases.sent_at = Some(sent_at);
        job.phases.answered_at = answered_at;
        job.phases.finalized_at = Some(finished_at);
        job.finished_at = Some(finished_at);
        job.duration_ms = Some((finished_at - job.created_at).num_milliseconds());
        let customers = execution::settle(&mut job, outcome);
        let failed: Vec<String> = customers
            .iter()
            .filter(|c| c.outcome == CustomerState::Failed)
            .map(|c| c.cid.clone())
            .collect();
        let done = execution::finalisation(&job, customers)?;
        if !self.db.finalize_job(&done).await? {
            anyhow::bail!("demo job {} was no longer pending", job.job_id);
        }
        *summary
            .jobs_by_status
            .entry(job.status.as_str())
            .or_default() += 1;
        Ok((job.job_id, failed))
    }

    /// A run of three batches, committed and sent as the dispatcher would.
    async fn demo_run(
        &self,
        rng: &mut StdRng,
        cluster: &Cluster,
        action: &Action,
        at: DateTime<Utc>,
        summary: &mut DemoSummary,
    ) -> anyhow::Result<RunId> {
        let batch_size = action.max_cids.min(500);
        let cids: Vec<String> = (0..batch_size * 2 + batch_size * 2 / 5)
            .map(|i| format!("W3{i:05}"))
            .collect();
        let request = RunRequest {
            cluster: cluster.name.clone(),
            action: action.name.clone(),
            cids: CidsInput::List(cids),
            batch_size: Some(batch_size as i64),
            reason: Some("CHG-2291: migration wave 3 moves to the new billing plan".into()),
            confirm_duplicate: None,
            run_at: None,
        };
        let mut new = self.runs().run_made_at("olga", request, &key(rng), at)?;
        new.run.run_id = RunId::from_uuid(id_at(rng, at));
        new.response_body = crate::service::runs::run_body(&new.run)?;
        match self.db.claim_run(&new).await? {
            RunClaim::Created => {}
            RunClaim::Existing(_) => anyhow::bail!("the demo's run key was used twice"),
        }
        let run_id = new.run.run_id;
        let execution = self.execution();
        let mut started = at + Duration::milliseconds(rng.gen_range(200..600));
        for (index, batch) in new.batches.iter().enumerate() {
            let raw = RawCids::from_input(&CidsInput::List(batch.clone()));
            let fingerprint = RequestFingerprint::new(
                &cluster.name,
                &action.name,
                &raw,
                new.run.reason.as_deref(),
            );
            let job = NewJob {
                job_id: JobId::from_uuid(id_at(rng, started)),
                user: new.run.user.clone(),
                key: super::dispatcher::batch_key(run_id, index as i64),
                payload_hash: fingerprint.payload_hash,
                intent_hash: fingerprint.intent_hash,
                cluster: cluster.name.clone(),
                action: action.name.clone(),
                action_code: action.code,
                cids: batch.clone(),
                reason: new.run.reason.clone(),
                created_at: started,
                deadline_at: execution.deadline_for(crate::time::now_millis())?,
                confirm_duplicate: false,
                duplicate_guard_since: None,
                retry_of: None,
                batch: Some((run_id, index as i64)),
                approval: None,
            };
            let start = StartBatch {
                job: job.clone(),
                max_in_flight: cluster.max_in_flight,
                max_per_second: cluster.max_per_second,
            };
            match self.db.start_batch(&start).await? {
                StartOutcome::Started => {}
                other => anyhow::bail!("batch {index} of the demo's run did not start: {other:?}"),
            }
            let fate = if index == 1 {
                Fate::Partial
            } else {
                Fate::Succeeded
            };
            self.finish_demo_job(rng, job, fate, summary).await?;
            started += Duration::milliseconds(rng.gen_range(3_000..6_000));
        }
        Ok(run_id)
    }
}
