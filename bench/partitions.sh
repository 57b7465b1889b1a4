# shellcheck shell=bash
# Part 5 of bench/run.sh, sourced by it: gb_scale's partition manager against
# pg_partman 4.7 (Debian's postgresql-15-partman) on the same cluster, in the
# same run, on identical tables:
#   1. a maintenance pass with nothing to do over PT_TABLES registered tables
#      of ~60 daily partitions each;
#   2. registering a table with 30 daily partitions premade;
#   3. single-row inserts into a managed table of 1,000 partitions against
#      one of 10;
#   4. the longest stall of concurrent inserts and pruned selects while a
#      long transaction reads the parent and maintenance retires partitions
#      (gb_scale: its background worker; pg_partman: run_maintenance()).
# Uses run.sh's cluster B, bsql, WORK, PGBENCH_CLIENTS and BENCH_QUICK.
# partitions_bench measures (writes $PT_SAMPLES), partitions_report prints.

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	PT_TABLES=20 PT_PASSES=2 PT_REG=5 PT_INS_SECS=5 PT_INS_REPS=1 PT_READER_SECS=5 PT_STALL_ROWS=20000
else
	# ~18 min on 2 cores, most of it setting up 2 x 200 tables of 60
	# partitions (pg_partman takes ~1 s a table) and the insert runs.
	PT_TABLES=200 PT_PASSES=5 PT_REG=20 PT_INS_SECS=10 PT_INS_REPS=4 PT_READER_SECS=20 PT_STALL_ROWS=200000
fi
PT_SAMPLES=$WORK/partitions.tsv
# The managers compared in part 1: gb_scale, and pg_partman both ways it is
# scheduled (the procedure commits after each table, the function does not).
PT_MAINT_NAMES=(gb_scale "pg_partman proc" "pg_partman func")
PT_MAINT_SQL=("CALL gb_run_maintenance()" "CALL partman.run_maintenance_proc()" "SELECT partman.run_maintenance()")

pt_sql() { BENCH_DB=$1 bsql "${@:2}"; } # pt_sql DB [psql args...]

pt_record() { # pt_record SECTION TEST VARIANT CLIENTS REP VALUE
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$PT_SAMPLES"
}

# Leaf partitions of all tables named PREFIX<n> (pg_partman's defaults included).
pt_leaves() { # pt_leaves DB PREFIX
	pt_sql "$1" -c "SELECT count(*) FROM pg_class c, pg_partition_tree(c.oid) t
		WHERE c.relkind = 'p' AND c.relname ~ '^$2[0-9]+\$' AND t.isleaf"
}

# Each database generating IDs needs a shard id of its own on the instance.
pt_create_db() { # pt_create_db DB SHARD_ID
	pt_sql postgres -c "CREATE DATABASE $1" -c "ALTER DATABASE $1 SET timezone = 'UTC'" \
		-c "ALTER DATABASE $1 SET gb_scale.shard_id = $2"
	pt_sql "$1" -f "$BENCH_DIR/partitions.sql"
}

# 1. Maintenance with nothing to do.  Every timed pass runs in a session that
#    has just made one pass of its own, so that caches are warm for both; psql
#    times the statement (one CALL or SELECT per pass, no connection set-up).
pt_maint_setup() {
	gb_log "partitions: $PT_TABLES tables of ~60 daily partitions for each manager"
	# One statement, hence one transaction, per table: a transaction making
	# all of them would need a lock per partition and index at once.
	pt_sql bench_part -v n="$PT_TABLES" >/dev/null <<-'SQL'
		SELECT format('SELECT bench_parent(%L)', m || i)
		FROM unnest(ARRAY['mg_', 'mp_']) m, generate_series(1, :n) i \gexec
		SELECT bench_register_sql(CASE m WHEN 'mg_' THEN 'gb_scale' ELSE 'pg_partman' END, m || i,
			14, date_trunc('day', now()) - interval '45 days')
		FROM generate_series(1, :n) i, unnest(ARRAY['mg_', 'mp_']) m \gexec
		-- A few rows per table over the last days, the newest in the current one.
		SELECT format('INSERT INTO %I (tenant_id, body, created_at)
			SELECT g, %L, now() - g * interval %L FROM generate_series(0, 99) g', m || i, 'hello', '1 hour')
		FROM unnest(ARRAY['mg_', 'mp_']) m, generate_series(1, :n) i \gexec
		-- The catalogs both managers read, just grown by 24,000 tables.
		VACUUM ANALYZE pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_inherits,
			pg_catalog.pg_depend, pg_catalog.pg_constraint, pg_catalog.pg_index, pg_catalog.pg_type;
	SQL
}

pt_maint_pass() { # pt_maint_pass INDEX -> ms of one warm pass
	local out ms
	out=$(pt_sql bench_part -c '\timing on' -c "${PT_MAINT_SQL[$1]}" -c "${PT_MAINT_SQL[$1]}") ||
		gb_die "maintenance pass failed: ${PT_MAINT_SQL[$1]}"
	# The second "Time:" line is the warm pass.
	ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | sed -n 2p)
	[ -n "$ms" ] || { printf '%s\n' "$out" >&2; gb_die "no timing in psql output"; }
	echo "$ms"
}

