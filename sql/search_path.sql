-- gb_scale against a hostile search_path.
--
-- An ordinary role, regress_mallory, owns schema "hostile" and fills it with
-- functions, aggregates, operators, types and views named like everything
-- the extension's SQL and C code could resolve by name.  Every hostile
-- object calls hostile.record(), which warns "hostile <name> ran", counts
-- the call in a sequence (a rollback cannot undo that), notes it in
-- hostile.ran, and tries ALTER ROLE regress_mallory SUPERUSER, which works
-- only when a superuser ran it.  Each one also returns a wrong result, so a
-- misuse changes results too.
--
-- Then every public function is called, by mallory and by a superuser, once
-- with a clean search_path and once with search_path = hostile, pg_catalog,
-- public, and the two results are compared.  No hostile object may run: the
-- expected output has no "hostile ... ran" warning, hostile.ran stays empty
-- and mallory stays an ordinary role.
--
-- Objects mallory cannot shadow, and therefore not tried: casts between
-- types she does not own (CREATE CAST needs ownership, shown below),
-- functions taking cstring or internal such as textin (C only, so
-- superuser only), operator classes (superuser only), schema names, and
-- COALESCE, NULLIF, GREATEST and LEAST, which are grammar rather than
-- functions (concat and concat_ws stand in for them).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET search_path = public, pg_catalog;
SET timezone = 'UTC';

-- Roles belong to the cluster: a run that crashed left its role behind.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_mallory;
RESET client_min_messages;
CREATE ROLE regress_mallory;
CREATE SCHEMA hostile AUTHORIZATION regress_mallory;
CREATE SCHEMA mallory_app AUTHORIZATION regress_mallory;
CREATE SCHEMA super_app;
-- The test's own machinery; everything in it is schema-qualified.
CREATE SCHEMA sec_sp;
GRANT USAGE ON SCHEMA sec_sp TO PUBLIC;

------------------------------------------------------------------------------
-- Mallory's trap
------------------------------------------------------------------------------
SET SESSION AUTHORIZATION regress_mallory;
GRANT USAGE ON SCHEMA hostile TO PUBLIC;

CREATE TABLE hostile.ran (name pg_catalog.text, by_role pg_catalog.text);
GRANT INSERT ON hostile.ran TO PUBLIC;
CREATE SEQUENCE hostile.ran_count;
GRANT USAGE ON SEQUENCE hostile.ran_count TO PUBLIC;

