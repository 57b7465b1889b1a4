#!/usr/bin/env bash
# A Citus cluster with gb_scale loaded, on one machine: a coordinator and N
# workers (N may be 0: a single node whose coordinator holds the shards),
# each its own PostgreSQL instance on 127.0.0.1 with its own port, data
# directory and gb_scale.shard_id, under one base directory.
#
#   test/citus.sh install       make Citus available to PG_CONFIG's PostgreSQL
#                               (see below); exit 0 when it is, 3 (with the
#                               reason on stderr) when it cannot be
#   test/citus.sh start [N]     start a coordinator and N workers (default 2)
#                               and print their connection info (as `env`)
#   test/citus.sh stop          stop them by data directory (idempotent); a
#                               base directory that start made is removed
#   test/citus.sh env           print the connection info, eval-able:
#                                 eval "$(test/citus.sh env)"
#   test/citus.sh psql NODE [...]  psql as postgres on the database of node
#                               NODE (0 the coordinator, 1..N the workers)
#
# The base directory is $GB_CITUS_DIR, or for start a new mktemp directory
# (printed as GB_CITUS_DIR=...; stop, env and psql need it in the
# environment).  Settings: PG_CONFIG (which PostgreSQL; Debian's 15 by
# default), GB_CITUS_PORT (port of the coordinator, the workers follow;
# default a free one), GB_CITUS_DB (database, default gb), GB_CITUS_CONF
# (extra postgresql.conf lines for every node, newline-separated).
#
# Each node: shared_preload_libraries = 'citus,gb_scale' (Citus must come
# first), gb_scale.shard_id = node number + 1, listen_addresses =
# '127.0.0.1' with trust authentication (the nodes connect to each other, and
# to themselves, over TCP), and a database with CREATE EXTENSION citus and
# gb_scale.  On the coordinator: citus_set_coordinator_host('127.0.0.1',
# port), then citus_add_node('127.0.0.1', port) for each worker.  With no
# worker, the coordinator is the only node and holds the shards of the
# distributed tables itself (shouldhaveshards = true).
#
# Citus: citus.so in PG_CONFIG's pkglibdir, or installed by `install` from
# the tarball of ../shared/citus/ next to the repository (Citus 13.2.2 for
# Debian 12's PostgreSQL 15; GB_CITUS_TARBALL names another one) into
# PG_CONFIG's pkglibdir and extension directory: for Debian's PostgreSQL what
# ../shared/citus/install.sh does, for another build of PostgreSQL 15 (a
# private or assert-enabled one) its own directories.  Needs write access
# there (root, for Debian's PostgreSQL).
#
# Runs as root (servers and clients then run as the postgres OS user) or as
# the postgres user.
set -euo pipefail

GB_PGVER=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$GB_PGVER/bin/pg_config}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DB=${GB_CITUS_DB:-gb}
HOST=127.0.0.1

source "$ROOT/test/nodes_lib.sh"

need_pg() {
	[ -x "$PG_CONFIG" ] || die "PG_CONFIG=$PG_CONFIG is not executable"
	BINDIR=$("$PG_CONFIG" --bindir)
}

# citus_missing: why Citus is not usable with PG_CONFIG (empty when it is).
citus_missing() {
	local lib share missing
	lib=$("$PG_CONFIG" --pkglibdir)
	share=$("$PG_CONFIG" --sharedir)/extension
	[ -f "$lib/citus.so" ] || { echo "no citus.so in $lib"; return; }
	[ -f "$share/citus.control" ] || { echo "no citus.control in $share"; return; }
	missing=$(citus_unresolved "$lib/citus.so")
	[ -z "$missing" ] || echo "citus.so needs server symbols this build lacks ($missing): it was built for another minor release"
}

