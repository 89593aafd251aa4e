-- 020: redrive of dead letters (docs/redrive.md).
--
-- The file ledger keeps what re-parsing a stored raw row needs: the file's header (its column
-- names in file order) and its reference time (late and future windows). A dead letter redriven
-- into an event is marked, in the transaction that inserts the event, with when, under which
-- rules version and which event; one that still fails gets its new reasons and is counted in
-- redrive_attempts. Each redrive transaction is one row of the batch ledger with source
-- 'redrive' (file_id 'redrive:<run id>', rows numbered within the run), so
--   count(events)                     = sum(inserted) over ingest_batches (both sources)
--   live dead letters of a file        = ingest_files.dead_lettered - ingest_files.redriven
-- stay exact. Idempotent.

ALTER TABLE ecomstream.ingest_files ADD COLUMN IF NOT EXISTS header text;
ALTER TABLE ecomstream.ingest_files ADD COLUMN IF NOT EXISTS reference_time timestamptz;
ALTER TABLE ecomstream.ingest_files ADD COLUMN IF NOT EXISTS redriven bigint NOT NULL DEFAULT 0;

ALTER TABLE ecomstream.dead_letter_events ADD COLUMN IF NOT EXISTS redriven_at timestamptz;
ALTER TABLE ecomstream.dead_letter_events ADD COLUMN IF NOT EXISTS redriven_event_id uuid;
ALTER TABLE ecomstream.dead_letter_events ADD COLUMN IF NOT EXISTS redrive_rules_version text;
ALTER TABLE ecomstream.dead_letter_events ADD COLUMN IF NOT EXISTS redrive_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE ecomstream.dead_letter_events ADD COLUMN IF NOT EXISTS last_redrive_at timestamptz;
DO $$
BEGIN
  ALTER TABLE ecomstream.dead_letter_events ADD CONSTRAINT dead_letter_events_redriven_check
    CHECK ((redriven_at IS NULL) = (redriven_event_id IS NULL));
EXCEPTION WHEN duplicate_object THEN
  NULL;
END
$$;
-- Redrive lists the dead letters not redriven yet, in id order.
CREATE INDEX IF NOT EXISTS dead_letter_events_not_redriven_idx
  ON ecomstream.dead_letter_events (id) WHERE redriven_at IS NULL;

ALTER TABLE ecomstream.ingest_batches ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'file';
ALTER TABLE ecomstream.ingest_batches ADD COLUMN IF NOT EXISTS rules_version text;
DO $$
BEGIN
  ALTER TABLE ecomstream.ingest_batches ADD CONSTRAINT ingest_batches_source_check
    CHECK (source IN ('file', 'redrive') AND (source = 'file') = (file_id NOT LIKE 'redrive:%'));
EXCEPTION WHEN duplicate_object THEN
  NULL;
END
$$;

-- Redrive runs: what each reconsidered, loaded and left (from the batch ledger).
CREATE OR REPLACE VIEW ecomstream.v_redrive_runs AS
SELECT substr(file_id, length('redrive:') + 1) AS run_id, rules_version,
       min(received_at) AS started_at, max(committed_at) AS committed_at, count(*) AS batches,
       sum(rows)::bigint AS rows, sum(inserted)::bigint AS inserted, sum(unchanged)::bigint AS unchanged,
       sum(duplicates)::bigint AS already_redriven, sum(dead_lettered)::bigint AS still_failing
FROM ecomstream.ingest_batches
WHERE source = 'redrive'
GROUP BY file_id, rules_version;
ALTER VIEW ecomstream.v_redrive_runs OWNER TO ecomstream_owner;
GRANT SELECT ON ecomstream.v_redrive_runs TO ecomstream_analytics;

-- The writer records headers, lists dead letters, and marks or updates them on redrive.
GRANT INSERT (header, reference_time) ON ecomstream.ingest_files TO ecomstream_writer;
GRANT UPDATE (header, reference_time, redriven) ON ecomstream.ingest_files TO ecomstream_writer;
GRANT SELECT ON ecomstream.dead_letter_events TO ecomstream_writer;
GRANT UPDATE (reasons, detail, column_name, redriven_at, redriven_event_id, redrive_rules_version, redrive_attempts,
              last_redrive_at)
  ON ecomstream.dead_letter_events TO ecomstream_writer;