pt_maint() {
	local before_gb before_pm rep k i ms
	pt_maint_setup
	before_gb=$(pt_leaves bench_part mg_)
	before_pm=$(pt_leaves bench_part mp_)
	gb_log "partitions: leaves gb_scale $before_gb, pg_partman $before_pm (default partitions included)"
	pt_record maint leaves gb_scale "$PT_TABLES" 0 "$before_gb"
	pt_record maint leaves pg_partman "$PT_TABLES" 0 "$before_pm"
	for rep in $(seq 1 "$PT_PASSES"); do
		for k in 0 1 2; do
			i=$(((k + rep - 1) % 3))
			ms=$(pt_maint_pass "$i")
			pt_record maint pass "${PT_MAINT_NAMES[$i]}" "$PT_TABLES" "$rep" "$ms"
			gb_log "$(printf 'maintenance %-16s pass %d: %9.1f ms, %7.3f ms per table' "${PT_MAINT_NAMES[$i]}" "$rep" "$ms" "$(awk -v a="$ms" -v b="$PT_TABLES" 'BEGIN { print a / b }')")"
		done
	done
	# Nothing was to be done: any partition made now would mean the pass was
	# not the no-op the figures claim to be.
	pt_record maint made gb_scale "$PT_TABLES" 0 $(($(pt_leaves bench_part mg_) - before_gb))
	pt_record maint made pg_partman "$PT_TABLES" 0 $(($(pt_leaves bench_part mp_) - before_pm))
}

# 2. Registering a table with 30 daily partitions premade, one transaction
#    per table, timed server-side, on the messages table (primary key and
#    one index) and on a bare one (no index).  pg_partman makes the same
#    partitions as gb_scale when given the current day as its start, and
#    twice as many by default (30 behind the current day too): both are
#    timed, and so are bare CREATE TABLE ... PARTITION OF statements making
#    the same partitions, the floor under any manager.  The order of the managers rotates from table to table; one
#    registration of each kind warms the session first.
PT_REG_NAMES=(gb_scale pg_partman "pg_partman default" "plain DDL")
PT_REG_PREFIX=(g p d x)
pt_register() {
	local out m shape i ms prefix
	gb_log "partitions: registering $PT_REG tables with 30 daily partitions premade, per manager and shape"
	pt_sql bench_part -v n="$PT_REG" >/dev/null <<-'SQL'
		SELECT format('SELECT bench_parent(%L, %L)', k || m || s || '_' || i, s = 'b')
		FROM unnest(ARRAY['r', 'w']) k, unnest(ARRAY['g', 'p', 'd', 'x']) m, unnest(ARRAY['i', 'b']) s,
			generate_series(1, :n) i
		WHERE k = 'r' OR i = 1 \gexec
	SQL
	# Tables r<manager><shape>_<i>, i = 1..n; i = 0 stands for the warm-up
	# tables w<manager><shape>_1.
	out=$(pt_sql bench_part -v n="$PT_REG" <<-'SQL'
		SELECT format('SELECT %L, %L, %s, bench_time(%L)', m, s, i,
			bench_register_sql(m, CASE WHEN i > 0 THEN 'r' || p || s || '_' || i ELSE 'w' || p || s || '_1' END, 30))
		FROM generate_series(0, :n) i, unnest(ARRAY['i', 'b']) s,
			(VALUES (0, 'gb_scale', 'g'), (1, 'pg_partman', 'p'), (2, 'pg_partman default', 'd'),
				(3, 'plain DDL', 'x')) x(o, m, p)
		ORDER BY i, s DESC, (o + i) % 4 \gexec
	SQL
	) || gb_die "registration failed"
	# Lines "manager <tab> shape <tab> i <tab> ms".
	while IFS=$'\t' read -r m shape i ms; do
		shape=$([ "$shape" = i ] && echo indexed || echo bare)
		if [ "$i" -gt 0 ]; then pt_record create "register $shape" "$m" 1 "$i" "$ms"; fi
	done <<<"$out"
	for i in 0 1 2 3; do
		prefix=r${PT_REG_PREFIX[$i]}
		pt_record create "leaves indexed" "${PT_REG_NAMES[$i]}" "$PT_REG" 0 "$(pt_leaves bench_part "${prefix}i_")"
		pt_record create "leaves bare" "${PT_REG_NAMES[$i]}" "$PT_REG" 0 "$(pt_leaves bench_part "${prefix}b_")"
	done
}

