#!/usr/bin/env bash
# gb_shard_sync at 10k, 100k and 1M tenant placements: two databases of one
# throwaway cluster, the source (sync_src) and this shard (sync_dst).  For
# each size: the first (full) sync, a sync that finds nothing new, and syncs
# after 0.1%, 1% and 10% of the placements changed on the source (a third
# moved to another shard, a third deleted, a third added), each with the
# peak private memory (RssAnon of /proc/<pid>/status, sampled every 10 ms:
# palloc'd and libpq memory, not shared buffers) of the syncing backend.
# Baseline in the same run: the raw cost of reading the source's map
# (COPY ... TO STDOUT through psql, ordered by tenant_id) and a fresh
# backend's RssAnon.
#
#   PG_CONFIG=/path/to/pg_config bash bench/routing_sync.sh
#   SYNC_SIZES="10000 100000" bash bench/routing_sync.sh   other sizes
#   SYNC_REPS=3 (default): best of 3 for the unchanged sync
#
# Prints a markdown table; called by bench/routing.sh too.
set -euo pipefail
SYNC_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SYNC_BENCH_DIR/../scripts/lib.sh"

SYNC_SIZES=${SYNC_SIZES:-10000 100000 1000000}
SYNC_REPS=${SYNC_REPS:-3}

trap gb_cleanup EXIT
gb_build_install
gb_bench_cluster_start S
SW=$S_DIR/syncbench
mkdir -p "$SW"
chmod 777 "$SW"

ssql() { # ssql DB [psql args...]
	local db=$1
	shift
	"$GB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$S_HOST" -p "$S_PORT" -U postgres -d "$db" "$@"
}
SRC="host=$S_HOST port=$S_PORT dbname=sync_src user=postgres"

ms_now() { date +%s%N | cut -c1-13; }

# sync_timed: one gb_shard_sync in a new session, timed by psql's \timing;
# sets SYNC_MS, SYNC_KB (peak RssAnon of its backend) and SYNC_NOTICE.
sync_timed() {
	local pidfile=$SW/pid out=$SW/out peak=0 pid="" kb
	rm -f "$pidfile"
	cat >"$SW/sync.sql" <<SQL
SELECT pg_backend_pid() AS pid \gset
\o $pidfile
\qecho :pid
\o
SELECT pg_sleep(0.2);
\timing on
SELECT gb_shard_sync('$SRC');
SQL
	ssql sync_dst -f "$SW/sync.sql" >"$out" 2>&1 &
	local psql_pid=$!
	while [ ! -s "$pidfile" ]; do sleep 0.01; done
	pid=$(cat "$pidfile")
	while kill -0 "$psql_pid" 2>/dev/null; do
		kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		[ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
		sleep 0.01
	done
	wait "$psql_pid" || { cat "$out" >&2; gb_die "sync failed"; }
	SYNC_MS=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$out" | tail -1)
	SYNC_KB=$peak
	SYNC_NOTICE=$(grep -o 'tenant placements.*' "$out" || true)
}

# The raw cost of reading the source's map: COPY through psql, ordered.
raw_read_ms() {
	local t0 t1
	t0=$(ms_now)
	ssql sync_src -c "COPY (SELECT tenant_id, shard_id, region_code, created_at FROM gb_scale.tenant_shard_map ORDER BY tenant_id) TO STDOUT" >/dev/null
	t1=$(ms_now)
	echo $((t1 - t0))
}

# change PCT: PCT% of the source's placements changed (a third moved, a
# third deleted, a third added above the highest id).
change() {
	local n=$1 pct=$2 k
	k=$(awk -v n="$n" -v p="$pct" 'BEGIN { k = int(n * p / 100 / 3); if (k < 1) k = 1; print k }')
	ssql sync_src <<SQL
UPDATE gb_scale.tenant_shard_map m SET shard_id = 1 + (m.shard_id % 7)
 WHERE m.tenant_id IN (SELECT tenant_id FROM gb_scale.tenant_shard_map ORDER BY random() LIMIT $k);
DELETE FROM gb_scale.tenant_shard_map
 WHERE tenant_id IN (SELECT tenant_id FROM gb_scale.tenant_shard_map ORDER BY random() LIMIT $k);
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code)
SELECT mx + g, 1 + g % 7, 'USA' FROM (SELECT max(tenant_id) AS mx FROM gb_scale.tenant_shard_map) x,
       generate_series(1, $k) g;
VACUUM ANALYZE gb_scale.tenant_shard_map;
SQL
	echo $((3 * k))
}

