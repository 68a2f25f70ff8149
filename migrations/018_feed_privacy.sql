-- Private feeds and follow requests (issue 19).
--
-- feeds.visibility says who reads a user feed: PUBLIC (anyone signed in),
-- FOLLOWERS (its owner and the timelines that follow it) or PRIVATE (its
-- owner alone). A feed without a row, like one with none set, is PUBLIC.
ALTER TABLE feeds ADD COLUMN IF NOT EXISTS visibility text NOT NULL DEFAULT 'PUBLIC';

-- follow_requests are follows of FOLLOWERS feeds waiting for the owner:
-- kept apart from follows so that fan-out, backfill, the read-time pull
-- and the follow counts, which read follows, see nothing of them until
-- acceptFollow moves one into follows. copy_limit is the request's
-- activityCopyLimit, applied when it is accepted.
CREATE TABLE IF NOT EXISTS follow_requests (
    source     text        NOT NULL,
    target     text        NOT NULL,
    copy_limit int         NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, target)
);

-- A feed's owner pages through the requests to it by source.
CREATE INDEX IF NOT EXISTS follow_requests_target ON follow_requests (target, source);
