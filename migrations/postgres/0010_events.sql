-- Events for other systems (SPEC §15): the outbox, written in the same
-- transaction as each change, numbered without gaps and chained by hashes.
-- Kept in step with migrations/sqlite.
CREATE TABLE events (
    seq          BIGINT PRIMARY KEY NOT NULL,
    event_id     UUID NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    -- As the event shows it (RFC 3339, UTC, milliseconds, Z): the hash
    -- covers this text.
    occurred_at  TEXT NOT NULL,
    actor        TEXT,
    subject      TEXT NOT NULL,
    data         TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);

-- The chain's head: one row, locked and moved by every event's write until
-- its commit, which is what numbers events without gaps across instances.
CREATE TABLE event_head (
    id    INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO event_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Each sink's position and who delivers it (a lease with an expiry).
CREATE TABLE sink_positions (
    name             TEXT PRIMARY KEY NOT NULL,
    delivered_seq    BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    last_success_at  TIMESTAMPTZ,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ
);
