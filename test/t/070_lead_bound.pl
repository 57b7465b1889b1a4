# Guarantee 2: more than 4096 IDs in a millisecond borrow the following
# milliseconds instead of repeating or wrapping the 12-bit sequence; issued
# IDs never run further ahead of the clock than gb_scale.max_lead_ms (set in
# postgresql.conf for the whole instance), callers wait instead, and that wait
# can be cancelled.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/lib";
use GbScaleTest;

# The server's environment must not pick a shard id for us.
delete $ENV{SHARD_ID};

my $shard = 21;
my $node = PostgreSQL::Test::Cluster->new('lead');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = $shard
log_statement = none
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');

# Run SQL that is expected to fail; return psql's exit code, the SQLSTATE and
# the message (VERBOSITY verbose prints "ERROR:  XXXXX: message").
sub psql_error
{
	my ($sql, %params) = @_;
	my ($ret, $out, $err) = $node->psql(
		'postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ],
		timeout => 60,
		%params);
	my ($state, $msg) = $err =~ /ERROR:\s+([0-9A-Z]{5}):\s+([^\n]*)/;
	return ($ret, $state // '', $msg // '', $err);
}

sub waits_of
{
	my ($s) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(waits), 0) FROM gb_id_generator_status() WHERE shard_id = $s"
	);
}

# gb_scale.max_lead_ms is instance-wide: set in postgresql.conf, reloaded.
sub set_max_lead
{
	my ($value) = @_;
	set_instance_setting($node, 'gb_scale.max_lead_ms', $value);
	return;
}

# Tick = (ms << 12) | sequence: the generator's position, one per ID.
my $tick = "((id >> 22) * 4096 + (id & 4095))";

# --- 1. One contiguous run of 50000 IDs: 12+ milliseconds' worth issued at once.
my $res = $node->safe_psql(
	'postgres', qq{
WITH r AS (
    SELECT id, n, gb_id_timestamp(id) AS ts, gb_id_sequence(id) AS seq,
           gb_id_shard(id) AS shard,
           lag(id) OVER w AS prev_id,
           lag(gb_id_timestamp(id)) OVER w AS prev_ts,
           lag(gb_id_sequence(id)) OVER w AS prev_seq
    FROM gb_next_ids(50000) WITH ORDINALITY AS g(id, n)
    WINDOW w AS (ORDER BY n))
SELECT count(*),
       count(DISTINCT id),
       count(*) FILTER (WHERE id <= prev_id),
       count(*) FILTER (WHERE prev_id IS NOT NULL
                        AND $tick - ((prev_id >> 22) * 4096 + (prev_id & 4095)) <> 1),
       count(*) FILTER (WHERE ts <> prev_ts
                        AND NOT (prev_seq = 4095 AND seq = 0
                                 AND ts = prev_ts + interval '1 ms')),
       count(*) FILTER (WHERE ts <> prev_ts),
       count(DISTINCT ts),
       count(*) FILTER (WHERE shard <> $shard)
FROM r});
my ($n, $distinct, $decreasing, $gaps, $bad_borrow, $borrows, $ms, $wrong_shard) =
  split /\|/, $res;
is($n, 50000, 'gb_next_ids(50000) returns 50000 IDs');
is($distinct, 50000, 'no duplicate in a run of 50000');
is($decreasing, 0, 'the run is strictly increasing');
is($gaps, 0, 'the run is contiguous: each tick is the previous plus one');
is($bad_borrow, 0,
	'every millisecond change goes from sequence 4095 to sequence 0 of the next millisecond'
);
cmp_ok($borrows, '>=', 12, "the run borrowed following milliseconds ($borrows times)");
cmp_ok($ms, '>=', 13, "50000 IDs span at least 13 milliseconds ($ms)");
is($wrong_shard, 0, "all IDs carry shard $shard");

# A run hands out exactly the ticks it reserved: the generator's last issued
# ID is the run's largest, and the next ID anybody gets lies beyond the run.
# (Nothing else generates on this shard meanwhile.)
$res = $node->safe_psql(
	'postgres', qq{
SELECT max(x) FROM gb_next_ids(1000) x;
SELECT last_id FROM gb_id_generator_status() WHERE shard_id = $shard;});
my ($run_max, $last_id) = split /\n/, $res;
is($last_id, $run_max,
	'after gb_next_ids(1000), the generator status last_id is the run\'s largest ID');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE single <= run_max)
FROM (SELECT g, (SELECT max(x) FROM gb_next_ids(10 + 0 * g) x) AS run_max,
             gb_next_id() AS single
      FROM generate_series(1, 200) g) s}),
	'0',
	'gb_next_id() right after gb_next_ids(10) is above every ID of the run (200 tries)'
);

