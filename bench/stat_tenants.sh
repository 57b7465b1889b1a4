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
#   ST_SECS=8 ST_ROUNDS=6 (defaults): seconds per pgbench run, rounds per
#   workload (about 5 minutes with the Citus half).  Prints a markdown table
#   with the median tps of each variant and the median of the rounds'
#   ratios on/off, for gb_scale and for Citus.
#
# Side by side, Citus' own tenant statistics (citus_stat_tenants) on the same
# workload: a single-node Citus (test/citus.sh start 0: the coordinator holds
# the shards) with gb_scale loaded but its tracking off, tables distributed by
# tenant_id (ct_accounts: 1,000 tenants x 1,000 rows; ct_events), and in each
# transaction gb_set_tenant(:t) then a router query on tenant :t, which
# citus_stat_tenants attributes to :t:
#   select: ... SELECT v FROM ct_accounts WHERE tenant_id = :t AND id = :id;
#   insert: ... INSERT INTO ct_events (tenant_id, v) VALUES (:t, :t);
# Two pgbench runs at the same time again, one whose sessions have
# citus.stat_tenants_track = 'all' and one with 'none' (PGOPTIONS), in the
# rounds between gb_scale's, so that both pairs see the same machine.
# citus.stat_tenants_limit = 1000 so that Citus keeps every tenant, as
# gb_stat_tenants does.  Citus comes from test/citus.sh install (../shared/
# citus/ beside the repository, or GB_CITUS_TARBALL); without it, or with
# ST_CITUS=off, that half is skipped with the reason, and gb_scale's ratio
# still prints.
set -euo pipefail
ST_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$ST_BENCH_DIR/../scripts/lib.sh"

ST_SECS=${ST_SECS:-8}
ST_ROUNDS=${ST_ROUNDS:-6}
ST_CLIENTS=${ST_CLIENTS:-4}
ST_TENANTS=1000

ST_CITUS_DIR=
st_cleanup() {
	[ -n "$ST_CITUS_DIR" ] && GB_CITUS_DIR=$ST_CITUS_DIR bash "$ST_BENCH_DIR/../test/citus.sh" stop 2>/dev/null
	gb_cleanup
}
trap st_cleanup EXIT
gb_build_install
export PG_CONFIG
gb_bench_cluster_start T \
	"synchronous_commit = off"
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

# The Citus half: why it is skipped, or the single node it runs on.
ST_CITUS_SKIP=
if [ "${ST_CITUS:-on}" = off ]; then
	ST_CITUS_SKIP="ST_CITUS=off"
elif ! ST_CITUS_SKIP=$(bash "$ST_BENCH_DIR/../test/citus.sh" install 2>&1 >/dev/null); then
	ST_CITUS_SKIP=${ST_CITUS_SKIP:-test/citus.sh install failed}
else
	ST_CITUS_SKIP=
	gb_tmpdir ST_CITUS_DIR
	GB_CITUS_DIR=$ST_CITUS_DIR GB_CITUS_DB=bench GB_CITUS_CONF="shared_buffers = 256MB
synchronous_commit = off
max_wal_size = 4GB
checkpoint_timeout = 30min
jit = off
gb_scale.stat_tenants_track = off
citus.stat_tenants_limit = 1000" bash "$ST_BENCH_DIR/../test/citus.sh" start 0 >/dev/null
	C_HOST=$ST_CITUS_DIR/node0
	C_PORT=$(cat "$ST_CITUS_DIR/node0/port")
	csql() { "$GB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$C_HOST" -p "$C_PORT" -U postgres -d bench "$@"; }
	gb_log "loading the Citus tables"
	csql -c "CREATE TABLE ct_accounts (tenant_id bigint NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id))" \
		-c "SELECT create_distributed_table('ct_accounts', 'tenant_id')" \
		-c "CREATE TABLE ct_events (tenant_id bigint NOT NULL, v int NOT NULL, at timestamptz NOT NULL DEFAULT now())" \
		-c "SELECT create_distributed_table('ct_events', 'tenant_id', colocate_with => 'ct_accounts')" \
		-c "INSERT INTO ct_accounts SELECT t, i, 0 FROM generate_series(1, $ST_TENANTS) t, generate_series(1, 1000) i" \
		-c "VACUUM ANALYZE ct_accounts" >/dev/null
	cat >"$SW/cselect.sql" <<SQL
\set id random(1, 1000)
\set t random(1, $ST_TENANTS)
BEGIN;
SELECT gb_set_tenant(:t);
SELECT v FROM ct_accounts WHERE tenant_id = :t AND id = :id;
END;
SQL
	cat >"$SW/cinsert.sql" <<SQL
\set t random(1, $ST_TENANTS)
BEGIN;
SELECT gb_set_tenant(:t);
INSERT INTO ct_events (tenant_id, v) VALUES (:t, :t);
END;
SQL
fi
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

