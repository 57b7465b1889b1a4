-- gb_shard_sync(source) also makes the plan tiers' resource limits
-- (gb_scale.plan_limit) and row quotas (gb_scale.plan_quota) equal to the
-- source shard's, checked here as gb_plan_limit() and gb_plan_quota() check
-- them.  A quota's table travels by schema and name and is resolved here.
-- The other shard is another database of this instance (see shard_sync.sql);
-- connection strings are never printed.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP DATABASE IF EXISTS gb_sync_tier_limits;
DROP SCHEMA IF EXISTS "sy Schema" CASCADE;
RESET client_min_messages;
CREATE DATABASE gb_sync_tier_limits;
SELECT current_database() AS local_db,
       format('host=''%s'' port=%s dbname=gb_sync_tier_limits',
              replace(replace(trim(split_part(current_setting('unix_socket_directories'), ',', 1)),
                              '\', '\\'), '''', '\'''),
              current_setting('port')) AS src
\gset

\c gb_sync_tier_limits
CREATE EXTENSION gb_scale;
-- Tables made in another order than here: their OIDs differ.
CREATE SCHEMA "sy Schema";
CREATE TABLE "sy Schema".notes (tenant_id bigint);
CREATE TABLE "sy Schema"."Msgs" (tenant_id bigint);
SELECT gb_plan_limit(0, 2, 20), gb_plan_limit(2, NULL, 100), gb_plan_limit(3, 50, 500);
SET client_min_messages = error;
-- (Two quotas on one table in one statement: the second call sees the
-- trigger the first created.)
SELECT gb_plan_quota(0, '"sy Schema"."Msgs"', 10, 100),
       gb_plan_quota(2, '"sy Schema"."Msgs"', NULL, 5000),
       gb_plan_quota(2, '"sy Schema".notes', NULL, 500);
-- Tenants' own limits and quotas are tenant data: they are not synced.
SELECT gb_tenant_limit(1, 1, 1), gb_tenant_quota(1, '"sy Schema".notes', 1, 1);
RESET client_min_messages;

\c :local_db
\set VERBOSITY terse
CREATE SCHEMA "sy Schema";
CREATE TABLE "sy Schema"."Msgs" (tenant_id bigint);
CREATE TABLE "sy Schema".notes (tenant_id bigint);
-- Local: rows the source lacks, rows it has with other values, equal rows.
SET client_min_messages = error;
SELECT gb_plan_limit(1, 3, NULL), gb_plan_limit(2, 5, 100), gb_plan_limit(3, 50, 500);
SELECT gb_plan_quota(2, '"sy Schema".notes', NULL, 500),
       gb_plan_quota(2, '"sy Schema"."Msgs"', 1, 5000),
       gb_plan_quota(3, '"sy Schema".notes', 1, 1);
RESET client_min_messages;
UPDATE gb_scale.plan_limit SET updated_at = '2025-01-01 00:00:00+00' WHERE tier = 3;
UPDATE gb_scale.plan_quota SET updated_at = '2025-01-01 00:00:00+00' WHERE tier = 2 AND tbl = '"sy Schema".notes'::regclass;
-- "Msgs" has its counting trigger from the quota of tier 2; notes too.
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname = 'gb_quota_count' ORDER BY 1::text;
DROP TRIGGER gb_quota_count ON "sy Schema"."Msgs";
SELECT gb_shard_sync(:'src');
SELECT tier, gb_label(tier), max_xacts, max_statements_per_second FROM gb_scale.plan_limit ORDER BY tier;
SELECT tier, gb_label(tier), tbl, rows_per_day, rows_per_month FROM gb_scale.plan_quota ORDER BY tier, tbl::text;
-- The equal rows were not rewritten.
SELECT updated_at = '2025-01-01 00:00:00+00' AS equal_limit_untouched FROM gb_scale.plan_limit WHERE tier = 3;
SELECT updated_at = '2025-01-01 00:00:00+00' AS equal_quota_untouched
  FROM gb_scale.plan_quota WHERE tier = 2 AND tbl = '"sy Schema".notes'::regclass;
-- A synced quota counts: its table has the trigger again, as gb_plan_quota would have put it.
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname = 'gb_quota_count' ORDER BY 1::text;
SELECT count(*) AS tenant_limits_synced FROM gb_scale.tenant_limit;
SELECT count(*) AS tenant_quotas_synced FROM gb_scale.tenant_quota;
-- A second sync finds nothing to do and says nothing about tiers.
SELECT gb_shard_sync(:'src');

-- A quota on a table this shard lacks fails the whole sync, naming the
-- table: the directory, the limits and the quotas stay as they were.
\c gb_sync_tier_limits
CREATE TABLE "sy Schema"."only there" (tenant_id bigint);
SET client_min_messages = error;
SELECT gb_plan_quota(1, '"sy Schema"."only there"', 3, NULL);
RESET client_min_messages;
SELECT gb_plan_limit(1, 9, 9);
\c :local_db
\set VERBOSITY default
\set SHOW_CONTEXT errors
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (9, 'USA', 'us-east-1', 'dbname=nine', 1, 10);
CREATE VIEW sy_stored AS
SELECT * FROM (
SELECT 'limit ' || tier AS what, max_xacts::bigint AS a, max_statements_per_second::bigint AS b FROM gb_scale.plan_limit
UNION ALL
SELECT 'quota ' || tier || ' ' || tbl::text, rows_per_day, rows_per_month FROM gb_scale.plan_quota) s
ORDER BY what COLLATE "C";
CREATE TABLE sy_before AS SELECT * FROM sy_stored;
-- The trigger the failing syncs put on "Msgs" (tier 0's row, checked first)
-- goes with them.
DROP TRIGGER gb_quota_count ON "sy Schema"."Msgs";
SELECT gb_shard_sync(:'src');
-- A view of that name is not a table (as gb_plan_quota says): refused too.
CREATE VIEW "sy Schema"."only there" AS SELECT 1::bigint AS tenant_id;
SELECT gb_shard_sync(:'src');
DROP VIEW "sy Schema"."only there";
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT count(*) AS local_shards FROM gb_scale.shard_config;
(SELECT * FROM sy_before EXCEPT SELECT * FROM sy_stored) UNION ALL (SELECT * FROM sy_stored EXCEPT SELECT * FROM sy_before);
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname = 'gb_quota_count' ORDER BY 1::text;

-- Values this shard refuses (22023 as from gb_plan_limit/gb_plan_quota)
-- fail the whole sync.  Only a source whose constraints were dropped sends them.
\c gb_sync_tier_limits
SET client_min_messages = error;
SELECT gb_plan_quota(1, '"sy Schema"."only there"', NULL, NULL);
RESET client_min_messages;
ALTER TABLE gb_scale.plan_limit DROP CONSTRAINT plan_limit_xacts;
UPDATE gb_scale.plan_limit SET max_xacts = 0 WHERE tier = 1;
\c :local_db
\set VERBOSITY default
\set SHOW_CONTEXT errors
SELECT gb_shard_sync(:'src');
\c gb_sync_tier_limits
UPDATE gb_scale.plan_limit SET max_xacts = 9 WHERE tier = 1;
ALTER TABLE gb_scale.plan_quota DROP CONSTRAINT plan_quota_month;
UPDATE gb_scale.plan_quota SET rows_per_month = -1 WHERE tier = 0;
\c :local_db
\set VERBOSITY default
\set SHOW_CONTEXT errors
SELECT gb_shard_sync(:'src');
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT count(*) AS local_shards FROM gb_scale.shard_config;
(SELECT * FROM sy_before EXCEPT SELECT * FROM sy_stored) UNION ALL (SELECT * FROM sy_stored EXCEPT SELECT * FROM sy_before);

SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname = 'gb_quota_count' ORDER BY 1::text;

-- Clean up.
DROP VIEW sy_stored;
DROP TABLE sy_before;
DELETE FROM gb_scale.shard_config;
TRUNCATE gb_scale.plan_limit, gb_scale.plan_quota;
DROP SCHEMA "sy Schema" CASCADE;
DROP DATABASE gb_sync_tier_limits;
