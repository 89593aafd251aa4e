-- 005: the writer no longer reads EXCLUDED.* (pg_sink applies changes to stored events with a
-- plain UPDATE), so it loses SELECT on the columns only that needed. Idempotent.
REVOKE SELECT (schema_version, late_arrival, source_file, trace_id) ON ecomstream.events FROM ecomstream_writer;
