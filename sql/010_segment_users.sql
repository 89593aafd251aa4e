-- 010: per (segment, user) totals, so v_user_segment_analysis reads one row per segment user
-- instead of scanning every event with count(DISTINCT user_id).
--
-- segment_users is kept equal to
--
--   SELECT coalesce(user_segment, 'unknown') AS user_segment, user_id, count(*) AS events,
--          count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
--          coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0) AS revenue,
--          count(total_amount) FILTER (WHERE event_type = 'purchase') AS priced_purchases
--   FROM ecomstream.events GROUP BY 1, 2;
--
-- so a segment's distinct users are its rows and its buyers the rows with purchases > 0.
-- segment_totals holds the per-segment sums of segment_users (users = its rows, buyers = its
-- rows with purchases), updated with it: a user row appearing or emptying moves users by one, so
-- v_user_segment_analysis reads one row per segment. Both are maintained like
-- event_stats_hourly (002, 006), in the transaction that changes events:
-- statement triggers with transition tables apply updates (an update that changes an event's
-- segment, user, type or amount moves it between rows) and deletes; inserts go through a trigger
-- too, except in the writer's transactions (ecomstream.writer_event_stats = 'on'), where the
-- writer sums the rows its COPY inserted (services/writer/event_stats.cc) and adds them with
-- add_segment_users in the statement that records the batch. Rows that drop to zero events are
-- deleted. Upserts go in key order so that concurrent writers lock rows in the same order.
-- Idempotent.

CREATE TABLE IF NOT EXISTS ecomstream.segment_users (
  user_segment     text NOT NULL,
  user_id          bigint NOT NULL,
  events           bigint NOT NULL,
  purchases        bigint NOT NULL,
  revenue          numeric(18,2) NOT NULL,
  priced_purchases bigint NOT NULL,
  PRIMARY KEY (user_segment, user_id)
) WITH (fillfactor = 70);  -- room on each page: a batch's updates stay HOT (no index entry)
ALTER TABLE ecomstream.segment_users OWNER TO ecomstream_owner;
REVOKE ALL ON ecomstream.segment_users FROM PUBLIC;
GRANT SELECT ON ecomstream.segment_users TO ecomstream_analytics;

CREATE TABLE IF NOT EXISTS ecomstream.segment_totals (
  user_segment     text PRIMARY KEY,
  users            bigint NOT NULL,
  buyers           bigint NOT NULL,
  events           bigint NOT NULL,
  purchases        bigint NOT NULL,
  revenue          numeric(18,2) NOT NULL,
  priced_purchases bigint NOT NULL
);
ALTER TABLE ecomstream.segment_totals OWNER TO ecomstream_owner;
REVOKE ALL ON ecomstream.segment_totals FROM PUBLIC;
GRANT SELECT ON ecomstream.segment_totals TO ecomstream_analytics;

