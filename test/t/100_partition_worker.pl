# The partition maintenance background worker (issue 7):
#  1. with shared_preload_libraries = 'gb_scale', it maintains the tables of
#     the databases in gb_scale.maintenance_databases every
#     gb_scale.maintenance_naptime seconds: premade partitions come back when
#     missing, retention retires old ones, stray rows leave the default
#     partition; databases without the extension, or that do not exist, are
#     skipped and nothing crashes;
#  2. it acts as the table's owner in a security-restricted operation: the
#     DDL it runs is seen by an event trigger as the owner, the owner's index
#     expression runs as the owner when rows are moved, without superuser
#     rights, and the owner's trigger does not fire for a move (moving a row
#     is no DELETE and INSERT);
#  3. naptime 0 turns it off; a SIGHUP that changes the database list or the
#     naptime is obeyed;
#  4. without a default partition it retires partitions with DETACH
#     PARTITION ... CONCURRENTLY: while a long transaction holds the parent
#     the detach is left pending (inserts keep flowing), and it is finished
#     once the transaction ends; a concurrent detach that a user started and
#     cancelled is finished by the next pass;
#  5. killed (SIGTERM, then SIGKILL, which restarts the whole server) it
#     comes back and maintains again;
#  6. on a streaming standby it does nothing (no error, no crash), and it
#     starts maintaining once the standby is promoted.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.maintenance_databases = 'app1,noext,ghost'
gb_scale.maintenance_naptime = 1
log_statement = none
timezone = 'UTC'
restart_after_crash = on
});
$node->start;

# Poll SQL until it returns 't', for at most 90 s (the worker runs every
# second; its launcher restarts within 10 s).
sub wait_for
{
	my ($n, $db, $sql) = @_;
	my $deadline = time + 90;
	while (time < $deadline)
	{
		my ($ret, $out) = $n->psql($db, $sql);
		return 1 if $ret == 0 && $out eq 't';
		usleep(250_000);
	}
	diag("still not true after 90 s: $sql");
	return 0;
}

# Partition covering time expression TS (SQL) of PARENT, or '' when none.
sub partition_at
{
	my ($n, $db, $parent, $ts) = @_;
	return $n->safe_psql(
		$db, qq{
SELECT partition FROM gb_partition_list('$parent')
WHERE NOT is_default AND from_time <= ($ts) AND to_time > ($ts)});
}

# Wait until the partition of PARENT covering TS exists (or, with $want = 0,
# does not).
sub wait_partition_at
{
	my ($n, $db, $parent, $ts, $want) = @_;
	$want //= 1;
	my $op = $want ? '=' : '<>';
	return wait_for(
		$n, $db, qq{
SELECT count(*) $op 1 FROM gb_partition_list('$parent')
WHERE NOT is_default AND from_time <= ($ts) AND to_time > ($ts)});
}

# The server's clock, for "after this moment" comparisons.
sub server_now
{
	my ($n, $db) = @_;
	return $n->safe_psql($db, 'SELECT clock_timestamp()');
}

# Wait until the worker has run a pass on PARENT that started after SINCE.
sub wait_worker_pass
{
	my ($n, $db, $parent, $since) = @_;
	return wait_for(
		$n, $db, qq{
SELECT coalesce(last_run > '$since', false)
FROM gb_scale.partition_config WHERE parent = '$parent'::regclass});
}

sub last_run
{
	my ($n, $db, $parent) = @_;
	return $n->safe_psql($db,
		"SELECT coalesce(last_run::text, 'never') FROM gb_scale.partition_config WHERE parent = '$parent'::regclass"
	);
}

# PIDs of gb_scale's background processes (its launcher does not connect
# to a database, so it is not in pg_stat_activity); waits up to 60 s for one
# that is not in EXCLUDE.
sub worker_pids
{
	my ($n, @exclude) = @_;
	my %ex = map { $_ => 1 } @exclude;
	my $deadline = time + 60;
	while (time < $deadline)
	{
		my @pids = eval { server_children($n, qr/gb_scale/) };
		return @pids if grep { !$ex{$_} } @pids;
		usleep(200_000);
	}
	return ();
}

# Log lines that show a crash or a crash-restart since OFFSET.
sub crash_lines
{
	my ($n, $offset) = @_;
	my $log = slurp_file($n->logfile, $offset);
	return join "\n", grep {
		/terminated by signal|was terminated by|terminating any other active server processes|TRAP:|PANIC:|exited with exit code [^01]/
	} split /\n/, $log;
}

