# Moving a tenant online (issue 17): the fault runs.  Two shards started by
# test/shards.sh (1 USA, 4 DEU; wal_level = logical), one tenant per fault,
# each moved from shard 1 to shard 4 while a writer writes for it on
# shard 1 (every message it commits is recorded, in the same transaction,
# in public.acked).  Each fault ends with the tenant served by shard 4 only,
# with every row it had on shard 1 (same ids, equal row hashes) and every
# message the writer committed, none left on shard 1, and no slot,
# publication or subscription on either shard:
#  4. the backend running the CALL killed (SIGKILL: the source restarts
#     after a crash) while it holds the pause: after recovery the tenant is
#     not blocked (a write of it commits on shard 1), the move stays paused,
#     and a new CALL finishes it;
#  1. the target's postmaster killed (SIGKILL) during the initial copy (the
#     target's table syncs held by a lock there): the CALL fails, the tenant
#     stays on shard 1, writable; the target started again, a new CALL goes
#     on from copying and finishes;
#  3. the walsenders of the move (its apply's and the table syncs') ended
#     during the copy, and again while catching up: the subscription
#     reconnects and the same CALL reaches caught up; a new CALL finishes;
#  5. the caller's psql killed during the copy: its backend ends, the move
#     stays copying; the target's subscription then dropped there (its slot
#     kept): a new CALL says so; an abort undoes it (no slot left on
#     shard 1, nothing on shard 4) and a new move succeeds;
#  2. the source stopped immediately (pg_ctl stop -m immediate) while a CALL
#     waits in catching up: after the restart the move is still catching up,
#     the tenant writable on shard 1; a new CALL finishes it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest qw(shards_start shard_restart psql_run sq q_error start_psql
  wait_for tenant_digest no_move_objects);
use Test::More;
use Time::HiRes qw(usleep);

shards_start(2);
my $base = $ENV{GB_SHARDS_DIR};

sq(1, q{
	ALTER TABLE gb.sessions REPLICA IDENTITY FULL;
	ALTER TABLE gb.messages REPLICA IDENTITY FULL;
	INSERT INTO gb.sessions (tenant_id, user_ref)
	  SELECT t, 'user' || g FROM generate_series(1, 500) g, generate_series(42, 47) t;
	INSERT INTO gb.messages (tenant_id, session_id, role, body)
	  SELECT s.tenant_id, s.id, 1 + g % 2, 'message ' || g || ' of ' || s.user_ref
	    FROM gb.sessions s, generate_series(1, 10) g;
	-- what each writer committed, kept outside the tenant tables
	CREATE TABLE public.acked (tenant_id bigint, id bigint);
});
is(sq(1, 'SELECT count(*) FROM gb.messages WHERE tenant_id = 42'), '5000', 'each tenant has 5000 messages on shard 1');

# A writer for TENANT on shard 1: one message per transaction, its id
# recorded in the same transaction, an update now and then; it stops when
# public.writer_stop_<tenant> exists, or at its first error (the fence after
# the switch, a restart of the source).
sub start_writer
{
	my ($tenant) = @_;
	my ($o, $e) = ('', '');
	my $h = start_psql(1, qq{
DO \$\$
DECLARE
    n int := 0;
    s bigint := (SELECT min(id) FROM gb.sessions WHERE tenant_id = $tenant);
    new_id bigint;
BEGIN
    LOOP
        EXIT WHEN n > 20 AND to_regclass('public.writer_stop_$tenant') IS NOT NULL;
        n := n + 1;
        INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES ($tenant, s, 1, 'written ' || n)
          RETURNING id INTO new_id;
        IF n % 5 = 0 THEN
            UPDATE gb.messages SET body = body || ' (edited)'
             WHERE tenant_id = $tenant AND id = (SELECT min(id) FROM gb.messages
                                                  WHERE tenant_id = $tenant AND body NOT LIKE '%edited%');
        END IF;
        INSERT INTO public.acked VALUES ($tenant, new_id);
        COMMIT;
        PERFORM pg_sleep(0.01);
    END LOOP;
END \$\$;
}, \$o, \$e);
	wait_for(1, qq{SELECT count(*) >= 10 FROM public.acked WHERE tenant_id = $tenant}, 't');
	return $h;
}

