-- Cross-shard queries through postgres_fdw: gb_shard_fdw_setup() and
-- gb_global_table().
--
-- Three "shards" are three other databases of this instance, each with
-- gb_scale and a table gb.messages whose rows carry their shard_id; the
-- shard directory points at them through the instance's socket.  The
-- connection strings (socket directory, port, user) differ from run to run:
-- they are built with \gset and masked wherever catalogs show them.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET search_path = public, pg_catalog;
SELECT current_database() AS regress_db \gset

-- Left behind by a run that crashed: databases and roles belong to the cluster.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_gbfdw_s1 WITH (FORCE);
DROP DATABASE IF EXISTS regress_gbfdw_s2 WITH (FORCE);
DROP DATABASE IF EXISTS regress_gbfdw_s3 WITH (FORCE);
DROP ROLE IF EXISTS regress_fdw_admin;
DROP ROLE IF EXISTS regress_fdw_nobody;
DROP ROLE IF EXISTS regress_fdw_mallory;
RESET client_min_messages;

CREATE DATABASE regress_gbfdw_s1;
CREATE DATABASE regress_gbfdw_s2;
CREATE DATABASE regress_gbfdw_s3;
ALTER DATABASE regress_gbfdw_s1 SET gb_scale.shard_id = 1;
ALTER DATABASE regress_gbfdw_s2 SET gb_scale.shard_id = 2;
ALTER DATABASE regress_gbfdw_s3 SET gb_scale.shard_id = 3;

-- Each shard: its shard id set for the database, rows stamped with it by
-- the column default; tenant t has t rows on shard 1, 2t on shard 2, 3t on
-- shard 3 (tenants 1-5), so every sum below says which shards it read.
\c regress_gbfdw_s1
CREATE EXTENSION gb_scale;
CREATE SCHEMA gb;
CREATE TABLE gb.messages (id bigint PRIMARY KEY, tenant_id bigint NOT NULL,
                          shard_id smallint NOT NULL DEFAULT gb_current_shard(), channel gb_channel_type NOT NULL DEFAULT 1,
                          body text);
INSERT INTO gb.messages (id, tenant_id, body)
SELECT t * 1000 + i, t, 'shard 1' FROM generate_series(1, 5) t, generate_series(1, t) i;
\c regress_gbfdw_s2
CREATE EXTENSION gb_scale;
CREATE SCHEMA gb;
CREATE TABLE gb.messages (id bigint PRIMARY KEY, tenant_id bigint NOT NULL,
                          shard_id smallint NOT NULL DEFAULT gb_current_shard(), channel gb_channel_type NOT NULL DEFAULT 1,
                          body text);
INSERT INTO gb.messages (id, tenant_id, body)
SELECT t * 1000 + i, t, 'shard 2' FROM generate_series(1, 5) t, generate_series(1, 2 * t) i;
\c regress_gbfdw_s3
CREATE EXTENSION gb_scale;
CREATE SCHEMA gb;
CREATE TABLE gb.messages (id bigint PRIMARY KEY, tenant_id bigint NOT NULL,
                          shard_id smallint NOT NULL DEFAULT gb_current_shard(), channel gb_channel_type NOT NULL DEFAULT 1,
                          body text);
INSERT INTO gb.messages (id, tenant_id, body)
SELECT t * 1000 + i, t, 'shard 3' FROM generate_series(1, 5) t, generate_series(1, 3 * t) i;
\c :regress_db
SET search_path = public, pg_catalog;

-- This database's own copy of the table (every shard has the same schema).
CREATE SCHEMA gb;
CREATE TABLE gb.messages (id bigint PRIMARY KEY, tenant_id bigint NOT NULL,
                          shard_id smallint NOT NULL DEFAULT 0, channel gb_channel_type NOT NULL DEFAULT 1,
                          body text);

