-- gb_scale default-partition drain (issue 14, items 5-7): rows no partition
-- can hold (NULL, infinities, the ends of each type's range) stay in the
-- default and are reported; a pass's drain work is bounded; a failing drain
-- never stops premake.
--
-- Nothing here may loop: every CALL runs under a statement_timeout (the old
-- code looped without checking for interrupts, which a timeout cannot stop;
-- run the old code with a memory limit to see it fail).
SET search_path = public, pg_catalog;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
SET statement_timeout = '120s';
CREATE SCHEMA drain;

-- Partitions (not the default) of a table, with their bounds.
CREATE FUNCTION drain.parts(p regclass)
RETURNS TABLE (partition text, from_time timestamptz, to_time timestamptz)
LANGUAGE sql AS $$
    SELECT l.partition::text, l.from_time, l.to_time
      FROM gb_partition_list(p) l
     WHERE NOT l.is_default
     ORDER BY l.from_time
$$;

------------------------------------------------------------------------------
-- Item 5: infinities and the ends of the ranges, for every control type
------------------------------------------------------------------------------
CREATE TABLE drain.ev (id bigint NOT NULL, at timestamptz) PARTITION BY RANGE (at);
SELECT gb_partition_create('drain.ev', 'at', '1 day', default_partition => true) AS created;
INSERT INTO drain.ev VALUES (1, '-infinity'), (2, 'infinity'), (3, NULL),
                            (4, '4714-11-24 00:00+00 BC'), (5, '0001-06-01 00:00+00'),
                            (6, '294276-12-31 23:00+00'), (7, '294274-06-01 00:00+00'),
                            (8, '2025-03-20 10:00+00');
CALL gb_run_maintenance('drain.ev');
-- the last two found their periods; the rest stay in the default
SELECT tableoid::regclass AS partition, id FROM drain.ev ORDER BY id;
SELECT default_rows, last_error IS NULL AS ok, last_error FROM gb_scale.partition_status
 WHERE parent = 'drain.ev'::regclass;
-- premake ran: the current period and the 4 after it
SELECT count(*) AS through_horizon FROM drain.parts('drain.ev')
 WHERE from_time >= '2025-03-10' AND to_time <= '2025-03-15';
-- the next pass (as the worker's) neither loops nor changes anything
CALL gb_run_maintenance();
SELECT count(*) AS partitions FROM drain.parts('drain.ev');
SELECT count(*) AS in_default FROM ONLY drain.ev_default;

-- Hours of timestamptz in a zone with a non-hour offset
CREATE TABLE drain.hr (id bigint NOT NULL, at timestamptz) PARTITION BY RANGE (at);
SELECT gb_partition_create('drain.hr', 'at', '1 hour', default_partition => true,
                           time_zone => 'Asia/Kathmandu') AS created;
INSERT INTO drain.hr VALUES (1, '-infinity'), (2, 'infinity'), (3, '294276-12-31 23:59:59+00'),
                            (4, '4714-11-24 00:00+00 BC'), (5, '2025-03-12 07:20+00');
CALL gb_run_maintenance('drain.hr');
SELECT tableoid::regclass AS partition, id FROM drain.hr ORDER BY id;
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'drain.hr'::regclass;

-- timestamp without time zone, by quarter
CREATE TABLE drain.ts (id bigint NOT NULL, at timestamp) PARTITION BY RANGE (at);
SELECT gb_partition_create('drain.ts', 'at', '3 months', default_partition => true,
                           time_zone => 'America/St_Johns') AS created;
INSERT INTO drain.ts VALUES (1, '-infinity'), (2, 'infinity'), (3, '294276-12-31 23:00'),
                            (4, '4714-11-24 00:00 BC'), (5, '2030-02-01 00:00');
CALL gb_run_maintenance('drain.ts');
SELECT tableoid::regclass AS partition, id FROM drain.ts ORDER BY id;
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'drain.ts'::regclass;

-- date, by year: date's range goes far past timestamp's
CREATE TABLE drain.dt (id bigint NOT NULL, day date) PARTITION BY RANGE (day);
SELECT gb_partition_create('drain.dt', 'day', '1 year', default_partition => true) AS created;
INSERT INTO drain.dt VALUES (1, '-infinity'), (2, 'infinity'), (3, '5874897-12-31'),
                            (4, '4714-11-24 BC'), (5, '294276-12-31'), (6, '2031-07-01');
CALL gb_run_maintenance('drain.dt');
SELECT tableoid::regclass AS partition, id FROM drain.dt ORDER BY id;
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'drain.dt'::regclass;

-- snowflake IDs (bigint) at their extremes
CREATE TABLE drain.sf (id bigint) PARTITION BY RANGE (id);
SELECT gb_partition_create('drain.sf', 'id', '1 day', default_partition => true) AS created;
INSERT INTO drain.sf VALUES (-9223372036854775808), (-1), (9223372036854775807),
                            (gb_id_from_time('2025-04-02 00:00+00')), (NULL);
CALL gb_run_maintenance('drain.sf');
SELECT tableoid::regclass AS partition, id FROM drain.sf ORDER BY id;
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'drain.sf'::regclass;

-- an ID of the epoch's first hours, whose day (in New York) began before
-- the epoch: its period fails, is recorded, and the next one is moved
CREATE TABLE drain.sf_ny (id bigint) PARTITION BY RANGE (id);
SELECT gb_partition_create('drain.sf_ny', 'id', '1 day', default_partition => true,
                           time_zone => 'America/New_York', start_at => '2025-03-10 12:00+00') AS created;
INSERT INTO drain.sf_ny VALUES (gb_id_from_time('2024-01-01 02:00+00')), (gb_id_from_time('2024-01-01 03:00+00')),
                               (gb_id_from_time('2025-04-02 12:00+00'));
CALL gb_run_maintenance('drain.sf_ny');
SELECT tableoid::regclass AS partition, gb_id_timestamp(id) FROM drain.sf_ny ORDER BY id;
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'drain.sf_ny'::regclass;

------------------------------------------------------------------------------
-- Item 6: at most gb_scale.maintenance_drain_limit periods per transaction
------------------------------------------------------------------------------
CREATE TABLE drain.many (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('drain.many', 'at', '1 day', default_partition => true) AS created;
-- 7 stray periods, 2 rows each
INSERT INTO drain.many SELECT g, '2026-01-01 00:00+00'::timestamptz + (g / 2) * interval '1 day'
  FROM generate_series(0, 13) g;
SET gb_scale.maintenance_drain_limit = 3;
-- In a transaction block a pass cannot commit: it moves 3 periods, the
-- next pass the following ones.
BEGIN;
CALL gb_run_maintenance('drain.many');
COMMIT;
SELECT count(*) AS stray_partitions FROM drain.parts('drain.many') WHERE from_time >= '2026-01-01';
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'drain.many'::regclass;
-- Outside one, the pass goes on in transactions of its own, at most 3
-- periods each: an event trigger logs the transaction that creates each
-- period's partition (a move fires no trigger of the table).
CREATE TABLE drain.moves (txid bigint, at timestamptz);
CREATE FUNCTION drain.log_move() RETURNS event_trigger LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO drain.moves
    SELECT txid_current(), to_timestamp(substr(c.object_identity, 13, 8), 'YYYYMMDD')
      FROM pg_event_trigger_ddl_commands() c
     WHERE c.object_identity LIKE 'drain.many\_p2026%';
END
$$;
CREATE EVENT TRIGGER drain_log_move ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION drain.log_move();
INSERT INTO drain.many SELECT g, '2026-02-01 00:00+00'::timestamptz + (g / 2) * interval '1 day'
  FROM generate_series(14, 27) g;
CALL gb_run_maintenance('drain.many');
DROP EVENT TRIGGER drain_log_move;
SELECT count(*) AS stray_partitions FROM drain.parts('drain.many') WHERE from_time >= '2026-01-01';
-- 11 periods: 3 + 3 + 3 + 2
SELECT count(*) AS transactions, max(n) AS most_in_one, sum(n) AS periods
  FROM (SELECT txid, count(DISTINCT date_trunc('day', at)) AS n FROM drain.moves GROUP BY txid) t;
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'drain.many'::regclass;
-- every row once, each in its own day
SELECT count(*) AS rows, count(DISTINCT tableoid) AS tables,
       bool_and(tableoid::regclass::text LIKE 'drain.many_p2026%') AS placed
  FROM drain.many;
RESET gb_scale.maintenance_drain_limit;
-- only a superuser sets it
CREATE ROLE regress_drain_user;
SET ROLE regress_drain_user;
SET gb_scale.maintenance_drain_limit = 5;
RESET ROLE;

------------------------------------------------------------------------------
-- Item 7: a drain that fails does not stop premake or the other periods
------------------------------------------------------------------------------
CREATE TABLE drain.bad (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('drain.bad', 'at', '1 day', default_partition => true) AS created;
-- a partition of another shape where a stray period would go
CREATE TABLE drain.bad_half PARTITION OF drain.bad
  FOR VALUES FROM ('2025-03-20 00:00+00') TO ('2025-03-20 12:00+00');
INSERT INTO drain.bad VALUES (1, '2025-03-20 15:00+00'),     -- its day overlaps bad_half
                             (2, '2025-03-25 10:00+00'),     -- a day of its own
                             (3, '294276-12-31 23:00+00');   -- past every period
-- days later, with the rows still there: premake must go on
SET gb_scale.test_now = '2025-03-13 12:00:00+00';
CALL gb_run_maintenance('drain.bad');
SELECT tableoid::regclass AS partition, id FROM drain.bad ORDER BY id;
SELECT count(*) AS through_horizon FROM drain.parts('drain.bad')
 WHERE from_time >= '2025-03-13' AND to_time <= '2025-03-18';
SELECT last_success IS NOT NULL AS succeeded_once, last_error FROM gb_scale.partition_status
 WHERE parent = 'drain.bad'::regclass;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

-- One row at the end of timestamptz's range, alone in the default: days
-- later premake still makes today's partitions.
CREATE TABLE drain.far (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('drain.far', 'at', '1 day', default_partition => true) AS created;
INSERT INTO drain.far VALUES (1, '294276-12-31 23:00+00');
SET gb_scale.test_now = '2025-03-13 12:00:00+00';
CALL gb_run_maintenance('drain.far');
SELECT count(*) AS through_horizon FROM drain.parts('drain.far')
 WHERE from_time >= '2025-03-13' AND to_time <= '2025-03-18';
SELECT default_rows, last_error FROM gb_scale.partition_status WHERE parent = 'drain.far'::regclass;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

-- A drain that fails on every pass.  (Rows that arrive meanwhile, a trickle
-- of future-dated rows, no longer make it fail: their writers wait for the
-- move, then go to the new partition.)  Here a trigger on the default that
-- adds one in the move's own transaction, enabled ALWAYS: a move would fire
-- it, so it is refused.
CREATE TABLE drain.trickle (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('drain.trickle', 'at', '1 day', default_partition => true) AS created;
CREATE FUNCTION drain.one_more() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO drain.trickle VALUES (100, '2025-04-01 10:00+00');
    RETURN NULL;
END
$$;
CREATE TRIGGER one_more AFTER DELETE ON drain.trickle_default
  FOR EACH ROW EXECUTE FUNCTION drain.one_more();
ALTER TABLE drain.trickle_default ENABLE ALWAYS TRIGGER one_more;
INSERT INTO drain.trickle VALUES (1, '2025-04-01 09:00+00');
SET gb_scale.test_now = '2025-03-14 12:00:00+00';
CALL gb_run_maintenance('drain.trickle');
SELECT count(*) AS through_horizon FROM drain.parts('drain.trickle')
 WHERE from_time >= '2025-03-14' AND to_time <= '2025-03-19';
SELECT tableoid::regclass AS partition, id FROM drain.trickle ORDER BY id;
SELECT last_error FROM gb_scale.partition_status
 WHERE parent = 'drain.trickle'::regclass;
-- the trickle stops: the next pass drains the period
DROP TRIGGER one_more ON drain.trickle_default;
CALL gb_run_maintenance('drain.trickle');
SELECT tableoid::regclass AS partition, id FROM drain.trickle ORDER BY id;
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'drain.trickle'::regclass;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

------------------------------------------------------------------------------
-- at_risk: partitions stop short of the premake horizon (monitoring alerts)
------------------------------------------------------------------------------
CREATE TABLE drain.risk (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('drain.risk', 'at', '1 month', time_zone => 'Europe/Berlin') AS created;
SELECT ahead, at_risk FROM gb_scale.partition_status WHERE parent = 'drain.risk'::regclass;
-- rows stuck in a default partition do not put the horizon at risk
SELECT at_risk, default_rows FROM gb_scale.partition_status WHERE parent = 'drain.ev'::regclass;
-- a month without maintenance
SET gb_scale.test_now = '2025-04-10 12:34:56+00';
SELECT ahead, at_risk FROM gb_scale.partition_status WHERE parent = 'drain.risk'::regclass;
CALL gb_run_maintenance('drain.risk');
SELECT ahead, at_risk FROM gb_scale.partition_status WHERE parent = 'drain.risk'::regclass;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

SET client_min_messages = warning;
DROP SCHEMA drain CASCADE;
DROP ROLE regress_drain_user;
RESET client_min_messages;
