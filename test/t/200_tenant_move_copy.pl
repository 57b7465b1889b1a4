# Moving a tenant online (issue 17), its first part: copy and catch-up.
# Two shards started by test/shards.sh (1 USA, 4 DEU, wal_level = logical):
#  1. the preconditions, each with its SQLSTATE: a NULL argument (22004),
#     a non-superuser (42501),
#     CALL inside a transaction block (2D000), a replica identity without
#     the tenant column (55000, naming the table), a table (42P01) or column
#     (42703) missing on the target, and wal_level below logical (55000,
#     naming the setting; on a separate instance);
#  2. CALL gb_tenant_move(42, 4) with gb_scale.move_switch = off (it stops
#     once caught up) while a writer inserts, updates and deletes
#     rows of tenant 42 (and of tenant 43) on shard 1: it returns caught up,
#     gb_scale.tenant_moves shows the state and the rows copied, and the
#     target then holds exactly the tenant's rows (same ids, same row
#     contents), none of tenant 43;
#  3. gb_tenant_move_abort leaves no slot on either shard, no publication or
#     subscription, no row of the tenant on the target; the tenant is still
#     served by shard 1 with all its rows;
#  4. an abort while the target is down drops the slots and the publication
#     at once and leaves the move failed; a second abort, once the target is
#     back, removes its subscription and copied rows.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest qw(shards_start psql_run sq q_error tenant_digest);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use Test::More;
use Time::HiRes qw(usleep);

my $writer;

END
{
	my $rc = $?;
	$writer->kill_kill if $writer;
	$? = $rc;
}

shards_start(2);
my $base = $ENV{GB_SHARDS_DIR};
my %conn = %GbScaleTest::shard_conn;

my @tables = ('gb.sessions', 'gb.messages', 'gb.notes');

my $call = 'CALL gb_tenant_move(42, 4::smallint)';
# The moves here stop once caught up (test/t/201_tenant_move_switch.pl
# switches).
my $call_copy = 'SET gb_scale.move_switch = off; ' . $call;

# --- the tenant's data on shard 1 ---------------------------------------
sq(1, q{
	INSERT INTO gb.sessions (tenant_id, user_ref)
	  SELECT t, 'user' || g FROM generate_series(1, 2000) g, (VALUES (42), (43)) v(t);
	INSERT INTO gb.messages (tenant_id, session_id, role, body)
	  SELECT s.tenant_id, s.id, 1 + g % 2, 'message ' || g || ' of ' || s.user_ref
	    FROM gb.sessions s, generate_series(1, 10) g;
});
is(sq(1, 'SELECT count(*) FROM gb.messages WHERE tenant_id = 42'), '20000', 'tenant 42 has 20000 messages on shard 1');

# --- preconditions --------------------------------------------------------
like(q_error(1, 'CALL gb_tenant_move(NULL, 4::smallint)'), qr/^22004:/, 'a NULL tenant: 22004');
like(q_error(1, 'BEGIN; ' . $call . '; COMMIT;'), qr/^2D000: .*CALL outside a transaction block/,
	'CALL inside a transaction block: 2D000');

sq(1, q{
	CREATE ROLE mover LOGIN;
	GRANT EXECUTE ON PROCEDURE gb_tenant_move(bigint, smallint, interval) TO mover;
});
like(q_error(1, $call, 'mover'), qr/^42501: permission denied to move a tenant/,
	'a non-superuser may not move a tenant (42501), even with EXECUTE');
like(q_error(1, $call, 'gb_app'), qr/^42501:/, 'PUBLIC may not call gb_tenant_move');

like(q_error(1, $call), qr/^55000: the replica identity of table gb\.(sessions|messages) does not include its tenant column tenant_id/,
	'a replica identity without the tenant column: 55000 naming the table');
# Both ways out that the hint names: FULL, or a unique index with the column.
sq(1, q{
	ALTER TABLE gb.sessions REPLICA IDENTITY FULL;
	CREATE UNIQUE INDEX messages_identity ON gb.messages (shard_id, id, tenant_id);
	ALTER TABLE gb.messages REPLICA IDENTITY USING INDEX messages_identity;
});