ssql postgres -c "CREATE DATABASE sync_src" -c "CREATE DATABASE sync_dst"
fresh_kb=""
printf '| placements | first sync | unchanged | 0.1%% changed | 1%% changed | 10%% changed | raw read of the source map |\n'
printf '|---|---|---|---|---|---|---|\n'
for n in $SYNC_SIZES; do
	for db in sync_src sync_dst; do
		ssql "$db" -c "DROP EXTENSION IF EXISTS gb_scale CASCADE" -c "CREATE EXTENSION gb_scale" >/dev/null 2>&1
	done
	ssql sync_src <<SQL
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
SELECT s, 'USA', 'dc-' || s, 'host=shard' || s, (s - 1) * 10000000, s * 10000000 - 1 FROM generate_series(1, 7) s;
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code, created_at)
SELECT t, 1 + t % 7, 'USA', timestamptz '2025-01-01 00:00:00+00' + t * interval '1 second'
  FROM generate_series(1, $n) t;
VACUUM ANALYZE gb_scale.tenant_shard_map;
SQL
	if [ -z "$fresh_kb" ]; then
		# A fresh backend that has loaded gb_scale: the memory floor.
		cat >"$SW/fresh.sql" <<SQL
SELECT gb_current_shard();
SELECT pg_backend_pid() AS pid \gset
\o $SW/fresh_pid
\qecho :pid
\o
SELECT pg_sleep(1);
SQL
		rm -f "$SW/fresh_pid"
		ssql sync_dst -f "$SW/fresh.sql" >/dev/null &
		while [ ! -s "$SW/fresh_pid" ]; do sleep 0.01; done
		sleep 0.3
		fresh_kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$(cat "$SW/fresh_pid")/status")
		wait
	fi
	sync_timed
	first="$(printf '%.0f ms, %d MB' "$SYNC_MS" $((SYNC_KB / 1024)))"
	best=""
	best_kb=0
	for _ in $(seq "$SYNC_REPS"); do
		sync_timed
		case "$SYNC_NOTICE" in *"0 added, 0 changed, 0 removed"*) ;; *) gb_die "unchanged sync wrote: $SYNC_NOTICE" ;; esac
		if [ -z "$best" ] || awk -v a="$SYNC_MS" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$SYNC_MS; fi
		[ "$SYNC_KB" -gt "$best_kb" ] && best_kb=$SYNC_KB
	done
	unchanged="$(printf '%.0f ms, %d MB' "$best" $((best_kb / 1024)))"
	cols=()
	for pct in 0.1 1 10; do
		changed=$(change "$n" "$pct")
		sync_timed
		cols+=("$(printf '%.0f ms, %d MB (%s rows)' "$SYNC_MS" $((SYNC_KB / 1024)) "$changed")")
		# Both sides equal again?
		a=$(ssql sync_src -c "SELECT md5(string_agg(format('%s|%s|%s|%s', tenant_id, shard_id, region_code, created_at), ';' ORDER BY tenant_id)) FROM gb_scale.tenant_shard_map")
		b=$(ssql sync_dst -c "SELECT md5(string_agg(format('%s|%s|%s|%s', tenant_id, shard_id, region_code, created_at), ';' ORDER BY tenant_id)) FROM gb_scale.tenant_shard_map")
		[ "$a" = "$b" ] || gb_die "maps differ after the sync of $pct% changes at $n"
	done
	raw=$(raw_read_ms)
	printf '| %s | %s | %s | %s | %s | %s | %s ms |\n' "$n" "$first" "$unchanged" "${cols[0]}" "${cols[1]}" "${cols[2]}" "$raw"
done
printf '\nTimes: in the syncing session (psql \\timing); memory: peak RssAnon of its backend (a fresh backend with gb_scale loaded: %d MB).\n' $((fresh_kb / 1024))
