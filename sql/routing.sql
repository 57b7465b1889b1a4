-- Shard routing: the directory's validation, the lookups, the cache and the
-- privileges.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_router;
DROP ROLE IF EXISTS regress_dir_admin;
RESET client_min_messages;

-- General Bots' example shards (DESIGN.md section 2).
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id) VALUES
    (1, 'USA', 'us-east-1', 'host=shard1.example port=5432 dbname=gb', 1, 1000000),
    (2, 'USA', 'us-west-2', 'host=shard2.example port=5432 dbname=gb', 1000001, 2000000),
    (3, 'BRA', 'sa-east-1', 'host=shard3.example port=5432 dbname=gb', 2000001, 3000000),
    (4, 'DEU', 'eu-central-1', 'host=shard4.example port=5432 dbname=gb', 3000001, 4000000);
SELECT shard_id, region_code, is_primary, is_active FROM gb_scale.shard_config ORDER BY 1;

-- Validation: every rule has its own constraint name.
\set VERBOSITY terse
INSERT INTO gb_scale.shard_config VALUES (1024, 'GBR', 'eu-west-2', 'x', false, true, 5000001, 6000000);
INSERT INTO gb_scale.shard_config VALUES (-1, 'GBR', 'eu-west-2', 'x', false, true, 5000001, 6000000);
INSERT INTO gb_scale.shard_config VALUES (5, 'gbr', 'eu-west-2', 'x', false, true, 5000001, 6000000);
INSERT INTO gb_scale.shard_config VALUES (5, 'GB', 'eu-west-2', 'x', false, true, 5000001, 6000000);
INSERT INTO gb_scale.shard_config VALUES (5, 'GBR', 'eu-west-2', 'x', false, true, 6000000, 5000001);
INSERT INTO gb_scale.shard_config VALUES (5, 'GBR', 'eu-west-2', 'x', false, true, 3999999, 5000000);
INSERT INTO gb_scale.shard_config VALUES (5, 'GBR', 'eu-west-2-but-a-much-longer-name-x', 'x', false, true, 1, 2);
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, min_tenant_id, max_tenant_id)
VALUES (5, 'GBR', 'eu-west-2', 5000001, 6000000);
-- An inactive shard may overlap; activating it may not.
INSERT INTO gb_scale.shard_config VALUES (5, 'GBR', 'eu-west-2', 'host=shard5.example', false, false, 3500000, 4500000);
UPDATE gb_scale.shard_config SET is_active = true WHERE shard_id = 5;
\set VERBOSITY default
-- One transaction may swap two ranges (the exclusion constraint is deferrable).
BEGIN;
SET CONSTRAINTS gb_scale.shard_config_active_ranges_disjoint DEFERRED;
UPDATE gb_scale.shard_config SET min_tenant_id = 2000001, max_tenant_id = 3000000 WHERE shard_id = 2;
UPDATE gb_scale.shard_config SET min_tenant_id = 1000001, max_tenant_id = 2000000 WHERE shard_id = 3;
SELECT gb_shard_for_tenant(1500000) AS swapped;
ROLLBACK;

-- Routing: the range rule, then an explicit entry overrides it.
SELECT gb_shard_for_tenant(1) AS t1, gb_shard_for_tenant(1000000) AS t1m, gb_shard_for_tenant(1000001) AS t1m1,
       gb_shard_for_tenant(3999999) AS t4;
SELECT gb_shard_for_tenant(4000001);
SELECT gb_shard_for_tenant(4200000) AS only_an_inactive_range;
SELECT gb_shard_for_tenant(NULL) IS NULL AS strict;
SELECT gb_tenant_assign(42, 4::smallint);
SELECT gb_shard_for_tenant(42) AS moved, gb_shard_connection(42) AS conn;
SELECT tenant_id, shard_id, region_code FROM gb_scale.tenant_shard_map ORDER BY 1;
-- Moving it again rewrites the entry (and its region), keeping created_at.
SELECT created_at AS first_created FROM gb_scale.tenant_shard_map WHERE tenant_id = 42 \gset
SELECT gb_tenant_assign(42, 3::smallint);
SELECT shard_id, region_code, created_at = :'first_created' AS created_kept
  FROM gb_scale.tenant_shard_map WHERE tenant_id = 42;
-- A tenant beyond every range, placed explicitly.
SELECT gb_tenant_assign(9000000, 1::smallint);
SELECT gb_shard_for_tenant(9000000) AS explicit_only;
-- Bad placements.
SELECT gb_tenant_assign(43, 7::smallint);
SELECT gb_tenant_assign(43, 5::smallint);
SELECT gb_tenant_assign(43, 2000::smallint);
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (44, 4, 'USA');
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (44, 8, 'USA');
\set VERBOSITY terse
DELETE FROM gb_scale.shard_config WHERE shard_id = 3;
\set VERBOSITY default
-- A shard's new region follows into its map entries.
UPDATE gb_scale.shard_config SET region_code = 'GBR' WHERE shard_id = 3;
SELECT tenant_id, shard_id, region_code FROM gb_scale.tenant_shard_map WHERE tenant_id = 42;
UPDATE gb_scale.shard_config SET region_code = 'BRA' WHERE shard_id = 3;

