-- Tracing (issue 23): the W3C trace context (traceparent, tracestate) of
-- the request or job that wrote an outbox job, so the worker that runs it,
-- on any node, continues that trace. Columns rather than keys in the
-- payload: handlers decode the payload into their own types and never see
-- tracing, and the columns stay NULL (no bytes) when tracing is off.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS trace_parent text;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS trace_state text;
