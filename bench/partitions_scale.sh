#!/usr/bin/env bash
# The partition manager as the worker and pg_cron run it, against pg_partman
# 4.7 on the same cluster, in the same run (issue 14, items 14-16):
#   A. a maintenance pass with nothing to do over 100 tables of 61 daily
#      partitions, as the first call of a new session (how the worker and
#      every pg_cron job run it) and as a later call of the same session,
#      next to pg_partman's run_maintenance() in a new session;
#   B. as registered tables accumulate to SCALE_STAGES (100, 1,000, 3,000),
#      in a database per manager (pg_partman's has no gb_scale installed):
#      registering one more table; a pass that makes one new daily partition
#      for every table (premake raised by a day: gb_scale's CALL
#      gb_run_maintenance() against CALL partman.run_maintenance_proc(), each
#      in a new session), per table; and DROP TABLE of an unrelated empty
#      table, in gb_scale's database against pg_partman's, where no gb_scale
#      hook runs.
# Tables have a primary key only and no toasted column (bench/partitions_scale.sql);
# in B they have SCALE_PARTS daily partitions each (4 by default, not the 32
# of the issue, so that 3,000 tables per manager fit in ~15 minutes on 2
# cores: each index built costs an fsync).
#
#   bash bench/partitions_scale.sh                 full run
#   BENCH_QUICK=1 bash bench/partitions_scale.sh   smoke run (20 and 100 tables)
#
# Runs on a throwaway cluster; prints the report and writes it to
# bench/results/partitions_scale.md, the samples to partitions_scale.tsv.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	SCALE_STAGES=(20 100) NOOP_TABLES=20 REPS=3
else
	SCALE_STAGES=(100 1000 3000) NOOP_TABLES=100 REPS=5
fi
SCALE_PARTS=${SCALE_PARTS:-4}

gb_ensure_packages "${GB_BASE_PACKAGES[@]}" "${GB_BENCH_PACKAGES[@]}"
trap gb_cleanup EXIT
gb_build_install
# As bench/run.sh's cluster; the lock table holds pg_partman's
# run_maintenance() over all tables in one transaction.
gb_bench_cluster_start S \
	"max_locks_per_transaction = 1024"
SAMPLES=$S_DIR/scale.tsv
: >"$SAMPLES"

# ssql DB [psql args...]: tuples only, tab separated, stop on error; :parts
# is the number of partitions per table in B.
ssql() {
	"$GB_BINDIR/psql" -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -v parts="$SCALE_PARTS" \
		-h "$S_HOST" -p "$S_PORT" -U postgres -d "$1" "${@:2}"
}
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$SAMPLES"; } # record TEST VARIANT N VALUE

# ms of the Nth timed statement of one new session: ssql_time DB N SQL...
ssql_time() {
	local db=$1 nth=$2 out ms
	shift 2
	local args=(-c '\timing on')
	for s in "$@"; do args+=(-c "$s"); done
	out=$(ssql "$db" "${args[@]}") || gb_die "failed in $db: $*"
	ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | sed -n "${nth}p")
	[ -n "$ms" ] || { printf '%s\n' "$out" >&2; gb_die "no timing in psql output"; }
	echo "$ms"
}

create_db() { # create_db DB EXTENSIONS...
	ssql postgres -c "CREATE DATABASE $1" -c "ALTER DATABASE $1 SET timezone = 'UTC'"
	for e in "${@:2}"; do
		case $e in
			gb_scale) ssql "$1" -c "CREATE EXTENSION gb_scale" ;;
			pg_partman) ssql "$1" -c "CREATE SCHEMA partman" -c "CREATE EXTENSION pg_partman SCHEMA partman" ;;
		esac
	done
	ssql "$1" -f "$BENCH_DIR/partitions_scale.sql" >/dev/null
}

