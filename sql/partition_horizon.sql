-- Passes that trust what an earlier look stored (gb_scale.partition_horizon)
-- and the sql_drop hook that only looks at what was dropped (issue 14,
-- items 14 and 16).  What a stored look and this session's cache of tree
-- members say follows transactions: a change is seen by the next command,
-- a rolled back one leaves nothing behind.
\set VERBOSITY terse
SET timezone = 'UTC';
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS hz CASCADE;
RESET client_min_messages;
CREATE SCHEMA hz;
SET gb_scale.test_now = '2025-03-10 12:00+00';
CREATE TABLE hz.ev (id bigint, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('hz.ev', 'created_at', '1 day', premake => '3 days', retention => '5 days');
CREATE TABLE hz.dv (id bigint, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('hz.dv', 'created_at', '1 day', premake => '1 day', default_partition => true);
CREATE VIEW hz.parts AS
SELECT i.inhparent::regclass AS parent, c.relname
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent IN ('hz.ev'::regclass, 'hz.dv'::regclass);

-- a full look stores until when each tree has nothing to do (next midnight,
-- when the premake horizon moves past the newest partition)
CALL gb_run_maintenance();
SELECT parent, tree::regclass, idle_from, idle_until FROM gb_scale.partition_horizon
 WHERE parent::text LIKE 'hz.%' ORDER BY 1;
SELECT parent, string_agg(relname, ' ' ORDER BY relname) FROM hz.parts GROUP BY 1 ORDER BY 1;

-- a partition detached behind the pass's back: the next command's pass
-- sees the tree changed (this session cached its members) and fills the gap
ALTER TABLE hz.ev DETACH PARTITION hz.ev_p20250312;
CALL gb_run_maintenance();
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;
DROP TABLE hz.ev_p20250312_2;
ALTER TABLE hz.ev ATTACH PARTITION hz.ev_p20250312 FOR VALUES FROM ('2025-03-12') TO ('2025-03-13');
CALL gb_run_maintenance();
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;

-- inside a transaction: the drop is seen by the next command, the pass
-- refills the period; the rollback leaves the tree and what was stored as
-- they were, and the next pass has nothing to do
CREATE TEMP TABLE stored AS SELECT tree, members, idle_until FROM gb_scale.partition_horizon;
BEGIN;
DROP TABLE hz.ev_p20250313;
CALL gb_run_maintenance('hz.ev');
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;
ROLLBACK;
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;
SELECT count(*) AS changed FROM gb_scale.partition_horizon h JOIN stored s USING (tree)
 WHERE (h.members, h.idle_until) IS DISTINCT FROM (s.members, s.idle_until);
CALL gb_run_maintenance();
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;

-- a change of the rules is seen at once: one more day of premake
UPDATE gb_scale.partition_config SET premake = '4 days' WHERE parent = 'hz.ev'::regclass;
CALL gb_run_maintenance();
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;

-- rows in the default partition are looked at on every pass
INSERT INTO hz.dv VALUES (1, '2025-03-01 08:00+00');
CALL gb_run_maintenance();
SELECT relname FROM hz.parts WHERE parent = 'hz.dv'::regclass ORDER BY 1;
SELECT count(*) AS in_default FROM hz.dv_default;

-- past the stored time: the next day's partition, and retention
SET gb_scale.test_now = '2025-03-11 00:30+00';
CALL gb_run_maintenance();
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;
SET gb_scale.test_now = '2025-03-16 00:30+00';
CALL gb_run_maintenance();
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;
-- the clock set back before what was stored: a full look again
SET gb_scale.test_now = '2025-03-05 12:00+00';
CALL gb_run_maintenance();
SELECT relname FROM hz.parts WHERE parent = 'hz.ev'::regclass ORDER BY 1;
SET gb_scale.test_now = '2025-03-16 00:30+00';

-- DROP: an unrelated table leaves every registration; a registered one
-- takes its rows with it, in the dropping transaction only
CREATE TABLE hz.unrelated (a int);
DROP TABLE hz.unrelated;
SELECT parent FROM gb_scale.partition_config WHERE parent::text LIKE 'hz.%' ORDER BY 1;
BEGIN;
DROP TABLE hz.ev CASCADE;
SELECT tree::regclass FROM gb_scale.partition_horizon WHERE parent::text LIKE 'hz.%' ORDER BY 1;
SELECT parent FROM gb_scale.partition_config WHERE parent::text LIKE 'hz.%' ORDER BY 1;
ROLLBACK;
SELECT parent FROM gb_scale.partition_config WHERE parent::text LIKE 'hz.%' ORDER BY 1;
DROP SCHEMA hz CASCADE;
SELECT count(*) AS left_over FROM gb_scale.partition_config WHERE parent::text LIKE 'hz.%';
SELECT count(*) AS left_over FROM gb_scale.partition_horizon h
 WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = h.parent);
RESET gb_scale.test_now;
