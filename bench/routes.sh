#!/usr/bin/env bash
# bench/routes.sh: gb_shard_routes() over 7 shards of 1,000,000 tenants and
# 10,000, 100,000 and 1,000,000 placements (every (7,000,000 / size)th
# tenant moved to the next shard, as in bench/routing.sh), work_mem = 4MB.
# For each size: the routes counted (placements and range pieces), the time
# of SELECT count(*) FROM gb_shard_routes() in a new session (psql \timing,
# best of 3), the peak private memory of its backend (RssAnon of
# /proc/<pid>/status, sampled every 10 ms) against a fresh backend's, and
# the temporary bytes the tuplestore wrote.  Then, at the largest size, a
# statement_timeout of 100 ms ends the call (57014): the merge checks for
# interrupts.  Prints a markdown table.  Run as root or as postgres:
#   PG_CONFIG=... bash bench/routes.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
trap gb_cleanup EXIT
gb_build_install
gb_cluster_start R "shared_preload_libraries = 'gb_scale'" "gb_scale.shard_id = 1" "work_mem = '4MB'"
gb_tmpdir RW

rsql() { "$GB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$R_HOST" -p "$R_PORT" -U postgres -d postgres "$@"; }

rsql -c "CREATE EXTENSION gb_scale" -c "INSERT INTO gb_scale.shard_config
	(shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
	SELECT s, (ARRAY['USA','USA','BRA','DEU','GBR','SGP','JPN'])[s], 'dc-' || s,
	       format('host=shard%s.internal port=5432 dbname=gb user=gb password=secret', s),
	       (s - 1) * 1000000 + 1, s * 1000000
	  FROM generate_series(1, 7) s"

# routes_timed: one call in a new session; sets RT_MS, RT_KB, RT_FRESH_KB.
routes_timed() {
	local pidfile=$RW/pid out=$RW/out peak=0 pid kb
	rm -f "$pidfile"
	cat >"$RW/routes.sql" <<SQL
SELECT pg_backend_pid() AS pid \gset
\o $pidfile
\qecho :pid
\o
SELECT pg_sleep(0.2);
\timing on
SELECT count(*) FROM gb_shard_routes();
SQL
	rsql -f "$RW/routes.sql" >"$out" 2>&1 &
	local psql_pid=$!
	while [ ! -s "$pidfile" ]; do sleep 0.01; done
	pid=$(cat "$pidfile")
	RT_FRESH_KB=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
	while kill -0 "$psql_pid" 2>/dev/null; do
		kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		[ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
		sleep 0.01
	done
	wait "$psql_pid" || { cat "$out" >&2; gb_die "gb_shard_routes failed"; }
	RT_MS=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$out" | tail -1)
	RT_KB=$peak
}

printf '| placements | routes (placements + range pieces) | time, best of 3 | peak backend memory | temp written |\n'
printf '|---|---|---|---|---|\n'
for size in 10000 100000 1000000; do
	rsql -c "TRUNCATE gb_scale.tenant_shard_map" \
		-c "INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code)
			SELECT t, c.shard_id, c.region_code
			  FROM generate_series(7000000 / $size, 7000000, 7000000 / $size) t
			  JOIN gb_scale.shard_config c ON c.shard_id = ((t - 1) / 1000000 + 1) % 7 + 1" \
		-c "VACUUM ANALYZE gb_scale.tenant_shard_map"
	counts=$(rsql -c "SELECT count(*) FILTER (WHERE explicit) || ' + ' || count(*) FILTER (WHERE NOT explicit)
		FROM gb_shard_routes()")
	best="" best_kb=0 fresh=0
	for _ in 1 2 3; do
		routes_timed
		if [ -z "$best" ] || awk -v a="$RT_MS" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$RT_MS; fi
		[ "$RT_KB" -gt "$best_kb" ] && best_kb=$RT_KB
		fresh=$RT_FRESH_KB
	done
	temp=$(rsql -c "SELECT pg_stat_force_next_flush()" -c "SELECT pg_size_pretty(temp_bytes) FROM pg_stat_database WHERE datname = 'postgres'" | tail -1)
	rsql -c "SELECT pg_stat_reset()" >/dev/null
	printf '| %s | %s | %.0f ms | %d MB (fresh: %d MB) | %s (all 4 calls) |\n' \
		"$size" "$counts" "$best" $((best_kb / 1024)) $((fresh / 1024)) "$temp"
done

out=$(rsql -c "SET statement_timeout = 100" -c "SELECT count(*) FROM gb_shard_routes()" 2>&1 || true)
case $out in
*"canceling statement due to statement timeout"*) echo "statement_timeout = 100ms: the call was cancelled" ;;
*) echo "statement_timeout = 100ms: NOT cancelled: $out"; exit 1 ;;
esac