# A. No-op passes, new session against warm.
noop_bench() {
	local rep ms
	gb_log "A. $NOOP_TABLES tables of 61 daily partitions per manager"
	create_db sc_noop gb_scale pg_partman
	ssql sc_noop -v n="$NOOP_TABLES" >/dev/null <<-'SQL'
		SELECT format('SELECT bench_scale_parent(%L)', m || i)
		FROM unnest(ARRAY['ng_', 'np_']) m, generate_series(1, :n) i \gexec
		SELECT bench_scale_register_sql(CASE m WHEN 'ng_' THEN 'gb_scale' ELSE 'pg_partman' END, m || i, 14, 46)
		FROM generate_series(1, :n) i, unnest(ARRAY['ng_', 'np_']) m \gexec
		-- A few rows per table over the last days, as in partitions.sh.
		SELECT format('INSERT INTO %I (tenant_id, created_at)
			SELECT g, now() - g * interval %L FROM generate_series(0, 99) g', m || i, '1 hour')
		FROM unnest(ARRAY['ng_', 'np_']) m, generate_series(1, :n) i \gexec
		VACUUM ANALYZE pg_catalog.pg_class, pg_catalog.pg_inherits, pg_catalog.pg_depend;
		CALL gb_run_maintenance();
		SELECT partman.run_maintenance();
	SQL
	record leaves gb_scale "$NOOP_TABLES" "$(ssql sc_noop -c "SELECT count(*) FROM pg_class WHERE relname ~ '^ng_[0-9]+_p' AND relkind = 'r'")"
	record leaves pg_partman "$NOOP_TABLES" "$(ssql sc_noop -c "SELECT count(*) FROM pg_class WHERE relname ~ '^np_[0-9]+_p' AND relkind = 'r'")"
	for rep in $(seq 1 "$REPS"); do
		ms=$(ssql_time sc_noop 1 "CALL gb_run_maintenance()")
		record "noop fresh" gb_scale "$NOOP_TABLES" "$ms"
		gb_log "no-op pass, new session, gb_scale: $ms ms"
		ms=$(ssql_time sc_noop 2 "CALL gb_run_maintenance()" "CALL gb_run_maintenance()")
		record "noop warm" gb_scale "$NOOP_TABLES" "$ms"
		gb_log "no-op pass, warm session, gb_scale: $ms ms"
		ms=$(ssql_time sc_noop 1 "SELECT partman.run_maintenance()")
		record "noop fresh" pg_partman "$NOOP_TABLES" "$ms"
		gb_log "no-op pass, new session, pg_partman: $ms ms"
		ms=$(ssql_time sc_noop 2 "SELECT partman.run_maintenance()" "SELECT partman.run_maintenance()")
		record "noop warm" pg_partman "$NOOP_TABLES" "$ms"
		gb_log "no-op pass, warm session, pg_partman: $ms ms"
	done
	ssql postgres -c "DROP DATABASE sc_noop"
}

# B. Registration, create pass and DROP as tables accumulate.
register_upto() { # register_upto DB MANAGER FROM TO: one transaction a table, each timed
	ssql "$1" -v m="$2" -v a="$3" -v b="$4" <<-'SQL' | while IFS=$'\t' read -r i ms; do if [ -n "$ms" ]; then record register "$2" "$i" "$ms"; fi; done
		SELECT format('SELECT bench_scale_parent(%L)', 's_' || i) FROM generate_series(:a, :b) i \gexec
		SELECT format('SELECT %s, bench_time(%L)', i, bench_scale_register_sql(:'m', 's_' || i, :'parts' - 1, 0))
		FROM generate_series(:a, :b) i \gexec
	SQL
}

drop_unrelated() { # drop_unrelated DB VARIANT N: REPS timed DROP TABLEs, each in a new session
	local i out
	for i in $(seq 0 "$REPS"); do
		# a first DROP in the session warms its caches; the second is timed
		out=$(ssql "$1" -c "CREATE TABLE bench_unrelated (a int)" -c "CREATE TABLE bench_unrelated2 (a int)" \
			-c "DROP TABLE bench_unrelated2" -c '\timing on' -c "DROP TABLE bench_unrelated" |
			sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
		# the first round warms the cluster's caches after the stage's DDL
		if [ "$i" -gt 0 ]; then record drop "$2" "$3" "$out"; fi
	done
	gb_log "DROP TABLE unrelated, $2, $3 registered: last $out ms"
}

create_pass() { # create_pass N: one new partition per table, each manager
	local ms
	ssql sc_gb -c "UPDATE gb_scale.partition_config SET premake = premake + interval '1 day'" >/dev/null
	ms=$(ssql_time sc_gb 1 "CALL gb_run_maintenance()")
	record create gb_scale "$1" "$ms"
	gb_log "create pass, $1 tables, gb_scale: $ms ms"
	# infinite_time_partitions: premake from now, as gb_scale's, not only
	# ahead of the newest row (the tables are empty)
	ssql sc_pm -c "UPDATE partman.part_config SET premake = premake + 1, infinite_time_partitions = true" >/dev/null
	ms=$(ssql_time sc_pm 1 "CALL partman.run_maintenance_proc()")
	record create pg_partman "$1" "$ms"
	gb_log "create pass, $1 tables, pg_partman: $ms ms"
	record made gb_scale "$1" "$(ssql sc_gb -c "SELECT count(*) FROM pg_class WHERE relname ~ '^s_[0-9]+_p' AND relkind = 'r'")"
	record made pg_partman "$1" "$(ssql sc_pm -c "SELECT count(*) FROM pg_class WHERE relname ~ '^s_[0-9]+_p' AND relkind = 'r'")"
}

scale_bench() {
	local done_n=0 n
	create_db sc_gb gb_scale
	create_db sc_pm pg_partman
	drop_unrelated sc_gb gb_scale 0
	drop_unrelated sc_pm "no gb_scale" 0
	for n in "${SCALE_STAGES[@]}"; do
		gb_log "B. registering tables $((done_n + 1))..$n, $SCALE_PARTS daily partitions each, per manager"
		register_upto sc_gb gb_scale $((done_n + 1)) "$n"
		register_upto sc_pm pg_partman $((done_n + 1)) "$n"
		done_n=$n
		ssql sc_gb -c "VACUUM ANALYZE pg_catalog.pg_class, pg_catalog.pg_inherits, pg_catalog.pg_depend, pg_catalog.pg_constraint"
		ssql sc_pm -c "VACUUM ANALYZE pg_catalog.pg_class, pg_catalog.pg_inherits, pg_catalog.pg_depend, pg_catalog.pg_constraint"
		drop_unrelated sc_gb gb_scale "$n"
		drop_unrelated sc_pm "no gb_scale" "$n"
		create_pass "$n"
	done
}

noop_bench
scale_bench

mkdir -p "$BENCH_DIR/results"
cp "$SAMPLES" "$BENCH_DIR/results/partitions_scale.tsv"
{
	echo "gb_scale partitions at scale, $(date -u '+%Y-%m-%d %H:%M UTC'), mode $([ "${BENCH_QUICK:-0}" = 1 ] && echo quick || echo full)"
	echo "machine: nproc $(nproc), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), load $(cut -d' ' -f1-3 /proc/loadavg)"
	ssql postgres -c "SELECT 'server: ' || version()"
	ssql postgres -v parts="$SCALE_PARTS" -v reps="$REPS" -f "$BENCH_DIR/partitions_scale_report.sql" <"$SAMPLES"
} | tee "$S_DIR/report.txt"
{
	echo "# bench/partitions_scale.sh: the last run"
	echo
	echo "Printed by \`bash bench/partitions_scale.sh\` (issue 14, items 14-16); samples in partitions_scale.tsv."
	echo
	echo '```'
	cat "$S_DIR/report.txt"
	echo '```'
} >"$BENCH_DIR/results/partitions_scale.md"
