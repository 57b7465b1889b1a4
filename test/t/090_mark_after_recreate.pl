# The durable mark never goes backwards across DROP EXTENSION and CREATE
# EXTENSION: the new gb_scale.id_mark starts past every ID the running
# instance issued for this database's shards, so that IDs kept in tables
# outside the extension stay below new ones even after a restart with the
# generator ahead of the clock.  What no code can know, a restart between
# the DROP and the CREATE, is left to the SQL that README's Limits give the
# DBA; that SQL is tested here too.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

delete $ENV{SHARD_ID};

my $shard = 23;
my $node  = PostgreSQL::Test::Cluster->new('recreate');
$node->init;
# A lead bound of 10 minutes lets one call run the generator minutes ahead.
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = $shard
gb_scale.max_lead_ms = 600000
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
# The IDs live in a table that is no member of the extension.
$node->safe_psql('postgres', 'CREATE TABLE kept (id bigint PRIMARY KEY)');

# Runs the generator about two minutes ahead of the clock (500M IDs reserved
# in one step, only the first read), keeps the IDs that follow, and returns
# the largest ID issued.
sub run_ahead
{
	my ($label) = @_;
	$node->safe_psql('postgres', 'SELECT gb_next_ids(500000000) LIMIT 1');
	$node->safe_psql('postgres', 'INSERT INTO kept SELECT gb_next_ids(1000)');
	my ($max, $last, $lead) = split /\|/, $node->safe_psql(
		'postgres', qq{
SELECT (SELECT max(id) FROM kept), last_id, lead_ms
  FROM gb_id_generator_status() WHERE shard_id = $shard});
	is($max, $last, "$label: the table keeps the last ID issued");
	cmp_ok($lead, '>', 60000,
		"$label: the generator runs ahead of the clock ($lead ms)");
	return $max;
}

# The durable mark of a database, in ID milliseconds.
sub mark
{
	my ($db) = @_;
	return $node->safe_psql($db // 'postgres',
		'SELECT last_value FROM gb_scale.id_mark');
}

# --- 1. DROP and CREATE EXTENSION while the server runs, then a restart.
my $max = run_ahead('DROP/CREATE');
$node->safe_psql('postgres', 'DROP EXTENSION gb_scale');
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
cmp_ok(mark(), '>=', $max >> 22,
	'the new mark starts past every ID issued (in ms: mark >= max ID >> 22)');
$node->stop('immediate');
$node->start;
my $next = $node->safe_psql('postgres', 'SELECT gb_next_id()');
cmp_ok($next, '>', $max,
	'after DROP/CREATE EXTENSION and an immediate restart, a new ID is above every kept ID'
);
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FROM kept WHERE id >= (SELECT min(x) FROM gb_next_ids(1000) x)'),
	'0',
	'... and so are the following ones');

# Only this database's slots count: a new database's mark starts at 0.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION gb_scale');
is(mark('other'), '0', 'in a database that owns no shard the mark starts at 0');

# --- 2. A restart between DROP and CREATE: shared memory is gone, so the new
# mark cannot know the kept IDs.  README's SQL, run before the first ID, sets
# it past them.
$max = run_ahead('restart between DROP and CREATE');
$node->safe_psql('postgres', 'DROP EXTENSION gb_scale');
$node->stop('immediate');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
is(mark(), '0', 'after a restart between DROP and CREATE the mark starts at 0');
is( $node->safe_psql(
		'postgres',
		'SELECT max(id) > gb_id_from_time(clock_timestamp(), 1023::smallint) | 4095 FROM kept'),
	't',
	'... while the kept IDs lead the clock: new IDs would sort below them');
# As in README's Limits: one subquery per table that holds this database's IDs.
$node->safe_psql(
	'postgres', q{
SELECT setval('gb_scale.id_mark', GREATEST(
    (SELECT last_value FROM gb_scale.id_mark),
    (SELECT max(id) >> 22 FROM public.kept)));
});
$next = $node->safe_psql('postgres', 'SELECT gb_next_id()');
cmp_ok($next, '>', $max,
	'with README\'s setval run before the first ID, a new ID is above every kept ID');

# --- 3. gb_scale.id_mark_init() only runs inside CREATE EXTENSION.
my $mark_before = mark();
my ($ret, $out, $err) = $node->psql(
	'postgres', 'SELECT gb_scale.id_mark_init()',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$err,
	qr/ERROR:\s+55000: gb_scale\.id_mark_init\(\) can only be called by CREATE EXTENSION gb_scale/,
	'a superuser calling gb_scale.id_mark_init() is refused (55000)');
like($err, qr/HINT:\s+\S/, '... with a hint');
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN');
($ret, $out, $err) = $node->psql(
	'postgres', 'SELECT gb_scale.id_mark_init()',
	connstr => $node->connstr('postgres') . ' user=app',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+42501: permission denied for function id_mark_init/,
	'an ordinary role may not call it at all (42501)');
is(mark(), $mark_before, 'the mark was left alone');

$node->stop;
done_testing();
