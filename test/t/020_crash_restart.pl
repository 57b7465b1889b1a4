# Crash and restart safety of the gb_scale ID generator.
#
# The generator may hand out IDs ahead of the clock (up to
# gb_scale.max_lead_ms); what keeps it from repeating them after a crash is
# the durable reservation mark.  Each cycle below pushes the generator seconds
# ahead of the clock while other sessions keep generating and committing IDs,
# then crashes the server in one of three ways:
#   - immediate shutdown (pg_ctl -m immediate), three times in a row,
#   - kill -9 of one generating backend (the postmaster reinitialises shared
#     memory and restarts by itself),
#   - kill -9 of the postmaster and all of its children.
# After each restart the first IDs must be above every ID any client received
# before, and the IDs committed across all crashes must contain no duplicate.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $shard = 7;
my $tmp   = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = $shard
# Let the test push the generator seconds ahead of the clock without waiting.
gb_scale.max_lead_ms = 60000
# The test framework turns this off; a backend killed with -9 must make the
# postmaster reinitialise shared memory and come back by itself.
restart_after_crash = on
# Millions of generated IDs need no statement log.
log_statement = none
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION gb_scale;
	CREATE TABLE committed_ids (id bigint NOT NULL, cycle int NOT NULL);
});

# Highest ID any client has received so far, over all cycles.
my $max_received = 0;
my $cycle        = 0;
my $client_no    = 0;

# Starts a psql client in the background; its output goes to a file, so that
# what the client had received before a crash can be read afterwards.
sub start_client
{
	my ($name, $sql) = @_;
	$client_no++;
	my $out = "$tmp/$name.$client_no.out";
	my $err = "$tmp/$name.$client_no.err";
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres') . " application_name=$name",
			'-c', $sql
		],
		'<', '/dev/null', '>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	return { name => $name, h => $h, out => $out, err => $err };
}

# Waits (bounded by the client's timeout) for a client to end; it is expected
# to fail, since the server crashes under it.
sub finish_client
{
	my ($c) = @_;
	eval { $c->{h}->finish; 1 } or do
	{
		my $why = $@;
		$c->{h}->kill_kill;
		die "client $c->{name} did not end: $why";
	};
	return;
}

# The IDs a client printed, in the order received.  Each CopyData row is a
# whole line, so a crash cannot leave half an ID in the file.
sub read_ids
{
	my ($file) = @_;
	open my $fh, '<', $file or die "could not open $file: $!";
	my @ids;
	while (my $line = <$fh>)
	{
		push @ids, $1 if $line =~ /^(\d+)$/;
	}
	close $fh;
	return \@ids;
}

# Number of places where a session's IDs did not strictly increase.
sub count_not_increasing
{
	my ($ids) = @_;
	my $bad = 0;
	for my $i (1 .. $#$ids)
	{
		$bad++ if $ids->[$i] <= $ids->[ $i - 1 ];
	}
	return $bad;
}

# Child processes of a process, from /proc.
sub children_of
{
	my ($parent) = @_;
	my @kids;
	opendir my $dh, '/proc' or die "could not read /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open my $fh, '<', "/proc/$pid/stat" or next;
		my $stat = <$fh>;
		close $fh;
		# "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
		push @kids, $pid
		  if defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $parent;
	}
	closedir $dh;
	return @kids;
}

# True while a process exists and is not a zombie.
sub is_alive
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $stat = <$fh>;
	close $fh;
	return defined $stat && $stat !~ /\)\s+Z\s/;
}

sub wait_until_dead
{
	my @pids = @_;
	for (1 .. 300)
	{
		return 1 unless grep { is_alive($_) } @pids;
		usleep(100_000);
	}
	return 0;
}

sub wait_for_file
{
	my ($file) = @_;
	for (1 .. 300)
	{
		return 1 if -s $file;
		usleep(100_000);
	}
	return 0;
}

