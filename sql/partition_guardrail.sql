-- gb_scale maintenance failures are recorded, never only logged or
-- swallowed, and never undo what the pass did before them (issue 14,
-- guardrail): a tenant purge that fails (here the owner's trigger refuses
-- it; in production a row lock held past the lock timeout) is recorded in
-- last_error while the premake done before it stays; a LIST-by-tenant table
-- that lost its tenants tail is reported in last_error and at_risk instead of
-- being recorded as a success; dedicating a tenant never sets out to create
-- a partition for every day since a stray row's.
SET search_path = public, pg_catalog;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
CREATE SCHEMA guard;

------------------------------------------------------------------------------
-- A failing tenant purge keeps the pass's premake
------------------------------------------------------------------------------
CREATE TABLE guard.ev (tenant bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('guard.ev', 'at', '1 day', premake => '3 days', tenant_column => 'tenant',
                           start_at => '2025-03-01') AS created;
SELECT gb_tenant_retention('guard.ev', 5, '2 days');
INSERT INTO guard.ev VALUES (5, '2025-03-02 10:00+00'), (6, '2025-03-02 10:00+00');
CREATE FUNCTION guard.no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'guard.ev keeps its rows';
END $$;
CREATE TRIGGER no_delete BEFORE DELETE ON guard.ev FOR EACH ROW EXECUTE FUNCTION guard.no_delete();
-- ten days later: premake has 10 days to make up, and tenant 5's rows are due
SET gb_scale.test_now = '2025-03-20 12:34:56+00';
CALL gb_run_maintenance('guard.ev');
SELECT last_error, last_success IS DISTINCT FROM last_run AS success_behind FROM gb_scale.partition_config
 WHERE parent = 'guard.ev'::regclass;
-- premake made it all the same: nothing is at risk, and the rows are there
SELECT newest_bound, at_risk FROM gb_scale.partition_status WHERE parent = 'guard.ev'::regclass;
SELECT tenant, at FROM guard.ev ORDER BY tenant;
-- the next pass retries the purge; once it can, it is done and the error gone
DROP TRIGGER no_delete ON guard.ev;
CALL gb_run_maintenance('guard.ev');
SELECT last_error, last_success = last_run AS success FROM gb_scale.partition_config
 WHERE parent = 'guard.ev'::regclass;
SELECT tenant, at FROM guard.ev ORDER BY tenant;

------------------------------------------------------------------------------
-- A LIST-by-tenant table that lost its tenants tail
------------------------------------------------------------------------------
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
CREATE TABLE guard.msgs (tenant bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY LIST (tenant);
SELECT gb_partition_create('guard.msgs', 'at', '1 day', premake => '3 days', tenant_column => 'tenant') AS created;
SELECT gb_tenant_dedicate('guard.msgs', 1);
CALL gb_run_maintenance('guard.msgs');
SELECT last_error, at_risk FROM gb_scale.partition_status WHERE parent = 'guard.msgs'::regclass;
ALTER TABLE guard.msgs DETACH PARTITION guard.msgs_tenants;
-- a tenant without partitions of its own has nowhere to go
INSERT INTO guard.msgs VALUES (2, '2025-03-10 13:00+00');
SET gb_scale.test_now = '2025-03-11 12:34:56+00';
CALL gb_run_maintenance('guard.msgs');
SELECT last_error, last_success < last_run AS success_behind, at_risk
  FROM gb_scale.partition_status WHERE parent = 'guard.msgs'::regclass;
-- the dedicated tenant is still maintained
SET gb_scale.test_now = '2025-03-12 12:34:56+00';
CALL gb_run_maintenance('guard.msgs');
SELECT max(to_time) FROM gb_partition_list('guard.msgs') WHERE tenant_id = 1;
-- attached again, all is well
ALTER TABLE guard.msgs ATTACH PARTITION guard.msgs_tenants DEFAULT;
CALL gb_run_maintenance('guard.msgs');
SELECT last_error, last_success = last_run AS success, at_risk
  FROM gb_scale.partition_status WHERE parent = 'guard.msgs'::regclass;

------------------------------------------------------------------------------
-- Dedicating a tenant after a stray row of the year 2 got a tail partition:
-- the subtree gets the tail's periods and the horizon, not every day since
-- the year 2 (the old code set out to create 740,000 partitions)
------------------------------------------------------------------------------
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
SET statement_timeout = '60s';
CREATE TABLE guard.chat (tenant bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY LIST (tenant);
SELECT gb_partition_create('guard.chat', 'at', '1 day', premake => '3 days', tenant_column => 'tenant',
                           default_partition => true) AS created;
INSERT INTO guard.chat VALUES (9, '0002-01-01 00:00+00'), (9, '2025-03-11 10:00+00'), (8, '0002-01-01 12:00+00');
CALL gb_run_maintenance('guard.chat');
SELECT gb_tenant_dedicate('guard.chat', 9) AS moved;
SELECT tableoid::regclass, tenant, at FROM guard.chat ORDER BY tenant, at;
SELECT tenant_id, count(*) FILTER (WHERE NOT is_default) AS partitions, count(*) FILTER (WHERE is_default) AS defaults
  FROM gb_partition_list('guard.chat') GROUP BY 1 ORDER BY 1;
RESET statement_timeout;

------------------------------------------------------------------------------
-- The drain's own queries failing (here the owner's forced policy on the
-- default raises; in production a lock on the default past the lock timeout)
-- are recorded and keep the pass's premake
------------------------------------------------------------------------------
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_guard_owner;
RESET client_min_messages;
CREATE ROLE regress_guard_owner;
GRANT CREATE, USAGE ON SCHEMA guard TO regress_guard_owner;
SET ROLE regress_guard_owner;
CREATE TABLE guard.logs (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('guard.logs', 'at', '1 day', premake => '2 days', default_partition => true) AS created;
INSERT INTO guard.logs VALUES ('2020-01-01 10:00+00');
CREATE FUNCTION guard.refuse() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'guard.logs_default may not be read';
END $$;
ALTER TABLE guard.logs_default ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY refuse ON guard.logs_default USING (guard.refuse());
RESET ROLE;
SET gb_scale.test_now = '2025-03-15 12:34:56+00';
CALL gb_run_maintenance('guard.logs');
SELECT last_error, last_success IS DISTINCT FROM last_run AS success_behind FROM gb_scale.partition_config
 WHERE parent = 'guard.logs'::regclass;
-- (partition_status would read the default too)
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'guard.logs'::regclass;
-- once the default can be read, the next pass drains it
DROP POLICY refuse ON guard.logs_default;
ALTER TABLE guard.logs_default NO FORCE ROW LEVEL SECURITY;
CALL gb_run_maintenance('guard.logs');
SELECT last_error, last_success = last_run AS success FROM gb_scale.partition_config
 WHERE parent = 'guard.logs'::regclass;
SELECT tableoid::regclass, at FROM guard.logs ORDER BY at;

SET client_min_messages = warning;
DROP SCHEMA guard CASCADE;
DROP ROLE regress_guard_owner;
RESET client_min_messages;
