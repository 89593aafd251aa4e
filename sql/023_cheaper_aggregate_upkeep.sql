-- 023: less PostgreSQL work per row to keep event_stats_hourly, segment_users and segment_totals
-- exact (002, 006, 010). Same tables, same sums, same lock order; only functions change.
--
-- add_segment_users (the writer's entry, called in the statement that records each batch) is one
-- statement: the input arrays are unnested once, checked in that pass and upserted in key order,
-- and segment_totals is updated from the upsert's RETURNING joined with that same pass. Before, a
-- separate check pass, a nested call of apply_segment_users and its own check for negative
-- changes ran for every batch. Refused input still raises the same error and writes nothing.
--
-- The update triggers (event_stats_on_update, segment_users_on_update) pair each old row with the
-- new row of the same event_id and leave out the pairs whose aggregated columns are all unchanged:
-- their old row would subtract exactly what their new row adds. Before, every updated row was
-- subtracted and added again and the sums cancelled in a GROUP BY; an upsert of the writer that
-- changes a browser or a referrer went through the whole aggregation for nothing. Every other row
-- (a changed aggregated column, or an event_id changed by the update, which finds no partner) is
-- subtracted and added as before, so the aggregates stay equal to a fresh GROUP BY. Each row of
-- a transition table has a distinct event_id (the primary key), so no row is paired twice.
-- Idempotent.

CREATE OR REPLACE FUNCTION ecomstream.add_segment_users(
  segments text[], user_ids bigint[], events bigint[], purchases bigint[], revenues numeric[],
  priced bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_hashjoin = on SET enable_nestloop = off AS $$
DECLARE
  refused bigint;
BEGIN
  -- d: the elements, each with its verdict (arrays of unequal length pad with NULLs: refused; an
  -- amount must be a number of whole cents, as the columns store it). Refused elements are not
  -- upserted, and the exception below undoes the statement. users and buyers move exactly when a
  -- row starts having events or purchases: its values after the upsert minus the change are its
  -- values before (as in apply_segment_users, 010).
  WITH d AS MATERIALIZED (
    SELECT d.segment, d.user_id, d.events, d.purchases, d.revenue, d.priced,
           coalesce(d.segment IS NULL OR d.user_id IS NULL OR d.events <= 0 OR d.purchases < 0
                    OR d.purchases > d.events OR d.revenue < 0 OR d.revenue = 'NaN' OR d.revenue <> round(d.revenue, 2)
                    OR d.priced < 0 OR d.priced > d.purchases, true)
             AS refused
    FROM unnest(segments, user_ids, events, purchases, revenues, priced)
      AS d(segment, user_id, events, purchases, revenue, priced)
  ), up AS (
    INSERT INTO ecomstream.segment_users AS s (user_segment, user_id, events, purchases, revenue, priced_purchases)
    SELECT d.segment, d.user_id, d.events, d.purchases, d.revenue, d.priced FROM d
    WHERE NOT d.refused
    ORDER BY 1, 2
    ON CONFLICT (user_segment, user_id) DO UPDATE
      SET events = s.events + excluded.events,
          purchases = s.purchases + excluded.purchases,
          revenue = s.revenue + excluded.revenue,
          priced_purchases = s.priced_purchases + excluded.priced_purchases
    RETURNING s.user_segment, s.user_id, s.events, s.purchases
  ), totals AS (
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
          priced_purchases = t.priced_purchases + excluded.priced_purchases
  )
  SELECT count(*) FILTER (WHERE d.refused) INTO refused FROM d;
  IF refused > 0 THEN
    RAISE EXCEPTION 'add_segment_users adds inserted events: every count must be positive and consistent';
  END IF;
  RETURN cardinality(events);
END
$$;

-- The rows that changed an aggregated column (002's): the old version subtracts, the new adds.
CREATE OR REPLACE FUNCTION ecomstream.event_stats_on_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_hashjoin = on AS $$
DECLARE
  emptied timestamptz[];
BEGIN
  WITH moved AS MATERIALIZED (
    SELECT o.event_id IS NOT NULL AS had_old, o.event_time AS old_time, o.event_type AS old_type,
           o.category AS old_category, o.quantity AS old_quantity, o.total_amount AS old_amount,
           n.event_id IS NOT NULL AS has_new, n.event_time AS new_time, n.event_type AS new_type,
           n.category AS new_category, n.quantity AS new_quantity, n.total_amount AS new_amount
    FROM old_rows o FULL JOIN new_rows n ON n.event_id = o.event_id
    WHERE o.event_id IS NULL OR n.event_id IS NULL
       OR (o.event_time, o.event_type, o.category, o.quantity, o.total_amount)
          IS DISTINCT FROM (n.event_time, n.event_type, n.category, n.quantity, n.total_amount)
  ), changed AS (
    INSERT INTO ecomstream.event_stats_hourly AS s (hour, event_type, category, events, quantity, revenue)
    SELECT hour, event_type, category, sum(events), sum(quantity), sum(revenue)
    FROM (
      SELECT date_trunc('hour', m.new_time, 'UTC') AS hour, m.new_type AS event_type, m.new_category AS category,
             1 AS events, coalesce(m.new_quantity, 0) AS quantity,
             CASE WHEN m.new_type = 'purchase' THEN coalesce(m.new_amount, 0) ELSE 0 END AS revenue
      FROM moved m WHERE m.has_new
      UNION ALL
      SELECT date_trunc('hour', m.old_time, 'UTC'), m.old_type, m.old_category, -1, -coalesce(m.old_quantity, 0),
             CASE WHEN m.old_type = 'purchase' THEN -coalesce(m.old_amount, 0) ELSE 0 END
      FROM moved m WHERE m.had_old
    ) AS changes
    GROUP BY 1, 2, 3
    HAVING sum(events) <> 0 OR sum(quantity) <> 0 OR sum(revenue) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT ON CONSTRAINT event_stats_hourly_key DO UPDATE
      SET events = s.events + excluded.events,
          quantity = s.quantity + excluded.quantity,
          revenue = s.revenue + excluded.revenue,
          updated_at = now()
    RETURNING s.hour, s.events
  )
  SELECT array_agg(DISTINCT c.hour) FILTER (WHERE c.events = 0) INTO emptied FROM changed c;
  -- Groups left with no event go (a later statement: this one's upsert is not visible to itself).
  IF emptied IS NOT NULL THEN
    DELETE FROM ecomstream.event_stats_hourly s WHERE s.events = 0 AND s.hour = ANY (emptied);
  END IF;
  RETURN NULL;
END
$$;

-- The rows that changed an aggregated column (010's), as signed per (segment, user) changes.
-- apply_segment_users upserts them in key order; the six arrays only need to be aligned, which
-- aggregates over the same input rows are.
CREATE OR REPLACE FUNCTION ecomstream.segment_users_on_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET enable_hashjoin = on AS $$
BEGIN
  PERFORM ecomstream.apply_segment_users(array_agg(d.segment), array_agg(d.user_id), array_agg(d.events),
                                         array_agg(d.purchases), array_agg(d.revenue), array_agg(d.priced))
  FROM (
    WITH moved AS MATERIALIZED (
      SELECT o.event_id IS NOT NULL AS had_old, o.user_segment AS old_segment, o.user_id AS old_user,
             o.event_type AS old_type, o.total_amount AS old_amount,
             n.event_id IS NOT NULL AS has_new, n.user_segment AS new_segment, n.user_id AS new_user,
             n.event_type AS new_type, n.total_amount AS new_amount
      FROM old_rows o FULL JOIN new_rows n ON n.event_id = o.event_id
      WHERE o.event_id IS NULL OR n.event_id IS NULL
         OR (o.user_segment, o.user_id, o.event_type, o.total_amount)
            IS DISTINCT FROM (n.user_segment, n.user_id, n.event_type, n.total_amount)
    )
    SELECT segment, user_id, sum(events)::bigint AS events, sum(purchases)::bigint AS purchases,
           sum(revenue) AS revenue, sum(priced)::bigint AS priced
    FROM (
      SELECT coalesce(m.new_segment, 'unknown') AS segment, m.new_user AS user_id, 1 AS events,
             (m.new_type = 'purchase')::int AS purchases,
             CASE WHEN m.new_type = 'purchase' THEN coalesce(m.new_amount, 0) ELSE 0 END AS revenue,
             (m.new_type = 'purchase' AND m.new_amount IS NOT NULL)::int AS priced
      FROM moved m WHERE m.has_new
      UNION ALL
      SELECT coalesce(m.old_segment, 'unknown'), m.old_user, -1, -(m.old_type = 'purchase')::int,
             CASE WHEN m.old_type = 'purchase' THEN -coalesce(m.old_amount, 0) ELSE 0 END,
             -(m.old_type = 'purchase' AND m.old_amount IS NOT NULL)::int
      FROM moved m WHERE m.had_old
    ) AS changes
    GROUP BY 1, 2
    HAVING sum(events) <> 0 OR sum(purchases) <> 0 OR sum(revenue) <> 0 OR sum(priced) <> 0
  ) AS d
  HAVING count(*) > 0;
  RETURN NULL;
END
$$;
