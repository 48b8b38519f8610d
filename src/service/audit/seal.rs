//! Tamper evidence: every finalised job is sealed into a hash chain, each
//! hash covering the previous one and the job's immutable fields. A sealer
//! chains finalised jobs in small batches, one sealer at a time across all
//! instances (the store decides), and `audit verify` re-computes the chain.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::job::{format_time, Job, JobId, JobStatus};
use crate::domain::outcome::{CustomerOutcome, Outcome};
use crate::error::Result;
use crate::store::jobs::Seal;
use crate::store::Db;

/// The "previous hash" of the first sealed job.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Jobs sealed per transaction.
pub const SEAL_BATCH: u32 = 500;

/// What a seal covers: fields that never change once a job is final, and
/// what happened to each customer. Not `duplicate_of` (marking sets it
/// later) nor the replay counters.
#[derive(Serialize)]
struct Sealed<'a> {
    job_id: JobId,
    user: &'a str,
    cluster: &'a str,
    action: &'a str,
    action_code: i64,
    cids: &'a [String],
    status: &'a str,
    upstream_status: Option<i64>,
    response_summary: Option<&'a str>,
    error: Option<&'a str>,
    reason: Option<&'a str>,
    confirm_duplicate: bool,
    created_at: String,
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    /// Each customer's `[cid, outcome, error]`, left out when every one is
    /// what the job's status alone says (`succeeded`: ok; `failed`: failed
    /// with the job's error; `timed_out`, `unknown`: unknown). Jobs sealed
    /// before customers had outcomes are all of that kind, so their seals
    /// still verify; a changed outcome makes the list appear, and the hash
    /// differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    customers: Option<Vec<(&'a str, &'a str, Option<&'a str>)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_of: Option<JobId>,
    /// The run and batch a job sent, for a batch of a run.
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<crate::domain::run::RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_index: Option<i64>,
    /// Who approved a four-eyes request, and the approval (left out
    /// without one, so jobs sealed before approvals existed still verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_id: Option<crate::domain::approval::ApprovalId>,
}

/// The outcome and error each customer has when the job's status says it all.
fn implied(job: &Job) -> Option<(Outcome, Option<&str>)> {
    match job.status {
        JobStatus::Succeeded => Some((Outcome::Ok, None)),
        JobStatus::Failed => Some((Outcome::Failed, job.error.as_deref())),
        JobStatus::TimedOut | JobStatus::Unknown => Some((Outcome::Unknown, None)),
        JobStatus::Partial | JobStatus::Pending => None,
    }
}

/// The hash linking `job`, with its customers, to the previously sealed
/// job's hash.
pub fn seal_hash(previous: &str, job: &Job, customers: &[CustomerOutcome]) -> String {
    let said_by_status = implied(job).is_some_and(|(outcome, error)| {
        customers.len() == job.cids.len()
            && customers
                .iter()
                .all(|c| c.outcome == outcome && c.error.as_deref() == error)
    });
    let customers = (!said_by_status).then(|| {
        customers
            .iter()
            .map(|c| (c.cid.as_str(), c.outcome.as_str(), c.error.as_deref()))
            .collect()
    });
    let sealed = Sealed {
        job_id: job.job_id,
        user: &job.user,
        cluster: &job.cluster,
        action: &job.action,
        action_code: job.action_code,
        cids: &job.cids,
        status: job.status.as_str(),
        upstream_status: job.upstream_status,
        response_summary: job.response_summary.as_deref(),
        error: job.error.as_deref(),
        reason: job.reason.as_deref(),
        confirm_duplicate: job.confirm_duplicate,
        created_at: format_time(&job.created_at),
        finished_at: job.finished_at.as_ref().map(format_time),
        duration_ms: job.duration_ms,
        customers,
        retry_of: job.retry_of,
        run_id: job.run_id,
        batch_index: job.batch_index,
        approved_by: job.approved_by.as_deref(),
        approval_id: job.approval_id,
    };
    let mut h = Sha256::new();
    h.update(previous.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(&sealed).unwrap_or_default());
    hex::encode(h.finalize())
}

