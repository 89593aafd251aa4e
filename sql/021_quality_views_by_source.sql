-- 021: the quality dashboard and the health verdict describe what files brought in. A redrive
-- (020) records its transactions in the batch ledger with source 'redrive'; counted with the
-- file batches they would make a redrive run a file, add redriven rows to an hour's totals and
-- count their still-failing rows as new dead letters. ecomstream.v_redrive_runs shows redrives.
-- Same columns as in 011, so CREATE OR REPLACE keeps owners and grants.

CREATE OR REPLACE VIEW ecomstream.v_data_quality_dashboard AS
WITH recent AS (
  SELECT * FROM ecomstream.ingest_batches
  WHERE committed_at >= now() - ecomstream.setting('dashboard_window_hours') * interval '1 hour'
    AND source = 'file'
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

CREATE OR REPLACE VIEW ecomstream.v_pipeline_health AS
WITH settings AS (
  SELECT ecomstream.setting('health_window_minutes') AS window_minutes,
         ecomstream.setting('max_dead_letter_rate') AS max_dead_letter_rate,
         ecomstream.setting('max_reason_rate') AS max_reason_rate,
         ecomstream.setting('max_p99_latency_seconds') AS max_p99_latency_seconds,
         ecomstream.setting('stalled_after_seconds') AS stalled_after_seconds
), recent AS (
  SELECT b.* FROM ecomstream.ingest_batches b, settings s
  WHERE b.committed_at >= now() - s.window_minutes * interval '1 minute' AND b.source = 'file'
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
  SELECT max(committed_at) AS at FROM ecomstream.ingest_batches WHERE source = 'file'
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