-- The cache sees the next statement's directory, and forgets a rollback.
SELECT gb_shard_for_tenant(500) AS before;
BEGIN;
UPDATE gb_scale.shard_config SET min_tenant_id = 1001 WHERE shard_id = 1;
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (500, 2, 'USA');
SELECT gb_shard_for_tenant(500) AS inside;
ROLLBACK;
SELECT gb_shard_for_tenant(500) AS after_rollback;
BEGIN;
SELECT gb_tenant_assign(500, 2::smallint);
SAVEPOINT s;
SELECT gb_tenant_assign(500, 4::smallint);
SELECT gb_shard_for_tenant(500) AS in_savepoint;
ROLLBACK TO s;
SELECT gb_shard_for_tenant(500) AS after_savepoint;
COMMIT;
SELECT gb_shard_for_tenant(500) AS committed;
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id = 500;
SELECT gb_shard_for_tenant(500) AS deleted;
TRUNCATE gb_scale.tenant_shard_map;
SELECT gb_shard_for_tenant(42) AS truncated;
-- A lookup inside a plpgsql loop sees each statement's directory.
DO $$
DECLARE s smallint;
BEGIN
    s := gb_shard_for_tenant(77);
    UPDATE gb_scale.shard_config SET is_active = false WHERE shard_id = 1;
    BEGIN
        s := gb_shard_for_tenant(77);
        RAISE NOTICE 'still routed to %', s;
    EXCEPTION WHEN no_data_found THEN
        RAISE NOTICE 'tenant 77 unrouted once its shard is inactive';
    END;
    RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
EXCEPTION WHEN raise_exception THEN NULL;
END
$$;
SELECT gb_shard_for_tenant(77) AS active_again;

-- This database's shard and the shard of an ID.
SELECT gb_current_shard() AS current_shard;
SELECT gb_shard_for_id(gb_next_id()) = gb_current_shard() AS own_ids;
SELECT gb_shard_for_id(gb_id_from_time('2025-01-01 00:00:00+00', 1023::smallint)) AS shard_1023;
-- The composite key General Bots asks for.
CREATE TABLE routed_msgs (
    shard_id smallint NOT NULL DEFAULT gb_current_shard(),
    id bigint NOT NULL DEFAULT gb_next_id(),
    tenant_id bigint NOT NULL,
    PRIMARY KEY (shard_id, id));
INSERT INTO routed_msgs (tenant_id) SELECT g FROM generate_series(1, 100) g;
SELECT count(*) AS n, count(DISTINCT id) AS ids, bool_and(shard_id = gb_shard_for_id(id)) AS shard_matches
  FROM routed_msgs;
DROP TABLE routed_msgs;

-- Privileges: routing is PUBLIC, the directory and placements are not.
CREATE ROLE regress_router;
CREATE ROLE regress_dir_admin IN ROLE gb_scale_admin;
SET ROLE regress_router;
SELECT gb_shard_for_tenant(1) AS anyone_routes;
SELECT gb_shard_connection(1);
SELECT gb_tenant_assign(45, 1::smallint);
SELECT count(*) FROM gb_scale.shard_config;
UPDATE gb_scale.shard_config SET connection_string = 'host=evil' WHERE shard_id = 1;
RESET ROLE;
SET ROLE regress_dir_admin;
SELECT gb_shard_connection(1) AS admin_reads;
SELECT gb_tenant_assign(45, 1::smallint);
UPDATE gb_scale.shard_config SET datacenter = 'us-east-1a' WHERE shard_id = 1;
RESET ROLE;
SELECT gb_shard_for_tenant(45), datacenter FROM gb_scale.shard_config WHERE shard_id = 1;
DROP ROLE regress_dir_admin;

-- A map too big to be read whole is looked up tenant by tenant, with the
-- same answers and the same visibility.
SET gb_scale.routing_map_cache_rows = 2;
SELECT count(gb_tenant_assign(t, 2::smallint)) AS placed FROM generate_series(46, 48) t;
SELECT t, gb_shard_for_tenant(t) FROM generate_series(44, 49) t;
BEGIN;
SELECT gb_tenant_assign(47, 1::smallint);
SELECT gb_shard_for_tenant(47) AS moved_in_transaction;
ROLLBACK;
SELECT gb_shard_for_tenant(47) AS after_rollback;
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id = 46;
SELECT gb_shard_for_tenant(46) AS deleted;
SET gb_scale.routing_map_cache_rows = 0;
SELECT t, gb_shard_for_tenant(t) FROM generate_series(45, 48) t;
RESET gb_scale.routing_map_cache_rows;
SELECT t, gb_shard_for_tenant(t) FROM generate_series(45, 48) t;
SET ROLE regress_router;
SET gb_scale.routing_map_cache_rows = 0;
RESET ROLE;
DROP ROLE regress_router;

-- pg_dump keeps the directory with the database.
SELECT c.relname, e.extname IS NOT NULL AS config_dump
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_extension e ON c.oid = ANY (e.extconfig)
 WHERE c.relname IN ('shard_config', 'tenant_shard_map', 'tenant_isolation') ORDER BY 1;

TRUNCATE gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;
