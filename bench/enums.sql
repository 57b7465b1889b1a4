-- Part 4 of bench/run.sh: SMALLINT enum domains against native enums and
-- VARCHAR labels, on a messages-like table with three enum columns.
-- psql variables: rows (table size), reps (repetitions per timing).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE TYPE nat_role AS ENUM ('user', 'assistant', 'system', 'tool', 'episodic', 'compact');
CREATE TYPE nat_channel AS ENUM ('web', 'whatsapp', 'telegram', 'msteams', 'slack', 'email', 'sms',
                                 'voice', 'instagram', 'api');
CREATE TYPE nat_type AS ENUM ('text', 'image', 'audio', 'video', 'document', 'location', 'contact',
                              'sticker', 'reaction');

-- Same rows in all three: the codes drawn once, then stored three ways.
CREATE TABLE e_src AS
SELECT g AS id, g % 100000 AS tenant_id, now() - g * interval '1 ms' AS created_at,
       (ARRAY[1, 2, 3, 4, 9, 10])[1 + g % 6]::smallint AS role,
       (g % 10)::smallint AS channel, (g % 9)::smallint AS mtype
  FROM generate_series(1, :rows) g;

CREATE TABLE e_domain (id bigint, tenant_id bigint, created_at timestamptz,
                       role gb_message_role, channel gb_channel_type, mtype gb_message_type);
CREATE TABLE e_native (id bigint, tenant_id bigint, created_at timestamptz,
                       role nat_role, channel nat_channel, mtype nat_type);
CREATE TABLE e_varchar (id bigint, tenant_id bigint, created_at timestamptz,
                        role varchar(16), channel varchar(16), mtype varchar(16));
INSERT INTO e_domain SELECT * FROM e_src;
INSERT INTO e_native
SELECT id, tenant_id, created_at, gb_enum_label('gb_message_role', role)::nat_role,
       gb_enum_label('gb_channel_type', channel)::nat_channel, gb_enum_label('gb_message_type', mtype)::nat_type
  FROM e_src;
INSERT INTO e_varchar
SELECT id, tenant_id, created_at, gb_enum_label('gb_message_role', role),
       gb_enum_label('gb_channel_type', channel), gb_enum_label('gb_message_type', mtype)
  FROM e_src;
DROP TABLE e_src;
CREATE INDEX ON e_domain (role);
CREATE INDEX ON e_native (role);
CREATE INDEX ON e_varchar (role);
VACUUM ANALYZE e_domain, e_native, e_varchar;

-- Best of :reps server-side timings of one query, in ms.
CREATE FUNCTION pg_temp.best_ms(q text, reps int) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    best float8;
BEGIN
    FOR i IN 1 .. reps LOOP
        best := least(best, bench_time(q));
    END LOOP;
    RETURN best;
END
$$;

-- EXPLAIN output as rows, to print on one line.
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        RETURN NEXT line;
    END LOOP;
END
$$;

\echo
\echo '4. Enum domains: a messages-like table of ':rows' rows with three enum columns (role, channel, type)'
\echo '   stored as gb_scale SMALLINT domains, as native enums and as VARCHAR labels; timings best of ':reps
SELECT format('%-26s %12s %12s %12s', 'storage', 'table', 'role index', 'bytes/row');
WITH sizes AS (
    SELECT t AS tab, pg_table_size(t) AS heap, pg_relation_size((t || '_role_idx')::regclass) AS idx
      FROM unnest(ARRAY['e_domain', 'e_native', 'e_varchar']::regclass[]) t)
SELECT format('%-26s %12s %12s %12s',
              CASE tab::text WHEN 'e_domain' THEN 'gb_scale domains (2 B)' WHEN 'e_native' THEN 'native enums (4 B)'
                   ELSE 'varchar labels' END,
              pg_size_pretty(heap), pg_size_pretty(idx), round(heap::numeric / :rows, 1))
  FROM sizes ORDER BY heap;
SELECT format('   target: domains the smallest table: %s',
              CASE WHEN pg_table_size('e_domain') < least(pg_table_size('e_native'), pg_table_size('e_varchar'))
                   THEN 'PASS' ELSE 'BELOW' END);