/// Seals every finalised, unsealed job, batch by batch. Returns how many.
/// Each batch is read and hashed outside any write; the write only checks
/// that the chain did not move meanwhile and stores the links, so the
/// sealer holds the store's write lock for the updates alone.
pub async fn seal_pending(db: &Db) -> Result<u64> {
    let mut total = 0;
    loop {
        let (tip, jobs) = db.seal_candidates(SEAL_BATCH).await?;
        let mut customers = db.customers_of(jobs.iter().map(|j| j.job_id)).await?;
        if jobs.is_empty() {
            return Ok(total);
        }
        let (mut seq, mut previous) = match &tip {
            Some(tip) => (tip.seq, tip.hash.clone()),
            None => (0, GENESIS.to_owned()),
        };
        let full = jobs.len() as u32 == SEAL_BATCH;
        let seals = jobs
            .iter()
            .map(|job| {
                seq += 1;
                let of_job = customers.remove(&job.job_id).unwrap_or_default();
                previous = seal_hash(&previous, job, &of_job);
                Seal {
                    job_id: job.job_id,
                    seq,
                    hash: previous.clone(),
                }
            })
            .collect();
        let sealed = db.apply_seals(tip, seals).await?;
        total += sealed;
        // Another instance sealed first (0), or that was the last batch.
        if sealed == 0 || !full {
            return Ok(total);
        }
    }
}

/// The first place the chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub job_id: JobId,
    pub reason: String,
}

/// What `audit verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub checked: u64,
    /// Where the verified chain starts when retention removed its oldest
    /// links: the first kept sequence number, and how many were removed.
    pub starts_at: Option<(i64, i64)>,
    pub broken: Option<BrokenLink>,
}

