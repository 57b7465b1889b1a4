#!/usr/bin/env bash
# The cost of row quotas on the insert path (issue 15, section 2): pgbench
# single-row inserts with a tenant set in every transaction, 4 clients, in
# three variants measured in the same cluster and the same run:
#
#   on:    INSERT INTO q_events, which has a quota for every tenant (its plan
#          tier's, 10^12 rows a day: never refusing), gb_scale.quotas = on;
#   off:   the same table, gb_scale.quotas = off (reloaded before the run:
#          the setting is instance-wide), which still counts every row;
#   none:  INSERT INTO n_events, the same table without any quota (no
#          trigger).
#
#   BEGIN; SELECT gb_set_tenant(:t); INSERT INTO X (tenant_id, v) VALUES (:t, :t); END;
#
# with :t drawn over 1,000 tenants, all on the plan tier 'pro' (a tenant's
# quota comes from its tier: the longest lookup, cached per backend).  The table has no registered tenant column: rows count
# for the transaction's tenant.  synchronous_commit = off so that CPU, not
# the WAL flush, bounds the insert rate (the harder case for the overhead).
#
# Paired runs, as bench/stat_tenants.sh: each measured variant runs at the
# same time as 'none' (4 clients each, both pgbench runs at once), so that
# whatever else the machine does hits both alike; the backends share the
# CPU, so the variant that spends more CPU per transaction completes fewer.
# gb_scale.quotas is instance-wide (reload), which 'none' does not read.  A
# round is the pair on/none, then the pair off/none; each pair's tps ratio
# is taken and the medians over the rounds printed.  Target (issue 15): at
# most 5% fewer tps with quotas on.
#
#   PG_CONFIG=/path/to/pg_config bash bench/quotas.sh
#   QB_SECS=10 QB_ROUNDS=6 QB_CLIENTS=4 (defaults)
set -euo pipefail
QB_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$QB_BENCH_DIR/../scripts/lib.sh"

QB_SECS=${QB_SECS:-10}
QB_ROUNDS=${QB_ROUNDS:-6}
QB_CLIENTS=${QB_CLIENTS:-4}
QB_TENANTS=1000

trap gb_cleanup EXIT
gb_build_install
gb_bench_cluster_start T \
	"synchronous_commit = off"
gb_tmpdir QW

tsql() {
	"$GB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T_HOST" -p "$T_PORT" -U postgres -d bench "$@"
}

gb_as_pg "$GB_BINDIR/createdb" -h "$T_HOST" -p "$T_PORT" -U postgres bench
tsql -c "CREATE EXTENSION gb_scale" \
	-c "CREATE TABLE q_events (tenant_id bigint NOT NULL, v int NOT NULL, at timestamptz NOT NULL DEFAULT now())" \
	-c "CREATE TABLE n_events (LIKE q_events INCLUDING ALL)" \
	-c "SELECT count(gb_tenant_plan(t, gb_enum_code('gb_plan_tier', 'pro'))) FROM generate_series(1, $QB_TENANTS) t" \
	-c "SELECT gb_plan_quota(gb_enum_code('gb_plan_tier', 'pro'), 'q_events', 1000000000000, NULL)" >/dev/null

for table in q_events n_events; do
	cat >"$QW/$table.sql" <<SQL
\set t random(1, $QB_TENANTS)
BEGIN;
SELECT gb_set_tenant(:t);
INSERT INTO $table (tenant_id, v) VALUES (:t, :t);
END;
SQL
done
chmod 644 "$QW"/*.sql

# quotas on|off: instance-wide; waits until a new session sees it.
quotas() {
	tsql -c "ALTER SYSTEM SET gb_scale.quotas = $1" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 1 100); do
		[ "$(tsql -c 'SHOW gb_scale.quotas')" = "$1" ] && return 0
		sleep 0.1
	done
	gb_die "gb_scale.quotas did not become $1"
}

# pair on|off: the variant and 'none' at the same time; prints "tps tps_none".
pair() {
	local v w
	quotas "$1"
	gb_as_pg "$GB_BINDIR/pgbench" -h "$T_HOST" -p "$T_PORT" -U postgres -n -M prepared \
		-c "$QB_CLIENTS" -j 2 -T "$QB_SECS" -f "$QW/q_events.sql" bench >"$QW/v.out" 2>/dev/null &
	v=$!
	gb_as_pg "$GB_BINDIR/pgbench" -h "$T_HOST" -p "$T_PORT" -U postgres -n -M prepared \
		-c "$QB_CLIENTS" -j 2 -T "$QB_SECS" -f "$QW/n_events.sql" bench >"$QW/n.out" 2>/dev/null &
	w=$!
	wait "$v" "$w"
	echo "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$QW/v.out") $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$QW/n.out")"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A TPS RATIOS
pair on >/dev/null # warm-up: caches, the counters
for ((r = 1; r <= QB_ROUNDS; r++)); do
	line="round $r:"
	for v in on off; do
		read -r a b < <(pair "$v")
		TPS[$v]+="$a "
		TPS[none.$v]+="$b "
		RATIOS[$v]+="$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.4f", a / b }') "
		line+=" quotas $v $a tps / none $b tps;"
	done
	gb_log "$line"
done
quotas on

# Every row inserted into q_events (on and off alike) was counted, none refused.
counted=$(tsql -c "SELECT (SELECT count(*) FROM q_events), (SELECT coalesce(sum(rows_today), 0) FROM gb_tenant_quotas
	WHERE tbl = 'q_events'::regclass), (SELECT count(*) FROM gb_tenant_quotas WHERE tbl = 'q_events'::regclass)")
load=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "| variant | median tps | median tps of 'none' run beside it | median of the rounds' ratios | fewer tps than no quota |"
echo "|---|---|---|---|---|"
for v in on off; do
	tps=$(tr ' ' '\n' <<<"${TPS[$v]}" | grep . | median)
	base=$(tr ' ' '\n' <<<"${TPS[none.$v]}" | grep . | median)
	ratio=$(tr ' ' '\n' <<<"${RATIOS[$v]}" | grep . | median)
	awk -v v="$v" -v t="$tps" -v n="$base" -v r="$ratio" 'BEGIN {
		printf "| quota, gb_scale.quotas = %s | %.0f | %.0f | %.3f | %.1f%% |\n", v, t, n, r, (1 - r) * 100 }'
done
echo
for v in on off; do
	echo "Per-round tps, quotas $v: ${TPS[$v]}; none beside it: ${TPS[none.$v]}"
	echo "Per-round ratios $v/none: ${RATIOS[$v]}"
done
echo "After the run: rows in q_events, rows counted in gb_tenant_quotas today, tenants counted: ${counted//|/, }"
echo "$QB_CLIENTS clients per variant, both runs of a pair at once, $QB_SECS s per run, $QB_ROUNDS rounds; $(nproc) CPUs; load average at the end: $load"
