-- A hostile table owner against a superuser (issue 13, item 1).
--
-- regress_mallory is an ordinary role with her own schema, first in the
-- superuser's search_path.  Her code (triggers, a policy) runs whenever
-- gb_scale works on her tables for the superuser: purge, export,
-- maintenance, dedicate.  It SETs search_path, work_mem, a setting of its
-- own, statement_timeout (LOCAL), tries to become another role or session
-- user and to change gb_scale's settings, and records what it managed.
-- Her operator mallory.= (bigint, integer) makes her a superuser if a
-- superuser ever runs it: it is reached by an innocent query the moment the
-- caller's search_path lists mallory before pg_catalog.
--
-- After each entry point: the caller's settings are what they were, the
-- innocent query does not make regress_mallory a superuser, and the
-- operation did its work.  The shard sync and the enum changes run as the
-- caller, not as an owner: there, the code inside the scope is a
-- superuser's careless audit trigger, and the scope must still keep its
-- settings from reaching the caller.
\set VERBOSITY default
\set SHOW_CONTEXT never
\setenv PGTZ UTC
SET timezone = 'UTC';
SET client_min_messages = warning;
DROP DATABASE IF EXISTS gb_hostile_source;
DROP SCHEMA IF EXISTS mallory CASCADE;
DROP ROLE IF EXISTS regress_mallory;
RESET client_min_messages;
CREATE ROLE regress_mallory;
CREATE SCHEMA mallory AUTHORIZATION regress_mallory;
-- as an application role would have
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_mallory;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

