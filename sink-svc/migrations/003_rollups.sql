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
-- follows it, so that row's bucket is recomputed from the stored rows (an index range scan of
-- one device and one hour, plus the row before the hour). Nothing depends on how late a row
-- is, so there is no lateness limit.

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
);

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
);

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

-- Applies the rows this transaction inserted, listed in the session's telemetry_rollup_keys
-- (device_id, ts; each key once), to telemetry_hourly. Call it once per transaction, after the
-- rows are inserted and before COMMIT. Returns the rows that were late, the hourly rows written
-- and how many of those were recomputed from the stored rows.
CREATE FUNCTION telemetry_rollup_apply(OUT late_rows bigint, OUT rollup_rows bigint,
                                       OUT recomputed_rows bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- 1. Lock the batch's devices, in one order (no deadlock between writers). A device seen
    -- for the first time gets its row here; ON CONFLICT … WHERE false locks an existing row
    -- without writing it. Writers of the same device wait here for each other's COMMIT.
    INSERT INTO telemetry_rollup_devices AS d (device_id, last_ts)
    SELECT DISTINCT device_id, '-infinity'::timestamptz FROM telemetry_rollup_keys ORDER BY 1
    ON CONFLICT (device_id) DO UPDATE SET last_ts = d.last_ts WHERE false;

    -- 2. A new statement, so a new snapshot: it sees every row committed by the writers waited
    -- for above.
    WITH
    -- The new rows with what the rollup reads of them, and their device's newest row before.
    k AS MATERIALIZED (
        SELECT t.device_id, t.ts, t.speed_kmh, t.ignition, t.site_id, t.site_name,
               telemetry_metric(t.metrics, 'engine_hours_h') AS eh,
               telemetry_metric(t.metrics, 'odometer_m') AS odo,
               d.last_ts AS old_ts, d.last_ignition AS old_ign, d.last_engine_hours_h AS old_eh,
               d.last_odometer_m AS old_odo
        FROM telemetry_rollup_keys n
        JOIN telemetry t ON t.device_id = n.device_id AND t.ts = n.ts
        JOIN telemetry_rollup_devices d ON d.device_id = n.device_id),
    -- Each new row beside the previous and next new row of its device.
    w AS MATERIALIZED (
        SELECT k.*,
               lag(ts) OVER dw AS l_ts, lag(ignition) OVER dw AS l_ign, lag(eh) OVER dw AS l_eh,
               lag(odo) OVER dw AS l_odo, lead(ts) OVER dw AS n_ts
        FROM k WINDOW dw AS (PARTITION BY device_id ORDER BY ts)),
    -- Late rows only: the stored row that follows each (one index probe).
    late AS MATERIALIZED (
        SELECT w.device_id, w.ts, w.n_ts, s.ts AS s_ts,
               lag(s.ts) OVER (PARTITION BY w.device_id ORDER BY w.ts) AS l_s_ts
        FROM w CROSS JOIN LATERAL (
            SELECT t.ts FROM telemetry t
            WHERE t.device_id = w.device_id AND t.ts > w.ts ORDER BY t.ts LIMIT 1) s
        WHERE w.ts < w.old_ts),
    -- Each new row with its previous stored row. A row newer than the device's newest row
    -- follows the previous new row when that is newer too, otherwise the newest row. A late
    -- row follows the previous new row when that one's next row is this one, otherwise an old
    -- row found by an index probe.
    c AS (
        SELECT w.device_id, w.ts, date_trunc('hour', w.ts, 'UTC') AS bucket, w.speed_kmh,
               w.eh, w.odo, p.p_ts, p.p_ign, p.p_eh, p.p_odo
        FROM w
        LEFT JOIN late l ON l.device_id = w.device_id AND l.ts = w.ts
        LEFT JOIN LATERAL (
            SELECT t.ts AS o_ts, t.ignition AS o_ign,
                   telemetry_metric(t.metrics, 'engine_hours_h') AS o_eh,
                   telemetry_metric(t.metrics, 'odometer_m') AS o_odo
            FROM telemetry t
            WHERE w.ts < w.old_ts AND l.l_s_ts IS DISTINCT FROM w.ts
              AND t.device_id = w.device_id AND t.ts < w.ts
            ORDER BY t.ts DESC LIMIT 1) o ON true
        CROSS JOIN LATERAL (
            SELECT CASE WHEN w.ts > w.old_ts THEN w.l_ts > w.old_ts
                        ELSE l.l_s_ts = w.ts END AS follows_new) f
        CROSS JOIN LATERAL (
            SELECT CASE WHEN f.follows_new THEN w.l_ts
                        WHEN w.ts > w.old_ts THEN nullif(w.old_ts, '-infinity') ELSE o.o_ts END
                       AS p_ts,
                   CASE WHEN f.follows_new THEN w.l_ign
                        WHEN w.ts > w.old_ts THEN w.old_ign ELSE o.o_ign END AS p_ign,
                   CASE WHEN f.follows_new THEN w.l_eh
                        WHEN w.ts > w.old_ts THEN w.old_eh ELSE o.o_eh END AS p_eh,
                   CASE WHEN f.follows_new THEN w.l_odo
                        WHEN w.ts > w.old_ts THEN w.old_odo ELSE o.o_odo END AS p_odo) p),
    -- Buckets whose stored rows changed interval: those of the old rows that now follow a new
    -- row. They are recomputed; every other touched bucket only gains its new rows.
    rb AS (
        SELECT DISTINCT device_id, date_trunc('hour', s_ts, 'UTC') AS bucket
        FROM late WHERE s_ts IS DISTINCT FROM n_ts),
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
    delta AS (
        SELECT c.device_id, c.bucket, count(*) AS samples, min(c.ts) AS first_ts,
               max(c.ts) AS last_ts, max(c.speed_kmh) AS max_speed_kmh,
               coalesce(sum(c.eh - c.p_eh) FILTER (WHERE c.eh >= c.p_eh), 0) AS engine_hours_h,
               coalesce(sum(c.odo - c.p_odo) FILTER (WHERE c.odo >= c.p_odo), 0) / 1000.0
                   AS distance_km,
               coalesce(sum(extract(epoch FROM c.ts - c.p_ts)::double precision)
                        FILTER (WHERE c.p_ign AND c.ts - c.p_ts <= interval '10 minutes'), 0)
                   AS ignition_on_s
        FROM c
        WHERE NOT EXISTS (SELECT 1 FROM rb WHERE rb.device_id = c.device_id
                                             AND rb.bucket = c.bucket)
        GROUP BY c.device_id, c.bucket),
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
    -- The devices' newest rows and late counts after this transaction.
    put_devices AS (
        UPDATE telemetry_rollup_devices d SET
            last_ts = greatest(d.last_ts, coalesce(nd.ts, d.last_ts)),
            last_ignition = CASE WHEN nd.ts > d.last_ts THEN nd.ignition ELSE d.last_ignition END,
            last_engine_hours_h = CASE WHEN nd.ts > d.last_ts THEN nd.eh
                                       ELSE d.last_engine_hours_h END,
            last_odometer_m = CASE WHEN nd.ts > d.last_ts THEN nd.odo ELSE d.last_odometer_m END,
            last_site_id = CASE WHEN nd.ts > d.last_ts THEN nd.site_id ELSE d.last_site_id END,
            last_site_name = CASE WHEN nd.ts > d.last_ts THEN nd.site_name
                                  ELSE d.last_site_name END,
            late_rows = d.late_rows + nd.late
        FROM (SELECT DISTINCT ON (device_id) device_id, ts, ignition, eh, odo, site_id, site_name,
                     count(*) FILTER (WHERE ts < old_ts) OVER (PARTITION BY device_id) AS late
              FROM k ORDER BY device_id, ts DESC) nd
        WHERE d.device_id = nd.device_id
        RETURNING 1)
    SELECT (SELECT count(*) FROM k WHERE k.ts < k.old_ts),
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