# --- 2. Per-row gb_next_id(): the next tick is either last + 1 or the first
# tick of a later millisecond (the clock moved on); the sequence never wraps
# back within a millisecond.  Nothing else generates on this shard meanwhile.
$res = $node->safe_psql(
	'postgres', qq{
WITH r AS (
    SELECT id, lag(id) OVER (ORDER BY n) AS prev_id
    FROM (SELECT n, gb_next_id() AS id FROM generate_series(1, 200000) n) s)
SELECT count(*), count(DISTINCT id),
       count(*) FILTER (WHERE id <= prev_id),
       count(*) FILTER (WHERE prev_id IS NOT NULL
                        AND $tick <> ((prev_id >> 22) * 4096 + (prev_id & 4095)) + 1
                        AND NOT ((id & 4095) = 0 AND (id >> 22) > (prev_id >> 22)))
FROM r});
($n, $distinct, $decreasing, my $bad_step) = split /\|/, $res;
is($n, 200000, 'count(gb_next_id()) over 200000 rows');
is($distinct, 200000, 'no duplicate among 200000 per-row IDs');
is($decreasing, 0, 'per-row IDs strictly increase in issue order');
is($bad_step, 0,
	'each per-row ID is the previous tick + 1 or sequence 0 of a later millisecond');

# --- 3. The lead bound.  Each row reserves a run with gb_next_ids(n) but reads
# only its first ID (LIMIT 1 stops the set-returning function), so runs are
# handed out far faster than the clock moves: without the bound the lead grows
# by hundreds of milliseconds.  clock_timestamp() is evaluated right after the
# reservation in the same row; the lead of the run's last ID at that moment
# must stay within max_lead_ms.  The generator reads the kernel's coarse clock,
# which lags the precise one, so the true bound is, if anything, tighter; a few
# ms of tolerance absorb scheduling between the two readings.
my $tolerance_ms = 3;

sub lead_burst
{
	my ($max_lead, $run, $rows) = @_;
	set_max_lead($max_lead);
	my $waits_before = waits_of($shard);
	my $out = $node->safe_psql(
		'postgres', qq{
WITH b AS (
    SELECT g, (SELECT gb_next_ids($run + 0 * g) LIMIT 1) AS first_id,
           clock_timestamp() AS t
    FROM generate_series(1, $rows) g),
l AS (
    SELECT g, first_id, lag(first_id) OVER (ORDER BY g) AS prev_first,
           extract(epoch FROM gb_id_timestamp(first_id)
                   + ((gb_id_sequence(first_id) + $run - 1) / 4096) * interval '1 ms'
                   - t) * 1000 AS lead_ms
    FROM b)
SELECT count(*),
       count(*) FILTER (WHERE ((first_id >> 22) * 4096 + (first_id & 4095))
                              - ((prev_first >> 22) * 4096 + (prev_first & 4095)) < $run),
       round(max(lead_ms), 3),
       count(*) FILTER (WHERE lead_ms > $max_lead + $tolerance_ms),
       (max(first_id) >> 22) - (min(first_id) >> 22)
FROM l});
	my ($cnt, $overlaps, $max_seen, $over, $span) = split /\|/, $out;
	my $waits_after = waits_of($shard);
	is($cnt, $rows, "max_lead_ms=$max_lead: $rows runs of $run reserved");
	is($overlaps, 0, "max_lead_ms=$max_lead: runs are increasing and do not overlap");
	cmp_ok($span, '>=', int(($rows - 1) * $run / 4096),
		"max_lead_ms=$max_lead: the burst covers $span ms of ID time");
	is($over, 0,
		"max_lead_ms=$max_lead: no run led the clock by more than $max_lead ms (+$tolerance_ms) at issue (max seen $max_seen ms)"
	);
	cmp_ok($waits_after, '>', $waits_before,
		"max_lead_ms=$max_lead: callers waited ($waits_before -> $waits_after)");
}

lead_burst(5, 20000, 150);
lead_burst(0, 4096, 300);

# Per-row generation with max_lead_ms = 0: IDs never ahead of the clock either.
set_max_lead(0);
$res = $node->safe_psql(
	'postgres', qq{
SELECT count(*), count(DISTINCT id),
       count(*) FILTER (WHERE gb_id_timestamp(id) - t > $tolerance_ms * interval '1 ms')
FROM (SELECT gb_next_id() AS id, clock_timestamp() AS t
      FROM generate_series(1, 100000)) s});
is($res, '100000|100000|0',
	'max_lead_ms=0: 100000 per-row IDs unique and none ahead of the clock');

# --- 4. gb_next_ids(n) bounds: capacity is (max_lead_ms + 1) * 4096.
my ($ret, $state, $msg);
set_max_lead(5);
($ret, $state, $msg) = psql_error("SELECT count(*) FROM gb_next_ids(24577)");
is($state, '54000', 'gb_next_ids over capacity (max_lead_ms=5) fails with 54000');
like($msg, qr/cannot reserve 24577 IDs/, '... and names the count');
is( $node->safe_psql('postgres',
		'SELECT count(DISTINCT x) FROM gb_next_ids(24576) x'),
	'24576',
	'gb_next_ids at exactly the capacity (max_lead_ms=5) succeeds');
