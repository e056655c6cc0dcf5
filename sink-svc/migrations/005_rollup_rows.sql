-- fleetpipe schema 5: the rollup step reads the written rows' values from its session table.
--
-- Until schema 4 a writer listed only the keys of the rows it inserted (telemetry_rollup_keys),
-- and telemetry_rollup_apply() looked every row up again in telemetry (an index probe and a
-- heap fetch per row, and its metrics read back from the stored jsonb): the largest part of the
-- rollup step's cost. Now the sink puts the values the rollups use into the session table
-- telemetry_rollup_rows as it writes the rows (the same COPY fields, or INSERT … RETURNING
-- them), so the step reads nothing back but the neighbours of late rows. The values are those
-- of the stored rows exactly: the same text through the same column types, or the stored row
-- itself.
--
-- telemetry_rollup_keys stays and still works: keys listed there are turned into rows from
-- telemetry first (step 0), so a sink from before this schema, still running during a rolling
-- upgrade, keeps its rollups exact.

CREATE OR REPLACE FUNCTION telemetry_rollup_session() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS telemetry_rollup_keys (
        device_id   text        NOT NULL,
        ts          timestamptz NOT NULL
    ) ON COMMIT DELETE ROWS;
    -- The columns of telemetry the rollups read, with telemetry's types.
    CREATE TEMP TABLE IF NOT EXISTS telemetry_rollup_rows (
        device_id   text        NOT NULL,
        ts          timestamptz NOT NULL,
        speed_kmh   real,
        ignition    boolean,
        site_id     text,
        site_name   text,
        metrics     jsonb
    ) ON COMMIT DELETE ROWS;
END $$;

-- As in schema 3, reading telemetry_rollup_rows (step 0 adds the keys listed the old way).
CREATE OR REPLACE FUNCTION telemetry_rollup_apply(OUT late_rows bigint, OUT rollup_rows bigint,
                                       OUT recomputed_rows bigint)
LANGUAGE plpgsql SET jit = off AS $$
#variable_conflict use_column
BEGIN
    -- 0. Rows listed by key only (a writer from before schema 5, or an ad-hoc session) get
    -- their values from the stored rows.
    IF to_regclass('pg_temp.telemetry_rollup_rows') IS NULL THEN
        PERFORM telemetry_rollup_session();
    END IF;
    INSERT INTO telemetry_rollup_rows (device_id, ts, speed_kmh, ignition, site_id, site_name,
                                       metrics)
    SELECT t.device_id, t.ts, t.speed_kmh, t.ignition, t.site_id, t.site_name, t.metrics
    FROM telemetry_rollup_keys k JOIN telemetry t ON t.device_id = k.device_id AND t.ts = k.ts;

    -- 1. Lock the batch's devices, in one order (no deadlock between writers). A device seen
    -- for the first time gets its row here; ON CONFLICT … WHERE false locks an existing row
    -- without writing it. Writers of the same device wait here for each other's COMMIT.
    INSERT INTO telemetry_rollup_devices AS d (device_id, last_ts)
    SELECT DISTINCT device_id COLLATE "C", '-infinity'::timestamptz
    FROM telemetry_rollup_rows ORDER BY 1
    ON CONFLICT (device_id) DO UPDATE SET last_ts = d.last_ts WHERE false;

    -- 2. A new statement, so a new snapshot: it sees every row committed by the writers waited
    -- for above.
    WITH
    -- The batch's devices with their newest row before this transaction and their late rows.
    dev AS MATERIALIZED (
        SELECT d.device_id, d.last_ts AS old_ts, d.last_ignition AS old_ign,
               d.last_engine_hours_h AS old_eh, d.last_odometer_m AS old_odo,
               count(*) FILTER (WHERE n.ts < d.last_ts) AS late
        FROM telemetry_rollup_rows n JOIN telemetry_rollup_devices d ON d.device_id = n.device_id
        GROUP BY d.device_id),
    -- The buckets of the late rows, and of the stored row after each of those buckets.
    lb AS MATERIALIZED (
        SELECT DISTINCT n.device_id, date_bin('1 hour', n.ts, timestamptz '2000-01-01 00:00Z')
                                         AS bucket
        FROM telemetry_rollup_rows n JOIN dev ON dev.device_id = n.device_id
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
               n.speed_kmh, n.ignition, n.site_id, n.site_name, n.eh, n.odo,
               lag(n.ts, 1, nullif(dev.old_ts, '-infinity')) OVER o AS p_ts,
               lag(n.ignition, 1, dev.old_ign) OVER o AS p_ign,
               lag(n.eh, 1, dev.old_eh) OVER o AS p_eh,
               lag(n.odo, 1, dev.old_odo) OVER o AS p_odo,
               lead(n.ts) OVER o IS NULL AS is_last
        FROM (SELECT r.device_id, r.ts, r.speed_kmh, r.ignition, r.site_id, r.site_name,
                     telemetry_metric(r.metrics, 'engine_hours_h') AS eh,
                     telemetry_metric(r.metrics, 'odometer_m') AS odo
              FROM telemetry_rollup_rows r) n
        JOIN dev ON dev.device_id = n.device_id
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