# A third tenant table, missing on the target, then missing a column there.
sq(1, q{
	CREATE TABLE gb.notes (
	    shard_id smallint NOT NULL DEFAULT gb_current_shard(),
	    id bigint NOT NULL DEFAULT gb_next_id(),
	    tenant_id bigint NOT NULL,
	    note text NOT NULL,
	    PRIMARY KEY (shard_id, id, tenant_id));
	SELECT gb_tenant_isolation_enable('gb.notes');
	INSERT INTO gb.notes (tenant_id, note) SELECT 42, 'note ' || g FROM generate_series(1, 50) g;
});
like(q_error(1, $call), qr/^42P01: table gb\.notes does not exist on target shard 4/,
	'a table missing on the target: 42P01 naming it');
sq(4, q{
	CREATE TABLE gb.notes (
	    shard_id smallint NOT NULL DEFAULT gb_current_shard(),
	    id bigint NOT NULL DEFAULT gb_next_id(),
	    tenant_id bigint NOT NULL,
	    PRIMARY KEY (shard_id, id, tenant_id));
	SELECT gb_tenant_isolation_enable('gb.notes');
});
like(q_error(1, $call), qr/^42703: table gb\.notes on target shard 4 lacks column\(s\) note/,
	'a column missing on the target: 42703 naming it');
sq(4, q{ALTER TABLE gb.notes ADD COLUMN note text NOT NULL});
is(sq(1, 'SELECT count(*) FROM gb_scale.tenant_move'), '0', 'failed preconditions leave no move behind');
is(sq(1, 'SELECT count(*) FROM pg_replication_slots') . sq(1, 'SELECT count(*) FROM pg_publication'), '00',
	'nor a slot or publication');

# wal_level below logical, on an instance of its own.
{
	my $node = PostgreSQL::Test::Cluster->new('replica_wal');
	$node->init;
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'gb_scale'\nwal_level = replica\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
	my ($ret, $o, $e) = $node->psql('postgres', $call, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($e, qr/ERROR:\s+55000: moving tenant 42 needs wal_level = logical/, 'wal_level = replica: 55000 naming the setting');
	like($e, qr/HINT:\s+Set wal_level = logical/, 'with the setting to change');
	$node->stop;
}

# --- the move, while the tenant writes -----------------------------------
my $writer_sql = q{
DO $$
DECLARE
    n int := 0;
    s bigint := (SELECT min(id) FROM gb.sessions WHERE tenant_id = 42);
BEGIN
    LOOP
        EXIT WHEN n > 200 AND to_regclass('public.writer_go') IS NOT NULL;
        n := n + 1;
        INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (42, s, 1, 'written ' || n);
        INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES (43, s, 1, 'other ' || n);
        IF n % 5 = 0 THEN
            UPDATE gb.messages SET body = body || ' (edited)'
             WHERE tenant_id = 42 AND id = (SELECT min(id) FROM gb.messages WHERE tenant_id = 42 AND body NOT LIKE '%edited%');
        END IF;
        IF n % 7 = 0 THEN
            DELETE FROM gb.messages WHERE tenant_id = 42
               AND id = (SELECT max(id) FROM gb.messages WHERE tenant_id = 42 AND body LIKE 'written %');
        END IF;
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
END $$;
};
my ($w_out, $w_err) = ('', '');
$writer = IPC::Run::start(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', "$conn{1} user=postgres", '-c', $writer_sql ],
	'>', \$w_out, '2>', \$w_err);
# The writer is writing before the move starts.
my $before = sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 43});
for (1 .. 600)
{
	last if sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 43}) > $before + 20;
	usleep(50_000);
}

my ($r, $o, $e) = psql_run(1, $call_copy);
is($r, 0, 'CALL gb_tenant_move(42, 4) returns') or diag($e);
like($e, qr/NOTICE:  00000: tenant 42: moving to shard 4, tables gb\.sessions, gb\.messages, gb\.notes/,
	'NOTICE: the move starts, with its tables');
like($e, qr/NOTICE:  00000: tenant 42: initial copy to shard 4 done/, 'NOTICE: the copy is done');
like($e, qr/NOTICE:  00000: tenant 42: caught up with shard 4/, 'NOTICE: caught up');
unlike($e, qr/password/i, 'no password in what the move says');

is( sq(1, q{SELECT source_shard || ' ' || target_shard || ' ' || state || ' ' || (finished_at IS NULL)
	|| ' ' || (rows_copied->>'gb.sessions') || ' ' || ((rows_copied->>'gb.messages')::int >= 20000)
	|| ' ' || (rows_copied->>'gb.notes') || ' ' || (lag_bytes IS NOT NULL) || ' ' || (error IS NULL)
	FROM gb_scale.tenant_moves WHERE tenant_id = 42}),
	'1 4 catching up true 2000 true 50 true true',
	'gb_scale.tenant_moves: catching up, rows copied per table, a lag');