# A string setting in postgresql.conf, reloaded and seen by new sessions.
sub set_string_setting
{
	my ($n, $name, $value) = @_;
	$n->adjust_conf('postgresql.conf', $name, undef);
	$n->append_conf('postgresql.conf', "$name = '$value'\n");
	$n->reload;
	$n->poll_query_until('postgres',
		"SELECT setting = '$value' FROM pg_settings WHERE name = '$name'")
	  or die "$name was not reloaded";
	return;
}

my $log_start = -s $node->logfile;

# Runs of the owner's index expression app.guard() logged since OFFSET by a
# session other than alice's own: "current_user/superuser" each.
sub guard_runs
{
	my ($n, $offset) = @_;
	my $log = slurp_file($n->logfile, $offset);
	my @runs;
	while ($log =~ /LOG:\s+gb_guard current_user=(\w+) session_user=(\w+) file=(\w+)/g)
	{
		push @runs, "$1/$3" if $2 ne 'alice';
	}
	return @runs;
}

###########################################################################
# Setup: an ordinary role owns the tables; a superuser's event trigger
# records who runs every DDL command; the owner's trigger records who moves
# rows and tries to make its owner a superuser.
###########################################################################
$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE DATABASE app1;
CREATE DATABASE app2;
CREATE DATABASE noext;
});
my $setup = q{
CREATE EXTENSION gb_scale;
CREATE SCHEMA app AUTHORIZATION alice;
CREATE TABLE public.ddl_audit (
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    usr name NOT NULL, tag text, obj text);
GRANT SELECT, INSERT ON public.ddl_audit TO PUBLIC;
CREATE FUNCTION public.ddl_audit_end() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        INSERT INTO public.ddl_audit(usr, tag, obj)
        VALUES (current_user, r.command_tag, r.object_identity);
    END LOOP;
END $$;
CREATE FUNCTION public.ddl_audit_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE object_type = 'table' LOOP
        INSERT INTO public.ddl_audit(usr, tag, obj)
        VALUES (current_user, 'DROP TABLE', r.object_identity);
    END LOOP;
END $$;
CREATE EVENT TRIGGER ddl_audit_end ON ddl_command_end EXECUTE FUNCTION public.ddl_audit_end();
CREATE EVENT TRIGGER ddl_audit_drop ON sql_drop EXECUTE FUNCTION public.ddl_audit_drop();

SET ROLE alice;
CREATE TABLE app.trig_log (
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    usr name, sess name, is_su text, escalation text, op text, tbl name, body text);
-- The owner's trigger: records who runs it, whether it can read a server
-- file (superuser rights: 'read', else the SQLSTATE), and tries to make
-- alice a superuser (which only works with superuser rights).
CREATE FUNCTION app.events_trg() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE esc text; b text; su text;
BEGIN
    BEGIN
        PERFORM pg_read_file('postgresql.conf', 0, 10);
        su := 'read';
    EXCEPTION WHEN OTHERS THEN
        su := SQLSTATE;
    END;
    BEGIN
        EXECUTE 'ALTER ROLE alice SUPERUSER';
        esc := 'escalated';
    EXCEPTION WHEN OTHERS THEN
        esc := SQLSTATE;
    END;
    IF TG_OP = 'DELETE' THEN b := OLD.body; ELSE b := NEW.body; END IF;
    INSERT INTO app.trig_log(usr, sess, is_su, escalation, op, tbl, body)
    VALUES (current_user, session_user, su, esc, TG_OP, TG_TABLE_NAME, b);
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
-- The owner's index expression: logs who evaluates it and whether it can
-- read a server file.
CREATE FUNCTION app.guard(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE su text;
BEGIN
    BEGIN
        PERFORM pg_read_file('postgresql.conf', 0, 10);
        su := 'read';
    EXCEPTION WHEN OTHERS THEN
        su := SQLSTATE;
    END;
    RAISE LOG 'gb_guard current_user=% session_user=% file=%', current_user, session_user, su;
    RETURN t;
END $$;
CREATE TABLE app.events (
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    body text
) PARTITION BY RANGE (created_at);
CREATE INDEX ON app.events (tenant_id, created_at);
CREATE TRIGGER events_trg BEFORE INSERT OR DELETE ON app.events
    FOR EACH ROW EXECUTE FUNCTION app.events_trg();
CREATE INDEX events_guard ON app.events (app.guard(body));
SELECT gb_partition_create('app.events', 'created_at', '1 day',
    premake => '3 days', retention => '5 days', default_partition => true) > 0;
CREATE TABLE app.logs (
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    body text
) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('app.logs', 'created_at', '1 day',
    premake => '3 days', retention => '5 days') > 0;
RESET ROLE;
};
$node->safe_psql('app1', $setup);
$node->safe_psql('app2', $setup);
pass('app1 and app2: tables of alice registered (events with a default partition, logs without)');

is( $node->safe_psql('app1',
		q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}),
	'f', 'alice is an ordinary role');