sub stop_writer
{
	my ($tenant, $h) = @_;
	sq(1, "CREATE TABLE IF NOT EXISTS public.writer_stop_$tenant ()");
	$h->finish;
	return;
}

# Wait until shard S accepts connections again (after a restart).
sub wait_up
{
	my ($s) = @_;
	for (1 .. 1200)
	{
		my ($r) = psql_run($s, 'SELECT 1');
		return 1 if $r == 0;
		usleep(100_000);
	}
	return 0;
}

sub move_state
{
	my ($tenant) = @_;
	return sq(1, qq{SELECT coalesce((SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = $tenant
		ORDER BY started_at DESC LIMIT 1), 'none')});
}

# The tenant is still on shard 1, writable there, with the rows it had.
sub still_on_source
{
	my ($tenant, $what) = @_;
	is(sq(1, "SELECT gb_shard_for_tenant($tenant)") . sq(4, "SELECT gb_shard_for_tenant($tenant)"), '11',
		"$what: tenant $tenant is still served by shard 1 on both shards");
	is(sq(1, qq{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES ($tenant, 1, 1, 'after the fault')
		RETURNING shard_id}), '1', "$what: a write of tenant $tenant commits on shard 1");
	return;
}

# Hold the target's initial copy of TENANT's messages half-way: an
# uncommitted row on the target with the key of one of them (written as the
# apply would, past the fence) makes the table sync's COPY wait for it.
sub hold_target_copy
{
	my ($tenant) = @_;
	my ($o, $e) = ('', '');
	my $id = sq(1, "SELECT max(id) FROM gb.messages WHERE tenant_id = $tenant");
	my $h = start_psql(4, qq{BEGIN; SET LOCAL session_replication_role = replica;
		INSERT INTO gb.messages (shard_id, id, tenant_id, session_id, role, body) VALUES (1, $id, $tenant, 0, 1, 'holding the copy');
		SELECT pg_sleep(600); COMMIT;}, \$o, \$e);
	wait_for(4, q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'BEGIN; SET LOCAL%' AND wait_event = 'PgSleep'}, '1');
	return $h;
}

sub release_target
{
	my ($h) = @_;
	sq(4, q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; SET LOCAL%'
		OR query LIKE 'BEGIN; LOCK TABLE%'});
	$h->finish;
	return;
}

# The move of TENANT is in its copy: subscribed, a table sync on the target
# waiting for the row of hold_target_copy, its slot made here.
sub wait_copying
{
	my ($tenant, $what) = @_;
	is(wait_for(1, qq{SELECT state || ' ' || (target_subid IS NOT NULL) FROM gb_scale.tenant_move
		WHERE tenant_id = $tenant AND finished_at IS NULL}, 'copying true'), 'copying true', "$what: the move is copying");
	is(wait_for(4, q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'logical replication worker'
		AND wait_event_type = 'Lock'}, 't'), 't', "$what: the target's table sync is under way");
	is(wait_for(1, q{SELECT count(*) > 0 FROM pg_replication_slots WHERE slot_name LIKE 'pg\_%\_sync\_%'}, 't'), 't',
		"$what: with its slot on the source");
	return;
}

