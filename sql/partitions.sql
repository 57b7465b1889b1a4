-- gb_scale automatic partitions (issue 7): the SQL API, every layout, every
-- control type, DST, quoting, bad input, DDL on registered tables, retention.
--
-- The clock of maintenance is gb_scale.test_now (superuser only), so nothing
-- here depends on today's date.  Most tests run at 2025-03-10 12:34:56 UTC, in
-- the middle of a period of every granularity, so that "through the premake
-- horizon" has one meaning: with the default premake (4 periods) every table
-- gets the current period and the 4 after it, 5 partitions.
--
-- Errors are shown by SQLSTATE only (VERBOSITY sqlstate): the codes are the
-- contract, the wording is not.  Times are shown in UTC, ISO.
\set VERBOSITY sqlstate
\set SHOW_CONTEXT never
SET search_path = public, pg_catalog;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

-- Roles belong to the cluster: a run that crashed left them behind.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_part_owner;
DROP ROLE IF EXISTS regress_part_reader;
DROP ROLE IF EXISTS regress_part_other;
RESET client_min_messages;

CREATE SCHEMA part;

-- What PostgreSQL itself holds under a table: every descendant with its
-- parent, its bound and, for an intermediate table, its partition key.  This
-- is independent of gb_partition_list, and checks it.
CREATE FUNCTION part.tree(p regclass)
RETURNS TABLE (relation text, parent text, bound text, partkey text)
LANGUAGE sql AS $$
    SELECT t.relid::text, t.parentrelid::text, pg_get_expr(c.relpartbound, c.oid),
           coalesce(pg_get_partkeydef(c.oid), '-')
      FROM pg_partition_tree(p) t JOIN pg_class c ON c.oid = t.relid
     WHERE t.level > 0
     ORDER BY t.relid::text COLLATE "C"
$$;

-- gb_partition_list, ordered, without the estimates.
CREATE FUNCTION part.list(p regclass)
RETURNS TABLE (partition text, tenant_id bigint, bucket integer, is_default boolean,
               from_time timestamptz, to_time timestamptz)
LANGUAGE sql AS $$
    SELECT l.partition::text, l.tenant_id, l.bucket, l.is_default, l.from_time, l.to_time
      FROM gb_partition_list(p) l
     ORDER BY l.tenant_id NULLS FIRST, l.from_time NULLS LAST, l.bucket, l.partition::text COLLATE "C"
$$;

-- Gaps and overlaps: within each time tree (tenant subtree and bucket), each
-- leaf's to_time must be the next leaf's from_time.  No row is the answer.
CREATE FUNCTION part.gaps(p regclass)
RETURNS TABLE (partition text, to_time timestamptz, next_from timestamptz)
LANGUAGE sql AS $$
    SELECT x.partition::text, x.to_time, x.next_from
      FROM (SELECT l.partition, l.to_time,
                   lead(l.from_time) OVER (PARTITION BY l.tenant_id, l.bucket ORDER BY l.from_time) AS next_from
              FROM gb_partition_list(p) l
             WHERE NOT l.is_default) x
     WHERE x.next_from IS NOT NULL AND x.next_from <> x.to_time
     ORDER BY x.partition::text COLLATE "C"
$$;

-- The configuration, without what depends on the wall clock.
CREATE VIEW part.config AS
SELECT c.parent::text AS parent, c.layout, c.granularity, c.premake, c.retention,
       c.retention_mode, c.archive_schema, c.tenant_buckets, c.default_partition,
       c.time_zone, c.profile, c.last_error
  FROM gb_scale.partition_config c;

------------------------------------------------------------------------------
-- RANGE, daily, timestamptz: the basic case
------------------------------------------------------------------------------
CREATE TABLE part.events (
    id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    payload text
) PARTITION BY RANGE (created_at);
-- 5: 2025-03-10 through 2025-03-14 (the horizon, 03-14 12:34:56, lies in it).
SELECT gb_partition_create('part.events', 'created_at', '1 day') AS created;
SELECT * FROM part.list('part.events');
SELECT * FROM part.tree('part.events');
SELECT * FROM part.config WHERE parent = 'part.events';
SELECT * FROM part.gaps('part.events');
-- Rows go where the bounds say; outside them, PostgreSQL's own 23514.
INSERT INTO part.events VALUES (1, '2025-03-10 00:00:00+00', 'a'), (2, '2025-03-14 23:59:59.999999+00', 'b'),
                               (3, '2025-03-12 08:00:00+00', 'c');
SELECT tableoid::regclass AS partition, id FROM part.events ORDER BY id;
INSERT INTO part.events VALUES (4, '2025-03-15 00:00:00+00', 'late');
INSERT INTO part.events VALUES (5, '2025-03-09 23:59:59+00', 'early');
-- Maintenance at the same clock has nothing to do; twice is the same.
CALL gb_run_maintenance('part.events');
CALL gb_run_maintenance('part.events');
SELECT count(*) AS partitions FROM gb_partition_list('part.events');
-- Two days later the horizon is 03-16 12:00: 03-15 and 03-16 are added.
SET gb_scale.test_now = '2025-03-12 12:00:00+00';
CALL gb_run_maintenance('part.events');
SELECT * FROM part.list('part.events');
SELECT * FROM part.gaps('part.events');
INSERT INTO part.events VALUES (4, '2025-03-15 00:00:00+00', 'late');
SELECT parent, layout, control, control_type, granularity, time_zone, partitions,
       oldest_bound, newest_bound, default_rows, retention, retention_mode,
       dedicated_tenants, last_run IS NOT NULL AS has_run,
       last_success IS NOT NULL AS has_succeeded, last_error
  FROM gb_scale.partition_status WHERE parent = 'part.events'::regclass;
SELECT partition::text, rows IS NULL OR rows >= 0 AS rows_sane, bytes >= 0 AS bytes_known, bounds IS NOT NULL AS has_bounds
  FROM gb_partition_list('part.events') ORDER BY from_time;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

