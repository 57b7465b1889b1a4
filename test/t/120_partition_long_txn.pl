# Partition maintenance while a long transaction holds the parent (issue 7):
# a 12-second transaction holds ACCESS SHARE on the parents, first as a
# running read of the whole table, then as LOCK TABLE ... IN ACCESS SHARE
# MODE followed by a sleep.  Meanwhile:
#  - the application's single-row inserts and pruned selects keep flowing:
#    every one completes, none takes 5 s or more (the long transaction lasts
#    12 s: anything queued behind a waiting ACCESS EXCLUSIVE would wait that
#    long);
#  - CALL gb_run_maintenance() returns while the long transaction still runs,
#    without an error, and records the lock timeout of the table it could not
#    change (last_error); the partition it can add without locking the parent
#    exclusively (a table without a default partition) is added at once;
#  - once the long transaction ends, the next CALL finishes the work: due
#    partitions retired, missing ones created, no error, no row lost.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $long_s = 12;

my $node = PostgreSQL::Test::Cluster->new('longtxn');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 1
timezone = 'UTC'
log_lock_waits = on
deadlock_timeout = 100ms
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE EXTENSION gb_scale;
CREATE SCHEMA app AUTHORIZATION alice;
SET ROLE alice;
CREATE TABLE app.msgs (
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    body text
) PARTITION BY RANGE (created_at);
CREATE INDEX ON app.msgs (tenant_id, created_at);
SELECT gb_partition_create('app.msgs', 'created_at', '1 day',
    premake => '3 days', retention => '5 days', default_partition => true);
CREATE TABLE app.msgs_nd (LIKE app.msgs) PARTITION BY RANGE (created_at);
CREATE INDEX ON app.msgs_nd (tenant_id, created_at);
SELECT gb_partition_create('app.msgs_nd', 'created_at', '1 day',
    premake => '3 days', retention => '5 days');
});

# Work for maintenance: partitions older than the retention, and a missing
# premade partition, in both tables.
my $ahead = q{now() + interval '2 days'};

sub covered
{
	my ($parent, $ts) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM gb_partition_list('$parent')
WHERE NOT is_default AND from_time <= ($ts) AND to_time > ($ts)});
}

sub make_work
{
	for my $t ('app.msgs', 'app.msgs_nd')
	{
		psql_as($node, 'postgres', 'alice', qq{
SELECT gb_partition_ensure('$t', now() - interval '10 days', now())});
		my $p = $node->safe_psql(
			'postgres', qq{
SELECT partition FROM gb_partition_list('$t')
WHERE NOT is_default AND from_time <= ($ahead) AND to_time > ($ahead)});
		psql_as($node, 'postgres', 'alice', "DROP TABLE $p");
	}
	is( $node->safe_psql('postgres', qq{
SELECT (SELECT count(*) FROM gb_partition_list('app.msgs') WHERE to_time <= now() - interval '5 days'),
       (SELECT count(*) FROM gb_partition_list('app.msgs_nd') WHERE to_time <= now() - interval '5 days'),
       (SELECT count(*) FROM gb_partition_list('app.msgs') WHERE NOT is_default AND from_time <= ($ahead) AND to_time > ($ahead)),
       (SELECT count(*) FROM gb_partition_list('app.msgs_nd') WHERE from_time <= ($ahead) AND to_time > ($ahead))}),
		'5|5|0|0',
		'work prepared: 5 due partitions and one missing premade partition per table');
	return;
}

# Retention done and horizon complete for TABLE.
sub done_sql
{
	my ($t) = @_;
	return qq{
SELECT (SELECT min(from_time) FROM gb_partition_list('$t') WHERE NOT is_default)
         = date_trunc('day', now() - interval '5 days')
   AND (SELECT count(*) FROM gb_partition_list('$t')
        WHERE NOT is_default AND from_time <= ($ahead) AND to_time > ($ahead)) = 1};
}

my $app_rows = 0;

