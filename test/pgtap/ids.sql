-- pgTAP: the ID functions' contract (signatures, properties, SQLSTATEs) and
-- behaviour as a column default.  Run by pg_prove in a database that has
-- pgtap and gb_scale; the cluster preloads gb_scale and gives each test database its own shard id.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
SELECT plan(38);

-- Signatures are the contract.
SELECT has_function('public', 'gb_next_id', ARRAY[]::text[], 'gb_next_id() exists');
SELECT function_returns('public', 'gb_next_id', ARRAY[]::text[], 'bigint', 'gb_next_id() returns bigint');
SELECT function_returns('public', 'gb_next_ids', ARRAY['integer'], 'setof bigint', 'gb_next_ids(integer) returns setof bigint');
SELECT function_returns('public', 'gb_id_timestamp', ARRAY['bigint'], 'timestamp with time zone', 'gb_id_timestamp returns timestamptz');
SELECT function_returns('public', 'gb_id_shard', ARRAY['bigint'], 'smallint', 'gb_id_shard returns smallint');
SELECT function_returns('public', 'gb_id_sequence', ARRAY['bigint'], 'integer', 'gb_id_sequence returns integer');
SELECT function_returns('public', 'gb_id_decode', ARRAY['bigint'], 'record', 'gb_id_decode returns a record');
SELECT function_returns('public', 'gb_id_from_time', ARRAY['timestamp with time zone', 'smallint'], 'bigint', 'gb_id_from_time returns bigint');
SELECT volatility_is('public', 'gb_next_id', ARRAY[]::text[], 'volatile', 'gb_next_id is volatile');
SELECT volatility_is('public', 'gb_id_timestamp', ARRAY['bigint'], 'immutable', 'gb_id_timestamp is immutable');
SELECT volatility_is('public', 'gb_id_from_time', ARRAY['timestamp with time zone', 'smallint'], 'immutable', 'gb_id_from_time is immutable');
SELECT is_strict('public', 'gb_id_decode', ARRAY['bigint'], 'gb_id_decode is strict');
SELECT is((SELECT array_agg(proparallel ORDER BY proname)::text FROM pg_proc
            WHERE proname IN ('gb_id_timestamp', 'gb_id_shard', 'gb_id_sequence', 'gb_id_decode', 'gb_id_from_time')
              AND pronamespace = 'public'::regnamespace),
          '{s,s,s,s,s}', 'decoders are parallel safe');
SELECT is((SELECT proparallel::text FROM pg_proc WHERE oid = 'public.gb_next_id()'::regprocedure),
          'u', 'gb_next_id is parallel unsafe, like nextval');
SELECT is((SELECT pg_get_expr(proargdefaults, 0) FROM pg_proc
            WHERE oid = 'public.gb_id_from_time(timestamptz, smallint)'::regprocedure),
          '0', 'gb_id_from_time shard_id defaults to 0');
SELECT has_schema('gb_scale', 'internal schema gb_scale exists');
SELECT has_sequence('gb_scale', 'id_mark', 'durable mark sequence exists');
SELECT ok((SELECT 'gb_scale.id_mark'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'gb_scale'),
          'the durable mark is dumped with the database');

-- As a column default.
CREATE TEMP TABLE msgs (id bigint PRIMARY KEY DEFAULT gb_next_id(), n int);
INSERT INTO msgs (n) SELECT g FROM generate_series(1, 50000) g;
SELECT is((SELECT count(DISTINCT id) FROM msgs), 50000::bigint, 'default fills 50000 distinct IDs');
SELECT is((SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY n) p FROM msgs) t WHERE id <= p),
          0::bigint, 'IDs follow insertion order');
SELECT is((SELECT count(*) FROM msgs WHERE gb_id_shard(id) <> current_setting($$gb_scale.shard_id$$)::int), 0::bigint, $$every ID carries this database shard$$);
SELECT ok((SELECT max(gb_id_sequence(id)) FROM msgs) <= 4095, 'sequence stays within 12 bits');
SELECT ok((SELECT max(gb_id_timestamp(id)) - min(gb_id_timestamp(id)) FROM msgs) < interval '10 minutes',
          'timestamps stay near the clock');

-- Decoders invert the layout for arbitrary parts.
SELECT is((SELECT count(*) FROM (
             SELECT ts, shard, seq, gb_id_from_time(ts, shard) | seq AS id
               FROM (SELECT timestamptz '2024-01-01 00:00:00+00' + (random() * interval '69 years') AS ts,
                            (random() * 1023)::int::smallint AS shard,
                            (random() * 4095)::int AS seq
                       FROM generate_series(1, 2000)) r) t
            WHERE gb_id_shard(id) <> shard OR gb_id_sequence(id) <> seq
               OR gb_id_timestamp(id) <> date_trunc('milliseconds', ts)
               OR (gb_id_decode(id)).created_at <> gb_id_timestamp(id)),
          0::bigint, 'decode(from_time(ts, shard) | seq) = (ts to the ms, shard, seq) for 2000 random values');
SELECT ok(gb_id_from_time('2030-01-01 00:00:00.001+00') > gb_id_from_time('2030-01-01+00', 1023::smallint) | 4095,
          'a later millisecond sorts after any ID of an earlier one');

-- Errors carry the right SQLSTATE.
SELECT throws_ok($$SELECT gb_id_from_time('2023-12-31 23:59:59+00')$$, '22008', NULL, 'before the epoch: 22008');
SELECT throws_ok($$SELECT gb_id_from_time('2100-01-01+00')$$, '22008', NULL, 'past 2093: 22008');
SELECT throws_ok($$SELECT gb_id_from_time('-infinity')$$, '22008', NULL, '-infinity: 22008');
SELECT throws_ok($$SELECT gb_id_from_time(now(), 2000::smallint)$$, '22023', NULL, 'shard 2000: 22023');
SELECT throws_ok($$SELECT gb_id_shard(-5)$$, '22023', NULL, 'negative ID: 22023');
SELECT throws_ok($$SELECT gb_next_ids(-3)$$, '22023', NULL, 'negative count: 22023');
SELECT throws_ok($$SELECT count(*) FROM gb_next_ids(100000000)$$, '54000', NULL, 'count past the lead bound: 54000');
SELECT throws_ok($$SET gb_scale.shard_id = 4096$$, '22023', NULL, 'shard id 4096 is refused');

SAVEPOINT unset_shard;
SET LOCAL gb_scale.shard_id = -1;
SELECT throws_ok($$SELECT gb_next_id()$$, '55000', 'gb_scale.shard_id is not set', 'unset shard id: 55000');
ROLLBACK TO unset_shard;

SAVEPOINT read_only;
SET LOCAL transaction_read_only = on;
SELECT throws_ok($$SELECT gb_next_id()$$, '25006', NULL, 'read-only transaction: 25006');
ROLLBACK TO read_only;

-- The status reflects what this test did.
SELECT ok((SELECT ids_issued >= 50000 FROM gb_id_generator_status() WHERE database = current_database()), 'status counts issued IDs');
SELECT ok((SELECT mark_flushes < ids_issued / 1000 FROM gb_id_generator_status() WHERE database = current_database()),
          'far fewer durable-mark flushes than IDs');
SELECT is((SELECT database FROM gb_id_generator_status() WHERE database = current_database()), current_database()::text,
          'status names this database');

SELECT * FROM finish();
ROLLBACK;
