-- fleetpipe schema 4: the fleet as an ISO 15143-3 (AEMP 2.0) JSON snapshot page, so that any
-- fleet tool that imports AEMP can read what fleetpipe stored.
--
-- aemp_fleet(page, page_size) returns page `page` (from 1) of the machines in device_id order,
-- page_size machines a page:
--
--   {"Fleet": {"SnapshotTime": "…", "Links": [{"rel": "self", "href": "?page=1&page_size=100"},
--                                             {"rel": "next", "href": "?page=2&page_size=100"}],
--              "Equipment": [{"EquipmentHeader": {…}, "Location": {…}, …}, …]}}
--
-- Each element comes from the machine's latest row that holds its value and carries that row's
-- ts as its datetime, so one machine's elements may have different datetimes (as in an OEM's
-- snapshot). EquipmentHeader comes from the latest row with asset fields: OEMName, Model and
-- SerialNumber from asset_oem, asset_model and asset_serial_number, EquipmentID from the
-- equipment_id metric, and PIN is the device_id (fleetpipe's identity of the machine), so the
-- page decodes back (parser-svc, format iso15143) to the same device ids. Units are the
-- canonical ones: metres, kilometres, litres, percent, hours. Members without a value are left
-- out. The "next" link is there when a later page has machines.
CREATE FUNCTION aemp_time(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- One metric element of a machine: {"datetime": …, <member>: <value>} from its latest row with
-- that metric as a number (or boolean), with extra members merged in; NULL when it never had it.
CREATE FUNCTION aemp_metric_element(dev text, metric text, member text,
                                    scale double precision DEFAULT 1, extra jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object('datetime', aemp_time(t.ts),
                              member, CASE WHEN scale = 1 THEN t.metrics -> metric
                                           ELSE to_jsonb((t.metrics ->> metric)::double precision / scale)
                                      END) || extra
    FROM telemetry t
    WHERE t.device_id = dev AND jsonb_typeof(t.metrics -> metric) IN ('number', 'boolean')
    ORDER BY t.ts DESC
    LIMIT 1
$$;

CREATE FUNCTION aemp_fleet(page integer, page_size integer DEFAULT 100) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    equipment jsonb;
    more boolean;
    links jsonb;
BEGIN
    IF page IS NULL OR page < 1 OR page_size IS NULL OR page_size < 1 THEN
        RAISE EXCEPTION 'aemp_fleet: page and page_size are 1 or more (got %, %)', page, page_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH machines AS (
        SELECT d.device_id, row_number() OVER (ORDER BY d.device_id) AS n
        FROM (SELECT DISTINCT device_id FROM telemetry) d
        ORDER BY d.device_id
        OFFSET (page::bigint - 1) * page_size
        LIMIT page_size + 1
    )
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'EquipmentHeader', coalesce((
                   SELECT jsonb_build_object('OEMName', h.asset_oem, 'Model', h.asset_model,
                                             'SerialNumber', h.asset_serial_number,
                                             'EquipmentID', h.metrics ->> 'equipment_id')
                   FROM telemetry h
                   WHERE h.device_id = m.device_id
                     AND (h.asset_oem IS NOT NULL OR h.asset_model IS NOT NULL
                          OR h.asset_serial_number IS NOT NULL OR h.metrics ? 'equipment_id')
                   ORDER BY h.ts DESC LIMIT 1
               ), '{}') || jsonb_build_object('PIN', m.device_id),
               'Location', (
                   SELECT jsonb_build_object('datetime', aemp_time(l.ts), 'Latitude', l.lat,
                                             'Longitude', l.lon, 'AltitudeUnits',
                                             CASE WHEN l.alt_m IS NOT NULL THEN 'metre' END,
                                             'Altitude', l.alt_m)
                   FROM telemetry l
                   WHERE l.device_id = m.device_id AND l.lat IS NOT NULL AND l.lon IS NOT NULL
                   ORDER BY l.ts DESC LIMIT 1
               ),
               'CumulativeOperatingHours', aemp_metric_element(m.device_id, 'engine_hours_h', 'Hour'),
               'CumulativeIdleHours', aemp_metric_element(m.device_id, 'idle_hours_h', 'Hour'),
               'Distance', aemp_metric_element(m.device_id, 'odometer_m', 'Odometer', 1000,
                                               '{"OdometerUnits": "kilometre"}'),
               'FuelUsed', aemp_metric_element(m.device_id, 'fuel_used_l', 'FuelConsumed', 1,
                                               '{"FuelUnits": "litre"}'),
               'FuelRemaining', aemp_metric_element(m.device_id, 'fuel_remaining_pct', 'Percent'),
               'DEFRemaining', aemp_metric_element(m.device_id, 'def_remaining_pct', 'Percent'),
               'EngineStatus', (
                   SELECT jsonb_build_object('datetime', aemp_time(e.ts), 'Running', e.ignition)
                   FROM telemetry e
                   WHERE e.device_id = m.device_id AND e.ignition IS NOT NULL
                   ORDER BY e.ts DESC LIMIT 1
               )
           )) ORDER BY m.device_id) FILTER (WHERE m.n <= page::bigint * page_size), '[]'::jsonb),
           count(*) > page_size
    INTO equipment, more
    FROM machines m;

    links := jsonb_build_array(jsonb_build_object(
        'rel', 'self', 'href', format('?page=%s&page_size=%s', page, page_size)));
    IF more THEN
        links := links || jsonb_build_object(
            'rel', 'next', 'href', format('?page=%s&page_size=%s', page + 1, page_size));
    END IF;
    RETURN jsonb_build_object('Fleet', jsonb_build_object(
        'SnapshotTime', aemp_time(now()),
        'Links', links,
        'Equipment', equipment));
END;
$$;
