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