# One crash cycle; $how is 'immediate', 'backend' or 'postmaster'.
sub crash_cycle
{
	my ($how, $reservation_ms) = @_;
	$cycle++;
	my $label = "cycle $cycle ($how, reservation_ms=$reservation_ms)";
	my $started = time;

	# reservation_ms is PGC_SIGHUP; new sessions see it once the postmaster
	# has reloaded.
	$node->append_conf('postgresql.conf',
		"gb_scale.reservation_ms = $reservation_ms");
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT setting = '$reservation_ms' FROM pg_settings WHERE name = 'gb_scale.reservation_ms'"
	) or die "reservation_ms was not reloaded";

	# Two sessions stream IDs to their clients (throttled so that the files
	# stay small), one commits IDs to a table, 20 per transaction.
	my @streams = map {
		start_client(
			"gen_$_",
			# generate_series in the select list streams; in FROM it would
			# be materialised first.
			q{COPY (SELECT gb_next_id() FROM (SELECT generate_series(1, 50000000) g) s
			       WHERE g % 100 <> 0 OR pg_sleep(0.001) IS NOT NULL) TO STDOUT})
	} ('a', 'b');
	my $inserter = start_client(
		'ins', qq{DO \$\$ BEGIN
			FOR i IN 1 .. 100000 LOOP
				INSERT INTO committed_ids SELECT gb_next_id(), $cycle FROM generate_series(1, 20);
				COMMIT;
				PERFORM pg_sleep(0.005);
			END LOOP;
		END \$\$});
	wait_for_file($_->{out}) or die "$label: no IDs from $_->{name}"
	  for @streams;
	$node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM committed_ids WHERE cycle = $cycle")
	  or die "$label: nothing committed";
	# Let them generate for a while: with 20 ms reservations that takes a
	# few dozen marks.
	usleep(500_000);

	# Push the generator ahead: reserve 20M IDs (~4.9 s of ID time) in one
	# step, read only the first, then take the ID after the block.
	$node->safe_psql('postgres',
		'SELECT x FROM (SELECT gb_next_ids(20000000) x) s LIMIT 1');
	my ($pushed, $lead_ms) = split /\|/, $node->safe_psql('postgres', qq{
		SELECT gb_next_id(), lead_ms FROM gb_id_generator_status() WHERE shard_id = $shard});
	cmp_ok($lead_ms, '>', 4000,
		"$label: the generator runs seconds ahead of the clock before the crash");
	$max_received = $pushed if $pushed > $max_received;

	# Let the sessions issue IDs beyond the pushed ones, then crash.
	usleep(300_000);
	my $status = $node->safe_psql('postgres',
		"SELECT ids_issued, mark_flushes FROM gb_id_generator_status() WHERE shard_id = $shard"
	);
	my $log_offset = -s $node->logfile;
	if ($how eq 'immediate')
	{
		$node->stop('immediate');
	}
	elsif ($how eq 'backend')
	{
		my $pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE application_name = 'gen_a' AND state = 'active'"
		);
		like($pid, qr/^\d+$/, "$label: found the generating backend");
		kill 'KILL', $pid;
		# Once the postmaster has reset shared memory, the generator state
		# from before is gone and must come back from the mark.
		$node->wait_for_log(qr/all server processes terminated; reinitializing/,
			$log_offset);
	}
	else
	{
		# Freeze the postmaster so it forks nothing while its children are
		# listed, then kill it and all of them.
		my $pm = $node->{_pid};
		kill 'STOP', $pm;
		my @kids = children_of($pm);
		kill 'KILL', @kids;
		$node->kill9;
		ok(wait_until_dead($pm, @kids),
			"$label: postmaster and its " . scalar(@kids) . " children are gone");
		# Nothing reaps orphans in some containers: a killed postmaster can
		# linger as a zombie whose pid still "exists", and the new postmaster
		# would take the lock files for live ones.  Nothing runs any more, so
		# remove them as an operator would.
		if (-e "/proc/$pm")
		{
			unlink $node->data_dir . '/postmaster.pid';
			unlink glob($node->host . '/.s.PGSQL.' . $node->port . '.lock');
		}
	}

	finish_client($_) for @streams, $inserter;

	# Every session's IDs strictly increase, and no ID was received twice.
	my @all;
	for my $s (@streams)
	{
		my $ids = read_ids($s->{out});
		cmp_ok(scalar(@$ids), '>', 0, "$label: $s->{name} received IDs");
		is(count_not_increasing($ids), 0,
			"$label: $s->{name}'s IDs strictly increase");
		push @all, @$ids;
	}
	my @sorted = sort { $a <=> $b } @all;
	my $dups = grep { $sorted[$_] == $sorted[ $_ - 1 ] } 1 .. $#sorted;
	is($dups, 0, "$label: no ID received twice before the crash");
	cmp_ok($sorted[-1], '>', $pushed,
		"$label: sessions were still generating past the pushed IDs at the crash"
	);
	$max_received = $sorted[-1] if $sorted[-1] > $max_received;

	if ($how eq 'backend')
	{
		$node->poll_query_until('postgres', 'SELECT true')
		  or die "$label: server did not come back";
	}
	else
	{
		$node->start;
	}

	# Committed IDs are IDs the server handed out, too.
	my $committed_max =
	  $node->safe_psql('postgres', 'SELECT max(id) FROM committed_ids');
	$max_received = $committed_max if $committed_max > $max_received;

	# The first IDs after the restart, one at a time and in a batch.
	my $first = $node->safe_psql('postgres', 'SELECT gb_next_id()');
	my ($batch_min, $batch_max) = split /\|/, $node->safe_psql('postgres',
		'SELECT min(i), max(i) FROM gb_next_ids(1000) i');
	cmp_ok($first, '>', $max_received,
		"$label: first ID after restart is above every ID received before");
	cmp_ok($batch_min, '>', $first,
		"$label: the next batch of IDs follows it");
	$max_received = $batch_max;

	# The state was rebuilt from the durable mark, not carried over.
	my ($issued, $log) = (
		$node->safe_psql('postgres',
			"SELECT ids_issued FROM gb_id_generator_status() WHERE shard_id = $shard"
		),
		slurp_file($node->logfile, $log_offset));
	is($issued, 1001, "$label: generator state was reset by the crash");
	like(
		$log,
		qr/gb_scale shard $shard resumes \d+ ms ahead of the clock, past its durable mark/,
		"$label: generator resumed past its durable mark");

	note "$label took " . (time - $started) . " s";
	return $status;
}

