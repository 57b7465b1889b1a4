-- gb_shard_sync(source) also makes the plan tiers' defaults
-- (gb_scale.plan_setting) equal to the source shard's, checked here as
-- gb_plan_setting() checks them.  The other shard is another database of
-- this instance (see shard_sync.sql); connection strings are never printed.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP DATABASE IF EXISTS gb_sync_tiers;
RESET client_min_messages;
CREATE DATABASE gb_sync_tiers;
SELECT current_database() AS local_db,
       format('host=''%s'' port=%s dbname=gb_sync_tiers',
              replace(replace(trim(split_part(current_setting('unix_socket_directories'), ',', 1)),
                              '\', '\\'), '''', '\'''),
              current_setting('port')) AS src
\gset

\c gb_sync_tiers
CREATE EXTENSION gb_scale;
SELECT gb_plan_setting(0, 'statement_timeout', '5s'),
       gb_plan_setting(2, 'statement_timeout', '30s'),
       gb_plan_setting(2, 'app.model', 'gpt-4o-mini'),
       gb_plan_setting(3, 'work_mem', '64MB');
-- Tenants' own plans and values are tenant data: they are not synced.
SELECT gb_tenant_plan(1, 2), gb_tenant_setting(1, 'app.model', 'source only');

\c :local_db
\set VERBOSITY terse
-- Local: one row the source lacks, one it has with another value, one equal.
SELECT gb_plan_setting(1, 'lock_timeout', '1s'),
       gb_plan_setting(2, 'statement_timeout', '10s'),
       gb_plan_setting(3, 'work_mem', '64MB');
UPDATE gb_scale.plan_setting SET updated_at = '2025-01-01 00:00:00+00' WHERE tier = 3;
BEGIN;
SELECT gb_set_tenant(2);
SELECT gb_tenant_plan(2, 2);
SELECT gb_tenant_config('app.model', 'none') AS before_sync;
SELECT gb_shard_sync(:'src');
SELECT gb_tenant_config('app.model', 'none') AS after_sync_same_transaction;
COMMIT;
SELECT tier, gb_label(tier), name, kind, value FROM gb_scale.plan_setting ORDER BY tier, name COLLATE "C";
-- The equal row was not rewritten.
SELECT updated_at = '2025-01-01 00:00:00+00' AS equal_row_untouched FROM gb_scale.plan_setting WHERE tier = 3;
SELECT count(*) AS tenant_rows_synced FROM gb_scale.tenant_setting;
SELECT tenant_id, tier FROM gb_scale.tenant_plan ORDER BY tenant_id;
-- A second sync finds nothing to do and says nothing about tiers.
SELECT gb_shard_sync(:'src');

-- A value this shard refuses (22023, 42501 as from gb_plan_setting) fails
-- the whole sync: the directory and the tiers stay as they were.
\c gb_sync_tiers
INSERT INTO gb_scale.plan_setting (tier, name, kind, value) VALUES (1, 'work_mem', 'setting', '1');
\c :local_db
\set VERBOSITY terse
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (9, 'USA', 'us-east-1', 'dbname=nine', 1, 10);
SELECT gb_shard_sync(:'src');
\c gb_sync_tiers
UPDATE gb_scale.plan_setting SET value = 'postgres', name = 'role' WHERE tier = 1 AND name = 'work_mem';
\c :local_db
\set VERBOSITY terse
SELECT gb_shard_sync(:'src');
SELECT count(*) AS local_shards FROM gb_scale.shard_config;
SELECT tier, name, value FROM gb_scale.plan_setting ORDER BY tier, name COLLATE "C";

-- Clean up.
DELETE FROM gb_scale.shard_config;
TRUNCATE gb_scale.tenant_plan, gb_scale.tenant_setting, gb_scale.plan_setting;
DROP DATABASE gb_sync_tiers;
