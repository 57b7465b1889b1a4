# Moving a tenant online (issue 17): installing the fence must not lock out
# other tenants' writers.  The move puts its fence trigger on every tenant
# table, on the source and on the target; CREATE TRIGGER takes SHARE ROW
# EXCLUSIVE on each table.  Taken table after table, the move held
# gb.sessions' lock while it waited for gb.messages', and a General Bots
# write (a message, then its session) that held gb.messages deadlocked with
# it: every tenant's writes on the shard waited deadlock_timeout, then one
# failed with 40P01 (seen by bench/tenant_move.sh).  Two shards (1, 4):
#  1. a transaction of tenant 43 on shard 1 has inserted a message and
#     keeps its transaction open while CALL gb_tenant_move(42, 4) starts
#     (held at its first write by a lock on gb_scale.tenant_move until
#     then); it then updates its session: this must not wait for the move
#     (lock_timeout 500 ms), nor must a new write of tenant 44 to gb.sessions;
#  2. the same on shard 4 (tenant 3000001) while the move subscribes there;
#  3. the move is done, the fence and the pacing trigger are on both
#     shards' tables, nothing failed;
#  4. gb_scale.move_rate = 100 on both shards, tenant 42 moves back: the
#     target's table sync sleeps at the pace, its shard_id rewrite and the
#     source's purge go in committed steps (seen half done) and sleep too,
#     and the CALL holds no snapshot on the source while the target rewrites;
#     in the end every row of the tenant is on shard 1 with shard_id 1.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use File::Copy;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use GbScaleTest;

my $script = "$FindBin::RealBin/../shards.sh";

unless ($ENV{PG_CONFIG})
{
	for my $d (split /:/, $ENV{PATH})
	{
		if (-x "$d/pg_config") { $ENV{PG_CONFIG} = "$d/pg_config"; last; }
	}
}

my $base = PostgreSQL::Test::Utils::tempdir('shards');
$ENV{GB_SHARDS_DIR} = $base;
my $started = 0;

END
{
	my $rc = $?;
	if ($started)
	{
		for my $log (glob("$base/shard*/server.log"))
		{
			my ($id) = $log =~ m{/shard(\d+)/server\.log$};
			copy($log, "$PostgreSQL::Test::Utils::log_path/209_tenant_move_fence_locks_shard$id.log");
		}
		system($script, 'stop');
	}
	$? = $rc;
}

my ($out, $err) = ('', '');
$started = 1;
IPC::Run::run([ $script, 'start', '2' ], '>', \$out, '2>', \$err)
  or BAIL_OUT("test/shards.sh start failed: $err");
my %conn;
for my $s (1, 4)
{
	($conn{$s}) = $out =~ /^export GB_SHARD_${s}_CONNSTR='([^']*)'/m;
}

sub sq
{
	my ($s, $sql) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', "$conn{$s} user=postgres", '-f', '-' ],
		'<', \$sql, '>', \$o, '2>', \$e, IPC::Run::timeout(600))
	  or die "shard $s: $sql\n$e";
	chomp $o;
	return $o;
}

# A psql session on shard S kept open (its statements by async_start and
# async_wait of GbScaleTest).
sub session
{
	my ($s) = @_;
	my %h = (stdin => '', stdout => '', stderr => '');
	$h{run} = IPC::Run::start(
		[ 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=0', '-v', 'VERBOSITY=verbose',
		  '-d', "$conn{$s} user=postgres" ],
		'<', \$h{stdin}, '>', \$h{stdout}, '2>', \$h{stderr});
	return \%h;
}

# SQL on session P; returns its output, dies on an error.
sub session_sql
{
	my ($p, $sql) = @_;
	my ($o, $e) = async_wait($p, async_start($p, $sql), 120);
	die "$sql\n$e" if $e =~ /ERROR/;
	chomp $o;
	return $o;
}

sub session_end
{
	my ($p) = @_;
	$p->{stdin} .= "\\q\n";
	$p->{run}->finish;
	return;
}

