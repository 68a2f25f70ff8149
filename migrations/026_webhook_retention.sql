-- Webhook deliveries retention (issue 21): a periodic job deletes DELIVERED
-- deliveries older than BROOK_WEBHOOK_RETENTION, oldest first, in batches;
-- this index finds them without reading the rest of the table.
CREATE INDEX IF NOT EXISTS webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE status = 'DELIVERED';
