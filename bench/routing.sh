# shellcheck shell=bash
# Part 4 of bench/run.sh, sourced by it: gb_shard_for_tenant() (the map held
# in shared memory) against the PL/pgSQL lookup of General Bots' migration
# (bench/routing.sql), in database bench_route of the same cluster, in the
# same run, over the same directory: 7 shards of 1,000,000 tenants, and
# tenant_shard_map filled with 10,000, 100,000 and 1,000,000 placements in
# turn (every (7,000,000 / size)th tenant, each moved off its range's shard
# to the next one, so that a lookup ignoring the map answers wrong).  For
# each size:
#   0. both functions agree with each other and with the placement rule over
#      20,000 tenants, half of them mapped; the shared map's size
#      (gb_scale.routing_status: entries, bytes, bytes per entry, load time);
#   1. per call: SELECT count(f(t)) over generate_series, t cycling over
#      every mapped tenant and as many range-only ones, against the same
#      query without the function (the empty loop), in the backend's CPU time;
#   2. the first lookup of a new session, and in a session that had just
#      looked a mapped tenant up, the first after another session moved it
#      (checking that it sees the move);
#   3. pgbench, 50 clients, one SELECT f(:t) per transaction, t drawn over the
#      whole set; then gb_shard_for_tenant again while a 51st session moves a
#      tenant every 10 ms (every lookup after a map write).
# Uses run.sh's cluster B, bsql, WORK and BENCH_QUICK.
# routing_bench measures (writes $RT_SAMPLES), routing_report prints.

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	RT_SIZES=(10000 100000) RT_N_FAST=200000 RT_N_SLOW=10000 RT_REPS=2 RT_PGB_SECS=5 RT_ONE_REPS=3
else
	# ~8 min on 2 cores.
	RT_SIZES=(10000 100000 1000000) RT_N_FAST=2000000 RT_N_SLOW=100000 RT_REPS=3 RT_PGB_SECS=10 RT_ONE_REPS=10
fi
RT_CLIENTS=50
RT_SAMPLES=$WORK/routing.tsv

rt_sql() { BENCH_DB=bench_route bsql "$@"; } # rt_sql [psql args...]

rt_record() { # rt_record SIZE SECTION VARIANT REP VALUE
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RT_SAMPLES"
}

# The tenant of row g for map size S: even g a mapped tenant, odd g the
# tenant just below it (range only), scattered over all 7 shards.
rt_tenant() { # rt_tenant S
	echo "((7000000 / $1) * ((g * 7919) % $1 + 1) - (g % 2))"
}

rt_call() { if [ -n "$1" ]; then echo "$1($2)"; else echo "$2"; fi; }

rt_fill() { # rt_fill S
	rt_sql -c "TRUNCATE gb_scale.tenant_shard_map" \
		-c "INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code)
			SELECT t, c.shard_id, c.region_code
			FROM generate_series(7000000 / $1, 7000000, 7000000 / $1) t
			JOIN gb_scale.shard_config c ON c.shard_id = ((t - 1) / 1000000 + 1) % 7 + 1" \
		-c "VACUUM ANALYZE gb_scale.tenant_shard_map"
}

