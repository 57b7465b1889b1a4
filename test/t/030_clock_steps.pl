# Clock steps: when the wall clock goes backwards, gb_next_id() must never
# repeat or go below an ID it issued, must not stall until the clock has
# caught up, and must log one warning per regression.
#
# The server's clock is stepped for real with libfaketime: the postmaster is
# started with libfaketime preloaded and reads its offset from a file that the
# test rewrites (FAKETIME_NO_CACHE makes every clock read look at it).  Cases:
#   (i)   a runtime step back of 120 s while a session is generating, then a
#         step forward again;
#   (ii)  a restart with the clock 10 minutes behind the IDs issued before;
#   (iii) gb_scale.debug_clock_offset_ms, set in postgresql.conf and reloaded
#         (on a second server without libfaketime).
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::Bin/lib";
use GbScaleTest;

# Debian's package "libfaketime" puts it under the multiarch directory.
my ($libfaketime) = grep { -e $_ } (
	'/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
	glob('/usr/lib/*/faketime/libfaketime.so.1'),
	'/usr/lib/faketime/libfaketime.so.1',
	'/usr/local/lib/faketime/libfaketime.so.1');
die "libfaketime is not installed (Debian package faketime)\n" unless defined $libfaketime;

my $shard    = 5;
my $epoch_ms = 1704067200000;    # 2024-01-01, the IDs' epoch
my $tmp      = PostgreSQL::Test::Utils::tempdir;
my $rc_file  = "$tmp/faketime.rc";

# Sets the server's clock offset in seconds.  Written to a new file and
# renamed over the old one, so that no clock read sees a half-written file.
sub set_clock_offset
{
	my ($seconds) = @_;
	open my $fh, '>', "$rc_file.new" or die "could not write $rc_file.new: $!";
	print $fh sprintf("%+d\n", $seconds);
	close $fh or die;
	rename "$rc_file.new", $rc_file or die "could not rename: $!";
	return;
}

# Starts a node under libfaketime.  The variables are set for pg_ctl and the
# postmaster only: "local" drops them again, so that psql and this script
# keep the real clock.
sub start_faked
{
	my ($node) = @_;
	local $ENV{LD_PRELOAD}                   = $libfaketime;
	local $ENV{FAKETIME_TIMESTAMP_FILE}      = $rc_file;
	local $ENV{FAKETIME_NO_CACHE}            = '1';
	# Latch timeouts and statement timers stay sane on a real monotonic clock.
	local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = '1';
	$node->start;
	return;
}

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = $shard
});
	return $node;
}

sub status
{
	my ($node, $columns) = @_;
	return $node->safe_psql('postgres',
		"SELECT $columns FROM gb_id_generator_status() WHERE shard_id = $shard");
}

# ID milliseconds since the Unix epoch.
sub id_unix_ms { return ($_[0] >> 22) + $epoch_ms; }

# Real time in ms; this script does not run under libfaketime.
sub real_ms { return int(time * 1000); }

sub count_matches
{
	my ($text, $re) = @_;
	my @m = $text =~ /$re/g;
	return scalar @m;
}


###########################################################################
# (i) The server's clock steps back 120 s while a session generates IDs.
###########################################################################
set_clock_offset(0);
my $node = new_node('faked');
start_faked($node);
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');

# Sanity: the server really runs on the faked clock, and this script not.
set_clock_offset(-3600);
my $skew = $node->safe_psql('postgres',
	'SELECT extract(epoch FROM clock_timestamp())::bigint') - int(time);
set_clock_offset(0);
cmp_ok(abs($skew + 3600), '<', 10, 'the server runs on the faked clock');

my $before = $node->safe_psql('postgres',
	'SELECT max(x) FROM (SELECT gb_next_id() x FROM generate_series(1, 1000)) s'
);

my $out = "$tmp/stream.out";
my $err = "$tmp/stream.err";
# A session streaming IDs to its client (generate_series in the select list
# streams rather than materialises).  Not throttled with pg_sleep(): its end
# time follows the faked wall clock, so a sleep spanning the step back would
# last two minutes.  Libfaketime reading its file at every clock read keeps
# the rate to some 100k IDs a second anyway.
my $stream = IPC::Run::start(
	[
		'psql', '-X', '-q', '-d',
		$node->connstr('postgres') . ' application_name=stream', '-c',
		q{COPY (SELECT gb_next_id() FROM (SELECT generate_series(1, 50000000) g) s) TO STDOUT}
	],
	'<', '/dev/null', '>', $out, '2>', $err,
	IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
$node->poll_query_until('postgres',
	"SELECT ids_issued > 20000 FROM gb_id_generator_status() WHERE shard_id = $shard"
) or die 'the stream did not start';

my $log_offset    = -s $node->logfile;
my $issued_before = status($node, 'ids_issued');
my $step_real_ms  = real_ms();
set_clock_offset(-120);
$node->poll_query_until('postgres',
	"SELECT clock_regressions = 1 FROM gb_id_generator_status() WHERE shard_id = $shard"
) or die 'the step back was not noticed';
# Keep generating on the stepped-back clock for a while.
usleep(1_000_000);
my ($issued_after, $regressions, $floor) =
  split /\|/, status($node, 'ids_issued, clock_regressions, clock_floor_active');
$node->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'stream'"
);
eval { $stream->finish; 1 } or do { $stream->kill_kill; die "stream did not end: $@" };
my $end_real_ms = real_ms();

