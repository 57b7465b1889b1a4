# Row quotas are exact under concurrency (issue 15, section 2): 8 pgbench
# clients race one tenant to its quota of rows per day, with single-row and
# multi-row INSERTs, COPY, transactions rolled back on purpose and savepoints
# rolled back, on a table and on a partitioned table (rows inserted through
# the root and into its partitions by name).  Then the committed rows of the
# tenant equal the quota exactly (more: the check and the reservation are
# not atomic; fewer: rolled-back rows kept their quota), every refusal
# carried SQLSTATE 53400, and gb_tenant_quotas counts what was committed.
#
# A client whose statement is refused stops (pgbench aborts a client on any
# error other than a serialization failure).  So each table gets two runs:
# the race with every kind of statement, which ends when every client has
# been refused once; then single-row inserts only, without rollbacks, which
# fill whatever room a refused multi-row statement or a rollback left, until
# every client is refused again.  After it the tenant must be at its quota.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $quota = 1000;
my $clients = 8;
my $tenant = 7;

my $node = PostgreSQL::Test::Cluster->new('quotas_pgbench');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'gb_scale'\ngb_scale.shard_id = 1\n"
	  . "log_error_verbosity = verbose\nmax_connections = 40\n");
$node->start;

# A fixed clock for every session (the quotas' clock, as maintenance's, for
# tests): the race cannot straddle midnight.
my $clock = "SET gb_scale.test_now = '2026-05-10 12:00+00';";
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION gb_scale;
CREATE TABLE race (id bigserial, body text NOT NULL);
CREATE TABLE race_tree (id bigserial, part int NOT NULL, body text NOT NULL) PARTITION BY LIST (part);
CREATE TABLE race_tree_0 PARTITION OF race_tree FOR VALUES IN (0);
CREATE TABLE race_tree_1 PARTITION OF race_tree FOR VALUES IN (1);
SELECT gb_tenant_quota($tenant, 'race', $quota, NULL);
SELECT gb_tenant_quota($tenant, 'race_tree', $quota, NULL);
});

# COPY reads files on the server (the clients are superusers).
my $dir = $node->basedir;
append_to_file("$dir/race_copy.txt", "c\nc\nc\n");
append_to_file("$dir/race_tree_copy.txt", "1\tc\n1\tc\n1\tc\n");
chmod 0644, "$dir/race_copy.txt", "$dir/race_tree_copy.txt";

# A statement of TABLE from a template: TARGET stands for the table named,
# PART for the list value of race_tree's row.  On race_tree: through the
# root or into the partition by name, at random (pgbench's \if).
sub statement
{
	my ($table, $template) = @_;
	if ($table eq 'race')
	{
		(my $sql = $template) =~ s/TARGET/race/g;
		$sql =~ s/PART, //g;
		return "$sql\n";
	}
	my $text = '';
	for my $branch ([ '\if :which = 0', 'race_tree', ':p' ],
		[ '\elif :p = 0', 'race_tree_0', '0' ],
		[ '\else', 'race_tree_1', '1' ])
	{
		my ($cond, $target, $part) = @$branch;
		(my $sql = $template) =~ s/TARGET/$target/g;
		$sql =~ s/PART/$part/g;
		$text .= "$cond\n$sql\n";
	}
	return $text . "\\endif\n";
}