###########################################################################
# 1-2. The worker maintains app1, as the owner.
###########################################################################
ok(wait_worker_pass($node, 'app1', 'app.events', '-infinity'),
	'the worker ran a pass on app1 (last_run set)');
is(last_run($node, 'app2', 'app.events'),
	'never', 'app2 is not listed: the worker never ran there');

# A missing premade partition comes back.
my $t2 = q{now() + interval '2 days'};
my $p2 = partition_at($node, 'app1', 'app.events', $t2);
is($p2,
	$node->safe_psql('app1', qq{SELECT 'app.events_p' || to_char($t2, 'YYYYMMDD')}),
	'the premade partition two days ahead exists, named <parent>_pYYYYMMDD');
$node->safe_psql('app1', 'TRUNCATE public.ddl_audit');
psql_as($node, 'app1', 'alice', "DROP TABLE $p2");
ok(wait_partition_at($node, 'app1', 'app.events', $t2),
	'the worker recreates a dropped premade partition');
my $recreated = partition_at($node, 'app1', 'app.events', $t2);
is( $node->safe_psql('app1',
		"SELECT relowner::regrole FROM pg_class WHERE oid = '$recreated'::regclass"),
	'alice', 'the recreated partition belongs to the table owner');
is( $node->safe_psql('app1',
		qq{SELECT count(*) > 0, count(*) FILTER (WHERE usr <> 'alice')
		   FROM public.ddl_audit WHERE tag = 'CREATE TABLE' AND obj = '$recreated'}),
	't|0',
	'the event trigger saw the worker create the partition as alice, never as a superuser');
is( $node->safe_psql('app1',
		q{SELECT string_agg(DISTINCT usr, ',') FROM public.ddl_audit}),
	'alice', 'every DDL command the worker ran, ran as alice');
