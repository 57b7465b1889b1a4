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

-- Labels of every enum domain.  Codes are never changed, reused or removed
-- (the guard trigger refuses it); a row goes only when its domain is dropped.
-- Rows added after installation are dumped with the database.
CREATE TABLE gb_scale.enum_label (
    enum_type regtype  NOT NULL,
    code      smallint NOT NULL CONSTRAINT enum_label_code_check CHECK (code >= 0),
    label     text     NOT NULL CONSTRAINT enum_label_label_check CHECK (label <> ''),
    builtin   boolean  NOT NULL DEFAULT false,
    PRIMARY KEY (enum_type, code),
    UNIQUE (enum_type, label)
);
COMMENT ON TABLE gb_scale.enum_label IS 'gb_scale enum domains: code and label of each value';
SELECT pg_catalog.pg_extension_config_dump('gb_scale.enum_label', 'WHERE NOT builtin');

-- Anyone may read labels and manage the enums of domains they own; the
-- guard trigger checks ownership, as ALTER DOMAIN would.
GRANT USAGE ON SCHEMA gb_scale TO PUBLIC;
GRANT SELECT, INSERT, DELETE ON gb_scale.enum_label TO PUBLIC;
GRANT UPDATE (label) ON gb_scale.enum_label TO PUBLIC;

CREATE VIEW gb_scale.enum_labels AS
    SELECT enum_type, code, label FROM gb_scale.enum_label;
COMMENT ON VIEW gb_scale.enum_labels IS 'every code and label of every gb_scale enum domain';
GRANT SELECT ON gb_scale.enum_labels TO PUBLIC;

CREATE FUNCTION gb_scale.enum_check(code smallint, domain text, codes smallint[])
RETURNS boolean
AS 'MODULE_PATHNAME', 'gb_enum_check'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gb_scale.enum_check(smallint, text, smallint[]) IS
  'CHECK constraint of gb_scale enum domains: raises 23514 naming the domain and its codes';

CREATE FUNCTION gb_scale.enum_invalidate(enum_type regtype)
RETURNS void
AS 'MODULE_PATHNAME', 'gb_enum_invalidate'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION gb_scale.enum_invalidate(regtype) IS
  'tells every backend that the labels of an enum domain changed';

CREATE FUNCTION gb_scale.enum_label_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner oid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT FROM pg_type WHERE oid = OLD.enum_type) THEN
            RAISE EXCEPTION 'cannot remove code % (%) of enum %', OLD.code, OLD.label, OLD.enum_type
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Codes are never removed or reused: rows stored with them must keep their meaning.',
                      HINT = 'Rename the label with gb_enum_rename() instead.';
        END IF;
        RETURN OLD;
    END IF;

    SELECT t.typowner INTO owner FROM pg_type t
     WHERE t.oid = NEW.enum_type AND t.typtype = 'd' AND t.typbasetype = 'int2'::regtype
       AND NOT t.typnamespace = ANY (ARRAY[pg_my_temp_schema(), 'pg_catalog'::regnamespace])
       AND NOT pg_is_other_temp_schema(t.typnamespace);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'type % is not a permanent smallint domain', NEW.enum_type
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Create enums with gb_enum_create(name, labels).';
    END IF;
    -- Only the extension's own domains hold built-in labels (they are not dumped).
    IF NEW.builtin AND NOT EXISTS (
           SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
            WHERE d.classid = 'pg_type'::regclass AND d.objid = NEW.enum_type
              AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
              AND e.extname = 'gb_scale') THEN
        RAISE EXCEPTION 'type % is not a built-in enum of gb_scale', NEW.enum_type
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Labels of your own enums have builtin = false.';
    END IF;
    IF NOT pg_has_role(owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of type %', NEW.enum_type
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only the owner of an enum domain may change its labels.';
    END IF;

    -- pg_dump does not dump changes to the extension's own domains, so a
    -- built-in enum must stay exactly as installed to survive a restore.
    IF (TG_OP = 'UPDATE' AND OLD.builtin)
       OR (TG_OP = 'INSERT' AND NOT NEW.builtin
           AND EXISTS (SELECT FROM gb_scale.enum_label l WHERE l.enum_type = NEW.enum_type AND l.builtin)) THEN
        RAISE EXCEPTION 'cannot change built-in enum %', NEW.enum_type
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Built-in enums carry the codes and labels of General Bots'' Rust enums; they change only with a gb_scale release.',
                  HINT = 'Create an enum of your own with gb_enum_create().';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.enum_type <> OLD.enum_type OR NEW.code <> OLD.code OR NEW.builtin <> OLD.builtin) THEN
        RAISE EXCEPTION 'cannot change code % (%) of enum %', OLD.code, OLD.label, OLD.enum_type
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Codes are never changed, removed or reused.',
                  HINT = 'Rename the label with gb_enum_rename(), or add a new one with gb_enum_add().';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER enum_label_guard
    BEFORE INSERT OR UPDATE OR DELETE ON gb_scale.enum_label
    FOR EACH ROW EXECUTE FUNCTION gb_scale.enum_label_guard();

