-- fleetpipe schema 3: event-time hourly rollups per device, maintained by the sink in the same
-- transaction as the rows and offsets, exact whatever the lateness.
--
-- The contract: telemetry_hourly always equals the reference query (view
-- telemetry_hourly_reference below) over the stored rows, floating-point columns within 1e-6
-- relative. A row's interval is the time since the device's previous row, "the device's previous
-- row" being the stored row with the greatest ts below it (in any bucket); an interval belongs
-- to the bucket (UTC hour) of its later row.
--
-- How the sink keeps it so (telemetry_rollup_apply): in its write transaction the sink records
-- the keys of the rows it really inserted in the session table telemetry_rollup_keys and then
-- calls telemetry_rollup_apply() once. A row newer than its device's newest stored row (the
-- normal case) only adds to its own bucket: its interval starts at the device's newest row,
-- kept in telemetry_rollup_devices, or at the previous row of the same batch. A late row (older
-- than its device's newest stored row) also changes the interval of the stored row that now
-- follows it, so its bucket and that row's are recomputed from the stored rows (an index range
-- scan of one device and one hour, plus the row before the hour). Nothing depends on how late a
-- row is, so there is no lateness limit.

CREATE TABLE telemetry_hourly (
    device_id       text             NOT NULL,
    bucket          timestamptz      NOT NULL, -- start of the UTC hour of ts
    samples         bigint           NOT NULL, -- rows of the device in the bucket
    first_ts        timestamptz      NOT NULL, -- earliest ts in the bucket
    last_ts         timestamptz      NOT NULL, -- latest ts in the bucket
    max_speed_kmh   real,
    engine_hours_h  double precision NOT NULL, -- sum of non-negative engine_hours_h increments
    distance_km     double precision NOT NULL, -- the same for odometer_m, in km
    ignition_on_s   double precision NOT NULL, -- seconds after rows with ignition on, gaps <= 10 min
    updated_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, bucket)
) WITH (fillfactor = 80);

-- The primary key serves "this machine, these hours"; buckets are written roughly in time order,
-- so a BRIN index serves "the whole fleet, these days" (dashboards) at almost no write cost.
CREATE INDEX telemetry_hourly_bucket_brin ON telemetry_hourly USING brin (bucket)
    WITH (pages_per_range = 32);

