-- pgTAP: automatic partitions (issue 7), from angles the pg_regress test does
-- not take: the locks that registration and maintenance hold on the parent
-- (read from pg_locks inside the same transaction), ownership, maintenance
-- run as the table's owner inside a security-restricted operation, the
-- catalog's shape, and the API's SQLSTATEs through throws_ok.  Run by
-- pg_prove in a database that has pgtap and gb_scale.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- Fixtures committed before the test transaction, so that the transaction
-- holds no lock on them until the call under test takes one.
DROP SCHEMA IF EXISTS ptap CASCADE;
CREATE SCHEMA ptap;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
SET timezone = 'UTC';
CREATE TABLE ptap.reg (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE ptap.reg_hash (t bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE ptap.reg_list (t bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY LIST (t);
CREATE TABLE ptap.maint (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE INDEX ON ptap.maint (id);
CREATE TABLE ptap.maint_def (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE ptap.maint_list (t bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY LIST (t);
CREATE TABLE ptap.maint_hash (t bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
DO $$
BEGIN
    PERFORM gb_partition_create('ptap.maint', 'at', '1 day');
    PERFORM gb_partition_create('ptap.maint_def', 'at', '1 day', default_partition => true);
    PERFORM gb_partition_create('ptap.maint_list', 'at', '1 day', tenant_column => 't');
    PERFORM gb_partition_create('ptap.maint_hash', 'at', '1 day', tenant_column => 't', tenant_buckets => 4);
END
$$;
INSERT INTO ptap.maint_def VALUES (1, '2025-03-30 10:00+00');
INSERT INTO ptap.maint_list SELECT g % 3, '2025-03-11 10:00+00' FROM generate_series(1, 30) g;

BEGIN;
SELECT plan(89);

-- The strongest lock this backend holds on a relation, or 'none'.
CREATE FUNCTION pg_temp.my_lock(rel regclass) RETURNS text
LANGUAGE sql AS $$
    SELECT coalesce((SELECT l.mode FROM pg_locks l
                      WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid()
                        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        AND l.relation = rel AND l.granted
                      ORDER BY array_position(ARRAY['AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock',
                                                    'ShareLock', 'ShareUpdateExclusiveLock', 'RowExclusiveLock',
                                                    'RowShareLock', 'AccessShareLock'], l.mode)
                      LIMIT 1), 'none')
$$;
-- At most SHARE UPDATE EXCLUSIVE: reads and writes of the table go on.
CREATE FUNCTION pg_temp.weak(mode text) RETURNS boolean
LANGUAGE sql AS $$
    SELECT mode IN ('none', 'AccessShareLock', 'RowShareLock', 'RowExclusiveLock', 'ShareUpdateExclusiveLock')
$$;

------------------------------------------------------------------------------
-- The API exists as the contract says
------------------------------------------------------------------------------
SELECT has_table('gb_scale', 'partition_config', 'catalog table gb_scale.partition_config');
SELECT has_table('gb_scale', 'partition_tenant', 'catalog table gb_scale.partition_tenant');
SELECT has_view('gb_scale', 'partition_status', 'view gb_scale.partition_status');
SELECT col_is_pk('gb_scale', 'partition_config', 'parent', 'partition_config is keyed by parent');
SELECT col_is_pk('gb_scale', 'partition_tenant', ARRAY['parent', 'tenant_id'], 'partition_tenant is keyed by (parent, tenant_id)');
SELECT columns_are('gb_scale', 'partition_status',
    ARRAY['parent', 'layout', 'control', 'control_type', 'granularity', 'time_zone', 'partitions',
          'oldest_bound', 'newest_bound', 'ahead', 'at_risk', 'default_rows', 'retention', 'retention_mode',
          'tenant_buckets', 'dedicated_tenants', 'last_run', 'last_success', 'last_error'],
    'partition_status has the contract''s columns');
SELECT has_function('gb_partition_create',
    ARRAY['regclass', 'name', 'interval', 'interval', 'interval', 'name', 'integer', 'boolean', 'text', 'text',
          'timestamp with time zone'], 'gb_partition_create(...)');
SELECT function_returns('gb_partition_create',
    ARRAY['regclass', 'name', 'interval', 'interval', 'interval', 'name', 'integer', 'boolean', 'text', 'text',
          'timestamp with time zone'], 'integer', 'gb_partition_create returns integer');
SELECT has_function('gb_partition_retention', ARRAY['regclass', 'interval', 'text', 'name'], 'gb_partition_retention(...)');
SELECT has_function('gb_tenant_dedicate', ARRAY['regclass', 'bigint'], 'gb_tenant_dedicate(regclass, bigint)');
SELECT function_returns('gb_tenant_dedicate', ARRAY['regclass', 'bigint'], 'bigint', 'gb_tenant_dedicate returns bigint');
SELECT has_function('gb_tenant_retention', ARRAY['regclass', 'bigint', 'interval'], 'gb_tenant_retention(...)');
SELECT has_function('gb_partition_forget', ARRAY['regclass'], 'gb_partition_forget(regclass)');
SELECT has_function('gb_partition_ensure', ARRAY['regclass', 'timestamp with time zone', 'timestamp with time zone'],
                    'gb_partition_ensure(...)');
SELECT has_function('gb_partition_list', ARRAY['regclass'], 'gb_partition_list(regclass)');
SELECT is_procedure('gb_run_maintenance', ARRAY['regclass'], 'gb_run_maintenance is a procedure');
SELECT is((SELECT setting FROM pg_settings WHERE name = 'gb_scale.maintenance_lock_timeout'), '200',
          'maintenance_lock_timeout defaults to 200 ms');
SELECT is((SELECT context FROM pg_settings WHERE name = 'gb_scale.test_now'), 'superuser',
          'test_now is a superuser setting');

------------------------------------------------------------------------------
-- Locks: registration and maintenance never take more than SHARE UPDATE
-- EXCLUSIVE on the parent (ACCESS EXCLUSIVE would queue every query), but
-- to move rows: then statements must wait and see the new partition
------------------------------------------------------------------------------
SELECT is(pg_temp.my_lock('ptap.reg'), 'none', 'no lock on ptap.reg before registering');
SELECT is(gb_partition_create('ptap.reg', 'at', '1 day'), 5, 'registered ptap.reg with 5 partitions');
SELECT ok(pg_temp.weak(pg_temp.my_lock('ptap.reg')),
          'registration holds at most SHARE UPDATE EXCLUSIVE on the parent: ' || pg_temp.my_lock('ptap.reg'));
SELECT is(gb_partition_create('ptap.reg_hash', 'at', '1 day', tenant_column => 't', tenant_buckets => 2), 15,
          'registered ptap.reg_hash: 5 time partitions of 2 buckets');
SELECT ok(pg_temp.weak(pg_temp.my_lock('ptap.reg_hash')),
          'registration with buckets: at most SHARE UPDATE EXCLUSIVE: ' || pg_temp.my_lock('ptap.reg_hash'));
SELECT is(gb_partition_create('ptap.reg_list', 'at', '1 day', tenant_column => 't'), 6,
          'registered ptap.reg_list: the tail and 5 time partitions');
SELECT ok(pg_temp.weak(pg_temp.my_lock('ptap.reg_list')),
          'LIST registration: at most SHARE UPDATE EXCLUSIVE: ' || pg_temp.my_lock('ptap.reg_list'));

SET LOCAL gb_scale.test_now = '2025-03-13 12:00:00+00';
SELECT is(pg_temp.my_lock('ptap.maint'), 'none', 'no lock on ptap.maint before maintenance');
CALL gb_run_maintenance('ptap.maint');
SELECT is((SELECT count(*)::int FROM gb_partition_list('ptap.maint')), 8, 'maintenance added 03-15 .. 03-17');
SELECT ok(pg_temp.weak(pg_temp.my_lock('ptap.maint')),
          'maintenance holds at most SHARE UPDATE EXCLUSIVE on the parent: ' || pg_temp.my_lock('ptap.maint'));
SELECT is((SELECT count(*)::int FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indrelid
            WHERE i.inhparent = 'ptap.maint'::regclass), 8, 'every partition has the parent''s index');
CALL gb_run_maintenance('ptap.maint_hash');
SELECT is((SELECT count(*)::int FROM gb_partition_list('ptap.maint_hash')), 32, 'maintenance added 3 x 4 buckets');
SELECT ok(pg_temp.weak(pg_temp.my_lock('ptap.maint_hash')),
          'maintenance with buckets: at most SHARE UPDATE EXCLUSIVE: ' || pg_temp.my_lock('ptap.maint_hash'));
CALL gb_run_maintenance('ptap.maint_list');
SELECT is((SELECT count(*)::int FROM gb_partition_list('ptap.maint_list')), 8, 'maintenance added 3 to the tail');
SELECT ok(pg_temp.weak(pg_temp.my_lock('ptap.maint_list')),
          'LIST maintenance: at most SHARE UPDATE EXCLUSIVE on the parent: ' || pg_temp.my_lock('ptap.maint_list'));
-- Emptying the default partition (the stray 03-30 row) into a new partition.
CALL gb_run_maintenance('ptap.maint_def');
SELECT is((SELECT tableoid::regclass::text FROM ptap.maint_def WHERE id = 1), 'ptap.maint_def_p20250330',
          'the stray row left the default partition');
SELECT is(pg_temp.my_lock('ptap.maint_def'), 'AccessExclusiveLock',
          'moving default rows: ACCESS EXCLUSIVE on the parent (its statements wait, then see the new partition)');
-- Dedicating a tenant.
SELECT is(gb_tenant_dedicate('ptap.maint_list', 1), 10::bigint, 'tenant 1''s 10 rows moved');
SELECT is(pg_temp.my_lock('ptap.maint_list'), 'AccessExclusiveLock',
          'dedicating: ACCESS EXCLUSIVE on the parent (its statements wait, then see the new subtree)');
SELECT results_eq($$SELECT t, count(*) FROM ptap.maint_list GROUP BY 1 ORDER BY 1$$,
                  $$VALUES (0::bigint, 10::bigint), (1, 10), (2, 10)$$, 'no row lost or duplicated');
-- ensure
SELECT is(gb_partition_ensure('ptap.maint', '2025-03-01 00:00+00', '2025-03-03 00:00+00'), 2,
          'gb_partition_ensure created 03-01 and 03-02');
SELECT ok(pg_temp.weak(pg_temp.my_lock('ptap.maint')),
          'gb_partition_ensure: at most SHARE UPDATE EXCLUSIVE on the parent: ' || pg_temp.my_lock('ptap.maint'));
SET LOCAL gb_scale.test_now = '2025-03-10 12:34:56+00';

------------------------------------------------------------------------------
-- Results of gb_partition_list from pgTAP's side
------------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT partition::text, from_time, to_time FROM gb_partition_list('ptap.reg') ORDER BY from_time$$,
    $$SELECT 'ptap.reg_p' || to_char(d, 'YYYYMMDD'), d, d + interval '1 day'
        FROM generate_series('2025-03-10 00:00+00'::timestamptz, '2025-03-14 00:00+00', '1 day') d$$,
    'ptap.reg: one partition per UTC day, 03-10 .. 03-14');
SELECT results_eq(
    $$SELECT DISTINCT bucket FROM gb_partition_list('ptap.reg_hash') ORDER BY 1$$,
    $$VALUES (0), (1)$$, 'buckets 0 and 1');
SELECT is((SELECT count(*)::int FROM gb_partition_list('ptap.reg_list') WHERE tenant_id IS NOT NULL), 0,
          'no dedicated tenant yet');
SELECT has_table('ptap', 'reg_list_tenants', 'the tenants tail exists');
SELECT has_table('ptap', 'reg_list_tenants_p20250312', 'a time partition of the tail exists');
SELECT has_table('ptap', 'reg_hash_p20250311_h1', 'a bucket exists');
SELECT is((SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = 'ptap.reg_list_tenants'::regclass),
          'DEFAULT', 'the tail is the DEFAULT partition of the LIST parent');
SELECT is(pg_get_partkeydef('ptap.reg_list_tenants'::regclass), 'RANGE (at)', 'the tail is partitioned by the control column');
SELECT is(pg_get_partkeydef('ptap.reg_hash_p20250311'::regclass), 'HASH (t)', 'time partitions of reg_hash are hashed by tenant');

------------------------------------------------------------------------------
-- SQLSTATEs
------------------------------------------------------------------------------
CREATE TABLE ptap.plain (at timestamptz);
CREATE TABLE ptap.fresh (at timestamptz NOT NULL, d date, t bigint, x text) PARTITION BY RANGE (at);
SELECT throws_ok($$SELECT gb_partition_create('ptap.plain', 'at', '1 day')$$, '42P17', NULL, 'a plain table: 42P17');
SELECT throws_ok($$SELECT gb_partition_create('ptap.fresh', 'd', '1 day')$$, '42P17', NULL,
                 'a column that is not the partition key: 42P17');
SELECT throws_ok($$SELECT gb_partition_create('ptap.fresh', 'missing', '1 day')$$, '42703', NULL, 'a missing column: 42703');
SELECT throws_ok($$SELECT gb_partition_create('ptap.fresh', 'at', '10 days')$$, '22023', NULL, '10 days: 22023');
SELECT throws_ok($$SELECT gb_partition_create('ptap.fresh', 'at', '1 day', premake => '1 hour')$$, '22023', NULL,
                 'premake shorter than the granularity: 22023');
SELECT throws_ok($$SELECT gb_partition_create('ptap.fresh', 'at', '1 day', retention => '-1 day')$$, '22023', NULL,
                 'negative retention: 22023');
SELECT throws_ok($$SELECT gb_partition_create('ptap.fresh', 'at', NULL, profile => 'billing')$$, '22023', NULL,
                 'an unknown profile: 22023');
SELECT throws_ok($$SELECT gb_partition_create('ptap.fresh', 'at', '1 day', time_zone => 'Europe/Atlantis')$$, '22023', NULL,
                 'an unknown time zone: 22023');
SELECT throws_ok($$SELECT gb_partition_create('ptap.reg', 'at', '1 day')$$, '42710', NULL, 'registered twice: 42710');
SELECT throws_ok($$SELECT gb_partition_forget('ptap.fresh')$$, '42704', NULL, 'forget an unregistered table: 42704');
SELECT throws_ok($$SELECT gb_partition_retention('ptap.reg', '30 days', 'shred')$$, '22023', NULL, 'an unknown mode: 22023');
SELECT throws_ok($$SELECT gb_partition_retention('ptap.reg', '30 days', 'archive', NULL)$$, '22023', NULL,
                 'archive without a schema: 22023');
SELECT throws_ok($$SELECT gb_tenant_dedicate('ptap.reg', 5)$$, '42P17', NULL, 'dedicate on a RANGE layout: 42P17');
SELECT throws_ok($$SELECT gb_tenant_dedicate('ptap.maint_list', 1)$$, '42710', NULL, 'dedicate twice: 42710');
SELECT throws_ok($$INSERT INTO ptap.reg VALUES (1, '2031-01-01')$$, '23514', NULL,
                 'out of range without a default partition: 23514');
SELECT throws_ok($$SET gb_scale.test_now = 'not a time'$$, '22023', NULL, 'test_now must be a time: 22023');
SELECT is((SELECT count(*)::int FROM gb_scale.partition_config WHERE parent IN ('ptap.plain'::regclass, 'ptap.fresh'::regclass)),
          0, 'nothing registered by the failures');
SELECT is((SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'ptap.fresh'::regclass), 0,
          'nothing created by the failures');

------------------------------------------------------------------------------
-- Ownership: only the owner registers or changes a table
------------------------------------------------------------------------------
CREATE ROLE tap_part_alice;
CREATE ROLE tap_part_bob;
CREATE SCHEMA ptap_alice AUTHORIZATION tap_part_alice;
GRANT USAGE, CREATE ON SCHEMA ptap TO tap_part_alice, tap_part_bob;
GRANT USAGE ON SCHEMA ptap_alice TO tap_part_bob;
-- Maintenance evaluates the owner's index expression when it moves rows: it
-- notes who ran it and whether it ran in a security-restricted operation
-- (where creating a temporary table is refused).
CREATE TABLE ptap.who (who text, restricted boolean);
GRANT INSERT ON ptap.who TO PUBLIC;
CREATE FUNCTION ptap.note(t text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    restricted boolean := false;
BEGIN
    BEGIN
        CREATE TEMP TABLE ptap_probe (x int);
        DROP TABLE ptap_probe;
    EXCEPTION WHEN insufficient_privilege THEN
        restricted := true;
    END;
    INSERT INTO ptap.who VALUES (current_user, restricted);
END
$$;
CREATE FUNCTION ptap.noted(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM ptap.note(t);
    RETURN t;
END
$$;

SET LOCAL ROLE tap_part_alice;
SELECT throws_ok($$SELECT gb_partition_create('ptap.fresh', 'at', '1 day')$$, '42501', NULL,
                 'alice cannot register the superuser''s table: 42501');
SELECT throws_ok($$SELECT gb_partition_retention('ptap.reg', '30 days')$$, '42501', NULL,
                 'alice cannot set retention on it: 42501');
SELECT throws_ok($$SELECT gb_partition_forget('ptap.reg')$$, '42501', NULL, 'alice cannot forget it: 42501');
SELECT throws_ok($$SELECT gb_partition_ensure('ptap.reg', '2025-01-01', '2025-01-02')$$, '42501', NULL,
                 'alice cannot add partitions to it: 42501');
SELECT throws_ok($$SELECT gb_tenant_dedicate('ptap.maint_list', 2)$$, '42501', NULL,
                 'alice cannot dedicate a tenant of it: 42501');
SELECT throws_ok($$SELECT gb_tenant_retention('ptap.maint_list', 1, '1 day')$$, '42501', NULL,
                 'alice cannot set a tenant''s retention on it: 42501');
SELECT throws_ok($$SET gb_scale.test_now = '2030-01-01 00:00+00'$$, '42501', NULL, 'alice cannot set test_now: 42501');
SELECT throws_ok($$UPDATE gb_scale.partition_config SET retention = '1 day'$$, '42501', NULL,
                 'alice cannot write partition_config: 42501');
SELECT throws_ok($$DELETE FROM gb_scale.partition_tenant$$, '42501', NULL, 'alice cannot write partition_tenant: 42501');
CREATE TABLE ptap_alice.ev (id bigint NOT NULL, at timestamptz NOT NULL, code text) PARTITION BY RANGE (at);
CREATE INDEX ON ptap_alice.ev (ptap.noted(code));
SELECT is(gb_partition_create('ptap_alice.ev', 'at', '1 day', default_partition => true), 6,
          'alice registers her own table');
INSERT INTO ptap_alice.ev VALUES (1, '2025-04-02 10:00+00', 'x');
RESET ROLE;
DELETE FROM ptap.who;

SET LOCAL ROLE tap_part_bob;
SELECT throws_ok($$SELECT gb_partition_forget('ptap_alice.ev')$$, '42501', NULL, 'bob cannot forget alice''s table: 42501');
SELECT throws_ok($$SELECT gb_partition_retention('ptap_alice.ev', '30 days', 'detach')$$, '42501', NULL,
                 'bob cannot set retention on alice''s table: 42501');
RESET ROLE;

-- The superuser runs maintenance: the stray row moves, as alice, restricted.
CALL gb_run_maintenance('ptap_alice.ev');
SELECT is((SELECT tableoid::regclass::text FROM ptap_alice.ev WHERE id = 1), 'ptap_alice.ev_p20250402',
          'maintenance moved alice''s stray row');
SELECT results_eq($$SELECT DISTINCT who, restricted FROM ptap.who$$, $$VALUES ('tap_part_alice'::text, true)$$,
                  'the owner''s code ran as the owner, in a security-restricted operation');
SELECT is((SELECT count(DISTINCT c.relowner)::int FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'ptap_alice.ev'::regclass AND c.relowner = 'tap_part_alice'::regrole), 1,
          'alice owns the partitions');
SELECT is((SELECT count(*)::int FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'ptap_alice.ev'::regclass AND c.relowner <> 'tap_part_alice'::regrole), 0,
          'no partition of alice''s table belongs to anyone else');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'tap_part_alice'), false, 'alice is still no superuser');

------------------------------------------------------------------------------
-- forget, and the clock
------------------------------------------------------------------------------
SELECT lives_ok($$SELECT gb_partition_forget('ptap.reg')$$, 'forget ptap.reg');
SELECT is((SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'ptap.reg'::regclass), 5, 'its partitions stay');
SELECT throws_ok($$SELECT * FROM gb_partition_list('ptap.reg')$$, '42704', NULL,
                 'gb_partition_list of a table no longer registered: 42704');
SELECT throws_ok($$CALL gb_run_maintenance('ptap.reg')$$, '42704', NULL, 'maintenance of a forgotten table: 42704');
SELECT ok(gb_id_timestamp(gb_next_id()) > '2025-03-11'::timestamptz, 'test_now does not change IDs');

SELECT * FROM finish();
ROLLBACK;

SET client_min_messages = warning;
DROP SCHEMA ptap CASCADE;