-- Connection strings to this instance: its first socket directory, its
-- port, the regression user, values quoted for libpq.
CREATE SCHEMA fdw_test;
GRANT USAGE ON SCHEMA fdw_test TO PUBLIC;
-- libpq quoting: single quotes, backslash escapes.
CREATE FUNCTION fdw_test.q(v text) RETURNS text
LANGUAGE sql AS $$ SELECT '''' || replace(replace(v, '\', '\\'), '''', '\''') || '''' $$;
CREATE FUNCTION fdw_test.conninfo(db text, extra text DEFAULT '') RETURNS text
LANGUAGE sql AS $$
    SELECT format('host=%s port=%s dbname=%s user=%s%s',
                  fdw_test.q(coalesce(nullif(trim(split_part(current_setting('unix_socket_directories'), ',', 1)), ''),
                                      'localhost')),
                  current_setting('port'), fdw_test.q(db), fdw_test.q(current_user), extra)
$$;
-- Options as catalogs hold them, with this run's socket, port and user masked.
CREATE FUNCTION fdw_test.masked(opts text[]) RETURNS text
LANGUAGE sql AS $$
    SELECT coalesce(string_agg(CASE split_part(o, '=', 1)
                                 WHEN 'host' THEN 'host=SOCKET' WHEN 'port' THEN 'port=PORT'
                                 WHEN 'user' THEN 'user=USER' ELSE o END, ' ' ORDER BY o COLLATE "C"), '-')
      FROM unnest(opts) o
$$;
CREATE VIEW fdw_test.servers AS
SELECT s.srvname::text COLLATE "C" AS server, w.fdwname AS fdw, s.srvowner::regrole AS owner,
       fdw_test.masked(s.srvoptions) AS options
  FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
 WHERE s.srvname LIKE 'gb\_shard\_%';
CREATE VIEW fdw_test.mappings AS
SELECT m.srvname::text COLLATE "C" AS server, m.usename::text COLLATE "C" AS for_role,
       fdw_test.masked(m.umoptions) AS options
  FROM pg_user_mappings m
 WHERE m.srvname LIKE 'gb\_shard\_%';
CREATE VIEW fdw_test.partitions AS
SELECT i.inhparent::regclass::text COLLATE "C" AS parent, c.relname::text COLLATE "C" AS partition,
       pg_get_expr(c.relpartbound, c.oid) AS bound, s.srvname AS server,
       array_to_string(f.ftoptions, ' ') AS options
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  LEFT JOIN pg_foreign_table f ON f.ftrelid = c.oid
  LEFT JOIN pg_foreign_server s ON s.oid = f.ftserver
 WHERE i.inhparent IN (SELECT r.oid FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
                        WHERE n.nspname = 'gb_global');
GRANT SELECT ON ALL TABLES IN SCHEMA fdw_test TO PUBLIC;

-- The shard directory: shard 1's string also carries a password (for the
-- user mapping; trust authentication does not ask for it) and settings that
-- postgres_fdw sets itself (left out).
SELECT fdw_test.conninfo('regress_gbfdw_s1',
                         ' password=not-asked-by-trust client_encoding=LATIN1 application_name=gb_fdw_test') AS conn1,
       fdw_test.conninfo('regress_gbfdw_s2') AS conn2,
       fdw_test.conninfo('regress_gbfdw_s3', ' connect_timeout=10') AS conn3 \gset
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (1, 'BRA', 'sa-east-1a', :'conn1', 1, 1000),
       (2, 'BRA', 'sa-east-1b', :'conn2', 1001, 2000),
       (3, 'USA', 'us-east-1a', :'conn3', 2001, 3000);

------------------------------------------------------------------------------
-- Connection strings as postgres_fdw options
------------------------------------------------------------------------------
SELECT keyword, value, for_user_mapping
  FROM gb_scale.conninfo_options('host=/run/pg port=5433 dbname=gb user=bot password=s3cret '
                                 'sslmode=require sslpassword=k3y client_encoding=UTF8 '
                                 'fallback_application_name=x options=''-c work_mem=8MB''');
SELECT keyword, value, for_user_mapping
  FROM gb_scale.conninfo_options('postgresql://bot:s3cret@db.example:5433/gb?connect_timeout=5');