# The end of every fault run: the move of TENANT is done, shard 4 serves
# it with the rows shard 1 had before the last CALL (EXPECTED) and every
# message the writer committed, once; nothing of it on shard 1; no slot,
# publication or subscription anywhere.
sub check_moved
{
	my ($tenant, $expected, $what) = @_;
	is(move_state($tenant), 'done', "$what: the move is done");
	is(sq(1, "SELECT gb_shard_for_tenant($tenant)") . sq(4, "SELECT gb_shard_for_tenant($tenant)"), '44',
		"$what: both shards say shard 4 serves tenant $tenant");
	is(tenant_digest(4, $tenant), $expected, "$what: shard 4 holds every row of tenant $tenant (same ids, equal row hashes)");
	my $acked = sq(1, "SELECT string_agg(id::text, ',') FROM public.acked WHERE tenant_id = $tenant");
	my $n_acked = sq(1, "SELECT count(*) FROM public.acked WHERE tenant_id = $tenant");
	ok($n_acked >= 10, "$what: the writer committed $n_acked messages");
	is(sq(4, "SELECT count(*) FROM gb.messages WHERE tenant_id = $tenant AND id IN ($acked)"), $n_acked,
		"$what: every message the writer committed is on shard 4");
	is( sq(4, qq{SELECT (SELECT count(*) FROM (SELECT id FROM gb.messages WHERE tenant_id = $tenant GROUP BY id HAVING count(*) > 1) d)
		+ (SELECT count(*) FROM (SELECT id FROM gb.sessions WHERE tenant_id = $tenant GROUP BY id HAVING count(*) > 1) d)}),
		'0', "$what: each row once");
	is( sq(1, qq{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = $tenant)
		+ (SELECT count(*) FROM gb.sessions WHERE tenant_id = $tenant)}),
		'0', "$what: no row of tenant $tenant left on shard 1");
	is(no_move_objects(1) . ' / ' . no_move_objects(4), '0 0 0 / 0 0 0',
		"$what: no slot, publication or subscription on either shard");
	return;
}

my ($r, $o, $e);