like(q_error(1, 'CALL gb_tenant_move(42, 2::smallint)'), qr/^55006: tenant 42 is already being moved to shard 4/,
	'one move of a tenant at a time');
is(sq(1, q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'gb\_move\_42\_%' AND NOT temporary}), '1',
	'the move has its slot on the source');
is(sq(4, q{SELECT count(*) FROM pg_subscription WHERE subname LIKE 'gb\_move\_42\_%' AND subenabled}), '1',
	'and its subscription on the target');

# Stop the writer, then the target converges to exactly the tenant's rows.
sq(1, 'CREATE TABLE public.writer_go ()');
$writer->finish;
is($w_err, '', 'the writer ran without an error');
my $writes = sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 42 AND body LIKE 'written %'});
ok($writes > 0, "the writer wrote rows of tenant 42 during the move ($writes kept)");
ok(sq(1, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 42 AND body LIKE '%(edited)'}) > 0,
	'and updated some');
my $source = tenant_digest(1, 42, @tables);
my $target = '';
for (1 .. 300)
{
	$target = tenant_digest(4, 42, @tables);
	last if $target eq $source;
	usleep(100_000);
}
is($target, $source, 'the target holds every row of tenant 42 (same ids, equal row hashes)');
is(sq(4, q{SELECT count(*) FROM gb.messages WHERE tenant_id <> 42}) . sq(4, q{SELECT count(*) FROM gb.sessions WHERE tenant_id <> 42}),
	'00', 'and no row of another tenant');
is(sq(1, q{SELECT gb_shard_for_tenant(42)}), '1', 'the tenant is still served by shard 1');

# --- TRUNCATE while the move runs -----------------------------------------
# A row filter does not apply to TRUNCATE: the publication leaves it out (a
# TRUNCATE here would otherwise empty the table on the target, every
# tenant's rows), and a TRUNCATE of a moved table is refused on both sides,
# since it would remove the tenant's rows on one shard only.  CASCADE and
# partitions reach the same tables.
is(sq(1, q{SELECT string_agg(pubinsert || ' ' || pubupdate || ' ' || pubdelete || ' ' || pubtruncate, ',') FROM pg_publication}),
	'true true true false', 'the move publishes inserts, updates and deletes, not truncate');
for my $s (4, 1)
{
	sq($s, q{
		CREATE TABLE gb.bots (id int PRIMARY KEY);
		ALTER TABLE gb.notes ADD COLUMN bot_id int REFERENCES gb.bots;
		CREATE TABLE public.scratch (x int);
	});
}
like(q_error(1, 'TRUNCATE gb.messages'),
	qr/^55000: cannot truncate table gb\.messages while tenant move gb_move_42_\d+ runs in this database/,
	'TRUNCATE of a moved table on the source: 55000');
like(q_error(4, 'TRUNCATE gb.sessions, public.scratch'),
	qr/^55000: cannot truncate table gb\.sessions while tenant move gb_move_42_\d+ runs/,
	'on the target too');
like(q_error(1, 'TRUNCATE gb.bots CASCADE'), qr/^55000: cannot truncate table gb\.notes /,
	'a CASCADE that reaches a moved table: 55000 naming it');
is((psql_run(1, 'TRUNCATE public.scratch'))[0], 0, 'other tables may be truncated');
is(sq(1, q{SELECT count(*) FROM gb.messages}) > 0 && sq(4, q{SELECT count(*) FROM gb.messages WHERE tenant_id = 42}) > 0
	? 'kept' : 'lost', 'kept', 'the refused TRUNCATEs removed nothing');