SELECT count(*) AS options FROM gb_scale.conninfo_options('');
-- Bad strings: 22023, naming the problem, never what may be a password.
SELECT keyword FROM gb_scale.conninfo_options('host=x nosuch=1');
SELECT keyword FROM gb_scale.conninfo_options('host=x dbname=''gb');
SELECT keyword FROM gb_scale.conninfo_options('host=x password=two words');
SELECT keyword FROM gb_scale.conninfo_options('host=x password=two nosuch=1');
SELECT keyword FROM gb_scale.conninfo_options('postgresql://bot:s3cret@[::1/gb');
SELECT keyword FROM gb_scale.conninfo_options('host=x replication=database');

------------------------------------------------------------------------------
-- gb_shard_fdw_setup(): a server and a user mapping per active shard
------------------------------------------------------------------------------
SELECT gb_shard_fdw_setup();
SELECT extname, extnamespace::regnamespace FROM pg_extension WHERE extname = 'postgres_fdw';
SELECT * FROM fdw_test.servers ORDER BY server;
SELECT * FROM fdw_test.mappings ORDER BY server;

------------------------------------------------------------------------------
-- gb_global_table()
------------------------------------------------------------------------------
SELECT gb_global_table('gb.messages', 'messages');
SELECT * FROM fdw_test.partitions ORDER BY partition;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a WHERE a.attrelid = 'gb_global.messages'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT pg_get_partkeydef('gb_global.messages'::regclass) AS partition_key;

-- Each shard's own count, read there, against the global table's.
\c regress_gbfdw_s1
SELECT count(*) AS s1_t4 FROM gb.messages WHERE tenant_id = 4 \gset
\c regress_gbfdw_s2
SELECT count(*) AS s2_t4 FROM gb.messages WHERE tenant_id = 4 \gset
\c regress_gbfdw_s3
SELECT count(*) AS s3_t4 FROM gb.messages WHERE tenant_id = 4 \gset
\c :regress_db
SET search_path = public, pg_catalog;
SELECT :s1_t4 AS s1, :s2_t4 AS s2, :s3_t4 AS s3;
SELECT count(*) AS global_count, count(*) = :s1_t4 + :s2_t4 + :s3_t4 AS equals_sum
  FROM gb_global.messages WHERE tenant_id = 4;
PREPARE tenant_count(bigint) AS SELECT count(*) FROM gb_global.messages WHERE tenant_id = $1;
EXECUTE tenant_count(4);
EXECUTE tenant_count(42);
SELECT shard_id, count(*), min(body), count(*) FILTER (WHERE gb_label(channel) = 'whatsapp') AS whatsapp
  FROM gb_global.messages GROUP BY shard_id ORDER BY shard_id;

-- Every shard at once (asynchronous append), and one shard when the query
-- names it: pruned when planned, or when run for a parameter.
EXPLAIN (COSTS OFF) SELECT count(*) FROM gb_global.messages WHERE tenant_id = 4;
EXPLAIN (COSTS OFF) SELECT count(*) FROM gb_global.messages WHERE tenant_id = 4 AND shard_id = 2;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM gb_global.messages WHERE tenant_id = 4 AND shard_id = 2;
SELECT count(*) AS shard2_count, count(*) = :s2_t4 AS equals_shard2
  FROM gb_global.messages WHERE tenant_id = 4 AND shard_id = 2;
PREPARE shard_count(smallint, bigint) AS
    SELECT count(*) FROM gb_global.messages WHERE shard_id = $1 AND tenant_id = $2;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE shard_count(3, 4);
EXECUTE shard_count(3, 4);
RESET plan_cache_mode;

------------------------------------------------------------------------------
-- Re-running both is idempotent; a re-run follows the shard directory
------------------------------------------------------------------------------
CREATE TEMP TABLE before_rerun AS
SELECT 'server' AS kind, s.srvname::text AS name, s.oid, s.srvoptions AS options
  FROM pg_foreign_server s WHERE s.srvname LIKE 'gb\_shard\_%'
