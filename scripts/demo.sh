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

# ---------------------------------------------------------------------------
# Plan quotas: a free-tier tenant inserts messages until its quota refuses it.
# ---------------------------------------------------------------------------
echo
echo '--- plan quotas: tenant 4242 is on the free tier, which may insert 50 messages a day into gb.messages'
psql_demo -d gb_demo <<'SQL'
SELECT gb_tenant_plan(4242, gb_enum_code('gb_plan_tier', 'free')) AS placed,
       gb_plan_quota(gb_enum_code('gb_plan_tier', 'free'), 'gb.messages', 50, 1000) AS quota_set \gset
SQL
quota_sent=0
for _ in $(seq 1 10); do
	# one transaction per batch of 20, as the application would send them
	if quota_err=$(psql_demo -d gb_demo -v VERBOSITY=verbose 2>&1 >/dev/null <<'SQL'
BEGIN;
SELECT gb_set_tenant(4242) \gset
INSERT INTO gb.messages (tenant_id, session_id, channel, role, client, seq, body)
SELECT 4242, 424200, 0, 1, 0, nextval('gb.demo_order'), 'free-tier message'
  FROM generate_series(1, 20);
COMMIT;
SQL
	); then
		quota_sent=$((quota_sent + 20))
		echo "   20 messages inserted ($quota_sent in total)"
	else
		echo "   the next 20 are refused, and none of them is written:"
		grep -v '^LOCATION' <<<"$quota_err" | sed 's/^/   /'
		break
	fi
done
[ -n "${quota_err:-}" ] || gb_die "the quota never refused tenant 4242"
psql_demo -d gb_demo <<'SQL'
\pset footer off
\echo '--- the tenant''s quota and usage (gb_tenant_quotas)'
SELECT tenant_id, tbl, source, rows_per_day, rows_per_month, day, rows_today, reserved_today, rows_this_month
  FROM gb_tenant_quotas WHERE tenant_id = 4242;
SELECT count(*) AS messages_of_4242_in_the_table FROM gb.messages WHERE tenant_id = 4242;
SQL

# ---------------------------------------------------------------------------
# Partitions: General Bots' high-volume tables on a second shard database,
# months of traffic simulated day by day with gb_scale.test_now (the clock of
# maintenance in this session only), maintenance run after every day.
# ---------------------------------------------------------------------------
DEMO_SIM_MONTHS=${DEMO_SIM_MONTHS:-4}
SIM_START=$(date -u -d "$(date -u +%Y-%m-01) -$DEMO_SIM_MONTHS months" +%F)
SIM_END=$(date -u -d 'yesterday' +%F)
SIM_DEDICATE=$(date -u -d "$SIM_START +2 months" +%F)
echo
gb_log "partitions: database gb_partitions (shard 3), traffic from $SIM_START to $SIM_END, tenant 1 dedicated on $SIM_DEDICATE"

psql_demo -d postgres <<'SQL'
CREATE DATABASE gb_partitions;
-- One shard id belongs to one database of an instance: this one is shard 3 (BRA, sa-east-1).
ALTER DATABASE gb_partitions SET gb_scale.shard_id = 3;
-- The application's role owns the tables; maintenance, whoever runs it, acts as that owner.
CREATE ROLE gb_app;
SQL

psql_demo -d gb_partitions -v sim_start="$SIM_START" <<'SQL'
CREATE EXTENSION gb_scale;
CREATE SCHEMA gb AUTHORIZATION gb_app;
CREATE SCHEMA gb_archive AUTHORIZATION gb_app;
-- The simulation's clock (superuser only; this session's maintenance only):
-- registration premakes from the first simulated day, not from today.
SET gb_scale.test_now = :'sim_start';
SET ROLE gb_app;

-- Sessions are keyed by their snowflake ID alone: partitioned by that ID, the
-- primary key stays (id).  Profile 'sessions': monthly, 3 months ahead, 2 months kept.
CREATE TABLE gb.sessions (
    id          bigint NOT NULL DEFAULT gb_next_id(),
    tenant_id   bigint NOT NULL,
    channel     gb_channel_type NOT NULL,
    user_ref    text NOT NULL,
    last_active timestamptz NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE INDEX ON gb.sessions (tenant_id, last_active);

-- Messages: one list partition per dedicated tenant, every other tenant in the
-- tail (gb.messages_tenants); below each, daily partitions in the shard's
-- local time and a default partition for rows outside the premade days.
-- Profile 'messages': daily, 14 days ahead, 90 days kept.
CREATE TABLE gb.messages (
    id           bigint NOT NULL,
    shard_id     smallint NOT NULL DEFAULT 3,
    tenant_id    bigint NOT NULL,
    session_id   bigint NOT NULL,
    role         gb_message_role NOT NULL,
    message_type gb_message_type NOT NULL DEFAULT 0,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id, shard_id, created_at)
) PARTITION BY LIST (tenant_id);
CREATE INDEX ON gb.messages (session_id, created_at);

