-- Core tables: users and the transactional outbox that background workers drain.
-- Written for PostgreSQL 15+ and CockroachDB alike: plain tables and indexes only.

CREATE TABLE IF NOT EXISTS users (
    id          text        PRIMARY KEY,
    name        text,
    image       text,
    data        jsonb,
    role        text        NOT NULL DEFAULT 'user',
    last_active timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- jobs is the outbox: a mutation writes its rows and the job that derives the
-- rest (fan-out, counters, events) in one transaction. Workers claim ready jobs
-- with FOR UPDATE SKIP LOCKED and delete them in the transaction that does the work.
CREATE TABLE IF NOT EXISTS jobs (
    id         uuid        PRIMARY KEY,
    kind       text        NOT NULL,
    payload    jsonb       NOT NULL,
    run_at     timestamptz NOT NULL DEFAULT now(),
    attempts   int         NOT NULL DEFAULT 0,
    last_error text,
    parked_at  timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (run_at) WHERE parked_at IS NULL;
