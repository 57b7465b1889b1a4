#!/usr/bin/env bash
# The proof of the online tenant move (issue 17): a tenant with TM_ROWS
# messages (and a tenth as many sessions) moved from shard 1 to shard 4 of a
# real two-shard deployment (test/shards.sh start 2: wal_level = logical)
# with CALL gb_tenant_move while pgbench writes for it and for other tenants
# on both shards; then, on the same rows, today's export/import recipe.
#
# Data (General Bots' gb.sessions and gb.messages, as test/shards.sh makes
# them): tenant 42 on shard 1 (TM_ROWS messages, 10 per session); tenants
# 43..52 on shard 1 and 3000001..3000010 on shard 4 (TM_OTHER_ROWS messages
# per shard).  Replica identity: a unique index (id, shard_id, tenant_id)
# (the move needs the tenant column in it; PostgreSQL 15's apply looks rows
# up by it).
#
# Writers (pgbench, --rate, per-transaction logs -l), one transaction = one
# General Bots write: a message in a session of the tenant and the session's
# last_active, both acknowledged (bench.acked) in the same transaction:
#   - tenant 42: TM_RATE tps, 4 clients connected to shard 1 (the source)
#     for the whole run.  Each transaction routes itself
#     (bench.routed_write in bench/tenant_move.sql): it asks shard 1's
#     directory which shard serves the tenant, writes there (on shard 1
#     itself, or on shard 4 through a dblink connection kept per client),
#     and on 40001 (the fence) asks again and retries 1 ms later.  A write
#     that waited at the pause and then failed therefore appears in the
#     log as one long transaction: its latency is the stall a client sees.
#   - other tenants: TM_OTHER_RATE tps in all, half on each shard, 2
#     clients each, all local writes.
# The writers first run TM_WARM_SECS without being measured: the load and
# the CHECKPOINT after it leave every page's first change writing a
# full-page image, WAL the steady workload does not write (168 MB in the
# first minute against 22-25 MB later, in an earlier run).  The next
# TM_BASE_SECS seconds are the baseline without a move; then CALL
# gb_tenant_move(42, 4) on shard 1 (timed, its NOTICEs timestamped); the
# writers go on TM_TAIL_SECS after it.  Each shard runs with
# shared_buffers = TM_SHARED_BUFFERS (a shard holding millions of rows is
# not run with the 128MB default, and both windows have the same).
#
# Figures: the pause (gb_scale.tenant_moves), the copy time (NOTICE
# "subscribed" to NOTICE "initial copy done"), rows per second; tenant 42's
# longest transaction latency and longest gap between two successful
# writes during the move; the other tenants' p99 latency during the move
# against the baseline (pgbench latencies include the schedule lag).
#
# Checks (FAIL, exit 1): every row of tenant 42 (the rows before the run,
# then the last acknowledged content of every row a writer wrote) is on
# shard 4 exactly once with an equal row hash (md5 of the row as jsonb
# without shard_id), and no other row of the tenant is there; none on shard
# 1; every other tenant's row on both shards equal to its hash before the
# run or its last acknowledged write; no pgbench transaction failed; no
# replication slot, publication or subscription left.  Targets (PASS/MISS,
# reported, not fatal): stall <= 1 s, p99 ratio <= 2.
#
# Then the recipe of README "Tenant export, purge and move" moves tenant 42
# back from shard 4 to shard 1 (no writers): its read-only window is the
# export, the load and the assignment (the purge follows, timed apart).
# Last, bench/tenant_move_citus.sh, when it exists and Citus is installed.
#
#   PG_CONFIG=/path/to/pg_config bash bench/tenant_move.sh
#   TM_ROWS=1000000 TM_OTHER_ROWS=200000 TM_RATE=200 TM_OTHER_RATE=200
#   TM_WARM_SECS=120 TM_BASE_SECS=120 TM_TAIL_SECS=10 TM_SHARED_BUFFERS=1GB
#   (defaults); TM_ROWS=100000 for a quick run;
#   TM_MOVE_RATE=2000 (default) sets gb_scale.move_rate on both shards: the
#   rate for two shards and their writers on one 2-core machine ('' keeps
#   the setting's default, 10000); TM_CITUS=0 leaves the Citus run out
set -euo pipefail
TM_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$TM_BENCH_DIR/../scripts/lib.sh"

