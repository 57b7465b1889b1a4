-- gb_scale partition bounds (issue 14, items 12 and 13): consecutive
-- partitions are contiguous and every instant routes to a partition, in
-- every zone with a non-hour offset or shift, for every granularity and
-- control type; a change of granularity leaves no period uncovered.
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
SET search_path = public, pg_catalog;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
CREATE SCHEMA bnd;

-- Leaves of P other than the default, with their bounds as PostgreSQL prints
-- them, in order: the text compares exactly whatever the control type.
CREATE FUNCTION bnd.leaves(p regclass)
RETURNS TABLE (leaf text, lo text, hi text, from_time timestamptz)
LANGUAGE sql AS $$
    SELECT t.relid::text, m[1], m[2], l.from_time
      FROM pg_partition_tree(p) t
      JOIN pg_class c ON c.oid = t.relid
      JOIN gb_partition_list(p) l ON l.partition = t.relid
      CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                      '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') m
     WHERE t.isleaf AND NOT l.is_default
     ORDER BY l.from_time
$$;

-- Places where a leaf's upper bound is not the next leaf's lower bound.
CREATE FUNCTION bnd.breaks(p regclass)
RETURNS TABLE (leaf text, hi text, next_lo text)
LANGUAGE sql AS $$
    SELECT x.leaf, x.hi, x.next_lo
      FROM (SELECT leaf, hi, lead(lo) OVER (ORDER BY from_time) AS next_lo FROM bnd.leaves(p)) x
     WHERE x.next_lo IS NOT NULL AND x.next_lo <> x.hi
$$;

-- The snowflake ID of an instant (shard 0, sequence 0).
CREATE FUNCTION bnd.id_of(t timestamptz)
RETURNS bigint
LANGUAGE sql AS $$
    SELECT (floor(extract(epoch FROM t) * 1000)::bigint - 1704067200000) << 22
$$;

-- The control value of an instant, as a literal of type CTL, in zone ZONE.
CREATE FUNCTION bnd.value_of(ctl text, zone text, t timestamptz)
RETURNS text
LANGUAGE sql AS $$
    SELECT CASE ctl
           WHEN 'timestamptz' THEN quote_literal(t::text)
           WHEN 'timestamp' THEN quote_literal((t AT TIME ZONE zone)::text)
           WHEN 'date' THEN quote_literal((t AT TIME ZONE zone)::date::text)
           ELSE bnd.id_of(t)::text
           END || '::' || ctl
$$;

-- One case: a table with control type CTL, registered with GRAN and a premake
-- of one period in ZONE two periods before the transition at TRANSITION, then
-- maintained every half period until one period after it.  Counts
-- the breaks in the chain and the probes (every 5 minutes for 2 hours on
-- either side of the transition, and 1 microsecond on either side of it)
-- that land in the default partition.
CREATE FUNCTION bnd.check_case(zone text, ctl text, gran interval, transition timestamptz,
                               OUT partitions integer, OUT breaks integer, OUT in_default integer)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('gb_scale.test_now', (transition - 2 * gran)::text, true);
    EXECUTE format('CREATE TABLE bnd.t (c %s NOT NULL) PARTITION BY RANGE (c)', ctl);
    PERFORM gb_partition_create('bnd.t', 'c', gran, premake => gran,
                                default_partition => true, time_zone => zone);
    FOR step IN 1..6 LOOP
        PERFORM set_config('gb_scale.test_now', (transition - 2 * gran + step * (gran / 2))::text, true);
        CALL gb_run_maintenance('bnd.t');
    END LOOP;
    EXECUTE format('INSERT INTO bnd.t SELECT * FROM (VALUES (%s), (%s)) v',
                   bnd.value_of(ctl, zone, transition - interval '1 microsecond'),
                   bnd.value_of(ctl, zone, transition + interval '1 microsecond'));
    FOR step IN -24..23 LOOP
        EXECUTE format('INSERT INTO bnd.t VALUES (%s)',
                       bnd.value_of(ctl, zone, transition + step * interval '5 minutes'));
    END LOOP;
    SELECT count(*) INTO partitions FROM bnd.leaves('bnd.t');
    SELECT count(*) INTO breaks FROM bnd.breaks('bnd.t');
    SELECT count(*) INTO in_default FROM bnd.t_default;
    DROP TABLE bnd.t;
END
$$;

