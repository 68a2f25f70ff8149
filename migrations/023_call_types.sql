-- Call types (issue 20): the settings a call gets from the type in its
-- "type:id". An admin defines them with upsertCallType; default,
-- audio_room and livestream are built in. A call keeps its type for life;
-- its settings are read when they apply (a join, a ring, a session start),
-- so an admin's change reaches existing calls from then on.
CREATE TABLE IF NOT EXISTS call_types (
    name                 text        PRIMARY KEY,
    -- Live participants a session holds at most; joins past it are refused.
    max_participants     int         NOT NULL DEFAULT 100,
    -- A session ends (reason max_duration) this long after it started;
    -- 0: no limit.
    max_duration_seconds int         NOT NULL DEFAULT 0,
    -- How long a ring rings before it is missed; NULL: CALL_RING_TIMEOUT.
    ring_timeout_seconds int,
    -- A user in another live call is rejected at once with reason BUSY.
    reject_busy          boolean     NOT NULL DEFAULT true,
    -- New calls start backstage: only hosts join until goLive.
    backstage            boolean     NOT NULL DEFAULT false,
    -- Default permissions per member role, as data:
    -- {"host": ["SEND_AUDIO", ...], "member": [...], "viewer": [...]}.
    permissions          jsonb       NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

INSERT INTO call_types (name, max_participants, backstage, permissions) VALUES
    ('default', 100, false,
     '{"host": ["SEND_AUDIO", "SEND_VIDEO", "SCREENSHARE"], "member": ["SEND_AUDIO", "SEND_VIDEO", "SCREENSHARE"], "viewer": []}'),
    ('audio_room', 1000, true,
     '{"host": ["SEND_AUDIO"], "member": ["SEND_AUDIO"], "viewer": []}'),
    ('livestream', 1000, true,
     '{"host": ["SEND_AUDIO", "SEND_VIDEO", "SCREENSHARE"], "member": [], "viewer": []}')
ON CONFLICT (name) DO NOTHING;

-- Calls made before call types keep working: each type already in use
-- becomes a call type with the default settings.
INSERT INTO call_types (name, permissions)
SELECT DISTINCT type, '{"host": ["SEND_AUDIO", "SEND_VIDEO", "SCREENSHARE"], "member": ["SEND_AUDIO", "SEND_VIDEO", "SCREENSHARE"], "viewer": []}'::jsonb
FROM calls
ON CONFLICT (name) DO NOTHING;

-- When a scheduled call starts (the app's; Brook only lists by it), and
-- whether the call is backstage (only hosts join until goLive): set from
-- its type when it is created.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS starts_at timestamptz;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS backstage boolean NOT NULL DEFAULT false;

-- Listing calls (the calls query): by creation or start time, keyset paged
-- with the id as the tie-breaker; a user's calls come from call_members_user.
CREATE INDEX IF NOT EXISTS calls_by_created ON calls (created_at, id);
CREATE INDEX IF NOT EXISTS calls_by_starts ON calls (starts_at, id) WHERE starts_at IS NOT NULL;