SELECT pg_temp.best_ms('SELECT count(gb_label(role)) FROM e_domain', :reps) AS label_ms,
       pg_temp.best_ms('SELECT count(role::text) FROM e_native', :reps) AS native_ms,
       pg_temp.best_ms('SELECT count(role) FROM e_varchar', :reps) AS varchar_ms \gset
\echo
SELECT format('%-46s %10s', 'lookup over all rows', 'best ms');
SELECT format('%-46s %10s', 'count(gb_label(role))   gb_scale domain', round(:label_ms::numeric, 1));
SELECT format('%-46s %10s', 'count(role::text)       native enum', round(:native_ms::numeric, 1));
SELECT format('%-46s %10s', 'count(role)             varchar (no lookup)', round(:varchar_ms::numeric, 1));
SELECT format('   target: gb_label() at least as fast as a native enum cast to text: %sx %s',
              round((:native_ms / :label_ms)::numeric, 2), CASE WHEN :label_ms <= :native_ms THEN 'PASS' ELSE 'BELOW' END);

-- gb_enum_code() with constant arguments is folded when the query is
-- planned: the executor never calls it, and the index is usable.
SET track_functions = 'all';
SELECT pg_stat_reset_single_function_counters('gb_enum_code(regtype, text)'::regprocedure) \gset
SELECT pg_temp.best_ms($$SELECT count(*) FROM e_domain WHERE role = gb_enum_code('gb_message_role', 'assistant')$$, :reps) AS code_ms,
       pg_temp.best_ms('SELECT count(*) FROM e_domain WHERE role = 2', :reps) AS literal_ms,
       pg_temp.best_ms($$SELECT count(*) FROM e_native WHERE role = 'assistant'$$, :reps) AS native_filter_ms \gset
SELECT pg_stat_force_next_flush() \gset
SELECT coalesce((SELECT calls FROM pg_stat_user_functions WHERE funcid = 'gb_enum_code(regtype, text)'::regprocedure), 0)
       AS code_calls \gset
\echo
SELECT format('%-62s %10s', 'filter on one label', 'best ms');
SELECT format('%-62s %10s', $$WHERE role = gb_enum_code('gb_message_role', 'assistant')$$, round(:code_ms::numeric, 1));
SELECT format('%-62s %10s', 'WHERE role = 2   (the code written by hand)', round(:literal_ms::numeric, 1));
SELECT format('%-62s %10s', $$WHERE role = 'assistant'   (native enum)$$, round(:native_filter_ms::numeric, 1));
SELECT format('   gb_enum_code() calls at execution over %s queries of %s rows: %s (%s)', :reps, :rows, :code_calls,
              CASE WHEN :code_calls::int = 0 THEN 'folded to a constant when planned: PASS' ELSE 'BELOW' END);
SELECT '   plan: ' || string_agg(trim(line), ' / ')
  FROM pg_temp.plan_of($$SELECT count(*) FROM e_domain WHERE role = gb_enum_code('gb_message_role', 'assistant')$$) line;

-- Costs that must grow with the labels used, not with the enum's size or the
-- number of enums in a query (the hardening issue measured 41 s to create an
-- enum of 32768 labels, and a reload of every label on every row for two
-- domains over enum domains in one query).
CREATE FUNCTION pg_temp.create_ms(n int, native boolean) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    ms float8;
BEGIN
    IF native THEN
        EXECUTE format('CREATE TYPE nat_big AS ENUM (%s)',
                       (SELECT string_agg(quote_literal('l' || g), ',') FROM generate_series(0, n - 1) g));
    ELSE
        PERFORM gb_enum_create('gb_big', ARRAY(SELECT 'l' || g FROM generate_series(0, n - 1) g));
    END IF;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    EXECUTE CASE WHEN native THEN 'DROP TYPE nat_big' ELSE 'DROP DOMAIN gb_big' END;
    RETURN ms;
END
$$;
CREATE FUNCTION pg_temp.best_create_ms(n int, native boolean, reps int) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    best float8;
BEGIN
    FOR i IN 1 .. reps LOOP
        best := least(best, pg_temp.create_ms(n, native));
    END LOOP;
    RETURN best;
END
$$;
SELECT pg_temp.best_create_ms(1024, false, :reps) AS small_ms, pg_temp.best_create_ms(32768, false, :reps) AS big_ms,
       pg_temp.best_create_ms(1024, true, :reps) AS nat_small_ms, pg_temp.best_create_ms(32768, true, :reps) AS nat_big_ms \gset
