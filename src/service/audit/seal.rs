//! Tamper evidence: every finalised job is sealed into a hash chain, each
//! hash covering the previous one and the job's immutable fields. A sealer
//! chains finalised jobs in small batches, one sealer at a time across all
//! instances (the store decides), and `audit verify` re-computes the chain.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::job::{format_time, Job, JobId};
use crate::error::Result;
use crate::store::jobs::Seal;
use crate::store::Db;

/// The "previous hash" of the first sealed job.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Jobs sealed per transaction.
pub const SEAL_BATCH: u32 = 500;

/// What a seal covers: fields that never change once a job is final. Not
/// `duplicate_of` (marking sets it later) nor the replay counters.
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
}

/// The hash linking `job` to the previously sealed job's hash.
pub fn seal_hash(previous: &str, job: &Job) -> String {
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
                previous = seal_hash(&previous, job);
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
            let computed = seal_hash(&previous, &job);
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
        }
    }

    #[test]
    fn the_seal_covers_immutable_fields_and_the_previous_hash() {
        let j = job();
        let h = seal_hash(GENESIS, &j);
        assert_eq!(h, seal_hash(GENESIS, &j));
        assert_ne!(h, seal_hash("other", &j));
        let mut changed = j.clone();
        changed.cids.push("C3".into());
        assert_ne!(h, seal_hash(GENESIS, &changed));
    }

    #[test]
    fn marking_and_replays_do_not_change_the_seal() {
        let j = job();
        let mut marked = j.clone();
        marked.duplicate_of = Some(JobId::new_at(now_millis()));
        marked.replay_count = 4;
        assert_eq!(seal_hash(GENESIS, &j), seal_hash(GENESIS, &marked));
    }
}