UNION ALL
SELECT 'mapping', m.srvname::text, m.umid, m.umoptions FROM pg_user_mappings m WHERE m.srvname LIKE 'gb\_shard\_%'
UNION ALL
SELECT 'table', c.relname::text, c.oid, f.ftoptions
  FROM pg_class c LEFT JOIN pg_foreign_table f ON f.ftrelid = c.oid
 WHERE c.relnamespace = 'gb_global'::regnamespace AND c.relkind IN ('p', 'f');
CREATE TEMP VIEW now_rerun AS
SELECT 'server' AS kind, s.srvname::text AS name, s.oid, s.srvoptions AS options
  FROM pg_foreign_server s WHERE s.srvname LIKE 'gb\_shard\_%'
UNION ALL
SELECT 'mapping', m.srvname::text, m.umid, m.umoptions FROM pg_user_mappings m WHERE m.srvname LIKE 'gb\_shard\_%'
UNION ALL
SELECT 'table', c.relname::text, c.oid, f.ftoptions
  FROM pg_class c LEFT JOIN pg_foreign_table f ON f.ftrelid = c.oid
 WHERE c.relnamespace = 'gb_global'::regnamespace AND c.relkind IN ('p', 'f');
SELECT gb_shard_fdw_setup();
SELECT gb_global_table('gb.messages', 'messages');
SELECT count(*) AS objects,
       (SELECT count(*) FROM (SELECT * FROM before_rerun EXCEPT SELECT * FROM now_rerun) d) AS changed_or_gone,
       (SELECT count(*) FROM (SELECT * FROM now_rerun EXCEPT SELECT * FROM before_rerun) d) AS changed_or_new
  FROM before_rerun;

-- postgres_fdw's own options set by an operator stay (fetch_size,
-- extensions); connection options follow the directory: shard 2 gains a
-- timeout, shard 3 loses the sslmode added by hand, shard 1's password
-- changes.
ALTER SERVER gb_shard_2 OPTIONS (ADD fetch_size '500');
ALTER SERVER gb_shard_3 OPTIONS (ADD extensions 'gb_scale', ADD sslmode 'disable');
UPDATE gb_scale.shard_config SET connection_string = :'conn2' || ' connect_timeout=7' WHERE shard_id = 2;
UPDATE gb_scale.shard_config SET connection_string = replace(:'conn1', 'not-asked-by-trust', 'rotated')
 WHERE shard_id = 1;
SELECT gb_shard_fdw_setup();
SELECT * FROM fdw_test.servers ORDER BY server;
SELECT * FROM fdw_test.mappings ORDER BY server;
SELECT kind, name, oid = (SELECT n.oid FROM now_rerun n WHERE n.kind = b.kind AND n.name = b.name) AS same_object
  FROM before_rerun b ORDER BY kind, name;
SELECT count(*) AS global_count FROM gb_global.messages WHERE tenant_id = 4;

-- A deactivated shard's partition goes; its server stays (setup never drops
-- one); reactivated, the partition comes back.  (A second global table of
-- the same table, with a name of more bytes than characters.)
SELECT gb_global_table('gb.messages', 'mensagens_ç');
UPDATE gb_scale.shard_config SET is_active = false WHERE shard_id = 3;
SELECT gb_global_table('gb.messages', 'messages');
SELECT gb_global_table('gb.messages', 'mensagens_ç');
SELECT * FROM fdw_test.partitions ORDER BY partition;
SELECT count(*) AS global_count, count(*) = :s1_t4 + :s2_t4 AS equals_sum_of_active
  FROM gb_global.messages WHERE tenant_id = 4;
EXPLAIN (COSTS OFF) SELECT count(*) FROM gb_global.messages WHERE tenant_id = 4;
SELECT gb_shard_fdw_setup();
SELECT server FROM fdw_test.servers ORDER BY server;
UPDATE gb_scale.shard_config SET is_active = true WHERE shard_id = 3;
SELECT gb_global_table('gb.messages', 'messages');
SELECT partition, bound, server FROM fdw_test.partitions ORDER BY partition;
DROP TABLE gb_global."mensagens_ç";
SELECT count(*) AS global_count FROM gb_global.messages WHERE tenant_id = 4;

