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
-- General Bots' message log: the key defaults to a snowflake ID, domain
-- values are 2-byte enum codes.
CREATE TABLE gb.messages (
    id           bigint PRIMARY KEY DEFAULT gb_next_id(),
    tenant_id    bigint NOT NULL,
    session_id   bigint NOT NULL,
    channel      gb_channel_type NOT NULL,
    role         gb_message_role NOT NULL,
    message_type gb_message_type NOT NULL DEFAULT 0,
    client       int NOT NULL,          -- which demo session wrote the row
    seq          bigint NOT NULL,       -- its order within that session
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- An enum of our own, next to General Bots' built-in ones.
SELECT gb_enum_create('gb.ticket_state', ARRAY['open', 'waiting', 'closed']);
CREATE SEQUENCE gb.demo_order;
SQL

cat >"$DEMO_DIR/workload.sql" <<'SQL'
\set tenant random(1, 1000)
\set channel random(0, 9)
\set kind random(0, 8)
BEGIN;
INSERT INTO gb.messages (tenant_id, session_id, channel, role, message_type, client, seq, body)
SELECT :tenant, :tenant * 100 + :client_id, :channel, 1, :kind, :client_id, nextval('gb.demo_order'),
       'hello from tenant ' || :tenant
  FROM generate_series(1, 20);
INSERT INTO gb.messages (tenant_id, session_id, channel, role, client, seq, body)
VALUES (:tenant, :tenant * 100 + :client_id, :channel, 2, :client_id, nextval('gb.demo_order'), 'bot reply');
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

\echo '--- a few IDs decoded into time, shard and sequence, with their enum labels'
SELECT m.id, d.created_at AS id_time, d.shard_id, d.sequence, m.tenant_id,
       gb_label(m.channel) AS channel, gb_label(m.role) AS role, gb_label(m.message_type) AS type
  FROM gb.messages m, gb_id_decode(m.id) d
 ORDER BY m.id DESC LIMIT 5;

\echo '--- messages per channel and role (2-byte codes, shown as labels)'
SELECT gb_label(channel) AS channel, gb_label(role) AS role, count(*) AS messages
  FROM gb.messages GROUP BY gb.messages.channel, gb.messages.role
 ORDER BY gb.messages.channel, gb.messages.role LIMIT 6;

\echo '--- an invalid code is refused, naming the domain and its codes'
\set ON_ERROR_STOP 0
INSERT INTO gb.messages (tenant_id, session_id, channel, role, client, seq, body) VALUES (1, 1, 42, 1, 0, 0, 'x');
\set ON_ERROR_STOP 1

\echo '--- an enum of our own: a label added while the table uses it, no rewrite'
SELECT gb_enum_add('gb.ticket_state', 'escalated') AS new_code;
SELECT * FROM gb_enum_labels('gb.ticket_state');

\echo '--- busiest milliseconds (more than 4096 IDs in one would borrow the next)'
SELECT gb_id_timestamp(id) AS millisecond, count(*) AS ids, max(gb_id_sequence(id)) AS max_sequence
  FROM gb.messages GROUP BY 1 ORDER BY 2 DESC LIMIT 3;

\echo '--- the last second of messages found through the primary key'
EXPLAIN (COSTS OFF)
SELECT count(*) FROM gb.messages WHERE id >= gb_id_from_time(now() - interval '1 second');

\echo '--- a label in WHERE is folded to its code at plan time'
EXPLAIN (COSTS OFF)
SELECT count(*) FROM gb.messages WHERE role = gb_enum_code('gb_message_role', 'assistant');

\echo '--- the generator'
\x on
SELECT * FROM gb_id_generator_status();
SQL