set_max_lead(0);
($ret, $state, $msg) = psql_error("SELECT count(*) FROM gb_next_ids(4097)");
is($state, '54000', 'gb_next_ids(4097) with max_lead_ms=0 fails with 54000');
set_max_lead(undef);
($ret, $state, $msg) = psql_error("SELECT count(*) FROM gb_next_ids(8196097)");
is($state, '54000',
	'gb_next_ids((2000 + 1) * 4096 + 1) fails with the default max_lead_ms');
($ret, $state, $msg) = psql_error("SELECT count(*) FROM gb_next_ids(-1)");
is($state, '22023', 'gb_next_ids(-1) fails with 22023');
like($msg, qr/must not be negative/, '... saying the count must not be negative');
is($node->safe_psql('postgres', 'SELECT count(*) FROM gb_next_ids(0)'),
	'0', 'gb_next_ids(0) returns no rows');

# --- 5. Waiting is interruptible.
# 5a. As asked of every long call: max_lead_ms = 0 and far more IDs than fit in
# the timeout; statement_timeout must end it.
set_max_lead(0);
($ret, $state, $msg) = psql_error(
	"SET statement_timeout = '200ms';
	 SELECT count(gb_next_id()) FROM generate_series(1, 50000000)");
is($state, '57014',
	'max_lead_ms=0 with 50M IDs is cancelled by statement_timeout (57014)');

# 5b. A single long wait.  On a shard of its own, reserve ~488 s of ID time in
# one step (max_lead_ms at its maximum for the while), so that any later
# caller, max_lead_ms back at its default, has to sleep for minutes within
# one call.
my $poison = 901;
set_max_lead(600000);
$node->safe_psql(
	'postgres', qq{
SET gb_scale.shard_id = $poison;
SELECT gb_next_ids(2000000000) LIMIT 1}, timeout => 60);
set_max_lead(undef);
my $lead = $node->safe_psql('postgres',
	"SELECT lead_ms FROM gb_id_generator_status() WHERE shard_id = $poison");
cmp_ok($lead, '>', 400000, "shard $poison now leads the clock by $lead ms");

my $waits_before = waits_of($poison);
my $t0 = time;
($ret, $state, $msg) = psql_error(
	"SET gb_scale.shard_id = $poison; SET statement_timeout = '300ms';
	 SELECT gb_next_id()");
is($state, '57014',
	'a caller waiting minutes for the clock is cancelled by statement_timeout');
like($msg, qr/statement timeout/, '... with the statement-timeout message');
cmp_ok(time - $t0, '<', 60, '... long before the wait would have ended');
cmp_ok(waits_of($poison), '>', $waits_before, '... and the wait was counted');

# Starts a psql that asks the stalled shard for an ID, and waits until its
# backend sleeps on its latch (wait event type Extension).
sub start_waiter
{
	my ($name, $out, $err) = @_;
	my $h = IPC::Run::start(
		[
			'psql', '-XAtq', '-v', 'VERBOSITY=verbose',
			'-d', $node->connstr('postgres') . " application_name=$name",
			'-c', "SET gb_scale.shard_id = $poison", '-c', 'SELECT gb_next_id()'
		],
		'>', $out, '2>', $err,
		IPC::Run::timeout(120));
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) = 1 FROM pg_stat_activity
WHERE application_name = '$name' AND state = 'active'
  AND wait_event_type = 'Extension'}),
		"$name sleeps in an Extension wait event");
	return $h;
}

# 5c. pg_cancel_backend() ends the wait.
my ($w_out, $w_err) = ('', '');
my $waiter = start_waiter('gb_waiter', \$w_out, \$w_err);
is( $node->safe_psql(
		'postgres',
		"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'gb_waiter'"
	),
	't',
	'pg_cancel_backend on the waiter');
$waiter->finish;
like($w_err, qr/ERROR:\s+57014: canceling statement due to user request/,
	'the cancelled waiter reports 57014');
is($w_out, '', 'the cancelled waiter returned no ID');

# 5d. pg_terminate_backend also ends a waiting backend.
($w_out, $w_err) = ('', '');
$waiter = start_waiter('gb_waiter2', \$w_out, \$w_err);
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gb_waiter2'"
);
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'gb_waiter2'}),
	'a terminated waiter goes away');
$waiter->finish;
like($w_err, qr/terminating connection due to administrator command/,
	'the terminated waiter reports termination');

# The other shard was not disturbed by the stalled one.
is($node->safe_psql('postgres', 'SELECT gb_id_shard(gb_next_id())'),
	$shard, "shard $shard still issues IDs at once");

$node->stop;
done_testing();
