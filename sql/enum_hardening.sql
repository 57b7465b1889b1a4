-- gb_scale enum domains under rollbacks, cascades, quoting, limits and
-- direct writes: each block is a defect of the hardening issue.
\set VERBOSITY default
\set SHOW_CONTEXT never

-- Labels follow the transaction: a rename is seen by the next statement of
-- its own transaction and is gone after a rollback, with a warm cache.
SELECT gb_enum_create('st', ARRAY['open', 'closed']);
SELECT gb_label(0::st), gb_enum_code('st', 'closed');
BEGIN;
SELECT gb_enum_rename('st', 'open', 'opened');
SELECT gb_label(0::st), gb_enum_code('st', 'opened');
ROLLBACK;
SELECT gb_label(0::st), gb_enum_label('st', 0::smallint);
SELECT gb_enum_code('st', 'opened');
BEGIN;
SELECT gb_label(0::st);
SELECT gb_enum_rename('st', 'open', 'low');
SELECT gb_enum_code('st', 'low'), gb_label(0::st);
SAVEPOINT sp;
SELECT gb_enum_rename('st', 'low', 'lowest');
SELECT gb_label(0::st);
ROLLBACK TO sp;
SELECT gb_label(0::st);
COMMIT;
SELECT gb_label(0::st);
-- An added code is valid in its transaction only until a rollback.
BEGIN;
SELECT gb_enum_add('st', 'new');
SELECT 2::st AS two, gb_label(2::st);
ROLLBACK;
SELECT 2::st;
SELECT * FROM gb_enum_labels('st');
-- Within one statement, as a migration's DO block would.
DO $$
BEGIN
    PERFORM gb_enum_rename('st', 'closed', 'shut');
    RAISE NOTICE 'label of 1 now: %', gb_label(1::st);
    RAISE NOTICE 'code of shut: %', gb_enum_code('st', 'shut');
END
$$;

-- Labels of a domain dropped by any cascade go with it, so pg_dump never
-- writes label rows of a type that is gone.
CREATE SEQUENCE cascade_seq;
SELECT gb_enum_create('cascade_by_sequence', ARRAY['a', 'b']);
ALTER DOMAIN cascade_by_sequence SET DEFAULT nextval('cascade_seq');
SELECT 'cascade_by_sequence'::regtype::oid AS seq_enum \gset
CREATE FUNCTION cascade_default() RETURNS smallint LANGUAGE sql AS 'SELECT 0::smallint';
SELECT gb_enum_create('cascade_by_function', ARRAY['a']);
ALTER DOMAIN cascade_by_function SET DEFAULT cascade_default();
SELECT 'cascade_by_function'::regtype::oid AS fn_enum \gset
SET client_min_messages = warning;
DROP SEQUENCE cascade_seq CASCADE;
DROP FUNCTION cascade_default() CASCADE;
RESET client_min_messages;
SELECT to_regtype('cascade_by_sequence') AS seq_domain, to_regtype('cascade_by_function') AS fn_domain;
SELECT count(*) AS orphan_labels FROM gb_scale.enum_label
 WHERE enum_type::oid IN (:seq_enum, :fn_enum);
SELECT count(*) AS orphans_anywhere FROM gb_scale.enum_label l
 WHERE NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = l.enum_type);

-- Names that need quotes.
CREATE SCHEMA "Tenant1";
SELECT gb_enum_create('"Tenant1"."State"', ARRAY['a', 'b']);
SELECT gb_enum_add('"Tenant1"."State"', 'c c');
SELECT gb_label(2::"Tenant1"."State");
SELECT 3::"Tenant1"."State";
SELECT gb_enum_create('"Tenant1".plain', ARRAY['x']);
SELECT * FROM gb_enum_labels('"Tenant1".plain');
DROP SCHEMA "Tenant1" CASCADE;

-- Built-in enums cannot change, not even by a superuser writing the table.
INSERT INTO gb_scale.enum_label (enum_type, code, label, builtin) VALUES ('gb_channel_type', 10, 'discord', true);
INSERT INTO gb_scale.enum_label (enum_type, code, label) VALUES ('gb_channel_type', 10, 'discord');
UPDATE gb_scale.enum_label SET label = 'human' WHERE enum_type = 'gb_message_role'::regtype AND code = 1;
DELETE FROM gb_scale.enum_label WHERE enum_type = 'gb_plan_tier'::regtype;
TRUNCATE gb_scale.enum_label;
SELECT gb_scale.enum_create_builtin('public.sneaky', ARRAY['a'], NULL);
SELECT count(*) AS channel_codes FROM gb_scale.enum_label WHERE enum_type = 'gb_channel_type'::regtype;