sub scripts
{
	my ($table) = @_;
	my $cols = $table eq 'race' ? '(body)' : '(part, body)';
	my $head = "\\set p random(0, 1)\n\\set which random(0, 1)\n$clock\nBEGIN;\nSELECT gb_set_tenant($tenant);\n";
	my $one = statement($table, "INSERT INTO TARGET $cols VALUES (PART, 's');");
	my $two = statement($table, "INSERT INTO TARGET $cols VALUES (PART, 'r'), (PART, 'r');");
	my $three = statement($table, "INSERT INTO TARGET $cols SELECT PART, 'm' FROM generate_series(1, 3);");
	# COPY into race_tree: the rows are of partition 1 (through the root or by name)
	my $copy =
	  $table eq 'race'
	  ? "COPY race (body) FROM '$dir/race_copy.txt';\n"
	  : "\\if :which = 0\nCOPY race_tree (part, body) FROM '$dir/race_tree_copy.txt';\n"
	  . "\\else\nCOPY race_tree_1 (part, body) FROM '$dir/race_tree_copy.txt';\n\\endif\n";
	return (
		single => "$head$one" . "END;\n",
		multi => "$head$three" . "END;\n",
		copy => "$head$copy" . "END;\n",
		rollback => "$head$two" . "ROLLBACK;\n",
		savepoint => "${head}SAVEPOINT a;\n$two" . "ROLLBACK TO SAVEPOINT a;\n$one" . "END;\n",
	);
}

# run_race(TABLE, PHASE, SCRIPT => WEIGHT...): one pgbench run until every
# client has been refused; returns pgbench's stderr.
sub run_race
{
	my ($table, $phase, %weights) = @_;
	my %text = scripts($table);
	my @files;
	for my $s (sort keys %weights)
	{
		my $f = "$dir/189_${table}_${phase}_$s.sql";
		unlink $f;
		append_to_file($f, $text{$s});
		push @files, '-f', "$f\@$weights{$s}";
	}
	my ($stdout, $stderr) = run_command(
		[
			'pgbench', '-n', '-h', $node->host, '-p', $node->port,
			'-c', $clients, '-j', 2, '-t', 100000, @files, 'postgres'
		]);
	return $stderr;
}

# The part of the server log written since OFFSET.
sub log_since
{
	my ($offset) = @_;
	return substr(slurp_file($node->logfile), $offset);
}

for my $table ('race', 'race_tree')
{
	my $log_offset = -s $node->logfile;

	my $race = run_race($table, 'race',
		single => 5, multi => 2, copy => 1, rollback => 1, savepoint => 1);
	my $aborted = () = $race =~ /client \d+ script \d+ aborted/g;
	is($aborted, $clients, "$table race: every client was refused once");
	my $over = $node->safe_psql('postgres',
		"SELECT count(*) FROM $table");
	cmp_ok($over, '<=', $quota, "$table race: no more than $quota rows committed ($over)");

	my $fill = run_race($table, 'fill', single => 1);
	$aborted = () = $fill =~ /client \d+ script \d+ aborted/g;
	is($aborted, $clients, "$table fill: every client was refused once");

	is($node->safe_psql('postgres', "SELECT count(*) FROM $table"),
		$quota, "$table: the committed rows are exactly the quota");
	is( $node->safe_psql(
			'postgres',
			"$clock SELECT rows_today || '/' || reserved_today || '/' || rows_this_month FROM gb_tenant_quotas
			  WHERE tenant_id = $tenant AND tbl = '$table'::regclass"),
		"$quota/0/$quota",
		"$table: gb_tenant_quotas counts the committed rows, none reserved");
	if ($table eq 'race_tree')
	{
		my ($zero, $one) = split /\|/, $node->safe_psql('postgres',
			"SELECT (SELECT count(*) FROM race_tree_0), (SELECT count(*) FROM race_tree_1)");
		ok($zero > 0 && $one > 0, "race_tree: rows in both partitions ($zero, $one)");
	}

	# Every refusal carried 53400, and there was no other error.
	my $log = log_since($log_offset);
	my @errors = $log =~ /^.*ERROR:.*$/mg;
	my @refusals =
	  grep { /ERROR:  53400: tenant $tenant is over its quota of rows per day in table public\.$table\b/ } @errors;
	is(scalar(@refusals), 2 * $clients, "$table: the server refused " . 2 * $clients . " statements");
	is(scalar(@errors), scalar(@refusals), "$table: every error was a 53400 refusal")
	  or diag join("\n", grep { !/53400/ } @errors);
	like($race . $fill, qr/over its quota of rows per day/, "$table: pgbench saw the refusals");
}

$node->stop;
done_testing();
