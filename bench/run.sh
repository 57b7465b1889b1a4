#!/usr/bin/env bash
# gb_scale benchmarks: gb_next_id() against sequences, UUIDs and a PL/pgSQL
# snowflake in one session, then snowflake vs bigserial keys under pgbench,
# with the cost of the durable reservation mark next to every number; then
# enum domains against native enums and VARCHAR (size and lookups); the
# partition manager against pg_partman (bench/partitions.sh); last, shard
# routing against General Bots' PL/pgSQL lookup (bench/routing.sh).
#
#   bash bench/run.sh                                full run (~40 min)
#   BENCH_QUICK=1 bash bench/run.sh                  smoke run (~7 min)
#   BENCH_ONLY=partitions bash bench/run.sh          the partition part alone
#                                                    (also ids, enums, routing)
#
# Runs on a throwaway cluster (unix socket in a temp dir, removed on exit)
# and writes the printed report to bench/results/latest.txt, the raw samples
# to bench/results/samples.tsv, bench/results/partitions.tsv and
# bench/results/routing.tsv (the partition and routing reports alone also to
# bench/results/partitions.txt and bench/results/routing.txt).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$BENCH_DIR/../scripts/lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	MODE=quick N=200000 QUERY_REPS=2 PGBENCH_SECS=5 PGBENCH_REPS=1 ENUM_ROWS=200000 ENUM_REPS=2
else
	# Sized for ~12 min on 2 cores: 5 query repetitions take ~2.5 min (the
	# PL/pgSQL snowflake and UUIDs ~10 s per run), 48 pgbench runs ~8 min,
	# the enum part ~1.5 min.
	# Commit latency on a VM disk drifts over minutes, so pgbench gets more,
	# shorter back-to-back pairs rather than fewer long runs.
	MODE=full N=5000000 QUERY_REPS=5 PGBENCH_SECS=10 PGBENCH_REPS=4 ENUM_ROWS=5000000 ENUM_REPS=3
fi
PGBENCH_CLIENTS=(2 8)
# rows per transaction : synchronous_commit.  With commits not waiting for
# the disk, the last one shows the key's own cost, which commit latency on
# this VM hides in the others.
PGBENCH_CONFIGS=(1:on 100:on 100:off)

# The parts to run: ids (single session and pgbench), enums, partitions, routing.
BENCH_ONLY=${BENCH_ONLY:-ids enums partitions routing}
want() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }

# Single-session expressions, counted over generate_series(1, N).  The
# first is the empty baseline, the second the subject; the order of the
# others rotates between repetitions.
Q_NAMES=("count(1)" "gb_next_id()" "nextval cache 1" "nextval cache 1000" "gen_random_uuid()" "plpgsql snowflake")
Q_EXPRS=("1" "gb_next_id()" "nextval('seq_cache1')" "nextval('seq_cache1000')" "gen_random_uuid()" "sf_next_id()")

gb_ensure_packages "${GB_BASE_PACKAGES[@]}" "${GB_BENCH_PACKAGES[@]}"
trap gb_cleanup EXIT
gb_build_install

# jit off and no parallel workers: per-call cost is what is measured, not
# compile time or plan shape.  max_wal_size keeps checkpoints out of runs;
# one is forced before each pgbench run instead.  The lock table holds
# pg_partman's run_maintenance() over all tables in one transaction.
gb_bench_cluster_start B \
	"work_mem = 1GB" \
	"max_parallel_workers_per_gather = 0" \
	"max_locks_per_transaction = 1024"

# Scratch files (pgbench scripts, samples) live in the cluster's directory.
WORK=$B_DIR/bench
mkdir "$WORK"
SAMPLES=$WORK/samples.tsv
: >"$SAMPLES"

bsql() { # bsql [psql args...]: tuples only, tab separated, stop on error
	"$GB_BINDIR/psql" -X -q -At -F $'\t' -v ON_ERROR_STOP=1 \
		-h "$B_HOST" -p "$B_PORT" -U postgres -d "${BENCH_DB:-bench}" "$@"
}

BENCH_DB=postgres bsql -c "CREATE DATABASE bench"
bsql -f "$BENCH_DIR/setup.sql"

COUNTERS="SELECT * FROM bench_counters()"

# record SECTION TEST VARIANT CLIENTS REP VALUE BEFORE AFTER
# Appends one sample; BEFORE/AFTER are bench_counters() rows, stored as deltas.
record() {
	local -a before after
	local line i
	read -r -a before <<<"$7"
	read -r -a after <<<"$8"
	line="$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5"$'\t'"$6"
	for i in "${!before[@]}"; do line+=$'\t'$((after[i] - before[i])); done
	printf '%s\n' "$line" >>"$SAMPLES"
}

# Wait for the generator to be back at the clock before a gb_next_id() run.
wait_lead() { bsql -c "CALL bench_wait_lead()"; }

# 1. Single session.  One psql session reads the counters, times the query
#    server-side and reads them again; pg_stat_force_next_flush() makes the
#    session publish its WAL counters before the second read.
measure_query() { # measure_query INDEX REP
	local name=${Q_NAMES[$1]} expr=${Q_EXPRS[$1]} out ms
	if [ "$expr" = "gb_next_id()" ]; then wait_lead; fi
	out=$(bsql -c "$COUNTERS" \
		-c "SELECT bench_time(\$q\$SELECT count($expr) FROM generate_series(1, $N)\$q\$), pg_stat_force_next_flush()" \
		-c "$COUNTERS")
	ms=$(sed -n 2p <<<"$out" | cut -f1)
	record query count "$name" 1 "$2" "$ms" "$(sed -n 1p <<<"$out")" "$(sed -n 3p <<<"$out")"
	gb_log "$(printf '%-20s rep %d: %9.1f ms' "$name" "$2" "$ms")"
}

