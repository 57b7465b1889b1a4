-- Label lookups and the enum domain check in parallel workers.  Workers start
-- with empty caches and read the labels themselves, under the leader's
-- transaction: they see its uncommitted enums too.
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE TABLE par_msgs AS
SELECT g AS id,
       (ARRAY[1, 2, 3, 4, 9, 10])[g % 6 + 1]::smallint::gb_message_role AS role,
       (g % 10)::smallint::gb_channel_type AS channel,
       (ARRAY['user', 'assistant', 'system', 'tool', 'episodic', 'compact'])[g % 6 + 1] AS role_label
  FROM generate_series(1, 60000) g;
ANALYZE par_msgs;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;

EXPLAIN (COSTS OFF) SELECT count(gb_label(role)) FROM par_msgs;
SELECT gb_label(role) AS role, count(*) FROM par_msgs GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE gb_enum_label('gb_channel_type', channel) = 'web') AS web,
       count(*) FILTER (WHERE gb_enum_code('gb_message_role', role_label) = role) AS codes_match
  FROM par_msgs;
-- A value the domain refuses, found by a worker: the domain's own error.
SELECT count((id % 12)::smallint::gb_channel_type) FROM par_msgs;
SELECT count(gb_enum_label('gb_channel_type', (id % 11)::smallint)) FROM par_msgs;

-- An enum created in this transaction, used by workers.
BEGIN;
SELECT gb_enum_create('par_state', ARRAY['new', 'done']);
CREATE TABLE par_items AS SELECT g AS id, (g % 2)::smallint::par_state AS st FROM generate_series(1, 20000) g;
ANALYZE par_items;
EXPLAIN (COSTS OFF) SELECT gb_label(st), count(*) FROM par_items GROUP BY 1 ORDER BY 1;
SELECT gb_label(st), count(*) FROM par_items GROUP BY 1 ORDER BY 1;
SELECT gb_enum_rename('par_state', 'done', 'finished');
SELECT gb_label(st), count(*) FROM par_items GROUP BY 1 ORDER BY 1;
ROLLBACK;

RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE par_msgs;
