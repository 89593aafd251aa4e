-- 003: views for analysts and dashboards. Hours and minutes are UTC.

-- Every purchase event.
CREATE OR REPLACE VIEW ecomstream.purchases AS
SELECT event_id, user_id, session_id, product_id, category, price, quantity, total_amount, event_time,
       user_segment, device_type, browser, geo_country, geo_city, referrer, campaign_id, late_arrival,
       source_file, ingested_at
FROM ecomstream.events
WHERE event_type = 'purchase';

-- Events, units and revenue per hour and event type (from the maintained aggregates).
CREATE OR REPLACE VIEW ecomstream.v_hourly_event_summary AS
SELECT hour, event_type, sum(events)::bigint AS events, sum(quantity)::bigint AS quantity,
       sum(revenue) AS revenue
FROM ecomstream.event_stats_hourly
GROUP BY hour, event_type;

-- The funnel per category: views, carts, purchases, units, revenue and conversion rates.
CREATE OR REPLACE VIEW ecomstream.v_category_performance AS
SELECT coalesce(category, '(none)') AS category,
       sum(events) FILTER (WHERE event_type = 'view')::bigint AS views,
       sum(events) FILTER (WHERE event_type = 'add_to_cart')::bigint AS add_to_carts,
       sum(events) FILTER (WHERE event_type = 'purchase')::bigint AS purchases,
       sum(quantity) FILTER (WHERE event_type = 'purchase')::bigint AS units_sold,
       coalesce(sum(revenue), 0) AS revenue,
       round(sum(events) FILTER (WHERE event_type = 'purchase')::numeric
             / nullif(sum(events) FILTER (WHERE event_type = 'view'), 0), 4) AS view_to_purchase_rate,
       round(sum(events) FILTER (WHERE event_type = 'purchase')::numeric
             / nullif(sum(events) FILTER (WHERE event_type = 'add_to_cart'), 0), 4) AS cart_to_purchase_rate
FROM ecomstream.event_stats_hourly
GROUP BY 1;

-- Users, activity and spend per user segment (NULL segment = 'unknown').
CREATE OR REPLACE VIEW ecomstream.v_user_segment_analysis AS
SELECT coalesce(user_segment, 'unknown') AS user_segment,
       count(DISTINCT user_id) AS users,
       count(*) AS events,
       count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
       count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase') AS buyers,
       coalesce(sum(total_amount) FILTER (WHERE event_type = 'purchase'), 0) AS revenue,
       round(avg(total_amount) FILTER (WHERE event_type = 'purchase'), 2) AS avg_order_value,
       round(count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase')::numeric
             / nullif(count(DISTINCT user_id), 0), 4) AS buyer_rate
FROM ecomstream.events
GROUP BY 1;

-- Data quality per hour of commit: where every row went, the dead-letter rate and the reasons.
CREATE OR REPLACE VIEW ecomstream.v_data_quality_dashboard AS
WITH per_hour AS (
  SELECT date_trunc('hour', committed_at, 'UTC') AS hour,
         count(DISTINCT file_id) AS files, count(*) AS batches,
         sum(rows)::bigint AS rows, sum(inserted)::bigint AS inserted, sum(updated)::bigint AS updated,
         sum(unchanged)::bigint AS unchanged, sum(duplicates)::bigint AS duplicates,
         sum(dead_lettered)::bigint AS dead_lettered
  FROM ecomstream.ingest_batches
  GROUP BY 1
), reasons AS (
  SELECT date_trunc('hour', b.committed_at, 'UTC') AS hour, r.key AS reason, sum(r.value::bigint) AS n
  FROM ecomstream.ingest_batches b, jsonb_each_text(b.reason_counts) AS r
  GROUP BY 1, 2
)
SELECT p.hour, p.files, p.batches, p.rows, p.inserted, p.updated, p.unchanged, p.duplicates,
       p.dead_lettered,
       round(p.dead_lettered::numeric / nullif(p.rows, 0), 4) AS dead_letter_rate,
       coalesce((SELECT jsonb_object_agg(r.reason, r.n ORDER BY r.reason) FROM reasons r WHERE r.hour = p.hour),
                '{}'::jsonb) AS reasons
FROM per_hour p;

-- End-to-end latency (file visible in the inbox -> batch committed) per minute of commit.
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
GROUP BY 1;
