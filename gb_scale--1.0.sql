-- gb_scale 1.0 install script.
\echo Use "CREATE EXTENSION gb_scale" to load this file. \quit

-- The extension's own state lives in schema gb_scale; the user-facing
-- functions go in the schema the extension is created in (@extschema@).
-- C functions resolve no names through search_path; a SET clause on them
-- would only cost a GUC save and restore per call.
CREATE SCHEMA gb_scale;
COMMENT ON SCHEMA gb_scale IS 'gb_scale internal state';

------------------------------------------------------------------------------
-- Snowflake IDs
------------------------------------------------------------------------------

-- Durable reservation mark of the ID generator, in milliseconds since
-- 2024-01-01.  Written (and its WAL flushed) before any ID beyond it is
-- returned; read after every start and promotion.  Dumped with the database
-- so that a restored copy resumes past it.
CREATE SEQUENCE gb_scale.id_mark AS bigint MINVALUE 0 START WITH 0 NO CYCLE;
COMMENT ON SEQUENCE gb_scale.id_mark IS
  'gb_scale ID generator: durable reservation mark (ms since 2024-01-01); do not change';
REVOKE ALL ON SEQUENCE gb_scale.id_mark FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('gb_scale.id_mark', '');

-- After DROP EXTENSION, tables may still hold IDs issued ahead of the clock:
-- the new mark starts past every ID this instance issued for this database's
-- shards, as shared memory knows them.  Refuses to run outside CREATE
-- EXTENSION.
CREATE FUNCTION gb_scale.id_mark_init()
RETURNS void
AS 'MODULE_PATHNAME', 'gb_id_mark_init'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION gb_scale.id_mark_init() IS
  'gb_scale ID generator: starts a new durable mark past the IDs issued; run by CREATE EXTENSION only';
REVOKE ALL ON FUNCTION gb_scale.id_mark_init() FROM PUBLIC;
SELECT gb_scale.id_mark_init();

CREATE FUNCTION @extschema@.gb_next_id()
RETURNS bigint
AS 'MODULE_PATHNAME', 'gb_next_id'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_next_id() IS
  'next snowflake ID of this database''s shard: unique and increasing across backends, crashes and clock steps';

CREATE FUNCTION @extschema@.gb_next_ids(n integer)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'gb_next_ids'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE ROWS 1000;
COMMENT ON FUNCTION @extschema@.gb_next_ids(integer) IS
  'n consecutive snowflake IDs reserved in one step, for bulk loads';

CREATE FUNCTION @extschema@.gb_id_timestamp(id bigint)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'gb_id_timestamp'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_id_timestamp(bigint) IS
  'the millisecond a snowflake ID was made in';

CREATE FUNCTION @extschema@.gb_id_shard(id bigint)
RETURNS smallint
AS 'MODULE_PATHNAME', 'gb_id_shard'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_id_shard(bigint) IS
  'the shard id a snowflake ID carries';

CREATE FUNCTION @extschema@.gb_id_sequence(id bigint)
RETURNS integer
AS 'MODULE_PATHNAME', 'gb_id_sequence'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_id_sequence(bigint) IS
  'the per-millisecond sequence number of a snowflake ID';

CREATE FUNCTION @extschema@.gb_id_decode(id bigint,
    OUT created_at timestamptz, OUT shard_id smallint, OUT sequence integer)
RETURNS record
AS 'MODULE_PATHNAME', 'gb_id_decode'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_id_decode(bigint) IS
  'a snowflake ID split into its time, shard id and sequence';

CREATE FUNCTION @extschema@.gb_id_from_time(ts timestamptz, shard_id smallint DEFAULT 0)
RETURNS bigint
AS 'MODULE_PATHNAME', 'gb_id_from_time'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_id_from_time(timestamptz, smallint) IS
  'the smallest ID of that millisecond and shard, for range scans on ID keys';

CREATE FUNCTION @extschema@.gb_id_generator_status(
    OUT shard_id smallint, OUT database text, OUT last_id bigint,
    OUT last_id_time timestamptz, OUT lead_ms bigint, OUT durable_mark timestamptz,
    OUT ids_issued bigint, OUT clock_regressions bigint, OUT waits bigint,
    OUT mark_flushes bigint, OUT clock_floor_active boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'gb_id_generator_status'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE ROWS 4;
COMMENT ON FUNCTION @extschema@.gb_id_generator_status() IS
  'one row per shard id generating on this instance since it started';

------------------------------------------------------------------------------
-- SMALLINT enum domains
------------------------------------------------------------------------------
------------------------------------------------------------------------------

-- Labels of every enum domain, read and written by the extension's C code
-- like a catalog (see src/enums.h): anyone may read them, only the functions
-- below change them.  Codes are never changed, reused or removed; a row goes
-- only when its domain is dropped.  Rows of user enums are dumped with the
-- database, except rows whose domain is gone, which could not be restored.
CREATE TABLE gb_scale.enum_label (
    enum_type regtype  NOT NULL,
    code      smallint NOT NULL CONSTRAINT enum_label_code_check CHECK (code >= 0),
    label     text     NOT NULL CONSTRAINT enum_label_label_check
                           CHECK (label <> '' AND octet_length(label) < 64),
    builtin   boolean  NOT NULL DEFAULT false,
    PRIMARY KEY (enum_type, code),
    UNIQUE (enum_type, label)
);
COMMENT ON TABLE gb_scale.enum_label IS 'gb_scale enum domains: code and label of each value';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.enum_label',
    'WHERE NOT builtin AND EXISTS (SELECT FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) enum_type::pg_catalog.oid)');

GRANT USAGE ON SCHEMA gb_scale TO PUBLIC;
REVOKE ALL ON gb_scale.enum_label FROM PUBLIC;
GRANT SELECT ON gb_scale.enum_label TO PUBLIC;

CREATE VIEW gb_scale.enum_labels AS
    SELECT enum_type, code, label FROM gb_scale.enum_label;
COMMENT ON VIEW gb_scale.enum_labels IS 'every code and label of every gb_scale enum domain';
REVOKE ALL ON gb_scale.enum_labels FROM PUBLIC;
GRANT SELECT ON gb_scale.enum_labels TO PUBLIC;

