-- 007: the same rule for events.trace_id (32 lower-case hex digits, or NULL), checked without a
-- counted repetition. PostgreSQL's regex engine runs '^[0-9a-f]{32}$' through its backtracking
-- matcher: about 4 µs per row, a third of what a COPY of a row into events cost. A length test
-- plus '^[0-9a-f]+$' accepts exactly the same values for about a tenth of that. The constraint
-- keeps its name. Idempotent.
ALTER TABLE ecomstream.events
  DROP CONSTRAINT IF EXISTS events_trace_id_check,
  ADD CONSTRAINT events_trace_id_check CHECK (octet_length(trace_id) = 32 AND trace_id ~ '^[0-9a-f]+$');