-- The transitions: the instant each zone's offset changes, shown with the
-- offsets on either side, so that a wrong instant would show here.
CREATE TABLE bnd.transitions (zone text, at timestamptz);
INSERT INTO bnd.transitions VALUES
    ('Australia/Lord_Howe', '2025-04-05 15:00+00'),	-- 02:00 +11 -> 01:30 +10:30
    ('Australia/Lord_Howe', '2025-10-04 15:30+00'),	-- 02:00 +10:30 -> 02:30 +11
    ('Asia/Kathmandu', '1985-12-31 18:30+00'),		-- +05:30 -> +05:45
    ('Asia/Kathmandu', '2025-03-10 12:00+00'),		-- none: a quarter-hour offset
    ('Pacific/Chatham', '2025-04-05 14:00+00'),		-- +13:45 -> +12:45
    ('Pacific/Chatham', '2025-09-27 14:00+00'),		-- +12:45 -> +13:45
    ('Asia/Tehran', '2021-03-21 20:30+00'),			-- +03:30 -> +04:30 at local midnight
    ('Asia/Tehran', '2021-09-21 19:30+00'),			-- +04:30 -> +03:30 at local midnight
    ('America/St_Johns', '2025-03-09 05:30+00'),		-- -03:30 -> -02:30
    ('America/St_Johns', '2025-11-02 04:30+00'),		-- -02:30 -> -03:30
    ('Europe/Berlin', '2025-03-30 01:00+00'),
    ('Europe/Berlin', '2025-10-26 01:00+00'),
    ('America/Sao_Paulo', '2018-11-04 03:00+00'),
    ('America/Sao_Paulo', '2019-02-17 02:00+00');
SELECT zone, at,
       (at - interval '1 microsecond') AT TIME ZONE zone - (at - interval '1 microsecond') AT TIME ZONE 'UTC' AS offset_before,
       at AT TIME ZONE zone - at AT TIME ZONE 'UTC' AS offset_after
  FROM bnd.transitions ORDER BY zone, at;

-- Every zone x control type x granularity: no break, nothing in the default.
-- Snowflake IDs start in 2024, and a date has no hours.
CREATE TABLE bnd.results AS
SELECT tr.zone, tr.at, ty.ctl, g.gran, r.*
  FROM bnd.transitions tr
 CROSS JOIN (VALUES ('timestamptz'), ('timestamp'), ('date'), ('bigint')) ty(ctl)
 CROSS JOIN (VALUES (interval '1 hour'), ('1 day'), ('1 week'), ('1 month'), ('3 months'), ('1 year')) g(gran)
 CROSS JOIN LATERAL bnd.check_case(tr.zone, ty.ctl, g.gran, tr.at) r
 WHERE NOT (ty.ctl = 'date' AND g.gran = '1 hour')
   AND NOT (ty.ctl = 'bigint' AND tr.at - 3 * g.gran < '2024-01-02');
SELECT count(*) AS cases, count(DISTINCT zone) AS zones, count(DISTINCT ctl) AS types,
       count(DISTINCT gran) AS granularities
  FROM bnd.results;
SELECT zone, at, ctl, gran, partitions, breaks, in_default
  FROM bnd.results WHERE breaks > 0 OR in_default > 0 OR partitions < 3
 ORDER BY zone, at, ctl, gran;

-- Hours across Lord Howe's half-hour shifts: the periods begin at whole
-- local hours and at the shift, so the hour the shift cuts is two partitions.
SET gb_scale.test_now = '2025-04-05 12:00+00';
CREATE TABLE bnd.lh (c timestamptz NOT NULL) PARTITION BY RANGE (c);
SELECT gb_partition_create('bnd.lh', 'c', '1 hour', premake => '5 hours', time_zone => 'Australia/Lord_Howe') AS created;
SELECT leaf, lo, hi FROM bnd.leaves('bnd.lh');
DROP TABLE bnd.lh;
SET gb_scale.test_now = '2025-10-04 12:00+00';
CREATE TABLE bnd.lh (c timestamptz NOT NULL) PARTITION BY RANGE (c);
SELECT gb_partition_create('bnd.lh', 'c', '1 hour', premake => '5 hours', time_zone => 'Australia/Lord_Howe') AS created;
SELECT leaf, lo, hi FROM bnd.leaves('bnd.lh');
DROP TABLE bnd.lh;

