#!/usr/bin/env bash
# The main job: build and install gb_scale, start a throwaway cluster with the
# library preloaded, run a small General Bots workload on it and print what
# happened.  The cluster and its directory are removed on exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_SECONDS=${DEMO_SECONDS:-5}
DEMO_CLIENTS=${DEMO_CLIENTS:-8}

gb_ensure_packages "${GB_BASE_PACKAGES[@]}"
trap gb_cleanup EXIT
gb_build_install

# General Bots sets SHARD_ID per instance; the server takes its default shard id from it.
export SHARD_ID=${SHARD_ID:-1}
gb_cluster_start DEMO "shared_preload_libraries = 'gb_scale'"
gb_log "cluster on port $DEMO_PORT (socket $DEMO_HOST), SHARD_ID=$SHARD_ID"
psql_demo() { psql -X -q -v ON_ERROR_STOP=1 -h "$DEMO_HOST" -p "$DEMO_PORT" -U postgres "$@"; }

psql_demo -d postgres -c "CREATE DATABASE gb_demo"
psql_demo -d gb_demo <<'SQL'
CREATE EXTENSION gb_scale;
CREATE SCHEMA gb;
-- General Bots' message log: the key defaults to a snowflake ID.
CREATE TABLE gb.messages (
    id         bigint PRIMARY KEY DEFAULT gb_next_id(),
    tenant_id  bigint NOT NULL,
    session_id bigint NOT NULL,
    client     int NOT NULL,          -- which demo session wrote the row
    seq        bigint NOT NULL,       -- its order within that session
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE gb.demo_order;
SQL

cat >"$DEMO_DIR/workload.sql" <<'SQL'
\set tenant random(1, 1000)
BEGIN;
INSERT INTO gb.messages (tenant_id, session_id, client, seq, body)
SELECT :tenant, :tenant * 100 + :client_id, :client_id, nextval('gb.demo_order'), 'hello from tenant ' || :tenant
  FROM generate_series(1, 20);
INSERT INTO gb.messages (tenant_id, session_id, client, seq, body)
VALUES (:tenant, :tenant * 100 + :client_id, :client_id, nextval('gb.demo_order'), 'bot reply');
COMMIT;
SQL
chmod 644 "$DEMO_DIR/workload.sql"
gb_log "$DEMO_CLIENTS concurrent sessions inserting messages for ${DEMO_SECONDS}s"
gb_as_pg pgbench -n -h "$DEMO_HOST" -p "$DEMO_PORT" -U postgres -c "$DEMO_CLIENTS" -j 2 \
	-T "$DEMO_SECONDS" -f "$DEMO_DIR/workload.sql" gb_demo | grep -E '^(number of transactions actually|tps)'

echo
psql_demo -d gb_demo <<'SQL'
\pset footer off
ANALYZE gb.messages;
\echo '--- IDs made by the concurrent sessions'
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids, count(*) - count(DISTINCT id) AS duplicates,
       count(DISTINCT client) AS sessions,
       (SELECT count(*) FROM (SELECT id, lag(id) OVER (PARTITION BY client ORDER BY seq) AS prev
                                FROM gb.messages) t WHERE id <= prev) AS out_of_order_within_a_session
  FROM gb.messages;

\echo '--- a few IDs decoded into time, shard and sequence'
SELECT m.id, d.created_at AS id_time, d.shard_id, d.sequence, m.tenant_id, m.client
  FROM gb.messages m, gb_id_decode(m.id) d
 ORDER BY m.id DESC LIMIT 5;

\echo '--- busiest milliseconds (more than 4096 IDs in one would borrow the next)'
SELECT gb_id_timestamp(id) AS millisecond, count(*) AS ids, max(gb_id_sequence(id)) AS max_sequence
  FROM gb.messages GROUP BY 1 ORDER BY 2 DESC LIMIT 3;

\echo '--- the last second of messages found through the primary key'
EXPLAIN (COSTS OFF)
SELECT count(*) FROM gb.messages WHERE id >= gb_id_from_time(now() - interval '1 second');

\echo '--- the generator'
\x on
SELECT * FROM gb_id_generator_status();
SQL
