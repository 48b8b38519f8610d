-- Per-customer outcomes. Each CID of a job gets its outcome (ok, failed,
-- unknown, pending) and error, written with the job's finalisation; the job
-- gets the `partial` status, the counts of its outcomes, and the job it
-- retries. Kept in step with migrations/postgres.
--
-- SQLite cannot change a CHECK constraint in place, so `jobs` is rebuilt:
-- created anew with every column and the wider status check, filled, and
-- renamed, with its indexes made again. The CID tables' references name
-- `jobs`, which the new table takes over; checking them waits for the end.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE jobs_rebuilt (
    job_id           BLOB PRIMARY KEY NOT NULL,
    user_name        TEXT NOT NULL REFERENCES users (username),
    idempotency_key  TEXT,
    payload_hash     TEXT NOT NULL,
    intent_hash      TEXT NOT NULL,
    cluster          TEXT NOT NULL,
    action           TEXT NOT NULL,
    action_code      INTEGER NOT NULL,
    cids             TEXT NOT NULL,
    cid_count        INTEGER NOT NULL,
    reason           TEXT,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'succeeded', 'partial', 'failed', 'timed_out', 'unknown')),
    upstream_status  INTEGER,
    response_summary TEXT,
    error            TEXT,
    created_at       TEXT NOT NULL,
    finished_at      TEXT,
    duration_ms      INTEGER,
    duplicate_of     BLOB REFERENCES jobs (job_id),
    response_status  INTEGER,
    response_body    TEXT,
    confirm_duplicate BOOLEAN NOT NULL DEFAULT FALSE,
    replay_count     INTEGER NOT NULL DEFAULT 0,
    last_replay_at   TEXT,
    imported         BOOLEAN NOT NULL DEFAULT FALSE,
    legacy_id        TEXT,
    sent_at          TEXT,
    answered_at      TEXT,
    finalized_at     TEXT,
    audit_seq        INTEGER,
    audit_hash       TEXT,
    deadline_at      TEXT,
    ok_count         INTEGER NOT NULL DEFAULT 0,
    failed_count     INTEGER NOT NULL DEFAULT 0,
    unknown_count    INTEGER NOT NULL DEFAULT 0,
    retry_of         BLOB REFERENCES jobs (job_id),
    UNIQUE (user_name, idempotency_key)
);

INSERT INTO jobs_rebuilt (job_id, user_name, idempotency_key, payload_hash, intent_hash, cluster, action,
    action_code, cids, cid_count, reason, status, upstream_status, response_summary, error, created_at,
    finished_at, duration_ms, duplicate_of, response_status, response_body, confirm_duplicate, replay_count,
    last_replay_at, imported, legacy_id, sent_at, answered_at, finalized_at, audit_seq, audit_hash, deadline_at,
    ok_count, failed_count, unknown_count)
SELECT job_id, user_name, idempotency_key, payload_hash, intent_hash, cluster, action,
    action_code, cids, cid_count, reason, status, upstream_status, response_summary, error, created_at,
    finished_at, duration_ms, duplicate_of, response_status, response_body, confirm_duplicate, replay_count,
    last_replay_at, imported, legacy_id, sent_at, answered_at, finalized_at, audit_seq, audit_hash, deadline_at,
    CASE WHEN status = 'succeeded' THEN cid_count ELSE 0 END,
    CASE WHEN status = 'failed' THEN cid_count ELSE 0 END,
    CASE WHEN status IN ('timed_out', 'unknown') THEN cid_count ELSE 0 END
FROM jobs;

DROP TABLE jobs;
ALTER TABLE jobs_rebuilt RENAME TO jobs;

CREATE INDEX jobs_by_time ON jobs (created_at, job_id);
CREATE INDEX jobs_by_user_time ON jobs (user_name, created_at, job_id);
CREATE INDEX jobs_by_intent ON jobs (intent_hash, created_at);
CREATE UNIQUE INDEX jobs_by_legacy_id ON jobs (legacy_id);
CREATE INDEX jobs_duplicate_scan ON jobs (user_name, cluster, action, intent_hash, created_at, job_id);
CREATE INDEX jobs_by_duplicate_of ON jobs (duplicate_of) WHERE duplicate_of IS NOT NULL;
CREATE UNIQUE INDEX jobs_by_audit_seq ON jobs (audit_seq);
CREATE INDEX jobs_unsealed ON jobs (finalized_at, job_id) WHERE audit_hash IS NULL AND status <> 'pending';
CREATE INDEX jobs_by_status_time ON jobs (status, created_at, job_id);
CREATE INDEX jobs_pending_by_deadline ON jobs (deadline_at) WHERE status = 'pending';
CREATE INDEX jobs_by_retry_of ON jobs (retry_of) WHERE retry_of IS NOT NULL;

-- Each CID's outcome and error, and its job's creation time, so a
-- customer's history is one index range, newest first.
ALTER TABLE job_cids ADD COLUMN outcome TEXT NOT NULL DEFAULT 'pending'
    CHECK (outcome IN ('ok', 'failed', 'unknown', 'pending'));
ALTER TABLE job_cids ADD COLUMN error TEXT;
ALTER TABLE job_cids ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
UPDATE job_cids SET
    created_at = (SELECT j.created_at FROM jobs j WHERE j.job_id = job_cids.job_id),
    outcome = (SELECT CASE j.status WHEN 'succeeded' THEN 'ok' WHEN 'failed' THEN 'failed'
                                    WHEN 'pending' THEN 'pending' ELSE 'unknown' END
               FROM jobs j WHERE j.job_id = job_cids.job_id),
    error = (SELECT CASE j.status WHEN 'failed' THEN j.error END FROM jobs j WHERE j.job_id = job_cids.job_id);
CREATE INDEX job_cids_history ON job_cids (cid, created_at, job_id);