-- The value of a metric as the reference query reads it, (metrics->>name)::float8, but NULL
-- where that cast would fail (a string that is not a number, a boolean, an object), so that
-- odd input never makes the sink's transaction fail. Where the cast works the two agree.
CREATE FUNCTION telemetry_text_float8(v text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN v::double precision;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END $$;

CREATE FUNCTION telemetry_metric(m jsonb, name text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(m -> name)
               WHEN 'number' THEN (m ->> name)::double precision
               WHEN 'string' THEN telemetry_text_float8(m ->> name)
           END
$$;

-- The reference: what telemetry_hourly must equal. Used to build the table (migration, rebuild)
-- and to check it (SELECT … EXCEPT in both directions). ignition_on_s is numeric here (extract
-- returns numeric), double precision in the table.
CREATE VIEW telemetry_hourly_reference AS
WITH s AS (
    SELECT device_id, ts, speed_kmh,
           telemetry_metric(metrics, 'engine_hours_h') AS eh,
           telemetry_metric(metrics, 'odometer_m') AS odo,
           lag(ts) OVER w AS prev_ts, lag(ignition) OVER w AS prev_ign,
           lag(telemetry_metric(metrics, 'engine_hours_h')) OVER w AS prev_eh,
           lag(telemetry_metric(metrics, 'odometer_m')) OVER w AS prev_odo
    FROM telemetry WINDOW w AS (PARTITION BY device_id ORDER BY ts))
SELECT device_id, date_trunc('hour', ts, 'UTC') AS bucket, count(*) AS samples,
       min(ts) AS first_ts, max(ts) AS last_ts, max(speed_kmh) AS max_speed_kmh,
       coalesce(sum(eh - prev_eh) FILTER (WHERE eh >= prev_eh), 0) AS engine_hours_h,
       coalesce(sum(odo - prev_odo) FILTER (WHERE odo >= prev_odo), 0) / 1000.0 AS distance_km,
       coalesce(sum(extract(epoch FROM ts - prev_ts))
                FILTER (WHERE prev_ign AND ts - prev_ts <= interval '10 minutes'), 0)
           AS ignition_on_s
FROM s GROUP BY 1, 2;

-- Per device, its newest stored row (the start of the next in-order row's interval) and the
-- late rows it has had. Its row is also the device's lock: a writer locks the rows of the
-- devices in its batch before it reads their neighbours, so two sink replicas that briefly
-- write the same device (a rebalance) take turns and both stay exact.
CREATE TABLE telemetry_rollup_devices (
    device_id           text             PRIMARY KEY,
    last_ts             timestamptz      NOT NULL, -- '-infinity': no row stored yet
    last_ignition       boolean,
    last_engine_hours_h double precision,
    last_odometer_m     double precision,
    last_site_id        text,
    last_site_name      text,
    late_rows           bigint           NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

-- One row: whether telemetry_hourly and telemetry_rollup_devices account for every stored row.
-- A sink running with SINK_ROLLUPS=off clears it in each of its transactions; a sink with
-- rollups on finds it cleared when it connects and rebuilds both tables.
CREATE TABLE telemetry_rollup_state (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    valid       boolean     NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO telemetry_rollup_state (valid) VALUES (false);

-- Rebuilds telemetry_hourly and telemetry_rollup_devices from telemetry, unless the state says
-- they are valid and `force` is false. Returns the hourly rows written (0 when nothing was
-- done). Safe beside running sinks: the table locks wait for writers in their rollup step to
-- commit (the rebuild then sees their rows) and make later ones wait (they then add to the
-- rebuilt tables); a sink with rollups off takes the state row's table lock before it commits.
-- It reads the whole telemetry table once.
CREATE FUNCTION telemetry_rollup_rebuild(force boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    LOCK TABLE telemetry_rollup_state, telemetry_rollup_devices, telemetry_hourly
        IN SHARE ROW EXCLUSIVE MODE;
    IF NOT force AND (SELECT valid FROM telemetry_rollup_state) THEN
        RETURN 0;
    END IF;
    DELETE FROM telemetry_hourly;
    INSERT INTO telemetry_hourly (device_id, bucket, samples, first_ts, last_ts, max_speed_kmh,
                                  engine_hours_h, distance_km, ignition_on_s)
    SELECT device_id, bucket, samples, first_ts, last_ts, max_speed_kmh, engine_hours_h,
           distance_km, ignition_on_s
    FROM telemetry_hourly_reference;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM telemetry_rollup_devices;
    INSERT INTO telemetry_rollup_devices (device_id, last_ts, last_ignition, last_engine_hours_h,
                                          last_odometer_m, last_site_id, last_site_name)
    SELECT DISTINCT ON (device_id) device_id, ts, ignition,
           telemetry_metric(metrics, 'engine_hours_h'), telemetry_metric(metrics, 'odometer_m'),
           site_id, site_name
    FROM telemetry ORDER BY device_id, ts DESC;
    UPDATE telemetry_rollup_state SET valid = true, changed_at = now();
    RETURN n;
END $$;

-- The session table of the rows a transaction inserted into telemetry, by key. A writer creates
-- it once per session with telemetry_rollup_session() and fills it in its write transaction
-- (INSERT … RETURNING device_id, ts), each inserted row once. It empties itself at COMMIT and
-- ROLLBACK.
CREATE FUNCTION telemetry_rollup_session() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS telemetry_rollup_keys (
        device_id   text        NOT NULL,
        ts          timestamptz NOT NULL
    ) ON COMMIT DELETE ROWS;
END $$;

-- Applies the rows listed in the session's telemetry_rollup_keys to telemetry_hourly. Call it
-- once per transaction, after the rows are inserted and before COMMIT. Returns the rows that
-- were late, the hourly rows written and how many of those were recomputed from stored rows.
--
-- A row newer than its device's newest row (telemetry_rollup_devices.last_ts, advanced by every
-- writer under the device's lock) adds its interval to its bucket: from the previous such row
-- of the batch, the first from the device's newest row.
-- A late row changes its own bucket and, when it is the last row of that bucket, the bucket of
-- the next stored row: the bucket of the first stored row at or after the end of its own. Those
-- buckets are recomputed from the stored rows; appended rows that fall into them are left to
-- the recomputation. Buckets are date_bin('1 hour', ts, '2000-01-01 00:00Z'), which equals
-- date_trunc('hour', ts, 'UTC') for every ts and is cheaper. JIT is off: the estimates of the
-- session table are guesses, and compiling costs more than these small statements take.
CREATE FUNCTION telemetry_rollup_apply(OUT late_rows bigint, OUT rollup_rows bigint,
                                       OUT recomputed_rows bigint)
LANGUAGE plpgsql SET jit = off AS $$
#variable_conflict use_column
BEGIN
    -- 1. Lock the batch's devices, in one order (no deadlock between writers). A device seen
    -- for the first time gets its row here; ON CONFLICT … WHERE false locks an existing row
    -- without writing it. Writers of the same device wait here for each other's COMMIT.
    INSERT INTO telemetry_rollup_devices AS d (device_id, last_ts)
    SELECT DISTINCT device_id COLLATE "C", '-infinity'::timestamptz
    FROM telemetry_rollup_keys ORDER BY 1
    ON CONFLICT (device_id) DO UPDATE SET last_ts = d.last_ts WHERE false;

    -- 2. A new statement, so a new snapshot: it sees every row committed by the writers waited
    -- for above.
    WITH
    -- The batch's devices with their newest row before this transaction and their late rows.
    dev AS MATERIALIZED (
        SELECT d.device_id, d.last_ts AS old_ts, d.last_ignition AS old_ign,
               d.last_engine_hours_h AS old_eh, d.last_odometer_m AS old_odo,
               count(*) FILTER (WHERE n.ts < d.last_ts) AS late
        FROM telemetry_rollup_keys n JOIN telemetry_rollup_devices d ON d.device_id = n.device_id
        GROUP BY d.device_id),
    -- The buckets of the late rows, and of the stored row after each of those buckets.
    lb AS MATERIALIZED (
        SELECT DISTINCT n.device_id, date_bin('1 hour', n.ts, timestamptz '2000-01-01 00:00Z')
                                         AS bucket
        FROM telemetry_rollup_keys n JOIN dev ON dev.device_id = n.device_id
        WHERE dev.late > 0 AND n.ts < dev.old_ts),
    rb AS MATERIALIZED (
        SELECT device_id, bucket FROM lb
        UNION
        SELECT lb.device_id, date_bin('1 hour', s.ts, timestamptz '2000-01-01 00:00Z')
        FROM lb CROSS JOIN LATERAL (
            SELECT t.ts FROM telemetry t
            WHERE t.device_id = lb.device_id AND t.ts >= lb.bucket + interval '1 hour'
            ORDER BY t.ts LIMIT 1) s),
    -- The appended rows in order, each with its previous stored row: the previous appended row,
    -- the first one the device's newest row (lag's default).
    app AS MATERIALIZED (
        SELECT n.device_id, n.ts, date_bin('1 hour', n.ts, timestamptz '2000-01-01 00:00Z') AS bucket,
               r.speed_kmh, r.ignition, r.site_id, r.site_name, r.eh, r.odo,
               lag(n.ts, 1, nullif(dev.old_ts, '-infinity')) OVER o AS p_ts,
               lag(r.ignition, 1, dev.old_ign) OVER o AS p_ign,
               lag(r.eh, 1, dev.old_eh) OVER o AS p_eh,
               lag(r.odo, 1, dev.old_odo) OVER o AS p_odo,
               lead(n.ts) OVER o IS NULL AS is_last
        FROM telemetry_rollup_keys n
        JOIN dev ON dev.device_id = n.device_id
        CROSS JOIN LATERAL (
            SELECT t.speed_kmh, t.ignition, t.site_id, t.site_name,
                   telemetry_metric(t.metrics, 'engine_hours_h') AS eh,
                   telemetry_metric(t.metrics, 'odometer_m') AS odo
            FROM telemetry t WHERE t.device_id = n.device_id AND t.ts = n.ts LIMIT 1) r
        WHERE n.ts > dev.old_ts
        WINDOW o AS (PARTITION BY n.device_id COLLATE "C" ORDER BY n.ts)),
    delta AS (
        SELECT a.device_id, a.bucket, count(*) AS samples, min(a.ts) AS first_ts,
               max(a.ts) AS last_ts, max(a.speed_kmh) AS max_speed_kmh,
               coalesce(sum(a.eh - a.p_eh) FILTER (WHERE a.eh >= a.p_eh), 0) AS engine_hours_h,
               coalesce(sum(a.odo - a.p_odo) FILTER (WHERE a.odo >= a.p_odo), 0) / 1000.0
                   AS distance_km,
               coalesce(sum(extract(epoch FROM a.ts - a.p_ts)::double precision)
                        FILTER (WHERE a.p_ign AND a.ts - a.p_ts <= interval '10 minutes'), 0)
                   AS ignition_on_s
        FROM app a
        WHERE NOT EXISTS (SELECT 1 FROM rb WHERE rb.device_id = a.device_id
                                             AND rb.bucket = a.bucket)
        GROUP BY a.device_id, a.bucket),
    recomputed AS (
        SELECT rb.device_id, rb.bucket, x.*
        FROM rb CROSS JOIN LATERAL (
            SELECT count(*) AS samples, min(r.ts) AS first_ts, max(r.ts) AS last_ts,
                   max(r.speed_kmh) AS max_speed_kmh,
                   coalesce(sum(r.eh - r.p_eh) FILTER (WHERE r.eh >= r.p_eh), 0) AS engine_hours_h,
                   coalesce(sum(r.odo - r.p_odo) FILTER (WHERE r.odo >= r.p_odo), 0) / 1000.0
                       AS distance_km,
                   coalesce(sum(extract(epoch FROM r.ts - r.p_ts)::double precision)
                            FILTER (WHERE r.p_ign AND r.ts - r.p_ts <= interval '10 minutes'), 0)
                       AS ignition_on_s
            FROM (
                SELECT t.ts, t.speed_kmh,
                       telemetry_metric(t.metrics, 'engine_hours_h') AS eh,
                       telemetry_metric(t.metrics, 'odometer_m') AS odo,
                       lag(t.ts) OVER o AS p_ts, lag(t.ignition) OVER o AS p_ign,
                       lag(telemetry_metric(t.metrics, 'engine_hours_h')) OVER o AS p_eh,
                       lag(telemetry_metric(t.metrics, 'odometer_m')) OVER o AS p_odo
                FROM telemetry t
                WHERE t.device_id = rb.device_id
                  AND t.ts >= coalesce((SELECT max(t2.ts) FROM telemetry t2
                                        WHERE t2.device_id = rb.device_id AND t2.ts < rb.bucket),
                                       rb.bucket)
                  AND t.ts < rb.bucket + interval '1 hour'
                WINDOW o AS (ORDER BY t.ts)) r
            WHERE r.ts >= rb.bucket) x),
    put_recomputed AS (
        INSERT INTO telemetry_hourly AS h (device_id, bucket, samples, first_ts, last_ts,
                                           max_speed_kmh, engine_hours_h, distance_km,
                                           ignition_on_s, updated_at)
        SELECT device_id, bucket, samples, first_ts, last_ts, max_speed_kmh, engine_hours_h,
               distance_km, ignition_on_s, now()
        FROM recomputed
        ON CONFLICT (device_id, bucket) DO UPDATE SET
            samples = EXCLUDED.samples, first_ts = EXCLUDED.first_ts,
            last_ts = EXCLUDED.last_ts, max_speed_kmh = EXCLUDED.max_speed_kmh,
            engine_hours_h = EXCLUDED.engine_hours_h, distance_km = EXCLUDED.distance_km,
            ignition_on_s = EXCLUDED.ignition_on_s, updated_at = EXCLUDED.updated_at
        RETURNING 1),
    put_delta AS (
        INSERT INTO telemetry_hourly AS h (device_id, bucket, samples, first_ts, last_ts,
                                           max_speed_kmh, engine_hours_h, distance_km,
                                           ignition_on_s, updated_at)
        SELECT device_id, bucket, samples, first_ts, last_ts, max_speed_kmh, engine_hours_h,
               distance_km, ignition_on_s, now()
        FROM delta
        ON CONFLICT (device_id, bucket) DO UPDATE SET
            samples = h.samples + EXCLUDED.samples,
            first_ts = least(h.first_ts, EXCLUDED.first_ts),
            last_ts = greatest(h.last_ts, EXCLUDED.last_ts),
            max_speed_kmh = greatest(h.max_speed_kmh, EXCLUDED.max_speed_kmh),
            engine_hours_h = h.engine_hours_h + EXCLUDED.engine_hours_h,
            distance_km = h.distance_km + EXCLUDED.distance_km,
            ignition_on_s = h.ignition_on_s + EXCLUDED.ignition_on_s,
            updated_at = EXCLUDED.updated_at
        RETURNING 1),
    -- Each device's newest row (its last appended row, if any) and late count.
    put_devices AS (
        UPDATE telemetry_rollup_devices d SET
            last_ts = coalesce(a.ts, d.last_ts),
            last_ignition = CASE WHEN a.ts IS NULL THEN d.last_ignition ELSE a.ignition END,
            last_engine_hours_h = CASE WHEN a.ts IS NULL THEN d.last_engine_hours_h ELSE a.eh END,
            last_odometer_m = CASE WHEN a.ts IS NULL THEN d.last_odometer_m ELSE a.odo END,
            last_site_id = CASE WHEN a.ts IS NULL THEN d.last_site_id ELSE a.site_id END,
            last_site_name = CASE WHEN a.ts IS NULL THEN d.last_site_name ELSE a.site_name END,
            late_rows = d.late_rows + dev.late
        FROM dev LEFT JOIN app a ON a.device_id = dev.device_id AND a.is_last
        WHERE d.device_id = dev.device_id AND (a.ts IS NOT NULL OR dev.late > 0)
        RETURNING dev.late)
    SELECT (SELECT coalesce(sum(late), 0) FROM put_devices),
           (SELECT count(*) FROM put_recomputed) + (SELECT count(*) FROM put_delta),
           (SELECT count(*) FROM put_recomputed)
    INTO late_rows, rollup_rows, recomputed_rows;
END $$;

-- The hourly rollups summed per UTC day.
CREATE VIEW telemetry_daily AS
SELECT device_id, date_trunc('day', bucket, 'UTC') AS day, sum(samples)::bigint AS samples,
       min(first_ts) AS first_ts, max(last_ts) AS last_ts, max(max_speed_kmh) AS max_speed_kmh,
       sum(engine_hours_h) AS engine_hours_h, sum(distance_km) AS distance_km,
       sum(ignition_on_s) AS ignition_on_s, max(updated_at) AS updated_at
FROM telemetry_hourly
GROUP BY 1, 2;

-- The rows stored before this migration.
SELECT telemetry_rollup_rebuild(true);
