-- gb_shard_sync on directories of thousands of placements: compared by
-- buckets, only the rows that differ are written; the cap on what a source
-- may send (gb_scale.sync_max_rows); extra columns on either side are not
-- read (item 6 of issue 13: by name, never by position).
\setenv PGTZ UTC
\setenv PGDATESTYLE 'ISO, YMD'
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

SET client_min_messages = warning;
DROP DATABASE IF EXISTS gb_sync_big;
RESET client_min_messages;
CREATE DATABASE gb_sync_big;
SELECT current_database() AS local_db,
       format('host=''%s'' port=%s dbname=gb_sync_big',
              replace(replace(trim(split_part(current_setting('unix_socket_directories'), ',', 1)),
                              '\', '\\'), '''', '\'''),
              current_setting('port')) AS src
\gset

-- The source: 3 shards, 6000 placements (negative ids too, some without
-- created_at), and columns the extension does not have, one of them added,
-- dropped and added again.
\c gb_sync_big
CREATE EXTENSION gb_scale;
ALTER TABLE gb_scale.shard_config ADD COLUMN weight int DEFAULT 7, ADD COLUMN notes text DEFAULT 'src';
ALTER TABLE gb_scale.tenant_shard_map ADD COLUMN extra text DEFAULT 'x';
ALTER TABLE gb_scale.tenant_shard_map DROP COLUMN extra;
ALTER TABLE gb_scale.tenant_shard_map ADD COLUMN extra int DEFAULT 1;
INSERT INTO gb_scale.shard_config
       (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id, created_at)
VALUES (1, 'BRA', 'sao-paulo-1', 'host=shard1', -100000, 999, '2025-01-01 10:00:00+00'),
       (2, 'USA', 'virginia-1', 'host=shard2', 1000, 1999, '2025-02-01 10:00:00+00'),
       (3, 'DEU', 'frankfurt-1', 'host=shard3', 2000, 2999, '2025-03-01 10:00:00+00');
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code, created_at)
SELECT t, s, (ARRAY['BRA', 'USA', 'DEU'])[s],
       CASE WHEN t % 7 = 0 THEN NULL ELSE timestamptz '2025-06-01 00:00:00+00' + t * interval '1 second' END
  FROM generate_series(-1000, 4999) t, LATERAL (SELECT 1 + (abs(t) % 3) AS s) x;

-- This shard: empty.
\c :local_db
SELECT gb_shard_sync(:'src');
\c gb_sync_big
SELECT md5(string_agg(format('%s|%s|%s|%s', tenant_id, shard_id, region_code, created_at), ';' ORDER BY tenant_id)) AS src_map
  FROM gb_scale.tenant_shard_map \gset
\c :local_db
SELECT count(*) AS placements,
       md5(string_agg(format('%s|%s|%s|%s', tenant_id, shard_id, region_code, created_at), ';' ORDER BY tenant_id)) = :'src_map' AS map_equal
  FROM gb_scale.tenant_shard_map;

-- Nothing new: nothing written.
CREATE TEMP TABLE before AS SELECT tenant_id, xmin::text AS x FROM gb_scale.tenant_shard_map;
SELECT gb_shard_sync(:'src');
SELECT count(*) AS rewritten FROM gb_scale.tenant_shard_map m JOIN before b USING (tenant_id) WHERE m.xmin::text <> b.x;

-- A few changes on the source, one local placement the source never had,
-- one local placement changed: exactly those rows are written.
\c gb_sync_big
UPDATE gb_scale.tenant_shard_map SET shard_id = 2, region_code = 'USA' WHERE tenant_id IN (-999, 3, 4000) AND shard_id <> 2;
UPDATE gb_scale.tenant_shard_map SET created_at = NULL WHERE tenant_id = 10;
UPDATE gb_scale.tenant_shard_map SET created_at = '2020-01-01 00:00:00+00' WHERE tenant_id = 14;
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id IN (-5, 2500);
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code, created_at)
VALUES (9000000000, 3, 'DEU', '2026-01-01 00:00:00+00'), (-9000000000, 1, 'BRA', NULL);
SELECT md5(string_agg(format('%s|%s|%s|%s', tenant_id, shard_id, region_code, created_at), ';' ORDER BY tenant_id)) AS src_map
  FROM gb_scale.tenant_shard_map \gset
\c :local_db
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (777777, 1, 'BRA');
UPDATE gb_scale.tenant_shard_map SET shard_id = 3, region_code = 'DEU' WHERE tenant_id = 1002;
CREATE TEMP TABLE before AS SELECT tenant_id, xmin::text AS x FROM gb_scale.tenant_shard_map;
SELECT gb_shard_sync(:'src');
SELECT md5(string_agg(format('%s|%s|%s|%s', tenant_id, shard_id, region_code, created_at), ';' ORDER BY tenant_id)) = :'src_map' AS map_equal
  FROM gb_scale.tenant_shard_map;
SELECT tenant_id FROM gb_scale.tenant_shard_map m JOIN before b USING (tenant_id)
 WHERE m.xmin::text <> b.x ORDER BY tenant_id;
-- Extra columns here too (in a transaction: the routing code of other tests
-- reads these tables): neither read nor written.
BEGIN;
ALTER TABLE gb_scale.tenant_shard_map ADD COLUMN note text DEFAULT 'local';
ALTER TABLE gb_scale.tenant_shard_map DROP COLUMN note;
ALTER TABLE gb_scale.tenant_shard_map ADD COLUMN note text DEFAULT 'local';
ALTER TABLE gb_scale.shard_config ADD COLUMN local_only boolean DEFAULT true;
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id IN (1, 2, 3);
UPDATE gb_scale.tenant_shard_map SET created_at = NULL WHERE tenant_id = 20;
UPDATE gb_scale.shard_config SET datacenter = 'elsewhere' WHERE shard_id = 3;
SELECT gb_shard_sync(:'src');
SELECT md5(string_agg(format('%s|%s|%s|%s', tenant_id, shard_id, region_code, created_at), ';' ORDER BY tenant_id)) = :'src_map' AS map_equal
  FROM gb_scale.tenant_shard_map;
SELECT note, count(*) FROM gb_scale.tenant_shard_map GROUP BY note ORDER BY note;
SELECT shard_id, datacenter, local_only FROM gb_scale.shard_config ORDER BY shard_id;
ROLLBACK;

------------------------------------------------------------------------------
-- The cap on what a source may send
------------------------------------------------------------------------------
-- 3 shards and 6000 placements: 6003 rows.
SET gb_scale.sync_max_rows = 2;
SELECT gb_shard_sync(:'src');
SET gb_scale.sync_max_rows = 1000;
SELECT gb_shard_sync(:'src');
\echo :LAST_ERROR_SQLSTATE
SET gb_scale.sync_max_rows = 6002;
SELECT gb_shard_sync(:'src');
SET gb_scale.sync_max_rows = 6003;
SELECT gb_shard_sync(:'src');
RESET gb_scale.sync_max_rows;
-- A superuser's setting.
CREATE ROLE regress_sync_capper IN ROLE gb_scale_admin;
SET ROLE regress_sync_capper;
SET gb_scale.sync_max_rows = 100000000;
RESET ROLE;
DROP ROLE regress_sync_capper;

-- Clean up.
DELETE FROM gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;
DROP DATABASE gb_sync_big;
