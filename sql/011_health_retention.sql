-- 011: operations. One settings table holds every threshold and retention period; the health
-- verdict, the dashboard windows and the retention job read it. Idempotent.
--
--   ecomstream.pipeline_settings   name -> value (change a value with UPDATE, as the owner)
--   ecomstream.v_pipeline_health   HEALTHY / DEGRADED / NO_DATA, the reasons and the figures
--   ecomstream.apply_retention()   deletes expired ledger rows and dead letters (run it daily)
--
-- v_pipeline_latency and v_data_quality_dashboard now read a bounded window of the batch ledger
-- (its committed_at index), not every batch ever committed.

CREATE TABLE IF NOT EXISTS ecomstream.pipeline_settings (
  name        text PRIMARY KEY,
  value       numeric NOT NULL,
  description text NOT NULL,
  CONSTRAINT pipeline_settings_value_check CHECK (value >= 0)
);
ALTER TABLE ecomstream.pipeline_settings OWNER TO ecomstream_owner;
REVOKE ALL ON ecomstream.pipeline_settings FROM PUBLIC;
GRANT SELECT ON ecomstream.pipeline_settings TO ecomstream_analytics;

-- Defaults; a value changed by an operator is kept when this runs again.
INSERT INTO ecomstream.pipeline_settings (name, value, description) VALUES
  ('health_window_minutes', 15, 'v_pipeline_health looks at the batches committed in this many minutes'),
  ('max_dead_letter_rate', 0.05, 'DEGRADED when more than this share of the window''s rows are dead letters (validity below 95%)'),
  ('max_reason_rate', 0.10, 'DEGRADED when one reject reason is more than this share of the window''s rows'),
  ('max_p99_latency_seconds', 5, 'DEGRADED when the window''s p99 file drop -> commit latency is above this'),
  ('stalled_after_seconds', 120, 'DEGRADED (stalled) when a file is unfinished and nothing committed for this long'),
  ('dashboard_window_hours', 168, 'v_data_quality_dashboard and v_pipeline_latency read this many hours of batches'),
  ('batch_retention_days', 14, 'apply_retention deletes batch ledger rows of committed files older than this'),
  ('dead_letter_retention_days', 30, 'apply_retention deletes dead letters older than this'),
  ('file_retention_days', 90, 'apply_retention deletes file ledger rows committed longer ago than this, once no batch or dead letter of the file is left')
ON CONFLICT (name) DO NOTHING;

-- A setting's value; an unknown name is an error, not a silent NULL.
CREATE OR REPLACE FUNCTION ecomstream.setting(setting_name text) RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result numeric;
BEGIN
  SELECT s.value INTO result FROM ecomstream.pipeline_settings s WHERE s.name = setting_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown pipeline setting "%"', setting_name;
  END IF;
  RETURN result;
END
$$;
ALTER FUNCTION ecomstream.setting(text) OWNER TO ecomstream_owner;
REVOKE ALL ON FUNCTION ecomstream.setting(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ecomstream.setting(text) TO ecomstream_analytics;

-- Unfinished files are found by state (partial index: the ledger's few claimed rows).
CREATE INDEX IF NOT EXISTS ingest_files_claimed_idx ON ecomstream.ingest_files (claimed_at)
  WHERE state = 'claimed';

-- Data quality per hour of commit, over the last dashboard_window_hours.
CREATE OR REPLACE VIEW ecomstream.v_data_quality_dashboard AS
WITH recent AS (
  SELECT * FROM ecomstream.ingest_batches
  WHERE committed_at >= now() - ecomstream.setting('dashboard_window_hours') * interval '1 hour'
), per_hour AS (
  SELECT date_trunc('hour', committed_at, 'UTC') AS hour,
         count(DISTINCT file_id) AS files, count(*) AS batches,
         sum(rows)::bigint AS rows, sum(inserted)::bigint AS inserted, sum(updated)::bigint AS updated,
         sum(unchanged)::bigint AS unchanged, sum(duplicates)::bigint AS duplicates,
         sum(dead_lettered)::bigint AS dead_lettered
  FROM recent
  GROUP BY 1
), reasons AS (
  SELECT date_trunc('hour', b.committed_at, 'UTC') AS hour, r.key AS reason, sum(r.value::bigint) AS n
  FROM recent b, jsonb_each_text(b.reason_counts) AS r
  GROUP BY 1, 2
)
SELECT p.hour, p.files, p.batches, p.rows, p.inserted, p.updated, p.unchanged, p.duplicates,
       p.dead_lettered,
       round(p.dead_lettered::numeric / nullif(p.rows, 0), 4) AS dead_letter_rate,
       coalesce((SELECT jsonb_object_agg(r.reason, r.n ORDER BY r.reason) FROM reasons r WHERE r.hour = p.hour),
                '{}'::jsonb) AS reasons
FROM per_hour p;

-- End-to-end latency per minute of commit, over the last dashboard_window_hours.
CREATE OR REPLACE VIEW ecomstream.v_pipeline_latency AS
SELECT date_trunc('minute', committed_at, 'UTC') AS minute,
       count(*) AS batches,
       sum(rows)::bigint AS rows,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_drop_time)) AS p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_drop_time)) AS p95_seconds,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_drop_time)) AS p99_seconds,
       max(extract(epoch FROM committed_at - file_drop_time)) AS max_seconds