CREATE FUNCTION gb_scale.enum_label_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM gb_scale.enum_invalidate(t.enum_type) FROM (SELECT DISTINCT enum_type FROM changed) t;
    RETURN NULL;
END
$$;

CREATE TRIGGER enum_label_inserted
    AFTER INSERT ON gb_scale.enum_label REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION gb_scale.enum_label_changed();
CREATE TRIGGER enum_label_updated
    AFTER UPDATE ON gb_scale.enum_label REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION gb_scale.enum_label_changed();

-- Labels of a dropped domain go with it.
CREATE FUNCTION gb_scale.enum_on_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM gb_scale.enum_label l
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_type'::regclass AND d.objid = l.enum_type::oid;
END
$$;
CREATE EVENT TRIGGER gb_scale_enum_drop ON sql_drop
    WHEN TAG IN ('DROP DOMAIN', 'DROP SCHEMA', 'DROP OWNED', 'DROP TYPE', 'DROP EXTENSION')
    EXECUTE FUNCTION gb_scale.enum_on_drop();

-- The domain's CHECK constraint carries its valid codes, so that restoring
-- data never depends on the label table.  Replacing it neither scans nor
-- locks what uses the domain (columns, arrays, domains over it): the new,
-- wider constraint is added NOT VALID, as every stored value satisfies it.
CREATE FUNCTION gb_scale.enum_sync_constraint(enum_type regtype)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    codes smallint[] := ARRAY(SELECT l.code FROM gb_scale.enum_label l
                               WHERE l.enum_type = enum_sync_constraint.enum_type ORDER BY l.code);
    had_constraint boolean := EXISTS (SELECT FROM pg_constraint c
                                       WHERE c.contypid = enum_type AND c.conname = 'gb_enum_codes');
BEGIN
    IF had_constraint THEN
        EXECUTE format('ALTER DOMAIN %s DROP CONSTRAINT gb_enum_codes', enum_type);
    END IF;
    EXECUTE format('ALTER DOMAIN %s ADD CONSTRAINT gb_enum_codes CHECK (gb_scale.enum_check(VALUE, %L, %L::smallint[]))%s',
                   enum_type, enum_type::text, codes, CASE WHEN had_constraint THEN ' NOT VALID' ELSE '' END);
END
$$;

CREATE FUNCTION gb_scale.enum_create_in(nsp regnamespace, typname text, labels text[],
                                        codes smallint[], builtin boolean DEFAULT false)
RETURNS regtype
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := cardinality(labels);
    bad text;
    new_type regtype;
