-- Rankings: named orders for ranked feed pages (activities(ranking:)).
-- formula is the text an admin gave; the feeds product compiles it into
-- SQL on read. version grows with every change, so a cursor made under
-- one formula is refused under the next instead of paging a new order.
-- The built-in ranking `popular` has no row until an admin replaces it.
CREATE TABLE IF NOT EXISTS rankings (
    id         text        PRIMARY KEY,
    formula    text        NOT NULL,
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
