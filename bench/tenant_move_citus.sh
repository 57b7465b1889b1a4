#!/usr/bin/env bash
# Citus' online shard move, side by side with gb_tenant_move (issue 17): a
# Citus 13 cluster (coordinator + 2 workers, test/citus.sh, wal_level =
# logical), General Bots' gb.sessions and gb.messages distributed by
# tenant_id (colocated), a tenant with TM_ROWS messages (one session per 100)
# and TM_OTHERS other tenants with TM_OTHER_ROWS messages each.  While
# pgbench writes through the coordinator
#
#   mover:   the tenant being moved, TM_RATE transactions per second;
#   others:  the other tenants, TM_OTHER_RATE tps, half for the tenants that
#            share the moved shard ("neighbours"), half for the tenants of
#            other shards ("elsewhere");
#
# each transaction one INSERT into gb.messages, the coordinator runs
# citus_move_shard_placement(shard holding the tenant, its worker, the other
# worker, 'force_logical'), which moves that shard and its colocated sessions
# shard; TM_MOVES times, back and forth, TM_TAIL seconds apart (the machines
# this runs on are shared: one move is one sample).  Measured for each move:
# its total time; the writers' longest lock wait (the move's write block
# proper: log_lock_waits); the tenant's write stall, the longest latency
# (from the scheduled start, pgbench -R: what the application waits) of a
# write or the longest gap between two completed writes, over the whole move
# and at its switch (from the start of the first logged lock wait to the
# move's end: the whole move's figure also holds what the copy's CPU costs
# the writers); the same for the tenants sharing the shard and for those of
# other shards.  Checked: after each move the shard is on its target; at the
# end the rows loaded before the moves (count and an ordered md5 of the
# tenant's rows; count and hash sum of every tenant's rows) are unchanged,
# every write pgbench logged as committed is there exactly once, and no
# replication slot is left.
#
#   PG_CONFIG=/path/to/pg_config bash bench/tenant_move_citus.sh
#   TM_ROWS=1000000 TM_TENANT=42 TM_SESSION_ROWS=100 TM_OTHERS=200
#   TM_OTHER_ROWS=1000 TM_SHARD_COUNT=32 TM_RATE=200 TM_OTHER_RATE=200
#   TM_WARMUP=10 TM_TAIL=5 (seconds) TM_MOVES=3 (defaults)
#   TM_CITUS_REPORT=file (default bench/results/tenant_move_citus.md)
#
# Prints one line "citus_move: rows=... move_s=... stall_s=...
# switch_stall_s=... blocked_s=..." on stdout (move: the median move time;
# stall, switch_stall: the tenant's longest write stall in a whole move, at a
# switch; blocked: the writers' longest lock wait in a move; the rest goes to
# stderr) and writes the report.  Exit 3 when Citus cannot be installed for
# PG_CONFIG's PostgreSQL (test/citus.sh install: from ../shared/citus/ or
# GB_CITUS_TARBALL; needs root), 1 on any other failure (a check that does
# not hold included).
set -euo pipefail
TM_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC1091 # found at run time
source "$TM_BENCH_DIR/../scripts/lib.sh"
export PG_CONFIG

TM_ROWS=${TM_ROWS:-1000000}
TM_TENANT=${TM_TENANT:-42}
TM_SESSION_ROWS=${TM_SESSION_ROWS:-100}
TM_OTHERS=${TM_OTHERS:-200}
TM_OTHER_ROWS=${TM_OTHER_ROWS:-1000}
TM_SHARD_COUNT=${TM_SHARD_COUNT:-32}
TM_RATE=${TM_RATE:-200}
TM_OTHER_RATE=${TM_OTHER_RATE:-200}
TM_WARMUP=${TM_WARMUP:-10}
TM_TAIL=${TM_TAIL:-5}
TM_MOVES=${TM_MOVES:-3}
TM_CITUS_REPORT=${TM_CITUS_REPORT:-$GB_ROOT/bench/results/tenant_move_citus.md}
for v in TM_ROWS TM_TENANT TM_SESSION_ROWS TM_OTHERS TM_OTHER_ROWS TM_SHARD_COUNT TM_RATE \
	TM_OTHER_RATE TM_WARMUP TM_TAIL TM_MOVES; do
	[[ ${!v} =~ ^[0-9]+$ ]] || gb_die "$v must be a whole number, not '${!v}'"