SET ROLE regress_mallory;
-- What her code managed, once per site and attempt.
CREATE TABLE mallory.attempts (site text, attempt text, usr name, result text, PRIMARY KEY (site, attempt));
-- Her code only acts once armed (so that loading her tables does nothing).
CREATE TABLE mallory.armed (on_ boolean);
CREATE FUNCTION mallory.note(site text, attempt text, result text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO mallory.attempts VALUES (site, attempt, current_user, result) ON CONFLICT DO NOTHING
$$;
CREATE FUNCTION mallory.meddle(site text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    IF NOT EXISTS (SELECT FROM mallory.armed) THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('search_path', 'mallory, pg_catalog', false);
    PERFORM pg_catalog.set_config('work_mem', '77kB', false);
    PERFORM pg_catalog.set_config('mallory.planted', site, false);
    PERFORM pg_catalog.set_config('statement_timeout', '7min', true);
    BEGIN
        PERFORM pg_catalog.set_config('role', 'regress_mallory', false);
        r := 'set';
    EXCEPTION WHEN OTHERS THEN
        r := SQLSTATE || ' ' || SQLERRM;
    END;
    PERFORM mallory.note(site, 'role', r);
    BEGIN
        PERFORM pg_catalog.set_config('session_authorization', 'regress_mallory', false);
        r := 'set';
    EXCEPTION WHEN OTHERS THEN
        r := SQLSTATE || ' ' || SQLERRM;
    END;
    PERFORM mallory.note(site, 'session_authorization', r);
    BEGIN
        PERFORM public.gb_set_tenant(666);
        r := 'set';
    EXCEPTION WHEN OTHERS THEN
        r := SQLSTATE || ' ' || SQLERRM;
    END;
    PERFORM mallory.note(site, 'gb_set_tenant', r);
    BEGIN
        PERFORM pg_catalog.set_config('gb_scale.tenant_id', '666', false);
        r := 'set';
    EXCEPTION WHEN OTHERS THEN
        r := SQLSTATE || ' ' || SQLERRM;
    END;
    PERFORM mallory.note(site, 'gb_scale.tenant_id', r);
    BEGIN
        PERFORM pg_catalog.set_config('gb_scale.maintenance_lock_timeout', '600000', false);
        r := 'set';
    EXCEPTION WHEN OTHERS THEN
        r := SQLSTATE || ' ' || SQLERRM;
    END;
    PERFORM mallory.note(site, 'gb_scale.maintenance_lock_timeout', r);
END $$;
CREATE FUNCTION mallory.trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mallory.meddle('trigger ' || TG_OP);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE FUNCTION mallory.peek(tenant bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM mallory.meddle('policy');
    RETURN true;
END $$;
-- The trap: with superuser rights it makes her one.
CREATE FUNCTION mallory.eq(a bigint, b integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE regress_mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR mallory.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = mallory.eq);

-- An isolated table with a statement trigger and a policy of hers.
CREATE TABLE mallory.evil (tenant_id bigint NOT NULL, note text);
SELECT gb_tenant_isolation_enable('mallory.evil');
CREATE TRIGGER evil_trg AFTER DELETE ON mallory.evil FOR EACH STATEMENT EXECUTE FUNCTION mallory.trg();
CREATE POLICY evil_peek ON mallory.evil AS RESTRICTIVE USING (mallory.peek(tenant_id));
-- A table partitioned by tenant, with row triggers.
CREATE TABLE mallory.msgs (tenant_id bigint NOT NULL, created_at timestamptz NOT NULL, body text)
    PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('mallory.msgs', 'created_at', '1 day', premake => '2 days',
                           tenant_column => 'tenant_id', start_at => '2025-03-08 00:00:00+00') > 0 AS msgs_parts;
CREATE TRIGGER msgs_trg BEFORE INSERT OR DELETE ON mallory.msgs FOR EACH ROW EXECUTE FUNCTION mallory.trg();
-- A time-partitioned table with a default partition, for maintenance.
CREATE TABLE mallory.events (created_at timestamptz NOT NULL, body text) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('mallory.events', 'created_at', '1 day', premake => '2 days',
                           default_partition => true, start_at => '2025-03-08 00:00:00+00') > 0 AS events_parts;
CREATE TRIGGER events_trg BEFORE INSERT OR DELETE ON mallory.events FOR EACH ROW EXECUTE FUNCTION mallory.trg();
-- Her enum.
SELECT gb_enum_create('mallory.mood', ARRAY['calm', 'sly']) IS NOT NULL AS mood_created;
-- Rows: tenants 7 and 42; events beyond the premade partitions.
BEGIN;
SELECT gb_set_tenant(7);
INSERT INTO mallory.evil VALUES (7, 'seven');
COMMIT;
BEGIN;
SELECT gb_set_tenant(42);
INSERT INTO mallory.evil VALUES (42, 'forty-two'), (42, 'forty-two again');
COMMIT;
INSERT INTO mallory.msgs SELECT t, '2025-03-09 00:00:00+00'::timestamptz + g * interval '1 hour', 'm' || g
  FROM generate_series(1, 4) g, (VALUES (7), (42)) v(t);
INSERT INTO mallory.events SELECT '2025-03-20 00:00:00+00'::timestamptz + g * interval '1 hour', 'stray ' || g
  FROM generate_series(1, 3) g;
INSERT INTO mallory.armed VALUES (true);
RESET ROLE;

-- The superuser's session: mallory first in search_path (pg_catalog, not
-- listed, is searched before it, so the innocent query is safe as long as
-- nobody changes the path).
SET search_path = mallory, public;
\set caller 'SELECT current_setting(''search_path'') AS search_path, current_setting(''work_mem'') AS work_mem, current_setting(''statement_timeout'') AS statement_timeout, coalesce(current_setting(''mallory.planted'', true), '''') AS planted, current_user, session_user, gb_scale.current_tenant() AS tenant'
\set innocent 'SELECT count(*) > 0 AS innocent FROM pg_class WHERE relpages::bigint = 0'
\set escalated 'SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = ''regress_mallory'''
-- Each step starts afresh, so that one step's failure does not hide another's.
\set fresh 'SET search_path = mallory, public; RESET work_mem; RESET mallory.planted; RESET gb_scale.routing_map_cache_rows; ALTER ROLE regress_mallory NOSUPERUSER; TRUNCATE mallory.attempts'
:caller;
:innocent;
:escalated;

-- Purge: her trigger and her policy run, as her, in a security-restricted
-- operation; role and session_authorization are refused there, the other
-- settings change only inside the scope.
:fresh;
BEGIN;
SELECT table_name, rows_removed FROM gb_tenant_purge(7) ORDER BY table_name::text;
:caller;
COMMIT;
:caller;
:innocent;
:escalated;
SELECT site, attempt, usr, result FROM mallory.attempts ORDER BY site, attempt;

-- Export: her policy runs for every row read.
:fresh;
BEGIN;
SELECT table_name, row_data->>'note' AS note FROM gb_tenant_export(42)
 WHERE table_name = 'mallory.evil'::regclass ORDER BY 2;
:caller;
COMMIT;
:caller;
:innocent;
:escalated;
SELECT site, attempt, usr, result FROM mallory.attempts ORDER BY site, attempt;

-- Maintenance by CALL at top level (a transaction per table): the stray
-- rows move out of the default partition.  A move fires none of her
-- triggers (see partition_moves for owner code that runs in one).
:fresh;
CALL gb_run_maintenance('mallory.events');
:caller;
:innocent;
:escalated;
SELECT count(*) FILTER (WHERE tableoid = 'mallory.events_default'::regclass) AS in_default, count(*) AS stray
  FROM mallory.events;
SELECT site, attempt, usr, result FROM mallory.attempts ORDER BY site, attempt;
-- And inside the caller's transaction block (subtransactions): LOCAL
-- settings and the tenant must not reach the rest of the transaction.
:fresh;
TRUNCATE mallory.armed;
INSERT INTO mallory.events VALUES ('2025-03-25 00:00:00+00', 'stray again');
INSERT INTO mallory.armed VALUES (true);
BEGIN;
CALL gb_run_maintenance('mallory.events');
:caller;
COMMIT;
:caller;
:innocent;
:escalated;
SELECT count(*) FILTER (WHERE tableoid = 'mallory.events_default'::regclass) AS in_default, count(*) AS stray
  FROM mallory.events;
SELECT site, attempt, usr, result FROM mallory.attempts ORDER BY site, attempt;

-- Dedicate: tenant 42's rows move to its own partitions, firing none of
-- her triggers.
:fresh;
BEGIN;
SELECT gb_tenant_dedicate('mallory.msgs', 42) AS moved;
:caller;
COMMIT;
:caller;
:innocent;
:escalated;
SELECT count(*) AS rows_of_42, count(*) FILTER (WHERE tableoid IN (SELECT relid FROM pg_partition_tree('mallory.msgs_t42'))) AS dedicated
  FROM mallory.msgs WHERE tenant_id = 42;
SELECT site, attempt, usr, result FROM mallory.attempts ORDER BY site, attempt;

-- The shard sync runs as the caller: the code in its scope is whatever
-- fires on the directory tables, here a superuser's audit trigger that
-- sets what it needs with set_config() and never puts it back.
CREATE FUNCTION public.careless_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'mallory, pg_catalog', false);
    PERFORM pg_catalog.set_config('work_mem', '77kB', false);
    PERFORM pg_catalog.set_config('gb_scale.routing_map_cache_rows', '7', false);
    RETURN NULL;
END $$;
CREATE FUNCTION public.careless_ddl_audit() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'mallory, pg_catalog', false);
    PERFORM pg_catalog.set_config('work_mem', '77kB', false);
    PERFORM pg_catalog.set_config('gb_scale.routing_map_cache_rows', '7', false);