is( $node->safe_psql('app1',
		"SELECT count(*) FROM pg_indexes WHERE tablename = '" . ($recreated =~ s/^app\.//r) . "'"),
	'2', 'the recreated partition carries the parent indexes');

# Stray rows in the default partition move to new partitions; the owner's
# trigger does not fire for the move, her index expression runs as alice.
psql_as($node, 'app1', 'alice', q{
INSERT INTO app.events (tenant_id, created_at, body)
SELECT g, now() + interval '10 days' + g * interval '1 minute', 'stray-' || g
FROM generate_series(1, 5) g});
ok( $node->poll_query_until(
		'app1', q{
SELECT (SELECT count(*) FROM app.events_default) = 0
   AND (SELECT count(*) FROM app.events WHERE body LIKE 'stray-%') = 5}),
	'the worker moves the stray rows out of the default partition');
is( $node->safe_psql('app1',
		q{SELECT count(*) FROM app.events WHERE body LIKE 'stray-%' AND tableoid <> 'app.events_default'::regclass}),
	'5', 'all 5 stray rows are now in proper partitions, none lost');
is( $node->safe_psql('app1', q{
SELECT count(*) FROM app.trig_log WHERE body LIKE 'stray-%' AND sess <> 'alice'}),
	'0', 'the owner trigger did not fire for the move');
my @guard = guard_runs($node, $log_start);
ok(scalar(@guard) > 0, 'the owner index expression ran during the move (' . scalar(@guard) . ' times)');
is(join(',', sort keys %{ { map { $_ => 1 } @guard } }),
	'alice/42501', '... always as alice, without superuser rights (reading a server file: 42501)');
is( $node->safe_psql('app1',
		q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}),
	'f', 'alice is still not a superuser');

# Retention: partitions older than 5 days are retired by the worker.
psql_as($node, 'app1', 'alice', q{
SELECT gb_partition_ensure('app.events', now() - interval '10 days', now())});
ok( $node->poll_query_until(
		'app1', q{
SELECT min(from_time) = date_trunc('day', now() - interval '5 days')
FROM gb_partition_list('app.events') WHERE NOT is_default}),
	'the worker drops the partitions whose whole range is older than the retention');
is( $node->safe_psql('app1', q{
SELECT count(*) > 0, count(*) FILTER (WHERE usr <> 'alice')
FROM public.ddl_audit WHERE tag = 'DROP TABLE' AND obj LIKE 'app.events_p%'}),
	't|0', 'the worker dropped them as alice');

is( $node->safe_psql('noext',
		q{SELECT count(*) FROM pg_extension WHERE extname = 'gb_scale'}),
	'0', 'noext still has no gb_scale');
is(crash_lines($node, $log_start), '',
	'databases without the extension (noext) or missing (ghost) crash nothing');

###########################################################################
# 3. naptime 0 turns the worker off; SIGHUP changes are obeyed.
###########################################################################
set_instance_setting($node, 'gb_scale.maintenance_naptime', '0');
sleep 3;    # a pass already under way may finish
my $frozen = last_run($node, 'app1', 'app.events');
$p2 = partition_at($node, 'app1', 'app.events', $t2);
psql_as($node, 'app1', 'alice', "DROP TABLE $p2");
sleep 5;
is(last_run($node, 'app1', 'app.events'),
	$frozen, 'naptime 0: no pass runs any more');
is(partition_at($node, 'app1', 'app.events', $t2),
	'', 'naptime 0: the dropped partition stays missing');

set_instance_setting($node, 'gb_scale.maintenance_naptime', '1');
ok(wait_partition_at($node, 'app1', 'app.events', $t2),
	'naptime back to 1 (SIGHUP): the worker wakes up and recreates the partition');

# The database list: app2 only.
set_string_setting($node, 'gb_scale.maintenance_databases', 'app2');
my $since = server_now($node, 'app2');
ok(wait_worker_pass($node, 'app2', 'app.events', $since),
	'database list changed to app2 (SIGHUP): the worker maintains app2');
sleep 3;
$frozen = last_run($node, 'app1', 'app.events');
$p2 = partition_at($node, 'app1', 'app.events', $t2);
psql_as($node, 'app1', 'alice', "DROP TABLE $p2");
$p2 = partition_at($node, 'app2', 'app.events', $t2);
psql_as($node, 'app2', 'alice', "DROP TABLE $p2");
ok(wait_partition_at($node, 'app2', 'app.events', $t2),
	'app2: the worker recreates a dropped partition');
sleep 3;
is(last_run($node, 'app1', 'app.events'),
	$frozen, 'app1 is no longer listed: no pass runs there');
is(partition_at($node, 'app1', 'app.events', $t2),
	'', 'app1: the dropped partition stays missing');

set_string_setting($node, 'gb_scale.maintenance_databases', 'app1, app2');
ok(wait_partition_at($node, 'app1', 'app.events', $t2),
	"database list 'app1, app2': app1 is maintained again");

# gb_scale.test_now never reaches the worker, even stored for its database.
$node->psql('postgres', q{ALTER DATABASE app2 SET gb_scale.test_now = '2031-01-01 00:00+00'});
$p2 = partition_at($node, 'app2', 'app.events', $t2);
psql_as($node, 'app2', 'alice', "DROP TABLE $p2");
ok(wait_partition_at($node, 'app2', 'app.events', $t2),
	'app2 with a stored gb_scale.test_now: the worker recreates the partition of the real clock');
is( $node->safe_psql('app2', q{
SELECT count(*) FILTER (WHERE from_time >= '2030-01-01'),
       count(*) FILTER (WHERE NOT is_default AND from_time <= now() AND to_time > now())
FROM gb_partition_list('app.events')}),
	'0|1', '... and neither premakes for nor retires by the stored fake clock');
$node->psql('postgres', 'ALTER DATABASE app2 RESET gb_scale.test_now');

###########################################################################
# 4. DETACH PARTITION ... CONCURRENTLY (app.logs: no default partition).
###########################################################################
# Old partitions are created with the worker off, so that the worker only
# meets them while a long transaction holds the parent.
set_instance_setting($node, 'gb_scale.maintenance_naptime', '0');
sleep 3;
psql_as($node, 'app1', 'alice', q{
SELECT gb_partition_ensure('app.logs', now() - interval '9 days', now())});
my $old_logs = $node->safe_psql('app1', q{
SELECT count(*) FROM gb_partition_list('app.logs')
WHERE to_time <= now() - interval '5 days'});
cmp_ok($old_logs, '>=', 3, "app.logs has $old_logs partitions due for retention");

my $long = $node->background_psql('app1', on_error_stop => 0);
$long->set_query_timer_restart;
$long->query_safe('BEGIN');
$long->query_safe('LOCK TABLE app.logs IN ACCESS SHARE MODE');
my $app = $node->background_psql('app1', on_error_stop => 0, extra_params => [ '-U', 'alice' ]);
$app->set_query_timer_restart;

set_instance_setting($node, 'gb_scale.maintenance_naptime', '1');
my ($max_latency, $inserts, $pending_seen) = (0, 0, 0);
my $deadline = time + 60;
while (time < $deadline)
{
	my $t0 = time;
	my ($out, $failed) = $app->query(
		q{INSERT INTO app.logs VALUES (1, now(), 'during long txn') RETURNING 1});
	my $dt = time - $t0;
	$max_latency = $dt if $dt > $max_latency;
	$inserts++ if !$failed && $out eq '1';
	if ($node->safe_psql('app1', q{
SELECT count(*) FROM pg_inherits WHERE inhparent = 'app.logs'::regclass AND inhdetachpending}) > 0)
	{
		$pending_seen = 1;
		last if $inserts >= 20;
	}
	usleep(50_000);
}
ok($pending_seen,
	'while a transaction holds app.logs, the worker leaves a concurrent detach pending (DETACH ... CONCURRENTLY)');
cmp_ok($inserts, '>=', 20, "inserts kept flowing meanwhile ($inserts)");
cmp_ok($max_latency, '<', 5, sprintf('longest insert while the worker retires partitions: %.3f s', $max_latency));
is( $node->safe_psql('app1', q{
SELECT count(*) FROM gb_partition_list('app.logs')
WHERE from_time <= now() AND to_time > now()}),
	'1', 'the current partition of app.logs is still attached');

$long->query_safe('COMMIT');
ok( $node->poll_query_until(
		'app1', q{
SELECT NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'app.logs'::regclass AND inhdetachpending)
   AND (SELECT min(from_time) FROM gb_partition_list('app.logs')) = date_trunc('day', now() - interval '5 days')}),
	'once the transaction ends, the worker finishes the detach and retires every due partition');
