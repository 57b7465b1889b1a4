-- gb_scale IDs: layout, decoders, range limits, errors.
-- The cluster runs with shared_preload_libraries = 'gb_scale' and gb_scale.shard_id = 1.
SET timezone = 'UTC';
\set VERBOSITY default

-- The extension is visible and its objects are where the contract puts them.
SELECT extname, extversion, extnamespace::regnamespace FROM pg_extension WHERE extname = 'gb_scale';
SELECT p.oid::regprocedure AS function, p.provolatile, p.proisstrict, p.proparallel
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'gb_scale'
 WHERE p.proname ~ '^gb_(next_id|id_)'
 ORDER BY p.proname;
SELECT c.oid::regclass, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'gb_scale'::regnamespace AND c.relname LIKE 'id\_%' ORDER BY c.relname;

-- The documented layout: (ms since 2024-01-01) << 22 | shard << 12 | sequence.
SELECT gb_id_from_time('2024-01-01 00:00:00+00') AS epoch_id,
       gb_id_from_time('2024-01-01 00:00:00.001+00') AS one_ms,
       gb_id_from_time('2024-01-01 00:00:00+00', 1023::smallint) AS max_shard;
SELECT gb_id_from_time('2025-06-15 12:34:56.789+00', 42::smallint)
     = ((extract(epoch FROM timestamptz '2025-06-15 12:34:56.789+00') * 1000)::bigint - 1704067200000) << 22
       | (42::bigint << 12) AS matches_documented_formula;

-- An ID built by General Bots' documented PL/pgSQL formula decodes alike.
WITH doc AS (SELECT ((1704067200000 + 86400000 + 7)::bigint - 1704067200000) << 22
                    | (5::bigint << 12) | 4095 AS id)
SELECT id, gb_id_timestamp(id), gb_id_shard(id), gb_id_sequence(id), (gb_id_decode(id)).*
  FROM doc;

-- Sub-millisecond input falls into its own millisecond, also before a second boundary.
SELECT gb_id_timestamp(gb_id_from_time('2030-03-03 03:03:03.0039+00')),
       gb_id_timestamp(gb_id_from_time('2030-03-03 03:03:02.9999+00'));

-- The last representable millisecond, and one past it.
SELECT gb_id_timestamp(gb_id_from_time('2093-09-06 15:47:35.551+00', 1023::smallint) | 4095),
       gb_id_from_time('2093-09-06 15:47:35.551+00', 1023::smallint) | 4095 = 9223372036854775807 AS is_max_bigint;
SELECT gb_id_from_time('2093-09-06 15:47:35.552+00');
SELECT gb_id_from_time('2023-12-31 23:59:59.999+00');
SELECT gb_id_from_time('infinity');
SELECT gb_id_from_time(now(), 1024::smallint);
SELECT gb_id_from_time(now(), (-1)::smallint);
SELECT gb_id_timestamp(-1);
SELECT gb_id_decode(-42);

-- Strict: NULL in, NULL out.
SELECT gb_id_timestamp(NULL) IS NULL AS ts, gb_id_shard(NULL) IS NULL AS shard,
       gb_id_from_time(NULL) IS NULL AS from_time;

-- Generated IDs carry this database's shard and the current time.
SELECT gb_id_shard(gb_next_id()) AS shard;
SELECT abs(extract(epoch FROM gb_id_timestamp(gb_next_id()) - clock_timestamp())) < 5 AS near_now;
SELECT bool_and(id > prev) AS increasing, count(*) AS n
  FROM (SELECT id, lag(id) OVER (ORDER BY g) AS prev
          FROM (SELECT g, gb_next_id() AS id FROM generate_series(1, 10000) g) s) t
 WHERE prev IS NOT NULL;

-- Range scans on the key: IDs made now are >= the smallest ID of a second ago.
SELECT gb_next_id() >= gb_id_from_time(now() - interval '1 second', 1::smallint) AS in_range;

-- gb_next_ids: consecutive in sequence order, in one step.
SELECT count(*) AS n, count(DISTINCT id) AS distinct_ids,
       bool_and(gb_id_shard(id) = 1) AS shard_ok
  FROM gb_next_ids(10000) id;
SELECT bool_and(((gb_id_timestamp(id) - gb_id_timestamp(prev)) = interval '0' AND gb_id_sequence(id) = gb_id_sequence(prev) + 1)
             OR ((gb_id_timestamp(id) - gb_id_timestamp(prev)) = interval '1 ms' AND gb_id_sequence(id) = 0
                 AND gb_id_sequence(prev) = 4095)) AS consecutive
  FROM (SELECT id, lag(id) OVER (ORDER BY ord) AS prev
          FROM gb_next_ids(9000) WITH ORDINALITY AS r(id, ord)) t
 WHERE prev IS NOT NULL;
-- A run hands out exactly what it reserved: the next ID comes after its last.
SELECT max(id) = (SELECT last_id FROM gb_id_generator_status() WHERE database = current_database()) AS status_has_last,
       max(id) < gb_next_id() AS next_is_after_run
  FROM gb_next_ids(5000) id;
SELECT count(*) FROM gb_next_ids(0);
SELECT gb_next_ids(-1);
SELECT count(*) FROM gb_next_ids(2147483647);

-- The generator reports this database's slot.
SELECT shard_id, database = current_database() AS this_db, last_id IS NOT NULL AS has_last,
       ids_issued >= 29000 AS counted, mark_flushes >= 1 AS flushed,
       durable_mark >= last_id_time AS mark_covers_last, clock_regressions
  FROM gb_id_generator_status();

-- Like nextval(), IDs cannot be taken in a read-only transaction.
BEGIN READ ONLY;
SELECT gb_next_id();
ROLLBACK;

-- Unset shard id: the error says how to set it.
SET gb_scale.shard_id = -1;
SELECT gb_next_id();
RESET gb_scale.shard_id;
SET gb_scale.shard_id = 1024;

-- Ordinary users generate IDs but cannot change the shard id or the lead bound.
CREATE ROLE regress_gb_app LOGIN;
SET ROLE regress_gb_app;
SELECT gb_id_shard(gb_next_id()) AS shard_as_app;
SET gb_scale.shard_id = 2;
SET gb_scale.max_lead_ms = 0;
SELECT nextval('gb_scale.id_mark');
RESET ROLE;
DROP ROLE regress_gb_app;

-- The lead bound and the clock offset are instance-wide (postgresql.conf and
-- reload): no session sets them, not even a superuser's.
SET gb_scale.max_lead_ms = 0;
SET gb_scale.debug_clock_offset_ms = 1000;