-- A second global table, a quoted name, a table without rows anywhere but here.
CREATE TABLE gb."Bot Events" (shard_id smallint NOT NULL DEFAULT 0, "Kind" text);
\c regress_gbfdw_s2
CREATE TABLE gb."Bot Events" (shard_id smallint NOT NULL DEFAULT gb_current_shard(), "Kind" text);
INSERT INTO gb."Bot Events" ("Kind") VALUES ('start'), ('stop');
\c regress_gbfdw_s1
CREATE TABLE gb."Bot Events" (shard_id smallint NOT NULL DEFAULT gb_current_shard(), "Kind" text);
\c regress_gbfdw_s3
CREATE TABLE gb."Bot Events" (shard_id smallint NOT NULL DEFAULT gb_current_shard(), "Kind" text);
\c :regress_db
SET search_path = public, pg_catalog;
SELECT gb_global_table('gb."Bot Events"', 'Bot Events''s');
SELECT partition, bound, options FROM fdw_test.partitions WHERE parent LIKE '%Bot%' ORDER BY partition;
SELECT shard_id, "Kind" FROM gb_global."Bot Events's" ORDER BY 1, 2;

------------------------------------------------------------------------------
-- Errors
------------------------------------------------------------------------------
\set VERBOSITY default
-- No shard_id column, or not a smallint.
CREATE TABLE gb.no_shard (id bigint);
SELECT gb_global_table('gb.no_shard', 'no_shard');
CREATE TABLE gb.int_shard (id bigint, shard_id integer);
SELECT gb_global_table('gb.int_shard', 'int_shard');
-- Bad names; not a table; a global table as its own source.
SELECT gb_global_table('gb.messages', '');
SELECT gb_global_table('gb.messages', repeat('m', 58));
SELECT gb_global_table('gb.messages', repeat('m', 57)) = format('gb_global.%s', repeat('m', 57))::regclass AS longest_name;
DROP TABLE gb_global.mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm;
CREATE VIEW gb.a_view AS SELECT * FROM gb.messages;
SELECT gb_global_table('gb.a_view', 'a_view');
SELECT gb_global_table('gb_global.messages', 'messages2');
-- An existing global table reads one table only.
SELECT gb_global_table('gb."Bot Events"', 'messages');
-- Something else already has the name.
CREATE TABLE gb_global.plain (shard_id smallint);
SELECT gb_global_table('gb.messages', 'plain');
CREATE TABLE gb_global.by_range (shard_id smallint) PARTITION BY RANGE (shard_id);
SELECT gb_global_table('gb.messages', 'by_range');
DROP TABLE gb_global.plain, gb_global.by_range;
-- A shard without a server yet; a connection string postgres_fdw cannot use.
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (4, 'USA', 'us-east-1b', 'host=x dbname=gb password=two words', 3001, 4000);
SELECT gb_global_table('gb.messages', 'messages');
SELECT gb_shard_fdw_setup();
UPDATE gb_scale.shard_config SET connection_string = 'host=x replication=database' WHERE shard_id = 4;
SELECT gb_shard_fdw_setup();
DELETE FROM gb_scale.shard_config WHERE shard_id = 4;
-- A server of that name that is not postgres_fdw's.
CREATE FOREIGN DATA WRAPPER regress_fdw_dummy;
CREATE SERVER gb_shard_5 FOREIGN DATA WRAPPER regress_fdw_dummy;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (5, 'USA', 'us-east-1b', 'host=x', 5001, 6000);
SELECT gb_shard_fdw_setup();
DELETE FROM gb_scale.shard_config WHERE shard_id = 5;
DROP FOREIGN DATA WRAPPER regress_fdw_dummy CASCADE;
\set VERBOSITY terse

