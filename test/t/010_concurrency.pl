# Guarantee 1: IDs are unique across concurrent sessions, and each session's
# own IDs strictly increase in the order it asked for them.  Eight pgbench
# clients on two threads generate more than a million IDs, mixing per-row
# gb_next_id() with gb_next_ids(1000) runs, which must be contiguous and
# must not interleave with anybody else's IDs.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

delete $ENV{SHARD_ID};

my $shard = 42;
my $clients = 8;
my $per_client = 130;    # transactions per client, 1000 IDs each
my $ntx = $clients * $per_client;
my $total = $ntx * 1000;

my $node = PostgreSQL::Test::Cluster->new('conc');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = $shard
max_connections = 40
log_statement = none
});
$node->start;

# ord (bigserial, default cache 1) increases within a session in the order
# its rows were produced, so it records each session's issue order.
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION gb_scale;
CREATE TABLE ids (ord bigserial, client int NOT NULL, batch bigint, id bigint NOT NULL);
CREATE SEQUENCE batch_seq;
});
my $t_start = $node->safe_psql('postgres', 'SELECT now()');

# Three of four transactions take 1000 IDs one row at a time, the fourth
# takes a run of 1000 with gb_next_ids; either way 1000 rows per transaction.
$node->pgbench(
	"-n -c $clients -j 2 -t $per_client",
	0,
	[qr{number of transactions actually processed: $ntx/$ntx}],
	[],
	'8 clients on 2 threads generate IDs concurrently',
	{
		'010_single@3' => q{
INSERT INTO ids (client, id) SELECT :client_id, gb_next_id() FROM generate_series(1, 1000);
},
		'010_batch@1' => q{
SELECT nextval('batch_seq') AS b \gset
INSERT INTO ids (client, batch, id) SELECT :client_id, :b, x FROM gb_next_ids(1000) x;
},
	});
my $t_end = $node->safe_psql('postgres', 'SELECT now()');

$node->safe_psql('postgres', 'CREATE INDEX ids_id ON ids (id); ANALYZE ids');

my ($count, $distinct, $nclients, $wrong_shard) = split /\|/,
  $node->safe_psql('postgres',
	"SELECT count(*), count(DISTINCT id), count(DISTINCT client),
	        count(*) FILTER (WHERE gb_id_shard(id) <> $shard) FROM ids");
is($count, $total, "all $total IDs were stored");
cmp_ok($count, '>=', 1_000_000, 'at least a million IDs in total');
is($count - $distinct, 0, 'no duplicate IDs');
# Narrower check, to tell which path duplicated if the one above fails.
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) - count(DISTINCT id) FROM ids WHERE batch IS NULL'),
	'0',
	'no duplicates among the per-row gb_next_id() IDs alone');
is($nclients, $clients, "IDs came from $clients clients");
is($wrong_shard, 0, "every ID decodes to shard $shard");

# Each session's own IDs strictly increase in its issue order.
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (
    SELECT id, lag(id) OVER (PARTITION BY client ORDER BY ord) AS prev FROM ids) s
WHERE id <= prev}),
	'0',
	'within each session, IDs strictly increase in issue order');

# The sessions really ran concurrently: in global ID order, neighbouring
# IDs often belong to different clients.
my $switches = $node->safe_psql(
	'postgres', q{
SELECT count(*) FROM (
    SELECT client, lag(client) OVER (ORDER BY id) AS prev FROM ids) s
WHERE client <> prev});
cmp_ok($switches, '>', 100,
	"sessions interleaved ($switches client changes in ID order)");

# gb_next_ids(1000) runs: contiguous ticks ((ms << 12) | sequence) ...
my ($batches, $bad_batches) = split /\|/, $node->safe_psql(
	'postgres', q{
SELECT count(*), count(*) FILTER (WHERE n <> 1000 OR nd <> 1000 OR span <> 999)
FROM (SELECT batch, count(*) AS n, count(DISTINCT id) AS nd,
             max((id >> 22) * 4096 + (id & 4095)) - min((id >> 22) * 4096 + (id & 4095)) AS span
      FROM ids WHERE batch IS NOT NULL GROUP BY batch) b});
cmp_ok($batches, '>', 0, "gb_next_ids(1000) ran $batches times");
is($bad_batches, 0, 'every gb_next_ids(1000) run is 1000 contiguous IDs');

# ... issued in order within the run ...
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (
    SELECT id, lag(id) OVER (PARTITION BY batch ORDER BY ord) AS prev
    FROM ids WHERE batch IS NOT NULL) s
WHERE id <> prev + 1 AND (id & 4095) <> 0}),
	'0',
	'each run comes back in increasing order');

# ... and no other session's ID falls inside a run's range.
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (
    SELECT b.batch, count(*) AS inside
    FROM (SELECT batch, min(id) AS lo, max(id) AS hi FROM ids
          WHERE batch IS NOT NULL GROUP BY batch) b
    JOIN ids i ON i.id BETWEEN b.lo AND b.hi
    GROUP BY b.batch) s
WHERE inside <> 1000}),
	'0',
	'gb_next_ids runs are disjoint from all other IDs');

# Timestamps are those of the run: not before it started, and not past its
# end by more than the lead bound (2 s by default) plus a coarse-clock tick.
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM ids
WHERE gb_id_timestamp(id) < '$t_start'::timestamptz - interval '10 ms'
   OR gb_id_timestamp(id) > '$t_end'::timestamptz + interval '2010 ms'}),
	'0',
	'ID timestamps fall within the run');

# The generator counted exactly the IDs handed out, on this shard only.
is( $node->safe_psql(
		'postgres',
		'SELECT shard_id || \':\' || database || \':\' || ids_issued FROM gb_id_generator_status()'
	),
	"$shard:postgres:$total",
	'generator status: one shard, ids_issued equals the IDs stored');

$node->stop;
done_testing();
