-- gb_scale privileges: what PUBLIC may do with the extension's objects, and
-- what an ordinary role can and cannot do through them.
--
-- The first two queries list every member of the extension with the
-- privileges anyone but its owner holds, straight from the catalogs: a new
-- function, a new grant or a grant that went away shows up as a diff.
-- (has_function_privilege('public', ...) does not answer for PUBLIC, so the
-- ACLs are exploded; a NULL ACL means the object type's default.)
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET search_path = public, pg_catalog;

SELECT pg_describe_object(m.classid, m.objid, 0) COLLATE "C" AS object,
       CASE WHEN a.acl IS NULL THEN '(no ACL)'
            ELSE coalesce((SELECT string_agg(CASE x.grantee WHEN 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
                                             || '=' || x.privilege_type
                                             || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                                             ', ' ORDER BY x.grantee, x.privilege_type COLLATE "C")
                             FROM aclexplode(a.acl) x
                            WHERE x.grantee <> a.owner), '-')
       END AS granted
  FROM pg_depend m
  CROSS JOIN LATERAL (
        SELECT coalesce(p.proacl, acldefault('f', p.proowner)), p.proowner
          FROM pg_proc p WHERE m.classid = 'pg_proc'::regclass AND p.oid = m.objid
        UNION ALL
        SELECT coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)), c.relowner
          FROM pg_class c WHERE m.classid = 'pg_class'::regclass AND c.oid = m.objid
        UNION ALL
        SELECT coalesce(n.nspacl, acldefault('n', n.nspowner)), n.nspowner
          FROM pg_namespace n WHERE m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
        UNION ALL
        SELECT coalesce(t.typacl, acldefault('T', t.typowner)), t.typowner
          FROM pg_type t WHERE m.classid = 'pg_type'::regclass AND t.oid = m.objid
        UNION ALL
        -- Any other kind of member (event trigger, ...) is listed without an ACL.
        SELECT NULL::aclitem[], NULL::oid
         WHERE m.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass,
                                 'pg_namespace'::regclass, 'pg_type'::regclass)
       ) AS a(acl, owner)
 WHERE m.refclassid = 'pg_extension'::regclass AND m.deptype = 'e'
   AND m.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gb_scale')
 ORDER BY 1;

-- Column privileges would widen the table privileges above: there are none.
SELECT c.oid::regclass::text COLLATE "C" AS relation, att.attname::text COLLATE "C" AS attname,
       CASE x.grantee WHEN 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END COLLATE "C" AS grantee,
       x.privilege_type COLLATE "C" AS privilege_type
  FROM pg_depend m
  JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_attribute att ON att.attrelid = c.oid AND att.attacl IS NOT NULL
  CROSS JOIN LATERAL aclexplode(att.attacl) x
 WHERE m.refclassid = 'pg_extension'::regclass AND m.deptype = 'e'
   AND m.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gb_scale')
 ORDER BY 1, 2, 3, 4;

-- Functions of earlier versions that must stay gone: each one was callable
-- by PUBLIC and did work that only the extension's own code should do.
SELECT f COLLATE "C" AS function, to_regprocedure(f) IS NULL AS gone
  FROM (VALUES ('gb_scale.enum_invalidate(regtype)'),
               ('gb_scale.enum_create_in(regnamespace,text,text[],smallint[],boolean)'),
               ('gb_scale.enum_sync_constraint(regtype)')) v(f)
 ORDER BY 1;

-- Runs one statement and says "ok" or its SQLSTATE: the statements below are
-- expected to fail, and SQLSTATEs are the stable part of an error.
CREATE SCHEMA sec_priv;
GRANT USAGE ON SCHEMA sec_priv TO PUBLIC;
CREATE FUNCTION sec_priv.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- Two ordinary roles, each with a schema of its own; alice may look into bob's.
-- (Roles belong to the cluster: a run that crashed left them behind.)
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_gb_alice;
DROP ROLE IF EXISTS regress_gb_bob;
RESET client_min_messages;
CREATE ROLE regress_gb_alice;
CREATE ROLE regress_gb_bob;
CREATE SCHEMA sec_alice AUTHORIZATION regress_gb_alice;
CREATE SCHEMA sec_bob AUTHORIZATION regress_gb_bob;
GRANT USAGE ON SCHEMA sec_bob TO regress_gb_alice;

