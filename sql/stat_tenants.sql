-- gb_stat_tenants: per-tenant statistics in shared memory.
--
-- A known workload per tenant, with exact statement, row and transaction
-- counts (times and CPU only as "not negative", since they depend on the
-- machine), then NULL (no tenant), track = off and all, resets and
-- privileges.  Also run under force_parallel_mode: workers' rows come back
-- through the leader and count once, so the output is the same.
\set VERBOSITY terse
SET search_path = public, pg_catalog;

CREATE TABLE st_items (tenant bigint, id int, v text);
CREATE FUNCTION st_touch(t bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    INSERT INTO st_items VALUES (t, 100, 'fn');
    SELECT count(*) INTO n FROM st_items WHERE tenant = t;
    RETURN n;
END $$;
CREATE PROCEDURE st_proc(t bigint) LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    SELECT count(*) INTO n FROM st_items WHERE tenant = t;
END $$;

CREATE VIEW st_mine AS
SELECT tenant_id, reads, writes, rows_returned, rows_inserted, rows_updated, rows_deleted, xacts,
       exec_time_ms >= 0 AND cpu_time_ms >= 0 AS times_ok,
       reads_current + reads_previous = reads AND writes_current + writes_previous = writes
         AND rows_returned_current + rows_returned_previous = rows_returned
         AND rows_inserted_current + rows_inserted_previous = rows_inserted
         AND rows_updated_current + rows_updated_previous = rows_updated
         AND rows_deleted_current + rows_deleted_previous = rows_deleted
         AND xacts_current + xacts_previous = xacts AS periods_add_up,
       period_start <= now() AND period_start > now() - interval '2 minutes' AS period_ok
  FROM gb_stat_tenants
 WHERE database = current_database();

SELECT gb_stat_tenants_reset();

-- 901: every kind of statement, committed.
BEGIN;
SELECT gb_set_tenant(901);
INSERT INTO st_items SELECT 901, g, 'x' FROM generate_series(1, 3) g;
UPDATE st_items SET v = 'y' WHERE tenant = 901 AND id <= 2;
DELETE FROM st_items WHERE tenant = 901 AND id = 3;
SELECT id, v FROM st_items WHERE tenant = 901 ORDER BY id;
COMMIT;

-- 902: COPY both ways and a function, rolled back: the work still counts.
BEGIN;
SELECT gb_set_tenant(902);
COPY st_items FROM STDIN;
902	10	a
902	11	b
\.
COPY (SELECT id FROM st_items WHERE tenant = 902 ORDER BY id) TO STDOUT;
SELECT st_touch(902);
ROLLBACK;

-- 903: the same function with track = all: its two statements count too.
SET gb_scale.stat_tenants_track = 'all';
BEGIN;
SELECT gb_set_tenant(903);
SELECT st_touch(903);
COMMIT;
RESET gb_scale.stat_tenants_track;

-- 904: track = off: nothing.
SET gb_scale.stat_tenants_track = off;
BEGIN;
SELECT gb_set_tenant(904);
SELECT count(*) FROM st_items;
COMMIT;
RESET gb_scale.stat_tenants_track;

-- 905 and 906: a savepoint switches tenants and is rolled back; each
-- statement counts for the tenant set when it ended, the transaction for
-- 905.
BEGIN;
SELECT gb_set_tenant(905);
SAVEPOINT s;
SELECT gb_set_tenant(906);
INSERT INTO st_items VALUES (906, 1, 'z');
ROLLBACK TO SAVEPOINT s;
INSERT INTO st_items VALUES (905, 1, 'z');
COMMIT;

-- 907: a failed statement does not count as a statement; the transaction does.
BEGIN;
SELECT gb_set_tenant(907);
SELECT 1 / 0;
ROLLBACK;

-- 908: enough work to take CPU time (in parallel workers under
-- force_parallel_mode: their CPU time counts for 908 too).
BEGIN;
SELECT gb_set_tenant(908);
SELECT sum(g) FROM generate_series(1, 3000000) g;
COMMIT;

-- 909: DO and CALL are one statement each; DO wrote a row.
BEGIN;
SELECT gb_set_tenant(909);
DO $$BEGIN INSERT INTO st_items VALUES (909, 1, 'do'); END$$;
CALL st_proc(909);
COMMIT;

-- 910: MERGE's rows by action.
BEGIN;
SELECT gb_set_tenant(910);
INSERT INTO st_items VALUES (910, 1, 'a'), (910, 2, 'b');
MERGE INTO st_items t USING (VALUES (1), (3)) s(id) ON t.tenant = 910 AND t.id = s.id
 WHEN MATCHED THEN UPDATE SET v = 'm'
 WHEN NOT MATCHED THEN INSERT VALUES (910, s.id, 'n');
COMMIT;

-- EXPLAIN without ANALYZE runs nothing and counts nothing.
BEGIN;
SELECT gb_set_tenant(911);
EXPLAIN (COSTS OFF) SELECT * FROM st_items;
COMMIT;

SELECT * FROM st_mine WHERE tenant_id IS NOT NULL ORDER BY tenant_id;
SELECT tenant_id, cpu_time_ms > 0 AS cpu, exec_time_ms > 0 AS exec FROM gb_stat_tenants
 WHERE database = current_database() AND tenant_id = 908;

-- No tenant set: counted under NULL.  The reset starts the entry afresh,
-- then counts itself; the query reading the view is not counted yet.
SELECT gb_stat_tenants_reset(NULL);
SELECT count(*) FROM generate_series(1, 5);
INSERT INTO st_items VALUES (0, 1, 'none');
SELECT * FROM st_mine WHERE tenant_id IS NULL;

-- Reset of one tenant (true when it had an entry), then of everything.
-- (One call per statement: under force_parallel_mode, equal calls in one
-- select list would be computed once by the worker.)
SELECT gb_stat_tenants_reset(901);
SELECT gb_stat_tenants_reset(901);
SELECT gb_stat_tenants_reset(12345);
SELECT tenant_id FROM st_mine WHERE tenant_id IS NOT NULL ORDER BY tenant_id;
SELECT now() AS before_reset \gset
SELECT gb_stat_tenants_reset();
SELECT capacity, entries >= 1 AS has_entries, evictions, last_reset >= :'before_reset' AS reset_recorded,
       entry_bytes BETWEEN 200 AND 600 AS entry_bytes_ok,
       shared_memory_bytes >= capacity * entry_bytes AS memory_ok
  FROM gb_stat_tenants_info;
SELECT count(*) FROM st_mine WHERE tenant_id IS NOT NULL;

-- Privileges: pg_monitor and gb_scale_admin read; only gb_scale_admin
-- resets; PUBLIC gets nothing.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_st_plain;
DROP ROLE IF EXISTS regress_st_monitor;
DROP ROLE IF EXISTS regress_st_admin;
RESET client_min_messages;
CREATE ROLE regress_st_plain;
CREATE ROLE regress_st_monitor IN ROLE pg_monitor;
CREATE ROLE regress_st_admin IN ROLE gb_scale_admin;
SET ROLE regress_st_plain;
SELECT count(*) FROM gb_stat_tenants;
SELECT count(*) FROM gb_stat_tenants_info;
SELECT count(*) FROM gb_scale.stat_tenants();
SELECT count(*) FROM gb_scale.stat_tenants_info();
SELECT gb_stat_tenants_reset();
SELECT gb_stat_tenants_reset(1);
RESET ROLE;
SET ROLE regress_st_monitor;
SELECT count(*) > 0 AS sees FROM gb_stat_tenants;
SELECT capacity FROM gb_stat_tenants_info;
SELECT gb_stat_tenants_reset(1);
RESET ROLE;
SET ROLE regress_st_admin;
SELECT count(*) > 0 AS sees FROM gb_stat_tenants;
SELECT gb_stat_tenants_reset(1);
RESET ROLE;

-- Only a superuser chooses what is tracked (a session cannot hide its work).
SET ROLE regress_st_plain;
SET gb_scale.stat_tenants_track = off;
RESET ROLE;
SHOW gb_scale.stat_tenants_track;
SHOW gb_scale.stat_tenants_max;
SHOW gb_scale.stat_tenants_period;

DROP ROLE regress_st_plain;
DROP ROLE regress_st_monitor;
DROP ROLE regress_st_admin;
DROP VIEW st_mine;
DROP PROCEDURE st_proc(bigint);
DROP FUNCTION st_touch(bigint);
DROP TABLE st_items;
