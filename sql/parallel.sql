-- Label lookups and the enum domain check in parallel workers.  Workers start
-- with empty caches and read the labels themselves, under the leader's
-- transaction: they see its uncommitted enums too.
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE par_msgs AS
SELECT g AS id,
       (ARRAY[1, 2, 3, 4, 9, 10])[g % 6 + 1]::smallint::gb_message_role AS role,
       (g % 10)::smallint::gb_channel_type AS channel,
       (ARRAY['user', 'assistant', 'system', 'tool', 'episodic', 'compact'])[g % 6 + 1] AS role_label
  FROM generate_series(1, 60000) g;
ANALYZE par_msgs;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;

EXPLAIN (COSTS OFF) SELECT count(gb_label(role)) FROM par_msgs;
SELECT gb_label(role) AS role, count(*) FROM par_msgs GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE gb_enum_label('gb_channel_type', channel) = 'web') AS web,
       count(*) FILTER (WHERE gb_enum_code('gb_message_role', role_label) = role) AS codes_match
  FROM par_msgs;
-- A value the domain refuses, found by a worker: the domain's own error.
SELECT count((id % 12)::smallint::gb_channel_type) FROM par_msgs;
SELECT count(gb_enum_label('gb_channel_type', (id % 11)::smallint)) FROM par_msgs;

-- An enum created in this transaction, used by workers.
BEGIN;
SELECT gb_enum_create('par_state', ARRAY['new', 'done']);
CREATE TABLE par_items AS SELECT g AS id, (g % 2)::smallint::par_state AS st FROM generate_series(1, 20000) g;
ANALYZE par_items;
EXPLAIN (COSTS OFF) SELECT gb_label(st), count(*) FROM par_items GROUP BY 1 ORDER BY 1;
SELECT gb_label(st), count(*) FROM par_items GROUP BY 1 ORDER BY 1;
SELECT gb_enum_rename('par_state', 'done', 'finished');
SELECT gb_label(st), count(*) FROM par_items GROUP BY 1 ORDER BY 1;
ROLLBACK;

-- Partition listing and status, with workers reading the partitions of a
-- managed table (4 buckets a day, 5 days: 20 leaves).
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
CREATE TABLE par_parts (tenant_id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('par_parts', 'at', '1 day', tenant_column => 'tenant_id', tenant_buckets => 4) AS created;
INSERT INTO par_parts
SELECT g % 100, '2025-03-10 00:00:00+00'::timestamptz + (g % 120) * interval '1 hour' FROM generate_series(1, 20000) g;
ANALYZE par_parts;
SELECT count(*) AS rows, count(DISTINCT tenant_id) AS tenants,
       count(DISTINCT tableoid) AS leaves_used FROM par_parts;
SELECT count(*) AS leaves, sum(rows) AS rows, count(DISTINCT bucket) AS buckets,
       min(from_time) AS oldest, max(to_time) AS newest
  FROM gb_partition_list('par_parts');
SELECT layout, granularity, partitions, tenant_buckets, last_error
  FROM gb_scale.partition_status WHERE parent = 'par_parts'::regclass;
-- A parallel plan never calls the functions that write: they are parallel
-- unsafe, so this runs in the leader.
SELECT gb_partition_ensure('par_parts', '2025-03-09 00:00:00+00', '2025-03-10 00:00:00+00') AS created
  FROM (SELECT count(*) FROM par_parts) x;
DROP TABLE par_parts;
RESET gb_scale.test_now;

-- Routing in parallel workers: they read the shard directory themselves,
-- and see the leader's uncommitted placements.
CREATE TABLE par_tenants AS SELECT g::bigint AS tenant_id FROM generate_series(1, 40000) g;
ANALYZE par_tenants;
BEGIN;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (1, 'USA', 'us-east-1', 'dbname=shard1', 1, 20000), (4, 'DEU', 'eu-central-1', 'dbname=shard4', 20001, 40000);
SELECT count(gb_tenant_assign(g, 4::smallint)) AS placed FROM generate_series(1, 100) g;
EXPLAIN (COSTS OFF)
SELECT count(*) FILTER (WHERE gb_shard_for_tenant(tenant_id) = 1) AS on_1,
       count(*) FILTER (WHERE gb_shard_for_tenant(tenant_id) = 4) AS on_4 FROM par_tenants;
SELECT count(*) FILTER (WHERE gb_shard_for_tenant(tenant_id) = 1) AS on_1,
       count(*) FILTER (WHERE gb_shard_for_tenant(tenant_id) = 4) AS on_4 FROM par_tenants;
ROLLBACK;
-- Tenant isolation in parallel workers: the transaction's tenant reaches them.
CREATE TABLE par_isolated AS SELECT g AS id, (g % 50)::bigint AS tenant_id FROM generate_series(1, 50000) g;
ANALYZE par_isolated;
SELECT gb_tenant_isolation_enable('par_isolated');
CREATE ROLE regress_par_app;
GRANT SELECT ON par_isolated TO regress_par_app;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_par_app;
SET ROLE regress_par_app;
BEGIN;
SELECT gb_set_tenant(7);
EXPLAIN (COSTS OFF) SELECT count(*) FROM par_isolated;
SELECT count(*), min(tenant_id), max(tenant_id) FROM par_isolated;
COMMIT;
SELECT count(*) FROM par_isolated;
RESET ROLE;
DROP TABLE par_isolated, par_tenants;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_par_app;
DROP ROLE regress_par_app;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE par_msgs;