BEGIN
    IF n = 0 OR array_ndims(labels) <> 1 THEN
        RAISE EXCEPTION 'gb_enum_create: labels must be a non-empty one-dimensional array'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Example: gb_enum_create(''ticket_state'', ARRAY[''open'', ''closed'']).';
    END IF;
    IF codes IS NULL THEN
        codes := ARRAY(SELECT g::smallint FROM generate_series(0, n - 1) g);
    ELSIF cardinality(codes) <> n OR array_ndims(codes) <> 1 THEN
        RAISE EXCEPTION 'gb_enum_create: % labels but % codes', n, cardinality(codes)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give one code per label, or no codes for 0..n-1.';
    END IF;
    IF EXISTS (SELECT FROM unnest(labels) l WHERE l IS NULL OR l = '') THEN
        RAISE EXCEPTION 'gb_enum_create: labels must be non-empty strings'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT l INTO bad FROM unnest(labels) l GROUP BY l HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'gb_enum_create: label "%" appears more than once', bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c::text INTO bad FROM unnest(codes) c WHERE c IS NULL OR c < 0 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'gb_enum_create: code % is invalid', coalesce(bad, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Codes are non-negative smallints.';
    END IF;
    SELECT c::text INTO bad FROM unnest(codes) c GROUP BY c HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'gb_enum_create: code % appears more than once', bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    EXECUTE format('CREATE DOMAIN %I.%I AS pg_catalog.int2', nsp, typname);
    SELECT t.oid INTO new_type FROM pg_type t WHERE t.typnamespace = nsp AND t.typname = enum_create_in.typname;
    INSERT INTO gb_scale.enum_label (enum_type, code, label, builtin)
    SELECT new_type, u.code, u.label, enum_create_in.builtin
      FROM unnest(codes, labels) AS u(code, label);
    PERFORM gb_scale.enum_sync_constraint(new_type);
    EXECUTE format('COMMENT ON DOMAIN %s IS %L', new_type, 'gb_scale enum');
    RETURN new_type;
END
$$;

CREATE FUNCTION @extschema@.gb_enum_create(name text, labels text[], codes smallint[] DEFAULT NULL)
RETURNS regtype
AS 'MODULE_PATHNAME', 'gb_enum_create'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.gb_enum_create(text, text[], smallint[]) IS
  'creates a SMALLINT enum domain; codes default to 0..n-1';

CREATE FUNCTION @extschema@.gb_enum_add(enum_type regtype, label text, code smallint DEFAULT NULL)
RETURNS smallint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    taken text;
BEGIN
    IF enum_type IS NULL OR label IS NULL THEN
        RAISE EXCEPTION 'gb_enum_add: enum_type and label must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF label = '' OR code < 0 THEN
        RAISE EXCEPTION 'gb_enum_add: labels must be non-empty and codes non-negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM gb_scale.enum_label l WHERE l.enum_type = gb_enum_add.enum_type) THEN
        RAISE EXCEPTION 'type % is not a gb_scale enum', enum_type
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Create one with gb_enum_create(name, labels).';
    END IF;
    -- Concurrent additions to one enum take their codes one after the other.
    PERFORM pg_advisory_xact_lock('gb_scale.enum_label'::regclass::oid::integer, enum_type::oid::integer);
    IF EXISTS (SELECT FROM gb_scale.enum_label l WHERE l.enum_type = gb_enum_add.enum_type AND l.label = gb_enum_add.label) THEN
        RAISE EXCEPTION 'enum % already has label "%"', enum_type, label
            USING ERRCODE = 'duplicate_object';
    END IF;
    IF code IS NULL THEN
        SELECT max(l.code) + 1 INTO code FROM gb_scale.enum_label l WHERE l.enum_type = gb_enum_add.enum_type;
    ELSE
        SELECT l.label INTO taken FROM gb_scale.enum_label l
         WHERE l.enum_type = gb_enum_add.enum_type AND l.code = gb_enum_add.code;
        IF FOUND THEN
            RAISE EXCEPTION 'code % of enum % is already used by label "%"', code, enum_type, taken
                USING ERRCODE = 'unique_violation',
                      DETAIL = 'Codes are never reused: stored rows keep their meaning.',
                      HINT = 'Omit the code to take the next free one.';
        END IF;
    END IF;
    INSERT INTO gb_scale.enum_label (enum_type, code, label)
    VALUES (enum_type, code, label);
    PERFORM gb_scale.enum_sync_constraint(enum_type);
    RETURN code;
END
$$;
COMMENT ON FUNCTION @extschema@.gb_enum_add(regtype, text, smallint) IS
  'adds a label to an enum domain (next free code by default) without rewriting or scanning tables';

CREATE FUNCTION @extschema@.gb_enum_rename(enum_type regtype, old_label text, new_label text)
RETURNS void
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM gb_scale.enum_label l WHERE l.enum_type = gb_enum_rename.enum_type) THEN
        RAISE EXCEPTION 'type % is not a gb_scale enum', enum_type
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Create one with gb_enum_create(name, labels).';
    END IF;
    IF new_label = '' THEN
        RAISE EXCEPTION 'gb_enum_rename: labels must be non-empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM gb_scale.enum_label l WHERE l.enum_type = gb_enum_rename.enum_type AND l.label = new_label) THEN
        RAISE EXCEPTION 'enum % already has label "%"', enum_type, new_label
            USING ERRCODE = 'duplicate_object';
    END IF;
    UPDATE gb_scale.enum_label l SET label = new_label
     WHERE l.enum_type = gb_enum_rename.enum_type AND l.label = old_label;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'enum % has no label "%"', enum_type, old_label
            USING ERRCODE = 'invalid_text_representation',
                  HINT = format('Valid labels: %s.', (SELECT string_agg(l.label, ', ' ORDER BY l.code)
                                                        FROM gb_scale.enum_label l
                                                       WHERE l.enum_type = gb_enum_rename.enum_type));
    END IF;
END
$$;
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
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT l.code, l.label FROM gb_scale.enum_label l
                  WHERE l.enum_type = gb_enum_labels.enum_type ORDER BY l.code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'type % is not a gb_scale enum', enum_type
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Create one with gb_enum_create(name, labels).';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.gb_enum_labels(regtype) IS 'every code and label of an enum domain';

-- General Bots' enums, with the codes its Rust enums use.
SELECT gb_scale.enum_create_in('@extschema@', e.name, e.labels, e.codes, true)
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