done
if [ "$TM_SESSION_ROWS" -lt 1 ] || [ "$TM_ROWS" -lt "$TM_SESSION_ROWS" ]; then gb_die "TM_ROWS ($TM_ROWS) must be at least TM_SESSION_ROWS ($TM_SESSION_ROWS), which is at least 1"; fi
[ "$TM_MOVES" -ge 1 ] || gb_die "TM_MOVES must be at least 1"
[ "$TM_OTHERS" -ge 1 ] || gb_die "TM_OTHERS must be at least 1 (the writer for the other tenants needs one)"
# The other tenants are TM_OTHER_BASE + 1 .. TM_OTHER_BASE + TM_OTHERS.
TM_OTHER_BASE=1000
[ "$TM_TENANT" -le "$TM_OTHER_BASE" ] || gb_die "TM_TENANT must be at most $TM_OTHER_BASE"

CITUS_SH=$GB_ROOT/test/citus.sh
WRITER_PIDS=()
# Set below to this run's own cluster: a GB_CITUS_DIR from the environment is
# someone else's, which the cleanup must leave alone.
unset GB_CITUS_DIR

tm_cleanup() {
	local pid
	for pid in "${WRITER_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	if [ -n "${GB_CITUS_DIR:-}" ] && [ -d "$GB_CITUS_DIR" ]; then
		bash "$CITUS_SH" stop || true
	fi
	gb_cleanup
}
trap tm_cleanup EXIT

if ! why=$(bash "$CITUS_SH" install 2>&1); then
	printf 'error: Citus cannot be installed for %s: %s\n' "$PG_CONFIG" "$why" >&2
	exit 3
fi
gb_build_install

gb_tmpdir WORK
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
export GB_CITUS_DIR=$WORK/citus GB_CITUS_DB=gb
# wal_level = logical: a force_logical move replicates the shard with
# logical replication from the source worker.  Lock waits of 10 ms and more
# are logged with the user (the writers are gb_app): how long the move's write
# block held writes back, apart from the CPU the copy takes from them.  The
# rest as in gb_bench_cluster_start: no checkpoint or JIT compilation in what
# is measured.
export GB_CITUS_CONF="wal_level = logical
log_lock_waits = on
deadlock_timeout = 10ms
log_line_prefix = '%n [%p] %u: '
shared_buffers = 256MB
max_wal_size = 8GB
checkpoint_timeout = 30min
jit = off"
CITUS_ENV=$(bash "$CITUS_SH" start 2) || gb_die "the Citus cluster did not start"
eval "$CITUS_ENV"
COORD_PORT=$GB_CITUS_0_PORT
HOST=$GB_CITUS_0_HOST

