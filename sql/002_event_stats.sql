-- 002: hourly aggregates, kept equal to a fresh GROUP BY over ecomstream.events.
--
--   SELECT date_trunc('hour', event_time, 'UTC') AS hour, event_type, category,
--          count(*) AS events, coalesce(sum(quantity), 0) AS quantity,
--          coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0) AS revenue
--   FROM ecomstream.events GROUP BY 1, 2, 3;
--
-- Statement-level triggers with transition tables apply exactly what changed: an insert adds, an
-- update subtracts the old row and adds the new one (so it moves counts between hours or
-- categories), a delete subtracts. The transition tables hold the versions each statement really
-- replaced, so this stays exact when several writers upsert the same event_id concurrently.
-- Groups that drop to zero events are deleted. Upserts go in key order so that concurrent
-- writers lock aggregate rows in the same order.

CREATE TABLE IF NOT EXISTS ecomstream.event_stats_hourly (
  hour       timestamptz NOT NULL,
  event_type text NOT NULL,
  category   text,
  events     bigint NOT NULL,
  quantity   bigint NOT NULL,
  revenue    numeric(18,2) NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT event_stats_hourly_key UNIQUE NULLS NOT DISTINCT (hour, event_type, category)
);

CREATE OR REPLACE FUNCTION ecomstream.event_stats_on_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ecomstream.event_stats_hourly AS s (hour, event_type, category, events, quantity, revenue)
  SELECT date_trunc('hour', n.event_time, 'UTC'), n.event_type, n.category, count(*),
         coalesce(sum(n.quantity), 0),
         coalesce(sum(n.total_amount) FILTER (WHERE n.event_type = 'purchase'), 0)
  FROM new_rows n
  GROUP BY 1, 2, 3
  ORDER BY 1, 2, 3
  ON CONFLICT ON CONSTRAINT event_stats_hourly_key DO UPDATE
    SET events = s.events + excluded.events,
        quantity = s.quantity + excluded.quantity,
        revenue = s.revenue + excluded.revenue,
        updated_at = now();
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ecomstream.event_stats_on_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ecomstream.event_stats_hourly AS s (hour, event_type, category, events, quantity, revenue)
  SELECT hour, event_type, category, sum(events), sum(quantity), sum(revenue)
  FROM (
    SELECT date_trunc('hour', n.event_time, 'UTC') AS hour, n.event_type, n.category, 1 AS events,
           coalesce(n.quantity, 0) AS quantity,
           CASE WHEN n.event_type = 'purchase' THEN coalesce(n.total_amount, 0) ELSE 0 END AS revenue
    FROM new_rows n
    UNION ALL
    SELECT date_trunc('hour', o.event_time, 'UTC'), o.event_type, o.category, -1,
           -coalesce(o.quantity, 0),
           CASE WHEN o.event_type = 'purchase' THEN -coalesce(o.total_amount, 0) ELSE 0 END
    FROM old_rows o
  ) AS changes
  GROUP BY 1, 2, 3
  HAVING sum(events) <> 0 OR sum(quantity) <> 0 OR sum(revenue) <> 0
  ORDER BY 1, 2, 3
  ON CONFLICT ON CONSTRAINT event_stats_hourly_key DO UPDATE
    SET events = s.events + excluded.events,
        quantity = s.quantity + excluded.quantity,
        revenue = s.revenue + excluded.revenue,
        updated_at = now();
  DELETE FROM ecomstream.event_stats_hourly s
  WHERE s.events = 0
    AND s.hour IN (SELECT DISTINCT date_trunc('hour', o.event_time, 'UTC') FROM old_rows o);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ecomstream.event_stats_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE ecomstream.event_stats_hourly s
  SET events = s.events - d.events, quantity = s.quantity - d.quantity,
      revenue = s.revenue - d.revenue, updated_at = now()
  FROM (
    SELECT date_trunc('hour', o.event_time, 'UTC') AS hour, o.event_type, o.category, count(*) AS events,
           coalesce(sum(o.quantity), 0) AS quantity,
           coalesce(sum(o.total_amount) FILTER (WHERE o.event_type = 'purchase'), 0) AS revenue
    FROM old_rows o
    GROUP BY 1, 2, 3
  ) AS d
  WHERE s.hour = d.hour AND s.event_type = d.event_type AND s.category IS NOT DISTINCT FROM d.category;
  DELETE FROM ecomstream.event_stats_hourly s
  WHERE s.events = 0
    AND s.hour IN (SELECT DISTINCT date_trunc('hour', o.event_time, 'UTC') FROM old_rows o);
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER event_stats_on_insert
  AFTER INSERT ON ecomstream.events
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ecomstream.event_stats_on_insert();
CREATE OR REPLACE TRIGGER event_stats_on_update
  AFTER UPDATE ON ecomstream.events
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ecomstream.event_stats_on_update();
CREATE OR REPLACE TRIGGER event_stats_on_delete
  AFTER DELETE ON ecomstream.events
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ecomstream.event_stats_on_delete();