-- Privileges: PUBLIC may run neither function nor the parser; gb_scale_admin
-- may run them, with its own rights.
CREATE ROLE regress_fdw_nobody;
CREATE ROLE regress_fdw_admin IN ROLE gb_scale_admin;
GRANT USAGE ON SCHEMA gb, gb_global TO regress_fdw_admin, regress_fdw_nobody;
SELECT f AS function,
       has_function_privilege('regress_fdw_nobody', f, 'EXECUTE') AS nobody,
       has_function_privilege('regress_fdw_admin', f, 'EXECUTE') AS admin
  FROM (VALUES ('gb_shard_fdw_setup()'), ('gb_global_table(regclass,name)'),
               ('gb_scale.conninfo_options(text)')) v(f)
 ORDER BY 1;
SET SESSION AUTHORIZATION regress_fdw_nobody;
SELECT gb_shard_fdw_setup();
SELECT gb_global_table('gb.messages', 'messages');
SELECT * FROM gb_scale.conninfo_options('host=x');
RESET SESSION AUTHORIZATION;
-- An administrator without USAGE on the servers gets no user mapping; with
-- it, setup adds its mappings and changes nothing else.
SET SESSION AUTHORIZATION regress_fdw_admin;
SELECT gb_shard_fdw_setup();
RESET SESSION AUTHORIZATION;
GRANT USAGE ON FOREIGN SERVER gb_shard_1, gb_shard_2, gb_shard_3 TO regress_fdw_admin;
SET SESSION AUTHORIZATION regress_fdw_admin;
SELECT gb_shard_fdw_setup();
SELECT server, options FROM fdw_test.mappings WHERE for_role = 'regress_fdw_admin' ORDER BY server;
-- It may not read the local table, then does not own the global table; with
-- both, it makes a global table of its own, which postgres_fdw does not let
-- it use without a password.
SELECT gb_global_table('gb.messages', 'messages_admin');
RESET SESSION AUTHORIZATION;
GRANT SELECT ON gb.messages TO regress_fdw_admin;
SET SESSION AUTHORIZATION regress_fdw_admin;
SELECT gb_global_table('gb.messages', 'messages');
SELECT gb_global_table('gb.messages', 'messages_admin');
RESET SESSION AUTHORIZATION;
GRANT CREATE ON SCHEMA gb_global TO regress_fdw_admin;
SET SESSION AUTHORIZATION regress_fdw_admin;
SELECT gb_global_table('gb.messages', 'messages_admin');
SELECT count(*) FROM gb_global.messages_admin;
RESET SESSION AUTHORIZATION;
-- A changed directory needs the servers' owner.
UPDATE gb_scale.shard_config SET connection_string = :'conn2' WHERE shard_id = 2;
SET SESSION AUTHORIZATION regress_fdw_admin;
SELECT gb_shard_fdw_setup();
RESET SESSION AUTHORIZATION;
SELECT gb_shard_fdw_setup();