-- Analytics events: monthly (profile 'analytics': 3 months ahead, 12 months
-- kept), each month split into 4 hash buckets of tenant_id.
CREATE TABLE gb.analytics_events (
    id         bigint NOT NULL,
    tenant_id  bigint NOT NULL,
    event_type smallint NOT NULL,
    payload    jsonb,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (id, tenant_id, created_at)
) PARTITION BY RANGE (created_at);

-- Daily usage aggregates, on a date column (profile 'analytics': monthly).
CREATE TABLE gb.usage_analytics (
    day        date NOT NULL,
    tenant_id  bigint NOT NULL,
    messages   integer NOT NULL,
    sessions   integer NOT NULL,
    body_bytes bigint NOT NULL,
    PRIMARY KEY (tenant_id, day)
) PARTITION BY RANGE (day);

\echo '--- registering the four tables (tables created by each call: partitions, buckets, subtrees)'
SELECT 'gb.sessions' AS parent,
       gb_partition_create('gb.sessions', 'id', NULL, profile => 'sessions',
                           start_at => :'sim_start') AS tables_created
UNION ALL
SELECT 'gb.messages',
       gb_partition_create('gb.messages', 'created_at', NULL, profile => 'messages',
                           tenant_column => 'tenant_id', default_partition => true,
                           time_zone => 'America/Sao_Paulo', start_at => :'sim_start')
UNION ALL
SELECT 'gb.analytics_events',
       gb_partition_create('gb.analytics_events', 'created_at', NULL, profile => 'analytics',
                           tenant_column => 'tenant_id', tenant_buckets => 4,
                           start_at => :'sim_start')
UNION ALL
SELECT 'gb.usage_analytics',
       gb_partition_create('gb.usage_analytics', 'day', NULL, profile => 'analytics',
                           start_at => :'sim_start');
-- Usage aggregates: 3 months kept, then archived to schema gb_archive rather than dropped.
SELECT gb_partition_retention('gb.usage_analytics', '3 months', 'archive', 'gb_archive') \gset
RESET ROLE;

-- The demo's bookkeeping: every message ever inserted, to count what survives.
CREATE SCHEMA demo;
CREATE TABLE demo.message_ledger (tenant_id bigint, id bigint, created_at timestamptz);

-- One simulated day of traffic for 300 tenants, tenant 1 a quarter of it:
-- 100 sessions of 10 messages each, 400 analytics events, and the day's usage
-- aggregated per tenant.  IDs are the snowflake IDs of the rows' times.
CREATE PROCEDURE demo.traffic(d date) LANGUAGE plpgsql AS $proc$
DECLARE
    t0 timestamptz := d::timestamp AT TIME ZONE 'UTC';
    n  integer := d - date '2024-01-01';
BEGIN
    INSERT INTO gb.sessions (id, tenant_id, channel, user_ref, last_active)
    SELECT gb_id_from_time(t0 + j * interval '864 s', 3::smallint),
           CASE WHEN j % 4 = 0 THEN 1 ELSE 2 + (j * 7919 + n * 31) % 299 END,
           (j % 10)::smallint, 'user-' || j, t0 + j * interval '864 s' + interval '14 min'
      FROM generate_series(0, 99) j;

    WITH ins AS (
        INSERT INTO gb.messages (id, tenant_id, session_id, role, body, created_at)
        SELECT gb_id_from_time(t0 + i * interval '86.4 s', 3::smallint),
               CASE WHEN i / 10 % 4 = 0 THEN 1 ELSE 2 + (i / 10 * 7919 + n * 31) % 299 END,
               gb_id_from_time(t0 + i / 10 * interval '864 s', 3::smallint),
               (1 + i % 2)::smallint, repeat('x', 20 + i % 80), t0 + i * interval '86.4 s'
          FROM generate_series(0, 999) i
        RETURNING tenant_id, id, created_at)
    INSERT INTO demo.message_ledger SELECT * FROM ins;
    -- A few messages from devices whose clock runs 40 days ahead: past the
    -- premade days, they land in a default partition until maintenance.
    IF extract(day FROM d) IN (10, 20) THEN
        WITH ins AS (
            INSERT INTO gb.messages (id, tenant_id, session_id, role, body, created_at)
            SELECT gb_id_from_time(t0 + interval '40 days', 3::smallint) + 100 + i,
                   2 + i, 0, 1::smallint, 'sent from the future', t0 + interval '40 days'
              FROM generate_series(0, 2) i
            RETURNING tenant_id, id, created_at)
        INSERT INTO demo.message_ledger SELECT * FROM ins;
    END IF;

    INSERT INTO gb.analytics_events (id, tenant_id, event_type, payload, created_at)
    SELECT gb_id_from_time(t0 + i * interval '216 s', 3::smallint),
           CASE WHEN i % 4 = 0 THEN 1 ELSE 2 + (i * 104729 + n * 17) % 299 END,
           (i % 12)::smallint, jsonb_build_object('k', i), t0 + i * interval '216 s'
      FROM generate_series(0, 399) i;

    INSERT INTO gb.usage_analytics (day, tenant_id, messages, sessions, body_bytes)
    SELECT d, tenant_id, count(*), count(DISTINCT session_id), sum(length(body))
      FROM gb.messages
     WHERE created_at >= t0 AND created_at < t0 + interval '1 day'
     GROUP BY tenant_id;