-- Maintenance every 2 hours across both Lord Howe shifts, premake 3 hours,
-- timestamptz and snowflake IDs: the chain it extends stays contiguous, and
-- every 5 minutes of it routes to a partition.
CREATE TABLE bnd.walk_ts (c timestamptz NOT NULL) PARTITION BY RANGE (c);
CREATE TABLE bnd.walk_id (c bigint NOT NULL) PARTITION BY RANGE (c);
CREATE TABLE bnd.walk_ts2 (c timestamptz NOT NULL) PARTITION BY RANGE (c);
CREATE TABLE bnd.walk_id2 (c bigint NOT NULL) PARTITION BY RANGE (c);
SET gb_scale.test_now = '2025-04-05 11:10+00';
SELECT gb_partition_create('bnd.walk_ts', 'c', '1 hour', premake => '3 hours', time_zone => 'Australia/Lord_Howe') +
       gb_partition_create('bnd.walk_id', 'c', '1 hour', premake => '3 hours', time_zone => 'Australia/Lord_Howe') AS created;
SET gb_scale.test_now = '2025-10-04 11:10+00';
SELECT gb_partition_create('bnd.walk_ts2', 'c', '1 hour', premake => '3 hours', time_zone => 'Australia/Lord_Howe') +
       gb_partition_create('bnd.walk_id2', 'c', '1 hour', premake => '3 hours', time_zone => 'Australia/Lord_Howe') AS created;
DO $$
BEGIN
    FOR step IN 1..5 LOOP
        PERFORM set_config('gb_scale.test_now',
                           ('2025-04-05 11:10+00'::timestamptz + step * interval '2 hours')::text, false);
        CALL gb_run_maintenance('bnd.walk_ts');
        CALL gb_run_maintenance('bnd.walk_id');
        PERFORM set_config('gb_scale.test_now',
                           ('2025-10-04 11:10+00'::timestamptz + step * interval '2 hours')::text, false);
        CALL gb_run_maintenance('bnd.walk_ts2');
        CALL gb_run_maintenance('bnd.walk_id2');
    END LOOP;
END
$$;
INSERT INTO bnd.walk_ts SELECT '2025-04-05 11:10+00'::timestamptz + g * interval '5 minutes' FROM generate_series(0, 150) g;
INSERT INTO bnd.walk_id SELECT bnd.id_of('2025-04-05 11:10+00'::timestamptz + g * interval '5 minutes') FROM generate_series(0, 150) g;
INSERT INTO bnd.walk_ts2 SELECT '2025-10-04 11:10+00'::timestamptz + g * interval '5 minutes' FROM generate_series(0, 150) g;
INSERT INTO bnd.walk_id2 SELECT bnd.id_of('2025-10-04 11:10+00'::timestamptz + g * interval '5 minutes') FROM generate_series(0, 150) g;
SELECT p AS walked, (SELECT count(*) FROM bnd.leaves(p)) AS partitions, (SELECT count(*) FROM bnd.breaks(p)) AS breaks
  FROM unnest('{bnd.walk_ts,bnd.walk_id,bnd.walk_ts2,bnd.walk_id2}'::regclass[]) p;
SELECT parent, last_error FROM gb_scale.partition_config WHERE parent::text LIKE 'bnd.walk%' ORDER BY 1::text;
DROP TABLE bnd.walk_ts, bnd.walk_id, bnd.walk_ts2, bnd.walk_id2;

------------------------------------------------------------------------------
-- A change of granularity leaves no period uncovered (item 13)
------------------------------------------------------------------------------
-- The reported case: daily partitions through 03-15, forgotten and registered
-- again monthly on 03-10.  March is partly covered by the daily partitions:
-- the rest of it, [03-16, 04-01), gets a partition of its own, which takes the
-- row that waited in the default partition.
SET gb_scale.test_now = '2025-03-10 12:00+00';
CREATE TABLE bnd.rg (c timestamptz NOT NULL) PARTITION BY RANGE (c);
SELECT gb_partition_create('bnd.rg', 'c', '1 day', premake => '5 days', default_partition => true) AS created;
INSERT INTO bnd.rg VALUES ('2025-03-20 08:00+00');
SELECT gb_partition_forget('bnd.rg');
SELECT gb_partition_create('bnd.rg', 'c', '1 month', premake => '2 months', default_partition => true) AS created;
SELECT leaf, lo, hi FROM bnd.leaves('bnd.rg');
SELECT tableoid::regclass AS holds_0320, c FROM bnd.rg;
INSERT INTO bnd.rg VALUES ('2025-03-25 00:00+00') RETURNING tableoid::regclass;
SELECT last_error FROM gb_scale.partition_config WHERE parent = 'bnd.rg'::regclass;
DROP TABLE bnd.rg;

