# shellcheck shell=bash
# Part 6 of bench/run.sh, sourced by it: gb_shard_for_tenant() against the
# PL/pgSQL lookup of General Bots' migration (bench/routing.sql), in database
# bench_route of the same cluster, in the same run, over the same directory:
# 7 shards of 1,000,000 tenants and 100,000 explicit placements.
#   1. per call inside one big query: SELECT count(f(t)) over
#      generate_series, t half mapped and half range-only tenants, from a
#      hot set (1,000 tenants), a mid one (50,000) and a wide one (200,000),
#      against the same query without the function (the empty loop);
#   2. per request: pgbench, one SELECT f(:t) per transaction, t from the
#      hot set and from the wide one, against SELECT :t;
#   3. the first lookup in a new session, and the first after another
#      session changed the map (checking that it sees the change).
# Before timing, both functions are checked against each other and against
# the placement rule over all 200,000 tenants of the wide set.
# Uses run.sh's cluster B, bsql, WORK, PGBENCH_CLIENTS and BENCH_QUICK.
# routing_bench measures (writes $RT_SAMPLES), routing_report prints.

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	RT_N_FAST=500000 RT_N_SLOW=20000 RT_REPS=2 RT_PGB_SECS=5 RT_PGB_REPS=1 RT_ONE_REPS=3
else
	# ~12 min on 2 cores: 6a ~4 min, pgbench (3 x 2 x 2 x RT_PGB_REPS runs)
	# 6 min.  The PL/pgSQL lookup costs 6-10 us a call, so it gets fewer rows
	# per query than gb_shard_for_tenant and the empty loop; figures are per
	# row.  Many short repetitions: the best of them is what a loaded VM
	# lets through.
	RT_N_FAST=2000000 RT_N_SLOW=100000 RT_REPS=7 RT_PGB_SECS=10 RT_PGB_REPS=3 RT_ONE_REPS=10
fi
RT_SAMPLES=$WORK/routing.tsv
# Tenant sets of 6a: hot, a working set, and every mapped tenant with as
# many range-only ones.
RT_SETS=(hot mid wide)
RT_SIZES=(1000 50000 200000)
RT_WIDE=200000

# Variants of part 1: name, function (none: the empty loop), rows per query.
RT_Q_NAMES=("empty" "gb_shard_for_tenant" "empty (slow N)" "plpgsql" "plpgsql stable")
RT_Q_FUNCS=("" gb_shard_for_tenant "" get_shard_for_tenant get_shard_for_tenant_stable)
RT_Q_ROWS=("$RT_N_FAST" "$RT_N_FAST" "$RT_N_SLOW" "$RT_N_SLOW" "$RT_N_SLOW")

rt_sql() { BENCH_DB=bench_route bsql "$@"; } # rt_sql [psql args...]

rt_record() { # rt_record SECTION TEST VARIANT N REP VALUE
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RT_SAMPLES"
}

rt_load() { rt_record load "$1" "$2" 0 0 "$(cut -d' ' -f1 /proc/loadavg)"; }

# The tenant of row g of generate_series for a set of S tenants, as plain
# arithmetic (the empty loop computes it too).  k = g * 7919 mod S walks the
# set in a scattered order; even k give mapped tenants 70 * (m + 1), odd k
# the range-only tenant 35 below, with m spread over 0..99,999, so that the
# set covers all 7 shards.
rt_tenant() { # rt_tenant S
	echo "(70 * ((g * 7919 % $1) / 2 * (200000 / $1) + 1) - 35 * (g * 7919 % $1 % 2))"
}

rt_call() { # rt_call FUNCTION EXPR: FUNCTION(EXPR), or EXPR alone for none
	if [ -n "$1" ]; then echo "$1($2)"; else echo "$2"; fi
}

