-- stored_at is when the row was written, not when its transaction began: with batches, now()
-- would make rows look stored up to a batch earlier than they were (it feeds latency figures).
ALTER TABLE telemetry ALTER COLUMN stored_at SET DEFAULT clock_timestamp();
