-- gb_tenant_export and gb_tenant_purge include a tenant's resource limits
-- (gb_scale.tenant_limit) and row quotas (gb_scale.tenant_quota), and what
-- export gives can be put back with the README's move route.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_te_app;
DROP ROLE IF EXISTS regress_te_admin;
DROP SCHEMA IF EXISTS "te Schema" CASCADE;
RESET client_min_messages;
CREATE ROLE regress_te_app;
CREATE ROLE regress_te_admin IN ROLE gb_scale_admin;
CREATE SCHEMA "te Schema";
CREATE TABLE "te Schema"."Events" (tenant_id bigint, body text);
CREATE TABLE "te Schema".notes (tenant_id bigint, body text);

-- Tenant 1 has only a limit and quotas (no plan, no setting); tenant 2 has
-- a plan and a quota; tenant 3 nothing.
SELECT gb_tenant_limit(1, 4, NULL);
SELECT gb_tenant_quota(1, '"te Schema"."Events"', 100, 1000);
SELECT gb_tenant_quota(1, '"te Schema".notes', NULL, 50);
SELECT gb_tenant_plan(2, 1);
SELECT gb_tenant_quota(2, '"te Schema".notes', 7, NULL);

-- The quota's table goes out by its quoted, schema-qualified name, whatever
-- the reader's search_path.
SET search_path = "te Schema", public;
SELECT table_name, row_data - 'updated_at' AS row_data FROM gb_tenant_export(1) ORDER BY 1::text, 2::text;
RESET search_path;
SELECT table_name, row_data - 'updated_at' AS row_data FROM gb_tenant_export(2) ORDER BY 1::text, 2::text;
SELECT count(*) AS tenant_3_rows FROM gb_tenant_export(3);

-- Limits and quotas are gb_scale_admin's: anyone else gets 42501 for a
-- tenant that has any, before anything is read or removed.
SET ROLE regress_te_app;
SELECT * FROM gb_tenant_export(1);
SELECT * FROM gb_tenant_purge(1);
SELECT count(*) AS tenant_3_rows FROM gb_tenant_export(3);
RESET ROLE;
SELECT count(*) AS limits_kept FROM gb_scale.tenant_limit;
SELECT count(*) AS quotas_kept FROM gb_scale.tenant_quota;

-- Export, purge, import as README's "Tenant export, purge and move" does on
-- the new shard (here the same database stands for it).
CREATE TEMP TABLE import (table_name text, row_data jsonb);
GRANT SELECT ON import TO regress_te_admin;
INSERT INTO import SELECT table_name::text, row_data FROM gb_tenant_export(1);
INSERT INTO import SELECT table_name::text, row_data FROM gb_tenant_export(2);
CREATE TEMP TABLE before AS
SELECT 'limit' AS kind, tenant_id, NULL::text AS tbl, max_xacts::bigint AS a, max_statements_per_second::bigint AS b
  FROM gb_scale.tenant_limit
UNION ALL
SELECT 'quota', tenant_id, tbl::text, rows_per_day, rows_per_month FROM gb_scale.tenant_quota
UNION ALL
SELECT 'plan', tenant_id, NULL, tier, NULL FROM gb_scale.tenant_plan;
SET ROLE regress_te_admin;
SELECT table_name, rows_removed FROM gb_tenant_purge(1) ORDER BY 1::text;
SELECT table_name, rows_removed FROM gb_tenant_purge(2) ORDER BY 1::text;
SELECT count(*) AS left_after_purge FROM gb_tenant_export(1);
RESET ROLE;
SELECT (SELECT count(*) FROM gb_scale.tenant_limit) AS limits,
       (SELECT count(*) FROM gb_scale.tenant_quota) AS quotas,
       (SELECT count(*) FROM gb_scale.tenant_plan) AS plans;

-- The import, for each tenant t, as README shows it (gb_scale_admin).
SET ROLE regress_te_admin;
SELECT gb_tenant_plan(t, (row_data->>'tier')::int)
  FROM import, LATERAL (SELECT (row_data->>'tenant_id')::bigint AS t) k
 WHERE table_name = 'gb_scale.tenant_plan';
SELECT gb_tenant_limit(t, (row_data->>'max_xacts')::int, (row_data->>'max_statements_per_second')::int)
  FROM import, LATERAL (SELECT (row_data->>'tenant_id')::bigint AS t) k
 WHERE table_name = 'gb_scale.tenant_limit';
RESET ROLE;
-- gb_tenant_quota creates the counting trigger when the table has none: as
-- gb_plan_quota, its caller needs that right (here the tables' owner).
SELECT gb_tenant_quota(t, (row_data->>'tbl')::regclass, (row_data->>'rows_per_day')::bigint,
                       (row_data->>'rows_per_month')::bigint)
  FROM import, LATERAL (SELECT (row_data->>'tenant_id')::bigint AS t) k
 WHERE table_name = 'gb_scale.tenant_quota';
CREATE TEMP TABLE after AS
SELECT 'limit' AS kind, tenant_id, NULL::text AS tbl, max_xacts::bigint AS a, max_statements_per_second::bigint AS b
  FROM gb_scale.tenant_limit
UNION ALL
SELECT 'quota', tenant_id, tbl::text, rows_per_day, rows_per_month FROM gb_scale.tenant_quota
UNION ALL
SELECT 'plan', tenant_id, NULL, tier, NULL FROM gb_scale.tenant_plan;
-- Nothing lost, nothing added.
(SELECT * FROM before EXCEPT SELECT * FROM after) UNION ALL (SELECT * FROM after EXCEPT SELECT * FROM before);
SELECT count(*) AS restored FROM before;

-- Clean up.
SET client_min_messages = warning;
SELECT count(*) FROM gb_tenant_purge(1);
SELECT count(*) FROM gb_tenant_purge(2);
DROP SCHEMA "te Schema" CASCADE;
DROP TABLE import;
RESET client_min_messages;
DROP ROLE regress_te_app;
DROP ROLE regress_te_admin;
