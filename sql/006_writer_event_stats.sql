-- 006: the writer adds the rows it COPYs into events to event_stats_hourly itself.
--
-- The insert trigger of 002 captures every inserted row in a transition table and groups them
-- again: about 10% of the cost of the writer's COPY. The writer has the rows in hand, so it sends
-- the per-(hour, event type, category) sums of what its COPY inserted to add_event_stats, in
-- the statement that records the batch (services/writer/pg_sink.cc, event_stats.cc). Its
-- transactions set ecomstream.writer_event_stats = 'on' (locally), which skips the insert trigger;
-- every other insert, and every update and delete (the writer's included), still goes through
-- the triggers of 002, so the table stays equal to a fresh GROUP BY over events. Idempotent.

CREATE OR REPLACE FUNCTION ecomstream.add_event_stats(
  hours timestamptz[], event_types text[], categories text[], events bigint[], quantities bigint[],
  revenues numeric[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM unnest(events) AS n WHERE n IS NULL OR n <= 0) THEN
    RAISE EXCEPTION 'add_event_stats adds inserted events: every count must be positive';
  END IF;
  INSERT INTO ecomstream.event_stats_hourly AS s (hour, event_type, category, events, quantity, revenue)
  SELECT date_trunc('hour', d.hour, 'UTC'), d.event_type, d.category, d.events, d.quantity, d.revenue
  FROM unnest(hours, event_types, categories, events, quantities, revenues)
    AS d(hour, event_type, category, events, quantity, revenue)
  ORDER BY 1, 2, 3
  ON CONFLICT ON CONSTRAINT event_stats_hourly_key DO UPDATE
    SET events = s.events + excluded.events,
        quantity = s.quantity + excluded.quantity,
        revenue = s.revenue + excluded.revenue,
        updated_at = now();
  RETURN cardinality(events);
END
$$;
ALTER FUNCTION ecomstream.add_event_stats(timestamptz[], text[], text[], bigint[], bigint[], numeric[])
  OWNER TO ecomstream_owner;
REVOKE ALL ON FUNCTION ecomstream.add_event_stats(timestamptz[], text[], text[], bigint[], bigint[], numeric[])
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ecomstream.add_event_stats(timestamptz[], text[], text[], bigint[], bigint[], numeric[])
  TO ecomstream_writer;

CREATE OR REPLACE TRIGGER event_stats_on_insert
  AFTER INSERT ON ecomstream.events
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT
  WHEN (current_setting('ecomstream.writer_event_stats', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION ecomstream.event_stats_on_insert();
