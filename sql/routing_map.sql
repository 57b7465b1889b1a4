-- Shard routing, issue 13: the directory read by column name, ranges up to
-- the ends of bigint, and the map held in shared memory.
\set VERBOSITY default
\set SHOW_CONTEXT never
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id) VALUES
    (1, 'USA', 'us-east-1', 'dbname=one', 1, 1000),
    (2, 'DEU', 'eu-central-1', 'dbname=two', 1001, 2000);
SELECT gb_tenant_assign(t, 2::smallint) FROM generate_series(1, 3) t;
SELECT gb_shard_for_tenant(1) AS t1, gb_shard_for_tenant(5) AS t5, gb_shard_for_tenant(1500) AS t1500;

-- Columns added to shard_config, many of them, dropped and re-added: the
-- lookups read the columns by name.
BEGIN;
ALTER TABLE gb_scale.shard_config ADD COLUMN weight int DEFAULT 7, ADD COLUMN notes text DEFAULT 'n';
SELECT gb_shard_for_tenant(5) AS t5, gb_shard_for_tenant(1500) AS t1500, gb_shard_connection(1500) AS conn;
SELECT format('ALTER TABLE gb_scale.shard_config %s',
              string_agg(format('ADD COLUMN extra_%s bigint DEFAULT %s', g, g), ', '))
  FROM generate_series(1, 200) g \gexec
SELECT gb_shard_for_tenant(5) AS t5, gb_shard_for_tenant(1500) AS t1500, gb_shard_connection(1500) AS conn;
ALTER TABLE gb_scale.shard_config DROP COLUMN datacenter, DROP COLUMN connection_string;
ALTER TABLE gb_scale.shard_config ADD COLUMN connection_string text, ADD COLUMN datacenter text;
UPDATE gb_scale.shard_config SET connection_string = 'dbname=re-added-' || shard_id;
SELECT gb_shard_for_tenant(5) AS t5, gb_shard_for_tenant(1500) AS t1500, gb_shard_connection(1500) AS conn;
UPDATE gb_scale.shard_config SET is_active = false WHERE shard_id = 2;
SELECT gb_shard_for_tenant(1500);
ROLLBACK;
-- The map's columns too, read by the triggers, the table lookups and the
-- shared map's load.
BEGIN;
ALTER TABLE gb_scale.tenant_shard_map ADD COLUMN a int, ADD COLUMN b text;
ALTER TABLE gb_scale.tenant_shard_map DROP COLUMN shard_id CASCADE;
ALTER TABLE gb_scale.tenant_shard_map ADD COLUMN shard_id smallint;
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (7, 2, 'DEU');
SELECT gb_shard_for_tenant(7) AS t7_own_change;
ROLLBACK;
-- A column of another type is refused, not misread.
BEGIN;
ALTER TABLE gb_scale.shard_config ALTER COLUMN min_tenant_id TYPE numeric;
SELECT gb_shard_for_tenant(1500);
ROLLBACK;
SELECT gb_shard_for_tenant(5) AS t5, gb_shard_for_tenant(1500) AS t1500, gb_shard_connection(1500) AS conn;

-- Active ranges may reach both ends of bigint, and still may not overlap.
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id) VALUES
    (3, 'BRA', 'sa-east-1', 'dbname=three', 2001, 9223372036854775807),
    (4, 'GBR', 'eu-west-2', 'dbname=four', -9223372036854775808, 0);
SELECT gb_shard_for_tenant(9223372036854775807) AS top, gb_shard_for_tenant(-9223372036854775808) AS bottom,
       gb_shard_for_tenant(0) AS zero;
\set VERBOSITY terse
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (5, 'JPN', 'ap-northeast-1', 'dbname=five', 9223372036854775807, 9223372036854775807);
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (5, 'JPN', 'ap-northeast-1', 'dbname=five', -9223372036854775808, -9223372036854775808);
\set VERBOSITY default
BEGIN;
SET CONSTRAINTS gb_scale.shard_config_active_ranges_disjoint DEFERRED;
UPDATE gb_scale.shard_config SET min_tenant_id = -9223372036854775808, max_tenant_id = 0 WHERE shard_id = 3;
UPDATE gb_scale.shard_config SET min_tenant_id = 2001, max_tenant_id = 9223372036854775807 WHERE shard_id = 4;
SELECT gb_shard_for_tenant(9223372036854775807) AS swapped_top;
COMMIT;
SELECT gb_shard_for_tenant(9223372036854775807) AS top, gb_shard_for_tenant(-9223372036854775808) AS bottom;
SELECT conname, contype, condeferrable, condeferred FROM pg_constraint
 WHERE conrelid = 'gb_scale.shard_config'::regclass AND contype = 'x';

-- The shared map: one row for this database in gb_scale.routing_status.
SELECT state, entries, capacity, bytes, committing FROM gb_scale.routing_status
 WHERE database = current_database();
SELECT loads AS loads_before, updates AS updates_before FROM gb_scale.routing_status
 WHERE database = current_database() \gset
-- A commit writes only what changed, and the next statement sees it.
SELECT gb_tenant_assign(2, 1::smallint);
SELECT gb_shard_for_tenant(2) AS moved;
SELECT loads - :loads_before AS reloads, updates - :updates_before AS updated, entries
  FROM gb_scale.routing_status WHERE database = current_database();