\echo
SELECT format('%-46s %12s %12s %14s', 'creating an enum of n labels', '1024 (ms)', '32768 (ms)', 'us per label');
SELECT format('%-46s %12s %12s %7s / %-6s', 'gb_enum_create()', round(:small_ms::numeric, 1), round(:big_ms::numeric, 1),
              round((:small_ms * 1000 / 1024)::numeric, 1), round((:big_ms * 1000 / 32768)::numeric, 1));
SELECT format('%-46s %12s %12s %7s / %-6s', 'CREATE TYPE ... AS ENUM (native)', round(:nat_small_ms::numeric, 1),
              round(:nat_big_ms::numeric, 1), round((:nat_small_ms * 1000 / 1024)::numeric, 1),
              round((:nat_big_ms * 1000 / 32768)::numeric, 1));
SELECT format('   target: linear, the cost per label at 32768 labels within 2x of that at 1024: %sx %s',
              round(((:big_ms / 32768) / (:small_ms / 1024))::numeric, 2),
              CASE WHEN (:big_ms / 32768) <= 2 * (:small_ms / 1024) THEN 'PASS' ELSE 'BELOW' END);

-- Two domains over enum domains in one query, against the enums themselves.
SELECT gb_enum_create('bench_a', ARRAY['a0', 'a1']) IS NULL AS x, gb_enum_create('bench_b', ARRAY['b0', 'b1']) IS NULL AS y \gset
CREATE DOMAIN bench_over_a AS bench_a;
CREATE DOMAIN bench_over_b AS bench_b;
CREATE TABLE e_over AS
SELECT (g % 2)::smallint::bench_a AS a, (g % 2)::smallint::bench_b AS b,
       (g % 2)::smallint::bench_over_a AS oa, (g % 2)::smallint::bench_over_b AS ob
  FROM generate_series(1, least(:rows, 1000000)) g;
SELECT pg_temp.best_ms('SELECT count(gb_label(a)), count(gb_label(b)) FROM e_over', :reps) AS direct_ms,
       pg_temp.best_ms('SELECT count(gb_label(oa)), count(gb_label(ob)) FROM e_over', :reps) AS over_ms \gset
-- Checking a value of an enum with every code, against one with three.
SELECT gb_enum_create('bench_full', ARRAY(SELECT 'l' || g FROM generate_series(0, 32767) g)) IS NULL AS z \gset
SELECT pg_temp.best_ms('SELECT count((g % 3)::smallint::gb_execution_mode) FROM generate_series(1, ' || least(:rows, 1000000) || ') g', :reps) AS check3_ms,
       pg_temp.best_ms('SELECT count((g % 3)::smallint::bench_full) FROM generate_series(1, ' || least(:rows, 1000000) || ') g', :reps) AS check32k_ms \gset
\echo
SELECT format('%-62s %10s', 'per-row costs that must not grow (rows: ' || least(:rows, 1000000) || ')', 'best ms');
SELECT format('%-62s %10s', 'gb_label() on two enum domains', round(:direct_ms::numeric, 1));
SELECT format('%-62s %10s', 'gb_label() on two domains over enum domains', round(:over_ms::numeric, 1));
SELECT format('%-62s %10s', 'domain check, enum of 3 codes', round(:check3_ms::numeric, 1));
SELECT format('%-62s %10s', 'domain check, enum of 32768 codes', round(:check32k_ms::numeric, 1));
SELECT format('   target: domains over enums within 1.5x of the enums: %sx %s', round((:over_ms / :direct_ms)::numeric, 2),
              CASE WHEN :over_ms <= 1.5 * :direct_ms THEN 'PASS' ELSE 'BELOW' END);
SELECT format('   target: checking against 32768 codes within 1.5x of 3 codes: %sx %s', round((:check32k_ms / :check3_ms)::numeric, 2),
              CASE WHEN :check32k_ms <= 1.5 * :check3_ms THEN 'PASS' ELSE 'BELOW' END);
DROP TABLE e_over;
DROP DOMAIN bench_over_a;
DROP DOMAIN bench_over_b;
DROP DOMAIN bench_a;
DROP DOMAIN bench_b;
DROP DOMAIN bench_full;