END
$proc$;

-- A month of old events imported before the simulation: gb_partition_ensure
-- creates the partitions the backfill needs (there is no default partition).
\echo '--- backfill of analytics events from before the first premade month'
SELECT gb_partition_ensure('gb.analytics_events', :'sim_start'::timestamptz - interval '1 month',
                           :'sim_start'::timestamptz) AS partitions_created;
INSERT INTO gb.analytics_events (id, tenant_id, event_type, created_at)
SELECT gb_id_from_time(ts, 3::smallint), 2 + i % 299, 0, ts
  FROM generate_series(1, 3000) i,
       LATERAL (SELECT :'sim_start'::timestamptz - interval '1 month' + i * interval '10 min') t(ts);
\echo '--- without a default partition, a row outside the partitions fails (23514)'
\set ON_ERROR_STOP 0
INSERT INTO gb.sessions (id, tenant_id, channel, user_ref, last_active)
VALUES (gb_id_from_time(:'sim_start'::timestamptz - interval '1 year', 3::smallint), 1, 0,
        'imported from the old system', :'sim_start'::timestamptz - interval '1 year');
\set ON_ERROR_STOP 1
SQL

# The simulation, one psql session: each day's traffic, then maintenance with
# the clock at the end of that day; a progress line on the first of each month.
(
	echo "\\pset footer off"
	echo "\\pset format unaligned"
	echo "\\pset tuples_only on"
	export TZ=UTC
	day_s=$(date -u -d "$SIM_START" +%s)
	d=$SIM_START
	while [[ "$d" < "$SIM_END" || "$d" == "$SIM_END" ]]; do
		echo "CALL demo.traffic('$d');"
		if [ "$d" == "$SIM_DEDICATE" ]; then
			cat <<SQL
\\echo '--- $d: tenant 1 gets its own subtree; its rows move there'
SELECT 'rows moved: ' || gb_tenant_dedicate('gb.messages', 1);
SELECT 'tenant 1 keeps 30 days of messages instead of 90'
  FROM (SELECT gb_tenant_retention('gb.messages', 1, '30 days')) r;
SQL
		fi
		echo "SET gb_scale.test_now = '$d 23:50:00+00';"
		if [ "${d:8:2}" == "10" ] && [ -z "${SHOWN_DEFAULT:-}" ]; then
			SHOWN_DEFAULT=1
			printf '%s\n' "\\echo '--- $d: 3 messages stamped 40 days ahead wait in the default partition; maintenance moves them out'"
			echo "SELECT * FROM demo.progress('$d');"
			echo "CALL gb_run_maintenance();"
			echo "SELECT * FROM demo.progress('$d');"
			printf '%s\n' "\\echo '---'"
		else
			echo "CALL gb_run_maintenance();"
		fi
		if [ "${d:8:2}" == "01" ]; then
			echo "SELECT * FROM demo.progress('$d');"
		fi
		day_s=$((day_s + 86400))
		printf -v d '%(%F)T' "$day_s"
	done
	echo "SELECT * FROM demo.progress('$SIM_END');"
) >"$DEMO_DIR/simulation.sql"

psql_demo -d gb_partitions <<'SQL'
-- One line of the simulation's progress: partitions (leaves) and rows waiting
-- in default partitions, per table.
CREATE FUNCTION demo.progress(d date) RETURNS TABLE(line text) LANGUAGE sql AS $$
SELECT format('%s  %s', d, string_agg(format('%s %s parts%s', replace(parent::text, 'gb.', ''), partitions,
                                             CASE WHEN default_rows > 0 THEN format(' (%s in default)', default_rows) ELSE '' END),
                                      ' | ' ORDER BY parent::text))
  FROM gb_scale.partition_status
$$;
SQL

gb_log "simulating $(( ( $(date -u -d "$SIM_END" +%s) - $(date -u -d "$SIM_START" +%s) ) / 86400 + 1 )) days"
SIM_T0=${EPOCHREALTIME/./}
psql_demo -d gb_partitions -f "$DEMO_DIR/simulation.sql"
SIM_MS=$(( (${EPOCHREALTIME/./} - SIM_T0) / 1000 ))
gb_log "simulation took $((SIM_MS / 1000)).$(printf '%03d' $((SIM_MS % 1000))) s"

