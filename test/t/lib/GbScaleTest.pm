# Helpers shared by gb_scale's TAP tests.
package GbScaleTest;

use strict;
use warnings;

use Exporter 'import';
our @EXPORT = qw(set_instance_setting sql_error async_start async_done
  async_wait psql_as server_children citus_cluster);

use PostgreSQL::Test::Cluster ();
use PostgreSQL::Test::Utils ();
use Time::HiRes qw(usleep);

# Set an instance-wide setting in postgresql.conf (undef: back to its
# default) and reload; returns once new sessions see the value.
sub set_instance_setting
{
	my ($node, $name, $value) = @_;
	$node->adjust_conf('postgresql.conf', $name, undef);
	$node->append_conf('postgresql.conf', "$name = $value\n") if defined $value;
	$node->reload;
	my $check = defined $value ? "setting = '$value'" : 'setting = boot_val';
	$node->poll_query_until('postgres',
		"SELECT $check FROM pg_settings WHERE name = '$name'")
	  or die "$name was not reloaded";
	return;
}

# Run SQL expected to fail (as USER when given).  Returns a hash: psql's exit
# code (ret), the SQLSTATE (state), message and hint of the first error.
sub sql_error
{
	my ($node, $db, $sql, %params) = @_;
	my $user = delete $params{user};
	my $connstr = $node->connstr($db) . (defined $user ? " user=$user" : '');
	my ($ret, $out, $err) = $node->psql(
		$db, $sql,
		connstr => $connstr,
		extra_params => [ '-v', 'VERBOSITY=verbose' ],
		timeout => 120);
	my %e = (ret => $ret, out => $out, stderr => $err);
	($e{state}, $e{message}) = $err =~ /ERROR:\s+([0-9A-Z]{5}):\s+([^\n]*)/;
	($e{hint}) = $err =~ /HINT:\s+([^\n]*)/;
	$e{$_} //= '' for qw(state message hint);
	return \%e;
}

# safe_psql as another role.
sub psql_as
{
	my ($node, $db, $user, $sql) = @_;
	return $node->safe_psql($db, $sql,
		connstr => $node->connstr($db) . " user=$user");
}

# Asynchronous statements on a background psql session (from
# $node->background_psql): async_start sends SQL and returns at once with a
# token; async_done tells (without blocking) whether it has finished;
# async_wait blocks until it has and returns (stdout, stderr) of the SQL.
my $async_seq = 0;

sub async_start
{
	my ($s, $sql) = @_;
	my $token = 'gb_async_done_' . (++$async_seq);
	$s->{timeout}->start() if defined $s->{query_timer_restart};
	$s->{stdout} = '';
	$s->{stderr} = '';
	$s->{stdin} .= "$sql\n;\n\\echo '$token'\n\\warn '$token'\n";
	$s->{run}->pump_nb;
	return $token;
}

sub async_done
{
	my ($s, $token) = @_;
	$s->{run}->pump_nb;
	return ($s->{stdout} =~ /\Q$token\E\r?\n/ && $s->{stderr} =~ /\Q$token\E\r?\n/)
	  ? 1 : 0;
}

sub async_wait
{
	my ($s, $token, $timeout_s) = @_;
	$timeout_s //= 180;
	my $deadline = time + $timeout_s;
	until (async_done($s, $token))
	{
		die "asynchronous statement did not finish within $timeout_s s" if time > $deadline;
		usleep(20_000);
	}
	my ($out, $err) = ($s->{stdout}, $s->{stderr});
	$out =~ s/\r?\n?\Q$token\E\r?\n//;
	$err =~ s/\r?\n?\Q$token\E\r?\n//;
	$s->{stdout} = '';
	$s->{stderr} = '';
	return ($out, $err);
}

# PIDs of the server's processes (children of the postmaster) whose process
# title matches PATTERN: background workers that never connect to a
# database are not in pg_stat_activity.
sub server_children
{
	my ($node, $pattern) = @_;
	my $pm = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'});
	my $ppid_of_checkpointer;
	{
		open(my $fh, '<', "/proc/$pm/stat") or die "no /proc/$pm/stat: $!";
		my $stat = <$fh>;
		close $fh;
		($ppid_of_checkpointer) = $stat =~ /^\d+ \(.*\) \S (\d+)/;
	}
	my @pids;
	opendir(my $dh, '/proc') or die "cannot read /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close $fh;
		my ($ppid) = ($stat // '') =~ /^\d+ \(.*\) \S (\d+)/;
		next unless defined $ppid && $ppid == $ppid_of_checkpointer;
		open($fh, '<', "/proc/$pid/cmdline") or next;
		my $cmd = <$fh> // '';
		close $fh;
		$cmd =~ s/\0/ /g;
		push @pids, $pid if $cmd =~ $pattern;
	}
	closedir $dh;
	return sort { $a <=> $b } @pids;
}

# A Citus cluster on loopback: a coordinator and NWORKERS workers (0: the
# coordinator holds the shards), each with shared_preload_libraries =
# 'citus,gb_scale', gb_scale.shard_id = node number + 1 and EXTRA_CONF, and
# CREATE EXTENSION citus in database postgres; gb_scale is created on the
# coordinator, which Citus then creates on the workers.  Returns the nodes,
# the coordinator first.  Bails out when Citus is not installed for this
# PostgreSQL (test/citus.sh install, as root).
sub citus_cluster
{
	my ($nworkers, $extra_conf) = @_;
	my ($pkglibdir) = PostgreSQL::Test::Utils::run_command([ 'pg_config', '--pkglibdir' ]);
	chomp $pkglibdir;
	Test::More::BAIL_OUT("Citus is not installed for this PostgreSQL (no $pkglibdir/citus.so): "
		  . 'run test/citus.sh install as root')
	  unless -f "$pkglibdir/citus.so";
	my @nodes;
	for my $i (0 .. $nworkers)
	{
		my $node = PostgreSQL::Test::Cluster->new($i == 0 ? 'coordinator' : "worker$i");
		$node->init;
		$node->append_conf(
			'postgresql.conf', qq{
shared_preload_libraries = 'citus,gb_scale'
gb_scale.shard_id = @{[ $i + 1 ]}
listen_addresses = '127.0.0.1'
@{[ $extra_conf // '' ]}
});
		$node->start;
		$node->safe_psql('postgres', 'CREATE EXTENSION citus');
		push @nodes, $node;
	}
	my ($coord, @workers) = @nodes;
	$coord->safe_psql('postgres',
		"SELECT citus_set_coordinator_host('127.0.0.1', " . $coord->port . ")");
	$coord->safe_psql('postgres',
		"SELECT citus_set_node_property('127.0.0.1', " . $coord->port . ", 'shouldhaveshards', true)")
	  if $nworkers == 0;
	$coord->safe_psql('postgres', "SELECT citus_add_node('127.0.0.1', " . $_->port . ")")
	  for @workers;
	$coord->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
	return @nodes;
}

1;