------------------------------------------------------------------------------
-- Granularities: names and bounds (UTC)
------------------------------------------------------------------------------
-- hour: 12:00 through 16:00 (horizon 16:34:56), named YYYYMMDD_HH24.
CREATE TABLE part.g_hour (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.g_hour', 'at', '1 hour') AS created;
SELECT partition, from_time, to_time FROM part.list('part.g_hour');
-- week: weeks start on Monday (2025-03-10 is one); the clock is moved to the
-- Wednesday so that the current week starts before it.  Horizon 04-09.
SET gb_scale.test_now = '2025-03-12 09:00:00+00';
CREATE TABLE part.g_week (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.g_week', 'at', '1 week') AS created;
SELECT partition, from_time, to_time, extract(isodow FROM from_time) AS weekday FROM part.list('part.g_week');
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
-- month: 2025-03 through 2025-07, named YYYYMM.
CREATE TABLE part.g_month (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.g_month', 'at', '1 month') AS created;
SELECT partition, from_time, to_time FROM part.list('part.g_month');
-- quarter ('3 months'): 2025Q1 through 2026Q1, named by the first month.
CREATE TABLE part.g_quarter (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.g_quarter', 'at', '3 months') AS created;
SELECT partition, from_time, to_time FROM part.list('part.g_quarter');
-- year: 2025 through 2029, named YYYY.
CREATE TABLE part.g_year (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.g_year', 'at', '1 year') AS created;
SELECT partition, from_time, to_time FROM part.list('part.g_year');
SELECT * FROM part.tree('part.g_year');
-- start_at: from the period holding it (03-07 12:00 -> 03-07) through the
-- horizon: 03-07 .. 03-14, 8 partitions.
CREATE TABLE part.g_start (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.g_start', 'at', '1 day', start_at => '2025-03-07 12:00:00+00') AS created;
SELECT partition, from_time, to_time FROM part.list('part.g_start');
-- An explicit premake: 2 days -> 03-10 .. 03-12.
CREATE TABLE part.g_premake (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.g_premake', 'at', '1 day', premake => '2 days') AS created;
SELECT partition, from_time, to_time FROM part.list('part.g_premake');
SELECT parent, granularity, premake, retention FROM part.config
 WHERE parent IN ('part.g_hour', 'part.g_week', 'part.g_month', 'part.g_quarter', 'part.g_year',
                  'part.g_start', 'part.g_premake')
 ORDER BY parent COLLATE "C";

------------------------------------------------------------------------------
-- Control types
------------------------------------------------------------------------------
-- timestamp without time zone: bounds are local times of time_zone; the
-- period is the local day of the clock (09:34:56 in Sao Paulo on 03-10).
-- from_time and to_time are those local times as instants (UTC-3 here).
CREATE TABLE part.c_ts (at timestamp NOT NULL, v int) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.c_ts', 'at', '1 day', time_zone => 'America/Sao_Paulo') AS created;
SELECT partition, from_time, to_time FROM part.list('part.c_ts');
SELECT * FROM part.tree('part.c_ts');
INSERT INTO part.c_ts VALUES ('2025-03-10 00:00:00', 1), ('2025-03-14 23:59:59', 2);
SELECT tableoid::regclass AS partition, v FROM part.c_ts ORDER BY v;

-- date: daily and weekly; an hour is below what a date can hold.
CREATE TABLE part.c_date (day date NOT NULL, tenant_id bigint NOT NULL, n bigint) PARTITION BY RANGE (day);
SELECT gb_partition_create('part.c_date', 'day', '1 day') AS created;
SELECT partition, from_time, to_time FROM part.list('part.c_date');
SELECT * FROM part.tree('part.c_date');
CREATE TABLE part.c_date_week (day date NOT NULL) PARTITION BY RANGE (day);
SELECT gb_partition_create('part.c_date_week', 'day', '1 week') AS created;
SELECT partition, from_time, to_time FROM part.list('part.c_date_week');
CREATE TABLE part.c_date_hour (day date NOT NULL) PARTITION BY RANGE (day);
SELECT gb_partition_create('part.c_date_hour', 'day', '1 hour');
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'part.c_date_hour'::regclass;

-- bigint snowflake IDs, PRIMARY KEY (id) alone: each bound is the ID of the
-- period's start, gb_id_from_time(start).
CREATE TABLE part.c_ids (
    id bigint PRIMARY KEY,
    tenant_id bigint NOT NULL,
    body text
) PARTITION BY RANGE (id);
SELECT gb_partition_create('part.c_ids', 'id', '1 day') AS created;
SELECT partition, from_time, to_time FROM part.list('part.c_ids');
SELECT * FROM part.tree('part.c_ids');
SELECT l.partition, pg_get_expr(c.relpartbound, c.oid)
         = format('FOR VALUES FROM (%L) TO (%L)', gb_id_from_time(l.from_time), gb_id_from_time(l.to_time)) AS bounds_are_ids
  FROM part.list('part.c_ids') l JOIN pg_class c ON c.oid = l.partition::regclass;
INSERT INTO part.c_ids
SELECT gb_id_from_time('2025-03-11 10:00:00+00', 1::smallint) + g, 1, 'x' FROM generate_series(0, 2) g;
INSERT INTO part.c_ids VALUES (gb_id_from_time('2025-03-14 23:59:59.999+00', 1::smallint) + 4095, 1, 'last');
SELECT tableoid::regclass::text AS partition, count(*) FROM part.c_ids GROUP BY 1 ORDER BY partition COLLATE "C";
-- The key is unique across partitions (it is the partition key).
INSERT INTO part.c_ids VALUES (gb_id_from_time('2025-03-11 10:00:00+00', 1::smallint), 2, 'dup');
INSERT INTO part.c_ids VALUES (gb_id_from_time('2025-03-15 00:00:00+00'), 1, 'too late');
SELECT control, control_type, granularity FROM gb_scale.partition_status
 WHERE parent IN ('part.c_ts'::regclass, 'part.c_date'::regclass, 'part.c_ids'::regclass)
 ORDER BY parent::text COLLATE "C";

------------------------------------------------------------------------------
-- DST: bounds are local period starts in time_zone; contiguous, no gap, no
-- overlap, whatever the length of the local day or hour.
------------------------------------------------------------------------------
-- Berlin, spring forward 2025-03-30 02:00 CET -> 03:00 CEST: that day has
-- 23 hours (03-29 23:00 UTC .. 03-30 22:00 UTC).
SET gb_scale.test_now = '2025-03-28 12:00:00+00';
CREATE TABLE part.berlin_spring (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.berlin_spring', 'at', '1 day', time_zone => 'Europe/Berlin') AS created;
SELECT partition, from_time, to_time, to_time - from_time AS length FROM part.list('part.berlin_spring');
SELECT * FROM part.gaps('part.berlin_spring');
-- Berlin, fall back 2025-10-26 03:00 CEST -> 02:00 CET: 25 hours.
SET gb_scale.test_now = '2025-10-24 12:00:00+00';
CREATE TABLE part.berlin_fall (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.berlin_fall', 'at', '1 day', time_zone => 'Europe/Berlin') AS created;
SELECT partition, from_time, to_time, to_time - from_time AS length FROM part.list('part.berlin_fall');
SELECT * FROM part.gaps('part.berlin_fall');
-- Berlin, hourly across spring forward: local 02:00 does not exist that night,
-- so the names go _00, _01, _03, _04, _05.
SET gb_scale.test_now = '2025-03-29 23:30:00+00';
CREATE TABLE part.berlin_hour_spring (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.berlin_hour_spring', 'at', '1 hour', time_zone => 'Europe/Berlin') AS created;
SELECT partition, from_time, to_time FROM part.list('part.berlin_hour_spring');
SELECT * FROM part.gaps('part.berlin_hour_spring');
-- 03:15 UTC is 3 h 45 min after the clock, within the 4 hours premade.
INSERT INTO part.berlin_hour_spring VALUES ('2025-03-30 03:15:00+00');
-- Berlin, hourly across fall back: local 02:00 happens twice (00:00 and 01:00
-- UTC).  Five partitions of one hour each, with distinct names, each
-- starting with the local hour it begins in.
SET gb_scale.test_now = '2025-10-25 23:30:00+00';
CREATE TABLE part.berlin_hour_fall (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.berlin_hour_fall', 'at', '1 hour', time_zone => 'Europe/Berlin') AS created;
SELECT from_time, to_time,
       partition LIKE 'part.berlin_hour_fall_p' || to_char(from_time AT TIME ZONE 'Europe/Berlin', 'YYYYMMDD_HH24') || '%' AS named_by_local_hour
  FROM part.list('part.berlin_hour_fall');
SELECT count(*) AS partitions, count(DISTINCT partition) AS names,
       count(*) FILTER (WHERE to_time - from_time <> interval '1 hour') AS not_one_hour
  FROM part.list('part.berlin_hour_fall');
SELECT * FROM part.gaps('part.berlin_hour_fall');
INSERT INTO part.berlin_hour_fall SELECT '2025-10-25 23:00:00+00'::timestamptz + g * interval '10 minutes' FROM generate_series(0, 29) g;
SELECT from_time, count(*) FROM part.berlin_hour_fall JOIN part.list('part.berlin_hour_fall') l ON l.partition = tableoid::regclass::text
 GROUP BY 1 ORDER BY 1;

-- Sao Paulo, spring forward 2018-11-04: local midnight does not exist (00:00
-- -03 -> 01:00 -02); that day starts at 01:00 -02 = 03:00 UTC, has 23 hours.
SET gb_scale.test_now = '2018-11-02 15:00:00+00';
CREATE TABLE part.sp_spring (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.sp_spring', 'at', '1 day', time_zone => 'America/Sao_Paulo') AS created;
SELECT partition, from_time, to_time, to_time - from_time AS length FROM part.list('part.sp_spring');
SELECT * FROM part.gaps('part.sp_spring');
-- Sao Paulo, fall back 2019-02-17 00:00 -02 -> 2019-02-16 23:00 -03: the 16th
-- has 25 hours.
SET gb_scale.test_now = '2019-02-15 15:00:00+00';
CREATE TABLE part.sp_fall (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.sp_fall', 'at', '1 day', time_zone => 'America/Sao_Paulo') AS created;
SELECT partition, from_time, to_time, to_time - from_time AS length FROM part.list('part.sp_fall');
SELECT * FROM part.gaps('part.sp_fall');
-- Sao Paulo hourly, spring forward: no local hour 00 on 2018-11-04.
SET gb_scale.test_now = '2018-11-04 01:30:00+00';
CREATE TABLE part.sp_hour_spring (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.sp_hour_spring', 'at', '1 hour', time_zone => 'America/Sao_Paulo') AS created;
SELECT partition, from_time, to_time FROM part.list('part.sp_hour_spring');
SELECT * FROM part.gaps('part.sp_hour_spring');
INSERT INTO part.sp_hour_spring VALUES ('2018-11-04 05:15:00+00');
-- Sao Paulo hourly, fall back: local 23:00 on 2019-02-16 happens twice.
SET gb_scale.test_now = '2019-02-17 00:30:00+00';
CREATE TABLE part.sp_hour_fall (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.sp_hour_fall', 'at', '1 hour', time_zone => 'America/Sao_Paulo') AS created;
SELECT from_time, to_time,
       partition LIKE 'part.sp_hour_fall_p' || to_char(from_time AT TIME ZONE 'America/Sao_Paulo', 'YYYYMMDD_HH24') || '%' AS named_by_local_hour
  FROM part.list('part.sp_hour_fall');
SELECT count(*) AS partitions, count(DISTINCT partition) AS names,
       count(*) FILTER (WHERE to_time - from_time <> interval '1 hour') AS not_one_hour
  FROM part.list('part.sp_hour_fall');
SELECT * FROM part.gaps('part.sp_hour_fall');
-- Maintenance every 3 hours for a day keeps the chain contiguous, one hour
-- per partition: the last horizon is 2019-02-18 04:30 UTC, so 29 partitions
-- from 2019-02-17 00:00 to 2019-02-18 05:00 UTC.
DO $$
BEGIN
    FOR step IN 1..8 LOOP
        PERFORM set_config('gb_scale.test_now',
                           ('2019-02-17 00:30:00+00'::timestamptz + step * interval '3 hours')::text, false);
        CALL gb_run_maintenance('part.sp_hour_fall');
    END LOOP;
END
$$;
SELECT count(*) AS partitions, count(DISTINCT partition) AS names,
       count(*) FILTER (WHERE to_time - from_time <> interval '1 hour') AS not_one_hour,
       min(from_time) AS oldest, max(to_time) AS newest
  FROM part.list('part.sp_hour_fall');
SELECT * FROM part.gaps('part.sp_hour_fall');
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
-- (Dropped now: maintenance in 2025 would fill years of hours.)
DROP TABLE part.berlin_spring, part.berlin_fall, part.berlin_hour_spring, part.berlin_hour_fall,
           part.sp_spring, part.sp_fall, part.sp_hour_spring, part.sp_hour_fall;
SELECT count(*) AS dst_configs_left FROM gb_scale.partition_config WHERE parent::text ~ '^part\.(berlin|sp)_';

------------------------------------------------------------------------------
-- The session's TimeZone and DateStyle change nothing
------------------------------------------------------------------------------
SET timezone = 'Pacific/Chatham';
SET datestyle = 'SQL, DMY';
SET intervalstyle = 'sql_standard';
CREATE TABLE part.s_utc (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.s_utc', 'at', '1 day') AS created;
CREATE TABLE part.s_berlin (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.s_berlin', 'at', '1 month', time_zone => 'Europe/Berlin') AS created;
CREATE TABLE part.s_ts (at timestamp NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.s_ts', 'at', '1 day') AS created;
CREATE TABLE part.s_date (day date NOT NULL) PARTITION BY RANGE (day);
SELECT gb_partition_create('part.s_date', 'day', '1 day') AS created;
SET gb_scale.test_now = '2025-03-12 12:00:00+00';
CALL gb_run_maintenance('part.s_utc');
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
SET intervalstyle = 'postgres';
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- The same bounds as if the session were in UTC: 03-10 .. 03-16 for s_utc
-- (after the maintenance), Berlin months for s_berlin, 03-10 .. 03-14.
SELECT * FROM part.tree('part.s_utc');
SELECT * FROM part.tree('part.s_berlin');
SELECT * FROM part.tree('part.s_ts');
SELECT * FROM part.tree('part.s_date');
SELECT parent, granularity, premake FROM part.config WHERE parent LIKE 'part.s\_%' ORDER BY parent COLLATE "C";

------------------------------------------------------------------------------
-- RANGE + HASH buckets on the tenant column
------------------------------------------------------------------------------
CREATE TABLE part.sess (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL
) PARTITION BY RANGE (created_at);
-- 5 time partitions, each with 3 buckets: 5 + 15 = 20.
SELECT gb_partition_create('part.sess', 'created_at', '1 day', tenant_column => 'tenant_id', tenant_buckets => 3) AS created;
SELECT * FROM part.list('part.sess');
SELECT * FROM part.tree('part.sess');
SELECT * FROM part.gaps('part.sess');
SELECT layout, tenant_buckets FROM part.config WHERE parent = 'part.sess';
-- A tenant's rows of one day are in one bucket, the bucket its hash says.
INSERT INTO part.sess SELECT g, g % 30, '2025-03-10 00:00:00+00'::timestamptz + (g % 120) * interval '1 hour'
  FROM generate_series(1, 600) g;
SELECT count(*) AS rows, count(DISTINCT tableoid) AS leaves_used FROM part.sess;
SELECT count(*) AS tenant_days_in_two_buckets
  FROM (SELECT tenant_id, date_trunc('day', created_at) FROM part.sess
         GROUP BY 1, 2 HAVING count(DISTINCT tableoid) > 1) x;
SELECT count(*) AS rows_in_wrong_bucket
  FROM part.sess s JOIN gb_partition_list('part.sess') l ON l.partition = s.tableoid
 WHERE NOT satisfies_hash_partition('part.sess_p20250310'::regclass, 3, l.bucket, s.tenant_id);
-- Maintenance adds whole time partitions with all their buckets.
SET gb_scale.test_now = '2025-03-11 12:00:00+00';
CALL gb_run_maintenance('part.sess');
SELECT partition, bucket, from_time FROM part.list('part.sess') WHERE from_time >= '2025-03-15';
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

------------------------------------------------------------------------------
-- Default partition on a RANGE parent: strays are moved, never a blocker
------------------------------------------------------------------------------
CREATE TABLE part.ev_def (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
-- 5 time partitions and the default.
SELECT gb_partition_create('part.ev_def', 'at', '1 day', default_partition => true) AS created;
SELECT * FROM part.list('part.ev_def');
SELECT relation, bound FROM part.tree('part.ev_def');
INSERT INTO part.ev_def VALUES (1, '2025-03-11 10:00+00'),   -- in range
                               (2, '2025-03-20 10:00+00'),   -- beyond the horizon
                               (3, '2030-01-15 08:00+00'),   -- an outlier
                               (4, '2025-03-01 09:00+00'),   -- before the first partition
                               (5, '2025-03-20 23:00+00');   -- same day as 2
SELECT tableoid::regclass AS partition, id FROM part.ev_def ORDER BY id;
SELECT default_rows FROM gb_scale.partition_status WHERE parent = 'part.ev_def'::regclass;
-- Maintenance creates the partition of each stray row's period, and only
-- those (an outlier in 2030 is one partition, not thousands), then moves the
-- rows: nothing is lost or duplicated and the default is empty.
CALL gb_run_maintenance('part.ev_def');
SELECT tableoid::regclass AS partition, id FROM part.ev_def ORDER BY id;
SELECT * FROM part.list('part.ev_def');
SELECT count(*) AS default_rows FROM ONLY part.ev_def_default;
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'part.ev_def'::regclass;
-- Without a default partition the same insert fails with 23514.
INSERT INTO part.events VALUES (9, '2030-01-15 08:00+00', 'outlier');

------------------------------------------------------------------------------
-- LIST parent: the tenants tail and dedicated tenants
------------------------------------------------------------------------------
CREATE TABLE part.chat (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    body text
) PARTITION BY LIST (tenant_id);
-- The tail (1) and its 5 time partitions.
SELECT gb_partition_create('part.chat', 'created_at', '1 day', tenant_column => 'tenant_id') AS created;
SELECT * FROM part.list('part.chat');
SELECT * FROM part.tree('part.chat');
SELECT layout FROM part.config WHERE parent = 'part.chat';
-- Tenants 1..5, 4 rows each per day, 03-10 .. 03-14: 100 rows.
INSERT INTO part.chat
SELECT row_number() OVER (), t, '2025-03-10 01:00+00'::timestamptz + d * interval '1 day' + r * interval '5 hours', 'm'
  FROM generate_series(1, 5) t, generate_series(0, 4) d, generate_series(0, 3) r;
SELECT count(*) AS rows, count(DISTINCT id) AS ids, count(*) FILTER (WHERE tenant_id = 3) AS tenant_3 FROM part.chat;
-- Dedicate tenant 3: its 20 rows move to part.chat_t3, with its own days.
SELECT gb_tenant_dedicate('part.chat', 3) AS moved;
SELECT count(*) AS rows, count(DISTINCT id) AS ids, count(*) FILTER (WHERE tenant_id = 3) AS tenant_3 FROM part.chat;
SELECT tenant_id, 'part.chat_t3'::regclass = ANY (ARRAY(SELECT pg_partition_ancestors(tableoid))) AS in_subtree, count(*)
  FROM part.chat GROUP BY 1, 2 ORDER BY 1, 2;
SELECT * FROM part.list('part.chat');
SELECT * FROM part.tree('part.chat');
SELECT * FROM part.gaps('part.chat');
SELECT parent::text, tenant_id, retention, subtree::text FROM gb_scale.partition_tenant ORDER BY parent::text COLLATE "C", tenant_id;
SELECT dedicated_tenants FROM gb_scale.partition_status WHERE parent = 'part.chat'::regclass;
-- New rows of tenant 3 go to its subtree, others to the tail.
INSERT INTO part.chat VALUES (1001, 3, '2025-03-12 12:00+00', 'new'), (1002, 4, '2025-03-12 12:00+00', 'new');
SELECT id, tableoid::regclass AS partition FROM part.chat WHERE id > 1000 ORDER BY id;
-- A tenant with no rows yet: nothing moved, the subtree exists.
SELECT gb_tenant_dedicate('part.chat', 99) AS moved;
SELECT partition, tenant_id, from_time FROM part.list('part.chat') WHERE tenant_id = 99;
-- Twice is an error (42710), as are an unregistered table (42704) and a
-- RANGE-layout table (42P17); nothing moved.
SELECT gb_tenant_dedicate('part.chat', 3);
SELECT gb_tenant_dedicate('part.c_ts', 3);
SELECT gb_tenant_dedicate('part.sess', 3);
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM part.chat;

-- Per-tenant retention on a dedicated tenant: 2 days for tenant 3.  At 03-14
-- 12:00 its partitions that end by 03-12 12:00 go (03-10, 03-11); the tail
-- and tenant 99 keep everything, and the horizon (03-18 12:00) is reached
-- in every subtree.
SELECT gb_tenant_retention('part.chat', 3, '2 days');
SELECT tenant_id, retention FROM gb_scale.partition_tenant WHERE parent = 'part.chat'::regclass ORDER BY 1;
SET gb_scale.test_now = '2025-03-14 12:00:00+00';
CALL gb_run_maintenance('part.chat');
SELECT * FROM part.list('part.chat');
SELECT * FROM part.gaps('part.chat');
SELECT tenant_id, count(*) FROM part.chat GROUP BY 1 ORDER BY 1;
SELECT to_regclass('part.chat_t3_p20250311') AS t3_0311, to_regclass('part.chat_tenants_p20250311')::text AS tail_0311;
-- NULL removes the override.
SELECT gb_tenant_retention('part.chat', 3, NULL);
SELECT tenant_id, retention FROM gb_scale.partition_tenant WHERE parent = 'part.chat'::regclass ORDER BY 1;
SELECT gb_tenant_retention('part.chat', 3, '-1 day');
SELECT gb_tenant_retention('part.events', 3, '2 days');
SELECT gb_tenant_retention('part.c_date_hour', 3, '2 days');
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

-- Per-tenant retention of tenants in the tail (LIST) or in hash buckets
-- (RANGE): their rows go period by period, as partitions would, other
-- tenants' rows stay.  Tenant 1 keeps 2 days at 03-14 12:00: its rows of
-- periods that end by 03-12 12:00 (03-10, 03-11) are deleted.  Tenant 2 of
-- the bucketed table keeps 1 day: 03-10 .. 03-12 go.
CREATE TABLE part.tail_ret (id bigint, tenant_id bigint NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY LIST (tenant_id);
CREATE TABLE part.hash_ret (id bigint, tenant_id bigint NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY RANGE (created_at);
SELECT gb_partition_create('part.tail_ret', 'created_at', '1 day', tenant_column => 'tenant_id') AS created;
SELECT gb_partition_create('part.hash_ret', 'created_at', '1 day', tenant_column => 'tenant_id', tenant_buckets => 2) AS created;
INSERT INTO part.tail_ret
SELECT row_number() OVER (), t, '2025-03-10 01:00+00'::timestamptz + d * interval '1 day' + r * interval '5 hours'
  FROM generate_series(1, 2) t, generate_series(0, 4) d, generate_series(0, 3) r;
INSERT INTO part.hash_ret SELECT * FROM part.tail_ret;
SELECT gb_tenant_retention('part.tail_ret', 1, '2 days');
SELECT gb_tenant_retention('part.hash_ret', 2, '1 day');
SELECT parent::text, tenant_id, retention, subtree FROM gb_scale.partition_tenant
 WHERE parent IN ('part.tail_ret'::regclass, 'part.hash_ret'::regclass) ORDER BY parent::text COLLATE "C", tenant_id;
SET gb_scale.test_now = '2025-03-14 12:00:00+00';
CALL gb_run_maintenance('part.tail_ret');
CALL gb_run_maintenance('part.hash_ret');
SELECT 'tail_ret' AS t, tenant_id, count(*), min(created_at) FROM part.tail_ret GROUP BY 1, 2
UNION ALL
SELECT 'hash_ret', tenant_id, count(*), min(created_at) FROM part.hash_ret GROUP BY 1, 2
 ORDER BY 1, 2;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

-- LIST + default partition: each time tree gets <tree>_default; 1 + 5 + 1.
CREATE TABLE part.chat_def (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL
) PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('part.chat_def', 'created_at', '1 day', tenant_column => 'tenant_id',
                           default_partition => true) AS created;
SELECT * FROM part.list('part.chat_def');
SELECT relation, parent, bound FROM part.tree('part.chat_def');
INSERT INTO part.chat_def VALUES (1, 1, '2025-04-01 10:00+00'), (2, 2, '2025-03-11 10:00+00');
CALL gb_run_maintenance('part.chat_def');
SELECT id, tableoid::regclass AS partition FROM part.chat_def ORDER BY id;

-- LIST + hash buckets in the tail: 1 + 5 * (1 + 2) = 16.
CREATE TABLE part.chat_hash (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL
) PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('part.chat_hash', 'created_at', '1 day', tenant_column => 'tenant_id',
                           tenant_buckets => 2) AS created;
SELECT relation, parent, bound, partkey FROM part.tree('part.chat_hash') WHERE relation LIKE '%20250310%' OR relation LIKE '%tenants';
SELECT count(*) AS leaves FROM gb_partition_list('part.chat_hash');

------------------------------------------------------------------------------
-- Profiles
------------------------------------------------------------------------------
-- messages: daily, 14 days ahead (03-10 .. 03-24: 15), 90 days retention.
CREATE TABLE part.p_messages (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.p_messages', 'at', NULL, profile => 'messages') AS created;
-- sessions: monthly, 3 months ahead (03 .. 06: 4), 2 months retention.
CREATE TABLE part.p_sessions (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.p_sessions', 'at', NULL, profile => 'sessions') AS created;
-- analytics: monthly, 3 months ahead (4), 12 months retention.
CREATE TABLE part.p_analytics (day date NOT NULL) PARTITION BY RANGE (day);
SELECT gb_partition_create('part.p_analytics', 'day', NULL, profile => 'analytics') AS created;
-- Explicit arguments win: messages with 2 days ahead (3) and 30 days retention.
CREATE TABLE part.p_override (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.p_override', 'at', NULL, premake => '2 days', retention => '30 days',
                           profile => 'messages') AS created;
-- ... and granularity: weekly messages, 14 days ahead (weeks of 03-10, 03-17, 03-24).
CREATE TABLE part.p_weekly (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.p_weekly', 'at', '1 week', profile => 'messages') AS created;
SELECT parent, granularity, premake, retention, profile FROM part.config
 WHERE parent LIKE 'part.p\_%' ORDER BY parent COLLATE "C";
SELECT partition, from_time, to_time FROM part.list('part.p_sessions');
SELECT partition, from_time, to_time FROM part.list('part.p_weekly');

------------------------------------------------------------------------------
-- Names that need quotes, and names too long for 63 bytes
------------------------------------------------------------------------------
CREATE SCHEMA "Quo ""ted"" Sch";
CREATE TABLE "Quo ""ted"" Sch"."Chat Log ""X""" (
    "Id" bigint NOT NULL,
    "Tenant Id" bigint NOT NULL,
    "Created ""At""" timestamptz NOT NULL
) PARTITION BY LIST ("Tenant Id");
SELECT gb_partition_create('"Quo ""ted"" Sch"."Chat Log ""X"""', 'Created "At"', '1 day',
                           tenant_column => 'Tenant Id', default_partition => true) AS created;
INSERT INTO "Quo ""ted"" Sch"."Chat Log ""X""" VALUES (1, 7, '2025-03-11 10:00+00'), (2, 8, '2025-03-11 10:00+00'),
                                                     (3, 7, '2025-03-30 10:00+00');
SELECT gb_tenant_dedicate('"Quo ""ted"" Sch"."Chat Log ""X"""', 7) AS moved;
CALL gb_run_maintenance('"Quo ""ted"" Sch"."Chat Log ""X"""');
SELECT gb_partition_ensure('"Quo ""ted"" Sch"."Chat Log ""X"""', '2025-03-08 00:00+00', '2025-03-09 00:00+00') AS ensured;
SELECT * FROM part.list('"Quo ""ted"" Sch"."Chat Log ""X"""');
-- (Gaps where ensure and the stray row asked for single days: 03-09 and
-- 03-15 .. 03-29 were never needed.)
SELECT * FROM part.gaps('"Quo ""ted"" Sch"."Chat Log ""X"""');
SELECT "Id", tableoid::regclass FROM "Quo ""ted"" Sch"."Chat Log ""X""" ORDER BY 1;
SELECT gb_partition_retention('"Quo ""ted"" Sch"."Chat Log ""X"""', '30 days', 'archive', 'Quo "ted" Sch');
SELECT gb_tenant_retention('"Quo ""ted"" Sch"."Chat Log ""X"""', 7, '5 days');
SELECT parent::text, control, time_zone, last_error FROM gb_scale.partition_status
 WHERE parent = '"Quo ""ted"" Sch"."Chat Log ""X"""'::regclass;
-- A RANGE parent whose control column needs quotes, with hash buckets.
CREATE TABLE "Quo ""ted"" Sch"."Ev" ("When" timestamptz NOT NULL, "Who?" bigint NOT NULL) PARTITION BY RANGE ("When");
SELECT gb_partition_create('"Quo ""ted"" Sch"."Ev"', 'When', '1 month', tenant_column => 'Who?', tenant_buckets => 2,
                           premake => '1 month') AS created;
SELECT * FROM part.tree('"Quo ""ted"" Sch"."Ev"');
-- 63 bytes: a 60-byte table name.  Each partition keeps its suffix, so the
-- names stay distinct.
CREATE TABLE part.a23456789_123456789_123456789_123456789_123456789_1234567890 (at timestamptz NOT NULL)
  PARTITION BY RANGE (at);
SELECT gb_partition_create('part.a23456789_123456789_123456789_123456789_123456789_1234567890', 'at', '1 day') AS created;
SELECT partition, octet_length(partition) - 5 AS name_bytes, from_time
  FROM part.list('part.a23456789_123456789_123456789_123456789_123456789_1234567890');
SELECT gb_partition_forget('part.a23456789_123456789_123456789_123456789_123456789_1234567890');

------------------------------------------------------------------------------
-- Bad input: its SQLSTATE, and nothing changed
------------------------------------------------------------------------------
CREATE TABLE part.bad_plain (at timestamptz NOT NULL, t bigint, txt text, i int);
CREATE TABLE part.bad_hash (at timestamptz NOT NULL, t bigint) PARTITION BY HASH (t);
CREATE TABLE part.bad_key (at timestamptz NOT NULL, t bigint, other timestamptz) PARTITION BY RANGE (other);
CREATE TABLE part.bad_two (at timestamptz NOT NULL, t bigint) PARTITION BY RANGE (at, t);
CREATE TABLE part.bad_expr (at timestamptz NOT NULL, t bigint) PARTITION BY RANGE ((t + 1));
CREATE TABLE part.bad_list (at timestamptz NOT NULL, t bigint, u bigint) PARTITION BY LIST (t);
CREATE TABLE part.bad_types (at timestamptz NOT NULL, txt text, i int, t bigint, n numeric)
  PARTITION BY RANGE (txt);
CREATE TABLE part.bad_int (i int NOT NULL) PARTITION BY RANGE (i);
CREATE TABLE part.bad_num (n numeric NOT NULL) PARTITION BY RANGE (n);
CREATE TABLE part.ok (at timestamptz NOT NULL, t bigint) PARTITION BY RANGE (at);
-- 42P17: not partitioned, or by the wrong strategy or key.
SELECT gb_partition_create('part.bad_plain', 'at', '1 day');
SELECT gb_partition_create('part.bad_hash', 'at', '1 day');
SELECT gb_partition_create('part.bad_key', 'at', '1 day');
SELECT gb_partition_create('part.bad_two', 'at', '1 day');
SELECT gb_partition_create('part.bad_expr', 't', '1 day');
SELECT gb_partition_create('part.bad_list', 'at', '1 day');
SELECT gb_partition_create('part.bad_list', 'at', '1 day', tenant_column => 'u');
-- 42703: a missing column.
SELECT gb_partition_create('part.ok', 'nope', '1 day');
SELECT gb_partition_create('part.ok', 'AT', '1 day');
SELECT gb_partition_create('part.ok', 'at', '1 day', tenant_column => 'nope', tenant_buckets => 2);
SELECT gb_partition_create('part.bad_list', 'nope', '1 day', tenant_column => 't');
-- 42804: a control column of another type.
SELECT gb_partition_create('part.bad_types', 'txt', '1 day');
SELECT gb_partition_create('part.bad_int', 'i', '1 day');
SELECT gb_partition_create('part.bad_num', 'n', '1 day');
-- 22023: granularity, premake, retention, profile, time zone, buckets.
SELECT gb_partition_create('part.ok', 'at', '2 days');
SELECT gb_partition_create('part.ok', 'at', '1 minute');
SELECT gb_partition_create('part.ok', 'at', '2 months');
SELECT gb_partition_create('part.ok', 'at', '1 day 1 hour');
SELECT gb_partition_create('part.ok', 'at', '0');
SELECT gb_partition_create('part.ok', 'at', '-1 day');
SELECT gb_partition_create('part.ok', 'at', NULL);
SELECT gb_partition_create('part.ok', 'at', '1 day', premake => '-1 day');
SELECT gb_partition_create('part.ok', 'at', '1 day', premake => '12 hours');
SELECT gb_partition_create('part.ok', 'at', '1 month', premake => '2 weeks');
SELECT gb_partition_create('part.ok', 'at', '1 day', retention => '-5 days');
SELECT gb_partition_create('part.ok', 'at', '1 day', retention => '12 hours');
SELECT gb_partition_create('part.ok', 'at', '1 day', profile => 'chat');
SELECT gb_partition_create('part.ok', 'at', NULL, profile => 'Messages ');
SELECT gb_partition_create('part.ok', 'at', '1 day', time_zone => 'Mars/Olympus_Mons');
SELECT gb_partition_create('part.ok', 'at', '1 day', time_zone => '');
SELECT gb_partition_create('part.ok', 'at', '1 day', tenant_column => 't', tenant_buckets => 0);
SELECT gb_partition_create('part.ok', 'at', '1 day', tenant_column => 't', tenant_buckets => -2);
SELECT gb_partition_create('part.c_date_hour', 'day', '1 hour');
-- 42710: already registered (and its partitions untouched).
SELECT gb_partition_create('part.events', 'created_at', '1 day');
SELECT gb_partition_create('part.events', 'created_at', '1 hour', premake => '2 hours');
-- 42704: not registered.
SELECT gb_partition_retention('part.ok', '30 days');
SELECT gb_partition_forget('part.ok');
SELECT gb_partition_ensure('part.ok', '2025-03-10', '2025-03-12');
SELECT gb_tenant_dedicate('part.ok', 1);
SELECT gb_tenant_retention('part.ok', 1, '30 days');
CALL gb_run_maintenance('part.ok');
-- gb_partition_retention: 22023 for a bad mode, a missing archive schema
-- name, a negative or too short retention.
SELECT gb_partition_retention('part.events', '30 days', 'delete');
SELECT gb_partition_retention('part.events', '30 days', 'archive');
SELECT gb_partition_retention('part.events', '-30 days');
SELECT gb_partition_retention('part.events', '1 hour');
-- Nothing of the above registered or created anything, or changed part.events.
SELECT count(*) AS registered_bad FROM gb_scale.partition_config
 WHERE parent::text LIKE 'part.bad\_%' OR parent = 'part.ok'::regclass;
SELECT count(*) AS partitions_of_bad FROM pg_inherits
 WHERE inhparent::regclass::text LIKE 'part.bad\_%' OR inhparent = 'part.ok'::regclass
    OR inhparent = 'part.c_date_hour'::regclass;
SELECT * FROM part.config WHERE parent = 'part.events';
SELECT count(*) AS partitions FROM gb_partition_list('part.events');

------------------------------------------------------------------------------
-- A registration that rolls back leaves nothing behind
------------------------------------------------------------------------------
BEGIN;
SELECT gb_partition_create('part.ok', 'at', '1 day', default_partition => true) AS created;
SELECT count(*) AS registered FROM gb_scale.partition_config WHERE parent = 'part.ok'::regclass;
ROLLBACK;
SELECT count(*) AS registered FROM gb_scale.partition_config WHERE parent = 'part.ok'::regclass;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'part.ok'::regclass;
SELECT count(*) AS tables_left FROM pg_class WHERE relname LIKE 'ok\_%' AND relnamespace = 'part'::regnamespace;
-- A registration rolled back to a savepoint likewise.
BEGIN;
SAVEPOINT s;
SELECT gb_partition_create('part.ok', 'at', '1 day');
ROLLBACK TO s;
SELECT count(*) AS registered FROM gb_scale.partition_config WHERE parent = 'part.ok'::regclass;
COMMIT;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'part.ok'::regclass;
-- And it can be registered afterwards.
SELECT gb_partition_create('part.ok', 'at', '1 day') AS created;

------------------------------------------------------------------------------
-- gb_partition_ensure: the partitions a backfill needs
------------------------------------------------------------------------------
-- part.ok has 03-10 .. 03-14.  [03-01, 03-05) needs 4; again, none.
SELECT gb_partition_ensure('part.ok', '2025-03-01 00:00+00', '2025-03-05 00:00+00') AS created;
SELECT gb_partition_ensure('part.ok', '2025-03-01 00:00+00', '2025-03-05 00:00+00') AS created;
-- Partial periods count whole: [03-07 12:00, 03-08 06:00) needs 03-07 and 03-08.
SELECT gb_partition_ensure('part.ok', '2025-03-07 12:00+00', '2025-03-08 06:00+00') AS created;
-- Overlapping what exists: only the missing ones (03-05, 03-06, 03-09).
SELECT gb_partition_ensure('part.ok', '2025-03-04 00:00+00', '2025-03-12 00:00+00') AS created;
SELECT partition, from_time, to_time FROM part.list('part.ok');
SELECT * FROM part.gaps('part.ok');
-- Far ahead (2026-01-01 .. 01-03) and far back are fine, with the gap left as is.
SELECT gb_partition_ensure('part.ok', '2026-01-01 00:00+00', '2026-01-03 00:00+00') AS created;
SELECT count(*) AS partitions, max(to_time) AS newest FROM gb_partition_list('part.ok');
-- With hash buckets every time partition comes with its buckets: 2 * (1 + 3).
SELECT gb_partition_ensure('part.sess', '2025-03-08 00:00+00', '2025-03-10 00:00+00') AS created;
SELECT partition, bucket, from_time FROM part.list('part.sess') WHERE from_time < '2025-03-10';
-- Snowflake IDs: bounds from gb_id_from_time as well.
SELECT gb_partition_ensure('part.c_ids', '2025-03-09 00:00+00', '2025-03-10 00:00+00') AS created;
SELECT l.partition, pg_get_expr(c.relpartbound, c.oid)
         = format('FOR VALUES FROM (%L) TO (%L)', gb_id_from_time(l.from_time), gb_id_from_time(l.to_time)) AS bounds_are_ids
  FROM part.list('part.c_ids') l JOIN pg_class c ON c.oid = l.partition::regclass
 WHERE l.from_time < '2025-03-10';

------------------------------------------------------------------------------
-- Retention: drop, detach, archive
------------------------------------------------------------------------------
-- Three tables from 03-01 (14 partitions each).  Retention 3 days at
-- 03-10 12:34:56: what ends by 03-07 12:34:56 goes, 03-01 .. 03-06 (6).
CREATE TABLE part.r_drop (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE part.r_detach (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE part.r_archive (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE SCHEMA part_archive;
SELECT gb_partition_create('part.r_drop', 'at', '1 day', start_at => '2025-03-01 00:00+00') AS created;
SELECT gb_partition_create('part.r_detach', 'at', '1 day', start_at => '2025-03-01 00:00+00') AS created;
SELECT gb_partition_create('part.r_archive', 'at', '1 day', start_at => '2025-03-01 00:00+00') AS created;
INSERT INTO part.r_drop SELECT d, '2025-03-01 12:00+00'::timestamptz + d * interval '1 day' FROM generate_series(0, 13) d;
INSERT INTO part.r_detach SELECT id, at FROM part.r_drop;
INSERT INTO part.r_archive SELECT id, at FROM part.r_drop;
SELECT gb_partition_retention('part.r_drop', '3 days');
SELECT gb_partition_retention('part.r_detach', '3 days', 'detach');
SELECT gb_partition_retention('part.r_archive', '3 days', 'archive', 'part_archive');
SELECT parent, retention, retention_mode, archive_schema FROM part.config
 WHERE parent LIKE 'part.r\_%' ORDER BY parent COLLATE "C";
-- Setting retention does nothing by itself; maintenance applies it.
SELECT count(*) AS partitions FROM gb_partition_list('part.r_drop');
CALL gb_run_maintenance();
SELECT partition, from_time FROM part.list('part.r_drop');
SELECT count(*) AS rows, min(id) AS oldest FROM part.r_drop;
SELECT count(*) AS partitions, min(from_time) AS oldest FROM gb_partition_list('part.r_detach');
SELECT count(*) AS partitions, min(from_time) AS oldest FROM gb_partition_list('part.r_archive');
-- Detached: standalone tables in place, rows kept.  Archived: the same, in
-- part_archive.  Dropped: gone.
SELECT n.nspname AS schema, c.relname, c.relispartition,
       EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = c.oid) AS inherits
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('part', 'part_archive')
   AND c.relname ~ '^r_(drop|detach|archive)_p2025030[1-7]$'
 ORDER BY 1, 2;
SELECT (SELECT count(*) FROM part.r_detach_p20250301) AS detached_rows,
       (SELECT count(*) FROM part_archive.r_archive_p20250306) AS archived_rows;
SELECT * FROM part.gaps('part.r_drop');
-- Again at the same clock: nothing more.
CALL gb_run_maintenance();
SELECT count(*) AS partitions FROM gb_partition_list('part.r_drop');
-- Back to "keep forever".
SELECT gb_partition_retention('part.r_drop', NULL);
SELECT parent, retention FROM part.config WHERE parent = 'part.r_drop';
SET gb_scale.test_now = '2025-03-11 12:34:56+00';
CALL gb_run_maintenance('part.r_drop');
SELECT count(*) AS partitions, min(from_time) AS oldest, max(to_time) AS newest FROM gb_partition_list('part.r_drop');
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
-- Retention of a snowflake-keyed table: by the time in the IDs.
SELECT gb_partition_ensure('part.c_ids', '2025-03-01 00:00+00', '2025-03-09 00:00+00') AS created;
SELECT gb_partition_retention('part.c_ids', '5 days');
CALL gb_run_maintenance('part.c_ids');
SELECT min(from_time) AS oldest, count(*) AS partitions FROM gb_partition_list('part.c_ids');

------------------------------------------------------------------------------
-- gb_partition_forget: unmanaged, partitions kept
------------------------------------------------------------------------------
SELECT gb_partition_forget('part.g_start');
SELECT count(*) AS registered FROM gb_scale.partition_config WHERE parent = 'part.g_start'::regclass;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'part.g_start'::regclass;
SELECT gb_partition_forget('part.g_start');
CALL gb_run_maintenance('part.g_start');
-- Registered again, it picks up the partitions it finds: nothing to create.
SELECT gb_partition_create('part.g_start', 'at', '1 day') AS created;
SELECT count(*) AS partitions FROM gb_partition_list('part.g_start');

------------------------------------------------------------------------------
-- DROP and RENAME of registered tables
------------------------------------------------------------------------------
CREATE SCHEMA part_ren;
CREATE TABLE part_ren.msgs (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part_ren.msgs', 'at', '1 day') AS created;
CREATE TABLE part.doomed (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('part.doomed', 'at', '1 day', default_partition => true) AS created;
CREATE TABLE part.doomed_list (t bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY LIST (t);
SELECT gb_partition_create('part.doomed_list', 'at', '1 day', tenant_column => 't') AS created;
SELECT gb_tenant_dedicate('part.doomed_list', 5) AS moved;
SELECT gb_tenant_retention('part.doomed_list', 5, '10 days');
-- A dropped table takes its configuration with it (and its tenants').
SELECT count(*) AS configs_before FROM gb_scale.partition_config;
DROP TABLE part.doomed;
DROP TABLE part.doomed_list;
SELECT count(*) AS configs_after FROM gb_scale.partition_config;
SELECT count(*) AS dangling_configs FROM gb_scale.partition_config c
 WHERE NOT EXISTS (SELECT FROM pg_class r WHERE r.oid = c.parent);
SELECT count(*) AS dangling_tenants FROM gb_scale.partition_tenant t
 WHERE NOT EXISTS (SELECT FROM pg_class r WHERE r.oid = t.parent);
-- Dropping one partition of a registered table: maintenance recreates it
-- if it is within the horizon.
DROP TABLE part.events_p20250316;
SET gb_scale.test_now = '2025-03-12 12:00:00+00';
CALL gb_run_maintenance('part.events');
SELECT to_regclass('part.events_p20250316')::text AS recreated;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
-- Renamed table and schema: the configuration follows; new partitions take
-- the new names; maintenance of everything still works.
ALTER TABLE part_ren.msgs RENAME TO messages;
ALTER SCHEMA part_ren RENAME TO part_renamed;
SELECT parent FROM part.config WHERE parent LIKE 'part_ren%';
SET gb_scale.test_now = '2025-03-12 12:00:00+00';
CALL gb_run_maintenance();
SELECT partition, from_time FROM part.list('part_renamed.messages');
SELECT parent, last_error FROM gb_scale.partition_status
 WHERE last_error IS NOT NULL OR last_success IS NULL ORDER BY parent::text COLLATE "C";
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
-- A table moved to another schema likewise.
ALTER TABLE part_renamed.messages SET SCHEMA part;
SELECT gb_partition_ensure('part.messages', '2025-03-20 00:00+00', '2025-03-21 00:00+00') AS created;
SELECT partition FROM part.list('part.messages') WHERE from_time >= '2025-03-15';
-- A renamed column: the control column follows too.
ALTER TABLE part.messages RENAME COLUMN at TO happened_at;
SELECT control FROM gb_scale.partition_status WHERE parent = 'part.messages'::regclass;
SELECT gb_partition_ensure('part.messages', '2025-03-22 00:00+00', '2025-03-23 00:00+00') AS created;

------------------------------------------------------------------------------
-- New partitions carry the parent's indexes, constraints, owner and grants,
-- and maintenance runs as the table's owner
------------------------------------------------------------------------------
CREATE ROLE regress_part_owner;
CREATE ROLE regress_part_reader;
CREATE ROLE regress_part_other;
CREATE SCHEMA part_own AUTHORIZATION regress_part_owner;
GRANT USAGE ON SCHEMA part_own TO regress_part_reader, regress_part_other;
-- Who evaluated an index expression (through a volatile function, so that it
-- can write): the owner, whoever runs maintenance.
CREATE TABLE part.who_ran (who text, sess text);
GRANT INSERT ON part.who_ran TO PUBLIC;
GRANT USAGE ON SCHEMA part TO PUBLIC;
CREATE FUNCTION part.note_who() RETURNS void LANGUAGE sql AS $$ INSERT INTO part.who_ran VALUES (current_user, session_user) $$;
CREATE FUNCTION part.marked(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM part.note_who();
    RETURN t;
END
$$;
SET ROLE regress_part_owner;
CREATE TABLE part_own.orders (
    id bigint NOT NULL,
    at timestamptz NOT NULL,
    amount numeric CHECK (amount >= 0),
    code text,
    UNIQUE (id, at)
) PARTITION BY RANGE (at);
CREATE INDEX orders_code ON part_own.orders (part.marked(code));
GRANT SELECT ON part_own.orders TO regress_part_reader;
GRANT INSERT, UPDATE ON part_own.orders TO regress_part_other;
SELECT gb_partition_create('part_own.orders', 'at', '1 day', default_partition => true) AS created;
INSERT INTO part_own.orders VALUES (1, '2025-03-10 10:00+00', 5, 'a'), (2, '2025-03-25 10:00+00', 7, 'b');
RESET ROLE;
DELETE FROM part.who_ran;
-- The superuser runs maintenance two days later: 03-15, 03-16 and the
-- stray row's 03-25 are created and the row moved, all as the owner.
SET gb_scale.test_now = '2025-03-12 12:00:00+00';
CALL gb_run_maintenance('part_own.orders');
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
SELECT DISTINCT who, sess = current_user AS by_this_session FROM part.who_ran ORDER BY 1;
SELECT id, tableoid::regclass AS partition FROM part_own.orders ORDER BY id;
SELECT c.relname, c.relowner::regrole AS owner,
       (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(c.relacl) a)
         IS NOT DISTINCT FROM (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(p.relacl) a) AS same_grants,
       (SELECT count(*) FROM pg_index x WHERE x.indrelid = c.oid) AS indexes,
       (SELECT string_agg(pg_get_constraintdef(k.oid), '; ' ORDER BY k.conname) FROM pg_constraint k
         WHERE k.conrelid = c.oid) AS constraints
  FROM pg_class c, pg_class p
 WHERE p.oid = 'part_own.orders'::regclass AND c.oid IN (SELECT relid FROM pg_partition_tree(p.oid) WHERE level > 0)
 ORDER BY 1;
SELECT array_agg(DISTINCT privilege_type ORDER BY privilege_type) AS reader_privileges
  FROM aclexplode((SELECT relacl FROM pg_class WHERE oid = 'part_own.orders_p20250316'::regclass)) x
 WHERE x.grantee = 'regress_part_reader'::regrole;
-- An ordinary role cannot register, change or run someone else's table: 42501.
CREATE TABLE part.not_mine (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SET ROLE regress_part_other;
SELECT gb_partition_create('part.not_mine', 'at', '1 day');
SELECT gb_partition_retention('part_own.orders', '1 day');
SELECT gb_partition_ensure('part_own.orders', '2025-03-01 00:00+00', '2025-03-02 00:00+00');
SELECT gb_partition_forget('part_own.orders');
SET gb_scale.test_now = '2030-01-01 00:00:00+00';
RESET ROLE;
SELECT count(*) AS partitions_of_orders FROM gb_partition_list('part_own.orders');
SELECT count(*) AS registered FROM gb_scale.partition_config
 WHERE parent IN ('part_own.orders'::regclass, 'part.not_mine'::regclass);
SELECT count(*) AS partitions_of_not_mine FROM pg_inherits WHERE inhparent = 'part.not_mine'::regclass;
-- The owner can do everything to its own table.
SET ROLE regress_part_owner;
SELECT gb_partition_ensure('part_own.orders', '2025-03-01 00:00+00', '2025-03-02 00:00+00') AS created;
SELECT gb_partition_retention('part_own.orders', '30 days');
CALL gb_run_maintenance('part_own.orders');
SELECT relowner::regrole AS owner FROM pg_class WHERE oid = 'part_own.orders_p20250301'::regclass;
RESET ROLE;

------------------------------------------------------------------------------
-- Status of everything still registered
------------------------------------------------------------------------------
SELECT parent::text COLLATE "C" AS parent, layout, control, control_type, granularity, time_zone,
       retention, retention_mode, tenant_buckets, dedicated_tenants, last_error
  FROM gb_scale.partition_status ORDER BY 1;
CALL gb_run_maintenance();
SELECT count(*) FILTER (WHERE last_error IS NOT NULL) AS failed,
       count(*) FILTER (WHERE last_success IS NULL) AS never_succeeded
  FROM gb_scale.partition_status;

-- Clean up: dropping the tables removes their configuration.
SET client_min_messages = warning;
DROP SCHEMA part CASCADE;
DROP SCHEMA part_archive CASCADE;
DROP SCHEMA part_renamed CASCADE;
DROP SCHEMA part_own CASCADE;
DROP SCHEMA "Quo ""ted"" Sch" CASCADE;
DROP ROLE regress_part_owner;
DROP ROLE regress_part_reader;
DROP ROLE regress_part_other;
RESET client_min_messages;
SELECT count(*) AS configs_left FROM gb_scale.partition_config;
SELECT count(*) AS tenants_left FROM gb_scale.partition_tenant;
RESET gb_scale.test_now;
RESET search_path;
RESET timezone;
RESET datestyle;
RESET intervalstyle;