# The Citus pair: the same workload on the single node, one pgbench whose
# sessions track their tenants (citus.stat_tenants_track = 'all') and one
# that does not ('none'), at the same time.  Prints "tps_all tps_none
# transactions_all".
st_citus_round() {
	local on off
	gb_as_pg env PGOPTIONS="-c citus.stat_tenants_track=all" "$GB_BINDIR/pgbench" -h "$C_HOST" -p "$C_PORT" \
		-U postgres -n -M prepared -c "$ST_CLIENTS" -j 2 -T "$ST_SECS" -f "$SW/c$1.sql" bench >"$SW/call.out" 2>/dev/null &
	on=$!
	gb_as_pg env PGOPTIONS="-c citus.stat_tenants_track=none" "$GB_BINDIR/pgbench" -h "$C_HOST" -p "$C_PORT" \
		-U postgres -n -M prepared -c "$ST_CLIENTS" -j 2 -T "$ST_SECS" -f "$SW/c$1.sql" bench >"$SW/cnone.out" 2>/dev/null &
	off=$!
	wait "$on" "$off"
	echo "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$SW/call.out") $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$SW/cnone.out")" \
		"$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$SW/call.out")"
}

# Queries citus_stat_tenants holds now (this period and the last: a round is
# far shorter than a period, so it falls in at most two) and how many tenants.
st_citus_counted() {
	csql -c "SELECT coalesce(sum(query_count_in_this_period + query_count_in_last_period), 0), count(*)
		FROM citus_stat_tenants_local(true)"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# from here on, bench_off's sessions must leave no entry at all
tsql bench_on -c "SELECT gb_stat_tenants_reset()" >/dev/null

declare -A TPS RATIOS CITUS_SEEN
for w in select insert; do
	st_round "$w" >/dev/null # warm-up: caches, the tenants' entries
	[ -z "$ST_CITUS_SKIP" ] && st_citus_round "$w" >/dev/null
	for ((r = 1; r <= ST_ROUNDS; r++)); do
		read -r on off < <(st_round "$w")
		TPS[$w.on]+="$on "
		TPS[$w.off]+="$off "
		RATIOS[$w]+="$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.4f", a / b }') "
		gb_log "$w round $r: track on $on tps, off $off tps"
		[ -n "$ST_CITUS_SKIP" ] && continue
		# Citus' monitor is emptied before each round, so that what it
		# counts afterwards is that round's 'all' sessions, and nothing of
		# the 'none' ones.
		csql -c "SELECT citus_stat_tenants_local_reset()" >/dev/null
		read -r on off xacts < <(st_citus_round "$w")
		TPS[citus.$w.on]+="$on "
		TPS[citus.$w.off]+="$off "
		RATIOS[citus.$w]+="$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.4f", a / b }') "
		CITUS_SEEN[$w]="$(st_citus_counted | tr '|' ' ') $xacts"
		gb_log "$w round $r, Citus: track all $on tps, none $off tps; counted ${CITUS_SEEN[$w]% *} of $xacts queries"
	done
done

# The statistics saw the work of bench_on, and nothing of bench_off.
seen=$(tsql bench_on -c "SELECT count(*) FILTER (WHERE database = 'bench_on' AND tenant_id IS NOT NULL),
		count(*) FILTER (WHERE database = 'bench_off'), coalesce(sum(rows_inserted) FILTER (WHERE database = 'bench_on'), 0)
	FROM gb_stat_tenants")
load=$(cut -d' ' -f1-3 /proc/loadavg)

# st_row LABEL KEY: one table row from the rounds of KEY (w or citus.w).
st_row() {
	local on off ratio
	on=$(tr ' ' '\n' <<<"${TPS[$2.on]}" | grep . | median)
	off=$(tr ' ' '\n' <<<"${TPS[$2.off]}" | grep . | median)
	ratio=$(tr ' ' '\n' <<<"${RATIOS[$2]}" | grep . | median)
	awk -v w="$1" -v on="$on" -v off="$off" -v r="$ratio" 'BEGIN {
		printf "| %s | %.0f | %.0f | %.3f | %.1f%% |\n", w, on, off, r, (1 - r) * 100 }'
}

echo
echo "| workload | median tps, tracking on | median tps, tracking off | median of the rounds' ratios on/off | fewer tps with tracking on |"
echo "|---|---|---|---|---|"
for w in select insert; do
	st_row "gb_scale $w (gb_scale.stat_tenants_track on / off)" "$w"
done
if [ -z "$ST_CITUS_SKIP" ]; then
	for w in select insert; do
		st_row "Citus $w (citus.stat_tenants_track 'all' / 'none')" "citus.$w"
	done
fi
echo
for w in select insert; do
	echo "Per-round $w tps, on: ${TPS[$w.on]}"
	echo "Per-round $w tps, off: ${TPS[$w.off]}"
	echo "Per-round $w ratios: ${RATIOS[$w]}"
done
echo "gb_stat_tenants after the run (reset before it): tenant entries in bench_on, entries in bench_off, rows inserted counted in bench_on: ${seen//|/, }"
if [ -n "$ST_CITUS_SKIP" ]; then
	echo "Citus comparison skipped: $ST_CITUS_SKIP"
else
	for w in select insert; do
		echo "Per-round Citus $w tps, all: ${TPS[citus.$w.on]}"
		echo "Per-round Citus $w tps, none: ${TPS[citus.$w.off]}"
		echo "Per-round Citus $w ratios: ${RATIOS[citus.$w]}"
		read -r counted tenants xacts <<<"${CITUS_SEEN[$w]}"
		echo "citus_stat_tenants after the last $w round (reset before it): $counted queries of $tenants tenants counted; the 'all' sessions ran $xacts"
	done
fi
echo "$ST_CLIENTS clients per variant, both variants at once, $ST_SECS s per round, $ST_ROUNDS rounds; load average at the end: $load"
