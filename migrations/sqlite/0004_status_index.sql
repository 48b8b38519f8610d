-- The audit filters by status alone ("every failed job"): without this index
-- such a query reads every job when few or none match.
CREATE INDEX jobs_by_status_time ON jobs (status, created_at, job_id);