echo
psql_demo -d gb_partitions <<'SQL'
\pset footer off
ANALYZE;
\echo '--- what the simulation left: the registered tables'
SELECT * FROM gb_scale.partition_status ORDER BY parent::text;

\echo '--- every message inserted is there exactly once, unless retention dropped its day'
WITH oldest AS MATERIALIZED (           -- per subtree: NULL tenant_id is the tail
        SELECT tenant_id, min(from_time) AS from_time
          FROM gb_partition_list('gb.messages') WHERE NOT is_default GROUP BY tenant_id),
     kept AS MATERIALIZED (
        SELECT l.* FROM demo.message_ledger l
          LEFT JOIN gb_scale.partition_tenant d
                 ON d.parent = 'gb.messages'::regclass AND d.tenant_id = l.tenant_id AND d.subtree IS NOT NULL
          JOIN oldest o ON o.tenant_id IS NOT DISTINCT FROM d.tenant_id
         WHERE l.created_at >= o.from_time)
SELECT (SELECT count(*) FROM demo.message_ledger) AS inserted,
       (SELECT count(*) FROM kept) AS expected,
       (SELECT count(*) FROM gb.messages) AS present,
       (SELECT count(*) FROM kept k LEFT JOIN gb.messages m USING (tenant_id, id)
         WHERE m.id IS NULL) AS missing,
       (SELECT count(*) - count(DISTINCT (tenant_id, id)) FROM gb.messages) AS duplicates,
       (SELECT count(*) FROM gb_scale.partition_status WHERE default_rows > 0) AS tables_with_rows_in_default;

\echo '--- oldest partition kept per subtree against its retention (clock: the last simulated day)'
SELECT coalesce('tenant ' || l.tenant_id, 'tail') AS subtree, count(*) AS partitions,
       min(l.from_time) AS oldest_from, max(l.to_time) AS newest_to,
       coalesce(t.retention, c.retention) AS retention,
       c.last_run - coalesce(t.retention, c.retention) AS clock_minus_retention
  FROM gb_partition_list('gb.messages') l
  JOIN gb_scale.partition_config c ON c.parent = 'gb.messages'::regclass
  LEFT JOIN gb_scale.partition_tenant t ON t.parent = c.parent AND t.tenant_id = l.tenant_id
 WHERE NOT l.is_default
 GROUP BY l.tenant_id, t.retention, c.retention, c.last_run ORDER BY l.tenant_id NULLS LAST;

\echo '--- excerpt of gb_partition_list: the newest partitions of tenant 1 and of the tail'
(SELECT partition, tenant_id, is_default, from_time, to_time, rows
   FROM gb_partition_list('gb.messages') WHERE tenant_id = 1 ORDER BY from_time DESC NULLS FIRST LIMIT 3)
UNION ALL
(SELECT partition, tenant_id, is_default, from_time, to_time, rows
   FROM gb_partition_list('gb.messages') WHERE tenant_id IS NULL ORDER BY from_time DESC NULLS FIRST LIMIT 3);
\echo '--- analytics_events: one month, 4 hash buckets'
SELECT partition, bucket, from_time, to_time, rows, pg_size_pretty(bytes) AS size
  FROM gb_partition_list('gb.analytics_events')
 WHERE from_time = (SELECT min(from_time) FROM gb_partition_list('gb.analytics_events'))
 ORDER BY bucket;
\echo '--- usage_analytics: months past 3 archived to schema gb_archive'
SELECT c.oid::regclass AS archived, c.reltuples::bigint AS rows
  FROM pg_class c WHERE c.relnamespace = 'gb_archive'::regnamespace AND c.relkind = 'r' ORDER BY 1;

\echo '--- partitions belong to the table owner, whoever ran maintenance'
SELECT r.rolname AS owner, count(*) AS leaves
  FROM gb_scale.partition_config c, gb_partition_list(c.parent) l
  JOIN pg_class k ON k.oid = l.partition JOIN pg_roles r ON r.oid = k.relowner
 GROUP BY r.rolname;

\echo '--- a tenant''s recent messages: only its own subtree is scanned'
EXPLAIN (COSTS OFF)
SELECT count(*) FROM gb.messages
 WHERE tenant_id = 1 AND created_at >= date_trunc('day', now()) - interval '1 day'
   AND created_at < date_trunc('day', now());
\echo '--- one tenant''s events of one month: one hash bucket'
EXPLAIN (COSTS OFF)
SELECT count(*) FROM gb.analytics_events
 WHERE tenant_id = 42 AND created_at >= date_trunc('month', now()) AND created_at < date_trunc('month', now()) + interval '1 month';
SQL

# The sizing verdict from the live volumes (the last full day is $SIM_END).
psql_demo -d gb_partitions <<'SQL'
\pset footer off
\echo '--- sizing: the When-to-Scale row this shard is in, from the last 7 full days (gb_scale.sizing)'
SELECT metric, source, day, volume, scale_row, setup, next_threshold, growth_model,
       round(growth_per_day::numeric, 4) AS growth_per_day, crosses_on
  FROM gb_scale.sizing;