if want ids; then
	gb_log "single session: SELECT count(X) FROM generate_series(1, $N), $QUERY_REPS repetitions"
	nq=${#Q_NAMES[@]}
	for rep in $(seq 1 "$QUERY_REPS"); do
		for k in $(seq 0 $((nq - 1))); do
			measure_query $(((k + rep - 1) % nq)) "$rep"
		done
	done
fi

# 2. pgbench.  Scripts differ only in the table; prepared statements so that
#    parse and plan costs do not hide the key's cost.
pgbench_script() { # pgbench_script TABLE ROWS -> path of the script
	local f=$WORK/$1_$2.sql
	{
		echo '\set tenant random(1, 100000)'
		if [ "$2" -eq 1 ]; then
			echo "INSERT INTO $1 (tenant_id, body) VALUES (:tenant, 'hello from a bot');"
		else
			echo "INSERT INTO $1 (tenant_id, body) SELECT :tenant, 'hello from a bot' FROM generate_series(1, $2);"
		fi
	} >"$f"
	echo "$f"
}

# Wait until pgbench's backends are gone; they publish their WAL counters on
# exit, slightly after leaving pg_stat_activity.
wait_clients_gone() {
	until [ "$(bsql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ]; do
		sleep 0.05
	done
	sleep 0.3
}

pgbench_run() { # pgbench_run TABLE ROWS COMMIT CLIENTS REP
	local table=$1 rows=$2 commit=$3 clients=$4 rep=$5 variant test before after out tps
	variant=$([ "$table" = t_snow ] && echo gb_next_id || echo bigserial)
	test=$rows$([ "$commit" = off ] && echo " async" || true)
	# Both tables empty and a fresh checkpoint: every run starts alike.
	bsql -c "TRUNCATE t_snow, t_serial" -c "CHECKPOINT"
	if [ "$table" = t_snow ]; then wait_lead; fi
	before=$(bsql -c "$COUNTERS")
	out=$(PGOPTIONS="-c synchronous_commit=$commit" "$GB_BINDIR/pgbench" -n -M prepared -c "$clients" -j 2 \
		-T "$PGBENCH_SECS" -f "$(pgbench_script "$table" "$rows")" -h "$B_HOST" -p "$B_PORT" -U postgres bench 2>&1) ||
		{ printf '%s\n' "$out" >&2; gb_die "pgbench failed"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
	[ -n "$tps" ] || { printf '%s\n' "$out" >&2; gb_die "no tps in pgbench output"; }
	wait_clients_gone
	after=$(bsql -c "$COUNTERS")
	record pgbench "$test" "$variant" "$clients" "$rep" "$tps" "$before" "$after"
	gb_log "$(printf '%-9s rows/txn %d clients %-10s rep %d: %9.1f tps' "$test" "$clients" "$variant" "$rep" "$tps")"
}

if want ids; then
	gb_log "pgbench: ${PGBENCH_SECS}s per run, $PGBENCH_REPS repetitions"
	for rep in $(seq 1 "$PGBENCH_REPS"); do
		# Alternate which table goes first, so neither always follows the other.
		if [ $((rep % 2)) -eq 1 ]; then order=(t_snow t_serial); else order=(t_serial t_snow); fi
		for config in "${PGBENCH_CONFIGS[@]}"; do
			for clients in "${PGBENCH_CLIENTS[@]}"; do
				for table in "${order[@]}"; do pgbench_run "$table" "${config%%:*}" "${config##*:}" "$clients" "$rep"; done
			done
		done
	done
fi

# 3. The partition manager against pg_partman, in databases of its own.
# shellcheck source=bench/partitions.sh
source "$BENCH_DIR/partitions.sh"
if want partitions; then partitions_bench; fi

# 4. Shard routing against General Bots' PL/pgSQL lookup, in a database of its own.
# shellcheck source=bench/routing.sh
source "$BENCH_DIR/routing.sh"
if want routing; then routing_bench; fi

# 5. Report: machine header from the shell, tables from the samples in SQL.
report_header() {
	local cpu
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
	echo "gb_scale benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), mode $MODE"
	echo "machine: nproc $(nproc), CPU ${cpu:-unknown}, $(awk '/MemTotal/ {printf "%.1f GB RAM", $2 / 1048576}' /proc/meminfo), kernel $(uname -r)"
	bsql -c "SELECT 'server:  ' || version()" \
		-c "SELECT 'settings: ' || string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
			FROM unnest(ARRAY['shared_buffers', 'work_mem', 'synchronous_commit', 'fsync', 'jit',
				'wal_level', 'gb_scale.reservation_ms', 'gb_scale.max_lead_ms']) AS name"
}

mkdir -p "$BENCH_DIR/results"
cp "$SAMPLES" "$BENCH_DIR/results/samples.tsv"
{
	report_header
	if want ids; then
		bsql -v n="$N" -v query_reps="$QUERY_REPS" -v pgbench_secs="$PGBENCH_SECS" \
			-v pgbench_reps="$PGBENCH_REPS" -f "$BENCH_DIR/report.sql" <"$SAMPLES"
	fi
	if want enums; then
		gb_log "enum domains: $ENUM_ROWS rows"
		bsql -v rows="$ENUM_ROWS" -v reps="$ENUM_REPS" -f "$BENCH_DIR/enums.sql"
	fi
	if want partitions; then partitions_report | tee "$BENCH_DIR/results/partitions.txt"; fi
	if want routing; then routing_report | tee "$BENCH_DIR/results/routing.txt"; fi
} | tee "$BENCH_DIR/results/latest.txt"
