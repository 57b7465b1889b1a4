# Moving a tenant online (issue 17), its end: the pause, the switch, the
# fence and the cleanup.  Three shards started by test/shards.sh (1 USA,
# 4 DEU, 6 SGP; wal_level = logical):
#  1. CALL gb_tenant_move(42, 4, keep_source => '1 hour') while one writer
#     writes for tenant 42 and another for tenant 43 on shard 1: the move
#     switches, the pause is recorded (and printed); the first writer's
#     write after the switch fails with 40001 naming shard 4, the other
#     writer never fails; every row the writer committed is on the target;
#     the target's rows equal the source's kept rows (shard_id rewritten to
#     4); no slot, publication or subscription is left; the directory of
#     both shards says 4, and so does shard 6's (pushed by the move); an abort is refused once switched; the rows stay
#     on shard 1 until gb_tenant_move_finish after the window (its end is
#     moved to now by the test), then none;
#  2. the fence: on shard 1 a write of tenant 42 fails with 40001 naming
#     shard 4, on shard 4 a write of tenant 43 (served by 1) likewise;
#     shard 4 writes tenant 42;
#  3. a move of tenant 43 stopped once caught up (gb_scale.move_switch =
#     off), then called again and cancelled while it holds the pause (held
#     there by a lock on the target's directory): a write of tenant 43 on
#     shard 1 waits during the pause, another tenant's does not; after the cancel the
#     waiting write commits on shard 1, the tenant stays there with all its
#     rows, and an abort cleans up (no slot, no copied row);
#  5. a move of tenant 43 whose target does not confirm during the pause
#     (its subscription disabled): the pause ends after
#     gb_scale.move_max_pause (57014), the tenant stays on shard 1,
#     writable; a new CALL, the subscription enabled, finishes it;
#  4. tenant 42 back to shard 1 without keep_source, with shard 6 down:
#     purged on shard 4 at the end of the CALL, done, a WARNING naming
#     shard 6 and gb_shard_sync.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest qw(shards_start psql_run sq q_error start_psql wait_for
  tenant_digest no_move_objects);
use Test::More;

shards_start(3);
my $base = $ENV{GB_SHARDS_DIR};

# --- data: tenants 42 and 43 on shard 1 ----------------------------------
is(sq(1, 'SELECT gb_shard_for_tenant(42)::text || gb_shard_for_tenant(43) || gb_shard_for_tenant(44)'), '111',
	'tenants 42, 43 and 44 are served by shard 1');
sq(1, q{
	ALTER TABLE gb.sessions REPLICA IDENTITY FULL;
	ALTER TABLE gb.messages REPLICA IDENTITY FULL;
	INSERT INTO gb.sessions (tenant_id, user_ref)
	  SELECT t, 'user' || g FROM generate_series(1, 2000) g, (VALUES (42), (43)) v(t);
	INSERT INTO gb.messages (tenant_id, session_id, role, body)
	  SELECT s.tenant_id, s.id, 1 + g % 2, 'message ' || g || ' of ' || s.user_ref
	    FROM gb.sessions s, generate_series(1, 10) g;
	-- what each writer committed, kept outside the tenant tables
	CREATE TABLE public.acked (tenant_id bigint, id bigint);
	CREATE TABLE public.writer_error (tenant_id bigint, sqlstate text, message text);
});
is(sq(1, 'SELECT count(*) FROM gb.messages WHERE tenant_id = 42'), '20000', 'tenant 42 has 20000 messages');

# A writer for TENANT: one message per transaction, its id recorded in the
# same transaction; a serialization failure is recorded and ends it.
sub writer_sql
{
	my ($tenant) = @_;
	return qq{
DO \$\$
DECLARE
    n int := 0;
    s bigint := (SELECT min(id) FROM gb.sessions WHERE tenant_id = $tenant);
    new_id bigint;
    failed boolean := false;
    state text;
    msg text;
BEGIN
    LOOP
        EXIT WHEN failed OR (n > 100 AND to_regclass('public.writer_go') IS NOT NULL);
        n := n + 1;
        BEGIN
            INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES ($tenant, s, 1, 'written ' || n)
              RETURNING id INTO new_id;
            IF n % 5 = 0 THEN
                UPDATE gb.messages SET body = body || ' (edited)'
                 WHERE tenant_id = $tenant AND id = (SELECT min(id) FROM gb.messages
                                                      WHERE tenant_id = $tenant AND body NOT LIKE '%edited%');
            END IF;
            INSERT INTO public.acked VALUES ($tenant, new_id);
        EXCEPTION WHEN serialization_failure THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            INSERT INTO public.writer_error VALUES ($tenant, state, msg);
            failed := true;
        END;
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
END \$\$;
};
}