\echo '--- the heaviest tenants of the shard and what to do about them (gb_scale.tenant_heavy)'
SELECT tenant_id, row_count, round(row_share::numeric, 3) AS row_share, action, command
  FROM gb_scale.tenant_heavy(3);
SQL

# The background worker takes over with the real clock: it runs maintenance in
# the databases listed in gb_scale.maintenance_databases every naptime seconds.
gb_log "background worker: gb_scale.maintenance_databases = 'gb_partitions', naptime 1 s"
psql_demo -d postgres -c "ALTER SYSTEM SET gb_scale.maintenance_databases = 'gb_partitions'" \
	-c "ALTER SYSTEM SET gb_scale.maintenance_naptime = 1" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 60); do
	ran=$(psql_demo -d gb_partitions -tAc \
		"SELECT count(*) FROM gb_scale.partition_status WHERE last_run > now() - interval '1 minute'")
	[ "$ran" -eq 4 ] && break
	sleep 0.5
done
psql_demo -d gb_partitions <<'SQL'
\pset footer off
\echo '--- after the worker''s pass (real clock)'
SELECT parent, partitions, newest_bound, ahead, default_rows, last_success, last_error
  FROM gb_scale.partition_status ORDER BY parent::text;
SQL

# ---------------------------------------------------------------------------
# Multi-shard: three shards of their own (test/shards.sh: USA, DEU, SGP, each
# server with its SHARD_ID), tenants routed by the shard directory, their
# sessions and messages written on their shards, one cross-shard report.
# ---------------------------------------------------------------------------
DEMO_TENANTS=${DEMO_TENANTS:-300}
echo
gb_log "multi-shard: 3 shards started by test/shards.sh, $DEMO_TENANTS tenants routed to them"
shards() { PG_CONFIG="$PG_CONFIG" bash "$GB_ROOT/test/shards.sh" "$@"; }
MOVE_WRITER_PID=''
trap '[ -z "$MOVE_WRITER_PID" ] || kill "$MOVE_WRITER_PID" 2>/dev/null; shards stop >/dev/null 2>&1; gb_cleanup' EXIT
eval "$(shards start 3 2>/dev/null)"
shard_sql() { shards psql "$@"; }
for s in $GB_SHARDS; do
	c=GB_SHARD_${s}_CONNSTR
	printf '   shard %s: %s\n' "$s" "${!c}"
done
first=${GB_SHARDS%% *}
first_conn=GB_SHARD_${first}_CONNSTR

# The directory is edited on shard 1 and copied to the others: tenants that no
# shard's range holds get an explicit placement.
shard_sql "$first" -c "SELECT gb_tenant_assign(2000042, 4::smallint), gb_tenant_assign(4500001, 6::smallint)" >/dev/null
for s in $GB_SHARDS; do
	[ "$s" = "$first" ] || shard_sql "$s" -c "SELECT gb_shard_sync('${!first_conn} user=postgres')" 2>&1 >/dev/null |
		sed "s/^NOTICE:  /   shard $s: /"
done
echo '--- the shard directory, the same on every shard after gb_shard_sync'
shard_sql "${GB_SHARDS##* }" -P footer=off -c "SELECT shard_id, region_code, datacenter, min_tenant_id, max_tenant_id, is_primary FROM gb_scale.shard_config ORDER BY shard_id" \
	-c "SELECT tenant_id, shard_id, region_code FROM gb_scale.tenant_shard_map ORDER BY tenant_id"

# The tenants: spread over the three ranges, plus the two placed explicitly.
tenants=$(shard_sql "$first" -At -c "SELECT string_agg(t::text, ',') FROM (
	SELECT (ARRAY[1, 3000001, 5000001])[1 + i % 3] + (i * 7919) % 1000000 AS t
	  FROM generate_series(1, $DEMO_TENANTS - 2) i
	UNION SELECT 2000042 UNION SELECT 4500001) x")
# The application's router: ask any shard (here each in turn) where a tenant
# lives and how to reach it, then write there as the application role, one
# transaction per tenant with gb_set_tenant().
route_dir=''
gb_tmpdir route_dir
k=0
for s in $GB_SHARDS; do
	shard_sql "$s" -At -F ' ' -c "SELECT t, gb_shard_for_tenant(t), gb_shard_connection(t)
	                               FROM unnest('{$tenants}'::bigint[]) WITH ORDINALITY u(t, n)
	                              WHERE n % 3 = $k"
	k=$((k + 1))
done >"$route_dir/routes"
echo "--- $(wc -l <"$route_dir/routes") tenants looked up, a third on each shard (gb_shard_for_tenant, gb_shard_connection), then written there as gb_app"
while read -r t s conn; do
	cat >>"$route_dir/shard$s.sql" <<SQL