-- Limits and messages.
SELECT gb_enum_label(999999::oid::regtype, 0::smallint);
SELECT gb_enum_code(999999::oid::regtype, 'a');
SELECT gb_label(1::smallint);
SELECT gb_enum_create('wide', ARRAY['a', 'b', 'c'], ARRAY[0, 1, 32767]::smallint[]);
SELECT gb_enum_add('wide', 'd'), gb_enum_add('wide', 'e');
SELECT * FROM gb_enum_labels('wide');
SELECT gb_enum_add('wide', repeat('x', 3000));
SELECT gb_enum_add('wide', repeat('é', 32));
SELECT gb_enum_add('wide', repeat('é', 31));
SELECT gb_enum_rename('wide', 'a', repeat('y', 64));
SELECT gb_enum_create('late', ARRAY[repeat('z', 64)]);
SELECT gb_enum_create(repeat('n', 64), ARRAY['a']);
SELECT gb_enum_create('public.' || repeat('n', 63), ARRAY['a']) IS NOT NULL AS created_63_bytes;
SELECT gb_enum_create('"' || repeat('N', 64) || '"', ARRAY['a']);
SELECT gb_enum_create(repeat('s', 64) || '.x', ARRAY['a']);
SELECT gb_enum_create('"unterminated', ARRAY['a']);
SELECT gb_enum_add('wide', NULL);
SELECT gb_enum_add('wide', 'f', (-1)::smallint);
-- A renamed domain is named as it is called now.
SELECT gb_enum_create('color', ARRAY['red', 'green']);
ALTER DOMAIN color RENAME TO colour;
SELECT gb_enum_create('color', ARRAY['cyan']);
SELECT 9::colour;
SELECT 9::color;
-- An enum with every code: creating it is linear, lookups stay exact, and
-- there is no code left to add.
SELECT gb_enum_create('every_code', ARRAY(SELECT 'l' || g FROM generate_series(0, 32767) g)) IS NOT NULL AS created;
SELECT gb_label(32767::every_code), gb_enum_code('every_code', 'l12345'), gb_enum_label('every_code', 0::smallint);
SELECT gb_enum_add('every_code', 'more');
SELECT count(*) FROM gb_enum_labels('every_code');
SELECT gb_enum_code('every_code', 'nope');
DROP DOMAIN every_code;

-- The cache costs what the labels cost: 200 enums with codes 0 and 32767.
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        PERFORM gb_enum_create('sparse_' || i, ARRAY['lo', 'hi'], ARRAY[0, 32767]::smallint[]);
        PERFORM gb_enum_label(('sparse_' || i)::regtype, 32767::smallint);
    END LOOP;
END
$$;
SELECT sum(total_bytes) < 1024 * 1024 AS cache_under_1mb
  FROM pg_backend_memory_contexts WHERE name = 'gb_scale enum cache';
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXECUTE format('DROP DOMAIN %I', 'sparse_' || i);
    END LOOP;
END
$$;

-- Domains over enum domains: two of them in one query read each type once,
-- not the whole cache on every row.  (A temporary table keeps the query in
-- this backend even under force_parallel_mode, so its messages are stable.)
SELECT gb_enum_create('base_a', ARRAY['a0', 'a1']);
SELECT gb_enum_create('base_b', ARRAY['b0', 'b1']);
CREATE DOMAIN over_a AS base_a;
CREATE DOMAIN over_b AS base_b;
CREATE TEMP TABLE over_t AS SELECT (g % 2)::smallint::over_a AS a, ((g + 1) % 2)::smallint::over_b AS b
  FROM generate_series(1, 1000) g;
SET client_min_messages = debug2;
SELECT count(*), min(gb_label(a)), max(gb_label(b)) FROM over_t;
SELECT count(*), min(gb_label(a)), max(gb_label(b)) FROM over_t;
RESET client_min_messages;
DROP TABLE over_t;
DROP DOMAIN over_a;
DROP DOMAIN over_b;
DROP DOMAIN base_a;
DROP DOMAIN base_b;

DROP DOMAIN st;
DROP DOMAIN wide;
DROP DOMAIN color;
DROP DOMAIN colour;
DROP DOMAIN public.nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn;

-- The extension in a schema whose name needs quotes.
CREATE SCHEMA "GB";
SET client_min_messages = warning;
DROP EXTENSION gb_scale;
RESET client_min_messages;
CREATE EXTENSION gb_scale SCHEMA "GB";
SELECT "GB".gb_label(1::"GB".gb_channel_type), "GB".gb_enum_code('"GB".gb_message_role', 'tool');
SELECT count(*) AS builtin_enums FROM pg_type WHERE typnamespace = '"GB"'::regnamespace AND typtype = 'd';
SELECT 77::"GB".gb_plan_tier;
DROP EXTENSION gb_scale;
DROP SCHEMA "GB";
CREATE EXTENSION gb_scale;
SELECT count(*) AS labels_left, count(DISTINCT enum_type) AS enums FROM gb_scale.enum_label;