# 3. Inserts: the same messages table managed by gb_scale with 1,000 daily
#    partitions (start_at 995 days back) and with 10; rows stamped now() land
#    in the current one.  synchronous_commit = off: with commits waiting for
#    the disk, fsync latency would hide the cost of routing the row.
pt_insert_run() { # pt_insert_run TABLE CLIENTS REP
	local f=$WORK/$1.sql out tps
	printf '%s\n' '\set tenant random(1, 100000)' \
		"INSERT INTO $1 (tenant_id, body) VALUES (:tenant, 'hello from a bot');" >"$f"
	pt_sql bench_part -c "TRUNCATE $1" -c "CHECKPOINT"
	out=$(PGOPTIONS="-c synchronous_commit=off" "$GB_BINDIR/pgbench" -n -M prepared -c "$2" -j 2 \
		-T "$PT_INS_SECS" -f "$f" -h "$B_HOST" -p "$B_PORT" -U postgres bench_part 2>&1) ||
		{ printf '%s\n' "$out" >&2; gb_die "pgbench failed"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
	[ -n "$tps" ] || { printf '%s\n' "$out" >&2; gb_die "no tps in pgbench output"; }
	pt_record insert tps "${1#ins_}" "$2" "$3" "$tps"
	gb_log "$(printf 'insert into %-8s clients %d rep %d: %9.1f tps' "$1" "$2" "$3" "$tps")"
}

pt_insert() {
	local rep clients order table
	gb_log "partitions: inserts into 1,000 against 10 partitions, ${PT_INS_SECS}s per run, $PT_INS_REPS repetitions"
	pt_sql bench_part >/dev/null <<-'SQL'
		SELECT bench_parent('ins_1000'), bench_parent('ins_10');
		SELECT gb_partition_create('ins_1000', 'created_at', '1 day', premake => '4 days',
			start_at => date_trunc('day', now()) - interval '995 days');
		SELECT gb_partition_create('ins_10', 'created_at', '1 day', premake => '4 days',
			start_at => date_trunc('day', now()) - interval '5 days');
	SQL
	pt_record insert leaves 1000 0 0 "$(pt_sql bench_part -c "SELECT bench_leaves('ins_1000')")"
	pt_record insert leaves 10 0 0 "$(pt_sql bench_part -c "SELECT bench_leaves('ins_10')")"
	for rep in $(seq 1 "$PT_INS_REPS"); do
		if [ $((rep % 2)) -eq 1 ]; then order=(ins_1000 ins_10); else order=(ins_10 ins_1000); fi
		for clients in "${PGBENCH_CLIENTS[@]}"; do
			for table in "${order[@]}"; do pt_insert_run "$table" "$clients" "$rep"; done
		done
	done
}

# 4. Stalls.  Each manager gets the same table (daily partitions from 10 days
#    back, 3 ahead, PT_STALL_ROWS rows) and the same script, in database
#    bench_stall: two pgbench clients, each transaction one single-row
#    insert or one select pruned to the current day (constant bounds, so
#    plan-time pruning), 200 transactions a second in all, every latency
#    logged; synchronous_commit = off, so that the stalls measured are
#    waits for locks, not for a disk other processes share.  The same load
#    alone gives the noise floor.  At +2 s a session opens a transaction that counts the parent's
#    rows and sleeps PT_READER_SECS; at +3 s retention of 5 days is set and
#    maintenance starts: pg_partman's run_maintenance() for its table, and for
#    gb_scale's the background worker (maintenance_databases set to
#    bench_stall, naptime 1 s, reload), which retires the partitions with
#    DETACH ... CONCURRENTLY since the table has no default partition.  A
#    poller notes when no partition older than the retention is left.
pt_stall_setup() {
	pt_sql bench_stall -v rows="$PT_STALL_ROWS" >/dev/null <<-'SQL'
		SELECT bench_parent('st_gb'), bench_parent('st_pm');
		SELECT bench_register_sql(m, t, 3, date_trunc('day', now()) - interval '10 days')
		FROM (VALUES ('gb_scale', 'st_gb'), ('pg_partman', 'st_pm')) v(m, t) \gexec
		INSERT INTO st_gb (tenant_id, body, created_at)
		SELECT g % 1000, 'hello from a bot', now() - random() * interval '10 days'
		FROM generate_series(1, :rows) g;
		INSERT INTO st_pm SELECT * FROM st_gb;
		VACUUM ANALYZE st_gb, st_pm;
		-- Leaves whose upper bound is older than the retention: what is left
		-- to retire.  Bounds read from the catalog, the same for both.
		CREATE FUNCTION bench_overdue(t regclass, retention interval) RETURNS bigint
		LANGUAGE sql STABLE AS $$
			SELECT count(*) FROM pg_partition_tree(t) p JOIN pg_class c ON c.oid = p.relid
			WHERE p.isleaf AND p.relid <> t
				AND substring(pg_get_expr(c.relpartbound, c.oid) FROM $r$TO \('([^']*)'\)$r$)::timestamptz
					<= now() - retention
		$$;
		-- Partitions in the middle of a concurrent detach.
		CREATE FUNCTION bench_detach_pending(t regclass) RETURNS bigint
		LANGUAGE sql STABLE AS $$
			SELECT count(*) FROM pg_inherits WHERE inhparent = t AND inhdetachpending
		$$;
	SQL
}

# pt_stall_run MODE TABLE: MODE gb_scale or pg_partman; none runs the same
# load on TABLE with no reader and no maintenance, for the noise floor.
pt_stall_run() {
	local m=$1 t=$2 dir=$WORK/stall_$1 secs=$((PT_READER_SECS + 12)) pgbench_pid reader_pid
	local maint_pid='' poller_pid before after day sc name
	mkdir -p "$dir"
	day=$(pt_sql bench_stall -c "SELECT date_trunc('day', now())")
	printf '%s\n' '\set tenant random(0, 999)' \
		"INSERT INTO $t (tenant_id, body) VALUES (:tenant, 'hello from a bot');" >"$dir/insert.sql"
	printf '%s\n' '\set tenant random(0, 999)' \
		"SELECT count(*) FROM $t WHERE tenant_id = :tenant AND created_at >= '$day' AND created_at < timestamptz '$day' + interval '1 day';" >"$dir/select.sql"
	before=$(pt_sql bench_stall -c "SELECT bench_leaves('$t')")
	if [ "$m" = none ]; then
		gb_log "partitions: stall test, no maintenance: ${secs}s of load alone"
	else
		gb_log "partitions: stall test, $m: ${secs}s of load, a ${PT_READER_SECS}s reader from +2s, maintenance from +3s"
	fi
	PGOPTIONS="-c synchronous_commit=off" \
		"$GB_BINDIR/pgbench" -n -M prepared -c 2 -j 2 -R 200 -T "$secs" -l --log-prefix="$dir/log" \
		-f "$dir/insert.sql@1" -f "$dir/select.sql@1" -h "$B_HOST" -p "$B_PORT" -U postgres bench_stall \
		>"$dir/pgbench.out" 2>&1 &
	pgbench_pid=$!
	if [ "$m" != none ]; then
		sleep 2
		pt_sql bench_stall -c "BEGIN" -c "SELECT count(*) FROM $t" -c "SELECT pg_sleep($PT_READER_SECS)" \
			-c "COMMIT" >/dev/null &
		reader_pid=$!
		sleep 1
		# Poll every 0.2 s from the start of maintenance until nothing is
		# overdue and no detach is pending, for as long as the load runs and
		# 10 s more; the elapsed seconds go to a file.
		(
			t0=$(date +%s%N)
			for _ in $(seq 1 $(((secs + 10) * 5))); do
				if [ "$(pt_sql bench_stall -c "SELECT bench_overdue('$t', '5 days') + bench_detach_pending('$t')")" = 0 ]; then
					awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN { printf "%.1f\n", (a - b) / 1e9 }' >"$dir/done_s"
					break
				fi
				sleep 0.2
			done
		) &
		poller_pid=$!
	fi
	if [ "$m" = gb_scale ]; then
		pt_sql bench_stall >/dev/null <<-SQL
			SELECT gb_partition_retention('$t', '5 days', 'drop');
			ALTER SYSTEM SET gb_scale.maintenance_databases = 'bench_stall';
			ALTER SYSTEM SET gb_scale.maintenance_naptime = 1;
			SELECT pg_reload_conf();
		SQL
	elif [ "$m" = pg_partman ]; then
		pt_sql bench_stall >/dev/null <<-SQL
			UPDATE partman.part_config SET retention = '5 days', retention_keep_table = false
			WHERE parent_table = 'public.$t';
		SQL
		pt_sql bench_stall -c "SELECT partman.run_maintenance('public.$t')" >/dev/null &
		maint_pid=$!
	fi
	wait "$pgbench_pid" || { cat "$dir/pgbench.out" >&2; gb_die "pgbench failed in the stall test"; }
	if [ "$m" != none ]; then
		wait "$reader_pid" || gb_die "the long reader failed"
		if [ -n "$maint_pid" ]; then wait "$maint_pid" || gb_die "pg_partman maintenance failed"; fi
		# The poller gives the worker 10 s more (it may retry after the
		# reader is gone); a retention never completed is reported as such.
		wait "$poller_pid" || true
	fi
	if [ "$m" = gb_scale ]; then
		pt_sql bench_stall >/dev/null <<-'SQL'
			ALTER SYSTEM RESET gb_scale.maintenance_databases;
			ALTER SYSTEM RESET gb_scale.maintenance_naptime;
			SELECT pg_reload_conf();
		SQL
	fi
	after=$(pt_sql bench_stall -c "SELECT bench_leaves('$t')")
	pt_record stall retired "$m" 0 1 $((before - after))
	pt_record stall done_s "$m" 0 1 "$(cat "$dir/done_s" 2>/dev/null || echo NaN)"
	# pgbench's log: client, transaction, latency in us, script (0 insert,
	# 1 select), epoch s, us.  Latencies under -R count from the scheduled
	# start, so a transaction queued behind a stall carries all of its wait.
	for sc in 0 1; do
		name=$([ "$sc" = 0 ] && echo insert || echo select)
		awk -v s="$sc" '$4 == s { print $3 / 1000 }' "$dir"/log* | sort -n | awk -v m="$m" -v name="$name" '
			{ v[NR] = $1 }
			END {
				printf "stall\t%s max\t%s\t0\t1\t%.3f\n", name, m, v[NR]
				printf "stall\t%s p99\t%s\t0\t1\t%.3f\n", name, m, v[int(NR * 0.99) + 1]
				printf "stall\t%s count\t%s\t0\t1\t%d\n", name, m, NR
			}' >>"$PT_SAMPLES"
	done
	gb_log "$(printf 'stall %-10s: retired %d partitions; longest insert %s ms, select %s ms' "$m" $((before - after)) \
		"$(awk '$4 == 0 { if ($3 > x) x = $3 } END { printf "%.1f", x / 1000 }' "$dir"/log*)" \
		"$(awk '$4 == 1 { if ($3 > x) x = $3 } END { printf "%.1f", x / 1000 }' "$dir"/log*)")"
}

pt_stall() {
	pt_create_db bench_stall 3
	pt_stall_setup
	pt_stall_run none st_gb
	pt_stall_run pg_partman st_pm
	pt_stall_run gb_scale st_gb
	pt_record stall reader_s both 0 1 "$PT_READER_SECS"
}

# The machine's 1-minute load average, noted before and after each part: a
# loaded machine (other jobs on a shared VM) shows as spread in the figures.
pt_load() { pt_record load "$1" "$2" 0 0 "$(cut -d' ' -f1 /proc/loadavg)"; }

partitions_bench() {
	: >"$PT_SAMPLES"
	pt_create_db bench_part 2
	pt_load before maint
	pt_maint
	pt_load before register
	pt_register
	pt_load before insert
	pt_insert
	pt_load before stall
	pt_stall
	pt_load after stall
}

partitions_report() {
	local partman_version
	partman_version=$(pt_sql bench_part -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'")
	cp "$PT_SAMPLES" "$BENCH_DIR/results/partitions.tsv"
	pt_sql bench_part -v partman="$partman_version" -v passes="$PT_PASSES" -v ins_secs="$PT_INS_SECS" \
		-v ins_reps="$PT_INS_REPS" -f "$BENCH_DIR/partitions_report.sql" <"$PT_SAMPLES"
}
