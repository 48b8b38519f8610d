-- Per-customer outcomes. Each CID of a job gets its outcome (ok, failed,
-- unknown, pending) and error, written with the job's finalisation; the job
-- gets the `partial` status, the counts of its outcomes, and the job it
-- retries. Kept in step with migrations/sqlite.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'succeeded', 'partial', 'failed', 'timed_out', 'unknown'));
ALTER TABLE jobs ADD COLUMN ok_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN failed_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN unknown_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retry_of UUID REFERENCES jobs (job_id);
UPDATE jobs SET
    ok_count = CASE WHEN status = 'succeeded' THEN cid_count ELSE 0 END,
    failed_count = CASE WHEN status = 'failed' THEN cid_count ELSE 0 END,
    unknown_count = CASE WHEN status IN ('timed_out', 'unknown') THEN cid_count ELSE 0 END
 WHERE status <> 'pending';
CREATE INDEX jobs_by_retry_of ON jobs (retry_of) WHERE retry_of IS NOT NULL;

-- Each CID's outcome and error, and its job's creation time, so a
-- customer's history is one index range, newest first.
ALTER TABLE job_cids ADD COLUMN outcome TEXT NOT NULL DEFAULT 'pending'
    CHECK (outcome IN ('ok', 'failed', 'unknown', 'pending'));
ALTER TABLE job_cids ADD COLUMN error TEXT;
ALTER TABLE job_cids ADD COLUMN created_at TIMESTAMPTZ;
UPDATE job_cids c SET
    created_at = j.created_at,
    outcome = CASE j.status WHEN 'succeeded' THEN 'ok' WHEN 'failed' THEN 'failed'
                            WHEN 'pending' THEN 'pending' ELSE 'unknown' END,
    error = CASE j.status WHEN 'failed' THEN j.error END
  FROM jobs j WHERE j.job_id = c.job_id;
ALTER TABLE job_cids ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX job_cids_history ON job_cids (cid, created_at, job_id);