# One round: LONG_SQL (run asynchronously; takes $long_s seconds while
# holding the parents) against the application and a maintenance CALL.
sub round
{
	my ($label, $prep_sql, $long_sql) = @_;

	make_work();
	my $long = $node->background_psql('postgres', on_error_stop => 0);
	$long->set_query_timer_restart;
	$long->query_safe($prep_sql) if $prep_sql;
	my $long_pid = $long->query_safe('SELECT pg_backend_pid()');
	my $app = $node->background_psql('postgres', on_error_stop => 0,
		extra_params => [ '-U', 'alice' ]);
	$app->set_query_timer_restart;
	my $maint = $node->background_psql('postgres', on_error_stop => 0);
	$maint->set_query_timer_restart;

	my $t_long = time;
	my $long_tok = async_start($long, $long_sql);
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) = 2 FROM pg_locks
WHERE pid = $long_pid AND granted AND mode = 'AccessShareLock'
  AND relation IN ('app.msgs'::regclass, 'app.msgs_nd'::regclass)}),
		"$label: the long transaction holds ACCESS SHARE on both parents");
	is( $node->safe_psql('postgres', qq{
SELECT count(*) FROM pg_locks
WHERE pid = $long_pid AND granted AND relation = 'app.msgs_default'::regclass}),
		'1', "$label: ... and on the default partition of app.msgs");

	my $t_maint = time;
	my $maint_tok = async_start($maint, 'CALL gb_run_maintenance()');
	my ($maint_s, $long_running_at_return);
	my ($max_ins, $max_sel, $n_ins, $n_sel, $errors) = (0, 0, 0, 0, '');
	my $day = $node->safe_psql('postgres',
		q{SELECT date_trunc('day', now()) || '|' || date_trunc('day', now()) + interval '1 day'});
	my ($lo, $hi) = split /\|/, $day;
	my $i = 0;
	while (!async_done($long, $long_tok))
	{
		$i++;
		my $tenant = 1 + $i % 7;
		my $t0 = time;
		my ($out, $failed) = $app->query(
			"INSERT INTO app.msgs (tenant_id, created_at, body) VALUES ($tenant, now(), '$label $i') RETURNING 1");
		my $dt = time - $t0;
		$max_ins = $dt if $dt > $max_ins;
		if (!$failed && $out eq '1') { $n_ins++; }
		else { $errors .= "insert: $app->{stderr}\n"; $app->{stderr} = ''; }

		$t0 = time;
		($out, $failed) = $app->query(
			"SELECT count(*) FROM app.msgs WHERE tenant_id = $tenant AND created_at >= '$lo' AND created_at < '$hi'");
		$dt = time - $t0;
		$max_sel = $dt if $dt > $max_sel;
		if (!$failed && $out =~ /^\d+$/) { $n_sel++; }
		else { $errors .= "select: $app->{stderr}\n"; $app->{stderr} = ''; }

		if (!defined $maint_s && async_done($maint, $maint_tok))
		{
			$maint_s = time - $t_maint;
			$long_running_at_return = !async_done($long, $long_tok);
		}
		usleep(20_000);
	}
	my $long_elapsed = time - $t_long;
	my ($long_out, $long_err) = async_wait($long, $long_tok);
	is($long_err, '', "$label: the long transaction ran without error");
	cmp_ok($long_elapsed, '>=', $long_s - 1,
		sprintf('%s: it held the parents for %.1f s', $label, $long_elapsed));

	ok(defined $maint_s && $long_running_at_return,
		"$label: CALL gb_run_maintenance() returned while the long transaction was still running");
	cmp_ok($maint_s // 999, '<', 5,
		sprintf('%s: ... after %.3f s', $label, $maint_s // -1));
	my ($mout, $merr) = async_wait($maint, $maint_tok);
	is($merr, '', "$label: the CALL itself raised no error");

	is($errors, '', "$label: no insert or select failed");
	cmp_ok($n_ins, '>=', 20, "$label: $n_ins single-row inserts completed during the long transaction");
	cmp_ok($n_sel, '>=', 20, "$label: $n_sel pruned selects completed during the long transaction");
	cmp_ok($max_ins, '<', 5, sprintf('%s: longest insert %.3f s', $label, $max_ins));
	cmp_ok($max_sel, '<', 5, sprintf('%s: longest pruned select %.3f s', $label, $max_sel));
	$app_rows += $n_ins;

	return ($long, $app, $maint);
}

# After a round, before the next CALL: the outcome recorded.
sub check_blocked_outcome
{
	my ($label) = @_;
	like( $node->safe_psql('postgres',
			q{SELECT last_error FROM gb_scale.partition_config WHERE parent = 'app.msgs'::regclass}),
		qr/lock timeout/i,
		"$label: app.msgs records the lock timeout as its last error");
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM gb_partition_list('app.msgs') WHERE to_time <= now() - interval '5 days'}),
		'5', "$label: app.msgs still has its due partitions (nothing waited for the lock)");
	is(covered('app.msgs_nd', $ahead), '1',
		"$label: the missing partition of app.msgs_nd (no default partition) was created all the same");
	return;
}

sub check_finished
{
	my ($label) = @_;
	$node->safe_psql('postgres', 'CALL gb_run_maintenance()');
	for my $t ('app.msgs', 'app.msgs_nd')
	{
		is($node->safe_psql('postgres', done_sql($t)),
			't', "$label: the next CALL retires the due partitions of $t and completes its horizon");
		is( $node->safe_psql('postgres',
				qq{SELECT last_error IS NULL AND last_success IS NOT NULL FROM gb_scale.partition_config WHERE parent = '$t'::regclass}),
			't', "$label: $t: last pass succeeded");
	}
	is( $node->safe_psql('postgres',
			q{SELECT count(*) FROM pg_inherits WHERE inhdetachpending}),
		'0', "$label: no detach left pending");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM app.msgs}),
		$app_rows, "$label: every row the application inserted is there ($app_rows)");
	return;
}

###########################################################################
# 1. A running read of both parents.
###########################################################################
my ($l, $a, $m) = round(
	'running read', undef,
	"SELECT count(*), pg_sleep($long_s) FROM (SELECT 1 FROM app.msgs UNION ALL SELECT 1 FROM app.msgs_nd) s");
check_blocked_outcome('running read');
$_->quit for ($l, $a, $m);
check_finished('running read');

###########################################################################
# 2. LOCK TABLE ... IN ACCESS SHARE MODE, then sleep.
###########################################################################
($l, $a, $m) = round(
	'LOCK TABLE + sleep',
	'BEGIN; LOCK TABLE app.msgs, app.msgs_nd IN ACCESS SHARE MODE',
	"SELECT pg_sleep($long_s); COMMIT");
check_blocked_outcome('LOCK TABLE + sleep');
$_->quit for ($l, $a, $m);
check_finished('LOCK TABLE + sleep');

$node->stop;
done_testing();
