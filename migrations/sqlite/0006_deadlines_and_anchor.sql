-- Each job carries its own deadline: the sweep resolves a pending job once
-- its deadline has passed, whatever the upstream timeout of the instance
-- that sweeps. Jobs still pending at the upgrade get the default timeout
-- (30 s) plus the grace (5 s). Kept in step with migrations/postgres.
ALTER TABLE jobs ADD COLUMN deadline_at TEXT;
UPDATE jobs SET deadline_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', created_at, '+35 seconds')
 WHERE status = 'pending';
DROP INDEX jobs_pending;
CREATE INDEX jobs_pending_by_deadline ON jobs (deadline_at) WHERE status = 'pending';

-- Where the audit chain starts once retention removed its oldest links: the
-- sequence number and hash of the last removed job. One row at most.
CREATE TABLE audit_anchor (
    id          INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    audit_seq   INTEGER NOT NULL,
    audit_hash  TEXT NOT NULL,
    removed     INTEGER NOT NULL,
    anchored_at TEXT NOT NULL
);

-- Failed logins are swept once they are older than the throttling window.
CREATE INDEX login_failures_by_time ON login_failures (failed_at);
