-- gb_shard_sync(source): this shard's shard directory made equal to another
-- shard's, read over libpq.  The other shard is another database of this
-- instance, reached through the socket directory, so that the test needs no
-- second server.  Connection strings hold the socket path: they are never
-- printed, and errors that would name it are shown terse.
-- Every session of the test, also those \c opens, shows times alike.
\setenv PGTZ UTC
\setenv PGDATESTYLE 'ISO, YMD'
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- Databases and roles belong to the cluster: a run that crashed left them.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS gb_sync_source;
DROP DATABASE IF EXISTS gb_sync_plain;
DROP ROLE IF EXISTS regress_sync_admin;
DROP ROLE IF EXISTS regress_sync_nobody;
RESET client_min_messages;
CREATE DATABASE gb_sync_source;
CREATE DATABASE gb_sync_plain;

-- Connection strings to the source, to a database without the extension,
-- to this database and to a port nobody listens on.
SELECT current_database() AS local_db,
       format('host=''%s'' port=%s',
              replace(replace(trim(split_part(current_setting('unix_socket_directories'), ',', 1)),
                              '\', '\\'), '''', '\'''),
              current_setting('port')) AS server
\gset
SELECT :'server' || ' dbname=gb_sync_source' AS src,
       :'server' || ' dbname=gb_sync_plain' AS plain,
       :'server' || format(' dbname=%s', :'local_db') AS here
\gset

------------------------------------------------------------------------------
-- The source shard
------------------------------------------------------------------------------
\c gb_sync_source
CREATE EXTENSION gb_scale;
INSERT INTO gb_scale.shard_config
       (shard_id, region_code, datacenter, connection_string, is_primary, is_active,
        min_tenant_id, max_tenant_id, created_at)
VALUES (1, 'BRA', 'sao-paulo-1', 'host=shard1 dbname=gb', true, true, 0, 999, '2025-01-01 10:00:00+00'),
       (2, 'USA', 'virginia-1', 'host=shard2 dbname=gb', false, true, 1000, 1999, '2025-02-01 10:00:00+00'),
       (3, 'DEU', 'frankfurt-1', 'host=shard3 dbname=gb', false, false, 0, 1999, NULL);
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code, created_at)
VALUES (5, 2, 'USA', '2025-03-01 10:00:00+00'),
       (1500, 1, 'BRA', '2025-03-02 10:00:00+00'),
       (77, 3, 'DEU', NULL);
SELECT md5(string_agg(c::text, ';' ORDER BY shard_id)) AS src_shards FROM gb_scale.shard_config c \gset
SELECT md5(string_agg(m::text, ';' ORDER BY tenant_id)) AS src_map FROM gb_scale.tenant_shard_map m \gset

------------------------------------------------------------------------------
-- A full sync
------------------------------------------------------------------------------
\c :local_db
-- What this shard has before: shard 2 with other values, shard 9 and a
-- placement on it that the source does not have, tenant 5 elsewhere.
INSERT INTO gb_scale.shard_config
       (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id, created_at)
VALUES (2, 'USA', 'ohio-1', 'host=old2', 1000, 1999, '2024-06-01 00:00:00+00'),
       (9, 'JPN', 'tokyo-1', 'host=shard9', 5000, 5999, '2024-06-01 00:00:00+00');
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code)
VALUES (5, 9, 'JPN'), (7, 9, 'JPN');

SELECT gb_shard_sync(:'src');
SELECT * FROM gb_scale.shard_config ORDER BY shard_id;
SELECT * FROM gb_scale.tenant_shard_map ORDER BY tenant_id;
SELECT md5(string_agg(c::text, ';' ORDER BY shard_id)) = :'src_shards' AS shards_equal
  FROM gb_scale.shard_config c;
SELECT md5(string_agg(m::text, ';' ORDER BY tenant_id)) = :'src_map' AS map_equal
  FROM gb_scale.tenant_shard_map m;

-- Nothing new: nothing is written (every row keeps its xmin).
SELECT string_agg(xmin::text, ',' ORDER BY shard_id) AS xmins_shards FROM gb_scale.shard_config \gset
SELECT string_agg(xmin::text, ',' ORDER BY tenant_id) AS xmins_map FROM gb_scale.tenant_shard_map \gset
SELECT gb_shard_sync(:'src');
SELECT string_agg(xmin::text, ',' ORDER BY shard_id) = :'xmins_shards' AS shards_untouched,
       (SELECT string_agg(xmin::text, ',' ORDER BY tenant_id) = :'xmins_map' FROM gb_scale.tenant_shard_map) AS map_untouched
  FROM gb_scale.shard_config;

-- Syncing from itself changes nothing either.
SELECT gb_shard_sync(:'here');

------------------------------------------------------------------------------
-- Ranges swapped, a region changed, a shard and a placement removed
------------------------------------------------------------------------------
\c gb_sync_source
BEGIN;
SET CONSTRAINTS gb_scale.shard_config_active_ranges_disjoint DEFERRED;
UPDATE gb_scale.shard_config SET min_tenant_id = 1000, max_tenant_id = 1999 WHERE shard_id = 1;
UPDATE gb_scale.shard_config SET min_tenant_id = 0, max_tenant_id = 999 WHERE shard_id = 2;
COMMIT;
UPDATE gb_scale.shard_config SET region_code = 'CAN', datacenter = 'montreal-1' WHERE shard_id = 2;
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id = 77;
DELETE FROM gb_scale.shard_config WHERE shard_id = 3;
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code, created_at)
VALUES (42, 2, 'CAN', '2025-04-01 10:00:00+00');
SELECT md5(string_agg(c::text, ';' ORDER BY shard_id)) AS src_shards FROM gb_scale.shard_config c \gset
SELECT md5(string_agg(m::text, ';' ORDER BY tenant_id)) AS src_map FROM gb_scale.tenant_shard_map m \gset

\c :local_db
SELECT gb_shard_sync(:'src');
SELECT shard_id, region_code, datacenter, is_active, min_tenant_id, max_tenant_id
  FROM gb_scale.shard_config ORDER BY shard_id;
SELECT * FROM gb_scale.tenant_shard_map ORDER BY tenant_id;
SELECT md5(string_agg(c::text, ';' ORDER BY shard_id)) = :'src_shards' AS shards_equal
  FROM gb_scale.shard_config c;
SELECT md5(string_agg(m::text, ';' ORDER BY tenant_id)) = :'src_map' AS map_equal
  FROM gb_scale.tenant_shard_map m;

-- In the caller's transaction: a rollback undoes it all, and the routing
-- cache forgets what it saw in the transaction.
\c gb_sync_source
UPDATE gb_scale.tenant_shard_map SET shard_id = 2, region_code = 'CAN' WHERE tenant_id = 1500;
SELECT md5(string_agg(m::text, ';' ORDER BY tenant_id)) AS src_map FROM gb_scale.tenant_shard_map m \gset
\c :local_db
SELECT gb_shard_for_tenant(1500) AS before_sync;
BEGIN;
SELECT gb_shard_sync(:'src');
SELECT gb_shard_for_tenant(1500) AS in_transaction;
ROLLBACK;
SELECT gb_shard_for_tenant(1500) AS after_rollback;
SELECT md5(string_agg(c::text, ';' ORDER BY shard_id)) = :'src_shards' AS shards_equal
  FROM gb_scale.shard_config c;
SELECT gb_shard_sync(:'src');
SELECT gb_shard_for_tenant(1500) AS after_sync;
SELECT md5(string_agg(m::text, ';' ORDER BY tenant_id)) = :'src_map' AS map_equal
  FROM gb_scale.tenant_shard_map m;

-- The range check is back to immediate after the call.
BEGIN;
SELECT gb_shard_sync(:'src');
UPDATE gb_scale.shard_config SET min_tenant_id = 0 WHERE shard_id = 1;
ROLLBACK;

------------------------------------------------------------------------------
-- Enums: the same label with different codes refuses the sync
------------------------------------------------------------------------------
-- Both shards create the enum, then add two labels in opposite orders.
SELECT gb_enum_create('public.sync_color', ARRAY['red', 'green']);
SELECT gb_enum_add('public.sync_color', 'blue');
SELECT gb_enum_add('public.sync_color', 'yellow');
-- Labels only one shard has are no conflict; neither is an enum only one has.
SELECT gb_enum_create('public.sync_size', ARRAY['s', 'm', 'l']);
SELECT gb_enum_add('public.sync_size', 'xl', 10::smallint);
SELECT gb_enum_create('public.sync_local_only', ARRAY['a']);

\c gb_sync_source
SELECT gb_enum_create('public.sync_color', ARRAY['red', 'green']);
SELECT gb_enum_add('public.sync_color', 'yellow');
SELECT gb_enum_add('public.sync_color', 'blue');
SELECT gb_enum_create('public.sync_size', ARRAY['s', 'm', 'l']);
SELECT gb_enum_add('public.sync_size', 'xxl', 11::smallint);
SELECT gb_enum_create('public.sync_source_only', ARRAY['b']);
-- A change that the refused sync must not bring.
UPDATE gb_scale.shard_config SET datacenter = 'virginia-2' WHERE shard_id = 2;

\c :local_db
SELECT string_agg(xmin::text, ',' ORDER BY shard_id) AS xmins_shards FROM gb_scale.shard_config \gset
SELECT gb_shard_sync(:'src');
SELECT string_agg(xmin::text, ',' ORDER BY shard_id) = :'xmins_shards' AS shards_untouched,
       bool_and(datacenter <> 'virginia-2') AS change_not_synced
  FROM gb_scale.shard_config;

-- The other direction names the source's codes as its own.
\c gb_sync_source
SELECT gb_shard_sync(:'here');

-- A code that means different labels is refused too.
\c :local_db
DROP DOMAIN public.sync_color;
SELECT gb_enum_add('public.sync_size', 'huge', 11::smallint);
SELECT gb_shard_sync(:'src');
-- With the conflicting enums gone from one side, the sync goes through.
DROP DOMAIN public.sync_size;
SELECT gb_shard_sync(:'src');
SELECT datacenter FROM gb_scale.shard_config WHERE shard_id = 2;

------------------------------------------------------------------------------
-- Sources that do not work
------------------------------------------------------------------------------
\set VERBOSITY terse
SELECT gb_shard_sync('host = = nowhere');
SELECT gb_shard_sync('nosuchoption=1');
SELECT gb_shard_sync(:'server' || ' port=1 dbname=gb_sync_source');
SELECT gb_shard_sync(:'server' || ' dbname=gb_sync_nowhere');
SELECT gb_shard_sync(:'plain');
SELECT gb_shard_sync(NULL) IS NULL AS strict;
\set VERBOSITY default

-- A source that does not answer: statement_timeout ends the wait.  The
-- renamed database keeps the source's new session waiting for its lock.
BEGIN;
ALTER DATABASE gb_sync_plain RENAME TO gb_sync_plain_renamed;
SET LOCAL statement_timeout = '1s';
SELECT gb_shard_sync(:'plain');
ROLLBACK;

-- Not in a read-only transaction (nor on a standby), before connecting.
BEGIN READ ONLY;
SELECT gb_shard_sync(:'src');
ROLLBACK;

------------------------------------------------------------------------------
-- Who may sync
------------------------------------------------------------------------------
CREATE ROLE regress_sync_admin IN ROLE gb_scale_admin;
CREATE ROLE regress_sync_nobody;
SET ROLE regress_sync_nobody;
SELECT gb_shard_sync(:'src');
RESET ROLE;

-- A non-superuser must give a password, and the source must use it: else
-- the connection would run on the server's own credentials (here: trust,
-- as the OS user postgres, a superuser).
SET ROLE regress_sync_admin;
SELECT gb_shard_sync(:'src');
SELECT gb_shard_sync(:'src' || ' password=secret');
RESET ROLE;

------------------------------------------------------------------------------
-- A hostile search_path, here and on the source, is not used
------------------------------------------------------------------------------
CREATE SCHEMA sync_hostile;
CREATE FUNCTION sync_hostile.hit(name pg_catalog.text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'hostile % ran', name;
    RETURN false;
END
$$;
CREATE FUNCTION sync_hostile.eq_int2(pg_catalog.int2, pg_catalog.int2) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= smallint') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.int2, RIGHTARG = pg_catalog.int2, FUNCTION = sync_hostile.eq_int2);
CREATE FUNCTION sync_hostile.eq_int8(pg_catalog.int8, pg_catalog.int8) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= bigint') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.int8, RIGHTARG = pg_catalog.int8, FUNCTION = sync_hostile.eq_int8);
CREATE FUNCTION sync_hostile.eq_text(pg_catalog.text, pg_catalog.text) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= text') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, FUNCTION = sync_hostile.eq_text);
CREATE FUNCTION sync_hostile.eq_bpchar(pg_catalog.bpchar, pg_catalog.bpchar) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= bpchar') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.bpchar, RIGHTARG = pg_catalog.bpchar, FUNCTION = sync_hostile.eq_bpchar);
CREATE FUNCTION sync_hostile.eq_bool(pg_catalog.bool, pg_catalog.bool) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= boolean') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.bool, RIGHTARG = pg_catalog.bool, FUNCTION = sync_hostile.eq_bool);
CREATE FUNCTION sync_hostile.eq_tstz(pg_catalog.timestamptz, pg_catalog.timestamptz) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= timestamptz') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.timestamptz, RIGHTARG = pg_catalog.timestamptz, FUNCTION = sync_hostile.eq_tstz);
CREATE FUNCTION sync_hostile.eq_oid(pg_catalog.oid, pg_catalog.oid) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= oid') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.oid, RIGHTARG = pg_catalog.oid, FUNCTION = sync_hostile.eq_oid);
CREATE FUNCTION sync_hostile.unnest(anyarray) RETURNS SETOF anyelement
LANGUAGE plpgsql AS $$ BEGIN PERFORM sync_hostile.hit('unnest'); END $$;
CREATE FUNCTION sync_hostile.set_config(pg_catalog.text, pg_catalog.text, boolean) RETURNS pg_catalog.text
LANGUAGE sql AS $$ SELECT sync_hostile.hit('set_config')::pg_catalog.text $$;
CREATE FUNCTION sync_hostile.quote_ident(pg_catalog.text) RETURNS pg_catalog.text
LANGUAGE sql AS $$ SELECT sync_hostile.hit('quote_ident')::pg_catalog.text $$;
GRANT USAGE ON SCHEMA sync_hostile TO PUBLIC;

-- The same trap in the source database, set for every session there.
\c gb_sync_source
CREATE SCHEMA sync_hostile;
CREATE FUNCTION sync_hostile.hit(name pg_catalog.text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'hostile % ran on the source', name;
    RETURN false;
END
$$;
CREATE FUNCTION sync_hostile.eq_int2(pg_catalog.int2, pg_catalog.int2) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= smallint') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.int2, RIGHTARG = pg_catalog.int2, FUNCTION = sync_hostile.eq_int2);
CREATE FUNCTION sync_hostile.eq_oid(pg_catalog.oid, pg_catalog.oid) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= oid') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.oid, RIGHTARG = pg_catalog.oid, FUNCTION = sync_hostile.eq_oid);
CREATE FUNCTION sync_hostile.eq_name(pg_catalog.name, pg_catalog.name) RETURNS boolean
LANGUAGE sql AS $$ SELECT sync_hostile.hit('= name') $$;
CREATE OPERATOR sync_hostile.= (LEFTARG = pg_catalog.name, RIGHTARG = pg_catalog.name, FUNCTION = sync_hostile.eq_name);
CREATE FUNCTION sync_hostile.set_config(pg_catalog.text, pg_catalog.text, boolean) RETURNS pg_catalog.text
LANGUAGE sql AS $$ SELECT sync_hostile.hit('set_config')::pg_catalog.text $$;
CREATE FUNCTION sync_hostile.count() RETURNS bigint
LANGUAGE sql AS $$ SELECT 1 WHERE sync_hostile.hit('count') $$;
GRANT USAGE ON SCHEMA sync_hostile TO PUBLIC;
ALTER DATABASE gb_sync_source SET search_path = sync_hostile, pg_catalog, public;
UPDATE gb_scale.shard_config SET datacenter = 'virginia-3' WHERE shard_id = 2;
SELECT md5(string_agg(c::text, ';' ORDER BY shard_id)) AS src_shards FROM gb_scale.shard_config c \gset

\c :local_db
SET search_path = sync_hostile, pg_catalog, public;
SELECT gb_shard_sync(:'src');
RESET search_path;
SELECT md5(string_agg(c::text, ';' ORDER BY shard_id)) = :'src_shards' AS shards_equal
  FROM gb_scale.shard_config c;

------------------------------------------------------------------------------
-- Clean up
------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP SCHEMA sync_hostile CASCADE;
RESET client_min_messages;
DROP DOMAIN public.sync_local_only;
DELETE FROM gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;
DROP ROLE regress_sync_admin;
DROP ROLE regress_sync_nobody;
DROP DATABASE gb_sync_source;
DROP DATABASE gb_sync_plain WITH (FORCE);
