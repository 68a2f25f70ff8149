-- Call permissions and participant state (issue 20). Named 024 in the
-- plan (call types take 023); this branch numbers it 023 so tern, which
-- wants no gaps, runs it: renumber on merge.
--
-- A member's capabilities in a call (SEND_AUDIO, SEND_VIDEO, SCREENSHARE)
-- come from the call type's defaults for their role until a host grants or
-- revokes one: from then on the row holds the member's whole set, so a
-- later change of the defaults leaves explicit decisions alone.
CREATE TABLE IF NOT EXISTS call_permissions (
    call_id      text        NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    user_id      text        NOT NULL REFERENCES users (id),
    capabilities text[]      NOT NULL,
    updated_by   text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, user_id)
);

-- A participant's track state, as its client reports it (and hosts force).
-- On the participant row: a change is one UPDATE of one row, and a late
-- joiner reads everyone's state with the participants it already reads.
-- A participant starts muted and not sharing: it unmutes when it publishes.
ALTER TABLE call_participants ADD COLUMN IF NOT EXISTS audio_muted   boolean NOT NULL DEFAULT true;
ALTER TABLE call_participants ADD COLUMN IF NOT EXISTS video_muted   boolean NOT NULL DEFAULT true;
ALTER TABLE call_participants ADD COLUMN IF NOT EXISTS screensharing boolean NOT NULL DEFAULT false;