FROM ecomstream.ingest_batches
WHERE file_drop_time IS NOT NULL
  AND committed_at >= now() - ecomstream.setting('dashboard_window_hours') * interval '1 hour'
GROUP BY 1;

-- The verdict over the last health_window_minutes:
--   NO_DATA   no batch committed in the window and no file unfinished (nothing arrives);
--   DEGRADED  one reason or more (reasons, one sentence each): dead-letter rate, one reject
--             reason, p99 latency above their thresholds, or stalled (a file is unfinished and
--             nothing committed for stalled_after_seconds);
--   HEALTHY   otherwise.
-- The figures are the window's; thresholds are pipeline_settings'.
CREATE OR REPLACE VIEW ecomstream.v_pipeline_health AS
WITH settings AS (
  SELECT ecomstream.setting('health_window_minutes') AS window_minutes,
         ecomstream.setting('max_dead_letter_rate') AS max_dead_letter_rate,
         ecomstream.setting('max_reason_rate') AS max_reason_rate,
         ecomstream.setting('max_p99_latency_seconds') AS max_p99_latency_seconds,
         ecomstream.setting('stalled_after_seconds') AS stalled_after_seconds
), recent AS (
  SELECT b.* FROM ecomstream.ingest_batches b, settings s
  WHERE b.committed_at >= now() - s.window_minutes * interval '1 minute'
), totals AS (
  SELECT count(*) AS batches, coalesce(sum(rows), 0)::bigint AS rows,
         coalesce(sum(dead_lettered), 0)::bigint AS dead_lettered,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - file_drop_time))
           FILTER (WHERE file_drop_time IS NOT NULL) AS p99_latency_seconds
  FROM recent
), top_reason AS (
  SELECT r.key AS reason, sum(r.value::bigint) AS n
  FROM recent b, jsonb_each_text(b.reason_counts) AS r
  GROUP BY 1
  ORDER BY 2 DESC, 1
  LIMIT 1
), unfinished AS (
  SELECT count(*) AS files, min(claimed_at) AS oldest_claimed_at
  FROM ecomstream.ingest_files WHERE state = 'claimed'
), last_commit AS (
  SELECT max(committed_at) AS at FROM ecomstream.ingest_batches
), figures AS (
  SELECT s.*, t.batches, t.rows, t.dead_lettered,
         round(t.dead_lettered::numeric / nullif(t.rows, 0), 4) AS dead_letter_rate,
         tr.reason AS top_reason, round(tr.n::numeric / nullif(t.rows, 0), 4) AS top_reason_rate,
         round(t.p99_latency_seconds::numeric, 3) AS p99_latency_seconds,
         u.files AS unfinished_files, u.oldest_claimed_at, l.at AS last_commit_at
  FROM settings s CROSS JOIN totals t CROSS JOIN unfinished u CROSS JOIN last_commit l
  LEFT JOIN top_reason tr ON true
), checks AS (
  SELECT f.*, array_remove(ARRAY[
           CASE WHEN f.dead_letter_rate > f.max_dead_letter_rate
                THEN format('dead-letter rate %s above %s', f.dead_letter_rate, f.max_dead_letter_rate) END,
           CASE WHEN f.top_reason_rate > f.max_reason_rate
                THEN format('reason %s at %s of rows, above %s', f.top_reason, f.top_reason_rate, f.max_reason_rate) END,
           CASE WHEN f.p99_latency_seconds > f.max_p99_latency_seconds
                THEN format('p99 latency %s s above %s s', f.p99_latency_seconds, f.max_p99_latency_seconds) END,
           CASE WHEN f.unfinished_files > 0
                 AND coalesce(f.last_commit_at, f.oldest_claimed_at)
                     < now() - f.stalled_after_seconds * interval '1 second'
                 AND f.oldest_claimed_at < now() - f.stalled_after_seconds * interval '1 second'
                THEN format('stalled: %s unfinished files and no commit for %s s', f.unfinished_files,
                            f.stalled_after_seconds) END
         ], NULL) AS problems
  FROM figures f
)
SELECT CASE WHEN cardinality(c.problems) > 0 THEN 'DEGRADED'
            WHEN c.batches = 0 AND c.unfinished_files = 0 THEN 'NO_DATA'
            ELSE 'HEALTHY' END AS verdict,
       CASE WHEN cardinality(c.problems) > 0 THEN c.problems
            WHEN c.batches = 0 AND c.unfinished_files = 0
              THEN ARRAY[format('no batch committed in the last %s minutes and no file unfinished', c.window_minutes)]
            ELSE ARRAY[]::text[] END AS reasons,
       now() - c.window_minutes * interval '1 minute' AS window_start,
       c.batches, c.rows, c.dead_lettered, c.dead_letter_rate, c.top_reason, c.top_reason_rate,
       c.p99_latency_seconds, c.unfinished_files, c.oldest_claimed_at, c.last_commit_at,
       c.max_dead_letter_rate, c.max_reason_rate, c.max_p99_latency_seconds, c.stalled_after_seconds