is( $node->safe_psql('app1', q{
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'app' AND c.relname LIKE 'logs_p%' AND NOT c.relispartition}),
	'0', 'retention mode drop: no detached leftover table');
is($node->safe_psql('app1', q{SELECT count(*) FROM app.logs WHERE body = 'during long txn'}),
	$inserts, 'every insert made during the long transaction is there');

# A concurrent detach started by a user and cancelled half-way is finished
# by the worker's next pass.
set_instance_setting($node, 'gb_scale.maintenance_naptime', '0');
sleep 3;
psql_as($node, 'app1', 'alice', q{
SELECT gb_partition_ensure('app.logs', now() - interval '8 days', now() - interval '7 days')});
my $victim = partition_at($node, 'app1', 'app.logs', q{now() - interval '8 days'});
like($victim, qr/^app\.logs_p\d{8}$/, "an old partition to detach: $victim");
$long->query_safe('BEGIN');
$long->query_safe('LOCK TABLE app.logs IN ACCESS SHARE MODE');
my $detacher = $node->background_psql('app1', on_error_stop => 0, extra_params => [ '-U', 'alice' ]);
$detacher->set_query_timer_restart;
my $detacher_pid = $detacher->query_safe('SELECT pg_backend_pid()');
my $tok = async_start($detacher, "ALTER TABLE app.logs DETACH PARTITION $victim CONCURRENTLY");
ok( $node->poll_query_until(
		'app1', qq{
SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = '$victim'::regclass AND inhdetachpending)
   AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $detacher_pid AND wait_event_type = 'Lock')}),
	'a user DETACH ... CONCURRENTLY is pending and waits for the long transaction');
$node->safe_psql('app1', "SELECT pg_cancel_backend($detacher_pid)");
my ($dout, $derr) = async_wait($detacher, $tok);
like($derr, qr/canceling statement/, 'the user detach is cancelled half-way');
is( $node->safe_psql('app1',
		"SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = '$victim'::regclass"),
	't', 'the partition is left detach-pending');