# Three immediate shutdowns in a row, two of them with 20 ms reservations
# (many marks written while generating), then a backend's and the
# postmaster's kill -9.
crash_cycle('immediate', 1000);
crash_cycle('immediate', 20);
# The previous restart already resumed with 20 ms reservations (in cycle 2
# the mark written with 1000 ms still covered most of the IDs).
my $status = crash_cycle('immediate', 20);
my ($issued, $flushes) = split /\|/, $status;
cmp_ok($flushes, '>=', 5,
	"with 20 ms reservations the generator wrote many marks ($flushes)");
crash_cycle('backend',    20);
crash_cycle('postmaster', 1000);

# Across all crashes, no committed ID repeats.
my ($count, $distinct, $cycles) = split /\|/, $node->safe_psql('postgres',
	'SELECT count(*), count(DISTINCT id), count(DISTINCT cycle) FROM committed_ids'
);
is($cycles, $cycle, 'IDs were committed in every cycle');
is($distinct, $count, "no duplicate among $count committed IDs");

# A mark is written once per reservation window, not once per ID: after a
# restart, a burst of single-ID calls with 20 ms reservations.
$node->append_conf('postgresql.conf', 'gb_scale.reservation_ms = 20');
$node->restart;
$node->safe_psql('postgres',
	'SELECT count(gb_next_id()) FROM generate_series(1, 500000)');
($issued, $flushes) = split /\|/, $node->safe_psql('postgres',
	"SELECT ids_issued, mark_flushes FROM gb_id_generator_status() WHERE shard_id = $shard"
);
is($issued, 500000, 'status counts the IDs issued');
cmp_ok($flushes, '>=', 1, 'the burst wrote marks');
cmp_ok($flushes * 100, '<', $issued,
	"mark flushes ($flushes) are far fewer than IDs issued ($issued)");

$node->stop;
done_testing();
