#!/usr/bin/env bash
# Build, install and cache an assert-enabled PostgreSQL 15 (cassert, debug
# symbols, TAP test support, AddressSanitizer + UndefinedBehaviorSanitizer),
# from Debian's source package, so that the extension's whole test suite can
# run on it:
#
#   PG_CONFIG=$(bash scripts/pg_debug_build.sh)
#   source "$("$PG_CONFIG" --bindir)/../gb_env.sh"   # sanitizer options (optional)
#   make clean && PG_CONFIG=$PG_CONFIG bash scripts/test.sh
#
# The last line on stdout is the debug build's pg_config; progress goes to
# stderr.  The install lives in a prefix of its own under /var/cache/gb_scale,
# named after the PostgreSQL version and a hash of the build flags: a finished
# prefix (stamp file written last) is reused at once, other flags build anew.
#
# Knobs (each one changes the prefix):
#   GB_DEBUG_SANITIZE=0   cassert only, no ASan/UBSan
#   GB_DEBUG_PG_VERSION   Debian version of the postgresql-15 source package
#   GB_DEBUG_CACHE        cache directory (default /var/cache/gb_scale)
set -euo pipefail
umask 022

# Bump when the recipe changes in a way the flags below do not show.
recipe_rev=1
pg_major=15
pg_version=${GB_DEBUG_PG_VERSION:-15.18-0+deb12u1}
cache=${GB_DEBUG_CACHE:-/var/cache/gb_scale}
sanitize=${GB_DEBUG_SANITIZE:-1}

configure_flags=(--enable-cassert --enable-debug --enable-tap-tests
	--with-icu --with-readline --with-zlib --without-llvm)
if [ "$sanitize" = 1 ]; then
	# -Og (as PostgreSQL's own CI): with both sanitizers it takes about 30%
	# less compiler time than -O1 (10 against 14.5 CPU minutes here), with
	# usable stack traces.  UBSan includes alignment.
	# No recovery: the first UB report kills the process (and so shows).
	cflags="-Og -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
	# Baked into every program (see the defaults object below), so that
	# pg_config, initdb, zic... work without any environment; the
	# environment's ASAN_OPTIONS/UBSAN_OPTIONS still override them key by key.
	# detect_leaks=0: PostgreSQL's programs leak on exit by design.
	# detect_stack_use_after_return=0: fake stacks confuse check_stack_depth().
	# verify_asan_link_order=0: tests LD_PRELOAD libfaketime into the server.
	asan_options="detect_leaks=0:abort_on_error=1:print_stacktrace=1:disable_coredump=0:detect_stack_use_after_return=0:verify_asan_link_order=0"
	ubsan_options="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
else
	cflags="-Og -g -fno-omit-frame-pointer"
	asan_options=""
	ubsan_options=""
fi

key=$(printf '%s\n' "$recipe_rev" "$pg_version" "${configure_flags[@]}" "$cflags" \
	"$asan_options" "$ubsan_options" | sha256sum | cut -c1-10)
prefix=$cache/pg$pg_major-debug-$pg_version-$key
stamp=$prefix/.gb_build_done
pg_config=$prefix/bin/pg_config

# Fast path: a finished install; nothing to do but say where it is.
if [ -f "$stamp" ] && [ -x "$pg_config" ]; then
	printf '== debug PostgreSQL (cached): %s\n' "$prefix" >&2
	printf '== runtime environment: source %s/gb_env.sh\n' "$prefix" >&2
	echo "$pg_config"
	exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ "$(id -u)" -eq 0 ] || gb_die "the first build of $prefix needs root (apt-get, $cache)"
export DEBIAN_FRONTEND=noninteractive

mkdir -p "$cache"
# One build per prefix at a time; a second caller waits and then finds the stamp.
exec 9>"$cache/.lock-$key"
flock 9
if [ -f "$stamp" ]; then
	gb_log "debug PostgreSQL finished by another run: $prefix"
	echo "$pg_config"
	exit 0
fi

t_start=$(date +%s)
# A prefix without a stamp is a failed or interrupted build: start over.
rm -rf "$prefix"
mkdir -p "$prefix/logs" "$prefix/build"
logs=$prefix/logs