# --- abort ---------------------------------------------------------------
my $kept = tenant_digest(1, 42, @tables);
($r, $o, $e) = psql_run(1, 'SELECT gb_tenant_move_abort(42)');
is($r, 0, 'gb_tenant_move_abort(42)') or diag($e);
like($e, qr/move to shard 4 aborted; the tenant stays on shard 1/, 'NOTICE: aborted');
is(sq(1, 'SELECT count(*) FROM pg_replication_slots'), '0', 'no slot left on the source');
is(sq(4, 'SELECT count(*) FROM pg_replication_slots'), '0', 'nor on the target');
is(sq(1, 'SELECT count(*) FROM pg_publication'), '0', 'no publication left');
is(sq(4, 'SELECT count(*) FROM pg_subscription'), '0', 'no subscription left');
is( sq(4, q{SELECT (SELECT count(*) FROM gb.sessions WHERE tenant_id = 42) + (SELECT count(*) FROM gb.messages WHERE tenant_id = 42)
	+ (SELECT count(*) FROM gb.notes WHERE tenant_id = 42)}),
	'0', 'no row of the tenant left on the target');
is(tenant_digest(1, 42, @tables), $kept, 'the source keeps every row of the tenant');
is(sq(1, q{SELECT state || ' ' || (finished_at IS NOT NULL) || ' ' || (error IS NULL) FROM gb_scale.tenant_moves WHERE tenant_id = 42}),
	'aborted true true', 'gb_scale.tenant_moves: aborted');
like(q_error(1, 'SELECT gb_tenant_move_abort(42)'), qr/^55000: tenant 42 has no move in progress/,
	'a second abort: nothing in progress');

# --- abort while the target is down --------------------------------------
# The slots and the publication go at once (nothing holds WAL on the
# source); the move stays failed, saying what remains on the target, until
# a second abort, once the target is back, cleans that too.
($r, $o, $e) = psql_run(1, $call_copy);
is($r, 0, 'a second move of tenant 42 reaches catching up') or diag($e);
my $pgdata4 = "$base/shard4/data";
system('pg_ctl', '-D', $pgdata4, '-m', 'immediate', '-w', 'stop') == 0 or die 'could not stop shard 4';
($r, $o, $e) = psql_run(1, 'SELECT gb_tenant_move_abort(42)');
is($r, 0, 'gb_tenant_move_abort with the target down returns');
like($e, qr/WARNING: .*target shard 4 could not be cleaned/, 'with a WARNING about the target');
is(sq(1, 'SELECT count(*) FROM pg_replication_slots') . sq(1, 'SELECT count(*) FROM pg_publication'), '00',
	'no slot or publication left on the source');
like(sq(1, q{SELECT state || ': ' || error FROM gb_scale.tenant_moves WHERE tenant_id = 42 AND finished_at IS NULL}),
	qr/^failed: abort: target shard 4 could not be cleaned .*subscription gb_move_42_\d+ and the tenant's copied rows may remain there/,
	'the move is failed, saying what remains on the target');
is(sq(1, 'SELECT gb_shard_for_tenant(42)'), '1', 'the tenant is still served by shard 1');
system('env', 'SHARD_ID=4', 'pg_ctl', '-D', $pgdata4, '-l', "$base/shard4/server.log", '-w', 'start') == 0
  or die 'could not start shard 4';
($r, $o, $e) = psql_run(1, 'SELECT gb_tenant_move_abort(42)');
is($r, 0, 'a second abort, with the target back') or diag($e);
is( sq(4, q{SELECT (SELECT count(*) FROM pg_subscription) + (SELECT count(*) FROM pg_replication_slots)
	+ (SELECT count(*) FROM gb.messages WHERE tenant_id = 42) + (SELECT count(*) FROM gb.sessions WHERE tenant_id = 42)}),
	'0', 'the target has no subscription, slot or row of the tenant left');
is(sq(1, 'SELECT count(*) FROM pg_replication_slots'), '0', 'nor the source a slot');
is(sq(1, q{SELECT string_agg(state, ' ' ORDER BY started_at) FROM gb_scale.tenant_moves WHERE tenant_id = 42}),
	'aborted aborted', 'both moves are aborted');
is(tenant_digest(1, 42, @tables), $kept, 'the source still holds every row of the tenant');

is((psql_run(4, 'TRUNCATE gb.notes, gb.sessions'))[0], 0, 'with no move running, TRUNCATE works again');

# The view: for gb_scale_admin, not for PUBLIC.
like(q_error(1, 'SELECT * FROM gb_scale.tenant_moves', 'gb_app'), qr/^42501:/, 'PUBLIC may not read the moves');
sq(1, 'GRANT gb_scale_admin TO mover');
is(sq(1, 'SELECT count(*) FROM gb_scale.tenant_moves', 'mover'), '2', 'gb_scale_admin may');

done_testing();
