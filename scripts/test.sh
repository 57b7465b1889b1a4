#!/usr/bin/env bash
# The whole test suite: lint, pg_regress (with its isolation specs) and pgTAP,
# each also under force_parallel_mode = regress, and the scripted TAP tests
# (crash, restart, clock, standby, concurrency, pooling, dump/restore).
#
# It runs twice: on Debian's PostgreSQL 15, then on an assert-enabled build
# with AddressSanitizer/UBSan where available (scripts/pg_debug_build.sh,
# built once and cached), whose server logs must show no assertion failure,
# memory-context complaint or sanitizer report.  GB_SKIP_DEBUG_BUILD=1 skips
# the second pass for a quick local run.
#
# Every cluster is a throwaway one run by the postgres OS user and is removed
# on exit, pass or fail.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# GB_SUITE_LABEL is set when this script runs itself on the debug build.
suite_label=${GB_SUITE_LABEL:-}
if [ -z "$suite_label" ]; then
	gb_ensure_packages "${GB_BASE_PACKAGES[@]}" "${GB_TEST_PACKAGES[@]}" || exit 1
fi
trap gb_cleanup EXIT
gb_build_install || exit 1

passed=0
failed=0
failures=()
record() { # record NAME STATUS
	if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

gb_tmpdir work
logs=()
not_run=()

# Contrib modules the tests load: postgres_fdw (the cross-shard test,
# sql/shard_fdw.sql), pg_stat_statements and auto_explain (the hooks test,
# t/185).  Debian's server ships them; the assert build
# (scripts/pg_debug_build.sh) installs no contrib module, so each is built
# from its own source tree with its own flags (sanitizers included), next to
# the pg_cron copied in below.  Built in a copy, so that the cached tree stays
# as it was; one install at a time, checked under the lock, so that no run
# loads a half-copied library.
gb_ensure_contrib() {
	local module=$1 prefix src build pkglibdir extdir control
	prefix=$(dirname "$("$PG_CONFIG" --bindir)")
	pkglibdir=$("$PG_CONFIG" --pkglibdir)
	extdir=$("$PG_CONFIG" --sharedir)/extension
	src=$prefix/build/postgresql-$GB_PGVER/contrib/$module
	if [ ! -d "$src" ]; then
		[ -e "$pkglibdir/$module.so" ] && return 0
		gb_log "no $module in $pkglibdir and no source at $src"
		return 1
	fi
	control=$extdir/$module.control
	[ -e "$src/$module.control" ] || control=$pkglibdir/$module.so
	gb_tmpdir build
	(
		flock 9 || exit 1
		[ -e "$pkglibdir/$module.so" ] && [ -e "$control" ] && exit 0
		gb_log "building $module for $PG_CONFIG"
		cp -r "$src/." "$build/" &&
			make -C "$build" -s USE_PGXS=1 PG_CONFIG="$PG_CONFIG" >/dev/null &&
			make -C "$build" -s USE_PGXS=1 PG_CONFIG="$PG_CONFIG" install >/dev/null
	) 9>>"$prefix/.gb_contrib.lock"
}
gb_ensure_contrib postgres_fdw || record "postgres_fdw for the cross-shard test" 1
gb_ensure_contrib pg_stat_statements || record "pg_stat_statements for the hooks test" 1
gb_ensure_contrib auto_explain || record "auto_explain for the hooks test" 1

# 0. Static analysis of src/: cppcheck and clang-tidy must stay silent.
if [ -z "$suite_label" ]; then
	gb_log "lint"
	make -C "$GB_ROOT" -s PG_CONFIG="$PG_CONFIG" lint
	status=$?
	record "lint (cppcheck, clang-tidy)" $status
fi

# 1-2. pg_regress (with the isolation specs) and pgTAP on a throwaway
# preloaded cluster; MODE is "serial" or "parallel" (force_parallel_mode).
run_sql_suites() {
	local mode=$1 conf=() status shard=10 f db
	[ "$mode" = parallel ] && conf=("force_parallel_mode = regress" "max_parallel_workers = 8" "max_worker_processes = 16")
	gb_log "pg_regress and isolation ($mode)"
	gb_cluster_start REG "shared_preload_libraries = 'gb_scale'" "gb_scale.shard_id = 1" "${conf[@]}"
	logs+=("$REG_DIR/server.log")
	make -C "$GB_ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck \
		PGHOST="$REG_HOST" PGPORT="$REG_PORT" PGUSER=postgres >"$work/regress.out" 2>&1
	status=$?
	cat "$work/regress.out"
	# One line per test: "test NAME ... ok" (or "     NAME ..." in a group).
	while read -r verdict name; do
		record "pg_regress $name ($mode)" "$([ "$verdict" = ok ] && echo 0 || echo 1)"
	done < <(sed -n -E 's/^(test |[ ]+)([A-Za-z0-9_]+)[ ]+\.\.\. (ok|FAILED|failed).*/\3 \2/p' "$work/regress.out")
	if [ $status -ne 0 ] && ! grep -q -E '\.\.\. (FAILED|failed)' "$work/regress.out"; then
		record "pg_regress (did not run, $mode)" 1
	fi
	for f in "$GB_ROOT/regression.diffs" "$GB_ROOT/output_iso/regression.diffs"; do
		[ -f "$f" ] && cat "$f"
	done

	# pgTAP: each file against a fresh database of the same cluster, each with
	# a shard id of its own (one shard id per database).
	gb_log "pgTAP ($mode)"
	for f in "$GB_ROOT"/test/pgtap/*.sql; do
		[ -e "$f" ] || continue
		db="tap_$(basename "$f" .sql)"
		shard=$((shard + 1))
		psql -X -q -h "$REG_HOST" -p "$REG_PORT" -U postgres -d postgres \
			-c "CREATE DATABASE $db" -c "ALTER DATABASE $db SET gb_scale.shard_id = $shard" >/dev/null &&
			psql -X -q -h "$REG_HOST" -p "$REG_PORT" -U postgres -d "$db" \
				-c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION gb_scale" >/dev/null
		pg_prove -h "$REG_HOST" -p "$REG_PORT" -U postgres -d "$db" "$f"
		status=$? # before any expansion below resets it
		record "pgTAP $(basename "$f") ($mode)" $status
	done
	gb_as_pg pg_ctl -D "$REG_DIR/data" -m fast -w stop >/dev/null
}
run_sql_suites serial
run_sql_suites parallel

# 3. Scripted tests: Perl TAP tests on PostgreSQL::Test::Cluster, run as the
#    postgres OS user from a copy it can read, each file on its own clusters.
gb_log "TAP tests"
# The partition tests need pg_cron; a PostgreSQL built here (the assert
# build) has none of its own, so it gets Debian's build of it.
pg_pkglibdir=$("$PG_CONFIG" --pkglibdir)
pg_extdir=$("$PG_CONFIG" --sharedir)/extension
if [ ! -e "$pg_pkglibdir/pg_cron.so" ] && [ -e "/usr/lib/postgresql/$GB_PGVER/lib/pg_cron.so" ]; then
	cp "/usr/lib/postgresql/$GB_PGVER/lib/pg_cron.so" "$pg_pkglibdir/" &&
		cp /usr/share/postgresql/$GB_PGVER/extension/pg_cron.control \
			/usr/share/postgresql/$GB_PGVER/extension/pg_cron--*.sql "$pg_extdir/"
fi
# t/190 runs Citus with gb_scale: Citus from ../shared/citus/ beside the
# repository (test/citus.sh install), for the assert build too (whose copy
# of the tree has no ../shared beside it, hence the tarball's path).
if [ -z "${GB_CITUS_TARBALL:-}" ]; then
	for t in "$GB_ROOT"/../shared/citus/citus-*-pg"$GB_PGVER"-*.tar.gz; do
		[ -f "$t" ] && GB_CITUS_TARBALL=$(readlink -f "$t") && export GB_CITUS_TARBALL
	done
fi
# The assert build is PostgreSQL 15.18 (the newest source Debian's mirror
# keeps), and that Citus was built for 15.20, whose symbols it needs: there
# the Citus TAP files (t/*citus*) are not started, and the summary says why;
# on Debian's PostgreSQL a Citus that cannot be installed fails the run.
citus_status=0
citus_why=$(bash "$GB_ROOT/test/citus.sh" install 2>&1 >/dev/null) || citus_status=$?
if [ "$citus_status" -eq 3 ] && [ -n "${GB_SUITE_LABEL:-}" ]; then
	# its last line is the reason (the lines before it log what it tried)
	export GB_CITUS_UNAVAILABLE="${citus_why##*$'\n'}"
	not_run+=("the Citus TAP tests on the $GB_SUITE_LABEL (they ran on Debian's PostgreSQL): $GB_CITUS_UNAVAILABLE")
elif [ "$citus_status" -ne 0 ]; then
	printf '%s\n' "$citus_why" >&2
	record "Citus for the Citus tests (test/citus.sh install)" 1
fi
cp -r "$GB_ROOT/test" "$work/test"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$work/test"
pgxs_dir=$(dirname "$("$PG_CONFIG" --pgxs)")/..
for f in "$work"/test/t/*.pl; do
	[ -e "$f" ] || continue
	case "$(basename "$f")" in *citus*) [ -n "${GB_CITUS_UNAVAILABLE:-}" ] && continue ;; esac
	(cd "$work/test" && gb_as_pg env TESTDIR="$work/test" PERL5LIB="$pgxs_dir/test/perl" \
		PG_REGRESS="$pgxs_dir/test/regress/pg_regress" prove -v "t/$(basename "$f")") 2>&1 |
		tee "$work/tap.out"
	status=${PIPESTATUS[0]}
	# the first failed checks (and a randomized test's seed) go into the
	# summary, which is what a truncated CI log still shows
	why=$(grep -E -o "Failed test '[^']*'|GB_FUZZ_SEED=[0-9]+ \(step [^)]*\)" "$work/tap.out" | head -n 3 | paste -sd ';' | cut -c 1-400)
	record "TAP $(basename "$f")${why:+: $why}" $status
done
logs+=("$work"/test/tmp_check/log/*.log)

# 4. Server logs: an assertion failure, a memory-context complaint or a
#    sanitizer report fails the run even when the test that caused it passed.
gb_log "server logs"
if grep -l -E 'TRAP: |problem in alloc set|ERROR: AddressSanitizer|runtime error: ' "${logs[@]}" 2>/dev/null; then
	grep -h -B2 -A8 -E 'TRAP: |problem in alloc set|ERROR: AddressSanitizer|runtime error: ' "${logs[@]}" 2>/dev/null | head -80
	record "server logs free of assertion, memory-context and sanitizer reports" 1
else
	record "server logs free of assertion, memory-context and sanitizer reports" 0
fi

# 5. The same suite on the assert-enabled build, from a copy of the tree so
#    that its objects never mix with Debian's build.
if [ -z "$suite_label" ] && [ "${GB_SKIP_DEBUG_BUILD:-0}" != 1 ]; then
	gb_log "assert-enabled PostgreSQL"
	debug_pg_config=$(bash "$GB_ROOT/scripts/pg_debug_build.sh" | tail -n 1)
	if [ -x "$debug_pg_config" ]; then
		gb_tmpdir debug_src
		(cd "$GB_ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$debug_src")
		[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$debug_src"
		# shellcheck disable=SC1091
		(source "$(dirname "$(dirname "$debug_pg_config")")/gb_env.sh" &&
			GB_SUITE_LABEL="assert build" PG_CONFIG="$debug_pg_config" bash "$debug_src/scripts/test.sh") \
			>"$work/debug.out" 2>&1
		cat "$work/debug.out"
		read -r debug_passed debug_failed < <(sed -n -E 's/^tests: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$work/debug.out")
		passed=$((passed + ${debug_passed:-0}))
		failed=$((failed + ${debug_failed:-0}))
		while read -r line; do failures+=("[assert build] $line"); done < <(sed -n 's/^FAILED: //p' "$work/debug.out")
		while read -r line; do not_run+=("$line"); done < <(sed -n 's/^NOT RUN: //p' "$work/debug.out")
		[ -z "${debug_passed:-}" ] && record "[assert build] suite did not run" 1
	else
		record "assert-enabled PostgreSQL build" 1
	fi
fi

echo
for f in "${not_run[@]}"; do echo "NOT RUN: $f"; done
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