# --- 4. the CALL's backend killed during the pause -----------------------
{
	my $what = 'kill -9 in the pause';
	my $w = start_writer(42);
	($r, $o, $e) = psql_run(1, 'SET gb_scale.move_switch = off; CALL gb_tenant_move(42, 4::smallint)');
	is($r, 0, "$what: the move of tenant 42 reaches catching up") or diag($e);
	# a lock on the target's directory holds the switch while the pause is on
	my ($lk_o, $lk_e, $mv_o, $mv_e) = ('', '', '', '');
	my $locker = start_psql(4, q{BEGIN; LOCK TABLE gb_scale.tenant_shard_map IN EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT;},
		\$lk_o, \$lk_e);
	wait_for(4, q{SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE c.relname = 'tenant_shard_map' AND l.mode = 'ExclusiveLock' AND l.granted}, '1');
	my $mover = start_psql(1, 'CALL gb_tenant_move(42, 4::smallint)', \$mv_o, \$mv_e);
	is(wait_for(4, q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%gb_tenant_assign(%' AND wait_event_type = 'Lock'}, '1'),
		'1', "$what: the switch waits for the target's directory");
	is(sq(1, q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 17 AND mode = 'ExclusiveLock' AND granted}),
		'1', "$what: the CALL holds the pause");
	is(wait_for(1, q{SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE '%INSERT INTO public.acked%' AND wait_event_type = 'Lock'}, 't'),
		't', "$what: the writer waits in the pause");
	my $pid = sq(1, q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL gb_tenant_move(42%'});
	ok(kill('KILL', $pid), "$what: SIGKILL to the CALL's backend ($pid)");
	$mover->finish;
	$w->finish;
	ok(wait_up(1), "$what: shard 1 is back after its crash restart");
	is(move_state(42), 'paused', "$what: the move stays paused");
	is(sq(1, q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 17}), '0',
		"$what: no pause lock is left");
	still_on_source(42, $what);
	# the target's switch, never committed, rolls back once it gets its lock
	release_target($locker);
	is(wait_for(4, q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%gb_tenant_assign(%' AND pid <> pg_backend_pid()}, '0'), '0',
		"$what: the target's half of the switch is gone");
	is(sq(4, 'SELECT gb_shard_for_tenant(42)'), '1', "$what: and did not commit");
	my $expected = tenant_digest(1, 42);
	($r, $o, $e) = psql_run(1, 'CALL gb_tenant_move(42, 4::smallint)');
	is($r, 0, "$what: a new CALL finishes the move") or diag($e);
	like($e, qr/going on with its move to shard 4 \(state paused\)/, "$what: from the pause");
	check_moved(42, $expected, $what);
}

# --- 1. the target killed during the initial copy ------------------------
{
	my $what = 'target killed in the copy';
	my $w = start_writer(43);
	my $holder = hold_target_copy(43);
	my ($mv_o, $mv_e) = ('', '');
	my $mover = start_psql(1, 'CALL gb_tenant_move(43, 4::smallint)', \$mv_o, \$mv_e);
	wait_copying(43, $what);
	# The kill hits the held copy of the messages, not the end of the
	# sessions' sync: PostgreSQL 15 drops a table sync's slot before it
	# commits the sync's end, and a crash in between leaves that sync
	# asking for a slot that is gone, for ever (the move can then only be
	# aborted).
	is(wait_for(4, q{SELECT count(*) FROM pg_subscription_rel WHERE srrelid = 'gb.sessions'::regclass AND srsubstate IN ('s', 'r')}, '1'),
		'1', "$what: the sessions' sync is over");
	my $pm = sq(4, q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'});
	open(my $fh, '<', "$base/shard4/data/postmaster.pid") or die "no postmaster.pid: $!";
	my $postmaster = <$fh>;
	close $fh;
	chomp $postmaster;
	ok(kill('KILL', $postmaster), "$what: SIGKILL to shard 4's postmaster");
	$mover->finish;
	like($mv_e, qr/ERROR:  \S+: could not .* on target shard 4/, "$what: the CALL fails, naming the target");
	$holder->finish;
	is(move_state(43), 'copying', "$what: the move stays copying");
	# the target's children leave once they see their postmaster gone
	my $started = 0;
	for (1 .. 120)
	{
		last if kill(0, $pm) == 0;
		usleep(250_000);
	}
	shard_restart(4, undef);
	ok(wait_up(4), "$what: shard 4 starts again");
	still_on_source(43, $what);
	stop_writer(43, $w);
	my $expected = tenant_digest(1, 43);
	($r, $o, $e) = psql_run(1, 'CALL gb_tenant_move(43, 4::smallint)');
	is($r, 0, "$what: a new CALL finishes the move") or diag($e);
	like($e, qr/going on with its move to shard 4 \(state copying\)/, "$what: from the copy");
	check_moved(43, $expected, $what);
}

# --- 3. the walsenders ended during the copy and the catch-up ------------
{
	my $what = 'walsenders ended';
	my $w = start_writer(44);
	my $holder = hold_target_copy(44);
	my ($mv_o, $mv_e) = ('', '');
	my $mover = start_psql(1, [ 'SET gb_scale.move_switch = off', 'CALL gb_tenant_move(44, 4::smallint)' ], \$mv_o, \$mv_e);
	wait_copying(44, $what);
	my $sub = sq(1, q{SELECT subscription FROM gb_scale.tenant_move WHERE tenant_id = 44 AND finished_at IS NULL});
	# every walsender here is the move's: its apply's and its table syncs'
	my $walsenders = q{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'walsender'};
	ok(sq(1, $walsenders) >= 2, "$what: the apply's and the table sync's walsenders are ended during the copy");
	release_target($holder);
	$mover->finish;
	is($mv_e =~ /ERROR/ ? $mv_e : '', '', "$what: the same CALL goes on");
	like($mv_e, qr/tenant 44: the subscription on shard 4 failed \d+ time\(s\) during this call; its workers retry/,
		"$what: the CALL reports the subscription's errors");
	like($mv_e, qr/tenant 44: caught up with shard 4/, "$what: and catches up");
	is(move_state(44), 'catching up', "$what: the move is catching up");
	is(wait_for(1, qq{SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$sub' AND active}, '1'), '1',
		"$what: its walsender streams again");
	is(sq(1, $walsenders), '1', "$what: the walsender ended while catching up");
	sq(1, q{INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (44, 1, 1, 'after the walsender')});
	stop_writer(44, $w);
	my $expected = tenant_digest(1, 44);
	($r, $o, $e) = psql_run(1, 'CALL gb_tenant_move(44, 4::smallint)');
	is($r, 0, "$what: a new CALL finishes the move") or diag($e);
	check_moved(44, $expected, $what);
}

# --- 5. the caller's psql killed during the copy -------------------------
{
	my $what = 'caller killed in the copy';
	my $w = start_writer(45);
	my $holder = hold_target_copy(45);
	my ($mv_o, $mv_e) = ('', '');
	my $mover = start_psql(1, 'CALL gb_tenant_move(45, 4::smallint)', \$mv_o, \$mv_e);
	wait_copying(45, $what);
	$mover->kill_kill;
	is(wait_for(1, q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CALL gb_tenant_move(45%'}, '0', 120), '0',
		"$what: the CALL's backend ends with its client");
	is(move_state(45), 'copying', "$what: the move stays copying");
	still_on_source(45, $what);
	release_target($holder);
	# the target loses the subscription, keeping the slots on the source
	my $sub = sq(1, q{SELECT subscription FROM gb_scale.tenant_move WHERE tenant_id = 45 AND finished_at IS NULL});
	sq(4, qq{ALTER SUBSCRIPTION "$sub" DISABLE});
	sq(4, qq{ALTER SUBSCRIPTION "$sub" SET (slot_name = NONE)});
	sq(4, qq{DROP SUBSCRIPTION "$sub"});
	like(q_error(1, 'CALL gb_tenant_move(45, 4::smallint)'),
		qr/^55000: the subscription gb_move_45_\d+ of the move of tenant 45 is gone from target shard 4/,
		"$what: a new CALL sees the target's subscription gone");
	($r, $o, $e) = psql_run(1, 'SELECT gb_tenant_move_abort(45)');
	is($r, 0, "$what: gb_tenant_move_abort(45)") or diag($e);
	is(move_state(45), 'aborted', "$what: the move is aborted");
	is(no_move_objects(1) . ' / ' . no_move_objects(4), '0 0 0 / 0 0 0',
		"$what: no slot, publication or subscription left");
	is( sq(4, q{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 45) + (SELECT count(*) FROM gb.sessions WHERE tenant_id = 45)}),
		'0', "$what: no row of tenant 45 on shard 4");
	still_on_source(45, "$what, aborted");
	stop_writer(45, $w);
	my $expected = tenant_digest(1, 45);
	($r, $o, $e) = psql_run(1, 'CALL gb_tenant_move(45, 4::smallint)');
	is($r, 0, "$what: a new move succeeds") or diag($e);
	check_moved(45, $expected, $what);
}

# --- 2. the source stopped immediately during the catch-up ---------------
{
	my $what = 'source stopped in the catch-up';
	my $w = start_writer(46);
	($r, $o, $e) = psql_run(1, 'SET gb_scale.move_switch = off; CALL gb_tenant_move(46, 4::smallint)');
	is($r, 0, "$what: the move of tenant 46 reaches catching up") or diag($e);
	# its subscription disabled, the target falls behind: a CALL waits
	my $sub = sq(1, q{SELECT subscription FROM gb_scale.tenant_move WHERE tenant_id = 46 AND finished_at IS NULL});
	sq(4, qq{ALTER SUBSCRIPTION "$sub" DISABLE});
	my ($mv_o, $mv_e) = ('', '');
	my $mover = start_psql(1, [ 'SET gb_scale.move_switch = off', 'SET gb_scale.move_max_lag = 0', 'CALL gb_tenant_move(46, 4::smallint)' ],
		\$mv_o, \$mv_e);
	is(wait_for(1, q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CALL gb_tenant_move(46%' AND wait_event = 'Extension'}, '1'),
		'1', "$what: a CALL waits for the catch-up");
	shard_restart(1, 'immediate', 0);
	$mover->finish;
	$w->finish;
	like($mv_e, qr/server closed the connection|terminating connection/, "$what: the CALL is cut off");
	shard_restart(1, undef);
	ok(wait_up(1), "$what: shard 1 starts again");
	is(move_state(46), 'catching up', "$what: the move is still catching up");
	still_on_source(46, $what);
	sq(4, qq{ALTER SUBSCRIPTION "$sub" ENABLE});
	my $expected = tenant_digest(1, 46);
	($r, $o, $e) = psql_run(1, 'CALL gb_tenant_move(46, 4::smallint)');
	is($r, 0, "$what: a new CALL finishes the move") or diag($e);
	like($e, qr/going on with its move to shard 4 \(state catching up\)/, "$what: from the catch-up");
	check_moved(46, $expected, $what);
}

# Tenant 47 never moved: untouched on shard 1.
is(sq(1, 'SELECT count(*) FROM gb.messages WHERE tenant_id = 47') . ' ' . sq(4, 'SELECT count(*) FROM gb.messages WHERE tenant_id = 47'),
	'5000 0', 'tenant 47, never moved, keeps its rows on shard 1 only');

done_testing();
