-- Attachments of messages and activities (issue 21): files, external links
-- and link previews, as a JSON array on the row they belong to, read with
-- the row at no extra statement (the Go type is store.Attachment). NULL
-- means none.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS attachments jsonb;
ALTER TABLE activities ADD COLUMN IF NOT EXISTS attachments jsonb;
