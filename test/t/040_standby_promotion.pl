# gb_next_id() on a streaming standby, and after its promotion.
#
# A standby cannot issue IDs (they would not be durable on the primary), so
# gb_next_id() must fail there with SQLSTATE 25006.  The reservation mark is
# WAL-logged, so a promoted standby that replayed it must resume past every ID
# the old primary issued, even though the primary had run seconds ahead of
# the clock.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $shard = 9;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = $shard
# Let the test push the generator seconds ahead of the clock without waiting.
gb_scale.max_lead_ms = 60000
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION gb_scale;
	CREATE TABLE ids (id bigint NOT NULL);
	INSERT INTO ids SELECT gb_next_id() FROM generate_series(1, 1000);
});

# The standby gets the same postgresql.conf (same library, same shard id)
# with the base backup.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
is($standby->safe_psql('postgres', 'SHOW gb_scale.shard_id'),
	$shard, 'the standby has the same shard id');

# On the standby: a clear error with SQLSTATE 25006, for both functions.
for my $call ('gb_next_id()', 'gb_next_ids(10)')
{
	my ($ret, $stdout, $stderr) =
	  $standby->psql('postgres', "\\set VERBOSITY verbose\nSELECT $call");
	isnt($ret, 0, "standby: $call fails");
	my $name = $call =~ s/\(\d+\)/()/r;
	like(
		$stderr,
		qr/ERROR:  25006: cannot execute \Q$name\E during recovery/,
		"standby: $call reports SQLSTATE 25006 and why");
}
my ($ret, $stdout, $stderr) = $standby->psql('postgres', q{
	DO $$
	BEGIN
		PERFORM gb_next_id();
		RAISE NOTICE 'no error';
	EXCEPTION WHEN read_only_sql_transaction THEN
		RAISE NOTICE 'caught read_only_sql_transaction: %', SQLERRM;
	END $$;
});
like(
	$stderr,
	qr/caught read_only_sql_transaction: cannot execute gb_next_id\(\) during recovery/,
	'standby: the error can be caught as read_only_sql_transaction');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM gb_id_generator_status()'),
	0, 'standby: no shard slot is taken by the failed calls');

# On the primary: run seconds ahead of the clock (two blocks of 20M IDs,
# ~9.8 s of ID time, reserved without returning them), then keep issuing and
# committing IDs there.
for (1 .. 2)
{
	$primary->safe_psql('postgres',
		'SELECT x FROM (SELECT gb_next_ids(20000000) x) s LIMIT 1');
}
$primary->safe_psql('postgres', q{
	INSERT INTO ids SELECT gb_next_id() FROM generate_series(1, 10000);
	INSERT INTO ids SELECT gb_next_ids(100000);
	INSERT INTO ids SELECT gb_next_id();
});
my ($max_issued, $lead_ms) = split /\|/, $primary->safe_psql('postgres',
	"SELECT last_id, lead_ms FROM gb_id_generator_status() WHERE shard_id = $shard"
);
is($max_issued, $primary->safe_psql('postgres', 'SELECT max(id) FROM ids'),
	'primary: the last ID issued is in the table');
cmp_ok($lead_ms, '>', 5000, 'primary: the generator runs seconds ahead of the clock');

$primary->wait_for_catchup($standby);
is( $standby->safe_psql('postgres', 'SELECT count(*), max(id) FROM ids'),
	$primary->safe_psql('postgres', 'SELECT count(*), max(id) FROM ids'),
	'standby: replayed all IDs');
# The reservation mark, in ms since the IDs' epoch, came with the WAL.
cmp_ok($standby->safe_psql('postgres', 'SELECT last_value FROM gb_scale.id_mark'),
	'>=', $max_issued >> 22,
	'standby: the replayed reservation mark covers the last ID issued');

# A session opened on the standby while it is in recovery, used again after
# the promotion.
my $session = $standby->background_psql('postgres');
like($session->query('SELECT count(*) FROM ids'), qr/^\d+$/,
	'standby: a session is open before the promotion');

# Lose the primary, promote the standby.
$primary->stop('immediate');
my $log_offset = -s $standby->logfile;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';

my $first = $session->query_safe('SELECT gb_next_id()');
$session->quit;
cmp_ok($first, '>', $max_issued,
	'promoted: the first ID, from a session older than the promotion, is above every ID the old primary issued'
);
my $second = $standby->safe_psql('postgres', 'SELECT gb_next_id()');
cmp_ok($second, '>', $first, 'promoted: a new session continues above it');
like(
	slurp_file($standby->logfile, $log_offset),
	qr/gb_scale shard $shard resumes \d+ ms ahead of the clock, past its durable mark/,
	'promoted: the generator resumed from the replayed mark, ahead of the clock');

$standby->safe_psql('postgres',
	'INSERT INTO ids SELECT gb_next_id() FROM generate_series(1, 1000)');
my ($count, $distinct, $above, $shards) = split /\|/, $standby->safe_psql(
	'postgres', qq{
	SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id > $max_issued),
	       string_agg(DISTINCT gb_id_shard(id)::text, ',')
	FROM ids});
is($distinct, $count, 'promoted: no duplicate IDs across the promotion');
is($above, 1000, 'promoted: all new IDs are above the old primary\'s');
is($shards, $shard, 'promoted: IDs carry the shard id');

is( $standby->safe_psql(
		'postgres',
		'SELECT shard_id, database, ids_issued, last_id = (SELECT max(id) FROM ids) FROM gb_id_generator_status()'
	),
	"$shard|postgres|1002|t",
	'promoted: the status function reports the shard slot');

$standby->stop;
done_testing();