# Poll SQL on shard S until it returns 't' (or give up after SECS, 60 s by
# default).
sub wait_until
{
	my ($s, $sql, $secs) = @_;
	for (1 .. ($secs // 60) * 20)
	{
		return 1 if sq($s, $sql) eq 't';
		usleep(50_000);
	}
	return 0;
}

# A General Bots write's second half, as the tenant's own transaction
# does it, and a new write of another tenant; both must not wait.
sub session_update
{
	my ($p, $tenant) = @_;
	my ($o, $e) = async_wait($p, async_start($p,
		"SET lock_timeout = '500ms'; UPDATE gb.sessions SET last_active = now() WHERE tenant_id = $tenant; SELECT 'updated'"), 120);
	diag($e) if $e =~ /ERROR/;
	chomp $o;
	return $o;
}

for my $s (1, 4)
{
	sq($s, q{
		ALTER TABLE gb.sessions REPLICA IDENTITY FULL;
		ALTER TABLE gb.messages REPLICA IDENTITY FULL;
	});
}
sq(1, q{
	INSERT INTO gb.sessions (tenant_id, user_ref) SELECT t, 'user' || g FROM generate_series(1, 100) g, (VALUES (42), (43), (44)) v(t);
	INSERT INTO gb.messages (tenant_id, session_id, role, body)
	  SELECT s.tenant_id, s.id, 1, 'message ' || g FROM gb.sessions s, generate_series(1, 10) g;
});
sq(4, q{
	INSERT INTO gb.sessions (tenant_id, user_ref) SELECT t, 'user' || g FROM generate_series(1, 100) g, (VALUES (3000001), (3000002)) v(t);
	INSERT INTO gb.messages (tenant_id, session_id, role, body)
	  SELECT s.tenant_id, s.id, 1, 'message ' || g FROM gb.sessions s, generate_series(1, 10) g;
});
is(sq(1, 'SELECT count(*) FROM pg_trigger WHERE tgname = \'gb_tenant_fence\'')
	  . sq(4, 'SELECT count(*) FROM pg_trigger WHERE tgname = \'gb_tenant_fence\''), '00', 'no fence yet on either shard');

# Writers of other tenants with a message inserted, transactions open.
my $w1 = session(1);
session_sql($w1, q{BEGIN; INSERT INTO gb.messages (tenant_id, session_id, role, body)
	SELECT 43, min(id), 1, 'open' FROM gb.sessions WHERE tenant_id = 43});
my $w4 = session(4);
session_sql($w4, q{BEGIN; INSERT INTO gb.messages (tenant_id, session_id, role, body)
	SELECT 3000001, min(id), 1, 'open' FROM gb.sessions WHERE tenant_id = 3000001});

# The move, held at its first write until the writer's message is in.
my $hold = session(1);
session_sql($hold, 'BEGIN; LOCK TABLE gb_scale.tenant_move IN SHARE MODE');
my $mover = session(1);
my $move = async_start($mover, 'CALL gb_tenant_move(42, 4::smallint)');
ok(wait_until(1, q{SELECT EXISTS (SELECT FROM pg_locks WHERE relation = 'gb_scale.tenant_move'::regclass AND NOT granted)}),
	'the move waits at its first write');
session_sql($hold, 'COMMIT');
# Give the move the time to reach the fence: it either waits for
# gb.messages' lock (holding gb.sessions'), or tries again without holding
# any, which shows nowhere: a few seconds then.
wait_until(1, q{SELECT EXISTS (SELECT FROM pg_locks WHERE relation = 'gb.messages'::regclass AND NOT granted)}, 3);

# 1. The source: the writer finishes its write, another tenant writes.
is(session_update($w1, 43), 'updated', 'shard 1: the open write of tenant 43 updates its session without waiting for the move');
is(sq(1, q{SET lock_timeout = '500ms'; INSERT INTO gb.sessions (tenant_id, user_ref) VALUES (44, 'new') RETURNING 'inserted'}),
	'inserted', 'shard 1: a new write of tenant 44 does not wait for the move');
is(sq(1, q{SELECT count(*) FROM gb_scale.tenant_moves}), '0', 'the move has not gone past the fence meanwhile');
session_sql($w1, 'COMMIT');

# 2. The target, once the move subscribes there.
ok(wait_until(4, q{SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'SELECT gb_scale.tenant_move_subscribe%')}),
	'the move subscribes on shard 4');
usleep(300_000);
is(session_update($w4, 3000001), 'updated',
	'shard 4: the open write of tenant 3000001 updates its session without waiting for the move');
is(sq(4, q{SET lock_timeout = '500ms'; INSERT INTO gb.sessions (tenant_id, user_ref) VALUES (3000002, 'new') RETURNING 'inserted'}),
	'inserted', 'shard 4: a new write of tenant 3000002 does not wait for the move');
session_sql($w4, 'COMMIT');

# 3. The move goes on once the writers are done.
my ($mo, $me) = async_wait($mover, $move, 300);
unlike($me, qr/ERROR/, 'the move ran without an error') or diag($me);
is(sq(1, q{SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = 42}), 'done', 'the move is done');
is(sq(1, 'SELECT gb_shard_for_tenant(42)') . sq(4, 'SELECT gb_shard_for_tenant(42)'), '44', 'tenant 42 is on shard 4');
is(sq(1, q{SELECT string_agg(tgrelid::regclass::text, ' ' ORDER BY tgrelid::regclass::text) FROM pg_trigger WHERE tgname = 'gb_tenant_fence'}),
	'gb.messages gb.sessions', 'the fence is on both tables of shard 1');
is(sq(4, q{SELECT string_agg(tgrelid::regclass::text, ' ' ORDER BY tgrelid::regclass::text) FROM pg_trigger WHERE tgname = 'gb_tenant_fence'}),
	'gb.messages gb.sessions', 'and of shard 4');
is(sq(4, q{SELECT string_agg(DISTINCT tgenabled::text, ',') || ' ' || count(*) FILTER (WHERE tgparentid = 0)
	FROM pg_trigger WHERE tgname = 'gb_tenant_move_pace'}),
	'R 2', 'the pacing trigger is on both tables of shard 4 and their partitions, enabled on replica only');
is(sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 43 AND body = 'open'}), '1', 'the writer of shard 1 committed');
is(sq(4, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 3000001 AND body = 'open'}), '1', 'the writer of shard 4 committed');

