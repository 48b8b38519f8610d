-- Four-eyes approval: a request for a dangerous action, frozen exactly as it
-- was checked, waiting for a second person. Kept in step with migrations/postgres.
CREATE TABLE approvals (
    approval_id       BLOB PRIMARY KEY NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('job', 'run')),
    status            TEXT NOT NULL
                      CHECK (status IN ('awaiting', 'approved', 'rejected', 'cancelled', 'expired')),
    requested_by      TEXT NOT NULL REFERENCES users (username),
    -- The requester's key: jobs, runs and approvals share one key space per user.
    idempotency_key   TEXT NOT NULL,
    payload_hash      TEXT NOT NULL,
    intent_hash       TEXT NOT NULL,
    cluster           TEXT NOT NULL,
    action            TEXT NOT NULL,
    action_code       INTEGER NOT NULL,
    -- A JSON array of the CIDs, in the order they were sent.
    cids              TEXT NOT NULL,
    cid_count         INTEGER NOT NULL,
    reason            TEXT,
    batch_size        INTEGER,
    run_at            TEXT,
    confirm_duplicate BOOLEAN NOT NULL DEFAULT FALSE,
    -- The job (kind job) or run (kind run) whose failed customers this retries.
    retry_of          BLOB,
    created_at        TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    decided_by        TEXT,
    decided_at        TEXT,
    comment           TEXT,
    -- What the approval executed (no foreign key: retention may remove old jobs).
    job_id            BLOB,
    run_id            BLOB,
    -- The 202 first answered, for replays.
    response_body     TEXT NOT NULL,
    UNIQUE (requested_by, idempotency_key)
);
CREATE INDEX approvals_by_time ON approvals (created_at, approval_id);
CREATE INDEX approvals_by_status_time ON approvals (status, created_at, approval_id);
-- The recent-duplicate guard and the expiry read only what awaits.
CREATE INDEX approvals_awaiting_intent ON approvals (intent_hash) WHERE status = 'awaiting';
CREATE INDEX approvals_awaiting_expiry ON approvals (expires_at) WHERE status = 'awaiting';

-- A job executed on approval names it and its approver.
ALTER TABLE jobs ADD COLUMN approved_by TEXT;
ALTER TABLE jobs ADD COLUMN approval_id BLOB;