------------------------------------------------------------------------------
-- A hostile search_path
------------------------------------------------------------------------------
-- regress_fdw_mallory shadows, in a schema first on a superuser's
-- search_path, what the two functions name (functions, operators and the
-- catalogs they read); each shadow records that it ran.  Nothing may run.
CREATE ROLE regress_fdw_mallory;
CREATE SCHEMA hostile AUTHORIZATION regress_fdw_mallory;
SET SESSION AUTHORIZATION regress_fdw_mallory;
CREATE TABLE hostile.ran (what pg_catalog.text);
GRANT INSERT ON hostile.ran TO PUBLIC;
GRANT USAGE ON SCHEMA hostile TO PUBLIC;
CREATE FUNCTION hostile.record(what pg_catalog.text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'hostile % ran', what;
    INSERT INTO hostile.ran VALUES (what);
    RETURN true;
END
$$;
DO $gen$
DECLARE
    f record;
    i integer := 0;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('format', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.name', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.int2', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.name, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.name, pg_catalog.int2', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.name, pg_catalog.name', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.name, pg_catalog.name, pg_catalog.int2, pg_catalog.name, pg_catalog.name, pg_catalog.name',
         'pg_catalog.text', $$''$$),
        ('format_type', 'pg_catalog.oid, pg_catalog.int4', 'pg_catalog.text', $$''$$),
        ('split_part', 'pg_catalog.text, pg_catalog.text, pg_catalog.int4', 'pg_catalog.text', $$''$$),
        ('substr', 'pg_catalog.text, pg_catalog.int4', 'pg_catalog.text', $$''$$),
        ('strpos', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.int4', '0'),
        ('starts_with', 'pg_catalog.text, pg_catalog.text', 'boolean', 'true'),
        ('octet_length', 'pg_catalog.text', 'pg_catalog.int4', '0'),
        ('length', 'pg_catalog.text', 'pg_catalog.int4', '0'),
        ('has_schema_privilege', 'pg_catalog.text, pg_catalog.text', 'boolean', 'true'),
        ('pg_advisory_xact_lock', 'pg_catalog.int8', 'void', ''),
        ('octet_length', 'pg_catalog.name', 'pg_catalog.int4', '0'),
        ('cardinality', 'pg_catalog.text[]', 'pg_catalog.int4', '0'),
        ('array_to_string', 'pg_catalog.text[], pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('to_regnamespace', 'pg_catalog.text', 'pg_catalog.regnamespace', $$'hostile'$$),
        ('has_table_privilege', 'pg_catalog.regclass, pg_catalog.text', 'boolean', 'true'),
        ('has_table_privilege', 'pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('pg_has_role', 'pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('jsonb_each_text', 'pg_catalog.jsonb', 'TABLE (key pg_catalog.text, value pg_catalog.text)', ''),
        ('unnest', 'pg_catalog.text[]', 'SETOF pg_catalog.text', ''),
        ('conninfo_options', 'pg_catalog.text',
         'TABLE (keyword pg_catalog.text, value pg_catalog.text, for_user_mapping boolean)', '')
      ) AS v(name, args, result, wrong)
    LOOP
        i := i + 1;
        EXECUTE pg_catalog.format($f$CREATE FUNCTION hostile.%I(%s) RETURNS %s LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM hostile.record(%L);
    RETURN%s;
END
$body$$f$, f.name, f.args, f.result, pg_catalog.format('function %s(%s)', f.name, f.args),
           CASE WHEN f.wrong = '' THEN '' ELSE ' ' || f.wrong END);
    END LOOP;
    RAISE NOTICE 'hostile functions: %', i;
END
$gen$;
-- Operators on what the functions compare, and the catalogs they read.
DO $gen$
DECLARE
    t record;
    op text;
    rel text;
    cols text;
    i integer := 0;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('pg_catalog.name', 'pg_catalog.name'), ('pg_catalog.name', 'pg_catalog.text'),
                                   ('pg_catalog.text', 'pg_catalog.text'), ('pg_catalog.oid', 'pg_catalog.oid'),
                                   ('pg_catalog.int2', 'pg_catalog.int2'), ('pg_catalog.regclass', 'pg_catalog.regclass'),
                                   ('pg_catalog.char', 'pg_catalog.char'), ('pg_catalog.jsonb', 'pg_catalog.jsonb'))
                          AS v(l, r)
    LOOP
        FOREACH op IN ARRAY ARRAY['=', '<>', '||', '~']
        LOOP
            i := i + 1;
            EXECUTE pg_catalog.format($f$CREATE FUNCTION hostile.%I(%s, %s) RETURNS boolean LANGUAGE plpgsql AS $body$
BEGIN
    RETURN hostile.record(%L);
END
$body$$f$, 'op_' || i, t.l, t.r, pg_catalog.format('operator %s(%s, %s)', op, t.l, t.r));
            EXECUTE pg_catalog.format('CREATE OPERATOR hostile.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = hostile.%I)',
                                      op, t.l, t.r, 'op_' || i);
        END LOOP;
    END LOOP;
    FOREACH rel IN ARRAY ARRAY['pg_class', 'pg_namespace', 'pg_attribute', 'pg_type', 'pg_collation',
                               'pg_inherits', 'pg_partitioned_table', 'pg_foreign_server',
                               'pg_foreign_data_wrapper', 'pg_foreign_table', 'pg_roles', 'pg_user_mappings']
    LOOP
        -- The same columns, but those of a pseudo-type, which a view cannot have.
        SELECT pg_catalog.string_agg(pg_catalog.format('x.%I', a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.format('pg_catalog.%I', rel)::pg_catalog.regclass
           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
           AND a.atttypid OPERATOR(pg_catalog.<>) 'pg_catalog.anyarray'::pg_catalog.regtype;
        EXECUTE pg_catalog.format('CREATE VIEW hostile.%I AS SELECT %s FROM pg_catalog.%I x WHERE (SELECT NOT hostile.record(%L))',
                                  rel, cols, rel, 'relation ' || rel);
    END LOOP;
    CREATE TABLE hostile.shard_config (shard_id pg_catalog.int2, connection_string pg_catalog.text,
                                       is_active boolean);
    GRANT SELECT ON ALL TABLES IN SCHEMA hostile TO PUBLIC;
    RAISE NOTICE 'hostile operators: %', i;
END
$gen$;
RESET SESSION AUTHORIZATION;

SELECT kind, count(*)
  FROM (SELECT 'function' AS kind FROM pg_proc p WHERE p.pronamespace = 'hostile'::regnamespace
        UNION ALL
        SELECT 'operator' FROM pg_operator o WHERE o.oprnamespace = 'hostile'::regnamespace
        UNION ALL
        SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END
          FROM pg_class c WHERE c.relnamespace = 'hostile'::regnamespace AND c.relkind IN ('r', 'v')) k
 GROUP BY kind ORDER BY kind COLLATE "C";

-- As a superuser with mallory's schema first: changes to apply (shard 3
-- off, then on again), re-runs, a new global table.
UPDATE gb_scale.shard_config SET is_active = false WHERE shard_id = 3;
SET search_path = hostile, pg_catalog, public;
SELECT gb_shard_fdw_setup();
SELECT gb_global_table('gb.messages', 'messages');
SELECT gb_global_table('gb.messages', 'messages_hostile');
SELECT pg_catalog.count(*) AS hostile_count FROM gb_global.messages_hostile;
SET search_path = public, pg_catalog;
UPDATE gb_scale.shard_config SET is_active = true WHERE shard_id = 3;
SET search_path = hostile, pg_catalog, public;
SELECT gb_global_table('gb.messages', 'messages');
SELECT gb_global_table('gb.messages', 'messages_hostile');
SET search_path = public, pg_catalog;
SELECT partition, bound, server FROM fdw_test.partitions WHERE parent LIKE 'gb_global.messages%' ORDER BY partition;
SELECT count(*) AS global_count FROM gb_global.messages_hostile WHERE tenant_id = 4;
SELECT * FROM hostile.ran;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_fdw_mallory';

------------------------------------------------------------------------------
-- Clean up
------------------------------------------------------------------------------
SELECT gb_global.postgres_fdw_disconnect_all();
SET client_min_messages = warning;
DROP SCHEMA gb_global CASCADE;
DROP SCHEMA hostile, fdw_test, gb CASCADE;
DROP OWNED BY regress_fdw_admin, regress_fdw_nobody, regress_fdw_mallory CASCADE;
DROP ROLE regress_fdw_admin, regress_fdw_nobody, regress_fdw_mallory;
DROP DATABASE regress_gbfdw_s1 WITH (FORCE);
DROP DATABASE regress_gbfdw_s2 WITH (FORCE);
DROP DATABASE regress_gbfdw_s3 WITH (FORCE);
RESET client_min_messages;
DELETE FROM gb_scale.shard_config;
SELECT count(*) AS servers_left FROM pg_foreign_server;
SELECT count(*) AS postgres_fdw_left FROM pg_extension WHERE extname = 'postgres_fdw';
RESET search_path;
