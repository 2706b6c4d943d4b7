-- Back to the spine's partition function (events only), then the metric tables go.
CREATE OR REPLACE FUNCTION pulse_ensure_event_partitions(days_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day      date;
    name     text;
    created  integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7070766172747331); -- 'pulse partitions'
    FOR offset_days IN 0..days_ahead LOOP
        day := (now() AT TIME ZONE 'UTC')::date + offset_days;
        name := 'events_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                    name,
                    (day::timestamp AT TIME ZONE 'UTC'),
                    ((day + 1)::timestamp AT TIME ZONE 'UTC'));
                created := created + 1;
            EXCEPTION WHEN check_violation OR duplicate_table OR unique_violation THEN
                RAISE NOTICE 'partition % skipped: %', name, SQLERRM;
            END;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;

DROP TABLE metric_latest;
DROP TABLE metric_rollups;
DROP TABLE metric_point_ids;
DROP TABLE metric_points;