/// Re-computes the chain from its start (the first sealed job, or the anchor
/// retention left) and names the first job where it breaks (a changed job,
/// a removed one, or a forged hash).
pub async fn verify(db: &Db) -> Result<Verification> {
    let anchor = db.chain_anchor().await?;
    let (mut previous, mut expected_seq) = match &anchor {
        Some((tip, _)) => (tip.hash.clone(), tip.seq + 1),
        None => (GENESIS.to_owned(), 1),
    };
    let starts_at = anchor.map(|(tip, removed)| (tip.seq + 1, removed));
    let mut checked = 0;
    loop {
        let page = db.sealed_jobs_after(expected_seq - 1, 1000).await?;
        let mut customers = db.customers_of(page.iter().map(|(_, j)| j.job_id)).await?;
        if page.is_empty() {
            return Ok(Verification {
                checked,
                starts_at,
                broken: None,
            });
        }
        for (seq, job) in page {
            let job_id = job.job_id;
            let stored = job.audit_hash.clone().unwrap_or_default();
            let broken = |reason: String| Verification {
                checked,
                starts_at,
                broken: Some(BrokenLink {
                    seq,
                    job_id,
                    reason,
                }),
            };
            if seq != expected_seq {
                return Ok(broken(format!(
                    "sealed job number {expected_seq} is missing (the chain jumps to {seq})"
                )));
            }
            let of_job = customers.remove(&job_id).unwrap_or_default();
            let computed = seal_hash(&previous, &job, &of_job);
            if computed != stored {
                return Ok(broken(
                    "the job does not match its seal: it or an earlier job was changed".into(),
                ));
            }
            previous = stored;
            expected_seq += 1;
            checked += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::{now_millis, JobStatus, Phases};

    fn job() -> Job {
        let t = now_millis();
        Job {
            job_id: JobId::new_at(t),
            user: "alice".into(),
            cluster: "eu".into(),
            action: "Suspend".into(),
            action_code: 3,
            cids: vec!["C1".into(), "C2".into()],
            cid_count: 2,
            status: JobStatus::Succeeded,
            upstream_status: Some(200),
            response_summary: Some("{}".into()),
            error: None,
            created_at: t,
            finished_at: Some(t),
            duration_ms: Some(3),
            duplicate_of: None,
            reason: None,
            confirm_duplicate: false,
            replay_count: 0,
            last_replay_at: None,
            phases: Phases::default(),
            audit_hash: None,
            imported: false,
            legacy_id: None,
            outcomes: Default::default(),
            retry_of: None,
            run_id: None,
            batch_index: None,
            approved_by: None,
            approval_id: None,
        }
    }

    fn customers(j: &Job, outcome: Outcome) -> Vec<CustomerOutcome> {
        crate::domain::outcome::all(&j.cids, outcome, None)
    }

    #[test]
    fn the_seal_covers_immutable_fields_and_the_previous_hash() {
        let j = job();
        let ok = customers(&j, Outcome::Ok);
        let h = seal_hash(GENESIS, &j, &ok);
        assert_eq!(h, seal_hash(GENESIS, &j, &ok));
        assert_ne!(h, seal_hash("other", &j, &ok));
        let mut changed = j.clone();
        changed.cids.push("C3".into());
        assert_ne!(h, seal_hash(GENESIS, &changed, &ok));
        let mut retried = j.clone();
        retried.retry_of = Some(JobId::new_at(now_millis()));
        assert_ne!(h, seal_hash(GENESIS, &retried, &ok));
        let approved = Job {
            approved_by: Some("piet".into()),
            approval_id: Some(crate::domain::approval::ApprovalId::new_at(j.created_at)),
            ..j.clone()
        };
        let approved_hash = seal_hash(GENESIS, &approved, &ok);
        assert_ne!(h, approved_hash);
        let other_approver = Job {
            approved_by: Some("ana".into()),
            ..approved.clone()
        };
        assert_ne!(approved_hash, seal_hash(GENESIS, &other_approver, &ok));
    }

    #[test]
    fn the_seal_covers_each_customers_outcome_and_error() {
        let j = job();
        let ok = customers(&j, Outcome::Ok);
        let h = seal_hash(GENESIS, &j, &ok);
        let mut one_failed = ok.clone();
        one_failed[1].outcome = Outcome::Failed;
        assert_ne!(h, seal_hash(GENESIS, &j, &one_failed));
        let mut with_error = ok.clone();
        with_error[0].error = Some("changed".into());
        assert_ne!(h, seal_hash(GENESIS, &j, &with_error));
    }

    #[test]
    fn a_job_whose_status_says_it_all_seals_as_it_did_before_outcomes_existed() {
        // The hash of a job with every customer as its status implies, as
        // the sealer computed it before customers had outcomes.
        let j = job();
        let before = {
            let mut v = serde_json::to_value(Sealed {
                job_id: j.job_id,
                user: &j.user,
                cluster: &j.cluster,
                action: &j.action,
                action_code: j.action_code,
                cids: &j.cids,
                status: j.status.as_str(),
                upstream_status: j.upstream_status,
                response_summary: j.response_summary.as_deref(),
                error: j.error.as_deref(),
                reason: j.reason.as_deref(),
                confirm_duplicate: j.confirm_duplicate,
                created_at: format_time(&j.created_at),
                finished_at: j.finished_at.as_ref().map(format_time),
                duration_ms: j.duration_ms,
                customers: None,
                retry_of: None,
                run_id: None,
                batch_index: None,
                approved_by: None,
                approval_id: None,
            })
            .unwrap();
            assert!(v.as_object_mut().unwrap().get("customers").is_none());
            let mut h = Sha256::new();
            h.update(GENESIS.as_bytes());
            h.update(b"\n");
            h.update(serde_json::to_vec(&v).unwrap());
            hex::encode(h.finalize())
        };
        assert_eq!(seal_hash(GENESIS, &j, &customers(&j, Outcome::Ok)), before);
    }

    #[test]
    fn marking_and_replays_do_not_change_the_seal() {
        let j = job();
        let ok = customers(&j, Outcome::Ok);
        let mut marked = j.clone();
        marked.duplicate_of = Some(JobId::new_at(now_millis()));
        marked.replay_count = 4;
        assert_eq!(
            seal_hash(GENESIS, &j, &ok),
            seal_hash(GENESIS, &marked, &ok)
        );
    }
}
