#!/usr/bin/env bash
# The cost of gb_stat_tenants: pgbench with a tenant set in every
# transaction, 4 clients, gb_scale.stat_tenants_track = on against off in
# the same cluster and the same run: two databases, bench_on and bench_off
# (ALTER DATABASE ... SET), driven at the same time in each round so that a
# machine getting busier or quieter hits both alike.
#
#   select: BEGIN; SELECT gb_set_tenant(:t); SELECT abalance FROM
#           pgbench_accounts WHERE aid = :aid; END;
#   insert: BEGIN; SELECT gb_set_tenant(:t); INSERT INTO st_events ... (one
#           row); END;
# with :t drawn over 1,000 tenants (1,000 entries in gb_stat_tenants).
# synchronous_commit = off so that CPU, not the WAL flush, bounds the
# insert rate (the harder case for the overhead).
#
#   PG_CONFIG=/path/to/pg_config bash bench/stat_tenants.sh
#   ST_SECS=10 ST_ROUNDS=6 (defaults): seconds per pgbench run, rounds per
#   workload.  Prints a markdown table with the median tps of each variant
#   and the median of the rounds' ratios on/off.
#
# The same workload on a single-node Citus with citus.stat_tenants_track =
# 'all' against 'none' (issue 15) is measured separately, on Citus' own
# build (../shared/citus/): not here.
set -euo pipefail
ST_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$ST_BENCH_DIR/../scripts/lib.sh"

ST_SECS=${ST_SECS:-10}
ST_ROUNDS=${ST_ROUNDS:-6}
ST_CLIENTS=${ST_CLIENTS:-4}
ST_TENANTS=1000

trap gb_cleanup EXIT
gb_build_install
gb_cluster_start T \
	"shared_preload_libraries = 'gb_scale'" \
	"gb_scale.shard_id = 1" \
	"shared_buffers = 256MB" \
	"synchronous_commit = off" \
	"max_wal_size = 4GB" \
	"checkpoint_timeout = 30min" \
	"jit = off"
gb_tmpdir SW

tsql() { # tsql DB [psql args...]
	local db=$1
	shift
	"$GB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T_HOST" -p "$T_PORT" -U postgres -d "$db" "$@"
}

for v in on off; do
	gb_as_pg "$GB_BINDIR/createdb" -h "$T_HOST" -p "$T_PORT" -U postgres "bench_$v"
	gb_as_pg "$GB_BINDIR/pgbench" -h "$T_HOST" -p "$T_PORT" -U postgres -i -q -s 10 "bench_$v" >/dev/null 2>&1
	tsql "bench_$v" -c "CREATE EXTENSION gb_scale" \
		-c "CREATE TABLE st_events (tenant_id bigint NOT NULL, v int NOT NULL, at timestamptz NOT NULL DEFAULT now())" \
		-c "ALTER DATABASE bench_$v SET gb_scale.stat_tenants_track = $v"
done

cat >"$SW/select.sql" <<SQL
\set aid random(1, 1000000)
\set t random(1, $ST_TENANTS)
BEGIN;
SELECT gb_set_tenant(:t);
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
END;
SQL
cat >"$SW/insert.sql" <<SQL
\set t random(1, $ST_TENANTS)
BEGIN;
SELECT gb_set_tenant(:t);
INSERT INTO st_events (tenant_id, v) VALUES (:t, :t);
END;
SQL
chmod 644 "$SW"/*.sql

# One round: the same workload in databases bench_on (tracking on) and
# bench_off (off), 4 clients each, both pgbench runs at the same time, so
# that whatever else the machine does hits both alike.  The backends share
# the CPU evenly, so the variant that spends more CPU per transaction gets
# fewer transactions: the tps ratio is the overhead.
# st_round WORKLOAD: prints "tps_on tps_off".
st_round() {
	local on off
	gb_as_pg "$GB_BINDIR/pgbench" -h "$T_HOST" -p "$T_PORT" -U postgres -n -M prepared \
		-c "$ST_CLIENTS" -j 2 -T "$ST_SECS" -f "$SW/$1.sql" bench_on >"$SW/on.out" 2>/dev/null &
	on=$!
	gb_as_pg "$GB_BINDIR/pgbench" -h "$T_HOST" -p "$T_PORT" -U postgres -n -M prepared \
		-c "$ST_CLIENTS" -j 2 -T "$ST_SECS" -f "$SW/$1.sql" bench_off >"$SW/off.out" 2>/dev/null &
	off=$!
	wait "$on" "$off"
	echo "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$SW/on.out") $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$SW/off.out")"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# from here on, bench_off's sessions must leave no entry at all
tsql bench_on -c "SELECT gb_stat_tenants_reset()" >/dev/null

declare -A TPS RATIOS
for w in select insert; do
	st_round "$w" >/dev/null # warm-up: caches, the tenants' entries
	for ((r = 1; r <= ST_ROUNDS; r++)); do
		read -r on off < <(st_round "$w")
		TPS[$w.on]+="$on "
		TPS[$w.off]+="$off "
		RATIOS[$w]+="$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.4f", a / b }') "
		gb_log "$w round $r: track on $on tps, off $off tps"
	done
done

# The statistics saw the work of bench_on, and nothing of bench_off.
seen=$(tsql bench_on -c "SELECT count(*) FILTER (WHERE database = 'bench_on' AND tenant_id IS NOT NULL),
		count(*) FILTER (WHERE database = 'bench_off'), coalesce(sum(rows_inserted) FILTER (WHERE database = 'bench_on'), 0)
	FROM gb_stat_tenants")
load=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "| workload | median tps, track on | median tps, track off | median of the rounds' ratios on/off | fewer tps with tracking on |"
echo "|---|---|---|---|---|"
for w in select insert; do
	on=$(tr ' ' '\n' <<<"${TPS[$w.on]}" | grep . | median)
	off=$(tr ' ' '\n' <<<"${TPS[$w.off]}" | grep . | median)
	ratio=$(tr ' ' '\n' <<<"${RATIOS[$w]}" | grep . | median)
	awk -v w="$w" -v on="$on" -v off="$off" -v r="$ratio" 'BEGIN {
		printf "| %s | %.0f | %.0f | %.3f | %.1f%% |\n", w, on, off, r, (1 - r) * 100 }'
done
echo
for w in select insert; do
	echo "Per-round $w tps, on: ${TPS[$w.on]}"
	echo "Per-round $w tps, off: ${TPS[$w.off]}"
	echo "Per-round $w ratios: ${RATIOS[$w]}"
done
echo "gb_stat_tenants after the run (reset before it): tenant entries in bench_on, entries in bench_off, rows inserted counted in bench_on: ${seen//|/, }"
echo "$ST_CLIENTS clients per variant, both variants at once, $ST_SECS s per round, $ST_ROUNDS rounds; load average at the end: $load"