# --- 1. the move, while both tenants write -------------------------------
my ($w42_out, $w42_err, $w43_out, $w43_err) = ('', '', '', '');
my $w42 = start_psql(1, writer_sql(42), \$w42_out, \$w42_err);
my $w43 = start_psql(1, writer_sql(43), \$w43_out, \$w43_err);
wait_for(1, q{SELECT count(*) >= 20 FROM public.acked WHERE tenant_id = 42}, 't');

my ($r, $o, $e) = psql_run(1, q{CALL gb_tenant_move(42, 4::smallint, keep_source => '1 hour')});
is($r, 0, 'CALL gb_tenant_move(42, 4, keep_source => 1 h) returns') or diag($e);
like($e, qr/NOTICE:  00000: tenant 42: writes paused, switching to shard 4/, 'NOTICE: paused');
like($e, qr/NOTICE:  00000: tenant 42: switched to shard 4; its writes waited [0-9.]+ s/, 'NOTICE: switched, with the pause');
like($e, qr/its rows stay here for keep_source, until gb_tenant_move_finish\(42\)/, 'NOTICE: the rows stay for keep_source');
unlike($e, qr/password/i, 'no password in what the move says');

# The writer of 42 now fails (the fence), the writer of 43 goes on.
is(wait_for(1, q{SELECT count(*) FROM public.writer_error WHERE tenant_id = 42}, '1'), '1',
	'the writer of tenant 42 met an error after the switch');
$w42->finish;
like(sq(1, q{SELECT sqlstate || ': ' || message FROM public.writer_error WHERE tenant_id = 42}),
	qr/^40001: tenant 42 is served by shard 4, not by this shard \(1\)$/,
	'a retryable 40001 naming the new shard');
sq(1, 'CREATE TABLE public.writer_go ()');
$w43->finish;
is($w43_err, '', 'the writer of tenant 43 ran without an error');
is(sq(1, 'SELECT count(*) FROM public.writer_error WHERE tenant_id = 43'), '0', 'and never met the fence');

my $pause = sq(1, q{SELECT extract(epoch FROM pause) FROM gb_scale.tenant_moves WHERE tenant_id = 42});
note("pause of tenant 42's writes at the switch: $pause s");
diag("pause of tenant 42's writes at the switch: $pause s");
ok($pause ne '' && $pause < 10, "the pause is recorded, under a generous bound ($pause s)");
is(sq(1, q{SELECT state || ' ' || (keep_source_until IS NOT NULL) || ' ' || (error IS NULL) FROM gb_scale.tenant_moves WHERE tenant_id = 42}),
	'cleaning true true', 'gb_scale.tenant_moves: cleaning, waiting for keep_source');

is(no_move_objects(1), '0 0 0', 'no slot, publication or subscription left on the source');
is(no_move_objects(4), '0 0 0', 'nor on the target');
is(sq(1, 'SELECT gb_shard_for_tenant(42)') . sq(4, 'SELECT gb_shard_for_tenant(42)'), '44',
	'the directory of both shards says shard 4');
is(sq(6, 'SELECT gb_shard_for_tenant(42)'), '4', 'and so does the third shard\'s (pushed by the move)');

# Every row the writer committed reached the target; the target's rows are
# the source's kept rows, with shard_id 4.
my $acked = sq(1, q{SELECT string_agg(id::text, ',') FROM public.acked WHERE tenant_id = 42});
my $n_acked = sq(1, q{SELECT count(*) FROM public.acked WHERE tenant_id = 42});
ok($n_acked > 20, "the writer of tenant 42 committed $n_acked messages around the move");
is(sq(4, "SELECT count(*) FROM gb.messages WHERE tenant_id = 42 AND id IN ($acked)"), $n_acked,
	'every message it committed is on the target');