# 4. Paced: tenant 42 back to shard 1, 100 rows a second on each shard.
for my $s (1, 4)
{
	sq($s, q{ALTER SYSTEM SET gb_scale.move_rate = 100; SELECT pg_reload_conf()});
}
my $tenant_rows = q{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 42)
	+ (SELECT count(*) FROM gb.sessions WHERE tenant_id = 42)};
my $total = sq(4, $tenant_rows);
cmp_ok($total, '>=', 1100, "tenant 42 has $total rows on shard 4");
my $mover4 = session(4);
my $mover4_pid = session_sql($mover4, 'SELECT pg_backend_pid()');
$move = async_start($mover4, 'CALL gb_tenant_move(42, 1::smallint)');
ok(wait_until(1, q{SELECT EXISTS (SELECT FROM pg_stat_activity
	WHERE backend_type = 'logical replication worker' AND wait_event_type = 'Extension')}),
	'shard 1: the table sync of the copy sleeps at the pace');
my $rewriting = qq{SELECT (SELECT count(*) FROM gb.messages WHERE tenant_id = 42 AND shard_id = 1)
	+ (SELECT count(*) FROM gb.sessions WHERE tenant_id = 42 AND shard_id = 1) BETWEEN 1 AND $total - 1};
ok(wait_until(1, $rewriting, 120), 'shard 1: the shard_id rewrite is seen half done: it commits step by step');
# While the target rewrites, the CALL on the source only waits for it: it
# must not hold a snapshot there, which would keep vacuum from removing any
# tenant's dead rows on the source for the whole rewrite.
my ($seen, $held) = (0, 0);
for (1 .. 20)
{
	my $xmin = sq(4, qq{SELECT backend_xmin IS NOT NULL FROM pg_stat_activity WHERE pid = $mover4_pid});
	if (sq(1, $rewriting) eq 't')
	{
		$seen++;
		$held++ if $xmin eq 't';
	}
	usleep(50_000);
}
ok($seen > 0 && $held == 0, "shard 4: the CALL holds no snapshot while shard 1 rewrites ($held of $seen samples held one)");
ok(wait_until(4, qq{SELECT ($tenant_rows) BETWEEN 1 AND $total - 1}, 120),
	'shard 4: the purge is seen half done: it commits step by step');
($mo, $me) = async_wait($mover4, $move, 300);
unlike($me, qr/ERROR/, 'the paced move ran without an error') or diag($me);
like($me, qr/move to shard 1 done, $total row\(s\) purged here/, 'the purge counted every row of the tenant');
is(sq(1, $tenant_rows) . '/' . sq(4, $tenant_rows), "$total/0", 'every row of tenant 42 is on shard 1, none on shard 4');
is(sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 42 AND shard_id <> 1}), '0', 'all with shard_id 1');
for my $s (1, 4)
{
	sq($s, q{ALTER SYSTEM RESET gb_scale.move_rate; SELECT pg_reload_conf()});
}

session_end($_) for ($w1, $w4, $hold, $mover, $mover4);
done_testing();