-- The clock of partition maintenance, set by the superuser for the whole
-- session: the ordinary roles below cannot set it, but it stays in effect.
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

SET SESSION AUTHORIZATION regress_gb_bob;
SELECT gb_enum_create('sec_bob.color', ARRAY['red', 'green']);
-- bob's partitioned tables, registered by bob: 5 daily partitions; the tail
-- and its 5.
CREATE TABLE sec_bob.ev (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('sec_bob.ev', 'at', '1 day') AS created;
CREATE TABLE sec_bob.chat (tenant_id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('sec_bob.chat', 'at', '1 day', tenant_column => 'tenant_id') AS created;
CREATE TABLE sec_bob.unregistered (at timestamptz NOT NULL) PARTITION BY RANGE (at);
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION regress_gb_alice;
SET timezone = 'UTC';
SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;

-- Every public function works for an ordinary role.  The generator needs
-- only the shard id of the test cluster's configuration (1).
SELECT gb_id_shard(gb_next_id()) AS next_id_shard,
       (SELECT count(*) FROM gb_next_ids(3)) AS next_ids,
       gb_id_timestamp(383959995403735083) AS ts,
       gb_id_shard(383959995403735083) AS shard,
       gb_id_sequence(383959995403735083) AS seq,
       gb_id_from_time('2025-06-15 12:34:56.789+00', 42::smallint) AS from_time;
SELECT * FROM gb_id_decode(383959995403735083);
SELECT shard_id, database = current_database() AS this_db
  FROM gb_id_generator_status() WHERE shard_id = 1;
SELECT gb_label(9::gb_channel_type) AS label,
       gb_enum_label('gb_message_role', 2::smallint) AS enum_label,
       gb_enum_code('gb_task_status', 'waiting_approval') AS enum_code;
SELECT * FROM gb_enum_labels('gb_plan_tier');
SELECT count(*) AS labels FROM gb_scale.enum_labels;
-- ... including the enum functions on an enum of its own.
SELECT gb_enum_create('sec_alice.mood', ARRAY['calm', 'busy']);
SELECT gb_enum_add('sec_alice.mood', 'angry');
SELECT gb_enum_add('sec_alice.mood', 'asleep', 10::smallint);
SELECT gb_enum_rename('sec_alice.mood', 'busy', 'swamped');
SELECT * FROM gb_enum_labels('sec_alice.mood');
SELECT gb_label(10::sec_alice.mood) AS label, gb_enum_code('sec_alice.mood', 'swamped') AS code;
-- The domain CHECK function is the one internal function PUBLIC may run; on
-- its own it only validates a code against the list it is given.
SELECT gb_scale.enum_check(1::smallint, 'sec_alice.mood'::regtype, '{0,1,2}'::smallint[]) AS valid;
SELECT sec_priv.try($$SELECT gb_scale.enum_check(5::smallint, 'sec_alice.mood'::regtype, '{0,1,2}'::smallint[])$$) AS invalid;
-- ... and every partition function and the procedure on tables of its own:
-- a RANGE table with buckets (5 days of 2 buckets: 15), a LIST table (the
-- tail and its 5 days: 6).
CREATE TABLE sec_alice.ev (tenant_id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT gb_partition_create('sec_alice.ev', 'at', '1 day', tenant_column => 'tenant_id', tenant_buckets => 2) AS created;
CREATE TABLE sec_alice.chat (tenant_id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('sec_alice.chat', 'at', '1 day', tenant_column => 'tenant_id',
                           default_partition => true) AS created;
INSERT INTO sec_alice.chat VALUES (7, '2025-03-11 10:00+00'), (7, '2025-03-30 10:00+00'), (8, '2025-03-11 10:00+00');
SELECT gb_tenant_dedicate('sec_alice.chat', 7) AS moved;
SELECT gb_tenant_retention('sec_alice.chat', 7, '30 days');
SELECT gb_partition_ensure('sec_alice.ev', '2025-03-08 00:00+00', '2025-03-09 00:00+00') AS ensured;
SELECT gb_partition_retention('sec_alice.ev', '60 days', 'detach');
CALL gb_run_maintenance('sec_alice.chat');
SELECT tenant_id, tableoid::regclass AS partition FROM sec_alice.chat ORDER BY at, tenant_id;
SELECT count(*) AS ev_leaves FROM gb_partition_list('sec_alice.ev');
SELECT parent, layout, dedicated_tenants, last_error FROM gb_scale.partition_status
 WHERE parent IN ('sec_alice.ev'::regclass, 'sec_alice.chat'::regclass) ORDER BY parent::text COLLATE "C";
SELECT count(*) AS visible_configs FROM gb_scale.partition_config;
SELECT count(*) AS visible_tenants FROM gb_scale.partition_tenant;
SELECT gb_partition_forget('sec_alice.ev');

-- What an ordinary role must not do.  42501: no privilege; 55000: built-in
-- enums are frozen; 55P02: a setting only postgresql.conf changes.
SELECT stmt, sec_priv.try(stmt) AS result
  FROM (VALUES
    -- Settings of the generator belong to the superuser.
    ($$SET gb_scale.shard_id = 2$$),
    ($$SET gb_scale.max_lead_ms = 0$$),
    ($$SET gb_scale.reservation_ms = 1$$),
    ($$SET gb_scale.debug_clock_offset_ms = 100000$$),
    ($$SELECT set_config('gb_scale.shard_id', '2', false)$$),
    ($$ALTER ROLE regress_gb_alice SET gb_scale.shard_id = 2$$),
    -- The clock of maintenance and the worker's settings.
    ($$SET gb_scale.test_now = '2030-01-01 00:00:00+00'$$),
    ($$SELECT set_config('gb_scale.test_now', '2030-01-01 00:00:00+00', false)$$),
    ($$SET gb_scale.maintenance_databases = 'postgres'$$),
    ($$SET gb_scale.maintenance_naptime = 1$$),
    -- The durable mark of the generator.
    ($$SELECT nextval('gb_scale.id_mark')$$),
    ($$SELECT setval('gb_scale.id_mark', 1)$$),
    ($$SELECT last_value FROM gb_scale.id_mark$$),
    ($$SELECT pg_sequence_last_value('gb_scale.id_mark')$$),
    -- Another role's enum.
    ($$SELECT gb_enum_add('sec_bob.color', 'blue')$$),
    ($$SELECT gb_enum_add('sec_bob.color', 'blue', 7::smallint)$$),
    ($$SELECT gb_enum_rename('sec_bob.color', 'red', 'crimson')$$),
    ($$SELECT gb_enum_create('sec_bob.mine', ARRAY['a'])$$),
    -- The label table: read-only for PUBLIC, even for labels of its own enum.
    ($$INSERT INTO gb_scale.enum_label (enum_type, code, label) VALUES ('sec_alice.mood', 20, 'x')$$),
    ($$INSERT INTO gb_scale.enum_label (enum_type, code, label) VALUES ('sec_bob.color', 20, 'x')$$),
    ($$UPDATE gb_scale.enum_label SET label = 'x' WHERE enum_type = 'sec_bob.color'::regtype AND code = 0$$),
    ($$UPDATE gb_scale.enum_label SET label = 'x' WHERE enum_type = 'sec_alice.mood'::regtype AND code = 0$$),
    ($$DELETE FROM gb_scale.enum_label WHERE enum_type = 'sec_alice.mood'::regtype$$),
    ($$TRUNCATE gb_scale.enum_label$$),
    ($$LOCK TABLE gb_scale.enum_label IN ACCESS EXCLUSIVE MODE$$),
    ($$LOCK TABLE gb_scale.enum_label IN SHARE MODE$$),
    ($$LOCK TABLE gb_scale.enum_label IN ROW EXCLUSIVE MODE$$),
    ($$SELECT code FROM gb_scale.enum_label FOR UPDATE$$),
    ($$SELECT code FROM gb_scale.enum_label FOR KEY SHARE$$),
    ($$CREATE TABLE sec_alice.fk (t regtype, c smallint, FOREIGN KEY (t, c) REFERENCES gb_scale.enum_label)$$),
    ($$CREATE TRIGGER t BEFORE UPDATE ON gb_scale.enum_label FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()$$),
    ($$ALTER TABLE gb_scale.enum_label DISABLE TRIGGER USER$$),
    -- Another role's partitioned tables.
    ($$SELECT gb_partition_create('sec_bob.unregistered', 'at', '1 day')$$),
    ($$SELECT gb_partition_retention('sec_bob.ev', '1 day')$$),
    ($$SELECT gb_partition_retention('sec_bob.ev', '1 day', 'archive', 'sec_alice')$$),
    ($$SELECT gb_partition_ensure('sec_bob.ev', '2025-01-01 00:00:00+00', '2025-01-02 00:00:00+00')$$),
    ($$SELECT gb_partition_forget('sec_bob.ev')$$),
    ($$SELECT gb_tenant_dedicate('sec_bob.chat', 1)$$),
    ($$SELECT gb_tenant_retention('sec_bob.chat', 1, '1 day')$$),
    -- The partition catalog: read-only for PUBLIC.
    ($$INSERT INTO gb_scale.partition_config (parent, layout) VALUES ('sec_alice.ev'::regclass, 'range')$$),
    ($$UPDATE gb_scale.partition_config SET retention = '1 day'$$),
    ($$DELETE FROM gb_scale.partition_config$$),
    ($$TRUNCATE gb_scale.partition_config$$),
    ($$UPDATE gb_scale.partition_tenant SET retention = '1 day'$$),
    ($$DELETE FROM gb_scale.partition_tenant$$),
    ($$TRUNCATE gb_scale.partition_tenant$$),
    ($$LOCK TABLE gb_scale.partition_config IN ACCESS EXCLUSIVE MODE$$),
    ($$SELECT parent FROM gb_scale.partition_config FOR UPDATE$$),
    -- The load-balancer routes name every shard's host: gb_scale_admin and
    -- pg_monitor only.
    ($$SELECT count(*) FROM gb_shard_routes()$$),
    -- Internal functions other than the domain check.
    ($$SELECT gb_scale.enum_label_guard()$$),
    ($$SELECT gb_scale.enum_label_changed()$$),
    ($$SELECT gb_scale.enum_on_drop()$$),
    ($$SELECT gb_scale.enum_create_builtin('sec_alice.fake', ARRAY['a'], ARRAY[0]::smallint[])$$),
    ($$SELECT gb_scale.id_mark_init()$$),
    ($$SELECT gb_scale.partition_on_drop()$$),
    ($$SELECT gb_scale.partition_on_rename()$$),
    ($$SELECT gb_scale.isolation_on_ddl()$$),
    -- Tenant plans and settings are gb_scale_admin's.
    ($$SELECT gb_tenant_plan(1, 2)$$),
    ($$SELECT gb_tenant_tier(1)$$),
    ($$SELECT gb_tenant_setting(1, 'work_mem', '8MB')$$),
    ($$SELECT gb_plan_setting(2, 'app.model', 'x')$$),
    ($$SELECT * FROM gb_scale.tenant_settings(1)$$),
    ($$SELECT * FROM gb_scale.tenant_setting$$),
    ($$INSERT INTO gb_scale.tenant_setting (tenant_id, name, kind, value) VALUES (1, 'role', 'setting', 'postgres')$$),
    ($$UPDATE gb_scale.plan_setting SET value = 'x'$$),
    ($$DELETE FROM gb_scale.tenant_plan$$),
    ($$SELECT gb_scale.tenant_settings_changed()$$),
    -- Tenant and plan limits are gb_scale_admin's.
    ($$SELECT gb_tenant_limit(1, 2, 10)$$),
    ($$SELECT gb_plan_limit(0, 2, 10)$$),
    ($$SELECT * FROM gb_scale.tenant_limit$$),
    ($$INSERT INTO gb_scale.plan_limit (tier, max_xacts) VALUES (0, 1)$$),
    ($$DELETE FROM gb_scale.tenant_limit$$),
    ($$SELECT * FROM gb_tenant_limits_usage$$),
    ($$SELECT * FROM gb_scale.tenant_limits_usage()$$),
    -- Row quotas are gb_scale_admin's.
    ($$SELECT gb_tenant_quota(1, 'gb_scale.tenant_plan', 10, NULL)$$),
    ($$SELECT gb_plan_quota(0, 'gb_scale.tenant_plan', 10, NULL)$$),
    ($$SELECT * FROM gb_scale.tenant_quota$$),
    ($$INSERT INTO gb_scale.plan_quota (tier, tbl, rows_per_day) VALUES (0, 'gb_scale.tenant_plan', 1)$$),
    ($$DELETE FROM gb_scale.tenant_quota$$),
    ($$SELECT * FROM gb_tenant_quotas$$),
    ($$SELECT * FROM gb_scale.tenant_quota_usage()$$),
    ($$SELECT gb_scale.quota_count()$$),
    -- Built-in enums are General Bots' and change only with a release.
    ($$SELECT gb_enum_add('gb_channel_type', 'discord')$$),
    ($$SELECT gb_enum_add('gb_channel_type', 'discord', 10::smallint)$$),
    ($$SELECT gb_enum_rename('gb_message_role', 'user', 'human')$$)
  ) AS v(stmt);
-- A support function cannot be called from SQL at all (its argument is
-- internal); its EXECUTE privilege is still not PUBLIC's.
SELECT has_function_privilege('gb_scale.enum_code_support(internal)', 'EXECUTE') AS may_execute_support;
-- Reading stays allowed; nothing above changed a setting.
SELECT sec_priv.try($$LOCK TABLE gb_scale.enum_label IN ACCESS SHARE MODE$$) AS access_share,
       current_setting('gb_scale.shard_id') AS shard_id,
       current_setting('gb_scale.max_lead_ms') AS max_lead_ms;
-- Configuration is the application's to read (its transaction's tenant only).
SELECT gb_tenant_config('app.model', 'no tenant') AS tenant_config;
RESET SESSION AUTHORIZATION;

-- Not even a superuser changes a built-in enum, through the functions or by
-- writing the label table directly: the guard refuses.  (Rolled back, so
-- that a guard that lets one through does not change the later tests.)
BEGIN;
SELECT stmt, sec_priv.try(stmt) AS result
  FROM (VALUES
    ($$SELECT gb_enum_add('gb_channel_type', 'discord')$$),
    ($$SELECT gb_enum_add('gb_channel_type', 'discord', 10::smallint)$$),
    ($$SELECT gb_enum_rename('gb_message_role', 'user', 'human')$$),
    ($$INSERT INTO gb_scale.enum_label (enum_type, code, label) VALUES ('gb_channel_type', 10, 'discord')$$),
    ($$INSERT INTO gb_scale.enum_label (enum_type, code, label, builtin) VALUES ('gb_channel_type', 10, 'discord', true)$$),
    ($$UPDATE gb_scale.enum_label SET label = 'human' WHERE enum_type = 'gb_message_role'::regtype AND code = 1$$),
    ($$DELETE FROM gb_scale.enum_label WHERE enum_type = 'gb_channel_type'::regtype AND code = 9$$)
  ) AS v(stmt);
SELECT count(*) AS channel_labels, max(code) AS max_channel_code
  FROM gb_scale.enum_label WHERE enum_type = 'gb_channel_type'::regtype;
ROLLBACK;

-- bob's enum is as bob left it, and his partitioned tables too.
SELECT * FROM gb_enum_labels('sec_bob.color');
SELECT parent, retention, last_error FROM gb_scale.partition_status
 WHERE parent::text LIKE 'sec\_bob.%' ORDER BY parent::text COLLATE "C";
SELECT count(*) AS bob_partitions FROM pg_inherits
 WHERE inhparent IN ('sec_bob.ev'::regclass, 'sec_bob.chat'::regclass, 'sec_bob.unregistered'::regclass);
SELECT count(*) AS bob_tenants FROM gb_scale.partition_tenant WHERE parent = 'sec_bob.chat'::regclass;

-- Clean up: dropping the schemas drops the enums and their labels.
SET client_min_messages = warning;
DROP SCHEMA sec_alice CASCADE;
DROP SCHEMA sec_bob CASCADE;
DROP SCHEMA sec_priv CASCADE;
DROP ROLE regress_gb_alice;
DROP ROLE regress_gb_bob;
RESET client_min_messages;
SELECT count(*) AS partition_configs_left FROM gb_scale.partition_config;
RESET gb_scale.test_now;
SELECT count(*) AS user_labels_left
  FROM gb_scale.enum_label l
 WHERE l.enum_type NOT IN (SELECT d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                            WHERE e.extname = 'gb_scale' AND d.classid = 'pg_type'::regclass AND d.deptype = 'e');
RESET search_path;
