-- 024: the writer's aggregate functions (add_event_stats, 006; add_segment_users, 023) plan their
-- statements once per session, with generic plans. They run in the statement that records each
-- batch, with arrays of another length every time; PL/pgSQL planned their statements afresh for
-- each of a session's first five calls (~0.5-1 ms a call for 100-row batches), and again whenever
-- a generic plan looked dearer than the average custom one. The plans (unnest, sort, upsert; a
-- hash join in add_segment_users) have the same shape for any length. The writer calls both on
-- empty arrays when it sets up a session (services/writer/pg/pg_sink.cc), which now leaves the
-- plans built for its first batch. Only the plan choice changes: same signatures, owner, grants,
-- results and errors. Idempotent.

ALTER FUNCTION ecomstream.add_event_stats(timestamptz[], text[], text[], bigint[], bigint[], numeric[])
  SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ecomstream.add_segment_users(text[], bigint[], bigint[], bigint[], numeric[], bigint[])
  SET plan_cache_mode = force_generic_plan;