# step NAME COMMAND...: run COMMAND with its output in logs/NAME.log; on
# failure show the log's tail and stop.  A subshell outside any "if", so that
# set -e holds inside the step's functions too.
step() {
	local name=$1 t0=$SECONDS rc
	shift
	gb_log "$name (log: $logs/$name.log)"
	set +e
	(set -e; "$@") >"$logs/$name.log" 2>&1
	rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		tail -n 60 "$logs/$name.log" >&2
		gb_die "$name failed (exit $rc); full log: $logs/$name.log"
	fi
	printf '%s: %ss\n' "$name" $((SECONDS - t0)) >>"$logs/times"
}

# --- Build packages: only what configure and make need, not build-dep's
# whole list.  pgTAP comes from Debian's package (pure SQL, copied below).
build_packages=(gcc make bison flex perl libipc-run-perl zlib1g-dev libreadline-dev
	libicu-dev pkg-config dpkg-dev bzip2 xz-utils "postgresql-$pg_major-pgtap")
step packages gb_ensure_packages "${build_packages[@]}"

# --- deb-src entries, mirroring the deb entries of debian.sources (same
# mirrors, suites and keys), in a file of our own; rewritten only if changed.
src_list=/etc/apt/sources.list.d/gb_scale-src.sources
write_deb_src() {
	local want
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		# Each deb822 stanza of type deb becomes one of type deb-src.
		want=$(awk 'BEGIN { RS = ""; FS = "\n" }
			$0 ~ /(^|\n)Types:[^\n]*deb([ \t\n]|$)/ && $0 !~ /(^|\n)Types:[^\n]*deb-src/ {
				printf "%sTypes: deb-src\n", (n++ ? "\n" : "")
				for (i = 1; i <= NF; i++)
					if ($i ~ /^(URIs|Suites|Components|Signed-By):/) print $i
			}' /etc/apt/sources.list.d/debian.sources)
	elif [ -f /etc/apt/sources.list ]; then
		# One-line format: every "deb URI SUITE..." line as "deb-src ...".
		want=$(sed -n -E 's/^[[:space:]]*deb([[:space:]]+)/deb-src\1/p' /etc/apt/sources.list)
		src_list=/etc/apt/sources.list.d/gb_scale-src.list
	fi
	[ -n "${want:-}" ] || { echo "no deb entries to mirror as deb-src (or deb-src present)"; return 0; }
	if [ "$(cat "$src_list" 2>/dev/null)" != "$want" ]; then
		printf '%s\n' "$want" >"$src_list"
		echo "wrote $src_list"
	fi
	cat "$src_list"
}
step deb-src write_deb_src
step apt-update apt-get update -q

# --- Source: Debian's source package, unpacked without Debian's patches.
# Those are packaging patches, and 50-per-version-dirs hard-codes
# pkglibdir = /usr/lib/postgresql/15/lib, which would install over the
# system server; the upstream tree honours --prefix.
srcdir=$prefix/build/postgresql-$pg_major
fetch_source() {
	cd "$prefix/build"
	apt-get source -q --download-only "postgresql-$pg_major=$pg_version"
	dpkg-source --skip-patches -x ./*.dsc "$srcdir"
}
step source fetch_source
[ -f "$srcdir/configure" ] || gb_die "no unpacked source in $srcdir"

if [ "$sanitize" = 1 ]; then
	# Sanitizer defaults compiled into every program and library of the build
	# (through LDFLAGS, so PGXS extensions get them too).  Not instrumented
	# itself; -fPIC because shared libraries link it as well.
	defaults_c=$prefix/lib/gb_sanitizer_defaults.c
	mkdir -p "$prefix/lib"
	cat >"$defaults_c" <<-EOF
		/* Generated by gb_scale's scripts/pg_debug_build.sh. */
		__attribute__((visibility("default"), used)) const char *__asan_default_options(void);
		__attribute__((visibility("default"), used)) const char *__ubsan_default_options(void);
		const char *__asan_default_options(void) { return "$asan_options"; }
		const char *__ubsan_default_options(void) { return "$ubsan_options"; }
	EOF
	step defaults-object gcc -O2 -fPIC -c "$defaults_c" -o "$prefix/lib/gb_sanitizer_defaults.o"
	ldflags="-fsanitize=address,undefined $prefix/lib/gb_sanitizer_defaults.o"
	# Also for the build itself (zic runs at install), in case of an override.
	export ASAN_OPTIONS=$asan_options UBSAN_OPTIONS=$ubsan_options
else
	ldflags=""
fi

do_configure() {
	cd "$srcdir"
	./configure --prefix="$prefix" "${configure_flags[@]}" CFLAGS="$cflags" LDFLAGS="$ldflags"
}
step configure do_configure

# Every install directory must be inside the prefix, never Debian's
# /usr/lib/postgresql or /usr/share/postgresql.
check_dirs() {
	local dirs d
	# shellcheck disable=SC2016 # make variables, expanded by make
	dirs=$(printf 'gb-dirs:\n\t@echo $(bindir) $(pkglibdir) $(pkgincludedir) $(includedir_server) $(datadir) $(pgxsdir)\n' |
		make -s -C "$srcdir" -f GNUmakefile -f - gb-dirs)
	echo "$dirs"
	for d in $dirs; do
		case $d in "$prefix"/*) ;; *) echo "install directory outside $prefix: $d"; return 1 ;; esac
	done
}
step install-dirs check_dirs
step build make -C "$srcdir" -j2
# make install covers pg_config, the server headers, the PGXS makefiles,
# pg_regress, pg_isolation_regress + isolationtester and, with
# --enable-tap-tests, the PostgreSQL::Test::* Perl modules.
step install make -C "$srcdir" install

# pgTAP: pure SQL, so Debian's files serve any PostgreSQL 15.
copy_pgtap() {
	local dest
	dest=$("$pg_config" --sharedir)/extension
	ls /usr/share/postgresql/$pg_major/extension/pgtap*
	cp /usr/share/postgresql/$pg_major/extension/pgtap* "$dest/"
}
step pgtap copy_pgtap

# Everything a test run needs must be there; a missing piece fails the build
# here rather than half-way through a suite.
check_install() {
	local pgxs_dir f
	pgxs_dir=$(dirname "$("$pg_config" --pgxs)")/../..
	for f in bin/initdb bin/pg_ctl bin/postgres bin/psql bin/pgbench bin/pg_dump bin/pg_restore; do
		[ -x "$prefix/$f" ] || { echo "missing $prefix/$f"; return 1; }
	done
	for f in src/test/regress/pg_regress src/test/isolation/pg_isolation_regress \
		src/test/isolation/isolationtester; do
		[ -x "$pgxs_dir/$f" ] || { echo "missing $pgxs_dir/$f"; return 1; }
	done
	[ -f "$pgxs_dir/src/test/perl/PostgreSQL/Test/Cluster.pm" ] || { echo "missing TAP modules"; return 1; }
	[ -f "$("$pg_config" --sharedir)/extension/pgtap.control" ] || { echo "missing pgtap"; return 1; }
	[ -f "$("$pg_config" --includedir-server)/postgres.h" ] || { echo "missing server headers"; return 1; }
	"$pg_config" --configure
	"$prefix/bin/postgres" --version
}
step check check_install

# Runtime environment for callers: `source <prefix>/gb_env.sh`.  The options
# are the baked-in defaults, spelled out; a caller's own ASAN_OPTIONS or
# UBSAN_OPTIONS (e.g. log_path=...) come last and so win.
{
	echo "# Generated by gb_scale's scripts/pg_debug_build.sh: runtime environment of $prefix."
	if [ "$sanitize" = 1 ]; then
		echo "export ASAN_OPTIONS=\"$asan_options\${ASAN_OPTIONS:+:\$ASAN_OPTIONS}\""
		echo "export UBSAN_OPTIONS=\"$ubsan_options\${UBSAN_OPTIONS:+:\$UBSAN_OPTIONS}\""
	fi
	echo "export GB_DEBUG_PREFIX=\"$prefix\""
} >"$prefix/gb_env.sh"

t_total=$(($(date +%s) - t_start))
{
	echo "version=$pg_version"
	echo "configure=${configure_flags[*]}"
	echo "CFLAGS=$cflags"
	echo "LDFLAGS=$ldflags"
	echo "build_seconds=$t_total"
} >"$stamp.tmp"
# Written last: its presence means a complete install.
mv "$stamp.tmp" "$stamp"

gb_log "debug PostgreSQL $pg_version built in ${t_total}s: $prefix"
gb_log "runtime environment: source $prefix/gb_env.sh"
[ -s "$prefix/gb_env.sh" ] && sed -n 's/^export /   /p' "$prefix/gb_env.sh" >&2
echo "$pg_config"