-- The CHECK constraint of every enum domain.  Everyone who stores a value of
-- an enum domain executes it (PostgreSQL checks EXECUTE on the functions of a
-- domain constraint), so it keeps PUBLIC's EXECUTE; it only validates.
CREATE FUNCTION gb_scale.enum_check(code smallint, enum_type regtype, codes smallint[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'gb_enum_check'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.enum_check(smallint, regtype, smallint[]) IS
  'CHECK constraint of gb_scale enum domains: raises 23514 naming the domain and its codes';

-- Direct writes to the label table (by its owner or a superuser) are
-- guarded, and reach every backend's cache.
CREATE FUNCTION gb_scale.enum_label_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'gb_enum_label_guard'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.enum_label_guard() FROM PUBLIC;
CREATE TRIGGER enum_label_guard
    BEFORE INSERT OR UPDATE OR DELETE ON gb_scale.enum_label
    FOR EACH ROW EXECUTE FUNCTION gb_scale.enum_label_guard();
CREATE TRIGGER enum_label_no_truncate
    BEFORE TRUNCATE ON gb_scale.enum_label
    FOR EACH STATEMENT EXECUTE FUNCTION gb_scale.enum_label_guard();

CREATE FUNCTION gb_scale.enum_label_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'gb_enum_label_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.enum_label_changed() FROM PUBLIC;
CREATE TRIGGER enum_label_changed
    AFTER INSERT OR UPDATE OR DELETE ON gb_scale.enum_label
    FOR EACH ROW EXECUTE FUNCTION gb_scale.enum_label_changed();

-- Labels of a dropped domain go with it, whatever dropped it.
CREATE FUNCTION gb_scale.enum_on_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'gb_enum_on_drop'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.enum_on_drop() FROM PUBLIC;
CREATE EVENT TRIGGER gb_scale_enum_drop ON sql_drop
    EXECUTE FUNCTION gb_scale.enum_on_drop();

-- Used by this script (and later upgrade scripts) only; refuses otherwise.
CREATE FUNCTION gb_scale.enum_create_builtin(name text, labels text[], codes smallint[])
RETURNS regtype
AS 'MODULE_PATHNAME', 'gb_enum_create_builtin'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION gb_scale.enum_create_builtin(text, text[], smallint[]) FROM PUBLIC;

CREATE FUNCTION @extschema@.gb_enum_create(name text, labels text[], codes smallint[] DEFAULT NULL)
RETURNS regtype
AS 'MODULE_PATHNAME', 'gb_enum_create'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_enum_create(text, text[], smallint[]) IS
  'creates a SMALLINT enum domain; codes default to 0..n-1';

CREATE FUNCTION @extschema@.gb_enum_add(enum_type regtype, label text, code smallint DEFAULT NULL)
RETURNS smallint
AS 'MODULE_PATHNAME', 'gb_enum_add'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_enum_add(regtype, text, smallint) IS
  'adds a label to an enum domain (next free code by default) without rewriting or scanning tables';

CREATE FUNCTION @extschema@.gb_enum_rename(enum_type regtype, old_label text, new_label text)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_enum_rename'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_enum_rename(regtype, text, text) IS
  'renames a label of an enum domain; its code stays';

CREATE FUNCTION @extschema@.gb_enum_label(enum_type regtype, code smallint)
RETURNS text
AS 'MODULE_PATHNAME', 'gb_enum_label'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_enum_label(regtype, smallint) IS 'the label of a code';

CREATE FUNCTION gb_scale.enum_code_support(internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'gb_enum_code_support'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION gb_scale.enum_code_support(internal) FROM PUBLIC;

CREATE FUNCTION @extschema@.gb_enum_code(enum_type regtype, label text)
RETURNS smallint
AS 'MODULE_PATHNAME', 'gb_enum_code'
LANGUAGE C STABLE STRICT PARALLEL SAFE
SUPPORT gb_scale.enum_code_support;
COMMENT ON FUNCTION @extschema@.gb_enum_code(regtype, text) IS
  'the code of a label; folded to a constant at plan time';

CREATE FUNCTION @extschema@.gb_label(value "any")
RETURNS text
AS 'MODULE_PATHNAME', 'gb_label'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_label("any") IS 'the label of a value of any gb_scale enum domain';

CREATE FUNCTION @extschema@.gb_enum_labels(enum_type regtype)
RETURNS TABLE (code smallint, label text)
AS 'MODULE_PATHNAME', 'gb_enum_labels'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.gb_enum_labels(regtype) IS 'every code and label of an enum domain';

-- General Bots' enums, with the codes its Rust enums use.  @extschema@ is
-- already a quoted identifier here.
SELECT gb_scale.enum_create_builtin('@extschema@.' || e.name, e.labels, e.codes)
  FROM (VALUES
    ('gb_channel_type', '{web,whatsapp,telegram,msteams,slack,email,sms,voice,instagram,api}'::text[], NULL::smallint[]),
    ('gb_message_role', '{user,assistant,system,tool,episodic,compact}', '{1,2,3,4,9,10}'),
    ('gb_message_type', '{text,image,audio,video,document,location,contact,sticker,reaction}', NULL),
    ('gb_llm_provider', '{openai,anthropic,azure_openai,azure_claude,google,local,ollama,groq,mistral,cohere}', NULL),
    ('gb_context_provider', '{none,qdrant,pinecone,weaviate,milvus,pgvector,elasticsearch}', NULL),
    ('gb_task_status', '{pending,ready,running,paused,waiting_approval,completed,failed,cancelled}', NULL),
    ('gb_task_priority', '{low,normal,high,urgent,critical}', NULL),
    ('gb_execution_mode', '{manual,supervised,autonomous}', NULL),
    ('gb_risk_level', '{none,low,medium,high,critical}', NULL),
    ('gb_approval_status', '{pending,approved,rejected,expired,skipped}', NULL),
    ('gb_approval_decision', '{approve,reject,skip}', NULL),
    ('gb_intent_type', '{unknown,app_create,todo,monitor,action,schedule,goal,tool,query}', NULL),
    ('gb_memory_type', '{short,long,episodic,semantic,procedural}', NULL),
    ('gb_sync_status', '{synced,pending,conflict,error,deleted}', NULL),
    ('gb_booking_status', '{pending,confirmed,cancelled,completed,no_show}', NULL),
    ('gb_resource_type', '{room,equipment,vehicle,person,virtual,other}', NULL),
    ('gb_permission_level', '{none,read,write,admin,owner}', NULL),
    ('gb_safety_outcome', '{allowed,blocked,warning,error}', NULL),
    ('gb_designer_change_type', '{style,html,database,tool,scheduler,config,multiple,unknown}', NULL),
    ('gb_plan_tier', '{free,starter,pro,enterprise}', NULL)
  ) AS e(name, labels, codes);

------------------------------------------------------------------------------
-- Automatic time and tenant partitions (src/partition*.c)
------------------------------------------------------------------------------

-- One row per registered table.  Read by the C code like a catalog, written
-- only by the functions below; dumped with the database so that a restore
-- brings the registrations back (parent is a regclass: it follows renames,
-- and the sql_drop event trigger removes the row of a dropped table).
CREATE TABLE gb_scale.partition_config (
    parent            regclass    PRIMARY KEY,
    layout            text        NOT NULL CHECK (layout IN ('range', 'list')),
    granularity       interval    NOT NULL,
    premake           interval    NOT NULL,
    retention         interval,
    retention_mode    text        NOT NULL DEFAULT 'drop'
                                  CHECK (retention_mode IN ('drop', 'detach', 'archive')),
    archive_schema    name,
    tenant_buckets    integer     CHECK (tenant_buckets BETWEEN 2 AND 1024),
    tenant_column     name,
    default_partition boolean     NOT NULL DEFAULT false,
    time_zone         text        NOT NULL DEFAULT 'UTC',
    profile           text,
    last_run          timestamptz,
    last_success      timestamptz,
    last_error        text
);
COMMENT ON TABLE gb_scale.partition_config IS 'gb_scale partitions: the registered tables';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.partition_config', '');

-- Tenants with a retention of their own, or partitions of their own.
CREATE TABLE gb_scale.partition_tenant (
    parent        regclass    NOT NULL REFERENCES gb_scale.partition_config ON DELETE CASCADE,
    tenant_id     bigint      NOT NULL,
    retention     interval,
    subtree       regclass,
    purged_before timestamptz,
    PRIMARY KEY (parent, tenant_id)
);
-- The sql_drop trigger finds a dropped subtree's row by it.
CREATE INDEX partition_tenant_subtree ON gb_scale.partition_tenant (subtree);
COMMENT ON TABLE gb_scale.partition_tenant IS 'gb_scale partitions: per-tenant retention and dedicated subtrees';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.partition_tenant', '');

-- Partitions the worker detached concurrently and has yet to drop, leave or
-- archive (the detach commits before that step): each pass retries them.
CREATE TABLE gb_scale.partition_retiring (
    parent    regclass NOT NULL REFERENCES gb_scale.partition_config ON DELETE CASCADE,
    partition regclass PRIMARY KEY
);
COMMENT ON TABLE gb_scale.partition_retiring IS 'gb_scale partitions: detached partitions still to retire';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.partition_retiring', '');

-- Until when a time tree has nothing to do, as a pass that looked at it in
-- full found (src/partition_horizon.c): a later pass trusts it while the
-- tree's members and rules are the same.  Not dumped: a restored tree is
-- looked at in full.
CREATE TABLE gb_scale.partition_horizon (
    parent     regclass    NOT NULL REFERENCES gb_scale.partition_config ON DELETE CASCADE,
    tree       oid         NOT NULL,
    rules      bigint      NOT NULL,
    members    bigint      NOT NULL,
    idle_from  timestamptz NOT NULL,
    idle_until timestamptz NOT NULL,
    PRIMARY KEY (parent, tree)
);
COMMENT ON TABLE gb_scale.partition_horizon IS 'gb_scale partitions: until when each time tree has nothing to do';

REVOKE ALL ON gb_scale.partition_config, gb_scale.partition_tenant, gb_scale.partition_retiring,
    gb_scale.partition_horizon FROM PUBLIC;
GRANT SELECT ON gb_scale.partition_config, gb_scale.partition_tenant, gb_scale.partition_retiring,
    gb_scale.partition_horizon TO PUBLIC;

CREATE FUNCTION @extschema@.gb_partition_create(
    parent regclass, control name, granularity interval,
    premake interval DEFAULT NULL, retention interval DEFAULT NULL,
    tenant_column name DEFAULT NULL, tenant_buckets integer DEFAULT NULL,
    default_partition boolean DEFAULT false, time_zone text DEFAULT 'UTC',
    profile text DEFAULT NULL, start_at timestamptz DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'gb_partition_create'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_partition_create(regclass, name, interval, interval, interval, name, integer, boolean, text, text, timestamptz) IS
  'register a partitioned table and create its partitions through the premake horizon; returns the tables created';

CREATE FUNCTION @extschema@.gb_partition_retention(
    parent regclass, retention interval, mode text DEFAULT 'drop', archive_schema name DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_partition_retention'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_partition_retention(regclass, interval, text, name) IS
  'set how long partitions are kept and what happens to them then: drop, detach or archive';

CREATE FUNCTION @extschema@.gb_partition_forget(parent regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_partition_forget'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_partition_forget(regclass) IS
  'stop managing a table; its partitions stay';

CREATE FUNCTION @extschema@.gb_partition_ensure(parent regclass, from_time timestamptz, to_time timestamptz)
RETURNS integer
AS 'MODULE_PATHNAME', 'gb_partition_ensure'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_partition_ensure(regclass, timestamptz, timestamptz) IS
  'create the partitions that [from_time, to_time) needs, for a backfill; returns the tables created';

CREATE FUNCTION @extschema@.gb_tenant_dedicate(parent regclass, tenant_id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'gb_tenant_dedicate'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_dedicate(regclass, bigint) IS
  'give one tenant of a LIST-partitioned table its own time partitions, moving its rows; returns the rows moved';

CREATE FUNCTION @extschema@.gb_tenant_retention(parent regclass, tenant_id bigint, retention interval)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_retention'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_retention(regclass, bigint, interval) IS
  'give one tenant a retention of its own (NULL removes it)';

CREATE PROCEDURE @extschema@.gb_run_maintenance(parent regclass DEFAULT NULL)
AS 'MODULE_PATHNAME', 'gb_run_maintenance'
LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.gb_run_maintenance(regclass) IS
  'premake, retention and default-partition moves for every registered table (or one), one short transaction each';

CREATE FUNCTION @extschema@.gb_partition_list(parent regclass)
RETURNS TABLE (partition regclass, tenant_id bigint, bucket integer, is_default boolean,
               from_time timestamptz, to_time timestamptz, bounds text, "rows" bigint, bytes bigint)
AS 'MODULE_PATHNAME', 'gb_partition_list'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_partition_list(regclass) IS
  'every leaf partition of a registered table with its bounds, tenant or bucket, estimated rows and bytes';

CREATE FUNCTION gb_scale.partition_stats(parent regclass,
    OUT control name, OUT control_type regtype, OUT partitions integer,
    OUT oldest_bound timestamptz, OUT newest_bound timestamptz, OUT ahead interval,
    OUT default_rows bigint, OUT dedicated_tenants integer, OUT at_risk boolean)
AS 'MODULE_PATHNAME', 'gb_partition_stats'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION gb_scale.partition_stats(regclass) IS
  'what gb_scale.partition_status shows of one registered table''s partitions';

CREATE VIEW gb_scale.partition_status AS
SELECT c.parent, c.layout, s.control, s.control_type, c.granularity, c.time_zone,
       s.partitions, s.oldest_bound, s.newest_bound, s.ahead, s.at_risk, s.default_rows,
       c.retention, c.retention_mode, c.tenant_buckets, s.dedicated_tenants,
       c.last_run, c.last_success, c.last_error
  FROM gb_scale.partition_config c
  CROSS JOIN LATERAL gb_scale.partition_stats(c.parent) s;
COMMENT ON VIEW gb_scale.partition_status IS 'gb_scale partitions: one row per registered table';
REVOKE ALL ON gb_scale.partition_status FROM PUBLIC;
GRANT SELECT ON gb_scale.partition_status TO PUBLIC;

CREATE FUNCTION gb_scale.partition_on_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'gb_partition_on_drop'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.partition_on_drop() FROM PUBLIC;
CREATE EVENT TRIGGER gb_scale_partition_drop ON sql_drop
  EXECUTE FUNCTION gb_scale.partition_on_drop();

-- A renamed tenant column keeps its registrations: they follow the column
-- (by its number) to its new name.  ALWAYS, as renames replicate too.
CREATE FUNCTION gb_scale.partition_on_rename()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'gb_partition_on_rename'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.partition_on_rename() FROM PUBLIC;
CREATE EVENT TRIGGER gb_scale_partition_rename ON ddl_command_end
  WHEN TAG IN ('ALTER TABLE')
  EXECUTE FUNCTION gb_scale.partition_on_rename();
ALTER EVENT TRIGGER gb_scale_partition_rename ENABLE ALWAYS;

------------------------------------------------------------------------------
-- Shard routing (src/routing.c)
------------------------------------------------------------------------------

-- Administrators of the shard directory and of tenants' data.  Roles are
-- shared by the databases of an instance, so another shard database may have
-- made it already.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
                    WHERE rolname OPERATOR(pg_catalog.=) 'gb_scale_admin') THEN
        CREATE ROLE gb_scale_admin NOLOGIN;
        COMMENT ON ROLE gb_scale_admin IS
          'gb_scale: edits the shard directory, exports and purges tenants of tables it does not own';
    END IF;
END
$$;

-- The shard directory, General Bots' documented columns.  Every shard holds
-- the same rows (gb_shard_sync copies them).
CREATE TABLE gb_scale.shard_config (
    shard_id          smallint    PRIMARY KEY
                      CONSTRAINT shard_config_shard_id_range CHECK (shard_id BETWEEN 0 AND 1023),
    region_code       char(3)     NOT NULL
                      CONSTRAINT shard_config_region_code_format
                      CHECK (region_code::text OPERATOR(pg_catalog.~) '^[A-Z]{3}$'),
    datacenter        varchar(32) NOT NULL,
    connection_string text        NOT NULL,
    is_primary        boolean     DEFAULT false,
    is_active         boolean     DEFAULT true,
    min_tenant_id     bigint      NOT NULL,
    max_tenant_id     bigint      NOT NULL,
    created_at        timestamptz DEFAULT now(),
    CONSTRAINT shard_config_tenant_range_order CHECK (min_tenant_id <= max_tenant_id),
    -- Each tenant has at most one active shard by range.  Deferrable, so that
    -- one transaction may swap ranges between shards.  numrange, not
    -- int8range: an inclusive int8range ending at the largest bigint
    -- overflows when it is made canonical.
    CONSTRAINT shard_config_active_ranges_disjoint
        EXCLUDE USING gist (pg_catalog.numrange(min_tenant_id::pg_catalog.numeric, max_tenant_id::pg_catalog.numeric, '[]')
                            WITH OPERATOR(pg_catalog.&&))
        WHERE (is_active) DEFERRABLE INITIALLY IMMEDIATE,
    -- The target of tenant_shard_map's region check.
    CONSTRAINT shard_config_shard_region UNIQUE (shard_id, region_code)
);
COMMENT ON TABLE gb_scale.shard_config IS
  'gb_scale routing: every shard, its region, connection string and inclusive tenant range';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.shard_config', '');

-- Explicit placements; they override the range rule.
CREATE TABLE gb_scale.tenant_shard_map (
    tenant_id   bigint      PRIMARY KEY,
    shard_id    smallint    NOT NULL REFERENCES gb_scale.shard_config,
    region_code char(3)     NOT NULL,
    created_at  timestamptz DEFAULT now(),
    CONSTRAINT tenant_shard_map_region_matches_shard FOREIGN KEY (shard_id, region_code)
        REFERENCES gb_scale.shard_config (shard_id, region_code) ON UPDATE CASCADE
);
COMMENT ON TABLE gb_scale.tenant_shard_map IS
  'gb_scale routing: tenants placed on a shard explicitly, overriding the shards'' tenant ranges';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.tenant_shard_map', '');

REVOKE ALL ON gb_scale.shard_config, gb_scale.tenant_shard_map FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON gb_scale.shard_config, gb_scale.tenant_shard_map TO gb_scale_admin;

-- Any change to the directory reaches every backend's routing by its next
-- statement (and is forgotten again on rollback).  Row triggers, enabled
-- ALWAYS, so that a directory kept in step by logical replication is seen
-- too: the apply fires ALWAYS row and TRUNCATE triggers, never ordinary or
-- statement ones.
CREATE FUNCTION gb_scale.shard_directory_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'gb_shard_directory_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.shard_directory_changed() FROM PUBLIC;
CREATE TRIGGER shard_config_changed
    AFTER INSERT OR UPDATE OR DELETE ON gb_scale.shard_config
    FOR EACH ROW EXECUTE FUNCTION gb_scale.shard_directory_changed();
CREATE TRIGGER shard_config_truncated
    AFTER TRUNCATE ON gb_scale.shard_config
    FOR EACH STATEMENT EXECUTE FUNCTION gb_scale.shard_directory_changed();
-- The map's triggers record the tenants changed; their commit writes them
-- into the shared-memory map (src/routing.c).
CREATE FUNCTION gb_scale.tenant_map_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'gb_tenant_map_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.tenant_map_changed() FROM PUBLIC;
CREATE TRIGGER tenant_shard_map_changed
    BEFORE INSERT OR UPDATE OR DELETE ON gb_scale.tenant_shard_map
    FOR EACH ROW EXECUTE FUNCTION gb_scale.tenant_map_changed();
CREATE TRIGGER tenant_shard_map_truncated
    BEFORE TRUNCATE ON gb_scale.tenant_shard_map
    FOR EACH STATEMENT EXECUTE FUNCTION gb_scale.tenant_map_changed();
ALTER TABLE gb_scale.shard_config
    ENABLE ALWAYS TRIGGER shard_config_changed,
    ENABLE ALWAYS TRIGGER shard_config_truncated;
ALTER TABLE gb_scale.tenant_shard_map
    ENABLE ALWAYS TRIGGER tenant_shard_map_changed,
    ENABLE ALWAYS TRIGGER tenant_shard_map_truncated;

-- The shared-memory routing map of every database of the server.
CREATE FUNCTION gb_scale.routing_status(
    OUT database name, OUT state text, OUT entries bigint, OUT capacity bigint, OUT bytes bigint,
    OUT loads bigint, OUT updates bigint, OUT reload_requests bigint, OUT committing integer,
    OUT last_load_ms double precision, OUT last_load_at timestamptz, OUT overflow_limit bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'gb_routing_status'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.routing_status() IS
  'gb_scale routing: the shared-memory map of each database (what gb_scale.routing_status shows)';
REVOKE ALL ON FUNCTION gb_scale.routing_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.routing_status() TO pg_monitor, gb_scale_admin;
CREATE VIEW gb_scale.routing_status AS
SELECT s.database, s.state, s.entries, s.capacity, s.bytes,
       CASE WHEN s.entries OPERATOR(pg_catalog.>) 0
            THEN pg_catalog.round(s.bytes::pg_catalog.numeric OPERATOR(pg_catalog./) s.entries, 1) END AS bytes_per_entry,
       s.loads, s.updates, s.reload_requests, s.committing, s.last_load_ms, s.last_load_at, s.overflow_limit
  FROM gb_scale.routing_status() s;
COMMENT ON VIEW gb_scale.routing_status IS
  'gb_scale routing: one row per database whose tenant_shard_map is held in shared memory';
REVOKE ALL ON gb_scale.routing_status FROM PUBLIC;
GRANT SELECT ON gb_scale.routing_status TO pg_monitor, gb_scale_admin;

CREATE FUNCTION @extschema@.gb_shard_for_tenant(tenant_id bigint)
RETURNS smallint
AS 'MODULE_PATHNAME', 'gb_shard_for_tenant'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_shard_for_tenant(bigint) IS
  'the shard of a tenant: its tenant_shard_map entry, else the active shard whose range holds it';

CREATE FUNCTION @extschema@.gb_shard_connection(tenant_id bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'gb_shard_connection'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_shard_connection(bigint) IS
  'the connection string of a tenant''s shard';
REVOKE ALL ON FUNCTION @extschema@.gb_shard_connection(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_shard_connection(bigint) TO gb_scale_admin;

CREATE FUNCTION @extschema@.gb_current_shard()
RETURNS smallint
AS 'MODULE_PATHNAME', 'gb_current_shard'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_current_shard() IS
  'this database''s shard id (gb_scale.shard_id), for shard_id columns';

CREATE FUNCTION @extschema@.gb_shard_for_id(id bigint)
RETURNS smallint
AS 'MODULE_PATHNAME', 'gb_id_shard'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_shard_for_id(bigint) IS
  'the shard that made a gb_scale ID';

CREATE FUNCTION @extschema@.gb_tenant_assign(tenant_id bigint, shard_id smallint)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_assign'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_assign(bigint, smallint) IS
  'place a tenant on a shard (or move its entry), taking the shard''s region';
REVOKE ALL ON FUNCTION @extschema@.gb_tenant_assign(bigint, smallint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_tenant_assign(bigint, smallint) TO gb_scale_admin;

-- Every routable tenant as ordered, disjoint ranges, for load balancers
-- (src/routing_routes.c).  Shows shards' hosts, never a password: the
-- directory's administrators and monitoring roles may call it.
CREATE FUNCTION @extschema@.gb_shard_routes()
RETURNS TABLE (min_tenant_id bigint, max_tenant_id bigint, shard_id smallint, explicit boolean,
               region_code character(3), datacenter character varying(32),
               host text, port text, dbname text)
AS 'MODULE_PATHNAME', 'gb_shard_routes'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_shard_routes() IS
  'the shard of every routable tenant as ordered tenant ranges (map entries as single tenants), with the shard''s region, datacenter, host, port and dbname';
REVOKE ALL ON FUNCTION @extschema@.gb_shard_routes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_shard_routes() TO gb_scale_admin, pg_monitor;

------------------------------------------------------------------------------
-- Shard directory sync (src/shard_sync.c)
------------------------------------------------------------------------------

-- Copies another shard's shard_config and tenant_shard_map rows (source is a
-- libpq connection string) into this shard's, in the caller's transaction
-- and with the caller's privileges; refuses when a user enum has different
-- codes on the two shards.  Non-superusers must connect with a password.
CREATE FUNCTION @extschema@.gb_shard_sync(source text)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_shard_sync'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_shard_sync(text) IS
  'makes this shard''s shard directory equal to the one of the shard at the connection string';
REVOKE ALL ON FUNCTION @extschema@.gb_shard_sync(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_shard_sync(text) TO gb_scale_admin;

------------------------------------------------------------------------------
-- Tenant isolation, export and purge (src/tenant.c)
------------------------------------------------------------------------------


-- Tables isolated by tenant, with their tenant column.  Dumped with the
-- database; a dropped table's row goes with it (gb_scale_partition_drop).
CREATE TABLE gb_scale.tenant_isolation (
    tbl           regclass PRIMARY KEY,
    tenant_column name     NOT NULL
);
COMMENT ON TABLE gb_scale.tenant_isolation IS 'gb_scale tenant isolation: tables whose rows are isolated by tenant';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.tenant_isolation', '');
REVOKE ALL ON gb_scale.tenant_isolation FROM PUBLIC;
GRANT SELECT ON gb_scale.tenant_isolation TO PUBLIC;

-- The transaction's tenant is set by gb_set_tenant() only (see src/tenant.c).
CREATE FUNCTION @extschema@.gb_set_tenant(tenant_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_set_tenant'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_set_tenant(bigint) IS
  'the tenant whose rows isolated tables show, until the end of the transaction (NULL: none)';
REVOKE ALL ON FUNCTION @extschema@.gb_set_tenant(bigint) FROM PUBLIC;

-- Called by the policies, so by every role that reads or writes an isolated
-- table: PUBLIC keeps EXECUTE.
CREATE FUNCTION gb_scale.current_tenant()
RETURNS bigint
AS 'MODULE_PATHNAME', 'gb_current_tenant'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.current_tenant() IS
  'the transaction''s tenant (gb_set_tenant), or NULL';

-- The table's name as text: the same policy expression on every Citus node.
CREATE FUNCTION gb_scale.tenant_for_write(isolated text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'gb_tenant_for_write'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.tenant_for_write(text) IS
  'the transaction''s tenant; an error naming the table when none is set';

-- Citus: the tenant of a distributed query's transaction, sent by the node
-- that runs it on its connections as the query's role; checks that role
-- itself (src/tenant.c), so PUBLIC keeps EXECUTE.
CREATE FUNCTION gb_scale.forwarded_tenant(tenant_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_forwarded_tenant'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION gb_scale.forwarded_tenant(bigint) IS
  'Citus only: the tenant forwarded by the node running a distributed query';

CREATE FUNCTION @extschema@.gb_tenant_isolation_enable(tbl regclass, tenant_column name DEFAULT 'tenant_id')
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_isolation_enable'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_isolation_enable(regclass, name) IS
  'row level security (forced for the owner too) showing only the rows of the transaction''s tenant';

CREATE FUNCTION @extschema@.gb_tenant_isolation_disable(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_isolation_disable'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_isolation_disable(regclass) IS
  'remove a table''s tenant isolation: its policies, row level security and registration';

-- Every table that joins the tree of an isolated table, by any route, gets
-- its policies in the same command (src/tenant_guard.c).  ALWAYS: it fires
-- whatever session_replication_role says.
CREATE FUNCTION gb_scale.isolation_on_ddl()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'gb_isolation_on_ddl'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.isolation_on_ddl() FROM PUBLIC;
CREATE EVENT TRIGGER gb_scale_isolation_ddl ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER TABLE', 'ALTER FOREIGN TABLE', 'CREATE SCHEMA')
  EXECUTE FUNCTION gb_scale.isolation_on_ddl();
ALTER EVENT TRIGGER gb_scale_isolation_ddl ENABLE ALWAYS;

CREATE FUNCTION @extschema@.gb_tenant_export(tenant_id bigint)
RETURNS TABLE (table_name regclass, row_data jsonb)
AS 'MODULE_PATHNAME', 'gb_tenant_export'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_export(bigint) IS
  'every row of a tenant in the isolated and tenant-partitioned tables (owner or gb_scale_admin)';

CREATE FUNCTION @extschema@.gb_tenant_purge(tenant_id bigint)
RETURNS TABLE (table_name regclass, rows_removed bigint)
AS 'MODULE_PATHNAME', 'gb_tenant_purge'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_purge(bigint) IS
  'delete every row of a tenant (dedicated partitions by DROP), in one transaction (owner or gb_scale_admin)';

------------------------------------------------------------------------------
-- Moving a tenant to another shard online (src/tenant_move.c)
------------------------------------------------------------------------------

-- One row per move, on its source shard.  publication, subscription and
-- slot_name are recorded before they exist, so an abort knows what to drop;
-- rows_copied maps each table to the tenant's rows on the target when the
-- initial copy finished.  Superusers run moves (CREATE SUBSCRIPTION needs
-- one in PostgreSQL 15); gb_scale_admin may read them.
CREATE TABLE gb_scale.tenant_move (
    move_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint      NOT NULL,
    source_shard smallint    NOT NULL,
    target_shard smallint    NOT NULL,
    state        text        NOT NULL CONSTRAINT tenant_move_state CHECK (state IN
                   ('preparing', 'copying', 'catching up', 'paused', 'switched', 'cleaning', 'done', 'failed', 'aborted')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    rows_copied  jsonb,
    lag_bytes    bigint,
    pause        interval,
    error        text,
    publication  name,
    subscription name,
    slot_name    name,
    target_subid oid,
    keep_source_until timestamptz
);
COMMENT ON TABLE gb_scale.tenant_move IS 'gb_scale moves: each tenant move started on this shard and its state';
-- One move of a tenant at a time, until it is done or aborted.
CREATE UNIQUE INDEX tenant_move_active ON gb_scale.tenant_move (tenant_id)
  WHERE state NOT IN ('done', 'aborted');
REVOKE ALL ON gb_scale.tenant_move FROM PUBLIC;
GRANT SELECT ON gb_scale.tenant_move TO gb_scale_admin;

-- lag_bytes: live from the move's slot while it exists, else the last figure.
CREATE VIEW gb_scale.tenant_moves AS
SELECT m.tenant_id, m.source_shard, m.target_shard, m.state, m.started_at, m.finished_at,
       m.rows_copied,
       COALESCE(CASE WHEN s.confirmed_flush_lsn IS NOT NULL
                     THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::pg_catalog.int8
                END, m.lag_bytes) AS lag_bytes,
       m.pause, m.error, m.keep_source_until
  FROM gb_scale.tenant_move m
  LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name OPERATOR(pg_catalog.=) m.slot_name;
REVOKE ALL ON gb_scale.tenant_moves FROM PUBLIC;
GRANT SELECT ON gb_scale.tenant_moves TO gb_scale_admin;

CREATE PROCEDURE @extschema@.gb_tenant_move(tenant_id bigint, target_shard smallint,
                                            keep_source interval DEFAULT NULL)
AS 'MODULE_PATHNAME', 'gb_tenant_move'
LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.gb_tenant_move(bigint, smallint, interval) IS
  'move a tenant from this shard to another while it writes: copy, catch-up, a short pause, the switch, the cleanup (superuser)';
REVOKE ALL ON PROCEDURE @extschema@.gb_tenant_move(bigint, smallint, interval) FROM PUBLIC;

CREATE FUNCTION @extschema@.gb_tenant_move_finish(tenant_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_move_finish'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_move_finish(bigint) IS
  'after a move''s keep_source window: purge the tenant''s rows on the source, the move is done (superuser)';
REVOKE ALL ON FUNCTION @extschema@.gb_tenant_move_finish(bigint) FROM PUBLIC;

CREATE FUNCTION @extschema@.gb_tenant_move_abort(tenant_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_move_abort'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_move_abort(bigint) IS
  'undo a tenant''s move in progress: subscription, slots, publication and copied rows (superuser)';
REVOKE ALL ON FUNCTION @extschema@.gb_tenant_move_abort(bigint) FROM PUBLIC;

-- The target's side of a move, called over libpq by the source.
CREATE FUNCTION gb_scale.tenant_move_subscribe(subscription name, publication name, source_shard smallint)
RETURNS oid
AS 'MODULE_PATHNAME', 'gb_tenant_move_subscribe'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION gb_scale.tenant_move_subscribe(name, name, smallint) FROM PUBLIC;
CREATE FUNCTION gb_scale.tenant_move_unsubscribe(subscription name)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_move_unsubscribe'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION gb_scale.tenant_move_unsubscribe(name) FROM PUBLIC;
-- One step of the target's paced shard_id rewrite after a switch: start at
-- 0, 0, 0, pass on what each step returns, stop when table_no is NULL.
CREATE FUNCTION gb_scale.tenant_move_rewrite(tenant_id bigint, shard smallint,
    INOUT table_no integer, INOUT leaf oid, INOUT block bigint, OUT rewritten bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'gb_tenant_move_rewrite'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION gb_scale.tenant_move_rewrite(bigint, smallint, integer, oid, bigint) FROM PUBLIC;
-- The fence: a row trigger that moves install on every tenant table.
CREATE FUNCTION gb_scale.tenant_move_fence()
RETURNS trigger
AS 'MODULE_PATHNAME', 'gb_tenant_move_fence'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION gb_scale.tenant_move_fence() FROM PUBLIC;
-- The pace of a move's initial copy: a row trigger beside the fence,
-- enabled on replica only; it sleeps in the target's table syncs.
CREATE FUNCTION gb_scale.tenant_move_pace()
RETURNS trigger
AS 'MODULE_PATHNAME', 'gb_tenant_move_pace'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION gb_scale.tenant_move_pace() FROM PUBLIC;

------------------------------------------------------------------------------
-- Plan tiers, tenant settings and configuration (src/tenant_settings.c)
------------------------------------------------------------------------------

-- The plan tier of each tenant (gb_tenant_plan); a tenant without a row has
-- no tier.  Settings and configuration rows, per tenant and per tier, hold
-- either a PostgreSQL setting (kind 'setting': applied by gb_set_tenant() as
-- SET LOCAL) or an application's value (kind 'config': read with
-- gb_tenant_config()).  Written only by the functions below, which validate
-- them; readable by gb_scale_admin.
CREATE TABLE gb_scale.tenant_plan (
    tenant_id  bigint                   PRIMARY KEY,
    tier       @extschema@.gb_plan_tier NOT NULL,
    updated_at timestamptz              NOT NULL DEFAULT now()
);
COMMENT ON TABLE gb_scale.tenant_plan IS 'gb_scale plans: the plan tier of each tenant';
CREATE TABLE gb_scale.tenant_setting (
    tenant_id  bigint      NOT NULL,
    name       text        NOT NULL,
    kind       text        NOT NULL CONSTRAINT tenant_setting_kind CHECK (kind IN ('setting', 'config')),
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
COMMENT ON TABLE gb_scale.tenant_setting IS
  'gb_scale settings: a tenant''s PostgreSQL settings (applied by gb_set_tenant) and application configuration';
CREATE TABLE gb_scale.plan_setting (
    tier       @extschema@.gb_plan_tier NOT NULL,
    name       text                     NOT NULL,
    kind       text                     NOT NULL CONSTRAINT plan_setting_kind CHECK (kind IN ('setting', 'config')),
    value      text                     NOT NULL,
    updated_at timestamptz              NOT NULL DEFAULT now(),
    PRIMARY KEY (tier, name)
);
COMMENT ON TABLE gb_scale.plan_setting IS
  'gb_scale settings: the defaults of a plan tier, for its tenants without a value of their own';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.tenant_plan', '');
SELECT pg_catalog.pg_extension_config_dump('gb_scale.tenant_setting', '');
SELECT pg_catalog.pg_extension_config_dump('gb_scale.plan_setting', '');
REVOKE ALL ON gb_scale.tenant_plan, gb_scale.tenant_setting, gb_scale.plan_setting FROM PUBLIC;
GRANT SELECT ON gb_scale.tenant_plan, gb_scale.tenant_setting, gb_scale.plan_setting TO gb_scale_admin;

-- Every backend's settings cache forgets these tables at its next statement
-- (the changing transaction: at its next command; on rollback: at once).
-- Row and TRUNCATE triggers enabled ALWAYS, so that rows restored or
-- replicated are seen too.
CREATE FUNCTION gb_scale.tenant_settings_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'gb_tenant_settings_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION gb_scale.tenant_settings_changed() FROM PUBLIC;
-- Internal to this script, dropped at its end: the two triggers by which
-- every backend's caches of TBL forget it at their next statement, enabled
-- ALWAYS so that changes that logical replication applies count too.
CREATE FUNCTION gb_scale.create_cache_triggers(tbl text, prefix text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON gb_scale.%I '
                   'FOR EACH ROW EXECUTE FUNCTION gb_scale.tenant_settings_changed()',
                   prefix || '_changed', tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON gb_scale.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION gb_scale.tenant_settings_changed()',
                   prefix || '_truncated', tbl);
    EXECUTE format('ALTER TABLE gb_scale.%I ENABLE ALWAYS TRIGGER %I, ENABLE ALWAYS TRIGGER %I',
                   tbl, prefix || '_changed', prefix || '_truncated');
END
$$;
SELECT gb_scale.create_cache_triggers(t, t)
FROM (VALUES ('tenant_plan'), ('tenant_setting'), ('plan_setting')) AS v(t);

CREATE FUNCTION @extschema@.gb_tenant_plan(tenant_id bigint, tier integer)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_plan'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_plan(bigint, integer) IS
  'place a tenant on a plan tier (a gb_plan_tier code; NULL removes the placement)';
REVOKE ALL ON FUNCTION @extschema@.gb_tenant_plan(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_tenant_plan(bigint, integer) TO gb_scale_admin;

CREATE FUNCTION @extschema@.gb_tenant_tier(tenant_id bigint)
RETURNS @extschema@.gb_plan_tier
AS 'MODULE_PATHNAME', 'gb_tenant_tier'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_tier(bigint) IS
  'the plan tier of a tenant, or NULL when it has none';
REVOKE ALL ON FUNCTION @extschema@.gb_tenant_tier(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_tenant_tier(bigint) TO gb_scale_admin;

CREATE FUNCTION @extschema@.gb_tenant_setting(tenant_id bigint, name text, value text)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_setting'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_setting(bigint, text, text) IS
  'a tenant''s PostgreSQL setting (applied by gb_set_tenant) or application configuration value (NULL removes it)';
REVOKE ALL ON FUNCTION @extschema@.gb_tenant_setting(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_tenant_setting(bigint, text, text) TO gb_scale_admin;

CREATE FUNCTION @extschema@.gb_plan_setting(tier integer, name text, value text)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_plan_setting'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_plan_setting(integer, text, text) IS
  'a plan tier''s default of a setting or configuration value, for its tenants without one (NULL removes it)';
REVOKE ALL ON FUNCTION @extschema@.gb_plan_setting(integer, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_plan_setting(integer, text, text) TO gb_scale_admin;

------------------------------------------------------------------------------
-- Resource limits of tenants and plan tiers (src/tenant_limits.c)
------------------------------------------------------------------------------

-- A tenant's limits win over its plan tier's, limit by limit; NULL is "no
-- value here" (the tier's, else no limit).  Written only by
-- gb_tenant_limit() and gb_plan_limit(), which validate them; readable by
-- gb_scale_admin.  Their triggers invalidate every backend's limits cache.
CREATE TABLE gb_scale.tenant_limit (
    tenant_id                 bigint      PRIMARY KEY,
    max_xacts                 integer     CONSTRAINT tenant_limit_xacts CHECK (max_xacts >= 1),
    max_statements_per_second integer     CONSTRAINT tenant_limit_rate CHECK (max_statements_per_second >= 1),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE gb_scale.tenant_limit IS 'gb_scale limits: a tenant''s own concurrent transactions and statements per second';
CREATE TABLE gb_scale.plan_limit (
    tier                      @extschema@.gb_plan_tier PRIMARY KEY,
    max_xacts                 integer     CONSTRAINT plan_limit_xacts CHECK (max_xacts >= 1),
    max_statements_per_second integer     CONSTRAINT plan_limit_rate CHECK (max_statements_per_second >= 1),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE gb_scale.plan_limit IS 'gb_scale limits: the defaults of a plan tier, for its tenants without a value of their own';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.tenant_limit', '');
SELECT pg_catalog.pg_extension_config_dump('gb_scale.plan_limit', '');
REVOKE ALL ON gb_scale.tenant_limit, gb_scale.plan_limit FROM PUBLIC;
GRANT SELECT ON gb_scale.tenant_limit, gb_scale.plan_limit TO gb_scale_admin;
SELECT gb_scale.create_cache_triggers(t, t) FROM (VALUES ('tenant_limit'), ('plan_limit')) AS v(t);

CREATE FUNCTION @extschema@.gb_tenant_limit(tenant_id bigint, max_xacts integer, max_statements_per_second integer)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_limit'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_limit(bigint, integer, integer) IS
  'a tenant''s most concurrent transactions and statements per second (NULL: its plan tier''s; both NULL remove its row)';
REVOKE ALL ON FUNCTION @extschema@.gb_tenant_limit(bigint, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_tenant_limit(bigint, integer, integer) TO gb_scale_admin;

CREATE FUNCTION @extschema@.gb_plan_limit(tier integer, max_xacts integer, max_statements_per_second integer)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_plan_limit'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_plan_limit(integer, integer, integer) IS
  'a plan tier''s most concurrent transactions and statements per second (NULL: no limit; both NULL remove its row)';
REVOKE ALL ON FUNCTION @extschema@.gb_plan_limit(integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_plan_limit(integer, integer, integer) TO gb_scale_admin;

-- What the limits see now (shared memory; with shared_preload_libraries).
CREATE FUNCTION gb_scale.tenant_limits_usage(
    OUT database name, OUT tenant_id bigint, OUT running_xacts integer,
    OUT tokens double precision, OUT admitted_this_second bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'gb_tenant_limits_usage'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.tenant_limits_usage() IS
  'gb_scale limits: what gb_tenant_limits_usage shows';
REVOKE ALL ON FUNCTION gb_scale.tenant_limits_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.tenant_limits_usage() TO pg_monitor, gb_scale_admin;
CREATE VIEW @extschema@.gb_tenant_limits_usage AS
SELECT u.database, u.tenant_id, u.running_xacts, u.tokens, u.admitted_this_second
  FROM gb_scale.tenant_limits_usage() u;
COMMENT ON VIEW @extschema@.gb_tenant_limits_usage IS
  'per database and tenant: transactions running for it, and for a statement rate in use the tokens left and the statements admitted this second';
REVOKE ALL ON @extschema@.gb_tenant_limits_usage FROM PUBLIC;
GRANT SELECT ON @extschema@.gb_tenant_limits_usage TO pg_monitor, gb_scale_admin;

------------------------------------------------------------------------------
-- Row quotas of tenants and plan tiers per table (src/tenant_quotas.c)
------------------------------------------------------------------------------

-- The most rows a tenant may insert into a table (a partitioned table: its
-- whole tree) per day and per month.  A tenant's row replaces its tier's row
-- for that table; NULL in the row in force means no limit for that period.
-- Written only by gb_tenant_quota() and gb_plan_quota(); readable by
-- gb_scale_admin.  A dropped table's rows go with it (partition_on_drop).
CREATE TABLE gb_scale.tenant_quota (
    tenant_id      bigint      NOT NULL,
    tbl            regclass    NOT NULL,
    rows_per_day   bigint      CONSTRAINT tenant_quota_day CHECK (rows_per_day >= 1),
    rows_per_month bigint      CONSTRAINT tenant_quota_month CHECK (rows_per_month >= 1),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tbl)
);
COMMENT ON TABLE gb_scale.tenant_quota IS 'gb_scale quotas: a tenant''s own rows per day and per month in a table';
CREATE TABLE gb_scale.plan_quota (
    tier           @extschema@.gb_plan_tier NOT NULL,
    tbl            regclass    NOT NULL,
    rows_per_day   bigint      CONSTRAINT plan_quota_day CHECK (rows_per_day >= 1),
    rows_per_month bigint      CONSTRAINT plan_quota_month CHECK (rows_per_month >= 1),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tier, tbl)
);
COMMENT ON TABLE gb_scale.plan_quota IS 'gb_scale quotas: the rows per day and per month in a table of a plan tier''s tenants';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.tenant_quota', '');
SELECT pg_catalog.pg_extension_config_dump('gb_scale.plan_quota', '');
REVOKE ALL ON gb_scale.tenant_quota, gb_scale.plan_quota FROM PUBLIC;
GRANT SELECT ON gb_scale.tenant_quota, gb_scale.plan_quota TO gb_scale_admin;
-- Every backend's cache of quotas and tenant columns forgets these tables at
-- its next statement (as the settings cache above).
SELECT gb_scale.create_cache_triggers(t, t || '_quota')
FROM (VALUES ('tenant_quota'), ('plan_quota'), ('tenant_isolation'), ('partition_config')) AS v(t);

-- The statement trigger that counts and checks a table's inserted rows.
CREATE FUNCTION gb_scale.quota_count()
RETURNS trigger
AS 'MODULE_PATHNAME', 'gb_quota_count'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION gb_scale.quota_count() IS
  'gb_scale quotas: counts a statement''s inserted rows per tenant and refuses them over a quota';
-- CREATE TRIGGER needs EXECUTE on it (firing does not): gb_tenant_quota's and
-- gb_plan_quota's callers create it.
REVOKE ALL ON FUNCTION gb_scale.quota_count() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.quota_count() TO gb_scale_admin;

CREATE FUNCTION @extschema@.gb_tenant_quota(tenant_id bigint, tbl regclass, rows_per_day bigint, rows_per_month bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_tenant_quota'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_quota(bigint, regclass, bigint, bigint) IS
  'a tenant''s most rows per day and per month in a table, replacing its plan tier''s (NULL: no limit; both NULL remove its row)';
REVOKE ALL ON FUNCTION @extschema@.gb_tenant_quota(bigint, regclass, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_tenant_quota(bigint, regclass, bigint, bigint) TO gb_scale_admin;

CREATE FUNCTION @extschema@.gb_plan_quota(tier integer, tbl regclass, rows_per_day bigint, rows_per_month bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_plan_quota'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.gb_plan_quota(integer, regclass, bigint, bigint) IS
  'a plan tier''s most rows per day and per month in a table (NULL: no limit; both NULL remove its row)';
REVOKE ALL ON FUNCTION @extschema@.gb_plan_quota(integer, regclass, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_plan_quota(integer, regclass, bigint, bigint) TO gb_scale_admin;

-- The counters of this database (shared memory; with shared_preload_libraries).
CREATE FUNCTION gb_scale.tenant_quota_usage(
    OUT tenant_id bigint, OUT tbl regclass, OUT day date,
    OUT rows_today bigint, OUT reserved_today bigint,
    OUT rows_this_month bigint, OUT reserved_this_month bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'gb_tenant_quota_usage'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.tenant_quota_usage() IS
  'gb_scale quotas: the row counters that gb_tenant_quotas shows';
REVOKE ALL ON FUNCTION gb_scale.tenant_quota_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.tenant_quota_usage() TO gb_scale_admin;

-- Every quota in force, with the rows committed and being inserted.
CREATE VIEW @extschema@.gb_tenant_quotas AS
SELECT k.tenant_id, k.tbl,
       CASE WHEN o.tenant_id IS NOT NULL THEN 'tenant' ELSE 'tier' END AS source,
       CASE WHEN o.tenant_id IS NOT NULL THEN o.rows_per_day ELSE p.rows_per_day END AS rows_per_day,
       CASE WHEN o.tenant_id IS NOT NULL THEN o.rows_per_month ELSE p.rows_per_month END AS rows_per_month,
       u.day,
       COALESCE(u.rows_today, 0) AS rows_today,
       COALESCE(u.reserved_today, 0) AS reserved_today,
       COALESCE(u.rows_this_month, 0) AS rows_this_month,
       COALESCE(u.reserved_this_month, 0) AS reserved_this_month
  FROM (SELECT q.tenant_id, q.tbl FROM gb_scale.tenant_quota q
        UNION
        SELECT tp.tenant_id, pq.tbl FROM gb_scale.tenant_plan tp
          JOIN gb_scale.plan_quota pq ON pq.tier::pg_catalog.int2 OPERATOR(pg_catalog.=) tp.tier::pg_catalog.int2) k
  LEFT JOIN gb_scale.tenant_quota o
         ON o.tenant_id OPERATOR(pg_catalog.=) k.tenant_id AND o.tbl OPERATOR(pg_catalog.=) k.tbl
  LEFT JOIN gb_scale.tenant_plan t ON t.tenant_id OPERATOR(pg_catalog.=) k.tenant_id
  LEFT JOIN gb_scale.plan_quota p
         ON p.tier::pg_catalog.int2 OPERATOR(pg_catalog.=) t.tier::pg_catalog.int2
        AND p.tbl OPERATOR(pg_catalog.=) k.tbl
  LEFT JOIN gb_scale.tenant_quota_usage() u
         ON u.tenant_id OPERATOR(pg_catalog.=) k.tenant_id AND u.tbl OPERATOR(pg_catalog.=) k.tbl;
COMMENT ON VIEW @extschema@.gb_tenant_quotas IS
  'per tenant and table with a row quota in force: the quota, its source, and today''s and this month''s rows (committed and being inserted; day is NULL before the first counted row)';
REVOKE ALL ON @extschema@.gb_tenant_quotas FROM PUBLIC;
GRANT SELECT ON @extschema@.gb_tenant_quotas TO gb_scale_admin;

-- For the application: values of the transaction's tenant only.
CREATE FUNCTION @extschema@.gb_tenant_config(name text, default_value text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'gb_tenant_config'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_tenant_config(text, text) IS
  'a configuration value of the transaction''s tenant: its own, else its plan tier''s, else default_value';

-- Every value in force for a tenant, its own and its tier's.
CREATE FUNCTION gb_scale.tenant_settings(tenant_id bigint,
    OUT name text, OUT kind text, OUT value text, OUT source text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'gb_tenant_settings'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.tenant_settings(bigint) IS
  'gb_scale settings: every setting and configuration value in force for a tenant, with its source (tenant or tier)';
REVOKE ALL ON FUNCTION gb_scale.tenant_settings(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.tenant_settings(bigint) TO gb_scale_admin;

------------------------------------------------------------------------------
-- Cross-shard queries through postgres_fdw (src/shard_fdw.c)
------------------------------------------------------------------------------

-- A shard's connection string as postgres_fdw options: libpq parses it;
-- for_user_mapping marks the user and the secrets.  Returns the password, so
-- only those who may read shard_config may call it.
CREATE FUNCTION gb_scale.conninfo_options(conninfo text)
RETURNS TABLE (keyword text, value text, for_user_mapping boolean)
AS 'MODULE_PATHNAME', 'gb_conninfo_options'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.conninfo_options(text) IS
  'gb_scale cross-shard queries: a libpq connection string split into postgres_fdw server and user mapping options';
REVOKE ALL ON FUNCTION gb_scale.conninfo_options(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.conninfo_options(text) TO gb_scale_admin;

-- A shard's postgres_fdw server (the connection string's options, async
-- scans on) and the calling role's user mapping for it (the user and the
-- secrets): created, or changed (ADD/SET/DROP, keeping the options named in
-- server_keep and mapping_keep).  Built from parse nodes: no SQL text holds
-- the password (src/shard_fdw.c).
CREATE FUNCTION gb_scale.fdw_shard_sync(server name, conninfo text, server_keep text[], mapping_keep text[])
RETURNS void
AS 'MODULE_PATHNAME', 'gb_fdw_shard_sync'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION gb_scale.fdw_shard_sync(name, text, text[], text[]) IS
  'gb_shard_fdw_setup: a shard''s server and the calling role''s user mapping, from its connection string';
REVOKE ALL ON FUNCTION gb_scale.fdw_shard_sync(name, text, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.fdw_shard_sync(name, text, text[], text[]) TO gb_scale_admin;

-- One postgres_fdw server gb_shard_<id> per active shard, with a user mapping
-- for the calling role.  Runs with the caller's rights: creating a server
-- needs USAGE on the foreign-data wrapper, changing one needs ownership.  A
-- re-run brings the servers' and mappings' connection options in line with
-- shard_config (ADD/SET/DROP), keeps postgres_fdw's own options an operator
-- set (fetch_size, extensions...), and never drops a server: foreign tables
-- depend on them.
CREATE FUNCTION @extschema@.gb_shard_fdw_setup()
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    -- postgres_fdw's options that are not libpq's: never in a connection
    -- string, so a re-run leaves them as the operator set them.
    fdw_server_options CONSTANT text[] := ARRAY['use_remote_estimate', 'fdw_startup_cost',
        'fdw_tuple_cost', 'extensions', 'updatable', 'truncatable', 'fetch_size', 'batch_size',
        'parallel_commit', 'keep_connections'];
    fdw_mapping_options CONSTANT text[] := ARRAY['password_required', 'sslcert', 'sslkey'];
    shard record;
BEGIN
    -- Two set-ups at once would race to create the same servers: one at a
    -- time per database (the key is 'gbfdw' in ASCII).
    PERFORM pg_catalog.pg_advisory_xact_lock(444032509047);
    -- Checked first, so that a re-run says nothing (IF NOT EXISTS notices).
    IF pg_catalog.to_regnamespace('gb_global') IS NULL THEN
        CREATE SCHEMA gb_global;
        COMMENT ON SCHEMA gb_global IS 'gb_scale: cross-shard tables, one foreign partition per shard';
    END IF;
    -- Creating postgres_fdw needs a superuser; once it is there, its USAGE
    -- is what creating servers needs.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_foreign_data_wrapper w
                    WHERE w.fdwname OPERATOR(pg_catalog.=) 'postgres_fdw') THEN
        CREATE EXTENSION postgres_fdw SCHEMA gb_global;
    END IF;

    FOR shard IN SELECT c.shard_id, c.connection_string FROM gb_scale.shard_config c
                  WHERE c.is_active ORDER BY c.shard_id
    LOOP
        BEGIN
            -- Made from parse nodes, so that no statement text holds the password.
            PERFORM gb_scale.fdw_shard_sync(pg_catalog.format('gb_shard_%s', shard.shard_id),
                                            shard.connection_string, fdw_server_options,
                                            fdw_mapping_options);
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = pg_catalog.format('shard %s: %s', shard.shard_id, SQLERRM),
                HINT = 'Fix the connection_string of this shard in gb_scale.shard_config.';
        END;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION @extschema@.gb_shard_fdw_setup() IS
  'a postgres_fdw server gb_shard_<id> and a user mapping for the calling role per active shard of gb_scale.shard_config';
REVOKE ALL ON FUNCTION @extschema@.gb_shard_fdw_setup() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_shard_fdw_setup() TO gb_scale_admin;

-- gb_global.<global_name>: the local table's columns, partitioned by LIST
-- (shard_id), one postgres_fdw foreign table <global_name>_s<id> per active
-- shard, reading the same schema and table on that shard.  Runs with the
-- caller's rights (CREATE on gb_global, USAGE on the servers, ownership of
-- an existing global table).  A re-run adds the partitions of shards that
-- became active and drops those of shards no longer active (only the local
-- definitions: no shard's data is touched); it does not change columns.
CREATE FUNCTION @extschema@.gb_global_table(local_table regclass, global_name name)
RETURNS regclass
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    -- "_s1023": what partition names add to global_name.
    max_name_len CONSTANT integer := 63 OPERATOR(pg_catalog.-) 6;
    src record;
    key_att record;
    global_oid oid;
    cols text;
    shard record;
    part record;
    part_name name;
    srv name;
BEGIN
    SELECT c.oid, c.relkind, c.relname, n.nspname INTO src
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) local_table;
    IF src.relkind OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p']::"char"[]) THEN
        RAISE EXCEPTION '"%" is not a table', local_table
              USING ERRCODE = 'wrong_object_type',
                    HINT = 'gb_global_table() reads a table that every shard holds under the same name.';
    END IF;
    -- A global table reading global tables would query every shard from every shard, without end.
    IF src.nspname OPERATOR(pg_catalog.=) 'gb_global' THEN
        RAISE EXCEPTION '"%" is a cross-shard table itself', local_table
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Pass the shard-local table that the global table should read on every shard.';
    END IF;
    IF NOT pg_catalog.has_table_privilege(local_table, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', local_table
              USING ERRCODE = 'insufficient_privilege',
                    HINT = 'A cross-shard table shows every shard''s rows of the table: it needs SELECT on it.';
    END IF;
    SELECT a.attnum, a.atttypid INTO key_att FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) local_table AND a.attname OPERATOR(pg_catalog.=) 'shard_id'
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    IF key_att IS NULL THEN
        RAISE EXCEPTION 'table % has no column "shard_id"', local_table
              USING ERRCODE = 'undefined_column',
                    HINT = 'Every row must say its shard: add shard_id smallint NOT NULL DEFAULT gb_current_shard().';
    END IF;
    IF key_att.atttypid OPERATOR(pg_catalog.<>) 'pg_catalog.int2'::pg_catalog.regtype THEN
        RAISE EXCEPTION 'column "shard_id" of table % is of type %, not smallint',
                        local_table, key_att.atttypid::pg_catalog.regtype
              USING ERRCODE = 'datatype_mismatch',
                    HINT = 'Declare it as shard_id smallint NOT NULL DEFAULT gb_current_shard().';
    END IF;
    IF global_name OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'the global table needs a name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.octet_length(global_name) OPERATOR(pg_catalog.>) max_name_len THEN
        RAISE EXCEPTION 'global table name "%" is too long', global_name
              USING ERRCODE = 'name_too_long',
                    DETAIL = pg_catalog.format('Its partitions are named %s_s<shard id>, which must fit in 63 bytes.',
                                               global_name),
                    HINT = pg_catalog.format('Use a name of at most %s bytes.', max_name_len);
    END IF;
    IF pg_catalog.to_regnamespace('gb_global') IS NULL THEN
        RAISE EXCEPTION 'schema gb_global does not exist'
              USING ERRCODE = 'invalid_schema_name', HINT = 'Run gb_shard_fdw_setup() first.';
    END IF;

    SELECT c.oid INTO global_oid FROM pg_catalog.pg_class c
     WHERE c.relnamespace OPERATOR(pg_catalog.=) 'gb_global'::pg_catalog.regnamespace
       AND c.relname OPERATOR(pg_catalog.=) global_name;
    IF global_oid IS NOT NULL THEN
        -- Only a table this function made is extended: LIST on shard_id alone.
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_partitioned_table p
                         JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.partrelid
                                                       AND a.attnum OPERATOR(pg_catalog.=) p.partattrs[0]
                        WHERE p.partrelid OPERATOR(pg_catalog.=) global_oid
                          AND p.partstrat OPERATOR(pg_catalog.=) 'l' AND p.partnatts OPERATOR(pg_catalog.=) 1
                          AND a.attname OPERATOR(pg_catalog.=) 'shard_id') THEN
            RAISE EXCEPTION 'relation gb_global.% exists and is not a cross-shard table', global_name
                  USING ERRCODE = 'duplicate_table',
                        HINT = 'Choose another global_name, or drop the relation.';
        END IF;
        IF NOT pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c
                                        WHERE c.oid OPERATOR(pg_catalog.=) global_oid), 'USAGE') THEN
            RAISE EXCEPTION 'must be owner of table gb_global.%', global_name
                  USING ERRCODE = 'insufficient_privilege';
        END IF;
        -- Its columns are another table's when its partitions read another table.
        IF EXISTS (SELECT FROM pg_catalog.pg_inherits i
                     JOIN pg_catalog.pg_foreign_table f ON f.ftrelid OPERATOR(pg_catalog.=) i.inhrelid
                    WHERE i.inhparent OPERATOR(pg_catalog.=) global_oid
                      AND NOT COALESCE(f.ftoptions OPERATOR(pg_catalog.@>)
                                       ARRAY['schema_name=' OPERATOR(pg_catalog.||) src.nspname::text,
                                             'table_name=' OPERATOR(pg_catalog.||) src.relname::text], false)) THEN
            RAISE EXCEPTION 'gb_global.% reads another table than %', global_name, local_table
                  USING ERRCODE = 'duplicate_table',
                        HINT = pg_catalog.format('Choose another global_name, or drop gb_global.%I first.', global_name);
        END IF;
    END IF;
    -- Partitions are made in gb_global too, so a re-run needs it as well.
    IF NOT pg_catalog.has_schema_privilege('gb_global', 'CREATE') THEN
        RAISE EXCEPTION 'permission denied for schema gb_global'
              USING ERRCODE = 'insufficient_privilege',
                    HINT = 'Global tables are made with the calling role''s rights: it needs CREATE on schema gb_global.';
    END IF;
    IF global_oid IS NULL THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('%I %s%s', a.attname,
                   pg_catalog.format_type(a.atttypid, a.atttypmod),
                   CASE WHEN a.attcollation OPERATOR(pg_catalog.<>) t.typcollation
                        THEN pg_catalog.format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END),
                   ', ' ORDER BY a.attnum)
          INTO cols
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
          LEFT JOIN pg_catalog.pg_collation co ON co.oid OPERATOR(pg_catalog.=) a.attcollation
          LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace
         WHERE a.attrelid OPERATOR(pg_catalog.=) local_table AND a.attnum OPERATOR(pg_catalog.>) 0
           AND NOT a.attisdropped;
        EXECUTE pg_catalog.format('CREATE TABLE gb_global.%I (%s) PARTITION BY LIST (shard_id)',
                                  global_name, cols);
        global_oid := pg_catalog.format('gb_global.%I', global_name)::pg_catalog.regclass;
        EXECUTE pg_catalog.format('COMMENT ON TABLE gb_global.%I IS %L', global_name,
                                  pg_catalog.format('gb_scale: %s.%s of every shard', src.nspname, src.relname));
    END IF;
    -- One change of the partitions at a time (the lock conflicts with itself, not with readers).
    EXECUTE pg_catalog.format('LOCK TABLE gb_global.%I IN SHARE UPDATE EXCLUSIVE MODE', global_name);

    -- Partitions of shards no longer active (or gone) go.
    FOR part IN SELECT c.relname FROM pg_catalog.pg_inherits i
                  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                 WHERE i.inhparent OPERATOR(pg_catalog.=) global_oid AND c.relkind OPERATOR(pg_catalog.=) 'f'
                   AND pg_catalog.starts_with(c.relname, global_name OPERATOR(pg_catalog.||) '_s')
                   AND pg_catalog.substr(c.relname, pg_catalog.length(global_name) OPERATOR(pg_catalog.+) 3)
                       OPERATOR(pg_catalog.~) '^[0-9]{1,4}$'
                   AND NOT EXISTS (SELECT FROM gb_scale.shard_config s
                                    WHERE s.is_active
                                      AND pg_catalog.format('%s_s%s', global_name, s.shard_id)
                                          OPERATOR(pg_catalog.=) c.relname)
                 ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format('DROP FOREIGN TABLE gb_global.%I', part.relname);
    END LOOP;

    -- Partitions of active shards: made when missing, pointed at the local table's name.
    FOR shard IN SELECT c.shard_id FROM gb_scale.shard_config c WHERE c.is_active ORDER BY c.shard_id
    LOOP
        part_name := pg_catalog.format('%s_s%s', global_name, shard.shard_id);
        srv := pg_catalog.format('gb_shard_%s', shard.shard_id);
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_foreign_server s WHERE s.srvname OPERATOR(pg_catalog.=) srv) THEN
            RAISE EXCEPTION 'shard % has no foreign server "%"', shard.shard_id, srv
                  USING ERRCODE = 'undefined_object', HINT = 'Run gb_shard_fdw_setup() first.';
        END IF;
        SELECT c.oid, c.relkind, i.inhparent INTO part FROM pg_catalog.pg_class c
          LEFT JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) c.oid
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'gb_global'::pg_catalog.regnamespace
           AND c.relname OPERATOR(pg_catalog.=) part_name;
        IF part.oid IS NULL THEN
            EXECUTE pg_catalog.format('CREATE FOREIGN TABLE gb_global.%I PARTITION OF gb_global.%I '
                                      'FOR VALUES IN (%s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
                                      part_name, global_name, shard.shard_id, srv, src.nspname, src.relname);
        ELSIF part.relkind OPERATOR(pg_catalog.<>) 'f' OR part.inhparent IS NULL
              OR part.inhparent OPERATOR(pg_catalog.<>) global_oid THEN
            RAISE EXCEPTION 'relation gb_global.% exists and is not a partition of gb_global.%',
                            part_name, global_name
                  USING ERRCODE = 'duplicate_table';
        END IF;
    END LOOP;
    RETURN global_oid::pg_catalog.regclass;
END
$fn$;
COMMENT ON FUNCTION @extschema@.gb_global_table(regclass, name) IS
  'gb_global.<global_name>: a table partitioned by shard_id with one postgres_fdw partition per active shard';
REVOKE ALL ON FUNCTION @extschema@.gb_global_table(regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_global_table(regclass, name) TO gb_scale_admin;

------------------------------------------------------------------------------
-- Per-tenant statistics (shared memory, src/stat_tenants.c)
------------------------------------------------------------------------------

-- Every (database, tenant) entry: the counters since reset, then those of
-- the current period (from period_start) and of the previous one.
CREATE FUNCTION gb_scale.stat_tenants(
    OUT database name, OUT tenant_id bigint,
    OUT reads bigint, OUT writes bigint, OUT rows_returned bigint, OUT rows_inserted bigint, OUT rows_updated bigint, OUT rows_deleted bigint, OUT exec_time_ms double precision, OUT cpu_time_ms double precision, OUT xacts bigint,
    OUT period_start timestamptz,
    OUT reads_current bigint, OUT writes_current bigint, OUT rows_returned_current bigint, OUT rows_inserted_current bigint, OUT rows_updated_current bigint, OUT rows_deleted_current bigint, OUT exec_time_ms_current double precision, OUT cpu_time_ms_current double precision, OUT xacts_current bigint,
    OUT reads_previous bigint, OUT writes_previous bigint, OUT rows_returned_previous bigint, OUT rows_inserted_previous bigint, OUT rows_updated_previous bigint, OUT rows_deleted_previous bigint, OUT exec_time_ms_previous double precision, OUT cpu_time_ms_previous double precision, OUT xacts_previous bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'gb_stat_tenants'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.stat_tenants() IS
  'gb_scale statistics: the shared-memory entries that gb_stat_tenants shows';
REVOKE ALL ON FUNCTION gb_scale.stat_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.stat_tenants() TO pg_monitor, gb_scale_admin;
CREATE VIEW @extschema@.gb_stat_tenants AS
SELECT s.database, s.tenant_id,
       s.reads, s.writes, s.rows_returned, s.rows_inserted, s.rows_updated, s.rows_deleted, s.exec_time_ms, s.cpu_time_ms, s.xacts,
       s.period_start,
       s.reads_current, s.writes_current, s.rows_returned_current, s.rows_inserted_current, s.rows_updated_current, s.rows_deleted_current, s.exec_time_ms_current, s.cpu_time_ms_current, s.xacts_current,
       s.reads_previous, s.writes_previous, s.rows_returned_previous, s.rows_inserted_previous, s.rows_updated_previous, s.rows_deleted_previous, s.exec_time_ms_previous, s.cpu_time_ms_previous, s.xacts_previous
  FROM gb_scale.stat_tenants() s;
COMMENT ON VIEW @extschema@.gb_stat_tenants IS
  'what each tenant (NULL: none set) of each database cost: since reset, this period and the previous one';
REVOKE ALL ON @extschema@.gb_stat_tenants FROM PUBLIC;
GRANT SELECT ON @extschema@.gb_stat_tenants TO pg_monitor, gb_scale_admin;

CREATE FUNCTION gb_scale.stat_tenants_info(
    OUT capacity bigint, OUT entries bigint, OUT evictions bigint, OUT last_reset timestamptz,
    OUT entry_bytes bigint, OUT shared_memory_bytes bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'gb_stat_tenants_info'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.stat_tenants_info() IS
  'gb_scale statistics: what gb_stat_tenants_info shows';
REVOKE ALL ON FUNCTION gb_scale.stat_tenants_info() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.stat_tenants_info() TO pg_monitor, gb_scale_admin;
CREATE VIEW @extschema@.gb_stat_tenants_info AS
SELECT i.capacity, i.entries, i.evictions, i.last_reset, i.entry_bytes, i.shared_memory_bytes
  FROM gb_scale.stat_tenants_info() i;
COMMENT ON VIEW @extschema@.gb_stat_tenants_info IS
  'gb_stat_tenants itself: capacity (gb_scale.stat_tenants_max), entries, evictions since the last reset, memory';
REVOKE ALL ON @extschema@.gb_stat_tenants_info FROM PUBLIC;
GRANT SELECT ON @extschema@.gb_stat_tenants_info TO pg_monitor, gb_scale_admin;

CREATE FUNCTION @extschema@.gb_stat_tenants_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'gb_stat_tenants_reset_all'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_stat_tenants_reset() IS
  'forgets the statistics of every tenant of every database and the eviction count';
REVOKE ALL ON FUNCTION @extschema@.gb_stat_tenants_reset() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_stat_tenants_reset() TO gb_scale_admin;

-- Not strict: NULL is the entry of statements run with no tenant set.
CREATE FUNCTION @extschema@.gb_stat_tenants_reset(tenant_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'gb_stat_tenants_reset_tenant'
LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gb_stat_tenants_reset(bigint) IS
  'forgets the statistics of one tenant (NULL: no tenant set) of this database; false when it had none';
REVOKE ALL ON FUNCTION @extschema@.gb_stat_tenants_reset(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_stat_tenants_reset(bigint) TO gb_scale_admin;

------------------------------------------------------------------------------
-- Sizing advice from live volumes (src/sizing.c)
------------------------------------------------------------------------------

-- Which registered tables hold the sessions and messages counted per day,
-- and which table holds the users.  No row: General Bots' gb.sessions,
-- gb.messages (when registered) and gb.users (when it exists).
CREATE TABLE gb_scale.sizing_source (
    kind text     PRIMARY KEY CHECK (kind IN ('sessions', 'messages', 'users')),
    tbl  regclass NOT NULL
);
COMMENT ON TABLE gb_scale.sizing_source IS
  'gb_scale sizing: the tables counted as sessions, messages and users (set with gb_sizing_source)';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.sizing_source', '');
REVOKE ALL ON gb_scale.sizing_source FROM PUBLIC;
GRANT SELECT ON gb_scale.sizing_source TO pg_monitor, gb_scale_admin;
GRANT INSERT, UPDATE, DELETE ON gb_scale.sizing_source TO gb_scale_admin;

CREATE FUNCTION @extschema@.gb_sizing_source(kind text, tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF kind IS NULL OR kind NOT IN ('sessions', 'messages', 'users') THEN
        RAISE EXCEPTION 'invalid sizing source kind "%"', kind
              USING ERRCODE = '22023', HINT = 'The kinds are sessions, messages and users.';
    END IF;
    IF tbl IS NULL THEN
        DELETE FROM gb_scale.sizing_source s WHERE s.kind OPERATOR(pg_catalog.=) gb_sizing_source.kind;
        RETURN;
    END IF;
    IF kind OPERATOR(pg_catalog.<>) 'users' AND NOT EXISTS (
           SELECT FROM gb_scale.partition_config c WHERE c.parent OPERATOR(pg_catalog.=) tbl) THEN
        RAISE EXCEPTION 'table % is not registered with gb_partition_create', tbl
              USING ERRCODE = '22023',
                    HINT = 'Sessions and messages are counted per day from the partitions of a registered table.';
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl)
       NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl
              USING ERRCODE = '42809', HINT = 'Users are counted from an ordinary or partitioned table.';
    END IF;
    INSERT INTO gb_scale.sizing_source AS s (kind, tbl)
    VALUES (gb_sizing_source.kind, gb_sizing_source.tbl)
    ON CONFLICT ON CONSTRAINT sizing_source_pkey DO UPDATE SET tbl = excluded.tbl;
END
$$;
COMMENT ON FUNCTION @extschema@.gb_sizing_source(text, regclass) IS
  'sets (NULL: resets to the General Bots default) the table counted as sessions, messages or users by gb_scale.sizing';
REVOKE ALL ON FUNCTION @extschema@.gb_sizing_source(text, regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.gb_sizing_source(text, regclass) TO gb_scale_admin;

CREATE FUNCTION gb_scale.sizing_daily(tbl regclass, days integer, OUT day date, OUT row_count bigint, OUT tenants bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'gb_sizing_daily'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION gb_scale.sizing_daily(regclass, integer) IS
  'gb_scale sizing: rows and distinct tenants of a registered table on each of the last full days, counted as its owner';
REVOKE ALL ON FUNCTION gb_scale.sizing_daily(regclass, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.sizing_daily(regclass, integer) TO pg_monitor, gb_scale_admin;

CREATE FUNCTION gb_scale.sizing_rows(tbl regclass)
RETURNS bigint
AS 'MODULE_PATHNAME', 'gb_sizing_rows'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION gb_scale.sizing_rows(regclass) IS
  'gb_scale sizing: every row of a table, counted as its owner';
REVOKE ALL ON FUNCTION gb_scale.sizing_rows(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.sizing_rows(regclass) TO pg_monitor, gb_scale_admin;

CREATE FUNCTION gb_scale.sizing_tenant_rows(tbl regclass, OUT tenant_id bigint, OUT row_count bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'gb_sizing_tenant_rows'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION gb_scale.sizing_tenant_rows(regclass) IS
  'gb_scale sizing: rows per tenant of each partition of a registered table, counted as its owner';
REVOKE ALL ON FUNCTION gb_scale.sizing_tenant_rows(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.sizing_tenant_rows(regclass) TO pg_monitor, gb_scale_admin;

-- General Bots' "When to Scale" table (Scale chapter of its documentation):
-- a row is reached when any of users, sessions/day or messages/day reaches
-- its lower bound.  Growth: sessions and messages per day compound (the
-- daily rate from the first non-empty of the last 7 full days to the last),
-- users linear (the average of new users a day over those 7 days).
CREATE VIEW gb_scale.sizing AS
WITH scale(scale_row, setup, users_from, sessions_from, messages_from) AS (
    VALUES (1, 'Single node', 0::bigint, 0::bigint, 0::bigint),
           (2, '2-3 nodes, single region', 10000, 100000, 1000000),
           (3, 'Multi-node, consider sharding', 100000, 1000000, 10000000),
           (4, 'Regional shards', 1000000, 10000000, 100000000),
           (5, 'Global shards with Citus/CockroachDB', 10000000, 100000000, 1000000000)
), src AS (
    -- looked up in the catalog: the reader need not have USAGE on schema gb
    SELECT k.kind, COALESCE(s.tbl, (SELECT c.oid::pg_catalog.regclass
                                      FROM pg_catalog.pg_class c
                                      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                                     WHERE n.nspname OPERATOR(pg_catalog.=) 'gb'
                                       AND c.relname OPERATOR(pg_catalog.=) k.kind)) AS tbl
      FROM (VALUES ('sessions'), ('messages'), ('users')) k(kind)
      LEFT JOIN gb_scale.sizing_source s ON s.kind OPERATOR(pg_catalog.=) k.kind
), registered AS (
    SELECT src.kind, src.tbl,
           EXISTS (SELECT FROM gb_scale.partition_config c WHERE c.parent OPERATOR(pg_catalog.=) src.tbl) AS reg
      FROM src
     WHERE src.tbl IS NOT NULL
), per_kind AS (
    SELECT r.kind, r.tbl, pg_catalog.max(d.day) AS day,
           pg_catalog.array_agg(d.row_count ORDER BY d.day) AS counts,
           pg_catalog.array_agg(d.tenants ORDER BY d.day) AS tenants,
           pg_catalog.sum(d.row_count) AS week_rows
      FROM registered r CROSS JOIN LATERAL gb_scale.sizing_daily(r.tbl, 7) d
     WHERE r.reg
     GROUP BY r.kind, r.tbl
), first_day AS (
    SELECT p.*, (SELECT pg_catalog.min(i) FROM pg_catalog.generate_series(1, 7) i
                  WHERE p.counts[i] OPERATOR(pg_catalog.>) 0) AS first_n
      FROM per_kind p
), volumes AS (
    SELECT CASE f.kind WHEN 'sessions' THEN 'sessions_per_day' ELSE 'messages_per_day' END AS metric,
           CASE f.kind WHEN 'sessions' THEN 2 ELSE 3 END AS ord,
           f.tbl AS source, f.day, f.counts[7] AS volume, 'compound'::text AS growth_model,
           CASE WHEN f.first_n OPERATOR(pg_catalog.<) 7 AND f.counts[7] OPERATOR(pg_catalog.>) f.counts[f.first_n]
                THEN pg_catalog.power(f.counts[7]::float8 OPERATOR(pg_catalog./) f.counts[f.first_n],
                                      1.0::float8 OPERATOR(pg_catalog./) (7 OPERATOR(pg_catalog.-) f.first_n))
                     OPERATOR(pg_catalog.-) 1 END AS growth_per_day
      FROM first_day f WHERE f.kind OPERATOR(pg_catalog.<>) 'users'
    UNION ALL
    SELECT 'users', 1, r.tbl, p.day, gb_scale.sizing_rows(r.tbl), 'linear',
           CASE WHEN p.week_rows OPERATOR(pg_catalog.>) 0 THEN p.week_rows::float8 OPERATOR(pg_catalog./) 7 END
      FROM registered r LEFT JOIN per_kind p ON p.kind OPERATOR(pg_catalog.=) r.kind
     WHERE r.kind OPERATOR(pg_catalog.=) 'users'
    UNION ALL
    SELECT 'tenants', 4, NULL, pg_catalog.max(f.day), pg_catalog.max(f.tenants[7]), NULL, NULL
      FROM first_day f WHERE f.kind OPERATOR(pg_catalog.<>) 'users'
    HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0
), bounds AS (
    SELECT v.metric, s.scale_row,
           CASE v.metric WHEN 'users' THEN s.users_from WHEN 'sessions_per_day' THEN s.sessions_from
                         WHEN 'messages_per_day' THEN s.messages_from END AS threshold
      FROM volumes v CROSS JOIN scale s
     WHERE v.metric OPERATOR(pg_catalog.<>) 'tenants'
), ahead AS (
    SELECT b.metric, b.scale_row, b.threshold, v.day,
           CASE WHEN v.volume OPERATOR(pg_catalog.>=) b.threshold THEN 0::float8
                WHEN v.growth_per_day IS NULL OR v.growth_per_day OPERATOR(pg_catalog.<=) 0 THEN NULL
                WHEN v.growth_model OPERATOR(pg_catalog.=) 'compound' THEN
                     pg_catalog.ln(b.threshold::float8 OPERATOR(pg_catalog./) v.volume)
                     OPERATOR(pg_catalog./) pg_catalog.ln(1 OPERATOR(pg_catalog.+) v.growth_per_day)
                ELSE (b.threshold OPERATOR(pg_catalog.-) v.volume)::float8 OPERATOR(pg_catalog./) v.growth_per_day
           END AS days
      FROM bounds b JOIN volumes v ON v.metric OPERATOR(pg_catalog.=) b.metric
), crossing AS (
    -- a date a century away or more says nothing: not growing
    SELECT a.metric, a.scale_row, a.threshold,
           CASE WHEN a.days OPERATOR(pg_catalog.<=) 36525
                THEN a.day OPERATOR(pg_catalog.+) pg_catalog.ceil(a.days)::integer END AS crosses_on
      FROM ahead a
), rated AS (
    SELECT v.*, (SELECT pg_catalog.max(b.scale_row) FROM bounds b
                  WHERE b.metric OPERATOR(pg_catalog.=) v.metric
                    AND v.volume OPERATOR(pg_catalog.>=) b.threshold) AS scale_row
      FROM volumes v
), shard AS (
    SELECT pg_catalog.max(r.scale_row) AS scale_row, pg_catalog.max(r.day) AS day FROM rated r
)
SELECT u.metric, u.source, u.day, u.volume, u.scale_row, u.setup, u.next_setup, u.next_threshold,
       u.growth_model, u.growth_per_day, u.crosses_on
  FROM (SELECT r.ord, r.metric, r.source, r.day, r.volume, r.scale_row, s.setup,
               n.setup AS next_setup, c.threshold AS next_threshold,
               r.growth_model, r.growth_per_day, c.crosses_on
          FROM rated r
          LEFT JOIN scale s ON s.scale_row OPERATOR(pg_catalog.=) r.scale_row
          LEFT JOIN scale n ON n.scale_row OPERATOR(pg_catalog.=) (r.scale_row OPERATOR(pg_catalog.+) 1)
          LEFT JOIN crossing c ON c.metric OPERATOR(pg_catalog.=) r.metric
                              AND c.scale_row OPERATOR(pg_catalog.=) n.scale_row
        UNION ALL
        SELECT 5, 'shard', NULL, sh.day, NULL, sh.scale_row, s.setup, n.setup, NULL, NULL, NULL,
               (SELECT pg_catalog.min(c.crosses_on) FROM crossing c
                 WHERE c.scale_row OPERATOR(pg_catalog.=) n.scale_row)
          FROM shard sh
          LEFT JOIN scale s ON s.scale_row OPERATOR(pg_catalog.=) sh.scale_row
          LEFT JOIN scale n ON n.scale_row OPERATOR(pg_catalog.=) (sh.scale_row OPERATOR(pg_catalog.+) 1)) u
 ORDER BY u.ord;
COMMENT ON VIEW gb_scale.sizing IS
  'this shard''s users, sessions and messages a day and tenants, the When-to-Scale row they fall in, the next threshold and when it is crossed';
REVOKE ALL ON gb_scale.sizing FROM PUBLIC;
GRANT SELECT ON gb_scale.sizing TO pg_monitor, gb_scale_admin;

-- The tenants with the largest share of this shard's rows (every registered
-- table with a tenant column) or CPU (gb_stat_tenants since its reset, when
-- gb_scale is preloaded), and what to do about them:
--   share >= 30% (and other tenants here): move it to another shard;
--   share >= 5%, on a LIST-by-tenant table not yet dedicated: dedicate it;
--   else nothing.
CREATE FUNCTION gb_scale.tenant_heavy(top integer DEFAULT 10,
    OUT tenant_id bigint, OUT row_count bigint, OUT row_share double precision,
    OUT cpu_time_ms double precision, OUT cpu_share double precision,
    OUT action text, OUT command text)
RETURNS SETOF record
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
WITH per_table AS (
    SELECT c.parent, c.layout, r.tenant_id, pg_catalog.sum(r.row_count)::bigint AS row_count
      FROM gb_scale.partition_config c
     CROSS JOIN LATERAL gb_scale.sizing_tenant_rows(c.parent) r
     WHERE r.tenant_id IS NOT NULL
     GROUP BY c.parent, c.layout, r.tenant_id
), by_rows AS (
    SELECT p.tenant_id, pg_catalog.sum(p.row_count)::bigint AS row_count
      FROM per_table p GROUP BY p.tenant_id
), by_cpu AS (
    -- the constant condition is a one-time filter: without the preload the
    -- statistics function is never called
    SELECT s.tenant_id, s.cpu_time_ms
      FROM gb_scale.stat_tenants() s
     WHERE 'gb_scale' OPERATOR(pg_catalog.=) ANY (pg_catalog.string_to_array(
               pg_catalog.replace(pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ','))
       AND s.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
       AND s.tenant_id IS NOT NULL
), joined AS (
    SELECT COALESCE(r.tenant_id, c.tenant_id) AS tenant_id, COALESCE(r.row_count, 0) AS row_count,
           c.cpu_time_ms
      FROM by_rows r FULL JOIN by_cpu c ON c.tenant_id OPERATOR(pg_catalog.=) r.tenant_id
), shares AS (
    SELECT j.tenant_id, j.row_count,
           j.row_count::float8 OPERATOR(pg_catalog./)
               NULLIF(pg_catalog.sum(j.row_count) OVER (), 0) AS row_share,
           j.cpu_time_ms,
           j.cpu_time_ms OPERATOR(pg_catalog./) NULLIF(pg_catalog.sum(j.cpu_time_ms) OVER (), 0) AS cpu_share,
           pg_catalog.count(*) OVER () AS tenants
      FROM joined j
), advised AS (
    SELECT s.*, GREATEST(COALESCE(s.row_share, 0), COALESCE(s.cpu_share, 0)) AS share,
           (SELECT pg_catalog.string_agg(pg_catalog.format('SELECT gb_tenant_dedicate(%L, %s);', p.parent::text, p.tenant_id),
                                         ' ' ORDER BY p.parent::text)
              FROM per_table p
             WHERE p.tenant_id OPERATOR(pg_catalog.=) s.tenant_id AND p.layout OPERATOR(pg_catalog.=) 'list'
               AND NOT EXISTS (SELECT FROM gb_scale.partition_tenant t
                                WHERE t.parent OPERATOR(pg_catalog.=) p.parent
                                  AND t.tenant_id OPERATOR(pg_catalog.=) p.tenant_id
                                  AND t.subtree IS NOT NULL)) AS dedicate
      FROM shares s
)
SELECT a.tenant_id, a.row_count, a.row_share, a.cpu_time_ms, a.cpu_share,
       CASE WHEN a.tenants OPERATOR(pg_catalog.>) 1 AND a.share OPERATOR(pg_catalog.>=) 0.30 THEN 'move'
            WHEN a.tenants OPERATOR(pg_catalog.>) 1 AND a.share OPERATOR(pg_catalog.>=) 0.05
                 AND a.dedicate IS NOT NULL THEN 'dedicate'
            ELSE 'none' END,
       CASE WHEN a.tenants OPERATOR(pg_catalog.>) 1 AND a.share OPERATOR(pg_catalog.>=) 0.30 THEN
                 pg_catalog.format('copy SELECT * FROM gb_tenant_export(%s) to the target shard, then SELECT gb_tenant_assign(%s, <target shard>); SELECT gb_tenant_purge(%s);',
                                   a.tenant_id, a.tenant_id, a.tenant_id)
            WHEN a.tenants OPERATOR(pg_catalog.>) 1 AND a.share OPERATOR(pg_catalog.>=) 0.05 THEN a.dedicate
       END
  FROM advised a
 ORDER BY a.share DESC, a.tenant_id
 LIMIT top
$$;
COMMENT ON FUNCTION gb_scale.tenant_heavy(integer) IS
  'the TOP tenants with the largest share of this shard''s rows and CPU, with the action that fits (move, dedicate, none)';
REVOKE ALL ON FUNCTION gb_scale.tenant_heavy(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gb_scale.tenant_heavy(integer) TO pg_monitor, gb_scale_admin;

DROP FUNCTION gb_scale.create_cache_triggers(text, text);
