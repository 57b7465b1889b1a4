#!/usr/bin/env bash
# The whole test suite: pg_regress, pgTAP and the scripted TAP tests (crash,
# restart, clock, standby, concurrency, pooling).  Every cluster is a throwaway
# one run by the postgres OS user and is removed on exit, pass or fail.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

gb_ensure_packages "${GB_BASE_PACKAGES[@]}" "${GB_TEST_PACKAGES[@]}" || exit 1
trap gb_cleanup EXIT
gb_build_install || exit 1

passed=0
failed=0
failures=()
record() { # record NAME STATUS
	if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

gb_tmpdir work

# 0. Static analysis of src/: cppcheck and clang-tidy must stay silent.
gb_log "lint"
make -C "$GB_ROOT" -s PG_CONFIG="$PG_CONFIG" lint
status=$?
record "lint (cppcheck, clang-tidy)" $status

# 1. pg_regress: make installcheck against a throwaway preloaded cluster.
gb_log "pg_regress"
gb_cluster_start REG "shared_preload_libraries = 'gb_scale'" "gb_scale.shard_id = 1"
make -C "$GB_ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck \
	PGHOST="$REG_HOST" PGPORT="$REG_PORT" PGUSER=postgres >"$work/regress.out" 2>&1
status=$?
cat "$work/regress.out"
# pg_regress prints one line per test: "test NAME ... ok" (or "     NAME ..." in a group).
while read -r verdict name; do
	record "pg_regress $name" "$([ "$verdict" = ok ] && echo 0 || echo 1)"
done < <(sed -n -E 's/^(test |[ ]+)([A-Za-z0-9_]+)[ ]+\.\.\. (ok|FAILED|failed).*/\3 \2/p' "$work/regress.out")
if [ $status -ne 0 ] && ! grep -q -E '\.\.\. (FAILED|failed)' "$work/regress.out"; then record "pg_regress (did not run)" 1; fi
[ -f "$GB_ROOT/regression.diffs" ] && cat "$GB_ROOT/regression.diffs"

# 2. pgTAP: each file in test/pgtap against a fresh database of the same
#    cluster, each with a shard id of its own (one shard id per database).
gb_log "pgTAP"
shard=10
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
	record "pgTAP $(basename "$f")" $status
done

# 3. Scripted tests: Perl TAP tests on PostgreSQL::Test::Cluster, run as the
#    postgres OS user from a copy it can read, each file on its own clusters.
gb_log "TAP tests"
cp -r "$GB_ROOT/test" "$work/test"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$work/test"
pgxs_perl=$(dirname "$("$PG_CONFIG" --pgxs)")/../test/perl
for f in "$work"/test/t/*.pl; do
	[ -e "$f" ] || continue
	(cd "$work/test" && gb_as_pg env TESTDIR="$work/test" PERL5LIB="$pgxs_perl" \
		PG_REGRESS="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress" prove -v "t/$(basename "$f")")
	status=$?
	record "TAP $(basename "$f")" $status
done

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