rt_check() { # rt_check S
	local t out
	t=$(rt_tenant "$1")
	out=$(rt_sql -c "SELECT count(*) FILTER (WHERE gb IS DISTINCT FROM pl),
			count(*) FILTER (WHERE gb IS DISTINCT FROM
				CASE WHEN t % (7000000 / $1) = 0 THEN ((t - 1) / 1000000 + 1) % 7 + 1 ELSE (t - 1) / 1000000 + 1 END)
		FROM (SELECT t, gb_shard_for_tenant(t) AS gb, get_shard_for_tenant(t) AS pl
			FROM (SELECT $t AS t FROM generate_series(1::bigint, 20000) g) s) c")
	[ "$out" = $'0\t0' ] || gb_die "routing: wrong answers at size $1: $out"
	gb_log "routing $1: both functions agree with each other and the rule over 20,000 tenants"
	rt_status "$1" ''
}

# The shared map's figures (after_: at the end, after the writes).
rt_status() { # rt_status S PREFIX
	local out
	out=$(rt_sql -c "SELECT entries, bytes, bytes_per_entry, last_load_ms, loads, updates FROM gb_scale.routing_status
			WHERE database = current_database() AND state = 'ready'")
	[ -n "$out" ] || gb_die "routing: the map of size $1 is not in shared memory"
	rt_record "$1" status "${2}entries" 0 "$(cut -f1 <<<"$out")"
	rt_record "$1" status "${2}bytes" 0 "$(cut -f2 <<<"$out")"
	rt_record "$1" status "${2}bytes_per_entry" 0 "$(cut -f3 <<<"$out")"
	rt_record "$1" status "${2}load_ms" 0 "$(cut -f4 <<<"$out")"
	rt_record "$1" status "${2}loads" 0 "$(cut -f5 <<<"$out")"
	rt_record "$1" status "${2}updates" 0 "$(cut -f6 <<<"$out")"
	gb_log "routing $1: shared map ${2}entries, bytes, bytes/entry, load ms, loads, updates: $out"
}

RT_Q_NAMES=("empty" "gb_shard_for_tenant" "plpgsql")
RT_Q_FUNCS=("" gb_shard_for_tenant get_shard_for_tenant)

rt_queries() { # rt_queries S
	local rep k n t out cpu
	t=$(rt_tenant "$1")
	for rep in $(seq 1 "$RT_REPS"); do
		for k in 0 1 2; do
			n=$([ "$k" -lt 2 ] && echo "$RT_N_FAST" || echo "$RT_N_SLOW")
			out=$(rt_sql -c "SELECT count($(rt_call "${RT_Q_FUNCS[$k]}" "$t")) FROM generate_series(1::bigint, 1000) g" \
				-c "SELECT cpu_ms FROM bench_time_cpu(\$q\$SELECT count($(rt_call "${RT_Q_FUNCS[$k]}" "$t")) FROM generate_series(1::bigint, $n) g\$q\$)")
			cpu=$(sed -n 2p <<<"$out")
			rt_record "$1" ns_row "${RT_Q_NAMES[$k]}" "$rep" "$(awk -v a="$cpu" -v b="$n" 'BEGIN { print a * 1e6 / b }')"
		done
	done
}

# The first lookup of a new session (the connection made by SELECT 1), and
# the first after another session moved a mapped tenant.
rt_one() { # rt_one S REP
	local fn mapped cur new out
	mapped=$((7000000 / $1))
	mapped=$((mapped * 5))
	out=$(rt_sql -c "SELECT 1" -c "SELECT ms FROM bench_time_value(\$q\$SELECT 3500001::bigint\$q\$)" | sed -n 2p)
	rt_record "$1" first_ms empty "$2" "$out"
	for fn in gb_shard_for_tenant get_shard_for_tenant; do
		out=$(rt_sql -c "SELECT 1" -c "SELECT ms FROM bench_time_value(\$q\$SELECT $fn(3500001)\$q\$)" | sed -n 2p)
		rt_record "$1" first_ms "$fn" "$2" "$out"
		cur=$(rt_sql -c "SELECT shard_id FROM gb_scale.tenant_shard_map WHERE tenant_id = $mapped")
		new=$([ "$cur" = 2 ] && echo 3 || echo 2)
		out=$(rt_sql -c "SELECT ms, v FROM bench_time_value(\$q\$SELECT $fn($mapped)\$q\$)" \
			-c "\\! '$GB_BINDIR/psql' -X -q -v ON_ERROR_STOP=1 -h '$B_HOST' -p '$B_PORT' -U postgres -d bench_route -c 'SELECT gb_tenant_assign($mapped, $new::smallint)' >/dev/null; sleep 0.2" \
			-c "SELECT ms, v FROM bench_time_value(\$q\$SELECT $fn($mapped)\$q\$)")
		[ "$(sed -n 2p <<<"$out" | cut -f2)" = "$new" ] || gb_die "routing: $fn answered the old shard after a move"
		rt_record "$1" after_write_ms "$fn" "$2" "$(sed -n 2p <<<"$out" | cut -f1)"
	done
}

rt_pgbench() { # rt_pgbench S NAME SQL [writer]
	local f=$WORK/route_$2.sql out tps lat wpid=''
	printf '%s\n' "\\set j random(1, $1)" "\\set t (7000000 / $1) * :j - random(0, 1)" "$3" >"$f"
	if [ -n "${4:-}" ]; then
		printf '%s\n' "\\set j random(1, $1)" "\\set s random(1, 7)" \
			"SELECT gb_tenant_assign((7000000 / $1) * :j, :s::smallint);" "\\sleep 10 ms" >"$WORK/route_writer.sql"
		"$GB_BINDIR/pgbench" -n -c 1 -T "$RT_PGB_SECS" -f "$WORK/route_writer.sql" \
			-h "$B_HOST" -p "$B_PORT" -U postgres bench_route >"$WORK/route_writer.out" 2>&1 &
		wpid=$!
	fi
	out=$("$GB_BINDIR/pgbench" -n -M prepared -c "$RT_CLIENTS" -j 2 -T "$RT_PGB_SECS" -f "$f" \
		-h "$B_HOST" -p "$B_PORT" -U postgres bench_route 2>&1) ||
		{ printf '%s\n' "$out" >&2; gb_die "pgbench failed"; }
	[ -z "$wpid" ] || wait "$wpid" || { cat "$WORK/route_writer.out" >&2; gb_die "the writer failed"; }
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
	[ -n "$tps" ] || { printf '%s\n' "$out" >&2; gb_die "no tps in pgbench output"; }
	rt_record "$1" tps "$2" 0 "$tps"
	rt_record "$1" latency_ms "$2" 0 "$lat"
	if [ -n "$wpid" ]; then
		rt_record "$1" writes "$2" 0 "$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/route_writer.out")"
	fi
	gb_log "$(printf 'routing %7d pgbench %-24s %9.1f tps, %7.3f ms' "$1" "$2" "$tps" "$lat")"
}

routing_bench() {
	local s rep
	: >"$RT_SAMPLES"
	BENCH_DB=postgres bsql -c "CREATE DATABASE bench_route"
	rt_sql -f "$BENCH_DIR/routing.sql"
	for s in "${RT_SIZES[@]}"; do
		gb_log "routing: $s placements in tenant_shard_map"
		rt_fill "$s"
		rt_check "$s"
		rt_record "$s" load before 0 "$(cut -d' ' -f1 /proc/loadavg)"
		rt_queries "$s"
		for rep in $(seq 1 "$RT_ONE_REPS"); do rt_one "$s" "$rep"; done
		rt_pgbench "$s" empty 'SELECT :t::bigint;'
		rt_pgbench "$s" gb_shard_for_tenant 'SELECT gb_shard_for_tenant(:t);'
		rt_pgbench "$s" plpgsql 'SELECT get_shard_for_tenant(:t);'
		rt_pgbench "$s" "gb_shard_for_tenant+writer" 'SELECT gb_shard_for_tenant(:t);' writer
		rt_pgbench "$s" "plpgsql+writer" 'SELECT get_shard_for_tenant(:t);' writer
		rt_status "$s" after_
		rt_record "$s" load after 0 "$(cut -d' ' -f1 /proc/loadavg)"
	done
}

# Medians (best for the per-row CPU times) per size, and the ratios of this
# run's figures.
routing_report() {
	cp "$RT_SAMPLES" "$BENCH_DIR/results/routing.tsv"
	awk -F'\t' -v clients="$RT_CLIENTS" -v reps="$RT_REPS" -v one="$RT_ONE_REPS" '
	function median(key,   n, i, j, t, a) {
		n = split(vals[key], a, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function best(key,   n, i, a, m) { n = split(vals[key], a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
	function worst(key,   n, i, a, m) { n = split(vals[key], a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
	{ key = $1 SUBSEP $2 SUBSEP $3; vals[key] = vals[key] (key in vals ? " " : "") $5; if (!($1 in seen)) { seen[$1] = 1; sizes[++ns] = $1 } }
	END {
		printf "Shard routing: gb_shard_for_tenant (shared-memory map) against General Bots'\'' PL/pgSQL lookup, same run\n"
		printf "\n1. Shared map (gb_scale.routing_status) and per call (SELECT count(f(t)), backend CPU time, best of %d; net = minus the empty loop)\n", reps
		printf "%10s %10s %12s %10s %10s | %10s %12s %12s %10s %10s\n", "placements", "entries", "bytes", "B/entry", "load ms", "empty ns", "gb ns (net)", "plpgsql (net)", "raw x", "net x"
		for (i = 1; i <= ns; i++) {
			s = sizes[i]
			e = best(s SUBSEP "ns_row" SUBSEP "empty"); g = best(s SUBSEP "ns_row" SUBSEP "gb_shard_for_tenant")
			p = best(s SUBSEP "ns_row" SUBSEP "plpgsql")
			printf "%10d %10d %12d %10.1f %10.1f | %10.0f %5.0f (%4.0f) %6.0f (%5.0f) %9.1fx %9.1fx\n", s,
				median(s SUBSEP "status" SUBSEP "entries"), median(s SUBSEP "status" SUBSEP "bytes"),
				median(s SUBSEP "status" SUBSEP "bytes_per_entry"), worst(s SUBSEP "status" SUBSEP "load_ms"),
				e, g, g - e, p, p - e, p / g, (g - e > 0 ? (p - e) / (g - e) : 0)
		}
		printf "   target: <= 64 bytes a map entry on the whole server; warm lookups >= 20x the PL/pgSQL lookup\n"
		for (i = 1; i <= ns; i++) {
			s = sizes[i]
			printf "   %d: after the writes of parts 2 and 3, loads %s (was %s), entries written by commits %s, %.1f bytes an entry\n", s,
				vals[s SUBSEP "status" SUBSEP "after_loads"], vals[s SUBSEP "status" SUBSEP "loads"],
				vals[s SUBSEP "status" SUBSEP "after_updates"], vals[s SUBSEP "status" SUBSEP "after_bytes_per_entry"]
		}
		printf "\n2. Single lookups, timed server-side, %d repetitions: median (max) ms\n", one
		printf "%10s %-22s %18s %22s\n", "placements", "f", "first of a session", "first after a write"
		for (i = 1; i <= ns; i++) {
			s = sizes[i]
			printf "%10d %-22s %10.3f (%5.3f) %22s\n", s, "empty (SELECT 3500001)",
				median(s SUBSEP "first_ms" SUBSEP "empty"), worst(s SUBSEP "first_ms" SUBSEP "empty"), "-"
			for (f = 1; f <= 2; f++) {
				fn = (f == 1 ? "gb_shard_for_tenant" : "get_shard_for_tenant")
				printf "%10d %-22s %10.3f (%5.3f) %14.3f (%5.3f)\n", s, fn,
					median(s SUBSEP "first_ms" SUBSEP fn), worst(s SUBSEP "first_ms" SUBSEP fn),
					median(s SUBSEP "after_write_ms" SUBSEP fn), worst(s SUBSEP "after_write_ms" SUBSEP fn)
			}
			printf "%10s first of a session net of the empty statement: gb_shard_for_tenant %.3f ms, PL/pgSQL %.3f ms\n", "",
				median(s SUBSEP "first_ms" SUBSEP "gb_shard_for_tenant") - median(s SUBSEP "first_ms" SUBSEP "empty"),
				median(s SUBSEP "first_ms" SUBSEP "get_shard_for_tenant") - median(s SUBSEP "first_ms" SUBSEP "empty")
		}
		printf "   target: <= 1 ms for both; every answer after a write gave the new shard (checked)\n"
		printf "\n3. pgbench -M prepared, %d clients, one SELECT f(:t) per transaction, t over the whole set\n", clients
		printf "%10s %-28s %10s %12s %12s %10s\n", "placements", "f", "TPS", "latency ms", "net ms", "writes"
		for (i = 1; i <= ns; i++) {
			s = sizes[i]; el = median(s SUBSEP "latency_ms" SUBSEP "empty")
			split("empty gb_shard_for_tenant plpgsql gb_shard_for_tenant+writer plpgsql+writer", vs, " ")
			for (v = 1; v <= 5; v++) {
				k = s SUBSEP "latency_ms" SUBSEP vs[v]
				printf "%10d %-28s %10.0f %12.3f %12.3f %10s\n", s, vs[v], median(s SUBSEP "tps" SUBSEP vs[v]),
					median(k), median(k) - el, (s SUBSEP "writes" SUBSEP vs[v]) in vals ? vals[s SUBSEP "writes" SUBSEP vs[v]] : "-"
			}
			gl = median(s SUBSEP "latency_ms" SUBSEP "gb_shard_for_tenant") - el
			pl = median(s SUBSEP "latency_ms" SUBSEP "plpgsql") - el
			printf "%10s per request: PL/pgSQL / gb_shard_for_tenant latency %.2fx raw, net %s\n", "",
				median(s SUBSEP "latency_ms" SUBSEP "plpgsql") / median(s SUBSEP "latency_ms" SUBSEP "gb_shard_for_tenant"),
				(gl > 0 ? sprintf("%.1fx", pl / gl) : "n/a (gb_shard_for_tenant within the noise of the empty request)")
		}
		printf "\nload average before/after each size:"
		for (i = 1; i <= ns; i++) printf " %s: %s/%s", sizes[i], vals[sizes[i] SUBSEP "load" SUBSEP "before"], vals[sizes[i] SUBSEP "load" SUBSEP "after"]
		printf "\n"
	}' "$RT_SAMPLES"
	# 5. gb_shard_sync at the same sizes, on a cluster of its own.
	printf '\n5. gb_shard_sync (bench/routing_sync.sh)\n'
	PG_CONFIG="$PG_CONFIG" SYNC_SIZES="${RT_SIZES[*]}" bash "$BENCH_DIR/routing_sync.sh"
}