my @ids;
open my $fh, '<', $out or die "could not open $out: $!";
while (my $line = <$fh>) { push @ids, $1 if $line =~ /^(\d+)$/; }
close $fh;

cmp_ok($issued_after - $issued_before, '>', 10000,
	'(i) the session kept generating after the step back');
cmp_ok(scalar(@ids), '>', 15000, '(i) the client received the IDs');
my ($not_increasing, $ts_back) = (0, 0);
for my $i (1 .. $#ids)
{
	$not_increasing++ if $ids[$i] <= $ids[ $i - 1 ];
	$ts_back++ if ($ids[$i] >> 22) < ($ids[ $i - 1 ] >> 22);
}
is($not_increasing, 0, '(i) IDs strictly increase across the step back');
is($ts_back,        0, '(i) ID timestamps never go backwards');
cmp_ok($ids[0], '>', $before, '(i) the stream continues after earlier IDs');
# The floor keeps the IDs' time moving from where it was, not from the new
# (earlier) clock, and not into the future either.
cmp_ok(id_unix_ms($ids[-1]), '>=', $step_real_ms - 100,
	'(i) IDs after the step keep the time they had reached');
cmp_ok(id_unix_ms($ids[-1]), '<=', $end_real_ms + 50,
	'(i) no ID is timestamped in the future');
is($regressions, 1, '(i) clock_regressions counts the step once');
is($floor, 't', '(i) the clock floor is active while the clock is behind');

my $log = slurp_file($node->logfile, $log_offset);
is(count_matches($log, qr/WARNING:  clock moved backwards by \d+ ms/),
	1, '(i) exactly one warning for the step');
like($log,
	qr/WARNING:  clock moved backwards by 1(19\d\d\d|20000) ms; gb_scale shard $shard keeps counting from its last ID/,
	'(i) the warning gives the size of the step');

# A new session on the stepped-back clock continues above the stream.
my $next = $node->safe_psql('postgres', 'SELECT gb_next_id()');
cmp_ok($next, '>', $ids[-1], '(i) a new session continues above the stream');

# The clock steps forward again to the real time, which is past the
# generator's (half-speed) clock: the floor must end, and the IDs must follow
# the clock again instead of running ahead of it.  (A floor that measured
# its half-speed progress on the wall clock would take half of this forward
# step as progress, and run about a minute ahead of the clock.)
set_clock_offset(0);
my $after_fwd = $node->safe_psql('postgres', 'SELECT gb_next_id()');
my $floor_after = status($node, 'clock_floor_active');
cmp_ok($after_fwd, '>', $next, '(i) IDs still increase after the step forward');
is($floor_after, 'f',
	'(i) the clock floor ends once the clock has caught up again');
cmp_ok(id_unix_ms($after_fwd), '<=', real_ms() + 50,
	'(i) after the step forward, IDs are not timestamped in the future');
is(status($node, 'clock_regressions'), 1,
	'(i) a step forward is not counted as a regression');
$log = slurp_file($node->logfile, $log_offset);
is(count_matches($log, qr/clock moved backwards/), 1,
	'(i) still exactly one warning');

###########################################################################
# (ii) Restart with the clock 10 minutes behind the IDs issued before.
###########################################################################
my $last_before = $node->safe_psql('postgres',
	'SELECT max(x) FROM (SELECT gb_next_id() x FROM generate_series(1, 1000)) s'
);
$node->stop;
set_clock_offset(-600);
$log_offset = -s $node->logfile;
start_faked($node);

# Were the generator to wait for the clock, this would take 10 minutes; the
# statement timeout makes that a failure.
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', q{
	SET statement_timeout = '20s';
	SELECT gb_next_id();
	SELECT min(x), max(x), count(*) FROM
	  (SELECT gb_next_id() x FROM generate_series(1, 200000)) s;
},
	timeout => $PostgreSQL::Test::Utils::timeout_default);
is($ret, 0, '(ii) IDs are issued at once with the clock 10 minutes behind')
  or diag $stderr;
