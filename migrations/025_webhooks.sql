-- Webhooks (issue 21): endpoints admins register, and the deliveries of
-- events to them. A delivery row is written in the transaction of the
-- change (or of the change's own outbox job), so it is as durable as the
-- change; the delivery worker claims due rows with a lease, POSTs them and
-- records the outcome. The rows are the queue and the admins' view at once.
CREATE TABLE IF NOT EXISTS webhooks (
    id         text        PRIMARY KEY,
    url        text        NOT NULL,
    -- Event types delivered; '*' delivers every type.
    events     text[]      NOT NULL,
    secret     text        NOT NULL,
    active     boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id           uuid        PRIMARY KEY,
    webhook_id   text        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- Deliveries of one webhook with the same key (a channel, a feed, a
    -- call) go out one at a time, in (occurred_at, id) order.
    order_key    text        NOT NULL,
    event_type   text        NOT NULL,
    -- The exact bytes signed and sent (jsonb would reorder them).
    body         text        NOT NULL,
    -- PENDING (due or waiting its retry), DELIVERED, FAILED (its last
    -- attempt failed; it retries), PARKED (too many attempts).
    status       text        NOT NULL DEFAULT 'PENDING',
    attempts     int         NOT NULL DEFAULT 0,
    occurred_at  timestamptz NOT NULL,
    next_at      timestamptz NOT NULL DEFAULT now(),
    -- Set while a worker holds the delivery (its HTTP request in flight).
    locked_until timestamptz,
    last_error   text,
    last_status  int,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
-- Due deliveries, and the heads of each webhook's keys.
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status IN ('PENDING', 'FAILED');
CREATE INDEX IF NOT EXISTS webhook_deliveries_key ON webhook_deliveries (webhook_id, order_key, occurred_at, id)
    WHERE status IN ('PENDING', 'FAILED');
-- An admin's list of one webhook's deliveries, newest first.
CREATE INDEX IF NOT EXISTS webhook_deliveries_list ON webhook_deliveries (webhook_id, status, id DESC);