-- The bodies of hostile objects name only pg_catalog-qualified objects:
-- they must not trip over each other, only over the extension.
CREATE FUNCTION hostile.record(what pg_catalog.text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'hostile % ran', what;
    BEGIN
        PERFORM pg_catalog.nextval('hostile.ran_count');
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        INSERT INTO hostile.ran VALUES (what, current_user);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        ALTER ROLE regress_mallory SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END
$$;

-- The cache loader of the current code reads max(code): the headline trap.
-- Run by an ordinary role, its state function returns 0, so an unqualified
-- max() sizes the label array for one code.  Run by a superuser it answers
-- plausibly instead, so that the statement succeeds and the ALTER ROLE in
-- hostile.record() commits with it.
CREATE FUNCTION hostile.max_int2_state(pg_catalog.int2, pg_catalog.int2) RETURNS pg_catalog.int2
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hostile.record('aggregate max(int2)');
    IF EXISTS (SELECT FROM pg_catalog.pg_roles r
                WHERE r.rolname OPERATOR(pg_catalog.=) current_user AND r.rolsuper) THEN
        RETURN 32767;
    END IF;
    RETURN 0;
END
$$;
CREATE AGGREGATE hostile.max(pg_catalog.int2) (SFUNC = hostile.max_int2_state, STYPE = pg_catalog.int2);

-- Functions: name, argument types, result type, the wrong result.
DO $gen$
DECLARE
    f record;
    i integer := 0;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('now', '', 'pg_catalog.timestamptz', $$'epoch'$$),
        ('format', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.regtype', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.regtype, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.regtype, pg_catalog.text, pg_catalog.int2[], pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.regnamespace, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.name', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.name, pg_catalog.name', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.oid', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.int2', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.int4', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.int2[]', 'pg_catalog.text', $$''$$),
        ('format', 'pg_catalog.text, pg_catalog.text[]', 'pg_catalog.text', $$''$$),
        ('concat', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('concat', 'pg_catalog.text, pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('concat_ws', 'pg_catalog.text, pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('quote_ident', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('quote_ident', 'pg_catalog.name', 'pg_catalog.text', $$''$$),
        ('quote_literal', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('quote_literal', 'pg_catalog.int2[]', 'pg_catalog.text', $$''$$),
        ('quote_literal', 'pg_catalog.text[]', 'pg_catalog.text', $$''$$),
        ('quote_literal', 'pg_catalog.regtype', 'pg_catalog.text', $$''$$),
        ('quote_nullable', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('to_regtype', 'pg_catalog.text', 'pg_catalog.regtype', $$'pg_catalog.int4'$$),
        ('to_regclass', 'pg_catalog.text', 'pg_catalog.regclass', $$'hostile.ran'$$),
        ('to_regnamespace', 'pg_catalog.text', 'pg_catalog.regnamespace', $$'hostile'$$),
        ('to_regprocedure', 'pg_catalog.text', 'pg_catalog.regprocedure', $$'hostile.record(pg_catalog.text)'$$),
        ('format_type', 'pg_catalog.oid, pg_catalog.int4', 'pg_catalog.text', $$''$$),
        ('lower', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('upper', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('length', 'pg_catalog.text', 'pg_catalog.int4', '0'),
        ('replace', 'pg_catalog.text, pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('starts_with', 'pg_catalog.text, pg_catalog.text', 'boolean', 'true'),
        ('text', 'pg_catalog.int2', 'pg_catalog.text', $$''$$),
        ('text', 'pg_catalog.oid', 'pg_catalog.text', $$''$$),
        ('text', 'pg_catalog.regtype', 'pg_catalog.text', $$''$$),
        ('int2', 'pg_catalog.int4', 'pg_catalog.int2', '0'),
        ('int2', 'pg_catalog.int8', 'pg_catalog.int2', '0'),
        ('int4', 'pg_catalog.int2', 'pg_catalog.int4', '0'),
        ('int4', 'pg_catalog.int8', 'pg_catalog.int4', '0'),
        ('int8', 'pg_catalog.int2', 'pg_catalog.int8', '0'),
        ('int8', 'pg_catalog.int4', 'pg_catalog.int8', '0'),
        ('unnest', 'pg_catalog.int2[]', 'SETOF pg_catalog.int2', ''),
        ('unnest', 'pg_catalog.text[]', 'SETOF pg_catalog.text', ''),
        ('unnest', 'pg_catalog.oid[]', 'SETOF pg_catalog.oid', ''),
        ('unnest', 'pg_catalog.regtype[]', 'SETOF pg_catalog.regtype', ''),
        ('generate_series', 'pg_catalog.int2, pg_catalog.int2', 'SETOF pg_catalog.int4', ''),
        ('generate_series', 'pg_catalog.int4, pg_catalog.int4', 'SETOF pg_catalog.int4', ''),
        ('generate_series', 'pg_catalog.int4, pg_catalog.int4, pg_catalog.int4', 'SETOF pg_catalog.int4', ''),
        ('generate_series', 'pg_catalog.int8, pg_catalog.int8', 'SETOF pg_catalog.int8', ''),
        ('cardinality', 'pg_catalog.int2[]', 'pg_catalog.int4', '0'),
        ('cardinality', 'pg_catalog.text[]', 'pg_catalog.int4', '0'),
        ('array_ndims', 'pg_catalog.int2[]', 'pg_catalog.int4', '0'),
        ('array_ndims', 'pg_catalog.text[]', 'pg_catalog.int4', '0'),
        ('array_length', 'pg_catalog.int2[], pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('array_length', 'pg_catalog.text[], pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('array_position', 'pg_catalog.int2[], pg_catalog.int2', 'pg_catalog.int4', '1'),
        ('array_position', 'pg_catalog.text[], pg_catalog.text', 'pg_catalog.int4', '1'),
        ('array_append', 'pg_catalog.int2[], pg_catalog.int2', 'pg_catalog.int2[]', $$'{}'$$),
        ('array_cat', 'pg_catalog.int2[], pg_catalog.int2[]', 'pg_catalog.int2[]', $$'{}'$$),
        ('array_to_string', 'pg_catalog.int2[], pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('array_to_string', 'pg_catalog.text[], pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('string_to_array', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.text[]', $$'{}'$$),
        ('pg_has_role', 'pg_catalog.name, pg_catalog.name, pg_catalog.text', 'boolean', 'true'),
        ('pg_has_role', 'pg_catalog.name, pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('pg_has_role', 'pg_catalog.oid, pg_catalog.name, pg_catalog.text', 'boolean', 'true'),
        ('pg_has_role', 'pg_catalog.oid, pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('pg_has_role', 'pg_catalog.name, pg_catalog.text', 'boolean', 'true'),
        ('pg_has_role', 'pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('has_table_privilege', 'pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('has_type_privilege', 'pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('has_schema_privilege', 'pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('has_function_privilege', 'pg_catalog.oid, pg_catalog.text', 'boolean', 'true'),
        ('pg_my_temp_schema', '', 'pg_catalog.oid', $$'pg_catalog'::pg_catalog.regnamespace$$),
        ('pg_is_other_temp_schema', 'pg_catalog.oid', 'boolean', 'true'),
        ('nextval', 'pg_catalog.regclass', 'pg_catalog.int8', '0'),
        ('currval', 'pg_catalog.regclass', 'pg_catalog.int8', '0'),
        ('setval', 'pg_catalog.regclass, pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('setval', 'pg_catalog.regclass, pg_catalog.int8, boolean', 'pg_catalog.int8', '0'),
        ('pg_sequence_last_value', 'pg_catalog.regclass', 'pg_catalog.int8', '0'),
        ('pg_advisory_xact_lock', 'pg_catalog.int8', 'void', ''),
        ('pg_advisory_xact_lock', 'pg_catalog.int4, pg_catalog.int4', 'void', ''),
        ('pg_try_advisory_xact_lock', 'pg_catalog.int8', 'boolean', 'true'),
        ('pg_event_trigger_ddl_commands', '',
         'TABLE (classid pg_catalog.oid, objid pg_catalog.oid, objsubid pg_catalog.int4, command_tag pg_catalog.text,'
         ' object_type pg_catalog.text, schema_name pg_catalog.text, object_identity pg_catalog.text,'
         ' in_extension boolean)', ''),
        ('pg_event_trigger_dropped_objects', '',
         'TABLE (classid pg_catalog.oid, objid pg_catalog.oid, objsubid pg_catalog.int4, original boolean,'
         ' normal boolean, is_temporary boolean, object_type pg_catalog.text, schema_name pg_catalog.text,'
         ' object_name pg_catalog.text, object_identity pg_catalog.text, address_names pg_catalog.text[],'
         ' address_args pg_catalog.text[])', ''),
        ('current_setting', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('current_setting', 'pg_catalog.text, boolean', 'pg_catalog.text', $$''$$),
        ('set_config', 'pg_catalog.text, pg_catalog.text, boolean', 'pg_catalog.text', $$''$$),
        ('current_schemas', 'boolean', 'pg_catalog.name[]', $$'{}'$$),
        ('pg_get_constraintdef', 'pg_catalog.oid', 'pg_catalog.text', $$''$$),
        ('pg_get_userbyid', 'pg_catalog.oid', 'pg_catalog.name', $$''$$),
        -- What partition maintenance could name: time arithmetic, bounds,
        -- the partition tree, sizes.  (Not the extension's own functions: the
        -- probes call those by their bare names on purpose.)
        ('date_trunc', 'pg_catalog.text, pg_catalog.timestamptz', 'pg_catalog.timestamptz', $$'epoch'$$),
        ('date_trunc', 'pg_catalog.text, pg_catalog.timestamptz, pg_catalog.text', 'pg_catalog.timestamptz', $$'epoch'$$),
        ('date_trunc', 'pg_catalog.text, pg_catalog.timestamp', 'pg_catalog.timestamp', $$'epoch'$$),
        ('to_char', 'pg_catalog.timestamptz, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('to_char', 'pg_catalog.timestamp, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('timezone', 'pg_catalog.text, pg_catalog.timestamptz', 'pg_catalog.timestamp', $$'epoch'$$),
        ('timezone', 'pg_catalog.text, pg_catalog.timestamp', 'pg_catalog.timestamptz', $$'epoch'$$),
        ('generate_series', 'pg_catalog.timestamptz, pg_catalog.timestamptz, pg_catalog.interval',
         'SETOF pg_catalog.timestamptz', ''),
        ('make_interval', 'pg_catalog.int4, pg_catalog.int4, pg_catalog.int4, pg_catalog.int4',
         'pg_catalog.interval', $$'0'$$),
        ('pg_get_expr', 'pg_catalog.pg_node_tree, pg_catalog.oid', 'pg_catalog.text', $$''$$),
        ('pg_get_expr', 'pg_catalog.pg_node_tree, pg_catalog.oid, boolean', 'pg_catalog.text', $$''$$),
        ('pg_get_partkeydef', 'pg_catalog.oid', 'pg_catalog.text', $$''$$),
        ('pg_get_indexdef', 'pg_catalog.oid', 'pg_catalog.text', $$''$$),
        ('pg_partition_tree', 'pg_catalog.regclass',
         'TABLE (relid pg_catalog.regclass, parentrelid pg_catalog.regclass, isleaf boolean, level pg_catalog.int4)', ''),
        ('pg_partition_ancestors', 'pg_catalog.regclass', 'SETOF pg_catalog.regclass', ''),
        ('pg_partition_root', 'pg_catalog.regclass', 'pg_catalog.regclass', $$'hostile.ran'$$),
        ('pg_relation_size', 'pg_catalog.regclass', 'pg_catalog.int8', '0'),
        ('pg_total_relation_size', 'pg_catalog.regclass', 'pg_catalog.int8', '0'),
        ('pg_table_size', 'pg_catalog.regclass', 'pg_catalog.int8', '0')
      ) AS v(name, args, result, wrong)
    LOOP
        i := i + 1;
        EXECUTE format($f$CREATE FUNCTION hostile.%I(%s) RETURNS %s LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM hostile.record(%L);
    RETURN %s;
END
$body$$f$, f.name, f.args, f.result,
              format('function %s(%s)', f.name, replace(f.args, 'pg_catalog.', '')), f.wrong);
    END LOOP;
    RAISE NOTICE 'hostile functions: %', i;
END
$gen$;

-- Aggregates (max(int2) is above): name, input types, state and result
-- type, the wrong result.
DO $gen$
DECLARE
    a record;
    i integer := 0;
BEGIN
    FOR a IN SELECT * FROM (VALUES
        ('max', 'pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('max', 'pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('max', 'pg_catalog.oid', 'pg_catalog.oid', '0'),
        ('max', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('min', 'pg_catalog.int2', 'pg_catalog.int2', '0'),
        ('min', 'pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('min', 'pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('min', 'pg_catalog.oid', 'pg_catalog.oid', '0'),
        ('min', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('sum', 'pg_catalog.int2', 'pg_catalog.int8', '0'),
        ('sum', 'pg_catalog.int4', 'pg_catalog.int8', '0'),
        ('sum', 'pg_catalog.int8', 'pg_catalog.numeric', '0'),
        ('count', '*', 'pg_catalog.int8', '0'),
        ('count', 'pg_catalog.int2', 'pg_catalog.int8', '0'),
        ('count', 'pg_catalog.int4', 'pg_catalog.int8', '0'),
        ('count', 'pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('count', 'pg_catalog.text', 'pg_catalog.int8', '0'),
        ('count', 'pg_catalog.oid', 'pg_catalog.int8', '0'),
        ('count', 'pg_catalog.regtype', 'pg_catalog.int8', '0'),
        ('string_agg', 'pg_catalog.text, pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('array_agg', 'pg_catalog.int2', 'pg_catalog.int2[]', $$'{}'$$),
        ('array_agg', 'pg_catalog.int4', 'pg_catalog.int4[]', $$'{}'$$),
        ('array_agg', 'pg_catalog.int8', 'pg_catalog.int8[]', $$'{}'$$),
        ('array_agg', 'pg_catalog.text', 'pg_catalog.text[]', $$'{}'$$),
        ('array_agg', 'pg_catalog.oid', 'pg_catalog.oid[]', $$'{}'$$),
        ('array_agg', 'pg_catalog.regtype', 'pg_catalog.regtype[]', $$'{}'$$),
        ('bool_and', 'boolean', 'boolean', 'true'),
        ('bool_or', 'boolean', 'boolean', 'true')
      ) AS v(name, args, stype, wrong)
    LOOP
        i := i + 1;
        EXECUTE format($f$CREATE FUNCTION hostile.%I(%s) RETURNS %s LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM hostile.record(%L);
    RETURN %s;
END
$body$$f$, 'agg_state_' || i,
              a.stype || CASE a.args WHEN '*' THEN '' ELSE ', ' || a.args END, a.stype,
              format('aggregate %s(%s)', a.name, replace(a.args, 'pg_catalog.', '')), a.wrong);
        EXECUTE format('CREATE AGGREGATE hostile.%I(%s) (SFUNC = hostile.%I, STYPE = %s)',
                       a.name, a.args, 'agg_state_' || i, a.stype);
    END LOOP;
    RAISE NOTICE 'hostile aggregates: %', i + 1;
END
$gen$;

-- Operators on the types the extension handles, alike and mixed.
DO $gen$
DECLARE
    t record;
    op text;
    i integer := 0;
BEGIN
    -- Comparisons, "= ANY" and IN included: they all use the "=" found by name.
    FOR t IN SELECT * FROM (VALUES
        ('pg_catalog.int2', 'pg_catalog.int2'), ('pg_catalog.int4', 'pg_catalog.int4'),
        ('pg_catalog.int8', 'pg_catalog.int8'), ('pg_catalog.text', 'pg_catalog.text'),
        ('pg_catalog.oid', 'pg_catalog.oid'), ('pg_catalog.regtype', 'pg_catalog.regtype'),
        ('pg_catalog.regnamespace', 'pg_catalog.regnamespace'), ('pg_catalog.regclass', 'pg_catalog.regclass'),
        ('pg_catalog.name', 'pg_catalog.name'), ('boolean', 'boolean'),
        ('pg_catalog.int2[]', 'pg_catalog.int2[]'), ('pg_catalog.text[]', 'pg_catalog.text[]'),
        ('pg_catalog.oid[]', 'pg_catalog.oid[]'),
        ('pg_catalog.int2', 'pg_catalog.int4'), ('pg_catalog.int4', 'pg_catalog.int2'),
        ('pg_catalog.int2', 'pg_catalog.int8'), ('pg_catalog.int8', 'pg_catalog.int2'),
        ('pg_catalog.int4', 'pg_catalog.int8'), ('pg_catalog.int8', 'pg_catalog.int4'),
        ('pg_catalog.name', 'pg_catalog.text'), ('pg_catalog.text', 'pg_catalog.name'),
        ('pg_catalog.regtype', 'pg_catalog.oid'), ('pg_catalog.oid', 'pg_catalog.regtype'),
        ('pg_catalog.regnamespace', 'pg_catalog.oid'), ('pg_catalog.oid', 'pg_catalog.regnamespace'),
        ('pg_catalog.timestamptz', 'pg_catalog.timestamptz'), ('pg_catalog.timestamp', 'pg_catalog.timestamp'),
        ('pg_catalog.date', 'pg_catalog.date'), ('pg_catalog.interval', 'pg_catalog.interval'),
        ('pg_catalog.timestamptz', 'pg_catalog.timestamp'), ('pg_catalog.timestamp', 'pg_catalog.timestamptz'),
        ('pg_catalog.date', 'pg_catalog.timestamptz'), ('pg_catalog.timestamptz', 'pg_catalog.date')
      ) AS v(l, r)
    LOOP
        FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>=']
        LOOP
            i := i + 1;
            EXECUTE format($f$CREATE FUNCTION hostile.%I(%s, %s) RETURNS boolean LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM hostile.record(%L);
    RETURN true;
END
$body$$f$, 'op_' || i, t.l, t.r,
                  format('operator %s(%s,%s)', op, replace(t.l, 'pg_catalog.', ''), replace(t.r, 'pg_catalog.', '')));
            EXECUTE format('CREATE OPERATOR hostile.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = hostile.%I)',
                           op, t.l, t.r, 'op_' || i);
        END LOOP;
    END LOOP;

    -- Everything else: operator, left (NULL for prefix), right, result, wrong result.
    FOR t IN SELECT * FROM (VALUES
        ('+', 'pg_catalog.int2', 'pg_catalog.int2', 'pg_catalog.int2', '0'),
        ('+', 'pg_catalog.int4', 'pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('+', 'pg_catalog.int8', 'pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('+', 'pg_catalog.int2', 'pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('+', 'pg_catalog.int4', 'pg_catalog.int2', 'pg_catalog.int4', '0'),
        ('+', 'pg_catalog.int4', 'pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('+', 'pg_catalog.int8', 'pg_catalog.int4', 'pg_catalog.int8', '0'),
        ('-', 'pg_catalog.int2', 'pg_catalog.int2', 'pg_catalog.int2', '0'),
        ('-', 'pg_catalog.int4', 'pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('-', 'pg_catalog.int8', 'pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('-', 'pg_catalog.int2', 'pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('-', 'pg_catalog.int4', 'pg_catalog.int2', 'pg_catalog.int4', '0'),
        ('-', 'pg_catalog.int4', 'pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('-', 'pg_catalog.int8', 'pg_catalog.int4', 'pg_catalog.int8', '0'),
        ('-', NULL, 'pg_catalog.int2', 'pg_catalog.int2', '0'),
        ('-', NULL, 'pg_catalog.int4', 'pg_catalog.int4', '0'),
        ('-', NULL, 'pg_catalog.int8', 'pg_catalog.int8', '0'),
        ('||', 'pg_catalog.text', 'pg_catalog.text', 'pg_catalog.text', $$''$$),
        ('||', 'pg_catalog.text', 'pg_catalog.int2', 'pg_catalog.text', $$''$$),
        ('||', 'pg_catalog.text', 'pg_catalog.int4', 'pg_catalog.text', $$''$$),
        ('||', 'pg_catalog.text', 'pg_catalog.int8', 'pg_catalog.text', $$''$$),
        ('||', 'pg_catalog.text', 'pg_catalog.oid', 'pg_catalog.text', $$''$$),
        ('||', 'pg_catalog.text', 'pg_catalog.regtype', 'pg_catalog.text', $$''$$),
        ('||', 'pg_catalog.text', 'pg_catalog.name', 'pg_catalog.text', $$''$$),
        ('||', 'pg_catalog.text[]', 'pg_catalog.text', 'pg_catalog.text[]', $$'{}'$$),
        ('||', 'pg_catalog.text', 'pg_catalog.text[]', 'pg_catalog.text[]', $$'{}'$$),
        ('||', 'pg_catalog.text[]', 'pg_catalog.text[]', 'pg_catalog.text[]', $$'{}'$$),
        ('||', 'pg_catalog.int2[]', 'pg_catalog.int2', 'pg_catalog.int2[]', $$'{}'$$),
        ('||', 'pg_catalog.int2', 'pg_catalog.int2[]', 'pg_catalog.int2[]', $$'{}'$$),
        ('||', 'pg_catalog.int2[]', 'pg_catalog.int2[]', 'pg_catalog.int2[]', $$'{}'$$),
        ('@>', 'pg_catalog.int2[]', 'pg_catalog.int2[]', 'boolean', 'true'),
        ('@>', 'pg_catalog.text[]', 'pg_catalog.text[]', 'boolean', 'true'),
        ('@>', 'pg_catalog.oid[]', 'pg_catalog.oid[]', 'boolean', 'true'),
        ('<@', 'pg_catalog.int2[]', 'pg_catalog.int2[]', 'boolean', 'true'),
        ('<@', 'pg_catalog.text[]', 'pg_catalog.text[]', 'boolean', 'true'),
        ('&&', 'pg_catalog.int2[]', 'pg_catalog.int2[]', 'boolean', 'true'),
        ('&&', 'pg_catalog.text[]', 'pg_catalog.text[]', 'boolean', 'true'),
        ('&&', 'pg_catalog.oid[]', 'pg_catalog.oid[]', 'boolean', 'true'),
        ('~~', 'pg_catalog.text', 'pg_catalog.text', 'boolean', 'true'),
        ('~~', 'pg_catalog.name', 'pg_catalog.text', 'boolean', 'true'),
        ('!~~', 'pg_catalog.text', 'pg_catalog.text', 'boolean', 'true'),
        ('~', 'pg_catalog.text', 'pg_catalog.text', 'boolean', 'true'),
        ('~', 'pg_catalog.name', 'pg_catalog.text', 'boolean', 'true'),
        ('+', 'pg_catalog.timestamptz', 'pg_catalog.interval', 'pg_catalog.timestamptz', $$'epoch'$$),
        ('-', 'pg_catalog.timestamptz', 'pg_catalog.interval', 'pg_catalog.timestamptz', $$'epoch'$$),
        ('-', 'pg_catalog.timestamptz', 'pg_catalog.timestamptz', 'pg_catalog.interval', $$'0'$$),
        ('+', 'pg_catalog.timestamp', 'pg_catalog.interval', 'pg_catalog.timestamp', $$'epoch'$$),
        ('-', 'pg_catalog.timestamp', 'pg_catalog.interval', 'pg_catalog.timestamp', $$'epoch'$$),
        ('+', 'pg_catalog.date', 'pg_catalog.int4', 'pg_catalog.date', $$'epoch'$$),
        ('+', 'pg_catalog.date', 'pg_catalog.interval', 'pg_catalog.timestamp', $$'epoch'$$),
        ('*', 'pg_catalog.interval', 'pg_catalog.float8', 'pg_catalog.interval', $$'0'$$),
        ('*', 'pg_catalog.int4', 'pg_catalog.interval', 'pg_catalog.interval', $$'0'$$)
      ) AS v(op, l, r, result, wrong)
    LOOP
        i := i + 1;
        EXECUTE format($f$CREATE FUNCTION hostile.%I(%s) RETURNS %s LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM hostile.record(%L);
    RETURN %s;
END
$body$$f$, 'op_' || i, concat_ws(', ', t.l, t.r), t.result,
                  format('operator %s(%s)', t.op,
                         replace(concat_ws(',', coalesce(t.l, 'none'), t.r), 'pg_catalog.', '')), t.wrong);
        IF t.l IS NULL THEN
            EXECUTE format('CREATE OPERATOR hostile.%s (RIGHTARG = %s, FUNCTION = hostile.%I)',
                           t.op, t.r, 'op_' || i);
        ELSE
            EXECUTE format('CREATE OPERATOR hostile.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = hostile.%I)',
                           t.op, t.l, t.r, 'op_' || i);
        END IF;
    END LOOP;
    RAISE NOTICE 'hostile operators: %', i;
END
$gen$;

-- Relations named like what the extension reads: each view records that it
-- was read (once, through an uncorrelated subquery) and returns nothing, or
-- a forged label.  A sequence named like the generator's mark must keep its
-- value.
DO $gen$
DECLARE
    rel text;
    cols text;
BEGIN
    FOREACH rel IN ARRAY ARRAY['pg_type', 'pg_class', 'pg_namespace', 'pg_proc', 'pg_constraint',
                               'pg_depend', 'pg_extension', 'pg_attribute', 'pg_roles', 'pg_sequence',
                               'pg_settings', 'pg_database', 'pg_inherits', 'pg_partitioned_table',
                               'pg_index', 'pg_locks', 'pg_policy', 'pg_cursors']
    LOOP
        -- Same columns, except those of a pseudo-type, which a view cannot have.
        SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_attribute a
         WHERE a.attrelid = format('pg_catalog.%I', rel)::regclass AND a.attnum > 0
           AND NOT a.attisdropped AND a.atttypid <> 'anyarray'::regtype;
        EXECUTE format('CREATE VIEW hostile.%I AS SELECT %s FROM pg_catalog.%I x WHERE (SELECT NOT hostile.record(%L))',
                       rel, cols, rel, 'relation ' || rel);
    END LOOP;
    FOREACH rel IN ARRAY ARRAY['enum_label', 'enum_labels']
    LOOP
        EXECUTE format($v$CREATE VIEW hostile.%I AS
            SELECT 'public.gb_channel_type'::pg_catalog.regtype AS enum_type, 9::pg_catalog.int2 AS code,
                   'pwned'::pg_catalog.text AS label, true AS builtin
             WHERE (SELECT hostile.record(%L))$v$, rel, 'relation ' || rel);
    END LOOP;
    -- The partition catalog: the same columns, no row, and a note that it was read.
    FOREACH rel IN ARRAY ARRAY['partition_config', 'partition_tenant', 'partition_status', 'tenant_isolation']
    LOOP
        EXECUTE format('CREATE VIEW hostile.%I AS SELECT x.* FROM gb_scale.%I x WHERE (SELECT NOT hostile.record(%L))',
                       rel, rel, 'relation ' || rel);
    END LOOP;
    GRANT SELECT ON ALL TABLES IN SCHEMA hostile TO PUBLIC;
END
$gen$;
CREATE SEQUENCE hostile.id_mark;
SELECT pg_catalog.setval('hostile.id_mark', 42);

-- Types named like the ones the extension names in SQL (keywords such as
-- smallint, integer, bigint and boolean always mean pg_catalog's): a domain
-- whose CHECK records that a value was cast to it.
DO $gen$
DECLARE
    typ text;
BEGIN
    FOREACH typ IN ARRAY ARRAY['text', 'name', 'oid', 'regtype', 'regclass', 'regnamespace', 'regproc',
                               'regprocedure', 'int2', 'int4', 'int8', 'bool', 'char', 'timestamptz',
                               'timestamp', 'date', 'interval', 'pg_node_tree']
    LOOP
        EXECUTE format('CREATE DOMAIN hostile.%I AS pg_catalog.%I CHECK (hostile.record(%L))',
                       typ, typ, 'type ' || typ);
    END LOOP;
END
$gen$;

-- Casts need ownership of one of the types: mallory cannot add one between
-- built-in types.
CREATE CAST (pg_catalog.int2 AS pg_catalog.text) WITH FUNCTION hostile.text(pg_catalog.int2);
RESET SESSION AUTHORIZATION;

-- What the trap holds, by kind.
SELECT kind, count(*)
  FROM (SELECT CASE p.prokind WHEN 'a' THEN 'aggregate' ELSE 'function' END AS kind
          FROM pg_proc p WHERE p.pronamespace = 'hostile'::regnamespace
        UNION ALL
        SELECT 'operator' FROM pg_operator o WHERE o.oprnamespace = 'hostile'::regnamespace
        UNION ALL
        SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' ELSE 'table' END
          FROM pg_class c WHERE c.relnamespace = 'hostile'::regnamespace AND c.relkind IN ('r', 'v', 'S')
        UNION ALL
        SELECT 'domain' FROM pg_type t WHERE t.typnamespace = 'hostile'::regnamespace AND t.typtype = 'd') k
 GROUP BY kind ORDER BY kind COLLATE "C";

------------------------------------------------------------------------------
-- The calls
------------------------------------------------------------------------------
-- Each probe is run once per phase: %1$s is the phase (for names of objects
-- a probe creates), %2$s the schema the caller may create in.  A query's rows
-- are kept as text; an error keeps its SQLSTATE and message.  Probes name
-- only extension functions and pg_catalog-qualified objects, so that what
-- runs hostile code can only be the extension.
CREATE TABLE sec_sp.probe (
    ord      integer PRIMARY KEY,
    stmt     text NOT NULL,
    is_query boolean NOT NULL DEFAULT true,
    compare  boolean NOT NULL DEFAULT true
);
CREATE TABLE sec_sp.result (
    phase    text NOT NULL,
    ord      integer NOT NULL,
    value    text,
    sqlstate text,
    message  text
);
GRANT SELECT ON sec_sp.probe TO PUBLIC;
GRANT INSERT ON sec_sp.result TO PUBLIC;

INSERT INTO sec_sp.probe (ord, stmt) VALUES
    -- IDs
    (10, $$SELECT gb_id_timestamp(383959995403735083)$$),
    (11, $$SELECT gb_id_shard(383959995403735083)$$),
    (12, $$SELECT gb_id_sequence(383959995403735083)$$),
    (13, $$SELECT * FROM gb_id_decode(383959995403735083)$$),
    (14, $$SELECT gb_id_from_time('2025-06-15 12:34:56.789+00', 42::smallint)$$),
    (15, $$SELECT gb_id_from_time('2030-01-01 00:00:00+00')$$),
    (16, $$SELECT gb_id_from_time('2023-12-31 23:59:59+00')$$),
    (17, $$SELECT gb_id_timestamp('-1'::bigint)$$),
    (18, $$SELECT gb_id_shard(gb_next_id())$$),
    (19, $$SELECT coalesce((SELECT pg_catalog.max(s.last_id) FROM gb_id_generator_status() s), 0) OPERATOR(pg_catalog.<) gb_next_id()$$),
    (20, $$SELECT pg_catalog.count(*) FROM gb_next_ids(3)$$),
    (21, $$SELECT s.shard_id, s.database, s.clock_regressions, s.clock_floor_active
            FROM gb_id_generator_status() s WHERE s.shard_id OPERATOR(pg_catalog.=) 1$$),
    -- Built-in enums
    (30, $$SELECT gb_label(9::gb_channel_type)$$),
    (31, $$SELECT gb_label(42::gb_channel_type)$$),
    (32, $$SELECT gb_enum_label('gb_message_role', 10::smallint)$$),
    (33, $$SELECT gb_enum_label('gb_message_role', 5::smallint)$$),
    (34, $$SELECT gb_enum_code('gb_task_status', 'waiting_approval')$$),
    (35, $$SELECT gb_enum_code('gb_message_role', 'bot')$$),
    (36, $$SELECT * FROM gb_enum_labels('gb_message_role')$$),
    (37, $$SELECT v.enum_type, v.code, v.label FROM gb_scale.enum_labels v
            WHERE v.enum_type OPERATOR(pg_catalog.=) 'gb_plan_tier'::pg_catalog.regtype ORDER BY v.code$$),
    (38, $$SELECT gb_label(1::smallint)$$),
    (39, $$SELECT * FROM gb_enum_labels('integer')$$),
    (40, $$SELECT gb_enum_add('gb_channel_type', 'discord')$$),
    (41, $$SELECT gb_enum_rename('gb_message_role', 'user', 'human')$$),
    -- An enum of the caller's own
    (50, $$SELECT pg_catalog.replace(gb_enum_create('%2$s.%1$s_ticket', ARRAY['open', 'pending', 'closed'])::pg_catalog.text, '%1$s', 'PHASE')$$),
    (51, $$SELECT pg_catalog.replace(gb_enum_create('%2$s.%1$s_prio', ARRAY['low', 'high'], ARRAY[10, 20]::smallint[])::pg_catalog.text, '%1$s', 'PHASE')$$),
    (52, $$SELECT pg_catalog.replace(gb_enum_create('%2$s."%1$s Mixed Case"', ARRAY['x'])::pg_catalog.text, '%1$s', 'PHASE')$$),
    (53, $$SELECT gb_enum_create('%2$s.%1$s_bad', ARRAY['a', 'a'])$$),
    (54, $$SELECT * FROM gb_enum_labels('%2$s.%1$s_ticket')$$),
    (55, $$SELECT gb_enum_add('%2$s.%1$s_ticket', 'reopened')$$),
    (56, $$SELECT gb_enum_add('%2$s.%1$s_ticket', 'archived', 10::smallint)$$),
    (57, $$SELECT gb_enum_add('%2$s.%1$s_ticket', 'other', 10::smallint)$$),
    (58, $$SELECT gb_enum_add('%2$s.%1$s_ticket', 'open')$$),
    (59, $$SELECT gb_enum_rename('%2$s.%1$s_ticket', 'pending', 'waiting')$$),
    (60, $$SELECT gb_enum_rename('%2$s.%1$s_ticket', 'gone', 'x')$$),
    (61, $$SELECT gb_label(10::%2$s.%1$s_ticket)$$),
    (62, $$SELECT gb_label(1::%2$s.%1$s_ticket)$$),
    (63, $$SELECT gb_enum_code('%2$s.%1$s_ticket', 'reopened')$$),
    (64, $$SELECT gb_enum_label('%2$s.%1$s_prio', 20::smallint)$$),
    (65, $$SELECT gb_label(0::%2$s."%1$s Mixed Case")$$),
    (66, $$SELECT 5::%2$s.%1$s_ticket$$),
    (67, $$SELECT * FROM gb_enum_labels('%2$s.%1$s_ticket')$$),
    (68, $$SELECT v.code, v.label FROM gb_scale.enum_labels v
            WHERE v.enum_type OPERATOR(pg_catalog.=) '%2$s.%1$s_ticket'::pg_catalog.regtype ORDER BY v.code$$),
    -- (Deparsed under the caller's search_path: pg_catalog. prefixes vary.)
    (69, $$SELECT pg_catalog.replace(pg_catalog.pg_get_constraintdef(c.oid), 'pg_catalog.', '') FROM pg_catalog.pg_constraint c
            WHERE c.contypid OPERATOR(pg_catalog.=) '%2$s.%1$s_ticket'::pg_catalog.regtype$$),
    (71, $$SELECT pg_catalog.count(*) FROM gb_scale.enum_label l
            WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) l.enum_type)$$);
-- Partitions: a RANGE table with hash buckets and a default partition in
-- Berlin time, a LIST table with a dedicated tenant; every function, the
-- procedure (a superuser's pass includes mallory's tables, run as mallory),
-- the catalog and bad input.  The clock is gb_scale.test_now, set by the
-- superuser for the whole session below.
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (90, $$CREATE TABLE %2$s.%1$s_ev (id bigint NOT NULL, tenant bigint NOT NULL, at pg_catalog.timestamptz NOT NULL,
                                        UNIQUE (id, tenant, at))
            PARTITION BY RANGE (at)$$, false),
    (91, $$CREATE TABLE %2$s."%1$s Chat" ("Tenant" bigint NOT NULL, "At" pg_catalog.timestamptz NOT NULL)
            PARTITION BY LIST ("Tenant")$$, false),
    (92, $$CREATE TABLE %2$s.%1$s_ids (id bigint PRIMARY KEY) PARTITION BY RANGE (id)$$, false),
    (93, $$CREATE TABLE %2$s.%1$s_days (day pg_catalog.date NOT NULL) PARTITION BY RANGE (day)$$, false),
    (94, $$CREATE TABLE %2$s.%1$s_plain (at pg_catalog.timestamptz NOT NULL)$$, false),
    (96, $$INSERT INTO %2$s.%1$s_ev VALUES (1, 5, '2025-03-11 10:00:00+00'), (2, 6, '2025-04-20 10:00:00+00')$$, false),
    (98, $$INSERT INTO %2$s."%1$s Chat" VALUES (5, '2025-03-11 10:00:00+00'), (6, '2025-03-12 10:00:00+00')$$, false),
    (116, $$CALL gb_run_maintenance('%2$s.%1$s_ev')$$, false),
    (117, $$CALL gb_run_maintenance()$$, false),
    (130, $$DROP TABLE %2$s.%1$s_days$$, false);
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (95, $$SELECT gb_partition_create('%2$s.%1$s_ev', 'at', '1 day', tenant_column => 'tenant', tenant_buckets => 2,
                                       default_partition => true, time_zone => 'Europe/Berlin')$$),
    (97, $$SELECT gb_partition_create('%2$s."%1$s Chat"', 'At', '1 month', tenant_column => 'Tenant', profile => 'sessions')$$),
    (99, $$SELECT gb_partition_create('%2$s.%1$s_ids', 'id', '1 week', premake => '2 weeks', retention => '4 weeks')$$),
    (100, $$SELECT gb_partition_create('%2$s.%1$s_days', 'day', NULL, profile => 'analytics')$$),
    (101, $$SELECT gb_tenant_dedicate('%2$s."%1$s Chat"', 5)$$),
    (102, $$SELECT gb_tenant_retention('%2$s."%1$s Chat"', 5, '1 month')$$),
    (103, $$SELECT gb_partition_ensure('%2$s.%1$s_ev', '2025-03-01 00:00:00+00', '2025-03-03 00:00:00+00')$$),
    (104, $$SELECT gb_partition_ensure('%2$s.%1$s_ids', '2025-03-01 00:00:00+00', '2025-03-03 00:00:00+00')$$),
    (105, $$SELECT gb_partition_retention('%2$s.%1$s_ev', '3 days', 'archive', '%2$s')$$),
    (106, $$SELECT gb_partition_retention('%2$s."%1$s Chat"', '3 months', 'detach')$$),
    (110, $$SELECT pg_catalog.replace(l.partition::pg_catalog.text, '%1$s', 'PHASE'), l.tenant_id, l.bucket, l.is_default,
                   l.from_time, l.to_time, l.bounds
              FROM gb_partition_list('%2$s.%1$s_ev') l ORDER BY l.from_time, l.bucket$$),
    (111, $$SELECT pg_catalog.replace(l.partition::pg_catalog.text, '%1$s', 'PHASE'), l.tenant_id, l.from_time, l.to_time
              FROM gb_partition_list('%2$s."%1$s Chat"') l ORDER BY l.tenant_id, l.from_time$$),
    (112, $$SELECT l.from_time, l.to_time, l.bounds FROM gb_partition_list('%2$s.%1$s_ids') l ORDER BY l.from_time$$),
    (113, $$SELECT s.layout, s.control, s.control_type, s.granularity, s.time_zone, s.partitions, s.oldest_bound,
                   s.newest_bound, s.default_rows, s.retention, s.retention_mode, s.tenant_buckets, s.dedicated_tenants,
                   s.last_error
              FROM gb_scale.partition_status s
             WHERE s.parent OPERATOR(pg_catalog.=) '%2$s.%1$s_ev'::pg_catalog.regclass$$),
    (114, $$SELECT c.layout, c.granularity, c.premake, c.retention, c.retention_mode, c.archive_schema,
                   c.tenant_buckets, c.default_partition, c.time_zone, c.profile
              FROM gb_scale.partition_config c
             WHERE c.parent OPERATOR(pg_catalog.=) '%2$s."%1$s Chat"'::pg_catalog.regclass$$),
    (115, $$SELECT t.tenant_id, t.retention, pg_catalog.replace(t.subtree::pg_catalog.text, '%1$s', 'PHASE')
              FROM gb_scale.partition_tenant t
             WHERE t.parent OPERATOR(pg_catalog.=) '%2$s."%1$s Chat"'::pg_catalog.regclass$$),
    (118, $$SELECT pg_catalog.replace(e.tableoid::pg_catalog.regclass::pg_catalog.text, '%1$s', 'PHASE'), e.id
              FROM %2$s.%1$s_ev e ORDER BY e.id$$),
    (119, $$SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) '%2$s'::pg_catalog.regnamespace
               AND c.relname OPERATOR(pg_catalog.~~) '%1$s\_ev\_p2025030%%'$$),
    (120, $$SELECT gb_partition_forget('%2$s.%1$s_ids')$$),
    -- Bad input: the same SQLSTATE on either search_path.
    (121, $$SELECT gb_partition_create('%2$s.%1$s_plain', 'at', '1 day')$$),
    (122, $$SELECT gb_partition_create('%2$s.%1$s_ev', 'at', '1 day')$$),
    (123, $$SELECT gb_partition_create('%2$s.%1$s_ids', 'id', '2 days')$$),
    (124, $$SELECT gb_partition_create('%2$s.%1$s_ids', 'id', '1 day', time_zone => 'Nowhere/Nothing')$$),
    (125, $$SELECT gb_partition_create('%2$s.%1$s_ids', 'nope', '1 day')$$),
    (126, $$SELECT gb_partition_retention('%2$s.%1$s_ev', '3 days', 'shred')$$),
    (127, $$SELECT gb_tenant_dedicate('%2$s.%1$s_ev', 5)$$),
    (128, $$SELECT gb_partition_forget('%2$s.%1$s_ids')$$),
    (129, $$SELECT gb_partition_create('%2$s.%1$s_plain', 'at', '1 day', profile => 'nope')$$),
    -- Dropping a registered table takes its configuration along.
    (131, $$SELECT pg_catalog.count(*) FROM gb_scale.partition_config c
             WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class r WHERE r.oid OPERATOR(pg_catalog.=) c.parent)$$);

-- Routing and tenant isolation: the directory (written by the superuser
-- below), each lookup, a placement and a change of the directory between
-- lookups, so that the cache is read again under each search_path; a table
-- of the caller's isolated, exported and purged.
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (140, $$CREATE TABLE %2$s.%1$s_tn (id bigint NOT NULL, tenant_id bigint NOT NULL, v pg_catalog.text)$$, false),
    (141, $$INSERT INTO %2$s.%1$s_tn VALUES (1, 5, 'a'), (2, 6, 'b'), (3, 5, 'c'), (4, 7, 'd')$$, false),
    (145, $$SELECT gb_set_tenant(5)$$, false),
    (150, $$UPDATE gb_scale.shard_config SET datacenter = datacenter$$, false),
    (152, $$INSERT INTO %2$s.%1$s_tn VALUES (5, 5, 'e')$$, false);
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (142, $$SELECT gb_tenant_isolation_enable('%2$s.%1$s_tn')$$),
    (143, $$SELECT p.polname, p.polcmd FROM pg_catalog.pg_policy p
             WHERE p.polrelid OPERATOR(pg_catalog.=) '%2$s.%1$s_tn'::pg_catalog.regclass ORDER BY p.polname$$),
    (144, $$SELECT e.row_data FROM gb_tenant_export(5) e
             WHERE e.table_name OPERATOR(pg_catalog.=) '%2$s.%1$s_tn'::pg_catalog.regclass
             ORDER BY (e.row_data OPERATOR(pg_catalog.->>) 'id')$$),
    (146, $$SELECT t.id, t.v FROM %2$s.%1$s_tn t ORDER BY t.id$$),
    (147, $$SELECT p.rows_removed FROM gb_tenant_purge(7) p
             WHERE p.table_name OPERATOR(pg_catalog.=) '%2$s.%1$s_tn'::pg_catalog.regclass$$),
    (148, $$SELECT gb_shard_for_tenant(5), gb_shard_for_tenant(1500000), gb_shard_for_tenant(9000001)$$),
    (149, $$SELECT gb_shard_for_tenant(2500000)$$),
    (151, $$SELECT gb_shard_for_tenant(1500000), gb_shard_connection(1500000)$$),
    (153, $$SELECT gb_tenant_assign(9000001, 1::smallint)$$),
    (154, $$SELECT gb_current_shard(), gb_shard_for_id(gb_id_from_time('2025-01-01 00:00:00+00', 7::smallint))$$),
    (155, $$SELECT gb_scale.current_tenant(), gb_scale.tenant_for_write('%2$s.%1$s_tn')$$),
    (156, $$SELECT gb_tenant_isolation_disable('%2$s.%1$s_tn')$$),
    (157, $$SELECT c.relrowsecurity, c.relforcerowsecurity, (SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy p
                                                            WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid)
              FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) '%2$s.%1$s_tn'::pg_catalog.regclass$$),
    (158, $$SELECT s.state IS NOT NULL, s.bytes OPERATOR(pg_catalog.>=) 0 FROM gb_scale.routing_status s
             WHERE s.database OPERATOR(pg_catalog.=) pg_catalog.current_database()$$),
    (159, $$SELECT r.min_tenant_id, r.max_tenant_id, r.shard_id, r.explicit, r.region_code, r.datacenter,
                   r.host, r.port, r.dbname
              FROM gb_shard_routes() r ORDER BY r.min_tenant_id$$),
    (139, $$SELECT gb_scale.forwarded_tenant(5)$$);

-- Tenant moves: refused here before anything starts (no wal_level =
-- logical, no move in progress, no shard 999), with the same errors in
-- every phase.
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (960, $$CALL gb_tenant_move(5, 2::smallint)$$, false);
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (961, $$SELECT gb_tenant_move_abort(5)$$),
    (962, $$SELECT m.tenant_id, m.state FROM gb_scale.tenant_moves m$$),
    (963, $$SELECT gb_scale.tenant_move_unsubscribe('gb_move_5_1')$$),
    (964, $$SELECT gb_scale.tenant_move_subscribe('gb_move_5_1', 'gb_move_5_1', 999::smallint)$$),
    (965, $$SELECT gb_tenant_move_finish(5)$$),
    (966, $$SELECT r.table_no FROM gb_scale.tenant_move_rewrite(5, 1::smallint, 0, 0, 0) r$$);

-- Per-tenant statistics: values that do not move between phases (a reset
-- of a tenant that has no entry, the capacity); mallory is refused alike.
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (700, $$SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM gb_stat_tenants s
             WHERE s.database OPERATOR(pg_catalog.=) pg_catalog.current_database()$$),
    (701, $$SELECT i.capacity, i.entries OPERATOR(pg_catalog.>=) 0 FROM gb_stat_tenants_info i$$),
    (702, $$SELECT gb_stat_tenants_reset(987654321)$$),
    (703, $$SELECT gb_stat_tenants_reset()$$),
    (704, $$SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM gb_scale.stat_tenants()$$),
    (705, $$SELECT i.capacity FROM gb_scale.stat_tenants_info() i$$);

-- Tenant and plan limits (gb_scale_admin's; mallory is refused): stored,
-- enforced for the statements of gb_set_tenant()'s tenant, refused on bad
-- input.  Limits high enough that no phase reaches them.
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (800, $$SELECT gb_tenant_limit(805, 50, 100000)$$, false),
    (801, $$SELECT gb_plan_limit(1, NULL, 100000)$$, false),
    (803, $$SELECT gb_set_tenant(805)$$, false),
    (804, $$SELECT gb_tenant_limit(805, 0, NULL)$$, false),
    (806, $$SELECT gb_plan_limit(9, 1, 1)$$, false);
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (802, $$SELECT l.max_xacts, l.max_statements_per_second FROM gb_scale.tenant_limit l
             WHERE l.tenant_id OPERATOR(pg_catalog.=) 805$$),
    (805, $$SELECT pg_catalog.count(*) FROM gb_scale.plan_limit l WHERE l.tier OPERATOR(pg_catalog.=) 1$$),
    (807, $$SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM gb_tenant_limits_usage u
             WHERE u.database OPERATOR(pg_catalog.=) pg_catalog.current_database()$$),
    (808, $$SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM gb_scale.tenant_limits_usage()$$);

-- Row quotas (gb_scale_admin's; mallory is refused): stored, the counting
-- trigger put on the table and run for gb_set_tenant()'s tenant, refused on
-- bad input.  Quotas high enough that no phase reaches them.
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (850, $$CREATE TABLE %2$s.%1$s_qt (id bigint NOT NULL, body pg_catalog.text)$$, false),
    (851, $$SELECT gb_tenant_quota(851, '%2$s.%1$s_qt', 1000000, NULL)$$, false),
    (852, $$SELECT gb_plan_quota(2, '%2$s.%1$s_qt', NULL, 1000000)$$, false),
    (854, $$SELECT gb_set_tenant(851)$$, false),
    (855, $$INSERT INTO %2$s.%1$s_qt SELECT g, 'x' FROM pg_catalog.generate_series(1, 3) g$$, false),
    (857, $$SELECT gb_tenant_quota(851, '%2$s.%1$s_qt', 0, NULL)$$, false),
    (858, $$SELECT gb_plan_quota(9, '%2$s.%1$s_qt', 1, NULL)$$, false);
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (853, $$SELECT t.tgname FROM pg_catalog.pg_trigger t
             WHERE t.tgrelid OPERATOR(pg_catalog.=) '%2$s.%1$s_qt'::pg_catalog.regclass$$),
    (856, $$SELECT q.tenant_id, q.source, q.rows_per_day, q.rows_per_month,
                   q.rows_today OPERATOR(pg_catalog.+) q.reserved_today
              FROM gb_tenant_quotas q
             WHERE q.tbl OPERATOR(pg_catalog.=) '%2$s.%1$s_qt'::pg_catalog.regclass$$),
    (859, $$SELECT pg_catalog.count(*) FROM gb_scale.tenant_quota q
             WHERE q.tbl OPERATOR(pg_catalog.=) '%2$s.%1$s_qt'::pg_catalog.regclass$$),
    (860, $$SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>=) 0 FROM gb_scale.tenant_quota_usage()$$);

-- A partition created in, and a table attached to, an isolated tree get its
-- policies from the event trigger; a holdable cursor is refused while the
-- tenant (probe 145) is set.
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (160, $$CREATE TABLE %2$s.%1$s_tp (tenant_id bigint NOT NULL, at pg_catalog.date NOT NULL)
             PARTITION BY RANGE (at)$$, false),
    (162, $$CREATE TABLE %2$s.%1$s_tp_a PARTITION OF %2$s.%1$s_tp FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')$$, false),
    (163, $$CREATE TABLE %2$s.%1$s_tp_b (LIKE %2$s.%1$s_tp)$$, false),
    (164, $$ALTER TABLE %2$s.%1$s_tp ATTACH PARTITION %2$s.%1$s_tp_b FOR VALUES FROM ('2021-01-01') TO ('2022-01-01')$$, false),
    (166, $$DECLARE %1$s_held CURSOR WITH HOLD FOR SELECT 1$$, false);
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (161, $$SELECT gb_tenant_isolation_enable('%2$s.%1$s_tp')$$),
    (165, $$SELECT c.relrowsecurity, (SELECT pg_catalog.count(*) FROM pg_catalog.pg_policy p
                                      WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid)
              FROM pg_catalog.pg_class c
             WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY['%2$s.%1$s_tp_a'::pg_catalog.regclass,
                                                          '%2$s.%1$s_tp_b'::pg_catalog.regclass])$$);

-- Tenant plans, settings and configuration (gb_scale_admin's; mallory is
-- refused): stored, listed, applied by gb_set_tenant(), read, exported,
-- and refused on bad input.
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (170, $$SELECT gb_tenant_plan(5, 2)$$, false),
    (171, $$SELECT gb_tenant_setting(5, 'work_mem', '6MB')$$, false),
    (172, $$SELECT gb_tenant_setting(5, 'app.model', 'm5')$$, false),
    (173, $$SELECT gb_plan_setting(2, 'app.max_bots', '3')$$, false),
    (175, $$SELECT gb_set_tenant(5)$$, false),
    (178, $$SELECT gb_tenant_setting(5, 'work_mem', 'lots')$$, false),
    (179, $$SELECT gb_tenant_setting(5, 'role', 'postgres')$$, false);
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (174, $$SELECT gb_tenant_tier(5), s.name, s.kind, s.value, s.source
              FROM gb_scale.tenant_settings(5) s ORDER BY s.name COLLATE pg_catalog."C"$$),
    (176, $$SELECT pg_catalog.current_setting('work_mem'), gb_tenant_config('app.model', 'none'),
                   gb_tenant_config('app.max_bots')$$),
    (177, $$SELECT e.row_data OPERATOR(pg_catalog.->>) 'name', e.row_data OPERATOR(pg_catalog.->>) 'value'
              FROM gb_tenant_export(5) e
             WHERE e.table_name OPERATOR(pg_catalog.=) 'gb_scale.tenant_setting'::pg_catalog.regclass
             ORDER BY (e.row_data OPERATOR(pg_catalog.->>) 'name') COLLATE pg_catalog."C"$$);

-- Sizing (gb_scale_admin's and pg_monitor's; mallory is refused): a
-- registered table counted per day, in all and per tenant, set as the
-- messages source and read through the view; the heavy tenants.
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (900, $$CREATE TABLE %2$s.%1$s_sz (id bigint NOT NULL, tenant_id bigint NOT NULL, at pg_catalog.timestamptz NOT NULL)
             PARTITION BY RANGE (at)$$, false),
    (902, $$INSERT INTO %2$s.%1$s_sz VALUES (1, 1, '2025-03-09 10:00+00'), (2, 2, '2025-03-09 11:00+00'),
                                            (3, 2, '2025-03-08 11:00+00')$$, false),
    (906, $$SELECT gb_sizing_source('messages', '%2$s.%1$s_sz')$$, false),
    (909, $$SELECT gb_sizing_source('messages', NULL)$$, false);
INSERT INTO sec_sp.probe (ord, stmt) VALUES
    (901, $$SELECT gb_partition_create('%2$s.%1$s_sz', 'at', '1 day', tenant_column => 'tenant_id',
                                       start_at => '2025-03-01 00:00+00')$$),
    (903, $$SELECT d.day, d.row_count, d.tenants FROM gb_scale.sizing_daily('%2$s.%1$s_sz', 2) d$$),
    (904, $$SELECT gb_scale.sizing_rows('%2$s.%1$s_sz')$$),
    (905, $$SELECT r.tenant_id, r.row_count FROM gb_scale.sizing_tenant_rows('%2$s.%1$s_sz') r
             ORDER BY r.tenant_id$$),
    (907, $$SELECT s.metric, s.volume, s.scale_row, s.setup, s.next_threshold, s.crosses_on
              FROM gb_scale.sizing s WHERE s.metric OPERATOR(pg_catalog.=) 'messages_per_day'$$),
    (908, $$SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM gb_scale.tenant_heavy(3) h$$);

-- Dropping an enum domain runs the drop event trigger (probe 71 looks for
-- labels left behind).
INSERT INTO sec_sp.probe (ord, stmt, is_query) VALUES
    (70, $$DROP DOMAIN %2$s.%1$s_prio$$, false);
-- An unqualified name goes to the first schema of search_path, as with
-- CREATE DOMAIN: it depends on the path by design, so it is listed per
-- phase rather than compared (probe 81 says where the enum went).
INSERT INTO sec_sp.probe (ord, stmt, is_query, compare) VALUES
    (80, $$SELECT gb_enum_create('%1$s_unqualified', ARRAY['a', 'b'])$$, false, false),
    (81, $$SELECT t.typnamespace::pg_catalog.regnamespace FROM pg_catalog.pg_type t
            WHERE t.typname OPERATOR(pg_catalog.=) '%1$s_unqualified'$$, true, false);

-- Runs every probe for one phase under the caller's current search_path.
CREATE FUNCTION sec_sp.run(phase pg_catalog.text, app_schema pg_catalog.text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p record;
    stmt pg_catalog.text;
    v pg_catalog.text;
    state pg_catalog.text;
    msg pg_catalog.text;
BEGIN
    FOR p IN SELECT x.ord, x.stmt, x.is_query FROM sec_sp.probe x ORDER BY x.ord
    LOOP
        stmt := pg_catalog.format(p.stmt, phase, app_schema);
        v := NULL;
        state := NULL;
        msg := NULL;
        BEGIN
            IF p.is_query THEN
                EXECUTE pg_catalog.concat('SELECT pg_catalog.array_agg(q)::pg_catalog.text FROM (', stmt, ') q')
                   INTO v;
            ELSE
                EXECUTE stmt;
                v := 'done';
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        END;
        INSERT INTO sec_sp.result VALUES (phase, p.ord, v, state, msg);
    END LOOP;
END
$$;

-- A user enum of the superuser's, for the crash sequence at the end.
SELECT gb_enum_create('super_app.crash', ARRAY['a', 'b']);

-- The clock of partition maintenance, for mallory's phases as well (she
-- cannot set it herself; a superuser's session setting stays).
SET gb_scale.test_now = '2025-03-10 12:34:56+00';

-- The shard directory the routing probes read.
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (1, 'USA', 'us-east-1', 'dbname=one', 1, 1000000), (2, 'USA', 'us-west-2', 'dbname=two', 1000001, 2000000);
SELECT gb_tenant_assign(9000001, 1::smallint);

-- (a) mallory: clean, then hostile search_path.
SET SESSION AUTHORIZATION regress_mallory;
SET search_path = public, pg_catalog;
SELECT sec_sp.run('clean_mallory', 'mallory_app');
SET search_path = hostile, pg_catalog, public;
SELECT sec_sp.run('hostile_mallory', 'mallory_app');
SET search_path = public, pg_catalog;
RESET SESSION AUTHORIZATION;

-- (b) the superuser, with mallory's schema first in its search_path.
SET search_path = public, pg_catalog;
SELECT sec_sp.run('clean_super', 'super_app');
SET search_path = hostile, pg_catalog, public;
SELECT sec_sp.run('hostile_super', 'super_app');
SET search_path = public, pg_catalog;

-- Each call under the hostile search_path against the same call under the
-- clean one (phase names in values and messages aside): "same", with the
-- SQLSTATE when the call is refused in both.
CREATE FUNCTION sec_sp.verdict(probe integer, clean text, hostile text) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE
             WHEN c.ord IS NULL OR h.ord IS NULL THEN 'MISSING'
             WHEN replace(c.value, clean, 'PHASE') IS NOT DISTINCT FROM replace(h.value, hostile, 'PHASE')
              AND c.sqlstate IS NOT DISTINCT FROM h.sqlstate
              AND replace(c.message, clean, 'PHASE') IS NOT DISTINCT FROM replace(h.message, hostile, 'PHASE')
             THEN 'same' || coalesce(' ' || c.sqlstate, '')
             ELSE 'DIFFERENT (' || coalesce(c.sqlstate, 'ok') || ' / ' || coalesce(h.sqlstate, 'ok') || ')'
           END
      FROM (SELECT 1) one
      LEFT JOIN sec_sp.result c ON c.ord = probe AND c.phase = clean
      LEFT JOIN sec_sp.result h ON h.ord = probe AND h.phase = hostile
$$;
SELECT p.ord,
       sec_sp.verdict(p.ord, 'clean_mallory', 'hostile_mallory') AS as_mallory,
       sec_sp.verdict(p.ord, 'clean_super', 'hostile_super') AS as_superuser
  FROM sec_sp.probe p WHERE p.compare ORDER BY p.ord;
SELECT r.ord, r.phase, coalesce(r.sqlstate, r.value, 'no row') AS result
  FROM sec_sp.result r JOIN sec_sp.probe p ON p.ord = r.ord
 WHERE NOT p.compare ORDER BY r.ord, r.phase COLLATE "C";
-- What the tenant settings probes read under the hostile search_path.
SELECT r.ord, r.value FROM sec_sp.result r
 WHERE r.phase = 'hostile_super' AND r.ord IN (174, 176, 177) ORDER BY r.ord;

-- The crash found in review, step by step: a lookup in a backend whose
-- search_path starts with mallory's schema, then a label change so that
-- the label cache is read again under that search_path, then a lookup.
SELECT gb_label(9::gb_channel_type) AS clean;
SET search_path = hostile, pg_catalog, public;
SELECT gb_label(9::gb_channel_type) AS hostile_first;
SELECT gb_enum_rename('super_app.crash', 'a', 'alpha');
SELECT gb_label(9::gb_channel_type) AS hostile_reloaded, gb_label(0::super_app.crash) AS renamed;
SET search_path = public, pg_catalog;

-- Nothing of mallory's ran, she is no superuser, her sequence kept its value.
SELECT * FROM hostile.ran;
SELECT last_value, is_called FROM hostile.ran_count;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_mallory';
SELECT last_value FROM hostile.id_mark;

-- Clean up: the drop event trigger removes the labels of every enum dropped.
SET client_min_messages = warning;
DROP SCHEMA super_app CASCADE;
DROP DOMAIN public.clean_super_unqualified;
DROP SCHEMA sec_sp CASCADE;
DROP OWNED BY regress_mallory CASCADE;
DROP ROLE regress_mallory;
RESET client_min_messages;
SELECT count(*) AS labels_left_behind
  FROM gb_scale.enum_label l WHERE NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = l.enum_type);
SELECT count(DISTINCT enum_type) AS enums FROM gb_scale.enum_label;
SELECT count(*) AS partition_configs_left FROM gb_scale.partition_config;
SELECT count(*) AS isolations_left FROM gb_scale.tenant_isolation;
TRUNCATE gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;
TRUNCATE gb_scale.tenant_plan, gb_scale.tenant_setting, gb_scale.plan_setting;
TRUNCATE gb_scale.tenant_limit, gb_scale.plan_limit;
RESET gb_scale.test_now;
RESET search_path;
RESET timezone;