TM_ROWS=${TM_ROWS:-1000000}
TM_OTHER_ROWS=${TM_OTHER_ROWS:-$((TM_ROWS / 5))}
TM_RATE=${TM_RATE:-200}
TM_OTHER_RATE=${TM_OTHER_RATE:-200}
TM_WARM_SECS=${TM_WARM_SECS:-120}
TM_BASE_SECS=${TM_BASE_SECS:-120}
TM_SHARED_BUFFERS=${TM_SHARED_BUFFERS:-1GB}
TM_TAIL_SECS=${TM_TAIL_SECS:-10}
TM_MOVE_RATE=${TM_MOVE_RATE-2000}
TENANT=42
OTHERS1=$(seq -s, 43 52)
OTHERS4=$(seq -s, 3000001 3000010)
export PG_CONFIG

SHARDS_DIR=""
PGB_PIDS=()
WAL_SAMPLER=""
tm_cleanup() {
	local p
	for p in "${PGB_PIDS[@]}" $WAL_SAMPLER; do kill "$p" 2>/dev/null || true; done
	if [ -n "$SHARDS_DIR" ]; then
		GB_SHARDS_DIR=$SHARDS_DIR bash "$GB_ROOT/test/shards.sh" stop >/dev/null 2>&1 || true
	fi
	gb_cleanup
}
trap tm_cleanup EXIT
gb_build_install
GB_BINDIR=$(gb_bindir)
gb_tmpdir W

gb_log "starting two shards (test/shards.sh start 2)"
env_out=$(GB_SHARDS_CONF="shared_buffers = '$TM_SHARED_BUFFERS'" bash "$GB_ROOT/test/shards.sh" start 2)
eval "$env_out"
SHARDS_DIR=$GB_SHARDS_DIR
C1="$GB_SHARD_1_CONNSTR user=postgres"
C4="$GB_SHARD_4_CONNSTR user=postgres"

s1() { gb_as_pg "$GB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$C1" "$@"; }
s4() { gb_as_pg "$GB_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$C4" "$@"; }
now_s() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

FAILS=0
check() { # check NAME GOT WANT
	if [ "$2" = "$3" ]; then
		printf 'ok   %s\n' "$1"
	else
		printf 'FAIL %s: got %s, want %s\n' "$1" "$2" "$3"
		FAILS=$((FAILS + 1))
	fi
}
target() { # target NAME VALUE LIMIT UNIT
	if awk -v v="$2" -v l="$3" 'BEGIN { exit !(v <= l) }'; then
		printf 'PASS %s: %s %s (target <= %s)\n' "$1" "$2" "$4" "$3"
	else
		printf 'MISS %s: %s %s (target <= %s)\n' "$1" "$2" "$4" "$3"
	fi
}

for s in s1 s4; do
	# Keep checkpoints out of the run (as gb_bench_cluster_start does).
	$s -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "ALTER SYSTEM SET checkpoint_timeout = '30min'" \
		-c "ALTER SYSTEM SET log_checkpoints = on" -c "ALTER SYSTEM SET log_autovacuum_min_duration = 0" \
		-c "SELECT pg_reload_conf()" >/dev/null
	if [ -n "$TM_MOVE_RATE" ]; then
		$s -c "ALTER SYSTEM SET gb_scale.move_rate = $TM_MOVE_RATE" -c "SELECT pg_reload_conf()" >/dev/null
	fi
	$s <"$TM_BENCH_DIR/tenant_move.sql"
done
MOVE_RATE_SHOWN=$(s1 -c 'SHOW gb_scale.move_rate')

# --- data -----------------------------------------------------------------
gb_log "data: tenant $TENANT with $TM_ROWS messages on shard 1, $TM_OTHER_ROWS messages of other tenants per shard"
t0=$(now_s)
load() { # load SHARD TENANTS(csv) MESSAGES
	local s=$1 tenants=$2 msgs=$3
	$s <<SQL
INSERT INTO gb.sessions (tenant_id, user_ref, created_at, last_active)
SELECT t, 'user ' || g, now() - g * interval '1 minute', now() - g * interval '1 second'
  FROM unnest('{$tenants}'::bigint[]) t, generate_series(1, greatest(1, $msgs / 10 / cardinality('{$tenants}'::bigint[]))) g;
INSERT INTO bench.sess SELECT tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY id), id
  FROM gb.sessions WHERE tenant_id = ANY ('{$tenants}');
