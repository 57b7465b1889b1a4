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
