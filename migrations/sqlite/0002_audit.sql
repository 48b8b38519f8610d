-- The audit tooling: jobs brought in from the old Flask dashboard, and the
-- index the duplicate audit scans. Kept in step with migrations/postgres.

-- Imported jobs are flagged; a legacy id that was not a UUID is kept here.
ALTER TABLE jobs ADD COLUMN imported BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE jobs ADD COLUMN legacy_id TEXT;
-- Re-importing a file skips the rows it already brought in.
CREATE UNIQUE INDEX jobs_by_legacy_id ON jobs (legacy_id);

-- The duplicate audit reads jobs in this order, one pass, no sort.
CREATE INDEX jobs_duplicate_scan ON jobs (user_name, cluster, action, intent_hash, created_at, job_id);

-- Retention keeps a job that a kept job is marked against: found by this index.
CREATE INDEX jobs_by_duplicate_of ON jobs (duplicate_of) WHERE duplicate_of IS NOT NULL;
