//! Retention: with `retention_days` configured (off by default), jobs older
//! than that are deleted, in batches, at start-up and hourly after. This is
//! the only way a job is ever deleted; every run that deletes logs how many.

use chrono::{DateTime, Utc};

use crate::domain::job::format_time;
use crate::error::Result;
use crate::store::Db;

/// Jobs deleted per transaction.
const BATCH: u32 = 1000;

/// How often a running server applies retention.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes the jobs created more than `days` days before `now`, oldest link
/// of the audit chain first, so the chain that is kept still verifies from
/// its anchor. Jobs not sealed yet (`pending` ones, and finalised ones the
/// sealer has not reached) wait for a later run; a job a kept job is marked
/// a duplicate of stays, and so does every later link. Returns how many
/// were deleted.
pub async fn apply_retention(db: &Db, days: u32, now: DateTime<Utc>) -> Result<u64> {
    let cutoff = now - chrono::Duration::days(i64::from(days));
    // Only links of the chain are removed: seal what is finalised first.
    super::seal::seal_pending(db).await?;
    let mut deleted = 0;
    loop {
        let n = db.purge_sealed_before(cutoff, BATCH).await?;
        deleted += n;
        if n < u64::from(BATCH) {
            break;
        }
    }
    if deleted > 0 {
        tracing::info!(
            deleted,
            retention_days = days,
            cutoff = %format_time(&cutoff),
            "retention: deleted jobs older than the retention period"
        );
    }
    Ok(deleted)
}
