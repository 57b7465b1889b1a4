# Shared by test/shards.sh and test/citus.sh: a set of PostgreSQL servers on
# this machine under one base directory, each in BASE/<node>/ with its data
# directory, port file and server log.  Sourced after PG_CONFIG is set; the
# helpers of scripts/lib.sh (gb_log, gb_die, gb_as_pg, gb_free_port) come with it.

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# BASE for start: directory DIR when given (it must be empty), else a new
# one under /tmp named after PREFIX and marked as made here (MARKER), which
# nodes_stop then removes.  Sets MADE to 1 when made here.
nodes_new_base() {
	local dir=$1 prefix=$2 marker=$3
	MADE=0
	if [ -n "$dir" ]; then
		BASE=$dir
		mkdir -p "$BASE"
		[ -z "$(ls -A "$BASE")" ] || gb_die "$BASE is not empty (stop the servers there, or pick another directory)"
	else
		BASE=$(mktemp -d "/tmp/$prefix.XXXXXX")
		MADE=1
		touch "$BASE/$marker"
	fi
	chmod 755 "$BASE"
	if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$BASE"; fi
}

# Stop the servers of the node directories DIRS (by data directory; fast,
# then immediate), then remove BASE when it holds MARKER (start made it).
nodes_stop() {
	local marker=$1 what=$2 dir
	shift 2
	[ -d "$BASE" ] || return 0
	for dir in "$@"; do
		if [ -f "$dir/data/postmaster.pid" ]; then
			gb_as_pg pg_ctl -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
				gb_as_pg pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
		fi
	done
	if [ -f "$BASE/$marker" ]; then
		rm -rf "$BASE"
		gb_log "$what stopped, $BASE removed"
	else
		gb_log "$what stopped (logs in $BASE/*/server.log)"
	fi
}