-- Own uncommitted changes, a rolled-back savepoint, a rollback.
BEGIN;
SELECT gb_tenant_assign(2, 2::smallint);
SELECT gb_shard_for_tenant(2) AS own_change;
SAVEPOINT s;
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id = 2;
SELECT gb_shard_for_tenant(2) AS deleted_in_savepoint;
ROLLBACK TO s;
SELECT gb_shard_for_tenant(2) AS after_rollback_to;
SAVEPOINT t;
SELECT gb_tenant_assign(3, 1::smallint);
RELEASE t;
SELECT gb_shard_for_tenant(3) AS released;
ROLLBACK;
SELECT gb_shard_for_tenant(2) AS t2, gb_shard_for_tenant(3) AS t3;
-- Delete and re-insert in one transaction; a tenant id changed in place.
BEGIN;
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id = 1;
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (1, 1, 'USA');
UPDATE gb_scale.tenant_shard_map SET tenant_id = 1001 WHERE tenant_id = 3;
COMMIT;
SELECT gb_shard_for_tenant(1) AS t1, gb_shard_for_tenant(3) AS t3_unmapped, gb_shard_for_tenant(1001) AS t1001;
SELECT entries, loads - :loads_before AS reloads FROM gb_scale.routing_status WHERE database = current_database();
-- Unrelated DDL, and DDL on the map itself, reload nothing.
CREATE TABLE routing_unrelated (x int);
DROP TABLE routing_unrelated;
ALTER TABLE gb_scale.tenant_shard_map ADD COLUMN scratch int;
ALTER TABLE gb_scale.tenant_shard_map DROP COLUMN scratch;
SELECT gb_shard_for_tenant(1) AS t1, gb_shard_for_tenant(1001) AS t1001;
SELECT loads - :loads_before AS reloads FROM gb_scale.routing_status WHERE database = current_database();
-- TRUNCATE, rolled back: nothing changes; committed: the map is reloaded.
BEGIN;
TRUNCATE gb_scale.tenant_shard_map;
SELECT gb_shard_for_tenant(1001) AS truncated_in_transaction;
ROLLBACK;
SELECT gb_shard_for_tenant(1001) AS after_rollback;
TRUNCATE gb_scale.tenant_shard_map;
SELECT state FROM gb_scale.routing_status WHERE database = current_database();
SELECT gb_shard_for_tenant(1001) AS truncated, gb_shard_for_tenant(2) AS t2;
SELECT state, entries, loads - :loads_before AS reloads FROM gb_scale.routing_status
 WHERE database = current_database();
-- More changes than are followed one by one: a reload.
SELECT count(gb_tenant_assign(t, 2::smallint)) FROM generate_series(1, 10001) t;
SELECT state, reload_requests > 0 AS reload_requested FROM gb_scale.routing_status WHERE database = current_database();
SELECT gb_shard_for_tenant(10001) AS t10001, gb_shard_for_tenant(10002) AS t10002;
SELECT state, entries, bytes_per_entry <= 64 AS at_most_64_bytes, loads - :loads_before AS reloads
  FROM gb_scale.routing_status WHERE database = current_database();
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id > 3;
SELECT state, entries FROM gb_scale.routing_status WHERE database = current_database();

-- A map bigger than gb_scale.routing_map_cache_rows is not held: lookups go
-- through the primary key, with the same answers and the same visibility.
SET gb_scale.routing_map_cache_rows = 2;
SELECT t, gb_shard_for_tenant(t) FROM generate_series(1, 4) t;
TRUNCATE gb_scale.tenant_shard_map;
SELECT count(gb_tenant_assign(t, 2::smallint)) FROM generate_series(1, 3) t;
SELECT t, gb_shard_for_tenant(t) FROM generate_series(1, 4) t;
SELECT state, entries, overflow_limit FROM gb_scale.routing_status WHERE database = current_database();
SELECT gb_tenant_assign(2, 1::smallint);
SELECT t, gb_shard_for_tenant(t) FROM generate_series(1, 4) t;
BEGIN;
SELECT gb_tenant_assign(3, 1::smallint);
SELECT gb_shard_for_tenant(3) AS own_change;
ROLLBACK;
SELECT gb_shard_for_tenant(3) AS rolled_back;
RESET gb_scale.routing_map_cache_rows;
SELECT t, gb_shard_for_tenant(t) FROM generate_series(1, 4) t;
SELECT state, entries, overflow_limit FROM gb_scale.routing_status WHERE database = current_database();

-- A session whose transaction changed the map never reads the map into
-- shared memory (it would read its own uncommitted changes): the others'
-- lookups never see a rolled-back change.
TRUNCATE gb_scale.tenant_shard_map;
BEGIN;
SELECT gb_tenant_assign(1, 2::smallint);
SELECT gb_shard_for_tenant(2) AS other_tenant, gb_shard_for_tenant(1) AS own_change;
SELECT state FROM gb_scale.routing_status WHERE database = current_database();
ROLLBACK;
SELECT gb_shard_for_tenant(1) AS rolled_back, gb_shard_for_tenant(2) AS t2;
SELECT state, entries FROM gb_scale.routing_status WHERE database = current_database();

-- PREPARE TRANSACTION of a map change is refused (its commit would come
-- from elsewhere).
BEGIN;
SELECT gb_tenant_assign(9, 1::smallint);
PREPARE TRANSACTION 'routing_map';
SELECT gb_shard_for_tenant(9) AS not_prepared;

-- Who may read the status.
CREATE ROLE regress_routing_reader;
SET ROLE regress_routing_reader;
SELECT count(*) FROM gb_scale.routing_status;
RESET ROLE;
GRANT pg_monitor TO regress_routing_reader;
SET ROLE regress_routing_reader;
SELECT count(*) > 0 AS monitor_reads FROM gb_scale.routing_status;
RESET ROLE;
DROP ROLE regress_routing_reader;

TRUNCATE gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;