INSERT INTO gb.messages (tenant_id, session_id, role, body, created_at)
SELECT s.tenant_id, s.id, 1 + g % 2,
       'message ' || g || ' of ' || s.user_ref || ': ' || repeat(md5(s.id::text || g), 2), s.created_at + g * interval '1 second'
  FROM gb.sessions s, generate_series(1, 10) g WHERE s.tenant_id = ANY ('{$tenants}');
SQL
}
load s1 "$TENANT" "$TM_ROWS"
load s1 "$OTHERS1" "$TM_OTHER_ROWS"
load s4 "$OTHERS4" "$TM_OTHER_ROWS"
for s in s1 s4; do
	$s <<'SQL'
CREATE UNIQUE INDEX sessions_replica ON gb.sessions (id, shard_id, tenant_id);
CREATE UNIQUE INDEX messages_replica ON gb.messages (id, shard_id, tenant_id);
ALTER TABLE gb.sessions REPLICA IDENTITY USING INDEX sessions_replica;
ALTER TABLE gb.messages REPLICA IDENTITY USING INDEX messages_replica;
VACUUM ANALYZE gb.sessions;
VACUUM ANALYZE gb.messages;
SQL
done
# The moving tenant's sessions by number, on the target too.
s1 -c "COPY (SELECT * FROM bench.sess WHERE tenant_id = $TENANT) TO STDOUT" | s4 -c "COPY bench.sess FROM STDIN"
s1 -c "INSERT INTO bench.before SELECT * FROM bench.rows_of('{$TENANT,$OTHERS1}')"
s4 -c "INSERT INTO bench.before SELECT * FROM bench.rows_of('{$OTHERS4}')"
# (so that no autovacuum of the benchmark's own tables runs in the windows)
for s in s1 s4; do $s -c "VACUUM ANALYZE bench.before, bench.sess"; done
s1 -c "CHECKPOINT"
s4 -c "CHECKPOINT"
T_ROWS=$(s1 -c "SELECT count(*) FROM bench.before WHERE tenant_id = $TENANT")
NSESS=$(s1 -c "SELECT count(*) FROM bench.sess WHERE tenant_id = $TENANT")
NSESS_O=$(s1 -c "SELECT min(n) FROM (SELECT count(*) n FROM bench.sess WHERE tenant_id <> $TENANT GROUP BY tenant_id) x")
gb_log "loaded in $(secs "$t0" "$(now_s)") s: tenant $TENANT has $T_ROWS rows ($NSESS sessions)"

