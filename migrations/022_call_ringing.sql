-- Ringing (issue 20): a ring is one user's incoming call. Its row is the
-- state machine every decision goes through, in one transaction:
-- RINGING -> ACCEPTED | REJECTED | MISSED | CANCELLED. The UPDATE that
-- leaves RINGING is conditional on it, so an accept racing the timeout
-- job decides exactly once, whichever node either runs on.
CREATE TABLE IF NOT EXISTS call_rings (
    id         uuid        PRIMARY KEY,
    call_id    text        NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    -- The user rung, and the user who rang them.
    user_id    text        NOT NULL REFERENCES users (id),
    caller_id  text        NOT NULL REFERENCES users (id),
    state      text        NOT NULL,
    -- Why a REJECTED ring was rejected: DECLINED or BUSY.
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- When a ring still RINGING becomes MISSED (the outbox job runs then).
    expires_at timestamptz NOT NULL,
    decided_at timestamptz
);
-- A user rings at most once per call at a time.
CREATE UNIQUE INDEX IF NOT EXISTS call_rings_ringing ON call_rings (call_id, user_id) WHERE state = 'RINGING';
-- What rings for a user now (a device that subscribes late still rings).
CREATE INDEX IF NOT EXISTS call_rings_ringing_user ON call_rings (user_id) WHERE state = 'RINGING';
CREATE INDEX IF NOT EXISTS call_rings_by_call ON call_rings (call_id, id DESC);

-- Busy: is a user in a live call? Live participants by user.
CREATE INDEX IF NOT EXISTS call_participants_live_user ON call_participants (user_id) WHERE left_at IS NULL;
