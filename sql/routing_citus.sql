-- gb_scale.citus_tenant_table without Citus: the setting takes only a
-- schema-qualified name and only from a superuser, and changes nothing
-- while the citus extension is not in the database (the directory answers).
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_citus_router;
RESET client_min_messages;

SHOW gb_scale.citus_tenant_table;
SET gb_scale.citus_tenant_table = 'messages';
SET gb_scale.citus_tenant_table = 'a.b.c';
SET gb_scale.citus_tenant_table = 'gb.messages';
SHOW gb_scale.citus_tenant_table;

INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id) VALUES
    (1, 'USA', 'us-east-1', 'host=shard1.example port=5432 dbname=gb', 1, 1000),
    (2, 'USA', 'us-west-2', 'host=shard2.example port=5432 dbname=gb', 1001, 2000);
SELECT gb_shard_for_tenant(5), gb_shard_for_tenant(1500), gb_shard_connection(1500);
SELECT gb_tenant_assign(5, 2::smallint);
SELECT gb_shard_for_tenant(5);
SELECT min_tenant_id, max_tenant_id, shard_id FROM gb_shard_routes() ORDER BY 1;
RESET gb_scale.citus_tenant_table;

-- superuser only
CREATE ROLE regress_citus_router;
SET ROLE regress_citus_router;
SET gb_scale.citus_tenant_table = 'gb.messages';
RESET ROLE;

DELETE FROM gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;
DROP ROLE regress_citus_router;
