-- Push notifications (issue 21): the devices users register, and the
-- pushes waiting for them.
--
-- A device is one app install's token at one provider. (provider, token)
-- is unique: registering a token again (from another user: the phone
-- changed hands, or the app's user signed out and another in) moves it.
CREATE TABLE IF NOT EXISTS push_devices (
    id                uuid        PRIMARY KEY,
    user_id           text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- FCM, APNS or WEBPUSH.
    provider          text        NOT NULL,
    -- The FCM registration token, the APNs device token (hex), or the Web
    -- Push subscription's JSON.
    token             text        NOT NULL,
    name              text,
    -- An APNs VoIP token (PushKit): rings only.
    voip              boolean     NOT NULL DEFAULT false,
    -- The highest push_pending id this device was sent: a retried push
    -- job skips the devices that already have it.
    delivered_through bigint      NOT NULL DEFAULT 0,
    -- When the token was last registered: apps register at every start,
    -- so the oldest registration past the per-user limit is a stale install.
    registered_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, token)
);
CREATE INDEX IF NOT EXISTS push_devices_user ON push_devices (user_id, registered_at);

-- One row per (user, event) to push: a message, a mention, a ring. The
-- outbox's push jobs read a user's rows, send one push for them (several
-- messages within a second: one push with a count), and delete them.
CREATE TABLE IF NOT EXISTS push_pending (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text        NOT NULL,
    -- message, mention, ring or ring_ended.
    kind       text        NOT NULL,
    -- What the push shows and links to: channel and message, or call.
    channel_id text,
    message_id uuid,
    call_id    text,
    -- Who caused it (the sender, the caller) and the text to show.
    actor      text,
    title      text        NOT NULL DEFAULT '',
    body       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS push_pending_user ON push_pending (user_id, id);
