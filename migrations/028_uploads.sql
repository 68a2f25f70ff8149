-- Uploads (issue 21): files clients put straight into storage (local disk
-- or S3) with a signed URL, then complete (Brook checks the stored bytes)
-- and attach to one message or activity. The row is the file's truth: who
-- owns it, what the client claimed, what Brook found, where it is stored.
CREATE TABLE IF NOT EXISTS uploads (
    id           uuid        PRIMARY KEY,
    owner_id     text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename     text        NOT NULL,
    -- What the client claimed at createUpload (its kind's allowlist).
    content_type text        NOT NULL,
    size         bigint      NOT NULL,
    -- IMAGE, VIDEO, AUDIO or FILE: from the claimed type, confirmed by the
    -- sniffed one at completeUpload.
    kind         text        NOT NULL,
    -- PENDING until completeUpload checked the stored object, then READY.
    status       text        NOT NULL DEFAULT 'PENDING',
    storage_key  text        NOT NULL,
    -- What Brook found in the bytes (served as the Content-Type).
    mime_type    text,
    width        int,
    height       int,
    -- The thumbnail's storage key, once the thumbnail worker made it.
    thumb_key    text,
    -- What the file is attached to: 'message:<id>' or 'activity:<id>'.
    attached_to  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    attached_at  timestamptz
);
-- The orphan sweep: uploads never attached, oldest first.
CREATE INDEX IF NOT EXISTS uploads_unattached ON uploads (created_at) WHERE attached_at IS NULL;
-- A user's pending uploads (the createUpload limit).
CREATE INDEX IF NOT EXISTS uploads_owner_pending ON uploads (owner_id, created_at) WHERE status = 'PENDING';
-- The files of a message or activity being deleted.
CREATE INDEX IF NOT EXISTS uploads_attached_to ON uploads (attached_to) WHERE attached_to IS NOT NULL;
