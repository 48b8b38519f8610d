-- Timeline and tamper evidence. Phases not reached stay NULL; the claim is
-- the job's creation. A finalised job is sealed once, in the order the
-- sealer takes them: audit_seq numbers the chain, audit_hash links each job
-- to the one before.
ALTER TABLE jobs ADD COLUMN sent_at TIMESTAMPTZ;
ALTER TABLE jobs ADD COLUMN answered_at TIMESTAMPTZ;
ALTER TABLE jobs ADD COLUMN finalized_at TIMESTAMPTZ;
ALTER TABLE jobs ADD COLUMN audit_seq BIGINT;
ALTER TABLE jobs ADD COLUMN audit_hash TEXT;
CREATE UNIQUE INDEX jobs_by_audit_seq ON jobs (audit_seq);
CREATE INDEX jobs_unsealed ON jobs (finalized_at, job_id) WHERE audit_hash IS NULL AND status <> 'pending';
