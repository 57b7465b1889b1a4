# Helpers shared by gb_scale's TAP tests.
package GbScaleTest;

use strict;
use warnings;

use Exporter 'import';
our @EXPORT = qw(set_instance_setting sql_error async_start async_done
  async_wait psql_as server_children citus_cluster);
# The shards of test/shards.sh (the tenant move tests), imported by name.
our @EXPORT_OK = qw(shards_start shard_restart psql_run sq q_error start_psql
  wait_for tenant_digest no_move_objects);

use File::Basename qw(basename);
use File::Copy qw(copy);
use FindBin;
use IPC::Run ();
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

# ---- shards of test/shards.sh --------------------------------------------

my $shards_script = "$FindBin::RealBin/../shards.sh";
my $shards_base;
# shard id => connection string (as postgres is added by the helpers)
our %shard_conn;
# background psql runs (start_psql), killed at the end
our @background;

# Start N shards with test/shards.sh in a temporary directory; at the end
# of the test their server logs are kept (as <test>_shard<id>.log) and they
# are stopped.  Returns the shard ids.
sub shards_start
{
	my ($n) = @_;
	unless ($ENV{PG_CONFIG})
	{
		for my $d (split /:/, $ENV{PATH})
		{
			if (-x "$d/pg_config") { $ENV{PG_CONFIG} = "$d/pg_config"; last; }
		}
	}
	$shards_base = PostgreSQL::Test::Utils::tempdir('shards');
	$ENV{GB_SHARDS_DIR} = $shards_base;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $shards_script, 'start', $n ], '>', \$out, '2>', \$err)
	  or Test::More::BAIL_OUT("test/shards.sh start failed: $err");
	my @ids = $out =~ /^export GB_SHARD_(\d+)_CONNSTR=/mg;
	($shard_conn{$_}) = $out =~ /^export GB_SHARD_${_}_CONNSTR='([^']*)'/m for @ids;
	return @ids;
}

END
{
	my $rc = $?;
	$_->kill_kill for grep { defined } @background;
	if ($shards_base)
	{
		my $test = basename($0, '.pl');
		for my $log (glob("$shards_base/shard*/server.log"))
		{
			my ($id) = $log =~ m{/shard(\d+)/server\.log$};
			copy($log, "$PostgreSQL::Test::Utils::log_path/${test}_shard$id.log");
		}
		system($shards_script, 'stop');
	}
	$? = $rc;
}

# Stop shard S in MODE (immediate, fast; undef: leave it stopped) and start
# it again (START false: leave it stopped).
sub shard_restart
{
	my ($s, $mode, $start) = @_;
	my $dir = "$shards_base/shard$s";
	if (defined $mode)
	{
		system('pg_ctl', '-D', "$dir/data", '-m', $mode, '-w', 'stop') == 0
		  or die "could not stop shard $s";
	}
	if ($start // 1)
	{
		system('env', "SHARD_ID=$s", 'pg_ctl', '-D', "$dir/data", '-l', "$dir/server.log", '-w', 'start') == 0
		  or die "could not start shard $s";
	}
	return;
}

# Run SQL on shard S as postgres (or USER): (exit code, stdout, stderr).
sub psql_run
{
	my ($s, $sql, $user) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run(
		[
			'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
			'-v', 'VERBOSITY=verbose', '-d', "$shard_conn{$s} user=" . ($user // 'postgres'), '-f', '-'
		],
		'<', \$sql, '>', \$o, '2>', \$e, IPC::Run::timeout(600));
	chomp $o;
	return ($? >> 8, $o, $e);
}

# The output of SQL on shard S, which must succeed.
sub sq
{
	my ($s, $sql, $user) = @_;
	my ($r, $o, $e) = psql_run($s, $sql, $user);
	die "shard $s: $sql\n$e" if $r;
	return $o;
}

# The error of SQL expected to fail: "SQLSTATE: message".
sub q_error
{
	my ($s, $sql, $user) = @_;
	my ($r, $o, $e) = psql_run($s, $sql, $user);
	return 'no error' if $r == 0;
	my ($state, $msg) = $e =~ /ERROR:\s+([0-9A-Z]{5}):\s+([^\n]*)/;
	return defined $state ? "$state: $msg" : "no SQLSTATE in: $e";
}

# psql in the background on shard S, its output into the scalars O and E;
# SQL is one query string (-c), or a reference to a list of them (each its
# own -c: a CALL after SETs).
sub start_psql
{
	my ($s, $sql, $o, $e) = @_;
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose',
		  '-d', "$shard_conn{$s} user=postgres", map { ('-c', $_) } (ref $sql ? @$sql : $sql) ],
		'>', $o, '2>', $e);
	push @background, $h;
	return $h;
}

# Poll SQL on shard S until it returns WANT (or give up after SECONDS,
# default 60); returns what it returned last.
sub wait_for
{
	my ($s, $sql, $want, $seconds) = @_;
	my $got = '';
	for (1 .. ($seconds // 60) * 20)
	{
		$got = sq($s, $sql);
		return $got if $got eq $want;
		usleep(50_000);
	}
	return $got;
}

# Per table (default gb.sessions and gb.messages): count and a hash of the
# tenant's rows in id order, without shard_id (the column that says where a
# row is kept).
sub tenant_digest
{
	my ($s, $tenant, @tables) = @_;
	@tables = ('gb.sessions', 'gb.messages') unless @tables;
	my $parts = join("\n  UNION ALL\n",
		map { "SELECT '$_' t, count(*) n, md5(string_agg((to_jsonb(r) - 'shard_id')::text, ',' ORDER BY r.id)) h"
			  . " FROM $_ r WHERE tenant_id = $tenant" } @tables);
	return sq($s, "SELECT string_agg(t || '=' || n || ':' || h, ' ' ORDER BY t) FROM ($parts) d");
}

# "slots publications subscriptions" on shard S.
sub no_move_objects
{
	my ($s) = @_;
	return sq($s, q{SELECT (SELECT count(*) FROM pg_replication_slots) || ' ' || (SELECT count(*) FROM pg_publication)
		|| ' ' || (SELECT count(*) FROM pg_subscription)});
}

1;