is(tenant_digest(4, 42), tenant_digest(1, 42), 'the target holds the source\'s rows of tenant 42 (same ids, equal row hashes)');
is(sq(4, q{SELECT count(*) FROM (SELECT id FROM gb.messages WHERE tenant_id = 42 GROUP BY id HAVING count(*) > 1) d}),
	'0', 'each row once');
is( sq(4, q{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 42 AND shard_id <> 4)
	+ (SELECT count(*) FROM gb.sessions WHERE tenant_id = 42 AND shard_id <> 4)}),
	'0', 'the copied rows carry shard_id 4');

like(q_error(1, 'SELECT gb_tenant_move_abort(42)'), qr/^55000: tenant 42's move cannot be aborted: shard 4 serves it since the switch/,
	'an abort is refused once switched');
like(q_error(1, 'SELECT gb_tenant_move_finish(42)'), qr/^55000: tenant 42's rows stay on this shard until .* \(keep_source\)/,
	'gb_tenant_move_finish waits for the keep_source window');
# The window ends (the test moves its end to now rather than wait).
sq(1, q{UPDATE gb_scale.tenant_move SET keep_source_until = now() WHERE tenant_id = 42 AND state = 'cleaning'});
($r, $o, $e) = psql_run(1, 'SELECT gb_tenant_move_finish(42)');
is($r, 0, 'gb_tenant_move_finish(42) after the window') or diag($e);
like($e, qr/move to shard 4 done, \d+ row\(s\) purged here/, 'NOTICE: done, rows purged');
is( sq(1, q{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 42) + (SELECT count(*) FROM gb.sessions WHERE tenant_id = 42)}),
	'0', 'no row of tenant 42 left on the source');
is(sq(1, q{SELECT state || ' ' || (finished_at IS NOT NULL) FROM gb_scale.tenant_moves WHERE tenant_id = 42}),
	'done true', 'gb_scale.tenant_moves: done');

# The other tenant: its rows from before are unchanged, its new ones all on
# shard 1, none on shard 4.
is(sq(1, qq{SELECT count(*) FROM gb.messages WHERE tenant_id = 43 AND id IN (SELECT id FROM public.acked WHERE tenant_id = 43)}),
	sq(1, q{SELECT count(*) FROM public.acked WHERE tenant_id = 43}), 'every message of tenant 43 written during the move is on shard 1');
is(sq(4, q{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 43) + (SELECT count(*) FROM gb.sessions WHERE tenant_id = 43)}),
	'0', 'and no row of tenant 43 on shard 4');
is(sq(1, q{SELECT count(*) FROM gb.sessions WHERE tenant_id = 43}), '2000', 'tenant 43 keeps its sessions');

# --- 2. the fence --------------------------------------------------------
like(q_error(1, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (42, 1, 1, 'stale router')}),
	qr/^40001: tenant 42 is served by shard 4, not by this shard \(1\)/, 'shard 1 refuses a write of tenant 42: 40001 naming shard 4');
like(q_error(4, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (43, 1, 1, 'stale router')}),
	qr/^40001: tenant 43 is served by shard 1, not by this shard \(4\)/, 'shard 4 refuses a write of tenant 43: 40001 naming shard 1');
is(sq(4, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (42, 1, 1, 'after the move') RETURNING shard_id}),
	'4', 'shard 4 writes tenant 42');

# --- 3. cancel during the pause ------------------------------------------
# A lock on the target's directory holds the switch while the pause is on.
# The first CALL stops once caught up (gb_scale.move_switch = off), the
# second goes on from there.
my ($lk_out, $lk_err, $mv_out, $mv_err, $wt_out, $wt_err) = ('', '', '', '', '', '');
($r, $o, $e) = psql_run(1, 'SET gb_scale.move_switch = off; CALL gb_tenant_move(43, 4::smallint)');
is($r, 0, 'a move of tenant 43 with gb_scale.move_switch = off') or diag($e);
is(sq(1, q{SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = 43 AND finished_at IS NULL}), 'catching up',
	'stops once caught up');
