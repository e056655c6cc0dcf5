-- fleetpipe schema 1: one row per device observation, exactly once by (device_id, ts).
CREATE TABLE telemetry (
    device_id            text             NOT NULL,
    ts                   timestamptz      NOT NULL,
    received_at          timestamptz,
    stored_at            timestamptz      NOT NULL DEFAULT now(),
    format               text,
    priority             smallint,
    event_io             integer,
    lat                  double precision,
    lon                  double precision,
    alt_m                real,
    heading_deg          real,
    speed_kmh            real,
    satellites           smallint,
    ignition             boolean,
    enrichment_status    text,
    site_id              text,
    site_name            text,
    address              text,
    road                 text,
    city                 text,
    postcode             text,
    country              text,
    country_code         text,
    asset_customer       text,
    asset_oem            text,
    asset_model          text,
    asset_serial_number  text,
    asset_machine_type   text,
    metrics              jsonb,
    io                   jsonb,
    PRIMARY KEY (device_id, ts)
);

-- The primary key serves "this device, this time range". Rows arrive roughly in time order,
-- so a BRIN index serves "everything in the last hour" at almost no write cost.
CREATE INDEX telemetry_ts_brin ON telemetry USING brin (ts) WITH (pages_per_range = 32);

-- Where each sink consumer group stands in each partition: written in the same transaction as
-- the rows, read back on partition assignment. next_offset only moves forward.
CREATE TABLE fleetpipe_offsets (
    consumer_group  text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    next_offset     bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Last known state per device, for dashboards and "where is machine X" questions.
CREATE VIEW telemetry_latest AS
SELECT DISTINCT ON (device_id) *
FROM telemetry
ORDER BY device_id, ts DESC;
