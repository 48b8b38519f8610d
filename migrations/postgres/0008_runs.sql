-- Runs: one confirmed request over many customers, split into batches that
-- each become one job when sent. Kept in step with migrations/sqlite.
CREATE TABLE runs (
    run_id           UUID PRIMARY KEY NOT NULL,
    user_name        TEXT NOT NULL REFERENCES users (username),
    idempotency_key  TEXT NOT NULL,
    payload_hash     TEXT NOT NULL,
    intent_hash      TEXT NOT NULL,
    cluster          TEXT NOT NULL,
    action           TEXT NOT NULL,
    action_code      BIGINT NOT NULL,
    reason           TEXT,
    cid_count        BIGINT NOT NULL,
    batch_size       BIGINT NOT NULL,
    batch_count      BIGINT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('scheduled', 'queued', 'running', 'paused', 'cancelled', 'finished')),
    run_at           TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    retry_of         UUID REFERENCES runs (run_id),
    approved_by      TEXT,
    approval_id      UUID,
    confirm_duplicate BOOLEAN NOT NULL DEFAULT FALSE,
    -- The 202 first answered, for replays.
    response_body    TEXT NOT NULL,
    -- One key space per user with jobs: the claim checks both tables.
    UNIQUE (user_name, idempotency_key)
);
CREATE INDEX runs_by_time ON runs (created_at, run_id);
CREATE INDEX runs_by_user_time ON runs (user_name, created_at, run_id);
CREATE INDEX runs_by_intent ON runs (intent_hash, created_at);
CREATE INDEX runs_active ON runs (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX runs_scheduled ON runs (run_at) WHERE status = 'scheduled';

-- A run's batches, in order. A batch becomes a job when it is sent; its
-- status follows its job's.
CREATE TABLE run_batches (
    run_id      UUID NOT NULL REFERENCES runs (run_id),
    batch_index BIGINT NOT NULL,
    cluster     TEXT NOT NULL,
    cids        TEXT NOT NULL,
    cid_count   BIGINT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('queued', 'running', 'succeeded', 'partial', 'failed', 'timed_out', 'unknown', 'cancelled')),
    job_id      UUID UNIQUE REFERENCES jobs (job_id),
    started_at  TIMESTAMPTZ,
    PRIMARY KEY (run_id, batch_index)
);
-- What the dispatcher counts toward a cluster's limits, on every instance.
CREATE INDEX run_batches_in_flight ON run_batches (cluster) WHERE status = 'running';
CREATE INDEX run_batches_started ON run_batches (cluster, started_at) WHERE started_at IS NOT NULL;
CREATE INDEX run_batches_queued ON run_batches (run_id, batch_index) WHERE status = 'queued';

-- A job that is a batch of a run names it; one job per batch.
ALTER TABLE jobs ADD COLUMN run_id UUID REFERENCES runs (run_id);
ALTER TABLE jobs ADD COLUMN batch_index BIGINT;
CREATE UNIQUE INDEX jobs_by_batch ON jobs (run_id, batch_index) WHERE run_id IS NOT NULL;