END $$;
SELECT format('host=''%s'' port=%s dbname=gb_hostile_source',
              replace(replace(trim(split_part(current_setting('unix_socket_directories'), ',', 1)),
                              '\', '\\'), '''', '\'''),
              current_setting('port')) AS src,
       current_database() AS local_db
\gset
CREATE DATABASE gb_hostile_source;
\c gb_hostile_source
SET client_min_messages = warning;
CREATE EXTENSION gb_scale;
RESET client_min_messages;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (1, 'BRA', 'sao-paulo-1', 'host=shard1 dbname=gb', 0, 999);
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (42, 1, 'BRA');
\c :local_db
SET timezone = 'UTC';
SET search_path = mallory, public;
CREATE TRIGGER careless AFTER INSERT OR UPDATE OR DELETE ON gb_scale.tenant_shard_map
    FOR EACH STATEMENT EXECUTE FUNCTION public.careless_audit();
:caller;
SHOW gb_scale.routing_map_cache_rows;
:fresh;
BEGIN;
SELECT gb_shard_sync(:'src');
:caller;
SHOW gb_scale.routing_map_cache_rows;
COMMIT;
:caller;
SHOW gb_scale.routing_map_cache_rows;
:innocent;
:escalated;
SELECT tenant_id, shard_id, region_code FROM gb_scale.tenant_shard_map ORDER BY 1;
DROP TRIGGER careless ON gb_scale.tenant_shard_map;
DELETE FROM gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;

-- Enum changes and creations run as the caller too; here the code in the
-- scope is an event trigger on the DDL they issue.
CREATE EVENT TRIGGER careless_ddl ON ddl_command_end EXECUTE FUNCTION public.careless_ddl_audit();
:fresh;
BEGIN;
SELECT gb_enum_add('mallory.mood', 'wily') AS wily_code;
SELECT gb_enum_rename('mallory.mood', 'sly', 'cunning');
SELECT gb_enum_create('mallory.tone', ARRAY['low', 'high']) IS NOT NULL AS tone_created;
:caller;
SHOW gb_scale.routing_map_cache_rows;
COMMIT;
:caller;
SHOW gb_scale.routing_map_cache_rows;
:innocent;
:escalated;
SELECT code, label FROM gb_enum_labels('mallory.mood') ORDER BY code;
SELECT code, label FROM gb_enum_labels('mallory.tone') ORDER BY code;
DROP EVENT TRIGGER careless_ddl;

-- Clean up.
RESET search_path;
RESET gb_scale.test_now;
DROP DATABASE gb_hostile_source;
DROP FUNCTION public.careless_audit();
DROP FUNCTION public.careless_ddl_audit();
SET client_min_messages = warning;
DROP SCHEMA mallory CASCADE;
RESET client_min_messages;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_mallory;
DROP ROLE regress_mallory;
SELECT count(*) AS registrations_left FROM gb_scale.partition_config;