# 0. Both functions agree with each other and with the placement rule
#    (mapped tenants sit one shard after their range's), over every tenant
#    of the wide set.
rt_check() {
	local t out
	t=$(rt_tenant "$RT_WIDE")
	out=$(rt_sql -c "SELECT count(*) FILTER (WHERE gb IS DISTINCT FROM pl),
			count(*) FILTER (WHERE gb IS DISTINCT FROM
				CASE WHEN t % 70 = 0 THEN ((t - 1) / 1000000 + 1) % 7 + 1 ELSE (t - 1) / 1000000 + 1 END),
			count(*) FILTER (WHERE t % 70 = 0), count(DISTINCT t)
		FROM (SELECT t, gb_shard_for_tenant(t) AS gb, get_shard_for_tenant(t) AS pl
			FROM (SELECT $t AS t FROM generate_series(1::bigint, $RT_WIDE) g) s) c")
	rt_record check differ plpgsql 0 0 "$(cut -f1 <<<"$out")"
	rt_record check differ rule 0 0 "$(cut -f2 <<<"$out")"
	rt_record check tenants mapped 0 0 "$(cut -f3 <<<"$out")"
	rt_record check tenants distinct 0 0 "$(cut -f4 <<<"$out")"
	gb_log "routing: check over $(cut -f4 <<<"$out") tenants ($(cut -f3 <<<"$out") mapped): gb_shard_for_tenant differs from PL/pgSQL on $(cut -f1 <<<"$out"), from the rule on $(cut -f2 <<<"$out")"
}

# 1. One query per sample, in a session that first ran the same query over
#    the whole set (gb_shard_for_tenant) or 1,000 rows (PL/pgSQL: its plans),
#    so that per-session caches are warm; timed server-side, in wall time
#    and in the backend's CPU time.
rt_query_run() { # rt_query_run INDEX SET SIZE REP
	local name=${RT_Q_NAMES[$1]} fn=${RT_Q_FUNCS[$1]} n=${RT_Q_ROWS[$1]} s=$3 t warm out ms cpu
	t=$(rt_tenant "$s")
	warm=$([ "$fn" = gb_shard_for_tenant ] && echo "$s" || echo 1000)
	out=$(rt_sql -c "SELECT count($(rt_call "$fn" "$t")) FROM generate_series(1::bigint, $warm) g" \
		-c "SELECT * FROM bench_time_cpu(\$q\$SELECT count($(rt_call "$fn" "$t")) FROM generate_series(1::bigint, $n) g\$q\$)")
	ms=$(sed -n 2p <<<"$out" | cut -f1)
	cpu=$(sed -n 2p <<<"$out" | cut -f2)
	if [ -z "$ms" ] || [ -z "$cpu" ]; then gb_die "no timing for $name"; fi
	rt_record query "$2" "$name" "$n" "$4" "$ms"
	rt_record cpu "$2" "$name" "$n" "$4" "$cpu"
	gb_log "$(printf 'routing %-4s %-20s rep %d: %9.1f ms, CPU %9.1f ms, %9.1f ns per row' "$2" "$name" "$4" "$ms" "$cpu" \
		"$(awk -v a="$cpu" -v b="$n" 'BEGIN { print a * 1e6 / b }')")"
}

rt_queries() {
	local rep k i nq=${#RT_Q_NAMES[@]}
	gb_log "routing: SELECT count(f(t)) over generate_series, $RT_N_FAST rows (gb_shard_for_tenant) or $RT_N_SLOW (PL/pgSQL), $RT_REPS repetitions"
	for i in "${!RT_SETS[@]}"; do rt_record set size "${RT_SETS[$i]}" 0 0 "${RT_SIZES[$i]}"; done
	for rep in $(seq 1 "$RT_REPS"); do
		for i in "${!RT_SETS[@]}"; do
			for k in $(seq 0 $((nq - 1))); do
				rt_query_run $(((k + rep - 1) % nq)) "${RT_SETS[$i]}" "${RT_SIZES[$i]}" "$rep"
			done
		done
	done
}

# 2. pgbench: a tenant drawn from the hot or the wide set of 6a (half of them
#    mapped) per transaction, one SELECT; prepared statements, so each
#    request is bind + execute, as from a pooled application.
RT_P_NAMES=("empty" "gb_shard_for_tenant" "plpgsql")
RT_P_SQL=("SELECT :t::bigint;" "SELECT gb_shard_for_tenant(:t);" "SELECT get_shard_for_tenant(:t);")

rt_pgbench_run() { # rt_pgbench_run INDEX CLIENTS REP SET SIZE
	local name=${RT_P_NAMES[$1]} f=$WORK/route_$1_$4.sql out tps
	printf '%s\n' "\\set j random(0, $5 / 2 - 1) * (200000 / $5)" '\set t 70 * (:j + 1) - 35 * random(0, 1)' \
		"${RT_P_SQL[$1]}" >"$f"
	out=$("$GB_BINDIR/pgbench" -n -M prepared -c "$2" -j 2 -T "$RT_PGB_SECS" -f "$f" \
		-h "$B_HOST" -p "$B_PORT" -U postgres bench_route 2>&1) ||
		{ printf '%s\n' "$out" >&2; gb_die "pgbench failed"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
	[ -n "$tps" ] || { printf '%s\n' "$out" >&2; gb_die "no tps in pgbench output"; }
	rt_record pgbench "$4" "$name" "$2" "$3" "$tps"
	gb_log "$(printf 'routing pgbench %-4s %-20s clients %d rep %d: %9.1f tps' "$4" "$name" "$2" "$3" "$tps")"
}

rt_pgbench() {
	local rep clients k i np=${#RT_P_NAMES[@]}
	gb_log "routing: pgbench, one lookup per transaction, ${RT_PGB_SECS}s per run, $RT_PGB_REPS repetitions"
	for rep in $(seq 1 "$RT_PGB_REPS"); do
		for i in 0 2; do # the hot and the wide set
			for clients in "${PGBENCH_CLIENTS[@]}"; do
				for k in $(seq 0 $((np - 1))); do
					rt_pgbench_run $(((k + rep - 1) % np)) "$clients" "$rep" "${RT_SETS[$i]}" "${RT_SIZES[$i]}"
				done
			done
		done
	done
}

# 3a. The first lookup of a new session (connection made by a SELECT 1
#     before), of a range-only tenant: whatever the function loads on first
#     use is in it.
RT_O_NAMES=("empty" "gb_shard_for_tenant" "plpgsql")
RT_O_FUNCS=("" gb_shard_for_tenant get_shard_for_tenant)

rt_first() { # rt_first INDEX REP
	local name=${RT_O_NAMES[$1]} ms
	ms=$(rt_sql -c "SELECT 1" -c "SELECT ms FROM bench_time_value(\$q\$SELECT $(rt_call "${RT_O_FUNCS[$1]}" 3500035::bigint)\$q\$)" | sed -n 2p)
	rt_record first ms "$name" 0 "$2" "$ms"
}

# 3b. The first lookup after another session moved a mapped tenant (between
#     shards 2 and 3), in a session that had looked it up twice just before
#     (the second time timed by the same statement, so that only the change
#     differs): timed, and its answer checked against the new placement.
#     The shell waits 0.2 s after the change, so that the exit of the other
#     session's backend is not in the time; the lookup is still the
#     session's next statement.
rt_after_change() { # rt_after_change INDEX REP
	local name=${RT_O_NAMES[$1]} fn=${RT_O_FUNCS[$1]} cur new out
	cur=$(rt_sql -c "SELECT shard_id FROM gb_scale.tenant_shard_map WHERE tenant_id = 350000")
	new=$([ "$cur" = 2 ] && echo 3 || echo 2)
	out=$(rt_sql -c "SELECT ms, v FROM bench_time_value(\$q\$SELECT $(rt_call "$fn" 350000::bigint)\$q\$)" \
		-c "SELECT ms, v FROM bench_time_value(\$q\$SELECT $(rt_call "$fn" 350000::bigint)\$q\$)" \
		-c "\\! '$GB_BINDIR/psql' -X -q -v ON_ERROR_STOP=1 -h '$B_HOST' -p '$B_PORT' -U postgres -d bench_route -c 'UPDATE gb_scale.tenant_shard_map m SET shard_id = c.shard_id, region_code = c.region_code FROM gb_scale.shard_config c WHERE m.tenant_id = 350000 AND c.shard_id = $new' >/dev/null; sleep 0.2" \
		-c "SELECT ms, v FROM bench_time_value(\$q\$SELECT $(rt_call "$fn" 350000::bigint)\$q\$)")
	[ "$(rt_sql -c "SELECT shard_id FROM gb_scale.tenant_shard_map WHERE tenant_id = 350000")" = "$new" ] ||
		gb_die "the map change of the after-change test did not happen"
	rt_record change warm "$name" 0 "$2" "$(sed -n 2p <<<"$out" | cut -f1)"
	rt_record change ms "$name" 0 "$2" "$(sed -n 3p <<<"$out" | cut -f1)"
	if [ -n "$fn" ]; then
		rt_record change stale "$name" 0 "$2" "$([ "$(sed -n 3p <<<"$out" | cut -f2)" = "$new" ] && echo 0 || echo 1)"
	fi
}

rt_one() {
	local rep k
	gb_log "routing: first lookup of a session and first after a change by another session, $RT_ONE_REPS repetitions"
	for rep in $(seq 1 "$RT_ONE_REPS"); do
		for k in 0 1 2; do rt_first "$k" "$rep"; done
		for k in 0 1 2; do rt_after_change "$k" "$rep"; done
	done
}

routing_bench() {
	: >"$RT_SAMPLES"
	gb_log "routing: 7 shards, 100,000 tenants in tenant_shard_map"
	BENCH_DB=postgres bsql -c "CREATE DATABASE bench_route"
	rt_sql -f "$BENCH_DIR/routing.sql"
	rt_sql -c "SELECT to_regprocedure('gb_shard_for_tenant(bigint)') IS NOT NULL" | grep -qx t ||
		gb_die "gb_shard_for_tenant(bigint) is missing from this build"
	rt_check
	rt_load before query
	rt_queries
	rt_load before pgbench
	rt_pgbench
	rt_load before one
	rt_one
	rt_load after one
}

routing_report() {
	cp "$RT_SAMPLES" "$BENCH_DIR/results/routing.tsv"
	rt_sql -v reps="$RT_REPS" -v pgb_secs="$RT_PGB_SECS" -v pgb_reps="$RT_PGB_REPS" -v one_reps="$RT_ONE_REPS" \
		-f "$BENCH_DIR/routing_report.sql" <"$RT_SAMPLES"
}