-- Every direction between the granularities, by both routes: registered
-- again (forget, then gb_partition_create), or the registration updated in
-- place and maintained.  The table is registered at FROM_GRAN at 03-10 12:00
-- with a premake of 5 periods, changed to TO_GRAN with a premake of 3 of its
-- periods, then maintained at intervals of half the longer granularity for 6
-- steps, a row stamped now and one a period ahead inserted after each.  The
-- chain must have no break, begin at or before the registration and reach the
-- last horizon; no row lands in the default partition.
CREATE FUNCTION bnd.check_change(ctl text, from_gran interval, to_gran interval, route text,
                                 OUT breaks integer, OUT starts_by_now boolean,
                                 OUT reaches_horizon boolean, OUT in_default integer,
                                 OUT errors integer)
LANGUAGE plpgsql AS $$
DECLARE
    now0 timestamptz := '2025-03-10 12:00+00';
    step_len interval := greatest(from_gran, to_gran) / 2;
    last_now timestamptz := now0 + 6 * step_len;
BEGIN
    PERFORM set_config('gb_scale.test_now', now0::text, true);
    EXECUTE format('CREATE TABLE bnd.c (c %s NOT NULL) PARTITION BY RANGE (c)', ctl);
    PERFORM gb_partition_create('bnd.c', 'c', from_gran, premake => 5 * from_gran,
                                default_partition => true, time_zone => 'Europe/Berlin');
    IF route = 'register again' THEN
        PERFORM gb_partition_forget('bnd.c');
        PERFORM gb_partition_create('bnd.c', 'c', to_gran, premake => 3 * to_gran,
                                    default_partition => true, time_zone => 'Europe/Berlin');
    ELSE
        UPDATE gb_scale.partition_config SET granularity = to_gran, premake = 3 * to_gran
         WHERE parent = 'bnd.c'::regclass;
        CALL gb_run_maintenance('bnd.c');
    END IF;
    FOR step IN 1..6 LOOP
        PERFORM set_config('gb_scale.test_now', (now0 + step * step_len)::text, true);
        CALL gb_run_maintenance('bnd.c');
        EXECUTE format('INSERT INTO bnd.c VALUES (%s), (%s)',
                       bnd.value_of(ctl, 'Europe/Berlin', now0 + step * step_len),
                       bnd.value_of(ctl, 'Europe/Berlin', now0 + step * step_len + to_gran));
    END LOOP;
    SELECT count(*) INTO breaks FROM bnd.breaks('bnd.c');
    SELECT min(from_time) <= now0, max(to_time) >= last_now + 3 * to_gran
      INTO starts_by_now, reaches_horizon
      FROM gb_partition_list('bnd.c') WHERE NOT is_default;
    SELECT count(*) INTO in_default FROM bnd.c_default;
    SELECT count(*) INTO errors FROM gb_scale.partition_config
     WHERE parent = 'bnd.c'::regclass AND last_error IS NOT NULL;
    DROP TABLE bnd.c;
END
$$;
CREATE TABLE bnd.changes AS
SELECT ty.ctl, f.gran AS from_gran, t.gran AS to_gran, r.route, x.*
  FROM (VALUES ('timestamptz'), ('date'), ('bigint')) ty(ctl)
 CROSS JOIN (VALUES (interval '1 hour'), ('1 day'), ('1 week'), ('1 month'), ('3 months'), ('1 year')) f(gran)
 CROSS JOIN (VALUES (interval '1 hour'), ('1 day'), ('1 week'), ('1 month'), ('3 months'), ('1 year')) t(gran)
 CROSS JOIN (VALUES ('register again'), ('update')) r(route)
 CROSS JOIN LATERAL bnd.check_change(ty.ctl, f.gran, t.gran, r.route) x
 WHERE f.gran <> t.gran
   AND NOT (ty.ctl = 'date' AND '1 hour' IN (f.gran, t.gran))
   AND NOT (ty.ctl <> 'timestamptz' AND r.route = 'update');
SELECT count(*) AS changes, count(DISTINCT (from_gran, to_gran)) AS directions FROM bnd.changes;
SELECT * FROM bnd.changes
 WHERE breaks > 0 OR NOT starts_by_now OR NOT reaches_horizon OR in_default > 0 OR errors > 0
 ORDER BY ctl, from_gran, to_gran, route;