# --- writers and the move -------------------------------------------------
cat >"$W/mover.sql" <<SQL
\set k random(1, $NSESS)
SELECT bench.routed_write($TENANT, :k);
SQL
cat >"$W/others1.sql" <<SQL
\set t random(43, 52)
\set k random(1, $NSESS_O)
SELECT bench.routed_write(:t, :k);
SQL
cat >"$W/others4.sql" <<SQL
\set t random(3000001, 3000010)
\set k random(1, $NSESS_O)
SELECT bench.routed_write(:t, :k);
SQL
chmod 644 "$W"/*.sql
# Long enough for any move; stopped TM_TAIL_SECS after the move instead.
PGB_SECS=$((TM_WARM_SECS + TM_BASE_SECS + 3600))
pgb() { # pgb NAME CONNSTR RATE CLIENTS
	# exec: the pid file names pgbench itself, which the script stops.
	# shellcheck disable=SC2016 # expanded by that shell
	gb_as_pg sh -c 'echo $$ >"$1.pid"; shift; exec "$@"' sh "$W/$1" \
		"$GB_BINDIR/pgbench" -n -M prepared -c "$4" -j 1 -R "$3" -T "$PGB_SECS" \
		-l --log-prefix="$W/$1" -f "$W/$1.sql" "$2" >"$W/$1.out" 2>&1 &
	while [ ! -s "$W/$1.pid" ]; do sleep 0.05; done
	PGB_PIDS+=("$(cat "$W/$1.pid")")
}
pgb mover "$C1" "$TM_RATE" 4
pgb others1 "$C1" $((TM_OTHER_RATE / 2)) 2
pgb others4 "$C4" $((TM_OTHER_RATE / 2)) 2
RUN_START=$(now_s)
# The wait sampler commits every 50 ms on shard 1: it runs from the
# baseline on, so that both windows bear its load alike.
s1 -c "CALL bench.sample_waits()" &
SAMPLER=$!
# Each shard's WAL position every 10 s: the WAL each phase writes.
(
	while [ ! -e "$W/wal.stop" ]; do
		printf '%s\t%s\t%s\n' "$(now_s)" "$(s1 -c "SELECT pg_current_wal_lsn() - '0/0'")" "$(s4 -c "SELECT pg_current_wal_lsn() - '0/0'")"
		sleep 10
	done
) >"$W/wal.tsv" &
WAL_SAMPLER=$!
gb_log "writers started; warm-up for $TM_WARM_SECS s, then the baseline for $TM_BASE_SECS s"
sleep "$((TM_WARM_SECS + TM_BASE_SECS))"

gb_log "CALL gb_tenant_move($TENANT, 4) on shard 1"
MOVE_START=$(now_s)
set +e
s1 -c "CALL gb_tenant_move($TENANT, 4::smallint)" 2>&1 |
	while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done >"$W/move.log"
move_rc=${PIPESTATUS[0]}
set -e
MOVE_END=$(now_s)
s1 -c "DELETE FROM bench.sampling"
wait "$SAMPLER"
touch "$W/wal.stop"
wait "$WAL_SAMPLER"
sed 's/^/    /' "$W/move.log" >&2
[ "$move_rc" -eq 0 ] || { cat "$W/move.log"; gb_die "the move failed"; }
sleep "$TM_TAIL_SECS"
PGB_ALIVE=0
for p in "${PGB_PIDS[@]}"; do
	# pgbench has no signal handler: its log loses the last buffered lines
	# (well after the move), nothing that is measured.
	kill -0 "$p" 2>/dev/null && PGB_ALIVE=$((PGB_ALIVE + 1))
	kill -TERM "$p" 2>/dev/null || true
done
wait
PGB_PIDS=()
gb_log "waits of shard 1's backends during the move (samples every 50 ms: count, first, last seconds after the CALL)"
s1 -c "SELECT count(*) || ' x ' || wait_event_type || '/' || wait_event || ' (' || backend_type || ', +' ||
              round(extract(epoch FROM min(at)) - $MOVE_START, 2) || '..+' || round(extract(epoch FROM max(at)) - $MOVE_START, 2) || ' s): ' || query
         FROM bench.waits WHERE at >= to_timestamp($MOVE_START) GROUP BY wait_event_type, wait_event, backend_type, query ORDER BY count(*) DESC LIMIT 12" | sed 's/^/    /' >&2
for f in mover others1 others4; do
	grep -v '^[[:space:]]*$' "$W/$f.out" | sed "s/^/    $f: /" >&2 || true
done

# --- figures of the move --------------------------------------------------
notice_at() { grep -m1 "$1" "$W/move.log" | cut -d' ' -f1; }
COPY_FROM=$(notice_at 'subscribed')
COPY_TO=$(notice_at 'initial copy to shard')
PAUSE=$(s1 -c "SELECT round(extract(epoch FROM pause), 3) FROM gb_scale.tenant_moves WHERE tenant_id = $TENANT ORDER BY started_at DESC LIMIT 1")
MSTATE=$(s1 -c "SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = $TENANT ORDER BY started_at DESC LIMIT 1")
COPIED=$(s1 -c "SELECT sum(value::bigint) FROM gb_scale.tenant_moves, jsonb_each_text(rows_copied) WHERE tenant_id = $TENANT")
COPY_S=$(secs "$COPY_FROM" "$COPY_TO")
MOVE_S=$(secs "$MOVE_START" "$MOVE_END")
RPS=$(awk -v n="$COPIED" -v s="$COPY_S" 'BEGIN { printf "%.0f", n / s }')

# pgbench logs (client txno latency_us|failed script epoch us [lag]) into a table.
for f in mover others1 others4; do
	for l in "$W/$f".[0-9]*; do
		[ -f "$l" ] || continue
		# (the last line may be cut short where pgbench was stopped)
		awk -v n="$f" 'NF >= 6 && $6 ~ /^[0-9]+$/ { print n "\t" $1 "\t" $3 "\t" $5 "." sprintf("%06d", $6) }' "$l"
	done
done >"$W/latencies.tsv"
s1 -c "CREATE TABLE bench.lat (stream text, client int, latency_us text, done_at numeric)"
s1 -c "COPY bench.lat FROM STDIN" <"$W/latencies.tsv"
lat_sql() { # lat_sql STREAMS(regexp) FROM TO -> p99 ms, count
	s1 -c "SELECT round(percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_us::numeric) / 1000, 2) || ' ' || count(*)
	         FROM bench.lat WHERE stream ~ '$1' AND latency_us ~ '^[0-9]+$' AND done_at >= $2 AND done_at < $3"
}
BASE_FROM=$(awk -v s="$RUN_START" -v w="$TM_WARM_SECS" 'BEGIN { printf "%.6f", s + w }')
read -r P99_BASE N_BASE <<<"$(lat_sql '^others' "$BASE_FROM" "$MOVE_START")"
read -r P99_MOVE N_MOVE <<<"$(lat_sql '^others' "$MOVE_START" "$MOVE_END")"
read -r P99_BASE1 _ <<<"$(lat_sql '^others1' "$BASE_FROM" "$MOVE_START")"
read -r P99_MOVE1 _ <<<"$(lat_sql '^others1' "$MOVE_START" "$MOVE_END")"
read -r P99_BASE4 _ <<<"$(lat_sql '^others4' "$BASE_FROM" "$MOVE_START")"
read -r P99_MOVE4 _ <<<"$(lat_sql '^others4' "$MOVE_START" "$MOVE_END")"
read -r P99_MBASE _ <<<"$(lat_sql '^mover' "$BASE_FROM" "$MOVE_START")"
# The other tenants during each phase of the move: the initial copy, the
# catch-up and switch, the cleanup (the target's shard_id rewrite, the
# source's purge).
SWITCHED=$(notice_at 'switched to shard')
read -r P99_COPY N_COPY <<<"$(lat_sql '^others' "$MOVE_START" "$COPY_TO")"
read -r P99_SWITCH N_SWITCH <<<"$(lat_sql '^others' "$COPY_TO" "$SWITCHED + 1")"
read -r P99_CLEAN N_CLEAN <<<"$(lat_sql '^others' "$SWITCHED + 1" "$MOVE_END")"
RATIO=$(awk -v a="$P99_MOVE" -v b="$P99_BASE" 'BEGIN { printf "%.2f", a / b }')
# The other tenants' p99 per minute of the move, beside what the shards'
# logs show then (checkpoints, autovacuum of the moved tables): where a
# miss comes from.
gb_log "per minute from the warm-up on (the baseline is the last $TM_BASE_SECS s before +0): other tenants' p99 (ms) on shard 1 and shard 4, and the WAL (MB) each shard wrote; then the shards' checkpoints and autovacuums"
s1 -c "CREATE TABLE bench.wal (at numeric, lsn1 numeric, lsn4 numeric)"
s1 -c "COPY bench.wal FROM STDIN" <"$W/wal.tsv"
s1 -c "WITH lat AS (SELECT floor((done_at - $MOVE_START) / 60) m,
                           round(percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_us::numeric) FILTER (WHERE stream = 'others1') / 1000, 1) p1,
                           round(percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_us::numeric) FILTER (WHERE stream = 'others4') / 1000, 1) p4
                      FROM bench.lat WHERE stream ~ '^others' AND latency_us ~ '^[0-9]+$' AND done_at >= $RUN_START AND done_at < $MOVE_END
                     GROUP BY 1),
              wal AS (SELECT floor((at - $MOVE_START) / 60) m, round(sum(d1) / 1e6, 1) w1, round(sum(d4) / 1e6, 1) w4
                        FROM (SELECT at, lsn1 - lag(lsn1) OVER (ORDER BY at) d1, lsn4 - lag(lsn4) OVER (ORDER BY at) d4 FROM bench.wal) d
                       GROUP BY 1)
         SELECT format('    %s%s s: p99 %s / %s ms, WAL %s / %s MB', CASE WHEN m >= 0 THEN '+' END, (m * 60)::int, p1, p4, w1, w4)
           FROM lat LEFT JOIN wal USING (m) ORDER BY m" >&2
for d in "$SHARDS_DIR"/shard[0-9]*; do
	[ -f "$d/server.log" ] || continue
	# (an autovacuum's entry goes on with a "tuples:" line: how many dead
	# rows it could not remove, held by the oldest snapshot)
	grep -E -A3 'checkpoint (starting|complete)|automatic (vacuum|analyze) of table "[^"]*\.gb\.' "$d/server.log" |
		grep -E 'checkpoint (starting|complete)|automatic (vacuum|analyze) of table "[^"]*\.gb\.|^[[:space:]]+tuples:' |
		awk -v t0="$MOVE_START" '/^[[:space:]]+tuples:/ { sub(/^[[:space:]]+/, ""); printf "        %s\n", $0; next }
			{ cmd = "date -d \"" $1 " " $2 " " $3 "\" +%s.%N"; cmd | getline e; close(cmd);
			printf "    %+.0f s: %s\n", e - t0, substr($0, index($0, "shard ")) }' >&2 || true
done
# Tenant 42 around the move: longest latency, longest gap between two
# successful writes (completion times), and when the longest one ended.
STALL=$(s1 -c "SELECT round(max(latency_us::numeric) / 1e6, 3) FROM bench.lat
                WHERE stream = 'mover' AND latency_us ~ '^[0-9]+$' AND done_at >= $MOVE_START AND done_at < $MOVE_END + 5")
GAP=$(s1 -c "SELECT round(max(gap), 3) FROM (SELECT done_at - lag(done_at) OVER (ORDER BY done_at) gap FROM bench.lat
              WHERE stream = 'mover' AND latency_us ~ '^[0-9]+$' AND done_at >= $MOVE_START - 1 AND done_at < $MOVE_END + 5) g")
STALL_AT=$(s1 -c "SELECT round(done_at - $MOVE_START, 1) FROM bench.lat WHERE stream = 'mover' AND latency_us ~ '^[0-9]+$'
                   AND done_at >= $MOVE_START AND done_at < $MOVE_END + 5 ORDER BY latency_us::numeric DESC LIMIT 1")
SWITCH_AT=$(secs "$MOVE_START" "$(notice_at 'switched to shard')")
FAILED=$(s1 -c "SELECT count(*) FROM bench.lat WHERE latency_us = 'failed'")
N_MOVER=$(s1 -c "SELECT count(*) FROM bench.lat WHERE stream = 'mover'")
REROUTES=$(( $(s1 -c "SELECT last_value - 1 + is_called::int FROM bench.reroutes") ))
FWD=$(s4 -c "SELECT count(*) / 2 FROM bench.acked WHERE tenant_id = $TENANT")

# --- checks -----------------------------------------------------------------
gb_log "checking the rows"
check "move state" "$MSTATE" "done"
check "the three pgbench runs wrote until stopped" "$PGB_ALIVE" 3
check "no pgbench transaction failed" "$FAILED" "0"
check "no slot, publication or subscription on shard 1" "$(s1 -c "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_subscription)")" "0"
check "no slot, publication or subscription on shard 4" "$(s4 -c "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_subscription)")" "0"
check "shard 1 and shard 4 route tenant $TENANT to 4" "$(s1 -c "SELECT gb_shard_for_tenant($TENANT)")$(s4 -c "SELECT gb_shard_for_tenant($TENANT)")" "44"
check "no row of tenant $TENANT left on shard 1" \
	"$(s1 -c "SELECT (SELECT count(*) FROM gb.sessions WHERE tenant_id = $TENANT) + (SELECT count(*) FROM gb.messages WHERE tenant_id = $TENANT)")" "0"
# The target's rows and acknowledgements, brought to shard 1 to compare.
s1 -c "CREATE TABLE bench.target_rows (LIKE bench.before)" -c "CREATE TABLE bench.target_acked (LIKE bench.acked)"
s4 -c "COPY (SELECT * FROM bench.rows_of('{$TENANT}')) TO STDOUT" | s1 -c "COPY bench.target_rows FROM STDIN"
s4 -c "COPY (SELECT * FROM bench.acked WHERE tenant_id = $TENANT) TO STDOUT" | s1 -c "COPY bench.target_acked FROM STDIN"
# expected_rows(ROWS, ACKS, TENANTS): the rows before, each replaced by its
# last acknowledged content, plus the rows the writers inserted.
EXPECTED="CREATE TEMP VIEW expected AS
  SELECT DISTINCT ON (tbl, id) tenant_id, tbl, id, h FROM (
    SELECT tenant_id, tbl, id, h, timestamptz '-infinity' at FROM bench.before WHERE tenant_id = ANY (:'tenants')
    UNION ALL SELECT tenant_id, tbl, id, h, at FROM acks) x
  ORDER BY tbl, id, at DESC"
compare() { # compare SHARDFN ACKS_SQL ROWS_SQL TENANTS -> "rows dup missing extra differ"
	$1 -v tenants="{$4}" <<SQL
CREATE TEMP VIEW acks AS $2;
CREATE TEMP VIEW got AS $3;
$EXPECTED;
SELECT (SELECT count(*) FROM got) || ' ' ||
       (SELECT count(*) - count(DISTINCT (tbl, id)) FROM got) || ' ' ||
       (SELECT count(*) FROM expected e WHERE NOT EXISTS (SELECT FROM got g WHERE g.tbl = e.tbl AND g.id = e.id)) || ' ' ||
       (SELECT count(*) FROM got g WHERE NOT EXISTS (SELECT FROM expected e WHERE g.tbl = e.tbl AND g.id = e.id)) || ' ' ||
       (SELECT count(*) FROM got g JOIN expected e USING (tbl, id) WHERE g.h <> e.h OR g.tenant_id <> e.tenant_id);
SQL
}
read -r GOT DUP MISSING EXTRA DIFFER <<<"$(compare s1 \
	"SELECT * FROM bench.acked WHERE tenant_id = $TENANT UNION ALL SELECT * FROM bench.target_acked" \
	"SELECT * FROM bench.target_rows" "$TENANT")"
ACKED=$(s1 -c "SELECT (SELECT count(*) FROM bench.acked WHERE tenant_id = $TENANT AND tbl = 'gb.messages') + (SELECT count(*) FROM bench.target_acked WHERE tbl = 'gb.messages')")
check "tenant $TENANT on shard 4 ($GOT rows): no row twice" "$DUP" 0
check "tenant $TENANT on shard 4: no row missing (before + $ACKED acknowledged writes)" "$MISSING" 0
check "tenant $TENANT on shard 4: no row that was not written" "$EXTRA" 0
check "tenant $TENANT on shard 4: every row hash equal" "$DIFFER" 0
check "tenant $TENANT on shard 4: shard_id rewritten to 4" "$(s4 -c "SELECT count(*) FROM gb.messages WHERE tenant_id = $TENANT AND shard_id <> 4")" 0
for s in 1 4; do
	if [ $s = 1 ]; then o=$OTHERS1; else o=$OTHERS4; fi
	read -r OGOT ODUP OMISS OEXTRA ODIFF <<<"$(compare "s$s" "SELECT * FROM bench.acked WHERE tenant_id = ANY ('{$o}')" \
		"SELECT * FROM bench.rows_of('{$o}')" "$o")"
	check "other tenants on shard $s ($OGOT rows): unchanged but for their acknowledged writes" "$ODUP $OMISS $OEXTRA $ODIFF" "0 0 0 0"
done

# --- today's recipe on the same rows: tenant 42 back to shard 1 -------------
gb_log "the export/import recipe: tenant $TENANT from shard 4 back to shard 1"
R_ROWS=$(s4 -c "SELECT (SELECT count(*) FROM gb.sessions WHERE tenant_id = $TENANT) + (SELECT count(*) FROM gb.messages WHERE tenant_id = $TENANT)")
r0=$(now_s)
s4 -c "COPY (SELECT table_name::text, row_data FROM gb_tenant_export($TENANT)) TO STDOUT" >"$W/t42.tsv"
r1=$(now_s)
# Shard 1 keeps the online move's fence, which refuses the tenant's rows
# there until its directory serves it: the assignment there comes first.
# The tenant is read-only throughout, so the window is the same.
s1 <<SQL
SELECT gb_tenant_assign($TENANT, 1::smallint);
CREATE TEMP TABLE import (table_name text, row_data jsonb);
\copy import FROM '$W/t42.tsv'
BEGIN;
SELECT gb_set_tenant($TENANT);
INSERT INTO gb.sessions SELECT (jsonb_populate_record(NULL::gb.sessions,
         row_data || jsonb_build_object('shard_id', gb_current_shard()))).*
  FROM import WHERE table_name = 'gb.sessions';
INSERT INTO gb.messages SELECT (jsonb_populate_record(NULL::gb.messages,
         row_data || jsonb_build_object('shard_id', gb_current_shard()))).*
  FROM import WHERE table_name = 'gb.messages';
COMMIT;
SQL
r2=$(now_s)
s4 -c "SELECT gb_tenant_assign($TENANT, 1::smallint)" >/dev/null
r3=$(now_s)
s4 -c "SELECT * FROM gb_tenant_purge($TENANT)" >/dev/null
r4=$(now_s)
R_WINDOW=$(secs "$r0" "$r3")
check "recipe: tenant $TENANT's rows on shard 1" \
	"$(s1 -c "SELECT (SELECT count(*) FROM gb.sessions WHERE tenant_id = $TENANT) + (SELECT count(*) FROM gb.messages WHERE tenant_id = $TENANT)")" "$R_ROWS"

# --- Citus ------------------------------------------------------------------
CITUS_LINE=""
if [ "${TM_CITUS:-1}" = 0 ]; then
	CITUS_LINE="not run: TM_CITUS=0"
elif [ ! -f "$TM_BENCH_DIR/tenant_move_citus.sh" ]; then
	CITUS_LINE="not run: bench/tenant_move_citus.sh does not exist"
elif [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
	CITUS_LINE="not run: Citus is not installed for $PG_CONFIG"
else
	gb_log "bench/tenant_move_citus.sh with TM_ROWS=$TM_ROWS"
	# Only TM_ROWS is shared: its other TM_ settings mean other things.
	if env -u TM_OTHER_ROWS -u TM_RATE -u TM_OTHER_RATE TM_ROWS="$TM_ROWS" PG_CONFIG="$PG_CONFIG" \
		bash "$TM_BENCH_DIR/tenant_move_citus.sh" >"$W/citus.out" 2>"$W/citus.err"; then
		CITUS_LINE=$(grep '^citus_move:' "$W/citus.out" | tail -1 || true)
		[ -n "$CITUS_LINE" ] || CITUS_LINE=$(grep -v '^[[:space:]]*$' "$W/citus.out" | tail -1)
	else
		CITUS_LINE="failed: $(tail -3 "$W/citus.err" | tr '\n' ' ')"
	fi
fi

# --- report -------------------------------------------------------------------
printf '\n## tenant move: %s rows of tenant %s (%s sessions), %s other-tenant rows per shard\n\n' \
	"$T_ROWS" "$TENANT" "$NSESS" "$TM_OTHER_ROWS"
printf '| figure | value |\n|---|---|\n'
printf '| gb_scale.move_rate on both shards | %s |\n' "$MOVE_RATE_SHOWN"
printf '| CALL gb_tenant_move (whole move: copy, catch-up, switch, cleanup, purge) | %s s |\n' "$MOVE_S"
printf '| initial copy (NOTICE subscribed to NOTICE copy done) | %s s, %s rows, %s rows/s |\n' "$COPY_S" "$COPIED" "$RPS"
printf '| switch, after the start of the CALL | %s s |\n' "$SWITCH_AT"
printf '| pause (gb_scale.tenant_moves.pause) | %s s |\n' "$PAUSE"
printf '| tenant %s: longest write latency during the move (at +%s s) | %s s |\n' "$TENANT" "$STALL_AT" "$STALL"
printf '| tenant %s: longest gap between successful writes | %s s |\n' "$TENANT" "$GAP"
printf '| tenant %s: writes (%s tps), retried after 40001, committed on shard 4 | %s, %s, %s |\n' "$TENANT" "$TM_RATE" "$N_MOVER" "$REROUTES" "$FWD"
printf '| tenant %s: p99 latency before the move | %s ms |\n' "$TENANT" "$P99_MBASE"
printf '| other tenants (%s tps): p99 latency, baseline (%s writes) | %s ms (shard 1 %s, shard 4 %s) |\n' "$TM_OTHER_RATE" "$N_BASE" "$P99_BASE" "$P99_BASE1" "$P99_BASE4"
printf '| other tenants: p99 latency during the move (%s writes) | %s ms (shard 1 %s, shard 4 %s) |\n' "$N_MOVE" "$P99_MOVE" "$P99_MOVE1" "$P99_MOVE4"
printf '| other tenants: p99 latency during the copy / the catch-up and switch (to 1 s after it) / the cleanup | %s ms (%s writes) / %s ms (%s) / %s ms (%s) |\n' \
	"$P99_COPY" "$N_COPY" "$P99_SWITCH" "$N_SWITCH" "$P99_CLEAN" "$N_CLEAN"
printf '| export/import recipe, read-only window (export %s s, load %s s, assign %s s) | %s s |\n' \
	"$(secs "$r0" "$r1")" "$(secs "$r1" "$r2")" "$(secs "$r2" "$r3")" "$R_WINDOW"
printf '| export/import recipe, purge on the old shard (after the window) | %s s |\n' "$(secs "$r3" "$r4")"
printf '| Citus citus_move_shard_placement force_logical | %s |\n\n' "$CITUS_LINE"
target "tenant $TENANT's longest stall" "$STALL" 1 s
target "other tenants' p99 during the move / baseline" "$RATIO" 2 x
if [ "$FAILS" -ne 0 ]; then
	printf '\n%s row check(s) FAILED\n' "$FAILS"
	exit 1
fi
printf '\nall row checks passed\n'