my ($first, $rest) = split /\n/, $stdout, 2;
my ($min, $max, $count) = split /\|/, ($rest // '');
cmp_ok($first, '>', $last_before, '(ii) the first ID after the restart is above the IDs before');
cmp_ok($min, '>', $first, '(ii) the following IDs are above it');
is($count, 200000, '(ii) all IDs were issued');
cmp_ok(id_unix_ms($first) - id_unix_ms($last_before), '<', 10000,
	'(ii) the IDs continue from the time they had reached');
like($stderr,
	qr/WARNING:  gb_scale shard $shard resumes \d+ ms ahead of the clock, past its durable mark/,
	'(ii) the session that resumed was warned');
$log = slurp_file($node->logfile, $log_offset);
my @resumed = $log =~
  /WARNING:  gb_scale shard $shard resumes (\d+) ms ahead of the clock, past its durable mark/g;
is(scalar(@resumed), 1, '(ii) the server log has one warning');
cmp_ok($resumed[0] // 0, '>=', 590000, '(ii) it reports the clock 10 minutes behind');
is(count_matches($log, qr/clock moved backwards/), 0,
	'(ii) no further regression warnings while generating');
is(status($node, 'clock_regressions, clock_floor_active'), '1|t',
	'(ii) the regression is counted and the clock floor is active');

$node->stop;

###########################################################################
# (iii) gb_scale.debug_clock_offset_ms, reloaded from postgresql.conf,
# shifts the generator's clock for the whole instance.
###########################################################################
my $offset = 'gb_scale.debug_clock_offset_ms';
my $plain  = new_node('offset');
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
my $old_max = $plain->safe_psql('postgres',
	'SELECT max(x) FROM (SELECT gb_next_id() x FROM generate_series(1, 10000)) s'
);
$log_offset = -s $plain->logfile;

# A small step back, right after IDs were issued (a reload takes far less
# than the step): the clock then runs at full speed after the floor running
# at half speed, catches up with it after about twice the step, and the
# floor ends by itself.
my $pre_step = $plain->safe_psql('postgres', 'SELECT gb_next_id()');
set_instance_setting($plain, $offset, -2000);
($ret, $stdout, $stderr) = $plain->psql(
	'postgres', qq{
	SELECT gb_next_id();
	SELECT clock_floor_active FROM gb_id_generator_status() WHERE shard_id = $shard;
	DO \$\$ BEGIN
		FOR i IN 1 .. 2000 LOOP  -- at most some 20 s
			PERFORM gb_next_id();
			EXIT WHEN NOT (SELECT clock_floor_active FROM gb_id_generator_status()
			               WHERE shard_id = $shard);
			PERFORM pg_sleep(0.01);
		END LOOP;
	END \$\$;
	SELECT clock_floor_active, clock_regressions FROM gb_id_generator_status()
	  WHERE shard_id = $shard;
	SELECT gb_next_id();
});
is($ret, 0, '(iii) the instance\'s clock steps back 2 s') or diag $stderr;
my @lines = split /\n/, $stdout;
is(scalar(@lines), 4, '(iii) all queries answered');
cmp_ok($pre_step, '>', $old_max, '(iii) IDs increase before the step');
cmp_ok($lines[0], '>', $pre_step, '(iii) IDs increase after the step');
is($lines[1], 't', '(iii) the clock floor starts');
is($lines[2], 'f|1', '(iii) the floor ends once the clock has caught up');
cmp_ok($lines[3], '>', $lines[0], '(iii) IDs keep increasing');
cmp_ok(id_unix_ms($lines[3]), '<', real_ms() - 1500,
	'(iii) then the IDs follow the shifted clock (2 s behind) again');
is(count_matches($stderr, qr/WARNING:  clock moved backwards by \d+ ms/),
	1, '(iii) the first session after the step was warned once');

# Back to the real clock (a step forward), then back a minute right after
# IDs were issued.
set_instance_setting($plain, $offset, undef);
my $pre = $plain->safe_psql('postgres', 'SELECT gb_next_id()');
cmp_ok($pre, '>', $lines[3], '(iii) IDs increase after the step forward');
set_instance_setting($plain, $offset, -60000);
($ret, $stdout, $stderr) = $plain->psql(
	'postgres', qq{
	SELECT min(x), max(x), count(*) FROM
	  (SELECT gb_next_id() x FROM generate_series(1, 50000)) s;
	SELECT clock_regressions, clock_floor_active FROM gb_id_generator_status()
	  WHERE shard_id = $shard;
});
is($ret, 0, '(iii) IDs are generated with the clock a minute back');
@lines = split /\n/, $stdout;
($min, $max, $count) = split /\|/, ($lines[0] // '');
cmp_ok($min, '>', $pre, '(iii) IDs after stepping back a minute are larger');
is($count, 50000, '(iii) all IDs were issued');
is($lines[1], '2|t',
	'(iii) one more regression counted, clock floor active');
is(count_matches($stderr, qr/WARNING:  clock moved backwards by \d+ ms/),
	1, '(iii) the session was warned once');
$log = slurp_file($plain->logfile, $log_offset);
my @backs = $log =~ /WARNING:  clock moved backwards by (\d+) ms/g;
is(scalar(@backs), 2, '(iii) the server log has one warning per step');
# Each reports how far the clock fell below the last reading seen before the
# step, which the time spent reloading (slow on an assert-enabled build) eats into.
ok(($backs[0] // 0) > 0 && $backs[0] <= 2000, '(iii) it reports the 2 s step (' . ($backs[0] // 'none') . ' ms)');
ok(($backs[1] // 0) > 50000 && $backs[1] <= 60000,
	'(iii) it reports the step of a minute (' . ($backs[1] // 'none') . ' ms)');
set_instance_setting($plain, $offset, undef);
my $after_offset = $plain->safe_psql('postgres', 'SELECT gb_next_id()');
cmp_ok($after_offset, '>', $max,
	'(iii) without the offset again, IDs continue above those');

$plain->stop;
done_testing();