-- Adds signed per (segment, user) changes (one element per key) to segment_users and their
-- effect to segment_totals; deletes the user rows left with no event. Not callable by the
-- services: the triggers below and add_segment_users use it. A user row's values after the
-- upsert minus the change are its values before, so users and buyers move exactly when a row
-- starts or stops having events or purchases (also when concurrent writers touch one row: the
-- upsert waits for the other's commit and returns the values it then wrote). The join of the
-- upserted rows with the changes is a hash join whatever the session says (the writer turns hash
-- joins off) and whatever the planner guesses about unnest: a nested loop over a batch's few
-- thousand users was ~100x slower.
CREATE OR REPLACE FUNCTION ecomstream.apply_segment_users(
  segments text[], user_ids bigint[], events bigint[], purchases bigint[], revenues numeric[],
  priced bigint[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_hashjoin = on SET enable_nestloop = off AS $$
BEGIN
  WITH d AS (
    SELECT * FROM unnest(segments, user_ids, events, purchases, revenues, priced)
      AS d(segment, user_id, events, purchases, revenue, priced)
  ), up AS (
    INSERT INTO ecomstream.segment_users AS s (user_segment, user_id, events, purchases, revenue, priced_purchases)
    SELECT d.segment, d.user_id, d.events, d.purchases, d.revenue, d.priced FROM d
    ORDER BY 1, 2
    ON CONFLICT (user_segment, user_id) DO UPDATE
      SET events = s.events + excluded.events,
          purchases = s.purchases + excluded.purchases,
          revenue = s.revenue + excluded.revenue,
          priced_purchases = s.priced_purchases + excluded.priced_purchases
    RETURNING s.user_segment, s.user_id, s.events, s.purchases
  )
  INSERT INTO ecomstream.segment_totals AS t (user_segment, users, buyers, events, purchases, revenue, priced_purchases)
  SELECT up.user_segment,
         sum(sign(up.events) - sign(up.events - d.events))::bigint,
         sum(sign(up.purchases) - sign(up.purchases - d.purchases))::bigint,
         sum(d.events)::bigint, sum(d.purchases)::bigint, sum(d.revenue), sum(d.priced)::bigint
  FROM up JOIN d ON d.segment = up.user_segment AND d.user_id = up.user_id
  GROUP BY 1
  ORDER BY 1
  ON CONFLICT (user_segment) DO UPDATE
    SET users = t.users + excluded.users,
        buyers = t.buyers + excluded.buyers,
        events = t.events + excluded.events,
        purchases = t.purchases + excluded.purchases,
        revenue = t.revenue + excluded.revenue,
        priced_purchases = t.priced_purchases + excluded.priced_purchases;
  IF EXISTS (SELECT 1 FROM unnest(events) AS n WHERE n < 0) THEN
    DELETE FROM ecomstream.segment_users s
    USING unnest(segments, user_ids) AS d(segment, user_id)
    WHERE s.user_segment = d.segment AND s.user_id = d.user_id AND s.events = 0;
  END IF;
END
$$;
ALTER FUNCTION ecomstream.apply_segment_users(text[], bigint[], bigint[], bigint[], numeric[], bigint[])
  OWNER TO ecomstream_owner;
REVOKE ALL ON FUNCTION ecomstream.apply_segment_users(text[], bigint[], bigint[], bigint[], numeric[], bigint[])
  FROM PUBLIC;

-- The writer's entry: what its COPY inserted, one element per (segment, user). Only additions.
CREATE OR REPLACE FUNCTION ecomstream.add_segment_users(
  segments text[], user_ids bigint[], events bigint[], purchases bigint[], revenues numeric[],
  priced bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM unnest(segments, events, purchases, revenues, priced) AS d(segment, events, purchases, revenue, priced)
             WHERE d.segment IS NULL OR d.events IS NULL OR d.events <= 0 OR d.purchases IS NULL OR d.purchases < 0
                OR d.purchases > d.events OR d.revenue IS NULL OR d.revenue < 0 OR d.priced IS NULL OR d.priced < 0
                OR d.priced > d.purchases) THEN
    RAISE EXCEPTION 'add_segment_users adds inserted events: every count must be positive and consistent';
  END IF;
  PERFORM ecomstream.apply_segment_users(segments, user_ids, events, purchases, revenues, priced);
  RETURN cardinality(events);
END
$$;
ALTER FUNCTION ecomstream.add_segment_users(text[], bigint[], bigint[], bigint[], numeric[], bigint[])
  OWNER TO ecomstream_owner;
REVOKE ALL ON FUNCTION ecomstream.add_segment_users(text[], bigint[], bigint[], bigint[], numeric[], bigint[])
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ecomstream.add_segment_users(text[], bigint[], bigint[], bigint[], numeric[], bigint[])
  TO ecomstream_writer;

-- One trigger function for the three events: old_rows subtract, new_rows add. The transition
-- tables a trigger does not have are declared away by the wrappers below.
CREATE OR REPLACE FUNCTION ecomstream.segment_users_on_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM ecomstream.apply_segment_users(array_agg(segment ORDER BY segment, user_id),
                                         array_agg(user_id ORDER BY segment, user_id),
                                         array_agg(events ORDER BY segment, user_id),
                                         array_agg(purchases ORDER BY segment, user_id),
                                         array_agg(revenue ORDER BY segment, user_id),
                                         array_agg(priced ORDER BY segment, user_id))
  FROM (
    SELECT coalesce(n.user_segment, 'unknown') AS segment, n.user_id, count(*) AS events,
           count(*) FILTER (WHERE n.event_type = 'purchase') AS purchases,
           coalesce(sum(n.total_amount) FILTER (WHERE n.event_type = 'purchase'), 0) AS revenue,
           count(n.total_amount) FILTER (WHERE n.event_type = 'purchase') AS priced
    FROM new_rows n
    GROUP BY 1, 2
  ) AS d
  HAVING count(*) > 0;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ecomstream.segment_users_on_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM ecomstream.apply_segment_users(array_agg(segment ORDER BY segment, user_id),
                                         array_agg(user_id ORDER BY segment, user_id),
                                         array_agg(events ORDER BY segment, user_id),
                                         array_agg(purchases ORDER BY segment, user_id),
                                         array_agg(revenue ORDER BY segment, user_id),
                                         array_agg(priced ORDER BY segment, user_id))
  FROM (
    SELECT segment, user_id, sum(events)::bigint AS events, sum(purchases)::bigint AS purchases,
           sum(revenue) AS revenue, sum(priced)::bigint AS priced
    FROM (
      SELECT coalesce(n.user_segment, 'unknown') AS segment, n.user_id, 1 AS events,
             (n.event_type = 'purchase')::int AS purchases,
             CASE WHEN n.event_type = 'purchase' THEN coalesce(n.total_amount, 0) ELSE 0 END AS revenue,
             (n.event_type = 'purchase' AND n.total_amount IS NOT NULL)::int AS priced
      FROM new_rows n
      UNION ALL
      SELECT coalesce(o.user_segment, 'unknown'), o.user_id, -1, -(o.event_type = 'purchase')::int,
             CASE WHEN o.event_type = 'purchase' THEN -coalesce(o.total_amount, 0) ELSE 0 END,
             -(o.event_type = 'purchase' AND o.total_amount IS NOT NULL)::int
      FROM old_rows o
    ) AS changes
    GROUP BY 1, 2
    HAVING sum(events) <> 0 OR sum(purchases) <> 0 OR sum(revenue) <> 0 OR sum(priced) <> 0
  ) AS d
  HAVING count(*) > 0;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ecomstream.segment_users_on_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM ecomstream.apply_segment_users(array_agg(segment ORDER BY segment, user_id),
                                         array_agg(user_id ORDER BY segment, user_id),
                                         array_agg(-events ORDER BY segment, user_id),
                                         array_agg(-purchases ORDER BY segment, user_id),
                                         array_agg(-revenue ORDER BY segment, user_id),
                                         array_agg(-priced ORDER BY segment, user_id))
  FROM (
    SELECT coalesce(o.user_segment, 'unknown') AS segment, o.user_id, count(*) AS events,
           count(*) FILTER (WHERE o.event_type = 'purchase') AS purchases,
           coalesce(sum(o.total_amount) FILTER (WHERE o.event_type = 'purchase'), 0) AS revenue,
           count(o.total_amount) FILTER (WHERE o.event_type = 'purchase') AS priced
    FROM old_rows o
    GROUP BY 1, 2
  ) AS d
  HAVING count(*) > 0;
  RETURN NULL;
END
$$;

ALTER FUNCTION ecomstream.segment_users_on_insert() OWNER TO ecomstream_owner;
ALTER FUNCTION ecomstream.segment_users_on_update() OWNER TO ecomstream_owner;
ALTER FUNCTION ecomstream.segment_users_on_delete() OWNER TO ecomstream_owner;
REVOKE ALL ON FUNCTION ecomstream.segment_users_on_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION ecomstream.segment_users_on_update() FROM PUBLIC;
REVOKE ALL ON FUNCTION ecomstream.segment_users_on_delete() FROM PUBLIC;

CREATE OR REPLACE TRIGGER segment_users_on_insert
  AFTER INSERT ON ecomstream.events
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT
  WHEN (current_setting('ecomstream.writer_event_stats', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION ecomstream.segment_users_on_insert();
CREATE OR REPLACE TRIGGER segment_users_on_update
  AFTER UPDATE ON ecomstream.events
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ecomstream.segment_users_on_update();
CREATE OR REPLACE TRIGGER segment_users_on_delete
  AFTER DELETE ON ecomstream.events
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ecomstream.segment_users_on_delete();

-- Backfill a database that had events before this migration (runs once: empty table only, in the
-- migration's transaction, which holds events still against concurrent writes).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ecomstream.segment_users) THEN
    LOCK TABLE ecomstream.events IN SHARE MODE;
    INSERT INTO ecomstream.segment_users (user_segment, user_id, events, purchases, revenue, priced_purchases)
    SELECT coalesce(user_segment, 'unknown'), user_id, count(*),
           count(*) FILTER (WHERE event_type = 'purchase'),
           coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0),
           count(total_amount) FILTER (WHERE event_type = 'purchase')
    FROM ecomstream.events
    GROUP BY 1, 2;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM ecomstream.segment_totals) THEN
    INSERT INTO ecomstream.segment_totals (user_segment, users, buyers, events, purchases, revenue, priced_purchases)
    SELECT user_segment, count(*), count(*) FILTER (WHERE purchases > 0), sum(events), sum(purchases),
           sum(revenue), sum(priced_purchases)
    FROM ecomstream.segment_users
    GROUP BY 1;
  END IF;
END
$$;

-- Same columns as before (003), now from segment_totals: one row per segment, not per event. A
-- segment whose events all moved away keeps a row of zeros there; it is not shown.
CREATE OR REPLACE VIEW ecomstream.v_user_segment_analysis AS
SELECT user_segment,
       users,
       events,
       purchases,
       buyers,
       revenue::numeric AS revenue,
       round(revenue / nullif(priced_purchases, 0), 2) AS avg_order_value,
       round(buyers::numeric / nullif(users, 0), 4) AS buyer_rate
FROM ecomstream.segment_totals
WHERE users > 0;
