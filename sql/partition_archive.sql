-- Archiving into one schema tables whose partitions have the same names
-- (issue 14, item 10).  s1.events and s2.events both archive into arch: the
-- first partition keeps its name, the second takes its schema's name as a
-- prefix, and a third the next free suffix; indexes are renamed alike.  No
-- pass fails, and the archived tables hold their rows.
\set VERBOSITY terse
SET timezone = 'UTC';
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS s1, s2, arch CASCADE;
RESET client_min_messages;
CREATE SCHEMA s1;
CREATE SCHEMA s2;
CREATE SCHEMA arch;
SET gb_scale.test_now = '2025-03-10 12:00+00';
CREATE TABLE s1.events (id integer NOT NULL, created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at))
    PARTITION BY RANGE (created_at);
CREATE TABLE s2.events (LIKE s1.events INCLUDING ALL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('s1.events', 'created_at', '1 day', premake => '2 days', start_at => '2025-03-01') > 0 AS s1;
SELECT gb_partition_create('s2.events', 'created_at', '1 day', premake => '2 days', start_at => '2025-03-01') > 0 AS s2;
INSERT INTO s1.events VALUES (1, '2025-03-01 10:00+00');
INSERT INTO s2.events VALUES (2, '2025-03-01 11:00+00');
-- a table in the archive already bears the name the second one would take
CREATE TABLE arch.s2_events_p20250302 (x integer);
SELECT gb_partition_retention('s1.events', '7 days', 'archive', 'arch');
SELECT gb_partition_retention('s2.events', '7 days', 'archive', 'arch');
CALL gb_run_maintenance();
SELECT parent, last_error FROM gb_scale.partition_config
 WHERE parent IN ('s1.events'::regclass, 's2.events'::regclass) ORDER BY parent::text;
SELECT c.relname, (SELECT string_agg(i.relname, ', ' ORDER BY i.relname) FROM pg_index x
                    JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid) AS indexes
  FROM pg_class c WHERE c.relnamespace = 'arch'::regnamespace AND c.relkind = 'r' ORDER BY c.relname COLLATE "C";
SELECT * FROM arch.events_p20250301;
SELECT * FROM arch.s2_events_p20250301;
-- the partitions still attached begin at the retention cutoff
SELECT min(from_time) FROM gb_partition_list('s1.events') WHERE NOT is_default;
SELECT min(from_time) FROM gb_partition_list('s2.events') WHERE NOT is_default;

SET client_min_messages = warning;
DROP SCHEMA s1, s2, arch CASCADE;
RESET client_min_messages;