my $locker = start_psql(4, q{BEGIN; LOCK TABLE gb_scale.tenant_shard_map IN EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;},
	\$lk_out, \$lk_err);
wait_for(4, q{SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	WHERE c.relname = 'tenant_shard_map' AND l.mode = 'ExclusiveLock' AND l.granted}, '1');
my $mover = start_psql(1, 'CALL gb_tenant_move(43, 4::smallint)', \$mv_out, \$mv_err);
is(wait_for(1, q{SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = 43 AND finished_at IS NULL}, 'paused'),
	'paused', 'the move pauses');
is(wait_for(4, q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%gb_tenant_assign(%' AND wait_event_type = 'Lock'}, '1'),
	'1', 'the switch waits for the target\'s directory, with the pause held');
my $waiter = start_psql(1, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (43, 1, 1, 'during the pause') RETURNING shard_id},
	\$wt_out, \$wt_err);
is( wait_for(1, q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO gb.messages%during the pause%' AND wait_event_type = 'Lock'}, '1'),
	'1', 'a write of tenant 43 waits during the pause');
is(sq(1, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (44, 1, 1, 'other tenant') RETURNING shard_id}),
	'1', 'a write of another tenant does not');
my $pause_lock = q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 17 AND mode = 'ExclusiveLock' AND granted};
is(sq(1, $pause_lock), '1', 'the mover holds the pause lock');
is(sq(1, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'CALL gb_tenant_move(43%'}), 't',
	'cancel the mover');
$mover->finish;
like($mv_err, qr/ERROR:  57014: canceling statement due to user request/, 'the CALL is cancelled');
$waiter->finish;
is($wt_err, '', 'the waiting write commits once the pause ends') or diag($wt_err);
is(sq(1, $pause_lock), '0', 'the pause ended with its move');
is(sq(4, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE%'}), 't', 'release the target');
$locker->finish;
is(sq(1, 'SELECT gb_shard_for_tenant(43)') . sq(4, 'SELECT gb_shard_for_tenant(43)'), '11', 'tenant 43 is still served by shard 1 on both');
is(sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 43 AND body = 'during the pause'}), '1', 'with the write that waited');
is(sq(1, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (43, 1, 1, 'after the cancel') RETURNING shard_id}),
	'1', 'and writable');
is(sq(1, q{SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = 43 AND finished_at IS NULL}), 'paused', 'the move stays paused');
($r, $o, $e) = psql_run(1, 'SELECT gb_tenant_move_abort(43)');
is($r, 0, 'gb_tenant_move_abort(43) after the cancel') or diag($e);
is(no_move_objects(1) . ' ' . no_move_objects(4), '0 0 0 0 0 0', 'no slot, publication or subscription left on either shard');
is(sq(4, q{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 43) + (SELECT count(*) FROM gb.sessions WHERE tenant_id = 43)}),
	'0', 'no row of tenant 43 on shard 4');
is(sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 43 AND id IN (SELECT id FROM public.acked WHERE tenant_id = 43)})
	. ' ' . sq(1, q{SELECT count(*) FROM gb.sessions WHERE tenant_id = 43}),
	sq(1, q{SELECT count(*) FROM public.acked WHERE tenant_id = 43}) . ' 2000', 'tenant 43 keeps all its rows on shard 1');

# --- 5 (before 4). the target does not confirm during the pause ----------
# Its subscription disabled, the pause ends after gb_scale.move_max_pause
# with the tenant still on shard 1 and writable; a new CALL finishes.
($r, $o, $e) = psql_run(1, 'SET gb_scale.move_switch = off; CALL gb_tenant_move(43, 4::smallint)');
is($r, 0, 'a new move of tenant 43 reaches catching up') or diag($e);
my $sub43 = sq(1, q{SELECT subscription FROM gb_scale.tenant_move WHERE tenant_id = 43 AND finished_at IS NULL});
sq(4, qq{ALTER SUBSCRIPTION "$sub43" DISABLE});
sq(1, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (43, 1, 1, 'not yet on the target')});
like(q_error(1, q{SET gb_scale.move_max_pause = '1s'; CALL gb_tenant_move(43, 4::smallint)}),
	qr/^57014: target shard 4 did not confirm WAL position \S+ within gb_scale.move_max_pause \(1000 ms\)/,
	'the pause ends after gb_scale.move_max_pause: 57014');
