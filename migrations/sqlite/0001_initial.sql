-- Users, credentials, sessions, login throttling and jobs: the whole store.
-- Times are bound from Rust (UTC, millisecond precision); ids of jobs and
-- tokens are UUIDs. Kept column-for-column in step with migrations/postgres.

CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
    password_hash TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id           BLOB PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL REFERENCES users (username),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX api_tokens_by_user ON api_tokens (username);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY NOT NULL,
    username   TEXT NOT NULL REFERENCES users (username),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE login_failures (
    username  TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE INDEX login_failures_by_user ON login_failures (username, failed_at);

CREATE TABLE login_locks (
    username     TEXT PRIMARY KEY NOT NULL,
    locked_until TEXT NOT NULL
);

CREATE TABLE jobs (
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
                     CHECK (status IN ('pending', 'succeeded', 'failed', 'timed_out', 'unknown')),
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
    -- The claim: one job per user and key, decided by the database.
    UNIQUE (user_name, idempotency_key)
);
CREATE INDEX jobs_by_time ON jobs (created_at, job_id);
CREATE INDEX jobs_by_user_time ON jobs (user_name, created_at, job_id);
CREATE INDEX jobs_pending ON jobs (created_at) WHERE status = 'pending';
-- The recent-duplicate guard looks up the same intent (cluster, action, CID set).
CREATE INDEX jobs_by_intent ON jobs (intent_hash, created_at);

-- One row per CID of a job, so "jobs touching CID X" is an index look-up.
CREATE TABLE job_cids (
    cid      TEXT NOT NULL,
    job_id   BLOB NOT NULL REFERENCES jobs (job_id),
    position INTEGER NOT NULL,
    PRIMARY KEY (cid, job_id)
);
CREATE INDEX job_cids_by_job ON job_cids (job_id);

-- The per-customer lock: one row per CID of a pending job, released when the
-- job is finalised. The primary key makes a second run on a busy CID fail in
-- the database, whichever instance tries it.
CREATE TABLE busy_cids (
    cluster TEXT NOT NULL,
    cid     TEXT NOT NULL,
    job_id  BLOB NOT NULL REFERENCES jobs (job_id),
    PRIMARY KEY (cluster, cid)
);
CREATE INDEX busy_cids_by_job ON busy_cids (job_id);