# A citus.so built for another minor release can need functions this server
# lacks (Debian's 15.20 exports have_createdb_privilege, 15.18 does not) and
# would not load: its undefined symbols against those of the server and of
# the libraries both need.
citus_unresolved() {
	local so=$1
	command -v nm >/dev/null || return 0
	comm -23 \
		<(nm -D --undefined-only "$so" | awk '$1 == "U" { sub(/@.*/, "", $2); print $2 }' | sort -u) \
		<({
			nm -D --defined-only "$BINDIR/postgres"
			ldd "$so" "$BINDIR/postgres" | grep -o '/[^ ]*' | sort -u | xargs -r nm -D --defined-only
		} 2>/dev/null | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }' | sort -u) |
		head -n 3 | paste -sd ' '
}

# The tarball to install from: GB_CITUS_TARBALL, else the one in
# ../shared/citus/ beside the repository (the layout of the CI machines).
citus_tarball() {
	local t
	if [ -n "${GB_CITUS_TARBALL:-}" ]; then
		echo "$GB_CITUS_TARBALL"
		return
	fi
	for t in "$ROOT"/../shared/citus/citus-*-pg"$GB_PGVER"-*.tar.gz; do
		[ -f "$t" ] && { echo "$t"; return; }
	done
	return 0
}

# Exit 0 when Citus is usable (installing it first if need be), 3 with the
# reason on stderr when not.
cmd_install() {
	local why tarball lib ext ver unpacked
	need_pg
	why=$(citus_missing)
	[ -z "$why" ] && return 0
	ver=$("$PG_CONFIG" --version)
	[[ $ver == "PostgreSQL $GB_PGVER."* ]] || { echo "Citus unavailable: $why, and the tarball is for PostgreSQL $GB_PGVER, not $ver" >&2; exit 3; }
	tarball=$(citus_tarball)
	if [ -z "$tarball" ] || [ ! -f "$tarball" ]; then
		echo "Citus unavailable: $why, and no tarball (GB_CITUS_TARBALL unset or missing, none in $ROOT/../shared/citus/)" >&2
		exit 3
	fi
	# The tarball holds usr/lib/postgresql/15/lib and usr/share/postgresql/15
	# as Debian lays them out; they go to this PostgreSQL's own directories
	# (the same ones for Debian's, where install.sh unpacks it into /).
	lib=$("$PG_CONFIG" --pkglibdir)
	ext=$("$PG_CONFIG" --sharedir)/extension
	if [ ! -w "$lib" ] || [ ! -w "$ext" ]; then
		echo "Citus unavailable: $why, and $lib or $ext is not writable here (run $0 install as root)" >&2
		exit 3
	fi
	log "installing Citus from $tarball into $lib and $ext"
	unpacked=$(mktemp -d)
	if ! tar -C "$unpacked" -xzf "$tarball" ||
		! cp -a "$unpacked/usr/lib/postgresql/$GB_PGVER/lib/." "$lib/" ||
		! cp -a "$unpacked/usr/share/postgresql/$GB_PGVER/extension/." "$ext/"; then
		rm -rf "$unpacked"
		echo "Citus unavailable: installing $tarball failed" >&2
		exit 3
	fi
	rm -rf "$unpacked"
	why=$(citus_missing)
	[ -z "$why" ] || { echo "Citus unavailable after installing $tarball: $why" >&2; exit 3; }
}

need_base() {
	[ -n "${GB_CITUS_DIR:-}" ] || die "GB_CITUS_DIR is not set (start prints it)"
	BASE=$GB_CITUS_DIR
}

# Node directories of BASE, coordinator first.
node_dirs() {
	local n
	[ -f "$BASE/nodes" ] || return 0
	while read -r n _; do
		echo "$BASE/node$n"
	done <"$BASE/nodes"
}

node_psql() {
	local dir=$1
	shift
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$(cat "$dir/port")" -U postgres -d "$DB" "$@"
}

cmd_env() {
	need_base
	[ -f "$BASE/nodes" ] || die "no nodes in $BASE"
	local n port workers=()
	echo "export GB_CITUS_DIR='$BASE'"
	echo "export PGUSER=postgres"
	while read -r n port; do
		[ "$n" -gt 0 ] && workers+=("$n")
		echo "# node $n: $([ "$n" -eq 0 ] && echo coordinator || echo worker), data directory $BASE/node$n/data"
		echo "export GB_CITUS_${n}_HOST=$HOST GB_CITUS_${n}_PORT=$port"
	done <"$BASE/nodes"
	echo "export GB_CITUS_DB='$DB' GB_CITUS_WORKERS='${workers[*]}'"
}