FROM checks c;

-- Retention. Deletes, as of `as_of`:
--   batch ledger rows of committed files committed before as_of - batch_retention_days;
--   dead letters created before as_of - dead_letter_retention_days;
--   file ledger rows committed before as_of - file_retention_days with no batch or dead letter
--   of the file left.
-- Never touches an unfinished (claimed) file or its batches: a resume needs committed_through
-- and the replay check needs its batches. A file re-dropped after its batches expired is still
-- known (already committed); one re-dropped after its file row expired is a new file: its rows
-- are read again, stored events count as unchanged, its dead letters are stored again.
-- Returns the rows deleted per table. Run it as the owner (cron, pg_cron) or grant EXECUTE.
CREATE OR REPLACE FUNCTION ecomstream.apply_retention(as_of timestamptz DEFAULT now())
RETURNS TABLE (table_name text, deleted bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM ecomstream.ingest_batches b
  USING ecomstream.ingest_files f
  WHERE b.file_id = f.file_id AND f.state = 'committed'
    AND b.committed_at < as_of - ecomstream.setting('batch_retention_days') * interval '1 day';
  GET DIAGNOSTICS n = ROW_COUNT;
  table_name := 'ingest_batches'; deleted := n; RETURN NEXT;

  DELETE FROM ecomstream.dead_letter_events d
  WHERE d.created_at < as_of - ecomstream.setting('dead_letter_retention_days') * interval '1 day'
    AND NOT EXISTS (SELECT 1 FROM ecomstream.ingest_files f WHERE f.file_id = d.file_id AND f.state = 'claimed');
  GET DIAGNOSTICS n = ROW_COUNT;
  table_name := 'dead_letter_events'; deleted := n; RETURN NEXT;

  DELETE FROM ecomstream.ingest_files f
  WHERE f.state = 'committed'
    AND f.committed_at < as_of - ecomstream.setting('file_retention_days') * interval '1 day'
    AND NOT EXISTS (SELECT 1 FROM ecomstream.ingest_batches b WHERE b.file_id = f.file_id)
    AND NOT EXISTS (SELECT 1 FROM ecomstream.dead_letter_events d WHERE d.file_id = f.file_id);
  GET DIAGNOSTICS n = ROW_COUNT;
  table_name := 'ingest_files'; deleted := n; RETURN NEXT;
END
$$;
ALTER FUNCTION ecomstream.apply_retention(timestamptz) OWNER TO ecomstream_owner;
REVOKE ALL ON FUNCTION ecomstream.apply_retention(timestamptz) FROM PUBLIC;

ALTER VIEW ecomstream.v_pipeline_health OWNER TO ecomstream_owner;
GRANT SELECT ON ecomstream.v_pipeline_health TO ecomstream_analytics;
GRANT SELECT ON ecomstream.v_user_segment_analysis TO ecomstream_analytics;
