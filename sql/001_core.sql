-- 001: the ecomstream schema's core tables: events, dead letters and the two ledgers.
--
-- Conventions: every time is timestamptz (UTC on the wire); money is numeric with 2 decimals
-- (integer cents on the wire); reasons are RejectReason names, lower case, without the prefix.
-- Idempotent: every statement can run again on a database that already has it.

CREATE SCHEMA IF NOT EXISTS ecomstream;

-- One row per distinct event_id. The writer inserts new ids and updates an id only when its
-- content changes (see services/writer/pg_sink.cc); event_stats_hourly follows every change.
CREATE TABLE IF NOT EXISTS ecomstream.events (
  event_id       uuid PRIMARY KEY,
  user_id        bigint NOT NULL,
  session_id     uuid,
  event_type     text NOT NULL,
  product_id     bigint,
  category       text,
  price          numeric(12,2),
  quantity       integer,
  total_amount   numeric(14,2),
  event_time     timestamptz NOT NULL,
  user_segment   text,
  device_type    text,
  browser        text,
  geo_country    text,
  geo_city       text,
  referrer       text,
  campaign_id    text,
  schema_version smallint NOT NULL,
  late_arrival   boolean NOT NULL DEFAULT false,
  source_file    text,
  trace_id       text,
  ingested_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT events_event_type_check CHECK (
    event_type IN ('view', 'search', 'add_to_cart', 'remove_from_cart', 'wishlist', 'purchase')),
  CONSTRAINT events_user_id_check CHECK (user_id >= 0),
  CONSTRAINT events_product_id_check CHECK (product_id > 0),
  CONSTRAINT events_price_check CHECK (price >= 0),
  CONSTRAINT events_quantity_check CHECK (quantity >= 0),
  CONSTRAINT events_total_amount_check CHECK (total_amount >= 0),
  CONSTRAINT events_geo_country_check CHECK (geo_country ~ '^[A-Z]{2}$'),
  CONSTRAINT events_user_segment_check CHECK (
    user_segment IN ('new', 'returning', 'premium', 'inactive', 'at_risk')),
  -- Far outside any plausible clock: garbage that survived parsing (or int64 extremes).
  CONSTRAINT events_event_time_check CHECK (event_time >= '1970-01-01' AND event_time < '2200-01-01'),
  CONSTRAINT events_schema_version_check CHECK (schema_version BETWEEN 1 AND 3),
  CONSTRAINT events_trace_id_check CHECK (trace_id ~ '^[0-9a-f]{32}$')
);
-- Time ranges (hourly summary, purchases, late-event analysis) and per-user lookups.
CREATE INDEX IF NOT EXISTS events_event_time_idx ON ecomstream.events (event_time);
CREATE INDEX IF NOT EXISTS events_user_id_idx ON ecomstream.events (user_id);

-- Rows the processor (or the database) rejected, stored byte-exact with why.
CREATE TABLE IF NOT EXISTS ecomstream.dead_letter_events (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file_id        text NOT NULL,
  file_name      text NOT NULL,
  row_number     bigint NOT NULL,
  line_number    bigint,
  raw            bytea NOT NULL,
  reasons        text[] NOT NULL,
  detail         text,
  column_name    text,
  file_drop_time timestamptz,
  received_at    timestamptz NOT NULL,
  trace_id       text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT dead_letter_events_reasons_check CHECK (cardinality(reasons) > 0),
  -- A row of a file is dead-lettered at most once (a replayed batch is skipped by the ledger).
  CONSTRAINT dead_letter_events_file_row_key UNIQUE (file_id, row_number)
);
CREATE INDEX IF NOT EXISTS dead_letter_events_created_at_idx ON ecomstream.dead_letter_events (created_at);

-- The file ledger: one row per file content (file_id = "sha256:<hex>"). A processor claims a
-- file with a lease; each committed batch extends it; committed_through is the last contiguous
-- committed row, where a new claimant resumes.
CREATE TABLE IF NOT EXISTS ecomstream.ingest_files (
  file_id           text PRIMARY KEY,
  file_name         text NOT NULL,
  size_bytes        bigint NOT NULL DEFAULT 0,
  schema_version    smallint,
  expected_rows     bigint,
  state             text NOT NULL,
  claimant          text NOT NULL,
  claim_token       uuid NOT NULL,
  lease_ms          bigint NOT NULL,
  lease_expires_at  timestamptz NOT NULL,
  claims            integer NOT NULL DEFAULT 1,
  committed_through bigint NOT NULL DEFAULT 0,
  total_rows        bigint,
  batches           integer NOT NULL DEFAULT 0,
  rows              bigint NOT NULL DEFAULT 0,
  inserted          bigint NOT NULL DEFAULT 0,
  updated           bigint NOT NULL DEFAULT 0,
  unchanged         bigint NOT NULL DEFAULT 0,
  duplicates        bigint NOT NULL DEFAULT 0,
  dead_lettered     bigint NOT NULL DEFAULT 0,
  file_drop_time    timestamptz,
  first_claimed_at  timestamptz NOT NULL DEFAULT now(),
  claimed_at        timestamptz NOT NULL DEFAULT now(),
  committed_at      timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ingest_files_state_check CHECK (state IN ('claimed', 'committed')),
  CONSTRAINT ingest_files_committed_check CHECK ((state = 'committed') = (committed_at IS NOT NULL)),
  CONSTRAINT ingest_files_file_id_check CHECK (file_id ~ '^sha256:[0-9a-f]{64}$')
);
CREATE INDEX IF NOT EXISTS ingest_files_state_idx ON ecomstream.ingest_files (state, lease_expires_at);

-- The batch ledger: one row per committed batch, keyed by (file_id, first_row). Its counts obey
-- rows = inserted + updated + unchanged + duplicates + dead_lettered.
CREATE TABLE IF NOT EXISTS ecomstream.ingest_batches (
  file_id        text NOT NULL,
  first_row      bigint NOT NULL,
  last_row       bigint NOT NULL,
  file_name      text NOT NULL,
  last_batch     boolean NOT NULL,
  rows           bigint NOT NULL,
  inserted       bigint NOT NULL,
  updated        bigint NOT NULL,
  unchanged      bigint NOT NULL,
  duplicates     bigint NOT NULL,
  dead_lettered  bigint NOT NULL,
  reason_counts  jsonb NOT NULL DEFAULT '{}',
  claimant       text,
  file_drop_time timestamptz,
  read_time      timestamptz,
  sent_time      timestamptz,
  received_at    timestamptz NOT NULL,
  committed_at   timestamptz NOT NULL,
  trace_id       text,
  PRIMARY KEY (file_id, first_row),
  CONSTRAINT ingest_batches_rows_check CHECK (
    rows = last_row - first_row + 1 AND
    rows = inserted + updated + unchanged + duplicates + dead_lettered)
);
CREATE INDEX IF NOT EXISTS ingest_batches_committed_at_idx ON ecomstream.ingest_batches (committed_at);