cmd_stop() {
	need_base
	need_pg
	# shellcheck disable=SC2046 # one word per directory
	nodes_stop .made_by_citus_sh "Citus nodes" $(node_dirs)
}

start_failed() {
	local status=$?
	if [ $status -ne 0 ]; then
		log "start failed; stopping the nodes"
		cmd_stop
	fi
}

cmd_start() {
	local n=${1:-2} made=0 port i dir
	need_pg
	if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -gt 16 ]; then
		die "number of workers: 0 to 16, not '$n'"
	fi
	[ -z "$(citus_missing)" ] || die "Citus is not installed for $PG_CONFIG ($(citus_missing)); run: $0 install"
	nodes_new_base "${GB_CITUS_DIR:-}" gb_citus .made_by_citus_sh
	made=$MADE
	export GB_CITUS_DIR=$BASE
	trap start_failed EXIT

	port=${GB_CITUS_PORT:-$(free_port $((n + 1)))}
	: >"$BASE/nodes"
	for ((i = 0; i <= n; i++)); do
		echo "$i $((port + i))" >>"$BASE/nodes"
	done
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$BASE/nodes"
	log "starting a Citus coordinator and $n workers under $BASE with $PG_CONFIG"
	for ((i = 0; i <= n; i++)); do
		dir=$BASE/node$i
		as_pg mkdir -m 700 "$dir"
		# shellcheck disable=SC2016 # expanded by that shell, as the postgres user
		as_pg sh -c 'echo "$1" >"$2/port"' sh "$((port + i))" "$dir"
		as_pg initdb -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; die "initdb of node $i failed"; }
		# shellcheck disable=SC2016 # expanded by that shell, as the postgres user
		as_pg sh -c 'cat >>"$1"' sh "$dir/data/postgresql.conf" <<CONF
port = $((port + i))
listen_addresses = '$HOST'
unix_socket_directories = '$dir'
shared_preload_libraries = 'citus,gb_scale'
gb_scale.shard_id = $((i + 1))
max_connections = 100
timezone = 'UTC'
logging_collector = off
log_line_prefix = '%m [%p] node $i: '
${GB_CITUS_CONF:-}
CONF
		as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
			{ cat "$dir/server.log" >&2; die "node $i did not start"; }
		as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$((port + i))" -U postgres -d postgres \
			-c "CREATE DATABASE $DB" >/dev/null
		node_psql "$dir" -c "CREATE EXTENSION citus" -c "CREATE EXTENSION gb_scale" >/dev/null
		log "node $i ($([ "$i" -eq 0 ] && echo coordinator || echo worker)): $HOST port $((port + i)), gb_scale.shard_id = $((i + 1))"
	done
	node_psql "$BASE/node0" -c "SELECT citus_set_coordinator_host('$HOST', $port)" >/dev/null
	for ((i = 1; i <= n; i++)); do
		node_psql "$BASE/node0" -c "SELECT citus_add_node('$HOST', $((port + i)))" >/dev/null
	done
	# Alone, the coordinator must hold the shards itself.
	[ "$n" -eq 0 ] && node_psql "$BASE/node0" \
		-c "SELECT citus_set_node_property('$HOST', $port, 'shouldhaveshards', true)" >/dev/null
	trap - EXIT
	[ $made -eq 1 ] && log "base directory $BASE (made here: stop removes it)"
	cmd_env
}

case ${1:-} in
install) cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) cmd_stop ;;
env) cmd_env ;;
psql)
	need_base
	need_pg
	[ -n "${2:-}" ] || die "usage: $0 psql NODE [psql arguments]"
	[ -f "$BASE/node$2/port" ] || die "no node $2 in $BASE"
	dir=$BASE/node$2
	shift 2
	node_psql "$dir" "$@"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