BEGIN;
SELECT gb_set_tenant($t) \\gset
WITH s AS (INSERT INTO gb.sessions (tenant_id, channel, user_ref)
           SELECT $t, ($t % 10)::smallint, 'user-' || u FROM generate_series(1, 1 + $t % 3) u RETURNING id)
INSERT INTO gb.messages (tenant_id, session_id, channel, role, body)
SELECT $t, s.id, ($t % 10)::smallint, (1 + i % 2)::smallint, 'message ' || i FROM s, generate_series(1, 4) i;
COMMIT;
SQL
	echo "$conn" >"$route_dir/shard$s.conn"
done <"$route_dir/routes"
chmod -R a+rX "$route_dir"
for f in "$route_dir"/shard*.sql; do
	s=$(basename "$f" .sql)
	gb_as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$(cat "$route_dir/$s.conn") user=gb_app" -f "$f" >/dev/null
	printf '   %s: %s tenants written through %s\n' "$s" "$(grep -c '^BEGIN' "$f")" "$(cat "$route_dir/$s.conn")"
done
echo '--- a tenant that no shard serves'
{ shard_sql 4 -c "SELECT gb_shard_for_tenant(2500000)" 2>&1 || true; } | sed -n 's/^/   /; 1p'

echo '--- the shared-memory routing map of each shard (gb_scale.routing_status)'
for s in $GB_SHARDS; do
	shard_sql "$s" -At -c "SELECT 'shard$s: ' || state || ', ' || entries || ' placements, ' || bytes || ' bytes for the whole server, loaded ' || loads || 'x, ' || updates || ' entries written by commits' FROM gb_scale.routing_status WHERE database = pg_catalog.current_database()" | sed 's/^/   /'
done

echo "--- what each tenant did on shard$first (gb_stat_tenants, the 5 tenants that wrote the most rows)"
shard_sql "$first" -P footer=off -c "SELECT tenant_id, writes, rows_inserted, xacts, round(exec_time_ms::numeric, 2) AS exec_time_ms
                                        FROM gb_stat_tenants
                                       WHERE database = pg_catalog.current_database() AND tenant_id IS NOT NULL
                                       ORDER BY rows_inserted DESC, tenant_id LIMIT 5" | sed 's/^/   /'
echo '--- the routes for a load balancer (gb_shard_routes: tenant ranges and placements, never a password)'
shard_sql "$first" -P footer=off -c "SELECT min_tenant_id, max_tenant_id, shard_id, explicit, region_code, host, port, dbname
                                       FROM gb_shard_routes()" | sed 's/^/   /'

echo '--- cross-shard report from shard 1 through gb_global (postgres_fdw, one partition per shard)'
shard_sql "$first" -P footer=off <<'SQL'
SELECT gb_shard_fdw_setup() \gset
SELECT gb_global_table('gb.sessions', 'sessions'), gb_global_table('gb.messages', 'messages') \gset
SELECT coalesce(c.shard_id::text, 'total') AS shard, c.region_code AS region, c.datacenter,
       count(DISTINCT m.tenant_id) AS tenants,
       (SELECT count(*) FROM gb_global.sessions s
         WHERE c.shard_id IS NULL OR s.shard_id = c.shard_id) AS sessions,
       count(*) AS messages
  FROM gb_global.messages m
  LEFT JOIN gb_scale.shard_config c ON c.shard_id = m.shard_id
 GROUP BY GROUPING SETS ((c.shard_id, c.region_code, c.datacenter), ())
 ORDER BY c.shard_id NULLS LAST;
SQL
local_total=0
for s in $GB_SHARDS; do
	local_total=$((local_total + $(shard_sql "$s" -At -c "SELECT count(*) FROM gb.messages")))
done
echo "   messages counted on each shard directly, summed: $local_total"
echo '--- one shard only: WHERE shard_id = 4 is pruned to its partition'
shard_sql "$first" -P footer=off -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM gb_global.messages WHERE shard_id = 4" | sed 's/^/   /'

# ---------------------------------------------------------------------------
# Online tenant move: tenant 42, thousands of messages on shard 1, moved to
# shard 4 by gb_tenant_move while the application keeps writing for it.  At
# the switch its write fails with 40001; it asks the router again and goes on
# on shard 4.  Every row must then be on shard 4 once, and none on shard 1.
# ---------------------------------------------------------------------------
MOVE_TENANT=42
MOVE_TARGET=4
MOVE_MESSAGES=${DEMO_MOVE_MESSAGES:-5000}
echo
gb_log "online move: tenant $MOVE_TENANT ($MOVE_MESSAGES messages) from shard $first to shard $MOVE_TARGET while it writes"
MOVE_T0=${EPOCHREALTIME/./}
move_dir=''
gb_tmpdir move_dir
: >"$move_dir/ids"
: >"$move_dir/writes"
: >"$move_dir/refused"

