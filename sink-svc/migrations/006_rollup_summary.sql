-- fleetpipe schema 6: the rollup step takes a batch's summary instead of its rows.
--
-- Until schema 5 a writer COPYed the values of every row it inserted into the session table
-- telemetry_rollup_rows and telemetry_rollup_apply() ordered and aggregated them in SQL: a
-- window over every row of the batch, the largest part of a batch's cost after the COPY of the
-- rows themselves. Yet in the normal case a device's rows only extend it (each newer than its
-- newest stored row), and then all the step needs of the batch is, per device, its first and
-- last row and, per device and hour, what the intervals between the batch's own rows add up to.
-- A batch of 5,000 rows from 50 machines is about 50 device rows and 100 hour rows, which the
-- sink computes as it writes the rows.
--
-- telemetry_rollup_summary_apply() takes that summary as arrays (one element per device, one per
-- device and hour), locks the batch's devices as telemetry_rollup_apply() does, and applies the
-- devices whose first row is newer than their newest stored row: the interval from that stored
-- row to the first row goes to the first row's hour, the rest is added as it is. Every other
-- device of the summary (one with a late row, or one the sink marked by leaving its first ts
-- NULL: a metric it cannot read the way the database does) is left untouched and returned; the
-- writer then hands those devices' rows to telemetry_rollup_rows and calls
-- telemetry_rollup_apply() in the same transaction, which treats them exactly as before. The
-- devices' locks are already held then, so two writers cannot deadlock between the two calls.
--
-- The summary's values are those of the stored rows: timestamps in the text the rows were
-- COPYed with, metrics as shortest round-trip doubles (what the jsonb holds), the hour's
-- highest speed as the text of the row that has it (cast to real as the column does), interval
-- sums in milliseconds (exact).
CREATE FUNCTION telemetry_rollup_summary_apply(
    dev_id text[], dev_first_ts timestamptz[],
    dev_first_eh double precision[], dev_first_odo double precision[],
    dev_last_ts timestamptz[], dev_last_ign boolean[], dev_last_eh double precision[],
    dev_last_odo double precision[], dev_last_site_id text[], dev_last_site_name text[],
    b_dev text[], b_bucket timestamptz[], b_samples bigint[], b_first_ts timestamptz[],
    b_last_ts timestamptz[], b_max_speed real[], b_eh double precision[],
    b_odo double precision[], b_ign_ms bigint[],
    OUT rollup_rows bigint, OUT late_devices text[])
LANGUAGE plpgsql SET jit = off AS $$
#variable_conflict use_column
BEGIN
    -- 1. Lock every device of the batch, in one order (as telemetry_rollup_apply does).
    INSERT INTO telemetry_rollup_devices AS d (device_id, last_ts)
    SELECT DISTINCT x COLLATE "C", '-infinity'::timestamptz FROM unnest(dev_id) x ORDER BY 1
    ON CONFLICT (device_id) DO UPDATE SET last_ts = d.last_ts WHERE false;

    -- 2. A new statement, so a new snapshot that sees the writers waited for above.
    WITH
    s AS (
        SELECT * FROM unnest(dev_id, dev_first_ts, dev_first_eh, dev_first_odo,
                             dev_last_ts, dev_last_ign, dev_last_eh, dev_last_odo,
                             dev_last_site_id, dev_last_site_name)
            AS s(device_id, first_ts, first_eh, first_odo, last_ts, last_ign,
                 last_eh, last_odo, last_site_id, last_site_name)),
    dev AS MATERIALIZED (
        SELECT s.*, d.last_ts AS old_ts, d.last_ignition AS old_ign,
               d.last_engine_hours_h AS old_eh, d.last_odometer_m AS old_odo,
               s.first_ts IS NOT NULL AND s.first_ts > d.last_ts AS extends
        FROM s JOIN telemetry_rollup_devices d ON d.device_id = s.device_id),
    -- The interval from each extending device's newest stored row to its first row, which
    -- belongs to the first row's hour. None for a device without a stored row.
    head AS (
        SELECT device_id, date_bin('1 hour', first_ts, timestamptz '2000-01-01 00:00Z') AS bucket,
               CASE WHEN first_eh >= old_eh THEN first_eh - old_eh ELSE 0 END AS eh,
               CASE WHEN first_odo >= old_odo THEN first_odo - old_odo ELSE 0 END AS odo,
               CASE WHEN old_ts > '-infinity' AND old_ign
                         AND first_ts - old_ts <= interval '10 minutes'
                    THEN extract(epoch FROM first_ts - old_ts)::double precision ELSE 0 END
                   AS ign_s
        FROM dev WHERE extends),
    delta AS (
        SELECT b.device_id, b.bucket, b.samples, b.first_ts, b.last_ts, b.max_speed,
               b.eh + coalesce(h.eh, 0) AS engine_hours_h,
               (b.odo + coalesce(h.odo, 0)) / 1000.0 AS distance_km,
               b.ign_ms / 1000.0::double precision + coalesce(h.ign_s, 0) AS ignition_on_s
        FROM unnest(b_dev, b_bucket, b_samples, b_first_ts, b_last_ts, b_max_speed, b_eh, b_odo,
                    b_ign_ms)
                 AS b(device_id, bucket, samples, first_ts, last_ts, max_speed, eh, odo, ign_ms)
        JOIN dev ON dev.device_id = b.device_id AND dev.extends
        LEFT JOIN head h ON h.device_id = b.device_id AND h.bucket = b.bucket),
    put_delta AS (
        INSERT INTO telemetry_hourly AS h (device_id, bucket, samples, first_ts, last_ts,
                                           max_speed_kmh, engine_hours_h, distance_km,
                                           ignition_on_s, updated_at)
        SELECT device_id, bucket, samples, first_ts, last_ts, max_speed, engine_hours_h,
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
    put_devices AS (
        UPDATE telemetry_rollup_devices d SET
            last_ts = dev.last_ts, last_ignition = dev.last_ign,
            last_engine_hours_h = dev.last_eh, last_odometer_m = dev.last_odo,
            last_site_id = dev.last_site_id, last_site_name = dev.last_site_name
        FROM dev
        WHERE d.device_id = dev.device_id AND dev.extends
        RETURNING 1)
    -- put_devices runs although nothing reads it (a data-modifying WITH always does).
    SELECT (SELECT count(*) FROM put_delta),
           (SELECT coalesce(array_agg(device_id), '{}') FROM dev WHERE NOT extends)
    INTO rollup_rows, late_devices;
END $$;