# psql on node N (0 the coordinator), unaligned, no headers.
nsql() {
	local n=$1
	shift
	bash "$CITUS_SH" psql "$n" -At "$@"
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

gb_log "schema: gb.sessions and gb.messages distributed by tenant_id, $TM_SHARD_COUNT shards"
nsql 0 >/dev/null <<SQL
SET client_min_messages = warning;
CREATE ROLE gb_app LOGIN;
CREATE SCHEMA gb;
GRANT USAGE ON SCHEMA gb TO gb_app;
-- General Bots' tables as test/shards.sh creates them, but for the primary
-- key: Citus wants the distribution column in it.
CREATE TABLE gb.sessions (
    shard_id    smallint        NOT NULL DEFAULT gb_current_shard(),
    id          bigint          NOT NULL DEFAULT gb_next_id(),
    tenant_id   bigint          NOT NULL,
    channel     gb_channel_type NOT NULL DEFAULT 0,
    user_ref    text            NOT NULL,
    created_at  timestamptz     NOT NULL DEFAULT now(),
    last_active timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE gb.messages (
    shard_id     smallint        NOT NULL DEFAULT gb_current_shard(),
    id           bigint          NOT NULL DEFAULT gb_next_id(),
    tenant_id    bigint          NOT NULL,
    session_id   bigint          NOT NULL,
    channel      gb_channel_type NOT NULL DEFAULT 0,
    role         gb_message_role NOT NULL,
    message_type gb_message_type NOT NULL DEFAULT 0,
    body         text            NOT NULL,
    created_at   timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ON gb.messages (tenant_id, session_id);
SET citus.shard_count = $TM_SHARD_COUNT;
SELECT create_distributed_table('gb.sessions', 'tenant_id');
SELECT create_distributed_table('gb.messages', 'tenant_id', colocate_with => 'gb.sessions');
GRANT SELECT, INSERT ON gb.sessions, gb.messages TO gb_app;
SQL

# load FIRST LAST MESSAGES: for each tenant FIRST..LAST, MESSAGES /
# TM_SESSION_ROWS sessions, then TM_SESSION_ROWS messages in each (over the
# last 90 days).  The writers' rows have bodies starting with 'w ', these
# never do.
load() {
	local first=$1 last=$2 messages=$3
	nsql 0 -q <<SQL
INSERT INTO gb.sessions (tenant_id, channel, user_ref, created_at, last_active)
SELECT t, (g % 10)::smallint, 'user ' || g,
       now() - make_interval(days => g % 90), now() - make_interval(hours => g % 48)
  FROM generate_series($first, $last) t, generate_series(1, $messages / $TM_SESSION_ROWS) g;
INSERT INTO gb.messages (tenant_id, session_id, channel, role, body, created_at)
SELECT s.tenant_id, s.id, s.channel, (1 + g % 2)::smallint,
       'message ' || g || ' of ' || s.user_ref || ': ' || repeat('lorem ipsum ', 1 + g % 10),
       s.created_at + make_interval(secs => g)
  FROM gb.sessions s CROSS JOIN generate_series(1, $TM_SESSION_ROWS) g
 WHERE s.tenant_id BETWEEN $first AND $last;
SQL
}
t0=$(now)
gb_log "loading tenant $TM_TENANT: $TM_ROWS messages"
load "$TM_TENANT" "$TM_TENANT" "$TM_ROWS"
gb_log "loading $TM_OTHERS other tenants: $TM_OTHER_ROWS messages each"
[ "$TM_OTHERS" -eq 0 ] || load $((TM_OTHER_BASE + 1)) $((TM_OTHER_BASE + TM_OTHERS)) "$TM_OTHER_ROWS"
nsql 0 -q -c "VACUUM ANALYZE gb.sessions, gb.messages"
gb_log "loaded in $(secs "$t0" "$(now)") s"

# Where the tenant is, and where it goes.
SHARD=$(nsql 0 -c "SELECT get_shard_id_for_distribution_column('gb.messages', $TM_TENANT)")
read -r SRC_PORT SHARD_BYTES < <(nsql 0 -F ' ' -c "
SELECT (SELECT nodeport FROM citus_shards WHERE shardid = $SHARD),
       (SELECT sum(shard_size) FROM citus_shards c
         WHERE c.colocation_id = (SELECT colocation_id FROM citus_shards WHERE shardid = $SHARD)
           AND get_shard_id_for_distribution_column(c.table_name, $TM_TENANT) = c.shardid)")
for n in $GB_CITUS_WORKERS; do
	port_var=GB_CITUS_${n}_PORT
	if [ "${!port_var}" = "$SRC_PORT" ]; then SRC_NODE=$n; else DST_NODE=$n; DST_PORT=${!port_var}; fi
done
if [ -z "${SRC_NODE:-}" ] || [ -z "${DST_NODE:-}" ]; then gb_die "shard $SHARD is on port $SRC_PORT, not on a worker"; fi
SHARD_ROWS=$(nsql "$SRC_NODE" -c "SELECT count(*) FROM gb.messages_$SHARD")
NEIGHBOURS=$(nsql 0 -c "SELECT string_agg(t::text, ',' ORDER BY t) FROM generate_series($TM_OTHER_BASE + 1, $TM_OTHER_BASE + $TM_OTHERS) t
                         WHERE get_shard_id_for_distribution_column('gb.messages', t) = $SHARD")
ELSEWHERE=$(nsql 0 -c "SELECT string_agg(t::text, ',' ORDER BY t) FROM generate_series($TM_OTHER_BASE + 1, $TM_OTHER_BASE + $TM_OTHERS) t
                        WHERE get_shard_id_for_distribution_column('gb.messages', t) <> $SHARD")
[ -n "$ELSEWHERE" ] || gb_die "every other tenant shares the tenant's shard: raise TM_OTHERS"
gb_log "tenant $TM_TENANT: shard $SHARD (with sessions' colocated shard: $SHARD_ROWS messages, $((SHARD_BYTES / 1048576)) MB) on worker $SRC_NODE, moving to worker $DST_NODE; neighbours in the shard: ${NEIGHBOURS:-none}"

# Fingerprints of the loaded rows: the tenant's rows in id order, and every
# tenant's rows as a count and a sum of 60-bit hashes (order-free, so Citus
# adds it up per shard).
fingerprint() {
	nsql 0 -F ' ' <<SQL
SELECT 'tenant_messages', count(*), md5(string_agg(md5(m::text), '' ORDER BY m.id))
  FROM gb.messages m WHERE m.tenant_id = $TM_TENANT AND m.body NOT LIKE 'w %';
SELECT 'tenant_sessions', count(*), md5(string_agg(md5(s::text), '' ORDER BY s.id))
  FROM gb.sessions s WHERE s.tenant_id = $TM_TENANT;
SELECT 'all_messages', count(*), sum(('x' || substr(md5(m::text), 1, 15))::bit(60)::bigint::numeric)
  FROM gb.messages m WHERE m.body NOT LIKE 'w %';
SELECT 'all_sessions', count(*), sum(('x' || substr(md5(s::text), 1, 15))::bit(60)::bigint::numeric)
  FROM gb.sessions s;
SQL
}
BEFORE=$(fingerprint)
TENANT_ROWS=$(awk '$1 == "tenant_messages" { print $2 }' <<<"$BEFORE")

# The writers: one INSERT a transaction, as gb_app through the coordinator.
# Each client numbers its rows (n, from -D n=0) in the body, so that the rows
# can be matched with pgbench's log of committed transactions.
cat >"$WORK/mover.sql" <<SQL
\set n :n + 1
\set s random(1, 1000000)
INSERT INTO gb.messages (tenant_id, session_id, role, body)
VALUES ($TM_TENANT, :s, 1, format('w %s %s', :client_id, :n));
SQL
# script 1 the neighbours (when there are any), script 2 (or 1) elsewhere
: >"$WORK/others.args"
for group in "$NEIGHBOURS" "$ELSEWHERE"; do
	[ -n "$group" ] || continue
	f=$WORK/others$(wc -l <"$WORK/others.args").sql
	cat >"$f" <<SQL
\set n :n + 1
\set i random(1, $(tr ',' '\n' <<<"$group" | wc -l))
\set s random(1, 1000000)
INSERT INTO gb.messages (tenant_id, session_id, role, body)
VALUES ((ARRAY[$group]::bigint[])[:i], :s, 2, format('w %s %s', :client_id, :n));
SQL
	echo "-f $f" >>"$WORK/others.args"
done
chmod 644 "$WORK"/*.sql
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK"

# writer NAME RATE SCRIPT-ARGS...: pgbench in the background, logging every
# transaction to WORK/NAME.log.*, until the writes are refused (see below).
writer() {
	local name=$1 rate=$2
	shift 2
	(cd "$WORK" && gb_as_pg "$GB_BINDIR/pgbench" -h "$HOST" -p "$COORD_PORT" -U gb_app -n \
		-c 4 -j 1 -R "$rate" -T 36000 -D n=0 -l --log-prefix="$WORK/$name.log" "$@" gb \
		>"$WORK/$name.out" 2>&1) &
	WRITER_PIDS+=($!)
}
gb_log "writers: tenant $TM_TENANT at $TM_RATE tps, the other tenants at $TM_OTHER_RATE tps; $TM_WARMUP s before the first move"
WRITERS_START=$(now)
writer mover "$TM_RATE" -f "$WORK/mover.sql"
# shellcheck disable=SC2046 # one word per argument
writer others "$TM_OTHER_RATE" $(cat "$WORK/others.args")
sleep "$TM_WARMUP"

# The moves, back and forth: odd ones from the tenant's first worker to the
# other, even ones back.
declare -a MS ME MFROM MTO
for ((i = 1; i <= TM_MOVES; i++)); do
	if ((i % 2)); then
		MFROM[i]=$SRC_NODE MTO[i]=$DST_NODE from_port=$SRC_PORT to_port=$DST_PORT
	else
		MFROM[i]=$DST_NODE MTO[i]=$SRC_NODE from_port=$DST_PORT to_port=$SRC_PORT
	fi
	gb_log "move $i: citus_move_shard_placement($SHARD, worker ${MFROM[i]}, worker ${MTO[i]}, 'force_logical')"
	MS[i]=$(now)
	nsql 0 -q -c "SELECT citus_move_shard_placement($SHARD, '$HOST', $from_port, '$HOST', $to_port, 'force_logical')" \
		>/dev/null || gb_die "move $i failed (the error above)"
	ME[i]=$(now)
	at=$(nsql 0 -c "SELECT string_agg(DISTINCT nodeport::text, ',') FROM citus_shards
	                 WHERE shardid IN (SELECT get_shard_id_for_distribution_column(t, $TM_TENANT)
	                                     FROM unnest(ARRAY['gb.messages', 'gb.sessions']::regclass[]) t)")
	[ "$at" = "$to_port" ] || gb_die "after move $i the tenant's shards are on port(s) $at, not on the target's $to_port"
	gb_log "moved in $(secs "${MS[i]}" "${ME[i]}") s; writing on for $TM_TAIL s"
	sleep "$TM_TAIL"
done

# Stop the writers the way that leaves no doubt about what committed: their
# next INSERT is refused, so each client ends after a transaction that
# pgbench has logged (pgbench then reports the clients as aborted).
nsql 0 -q -c "REVOKE INSERT ON gb.messages FROM gb_app"
for pid in "${WRITER_PIDS[@]}"; do
	wait "$pid" || true
done
WRITER_PIDS=()
for name in mover others; do
	# errors other than the refusal that ends the run
	unexpected=$(grep -i 'error\|fatal' "$WORK/$name.out" | grep -v 'permission denied for table messages' |
		grep -v 'Run was aborted; the above results are incomplete' || true)
	[ -z "$unexpected" ] || gb_die "the $name writer failed otherwise than by the final REVOKE: $unexpected"
done

# Every committed write (in the logs) is in the table once, and nothing else
# is: per writer and client, the rows are numbered 1..K with K the logged
# transactions of that client.
check_writes() {
	local name=$1 tenants=$2 logged stored
	logged=$(cat "$WORK/$name".log.* | awk '{ n[$1]++ } END { for (c in n) print c, n[c] }' | sort -n)
	stored=$(nsql 0 -F ' ' -c "
SELECT split_part(body, ' ', 2)::int AS client, count(*)
  FROM gb.messages WHERE tenant_id IN ($tenants) AND body LIKE 'w %'
 GROUP BY 1
HAVING count(DISTINCT split_part(body, ' ', 3)) = count(*)
   AND max(split_part(body, ' ', 3)::int) = count(*)
 ORDER BY 1")
	[ "$logged" = "$stored" ] ||
		gb_die "$name: committed writes by client (pgbench log) '$(paste -sd' ' <<<"$logged")' but in the table (numbered 1..K without gaps) '$(paste -sd' ' <<<"$stored")'"
	awk '{ s += $2 } END { print s }' <<<"$logged"
}
MOVER_WRITES=$(check_writes mover "$TM_TENANT")
OTHER_WRITES=$(check_writes others "${NEIGHBOURS:+$NEIGHBOURS,}$ELSEWHERE")

AFTER=$(fingerprint)
[ "$BEFORE" = "$AFTER" ] || gb_die "the loaded rows changed in the move: before
$BEFORE
after
$AFTER"
SLOTS=0
for n in $GB_CITUS_WORKERS; do
	SLOTS=$((SLOTS + $(nsql "$n" -c "SELECT count(*) FROM pg_replication_slots")))
done
[ "$SLOTS" -eq 0 ] || gb_die "$SLOTS replication slots left on the workers"
# The writers' lock waits that the servers logged: "time ms node lock" each.
for n in 0 $GB_CITUS_WORKERS; do
	sed -n "s/^\([0-9.]*\) \[[0-9]*\] gb_app: LOG:  process [0-9]* acquired \(.*\) after \([0-9.]*\) ms$/\1 \3 $n \2/p" \
		"$GB_CITUS_DIR/node$n/server.log"
done | sort -n >"$WORK/lock_waits"
# Old placements that Citus' deferred cleanup has still to drop.
LEFT=$(nsql 0 -c "SELECT count(*) FROM pg_dist_cleanup")

# Every writer transaction as "completion-time latency-ms" in
# WORK/NAME.SCRIPT.tx (SCRIPT: pgbench's script number, or '' for all).  Log
# line: client, transaction number, latency (us), script, completion time
# (s, us), schedule lag (us).  The latency counts from the scheduled start
# (latency + lag): what the application waits.
tx() {
	local name=$1 script=$2
	cat "$WORK/$name".log.* |
		awk -v s="$script" '(s == "" || $4 == s) { printf "%.6f %.3f\n", $5 + $6 / 1e6, ($3 + $7) / 1000 }' |
		sort -n >"$WORK/$name.$script.tx"
}
# pct: "count p99 max" of the numbers on stdin
pct() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0, 0, 0; exit }
		i = int(NR * 0.99 + 0.5); if (i < 1) i = 1
		printf "%d %.1f %.1f\n", NR, v[i], v[NR] }'
}
# baseline NAME SCRIPT: "count p99 max" before the first move (from 2 s
# after the writers started).
baseline() {
	awk -v a="$(awk -v t="$WRITERS_START" 'BEGIN { printf "%.6f", t + 2 }')" -v b="${MS[1]}" \
		'$1 >= a && $1 < b { print $2 }' "$WORK/$1.$2.tx" | pct
}
# during NAME SCRIPT A B: "count p99 max gap" of the writes overlapping the
# time from A to B (completed after A, scheduled before B); gap: the longest
# time between two completions that spans part of it.
during() {
	local f=$WORK/$1.$2.tx a=$3 b=$4 gap
	gap=$(awk -v a="$a" -v b="$b" '
		NR > 1 && $1 >= a && prev <= b && ($1 - prev) * 1000 > g { g = ($1 - prev) * 1000 }
		{ prev = $1 } END { printf "%.1f", g }' "$f")
	echo "$(awk -v a="$a" -v b="$b" '$1 >= a && $1 - $2 / 1000 <= b { print $2 }' "$f" | pct) $gap"
}
# lock_wait I: "ms node lock" of the writers' longest lock wait in move I
# (acquired from its start to 1 s after its end), "0 - -" when none was logged.
lock_wait() {
	awk -v a="${MS[$1]}" -v b="${ME[$1]}" '$1 >= a && $1 <= b + 1 { $1 = ""; print substr($0, 2) }' \
		"$WORK/lock_waits" | sort -rn | { cat; echo "0 - -"; } | head -n 1
}
# switch_start I: when move I began to block writes: the earliest start of
# a writer's logged wait in it for Citus' lock on the metadata of colocated
# shards (advisory lock class 8, see the report), else its end.
switch_start() {
	awk -v a="${MS[$1]}" -v b="${ME[$1]}" 'BEGIN { s = b }
		$1 >= a && $1 <= b + 1 && /advisory lock \[[0-9]+,[0-9]+,[0-9]+,8\]$/ && $1 - $2 / 1000 < s { s = $1 - $2 / 1000 }
		END { printf "%.6f\n", s }' "$WORK/lock_waits"
}
# the larger of two numbers
max2() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }
E_SCRIPT=0
[ -n "$NEIGHBOURS" ] && E_SCRIPT=1
tx mover ''
tx others "$E_SCRIPT"
[ -n "$NEIGHBOURS" ] && tx others 0
ms2s() { awk -v a="$1" 'BEGIN { printf "%.3f", a / 1000 }'; }

MOVE_TIMES=() STALL_MS=0 SWITCH_MS=0 BLOCK_MS=0 NB_MS=0 EL_MS=0
ROWS_MD=""
for ((i = 1; i <= TM_MOVES; i++)); do
	mt=$(secs "${MS[i]}" "${ME[i]}")
	MOVE_TIMES+=("$mt")
	sw=$(switch_start "$i")
	read -r m_n m_p99 m_max m_gap < <(during mover '' "${MS[i]}" "${ME[i]}")
	read -r _ _ e_max _ < <(during others "$E_SCRIPT" "${MS[i]}" "${ME[i]}")
	read -r _ _ ms_max ms_gap < <(during mover '' "$sw" "${ME[i]}")
	read -r _ _ es_max es_gap < <(during others "$E_SCRIPT" "$sw" "${ME[i]}")
	n_cell="-"
	if [ -n "$NEIGHBOURS" ]; then
		read -r _ _ ns_max ns_gap < <(during others 0 "$sw" "${ME[i]}")
		n_cell="$ns_max / $ns_gap"
		NB_MS=$(max2 "$NB_MS" "$(max2 "$ns_max" "$ns_gap")")
	fi
	read -r w_ms w_node w_lock < <(lock_wait "$i")
	STALL_MS=$(max2 "$STALL_MS" "$(max2 "$m_max" "$m_gap")")
	SWITCH_MS=$(max2 "$SWITCH_MS" "$(max2 "$ms_max" "$ms_gap")")
	BLOCK_MS=$(max2 "$BLOCK_MS" "$w_ms")
	EL_MS=$(max2 "$EL_MS" "$e_max")
	ROWS_MD+="| $i | worker ${MFROM[i]} to ${MTO[i]} | $mt | $(awk -v r="$SHARD_ROWS" -v s="$mt" 'BEGIN { printf "%.0f", r / s }') | $w_ms$([ "$w_node" != - ] && echo " (node $w_node, $w_lock)") | $m_n, $m_p99, $m_max, $m_gap | $e_max | $(secs "$sw" "${ME[i]}") | $ms_max / $ms_gap | $n_cell | $es_max / $es_gap |"$'\n'
	gb_log "move $i: $mt s; tenant $TM_TENANT's longest write $m_max ms, gap $m_gap ms (at the switch: $ms_max ms, gap $ms_gap ms); longest lock wait $w_ms ms"
done
MOVE_MEDIAN=$(printf '%s\n' "${MOVE_TIMES[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
# The writers' lock waits outside the moves: "count, the longest: ms (node
# N, lock)".
OUTSIDE=$(awk -v n="$TM_MOVES" -v s="${MS[*]}" -v e="${ME[*]}" 'BEGIN { split(s, S, " "); split(e, E, " ") }
	{ inside = 0; for (i = 1; i <= n; i++) if ($1 >= S[i] && $1 <= E[i] + 1) inside = 1 }
	!inside { $1 = ""; print substr($0, 2) }' "$WORK/lock_waits" | sort -rn |
	awk 'NR == 1 { w = $1 " ms (node " $2 ", "; $1 = $2 = ""; w = w substr($0, 3) ")" } END { print NR (NR ? ", the longest " w : "") }')
read -r _ M_BP99 M_BMAX < <(baseline mover '')
read -r _ E_BP99 E_BMAX < <(baseline others "$E_SCRIPT")
[ -n "$NEIGHBOURS" ] && read -r _ N_BP99 N_BMAX < <(baseline others 0)

gb_log "writes: tenant $TM_TENANT $MOVER_WRITES, others $OTHER_WRITES, all committed ones present once"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$(dirname "$TM_CITUS_REPORT")"
{
	echo "# Citus 13 shard move, side by side with gb_tenant_move (\`bench/tenant_move_citus.sh\`)"
	echo
	echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average at the start $LOAD_START, at the end $LOAD;"
	echo "$("$PG_CONFIG" --version), Citus $(nsql 0 -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'")."
	echo
	echo "A coordinator and 2 workers on one machine (test/citus.sh, wal_level = logical), gb.sessions and"
	echo "gb.messages distributed by tenant_id in $TM_SHARD_COUNT colocated shards. Tenant $TM_TENANT:"
	echo "$TENANT_ROWS messages in $((TM_ROWS / TM_SESSION_ROWS)) sessions; $TM_OTHERS other tenants with $TM_OTHER_ROWS messages each."
	echo "Its shard $SHARD (with the colocated sessions shard: $SHARD_ROWS messages, $((SHARD_BYTES / 1048576)) MB,"
	echo "tenants $TM_TENANT${NEIGHBOURS:+ and $NEIGHBOURS}) moved $TM_MOVES times, between worker $SRC_NODE and worker $DST_NODE, with"
	echo "\`citus_move_shard_placement(..., 'force_logical')\` while pgbench wrote through the coordinator"
	echo "(one INSERT a transaction, 4 clients each): tenant $TM_TENANT at $TM_RATE tps, the other tenants at"
	echo "$TM_OTHER_RATE tps (half for those sharing the shard, half for the others); $TM_TAIL s between moves."
	echo
	echo "| | figure |"
	echo "|---|---|"
	echo "| move time (citus_move_shard_placement), median of $TM_MOVES | $MOVE_MEDIAN s |"
	echo "| writes' longest lock wait in a move (the write block) | $BLOCK_MS ms |"
	echo "| tenant $TM_TENANT: longest write stall at a switch (latency or gap between writes) | $(ms2s "$SWITCH_MS") s |"
	echo "| tenant $TM_TENANT: longest write stall in a whole move | $(ms2s "$STALL_MS") s |"
	echo
	echo "Each move. Latencies in ms, from the scheduled start (pgbench -R: latency + schedule lag), of the"
	echo "writes overlapping the move, or its switch: from the start of the earliest logged wait of a writer"
	echo "for the move's write block (the advisory lock of class 8 below) to the move's end; gap: the longest"
	echo "time between two completed writes spanning part of it. Lock wait: the writers' longest, from the"
	echo "server logs (log_lock_waits, deadlock_timeout = 10 ms: shorter waits are not logged; 0 when none was)."
	echo
	echo "| move | direction | seconds | messages/s | longest lock wait (ms) | tenant $TM_TENANT, whole move: writes, p99, max, gap | other shards' tenants, whole move: max | switch (s) | at the switch, max / gap: tenant $TM_TENANT | shard neighbours | other shards' tenants |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s' "$ROWS_MD"
	echo
	echo "Before the first move (from 2 s after the writers started): tenant $TM_TENANT p99 $M_BP99 ms, max $M_BMAX ms;"
	[ -n "$NEIGHBOURS" ] && echo "shard neighbours p99 $N_BP99 ms, max $N_BMAX ms;"
	echo "other shards' tenants p99 $E_BP99 ms, max $E_BMAX ms. Writer lock waits of 10 ms or more outside the moves: $OUTSIDE."
	echo
	echo "Checked: after each move the tenant's shards are on the target; at the end the loaded rows of tenant"
	echo "$TM_TENANT (messages and sessions: count and md5 in id order) and of every tenant (count and hash sum) are"
	echo "what they were before the moves; all $MOVER_WRITES + $OTHER_WRITES writes that pgbench logged as committed are in"
	echo "gb.messages exactly once and no other; no replication slot is left on the workers; old placements"
	echo "not yet dropped by Citus' deferred cleanup (pg_dist_cleanup) at the end: $LEFT."
	echo
	echo "The stall is what the application sees; during the copy it includes the CPU that the move takes"
	echo "from the writers (3 servers and pgbench on $(nproc) CPUs here), which slows the writes of other"
	echo "shards' tenants too. The lock wait is the write block of the move itself: an advisory lock"
	echo "[database, shard index, colocation id, 8] is Citus' lock on the metadata of colocated shards"
	echo "(class 8), which the move holds against writes while it catches up and switches the placement."
	echo
	echo "Citus moves a shard, not a tenant: every tenant hashed to the shard moves along, and the"
	echo "write block at the end of the move stops all of them."
} >"$TM_CITUS_REPORT"
gb_log "report: $TM_CITUS_REPORT"
echo "citus_move: rows=$TENANT_ROWS shard_rows=$SHARD_ROWS moves=$TM_MOVES move_s=$MOVE_MEDIAN stall_s=$(ms2s "$STALL_MS") switch_stall_s=$(ms2s "$SWITCH_MS") blocked_s=$(ms2s "$BLOCK_MS") neighbour_switch_stall_s=$(ms2s "$NB_MS") other_shards_max_s=$(ms2s "$EL_MS")"