# The move publishes the tenant's updates and deletes filtered on tenant_id:
# PostgreSQL 15 allows that only when the replica identity holds the column.
for s in $GB_SHARDS; do
	shard_sql "$s" <<'SQL'
CREATE UNIQUE INDEX sessions_replica_identity ON gb.sessions (tenant_id, shard_id, id);
ALTER TABLE gb.sessions REPLICA IDENTITY USING INDEX sessions_replica_identity;
CREATE UNIQUE INDEX messages_replica_identity ON gb.messages (tenant_id, shard_id, id);
ALTER TABLE gb.messages REPLICA IDENTITY USING INDEX messages_replica_identity;
SQL
done
shard_sql "$first" <<SQL
BEGIN;
SELECT gb_set_tenant($MOVE_TENANT) \\gset
WITH s AS (INSERT INTO gb.sessions (tenant_id, channel, user_ref)
           SELECT $MOVE_TENANT, 1, 'user-' || u FROM generate_series(1, 50) u RETURNING id, user_ref)
INSERT INTO gb.messages (tenant_id, session_id, channel, role, body)
SELECT $MOVE_TENANT, s.id, 1, (1 + i % 2)::smallint, 'message ' || i || ' of ' || s.user_ref
  FROM s, generate_series(1, $MOVE_MESSAGES / 50) i;
COMMIT;
SQL
# Counts and a hash of the rows the tenant had before the move, without
# shard_id (the column that says which shard holds a row).
move_digest() {
	shard_sql "$1" -At -c "
	SELECT (SELECT count(*) || ' sessions, ' FROM gb.sessions WHERE tenant_id = $MOVE_TENANT)
	    || (SELECT count(*) || ' messages, row hash '
	               || md5(coalesce(string_agg((to_jsonb(r) - 'shard_id')::text, ',' ORDER BY r.id), ''))
	          FROM gb.messages r WHERE tenant_id = $MOVE_TENANT AND body NOT LIKE 'live message %')"
}
move_before=$(move_digest "$first")
shard_sql "$first" -At -c "SELECT id FROM gb.messages WHERE tenant_id = $MOVE_TENANT" >>"$move_dir/ids"
move_session=$(shard_sql "$first" -At -c "SELECT min(id) FROM gb.sessions WHERE tenant_id = $MOVE_TENANT")
echo "--- tenant $MOVE_TENANT on shard $first: $move_before"

# The router: ask shard $1 where the tenant lives and how to reach it.
move_route() {
	shard_sql "$1" -At -c "SELECT gb_shard_for_tenant($MOVE_TENANT) || ' ' || gb_shard_connection($MOVE_TENANT)"
}
# The application's writer: one message per transaction, as gb_app, on the
# shard the router named.  On 40001 it asks the router again (the shard that
# refused it: its directory changed at the switch) and retries the message
# there.  Committed IDs go to ids, their shard to writes.
move_writer() {
	local route shard conn n=1 out refusals=0
	route=$(move_route "$first") || return 1
	shard=${route%% *} conn=${route#* }
	while [ ! -e "$move_dir/stop" ]; do
		if out=$(gb_as_pg psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$conn user=gb_app" 2>&1 <<SQL
BEGIN;
SELECT gb_set_tenant($MOVE_TENANT) \\gset
INSERT INTO gb.messages (tenant_id, session_id, role, body)
VALUES ($MOVE_TENANT, $move_session, 1, 'live message $n') RETURNING id;
COMMIT;
SQL
		); then
			grep -E '^[0-9]+$' <<<"$out" >>"$move_dir/ids"
			echo "$shard" >>"$move_dir/writes"
			n=$((n + 1)) refusals=0
		elif grep -q '^ERROR:  40001:' <<<"$out"; then
			grep -E '^(ERROR|HINT):' <<<"$out" | sed "s/^/shard $shard: /" >>"$move_dir/refused"
			refusals=$((refusals + 1))
			[ "$refusals" -lt 50 ] || return 1
			route=$(move_route "$shard") || return 1
			shard=${route%% *} conn=${route#* }
		else
			printf '%s\n' "$out" >"$move_dir/writer_error"
			return 1
		fi
	done
}
move_writes_on() { grep -cx "$1" "$move_dir/writes" || true; }
# Wait until the writer has made N writes on shard S.
move_wait_writes() {
	local _
	for _ in $(seq 1 600); do
		[ "$(move_writes_on "$2")" -ge "$1" ] && return 0
		kill -0 "$MOVE_WRITER_PID" 2>/dev/null || break
		sleep 0.05
	done
	gb_die "the writer did not make $1 writes on shard $2: $(cat "$move_dir/writer_error" 2>/dev/null)"
}

move_writer &
MOVE_WRITER_PID=$!
move_wait_writes 20 "$first"
move_writes_before=$(move_writes_on "$first")
echo "--- CALL gb_tenant_move($MOVE_TENANT, $MOVE_TARGET::smallint) on shard $first while the writer writes; its NOTICEs:"
shard_sql "$first" -c "CALL gb_tenant_move($MOVE_TENANT, $MOVE_TARGET::smallint)" 2>&1 | sed 's/^NOTICE:  /   /'
move_wait_writes 20 "$MOVE_TARGET"
touch "$move_dir/stop"
wait "$MOVE_WRITER_PID" || gb_die "the writer failed: $(cat "$move_dir/writer_error" 2>/dev/null)"
MOVE_WRITER_PID=''

echo '--- gb_scale.tenant_moves on the source'
shard_sql "$first" -P footer=off -c "SELECT tenant_id, source_shard, target_shard, state, rows_copied, pause,
                                            finished_at - started_at AS took, error
                                       FROM gb_scale.tenant_moves WHERE tenant_id = $MOVE_TENANT" | sed 's/^/   /'
echo "--- the writer: $(move_writes_on "$first") messages committed on shard $first ($((
	$(move_writes_on "$first") - move_writes_before)) while the move ran), then refused:"
