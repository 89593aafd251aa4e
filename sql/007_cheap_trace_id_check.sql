-- 007: the same rule for events.trace_id (32 lower-case hex digits, or NULL), checked without a
-- counted repetition. PostgreSQL's regex engine handles '^[0-9a-f]{32}$' with its slower
-- matcher: inserting 500,000 rows with a trace id took 2.3-2.5 s under the old CHECK, 0.8 s
-- under this one and 0.35 s with none (INSERT ... SELECT, one backend). A length test plus
-- '^[0-9a-f]+$' accepts exactly the same values. The constraint keeps its name. Idempotent.
ALTER TABLE ecomstream.events
  DROP CONSTRAINT IF EXISTS events_trace_id_check,
  ADD CONSTRAINT events_trace_id_check CHECK (octet_length(trace_id) = 32 AND trace_id ~ '^[0-9a-f]+$');
