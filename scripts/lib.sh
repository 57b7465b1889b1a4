# Shared helpers for the demo, the test suite and the benchmarks.
# Sourced, never run: it defines functions and a few variables only.

GB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GB_PGVER=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$GB_PGVER/bin/pg_config}
# The server binaries of the PostgreSQL that PG_CONFIG describes (Debian's, or
# the assert-enabled build of scripts/pg_debug_build.sh).
gb_bindir() { if [ -x "$PG_CONFIG" ]; then "$PG_CONFIG" --bindir; else echo "/usr/lib/postgresql/$GB_PGVER/bin"; fi; }
GB_BINDIR=$(gb_bindir)

gb_log() { printf '== %s\n' "$*" >&2; }
gb_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install the Debian packages named in $@ that are missing; a no-op when all are present.
gb_ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || gb_die "missing packages (${missing[*]}); run as root or install them"
	gb_log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

GB_BASE_PACKAGES=(make gcc postgresql-$GB_PGVER postgresql-server-dev-$GB_PGVER)
GB_TEST_PACKAGES=(postgresql-$GB_PGVER-pgtap libtap-parser-sourcehandler-pgtap-perl
	libipc-run-perl faketime pgbouncer cppcheck clang-tidy postgresql-$GB_PGVER-cron)
GB_BENCH_PACKAGES=(postgresql-contrib "postgresql-$GB_PGVER-partman")

gb_build_install() {
	[ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config)
	GB_BINDIR=$(gb_bindir)
	gb_log "building and installing gb_scale with $PG_CONFIG"
	make -C "$GB_ROOT" -s PG_CONFIG="$PG_CONFIG" >/dev/null
	make -C "$GB_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# Run a command as the postgres OS user when we are root (initdb and postgres refuse root).
gb_as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- env PATH="$GB_BINDIR:$PATH" "$@"
	else
		env PATH="$GB_BINDIR:$PATH" "$@"
	fi
}

# gb_tmpdir VAR: a scratch directory the postgres user can write to, in VAR;
# removed by gb_cleanup.  (Not "$(gb_tmpdir)": a subshell could not record it.)
gb_tmpdir() {
	local d
	d=$(mktemp -d /tmp/gb_scale.XXXXXX)
	chmod 755 "$d"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$d"
	GB_TMPDIRS+=("$d")
	printf -v "$1" '%s' "$d"
}

gb_free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$p" ]; then
			echo "$p"
			return 0
		fi
	done
	gb_die "no free port found"
}

GB_CLUSTERS=()
GB_TMPDIRS=()

# gb_cluster_start VAR [extra postgresql.conf lines...]
# Creates and starts a throwaway cluster; sets VAR_DIR, VAR_PORT and VAR_HOST.
gb_cluster_start() {
	local name=$1 dir port
	shift
	gb_tmpdir dir
	port=$(gb_free_port)
	gb_as_pg initdb -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; gb_die "initdb failed"; }
	{
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$dir'"
		echo "fsync = on"
		echo "max_connections = 60"
		echo "logging_collector = off"
		for line in "$@"; do echo "$line"; done
	} >>"$dir/data/postgresql.conf"
	GB_CLUSTERS+=("$dir/data")
	gb_as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		{ cat "$dir/server.log" >&2; gb_die "server did not start"; }
	printf -v "${name}_DIR" '%s' "$dir"
	printf -v "${name}_PORT" '%s' "$port"
	printf -v "${name}_HOST" '%s' "$dir"
}

# A cluster for a benchmark (gb_cluster_start NAME ...): gb_scale preloaded
# as shard 1, and settings that keep checkpoints and JIT compilation out of
# what is measured; the benchmark's own settings follow and win.
gb_bench_cluster_start() {
	local name=$1
	shift
	gb_cluster_start "$name" \
		"shared_preload_libraries = 'gb_scale'" \
		"gb_scale.shard_id = 1" \
		"shared_buffers = 256MB" \
		"max_wal_size = 8GB" \
		"checkpoint_timeout = 30min" \
		"jit = off" \
		"$@"
}

# Stop every cluster this script started and remove the scratch directories.
gb_cleanup() {
	local d
	for d in "${GB_CLUSTERS[@]}"; do
		[ -f "$d/postmaster.pid" ] && gb_as_pg pg_ctl -D "$d" -m immediate -w stop >/dev/null 2>&1
	done
	for d in "${GB_TMPDIRS[@]}"; do
		[ -n "$d" ] && rm -rf "$d"
	done
	GB_CLUSTERS=()
	GB_TMPDIRS=()
}
