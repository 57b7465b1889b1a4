#!/usr/bin/env bash
# The noisy neighbour (issue 15, section 3): tenant 1 floods the shard with
# NN_FLOOD (8) pgbench clients running a CPU-heavy statement, while tenant 2
# runs a light, rate-paced workload (NN_RATE transactions per second, one
# client) whose latency is measured, in three phases of one run:
#
#   unloaded:   tenant 2 alone;
#   no limits:  tenant 2 next to the flood;
#   limits:     the same, with gb_tenant_limit(1, NN_LIMIT_XACTS, NULL): at
#               most NN_LIMIT_XACTS (1) transactions of tenant 1 run at once,
#               the others wait (gb_scale.tenant_wait_timeout = 60s, set for
#               the flood's sessions) on their latch instead of taking CPU.
#
# The phases alternate for NN_ROUNDS rounds so that a machine getting busier
# or quieter hits all alike; the medians and their ratios are printed.
#
#   flood:  BEGIN; SELECT gb_set_tenant(1);
#           SELECT count(*) FROM generate_series(1, 200000); END;
#   light:  BEGIN; SELECT gb_set_tenant(2);
#           SELECT abalance FROM pgbench_accounts WHERE aid = :aid; END;
#
#   PG_CONFIG=/path/to/pg_config bash bench/noisy_neighbour.sh
#   NN_SECS=10 NN_ROUNDS=3 NN_FLOOD=8 NN_RATE=50 NN_LIMIT_XACTS=1 (defaults)
#
# Target: with limits, tenant 2's latency within 2x its unloaded figure;
# without them it is not.
set -euo pipefail
NN_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$NN_BENCH_DIR/../scripts/lib.sh"

NN_SECS=${NN_SECS:-10}
NN_ROUNDS=${NN_ROUNDS:-3}
NN_FLOOD=${NN_FLOOD:-8}
NN_RATE=${NN_RATE:-50}
NN_LIMIT_XACTS=${NN_LIMIT_XACTS:-1}

trap gb_cleanup EXIT
gb_build_install
gb_bench_cluster_start T \
	"max_connections = 50"
gb_tmpdir NW

tsql() {
	"$GB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T_HOST" -p "$T_PORT" -U postgres -d bench "$@"
}

gb_as_pg "$GB_BINDIR/createdb" -h "$T_HOST" -p "$T_PORT" -U postgres bench
gb_as_pg "$GB_BINDIR/pgbench" -h "$T_HOST" -p "$T_PORT" -U postgres -i -q -s 1 bench >/dev/null 2>&1
tsql -c "CREATE EXTENSION gb_scale"

cat >"$NW/flood.sql" <<'SQL'
BEGIN;
SELECT gb_set_tenant(1);
SELECT count(*) FROM generate_series(1, 200000);
END;
SQL
cat >"$NW/light.sql" <<'SQL'
\set aid random(1, 100000)
BEGIN;
SELECT gb_set_tenant(2);
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
END;
SQL
chmod 644 "$NW"/*.sql

# light: prints tenant 2's average latency (ms) over NN_SECS.
light() {
	gb_as_pg "$GB_BINDIR/pgbench" -h "$T_HOST" -p "$T_PORT" -U postgres -n -M prepared \
		-c 1 -j 1 -R "$NN_RATE" -T "$NN_SECS" -f "$NW/light.sql" bench 2>/dev/null |
		sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p'
}

# phase unloaded|nolimits|limits: prints "latency flood_tps".
phase() {
	local flood_pid latency flood_tps=0
	if [ "$1" = limits ]; then
		tsql -c "SELECT gb_tenant_limit(1, $NN_LIMIT_XACTS, NULL)" >/dev/null
	else
		tsql -c "SELECT gb_tenant_limit(1, NULL, NULL)" >/dev/null
	fi
	if [ "$1" != unloaded ]; then
		gb_as_pg env PGOPTIONS="-c gb_scale.tenant_wait_timeout=60s" \
			"$GB_BINDIR/pgbench" -h "$T_HOST" -p "$T_PORT" -U postgres -n -M prepared \
			-c "$NN_FLOOD" -j 2 -T $((NN_SECS + 2)) -f "$NW/flood.sql" bench >"$NW/flood.out" 2>&1 &
		flood_pid=$!
		sleep 1
	fi
	latency=$(light)
	if [ "$1" != unloaded ]; then
		wait "$flood_pid"
		flood_tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$NW/flood.out")
		grep -q 'aborted' "$NW/flood.out" && grep 'aborted\|error' "$NW/flood.out" >&2
	fi
	echo "$latency $flood_tps"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A LAT TPS
phase unloaded >/dev/null # warm-up
for ((r = 1; r <= NN_ROUNDS; r++)); do
	for p in unloaded nolimits limits; do
		read -r lat tps < <(phase "$p")
		LAT[$p]+="$lat "
		TPS[$p]+="$tps "
		gb_log "round $r, $p: tenant 2 latency $lat ms, tenant 1 $tps tps"
	done
done
tsql -c "SELECT gb_tenant_limit(1, NULL, NULL)" >/dev/null
load=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A MED FT
for p in unloaded nolimits limits; do
	MED[$p]=$(tr ' ' '\n' <<<"${LAT[$p]}" | grep . | median)
	FT[$p]=$(tr ' ' '\n' <<<"${TPS[$p]}" | grep . | median)
done

echo
echo "| phase | tenant 2 median latency (ms) | ratio to unloaded | tenant 1 median tps |"
echo "|---|---|---|---|"
for p in unloaded nolimits limits; do
	awk -v p="$p" -v l="${MED[$p]}" -v u="${MED[unloaded]}" -v t="${FT[$p]}" 'BEGIN {
		name = (p == "unloaded") ? "unloaded (tenant 2 alone)" : (p == "nolimits") ? "tenant 1 flooding, no limits" : "tenant 1 flooding, limited"
		printf "| %s | %.3f | %.2fx | %.0f |\n", name, l, l / u, t }'
done
echo
for p in unloaded nolimits limits; do
	echo "Per-round $p: tenant 2 latency (ms) ${LAT[$p]}; tenant 1 tps ${TPS[$p]}"
done
echo "Tenant 1: $NN_FLOOD clients; limited: at most $NN_LIMIT_XACTS concurrent transactions, gb_scale.tenant_wait_timeout = 60s."
echo "Tenant 2: 1 client at $NN_RATE tps. $NN_SECS s per phase, $NN_ROUNDS rounds; $(nproc) CPUs; load average at the end: $load"
