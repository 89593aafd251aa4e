-- 004: roles. Roles are cluster-wide, so creating them tolerates another database (or another
-- writer) having created them first.
--
--   ecomstream_owner      owns the schema and its objects; migrations run as it (the migrator
--                         does SET ROLE ecomstream_owner when its login is a member).
--   ecomstream_writer     what services/writer needs and nothing more: column-level INSERT/UPDATE
--                         for the upsert, SELECT where the upsert compares or checks, no DELETE,
--                         no TRUNCATE, no DDL. Grant it to the writer's login role.
--   ecomstream_analytics  read-only: SELECT on every table and view.
-- All three are NOLOGIN group roles: GRANT them to login roles.

DO $$
DECLARE
  role_name text;
BEGIN
  FOREACH role_name IN ARRAY ARRAY['ecomstream_owner', 'ecomstream_writer', 'ecomstream_analytics'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created concurrently by a migration of another database
      END;
    END IF;
  END LOOP;
END
$$;

-- The migrating login becomes a member of the owner role and hands it every object.
DO $$
BEGIN
  IF NOT pg_catalog.pg_has_role(current_user, 'ecomstream_owner', 'MEMBER') THEN
    EXECUTE format('GRANT ecomstream_owner TO %I', current_user);
  END IF;
END
$$;
ALTER SCHEMA ecomstream OWNER TO ecomstream_owner;
ALTER TABLE ecomstream.events OWNER TO ecomstream_owner;
ALTER TABLE ecomstream.dead_letter_events OWNER TO ecomstream_owner;
ALTER TABLE ecomstream.ingest_files OWNER TO ecomstream_owner;
ALTER TABLE ecomstream.ingest_batches OWNER TO ecomstream_owner;
ALTER TABLE ecomstream.event_stats_hourly OWNER TO ecomstream_owner;
ALTER TABLE ecomstream.schema_migrations OWNER TO ecomstream_owner;
ALTER VIEW ecomstream.purchases OWNER TO ecomstream_owner;
ALTER VIEW ecomstream.v_hourly_event_summary OWNER TO ecomstream_owner;
ALTER VIEW ecomstream.v_category_performance OWNER TO ecomstream_owner;
ALTER VIEW ecomstream.v_user_segment_analysis OWNER TO ecomstream_owner;
ALTER VIEW ecomstream.v_data_quality_dashboard OWNER TO ecomstream_owner;
ALTER VIEW ecomstream.v_pipeline_latency OWNER TO ecomstream_owner;
ALTER FUNCTION ecomstream.event_stats_on_insert() OWNER TO ecomstream_owner;
ALTER FUNCTION ecomstream.event_stats_on_update() OWNER TO ecomstream_owner;
ALTER FUNCTION ecomstream.event_stats_on_delete() OWNER TO ecomstream_owner;

REVOKE ALL ON SCHEMA ecomstream FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA ecomstream FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ecomstream FROM PUBLIC;

-- Writer.
GRANT USAGE ON SCHEMA ecomstream TO ecomstream_writer;
GRANT SELECT (version) ON ecomstream.schema_migrations TO ecomstream_writer;
-- The upsert probes event_id, compares the stored content columns and reads EXCLUDED.* for
-- every column it sets (PostgreSQL checks SELECT on those too). Not ingested_at.
GRANT SELECT (event_id, user_id, session_id, event_type, product_id, category, price, quantity, total_amount,
              event_time, user_segment, device_type, browser, geo_country, geo_city, referrer, campaign_id,
              schema_version, late_arrival, source_file, trace_id)
  ON ecomstream.events TO ecomstream_writer;
GRANT INSERT (event_id, user_id, session_id, event_type, product_id, category, price, quantity, total_amount,
              event_time, user_segment, device_type, browser, geo_country, geo_city, referrer, campaign_id,
              schema_version, late_arrival, source_file, trace_id)
  ON ecomstream.events TO ecomstream_writer;
GRANT UPDATE (user_id, session_id, event_type, product_id, category, price, quantity, total_amount,
              event_time, user_segment, device_type, browser, geo_country, geo_city, referrer, campaign_id,
              schema_version, late_arrival, source_file, trace_id, ingested_at)
  ON ecomstream.events TO ecomstream_writer;
GRANT INSERT (file_id, file_name, row_number, line_number, raw, reasons, detail, column_name, file_drop_time,
              received_at, trace_id)
  ON ecomstream.dead_letter_events TO ecomstream_writer;
GRANT SELECT ON ecomstream.ingest_files TO ecomstream_writer;
GRANT INSERT (file_id, file_name, size_bytes, schema_version, expected_rows, state, claimant, claim_token,
              lease_ms, lease_expires_at, file_drop_time)
  ON ecomstream.ingest_files TO ecomstream_writer;
GRANT UPDATE (file_name, state, claimant, claim_token, lease_ms, lease_expires_at, claims, committed_through,
              total_rows, batches, rows, inserted, updated, unchanged, duplicates, dead_lettered, claimed_at,
              committed_at, updated_at)
  ON ecomstream.ingest_files TO ecomstream_writer;
GRANT SELECT ON ecomstream.ingest_batches TO ecomstream_writer;
GRANT INSERT ON ecomstream.ingest_batches TO ecomstream_writer;

-- Analytics: read everything, change nothing.
GRANT USAGE ON SCHEMA ecomstream TO ecomstream_analytics;
GRANT SELECT ON ALL TABLES IN SCHEMA ecomstream TO ecomstream_analytics;
