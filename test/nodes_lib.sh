# Shared by test/shards.sh and test/citus.sh: a set of PostgreSQL servers on
# this machine under one base directory, each in BASE/<node>/ with its data
# directory, port file and server log.  Sourced; the caller sets BINDIR.

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as the postgres OS user (initdb and postgres refuse root),
# with this PostgreSQL's binaries first on the PATH.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- env PATH="$BINDIR:$PATH" "$@"
	else
		env PATH="$BINDIR:$PATH" "$@"
	fi
}

# The first of COUNT consecutive ports that nothing listens on, by TCP or by
# a socket in /tmp.
free_port() {
	local count=${1:-1} p i busy
	for p in $(shuf -i 20000-60000 -n 50); do
		busy=0
		for ((i = 0; i < count; i++)); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$((p + i))") 2>/dev/null || [ -e "/tmp/.s.PGSQL.$((p + i))" ]; then
				busy=1
				break
			fi
		done
		[ $busy -eq 0 ] && { echo "$p"; return 0; }
	done
	die "no free port found"
}

# BASE for start: directory DIR when given (it must be empty), else a new
# one under /tmp named after PREFIX and marked as made here (MARKER), which
# nodes_stop then removes.  Sets MADE to 1 when made here.
nodes_new_base() {
	local dir=$1 prefix=$2 marker=$3
	MADE=0
	if [ -n "$dir" ]; then
		BASE=$dir
		mkdir -p "$BASE"
		[ -z "$(ls -A "$BASE")" ] || die "$BASE is not empty (stop the servers there, or pick another directory)"
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
			as_pg pg_ctl -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
				as_pg pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
		fi
	done
	if [ -f "$BASE/$marker" ]; then
		rm -rf "$BASE"
		log "$what stopped, $BASE removed"
	else
		log "$what stopped (logs in $BASE/*/server.log)"
	fi
}