is(sq(1, q{SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = 43 AND finished_at IS NULL}) . ' ' . sq(1, $pause_lock),
	'paused 0', 'the move stays paused, the lock is gone');
is(sq(1, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (43, 1, 1, 'after the timeout') RETURNING shard_id}),
	'1', 'tenant 43 is still written on shard 1');
my $n43 = sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 43});
sq(4, qq{ALTER SUBSCRIPTION "$sub43" ENABLE});
($r, $o, $e) = psql_run(1, 'CALL gb_tenant_move(43, 4::smallint)');
is($r, 0, 'a new CALL finishes the move once the target keeps up') or diag($e);
like($e, qr/going on with its move to shard 4 \(state paused\)/, 'from where it stopped');
is( sq(1, q{SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = 43 AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1})
	. ' ' . sq(4, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 43})
	. ' ' . sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 43}),
	"done $n43 0", 'done: every message of tenant 43 on shard 4, none on shard 1');
is(sq(1, 'SELECT gb_shard_for_tenant(43)') . sq(4, 'SELECT gb_shard_for_tenant(43)') . sq(6, 'SELECT gb_shard_for_tenant(43)'),
	'444', 'the three directories say shard 4');

# --- 4. back to shard 1, purged at once -----------------------------------
# The same move from shard 4, without keep_source: the rows on shard 4 go
# at the end of the CALL (the purge passes the fence), the move is done.
# The third shard is down: the move ends all the same, with a WARNING.
sq(4, q{ALTER TABLE gb.sessions REPLICA IDENTITY FULL; ALTER TABLE gb.messages REPLICA IDENTITY FULL;});
my $on4 = tenant_digest(4, 42);
my $pgdata6 = "$base/shard6/data";
system('pg_ctl', '-D', $pgdata6, '-m', 'fast', '-w', 'stop') == 0 or die 'could not stop shard 6';
($r, $o, $e) = psql_run(4, 'CALL gb_tenant_move(42, 1::smallint)');
is($r, 0, 'CALL gb_tenant_move(42, 1) on shard 4') or diag($e);
like($e, qr/WARNING:  01000: tenant 42: shard 6's directory could not be told of the switch to shard 1/,
	'a WARNING names the shard that could not be told');
like($e, qr/HINT:  Run gb_shard_sync\(\) on shard 6/, 'with what to do');
system('env', 'SHARD_ID=6', 'pg_ctl', '-D', $pgdata6, '-l', "$base/shard6/server.log", '-w', 'start') == 0
  or die 'could not start shard 6';
is(sq(6, 'SELECT gb_shard_for_tenant(42)'), '4', 'shard 6 still says shard 4 until it syncs');
like($e, qr/move to shard 1 done, \d+ row\(s\) purged here/, 'NOTICE: done, rows purged at once');
is(sq(4, q{SELECT state || ' ' || (pause IS NOT NULL) FROM gb_scale.tenant_moves WHERE tenant_id = 42}), 'done true',
	'gb_scale.tenant_moves on shard 4: done, with its pause');
is(tenant_digest(1, 42), $on4, 'shard 1 holds the rows of tenant 42 again (equal row hashes)');
is( sq(4, q{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 42) + (SELECT count(*) FROM gb.sessions WHERE tenant_id = 42)}),
	'0', 'none left on shard 4');
is( sq(1, q{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 42 AND shard_id <> 1)
	+ (SELECT count(*) FROM gb.sessions WHERE tenant_id = 42 AND shard_id <> 1)}),
	'0', 'with shard_id 1');
is(sq(1, 'SELECT gb_shard_for_tenant(42)') . sq(4, 'SELECT gb_shard_for_tenant(42)'), '11',
	'the directory of both shards says shard 1');
is(no_move_objects(1) . ' ' . no_move_objects(4), '0 0 0 0 0 0', 'no slot, publication or subscription left');

done_testing();