$long->query_safe('COMMIT');
set_instance_setting($node, 'gb_scale.maintenance_naptime', '1');
ok( $node->poll_query_until(
		'app1', qq{
SELECT to_regclass('$victim') IS NULL
   AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'app.logs'::regclass AND inhdetachpending)}),
	'the next pass finishes the interrupted detach and retires the partition');
ok( $node->poll_query_until(
		'app1',
		q{SELECT last_error IS NULL AND last_success >= last_run FROM gb_scale.partition_config WHERE parent = 'app.logs'::regclass}),
	'app.logs: last pass succeeded, no error recorded');
$detacher->quit;
$app->quit;
$long->quit;
is(crash_lines($node, $log_start), '', 'no crash so far');

###########################################################################
# 5. Killed, the worker comes back.
###########################################################################
my @before = worker_pids($node);
ok(scalar(@before) > 0, 'gb_scale background processes run: ' . join(' ', @before));

kill 'TERM', @before;
my @after = worker_pids($node, @before);
ok(scalar(@after) > 0, 'after SIGTERM a new gb_scale process runs: ' . join(' ', @after));
$p2 = partition_at($node, 'app1', 'app.events', $t2);
psql_as($node, 'app1', 'alice', "DROP TABLE $p2");
ok(wait_partition_at($node, 'app1', 'app.events', $t2),
	'after SIGTERM the worker is back and recreates a dropped partition');

@before = worker_pids($node);
if (!@before)
{
	diag('no gb_scale process left after SIGTERM: restarting the server for the SIGKILL test');
	$node->restart;
	@before = worker_pids($node);
	wait_partition_at($node, 'app1', 'app.events', $t2);
}
ok(scalar(@before) > 0, 'gb_scale background processes run before SIGKILL: ' . join(' ', @before));
kill 'KILL', @before;
# The postmaster reinitialises after a child's SIGKILL; wait for it.
$node->poll_query_until('postgres', 'SELECT 1', '1');
@after = worker_pids($node, @before);
ok(scalar(@after) > 0, 'after SIGKILL (server crash-restart) a gb_scale process runs again: ' . join(' ', @after));
my $log_kill = -s $node->logfile;
$p2 = partition_at($node, 'app1', 'app.events', $t2);
psql_as($node, 'app1', 'alice', "DROP TABLE $p2");
ok(wait_partition_at($node, 'app1', 'app.events', $t2),
	'after SIGKILL the worker recreates a dropped partition');
is(crash_lines($node, $log_kill), '', 'no crash since the SIGKILL restart');

###########################################################################
# 6. Streaming standby: the worker does nothing; after promotion it works.
###########################################################################
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
my $standby_log = -s $standby->logfile;
$node->wait_for_catchup($standby);
# The primary stops maintaining, and loses a premade partition: work the
# standby's worker would do if it could.
set_instance_setting($node, 'gb_scale.maintenance_naptime', '0');
sleep 3;
$p2 = partition_at($node, 'app1', 'app.events', $t2);
psql_as($node, 'app1', 'alice', "DROP TABLE $p2");
$node->wait_for_catchup($standby);
is($standby->safe_psql('app1', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SHOW gb_scale.maintenance_naptime'), '1s',
	'the standby has naptime 1 and app1 in its list');
sleep 6;
is(partition_at($standby, 'app1', 'app.events', $t2), '',
	'standby: nothing recreated the partition');
my $slog = slurp_file($standby->logfile, $standby_log);
my @bad = grep { /ERROR|FATAL|PANIC|TRAP|exited with exit code|terminated by signal/ } split /\n/, $slog;
is(join("\n", @bad), '', 'standby: the worker logs no error and never exits abnormally');

$standby->promote;
$standby->poll_query_until('app1', 'SELECT NOT pg_is_in_recovery()');
ok(wait_partition_at($standby, 'app1', 'app.events', $t2),
	'after promotion the worker maintains the new primary');
is(partition_at($node, 'app1', 'app.events', $t2), '',
	'(the old primary, naptime 0, did not)');
$slog = slurp_file($standby->logfile, $standby_log);
@bad = grep { /TRAP|PANIC|terminated by signal|exited with exit code [^01]/ } split /\n/, $slog;
is(join("\n", @bad), '', 'standby: no crash at any point');
$standby->stop;

$node->stop;
done_testing();
