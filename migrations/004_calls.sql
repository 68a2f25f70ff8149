-- Tables for video calls (issue: calls). Brook carries no media: it keeps
-- calls, their members, their sessions (one live session per call at most,
-- hosted by one SFU node) and the participants of each session.
-- Written for PostgreSQL 15+ and CockroachDB alike: plain tables, partial
-- indexes and ON CONFLICT only.

-- A call is addressed as "type:id" (for example "default:standup"): the type
-- groups calls of one kind, the id is chosen by the app or generated.
CREATE TABLE IF NOT EXISTS calls (
    id         text        PRIMARY KEY,
    type       text        NOT NULL,
    created_by text        NOT NULL REFERENCES users (id),
    data       jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Who may join a call, and with which role (host or member).
CREATE TABLE IF NOT EXISTS call_members (
    call_id    text        NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    user_id    text        NOT NULL REFERENCES users (id),
    role       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, user_id)
);
CREATE INDEX IF NOT EXISTS call_members_user ON call_members (user_id);

-- A session is one run of a call, from the first join to the last leave.
-- The SFU it was assigned is copied into the row, so the session keeps its
-- node when SFU_NODES changes or the node is drained.
CREATE TABLE IF NOT EXISTS call_sessions (
    id         uuid        PRIMARY KEY,
    call_id    text        NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    sfu_id     text        NOT NULL,
    sfu_url    text        NOT NULL,
    sfu_region text,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);
-- At most one live session per call, whichever node the joins arrive on:
-- the session start is INSERT ... ON CONFLICT against this index.
CREATE UNIQUE INDEX IF NOT EXISTS call_sessions_live ON call_sessions (call_id) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS call_sessions_by_call ON call_sessions (call_id, id DESC);

-- One row per join: a user on two devices is two participants.
CREATE TABLE IF NOT EXISTS call_participants (
    id         uuid        PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES call_sessions (id) ON DELETE CASCADE,
    call_id    text        NOT NULL,
    user_id    text        NOT NULL REFERENCES users (id),
    joined_at  timestamptz NOT NULL DEFAULT now(),
    left_at    timestamptz,
    -- Why the participant left: left (leaveCall), timeout (its callEvents
    -- subscription was gone too long).
    left_reason text
);
CREATE INDEX IF NOT EXISTS call_participants_by_session ON call_participants (session_id, id);
CREATE INDEX IF NOT EXISTS call_participants_live ON call_participants (session_id) WHERE left_at IS NULL;

-- SFU nodes an admin has drained: no new session is assigned to them.
-- Shared by every Brook node; the nodes themselves come from SFU_NODES.
CREATE TABLE IF NOT EXISTS sfu_drains (
    sfu_id     text        PRIMARY KEY,
    drained_by text        NOT NULL,
    drained_at timestamptz NOT NULL DEFAULT now()
);