sed 's/^/   /' "$move_dir/refused"
[ -s "$move_dir/refused" ] || gb_die "the writer was never refused by shard $first"
echo "   it asked the router again and went on: $(move_writes_on "$MOVE_TARGET") messages committed on shard $MOVE_TARGET"

# Every row the tenant had and every write the writer committed, once on the
# target with the target's shard_id; nothing on the source; nothing left of
# the replication; every shard's directory names the target.
echo '--- the check: every row of the tenant once on the target, none on the source'
move_check=$({
	echo 'CREATE TEMP TABLE expected (id bigint PRIMARY KEY);'
	echo 'COPY expected FROM STDIN;'
	cat "$move_dir/ids"
	echo '\.'
	cat <<SQL
SELECT (SELECT count(*) FROM expected) || ' ' || count(m.id) || ' '
       || (SELECT count(*) FROM expected e WHERE NOT EXISTS (SELECT FROM gb.messages x WHERE x.id = e.id AND x.tenant_id = $MOVE_TENANT)) || ' '
       || (count(m.id) - count(e.id)) || ' '
       || (count(m.id) - count(DISTINCT m.id)) || ' '
       || count(*) FILTER (WHERE m.shard_id <> gb_current_shard())
  FROM gb.messages m LEFT JOIN expected e ON e.id = m.id
 WHERE m.tenant_id = $MOVE_TENANT;
SQL
} | shard_sql "$MOVE_TARGET" -At)
read -r expected present missing unexpected duplicates other_shard_id <<<"$move_check"
on_source=$(shard_sql "$first" -At -c "SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = $MOVE_TENANT)
                                             + (SELECT count(*) FROM gb.sessions WHERE tenant_id = $MOVE_TENANT)")
move_after=$(move_digest "$MOVE_TARGET")
left=0
stale=''
directory=''
for s in $GB_SHARDS; do
	left=$((left + $(shard_sql "$s" -At -c "SELECT (SELECT count(*) FROM pg_replication_slots)
	                                              + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_subscription)")))
	d=$(shard_sql "$s" -At -c "SELECT gb_shard_for_tenant($MOVE_TENANT)")
	directory+="shard $s: $d, "
	[ "$d" = "$MOVE_TARGET" ] || stale+=" $s"
done
echo "   messages expected (the $MOVE_MESSAGES it had + the writer's): $expected; on shard $MOVE_TARGET: $present, missing $missing, unexpected $unexpected, duplicated $duplicates, with another shard_id $other_shard_id"
echo "   rows it had before the move, on shard $MOVE_TARGET: $move_after ($([ "$move_after" = "$move_before" ] && echo equal || echo DIFFERENT))"
echo "   rows of tenant $MOVE_TENANT left on shard $first: $on_source; replication slots, publications and subscriptions left on the shards: $left"
echo "   gb_shard_for_tenant($MOVE_TENANT): ${directory%, }"
if ! { [ "$expected" = "$present" ] && [ "$missing" = 0 ] && [ "$unexpected" = 0 ] && [ "$duplicates" = 0 ] &&
	[ "$other_shard_id" = 0 ] && [ "$move_after" = "$move_before" ] && [ "$on_source" = 0 ] &&
	[ "$left" = 0 ] && [ -z "$stale" ]; }; then
	gb_die "the move of tenant $MOVE_TENANT lost, duplicated or left rows or objects behind"
fi
move_state=$(shard_sql "$first" -At -c "SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = $MOVE_TENANT")
[ "$move_state" = 'done' ] || gb_die "the move of tenant $MOVE_TENANT is $move_state, not done"
MOVE_MS=$(( (${EPOCHREALTIME/./} - MOVE_T0) / 1000 ))
gb_log "online move step took $((MOVE_MS / 1000)).$(printf '%03d' $((MOVE_MS % 1000))) s"
shards stop 2>/dev/null
gb_log "shards stopped"
