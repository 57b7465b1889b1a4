# One database's long transaction delays no other database's maintenance
# (issue 14, item 8).
#
# Database dc (first in gb_scale.maintenance_databases) has partitions past
# retention and no default partition, so its worker retires them with DETACH
# ... CONCURRENTLY, which waits for a transaction that read the table.  While
# that transaction stays open, database dd's missing partition (dropped by
# hand) must be made again, and dc's next pass must not start a second worker
# there.  Once the transaction ends, dc's retirement completes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('databases');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
timezone = 'UTC'
gb_scale.maintenance_databases = 'dc, dd'
gb_scale.maintenance_naptime = 0
});
$node->start;

$node->safe_psql('postgres', q{CREATE DATABASE dc; CREATE DATABASE dd;});
my $setup = q{
CREATE EXTENSION gb_scale;
CREATE TABLE public.logs (id integer NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('public.logs', 'created_at', '1 day', premake => '3 days', retention => '5 days') > 0;
};
$node->safe_psql($_, $setup) for ('dc', 'dd');
$node->safe_psql('dc', q{SELECT gb_partition_ensure('public.logs', now() - interval '9 days', now())});
my $tomorrow = $node->safe_psql('dd', q{
SELECT partition FROM gb_partition_list('public.logs')
 WHERE from_time <= now() + interval '1 day' AND to_time > now() + interval '1 day'});
$node->safe_psql('dd', "DROP TABLE $tomorrow");
my $dd_covered = q{
SELECT count(*) FROM gb_partition_list('public.logs')
 WHERE from_time <= now() + interval '1 day' AND to_time > now() + interval '1 day'};
is($node->safe_psql('dd', $dd_covered), '0', "dd: tomorrow's partition $tomorrow is missing");

# A long transaction in dc that has read the table.
my $long = $node->background_psql('dc', on_error_stop => 0);
$long->query_safe('BEGIN');
$long->query_safe('SELECT count(*) FROM public.logs');

set_instance_setting($node, 'gb_scale.maintenance_naptime', '1');
ok( $node->poll_query_until(
		'dc', q{
SELECT count(*) > 0 FROM pg_inherits WHERE inhparent = 'public.logs'::regclass AND inhdetachpending}),
	"dc: the worker's concurrent detach waits for the long transaction");
ok($node->poll_query_until('dd', "SELECT ($dd_covered) = 1"),
	"dd: the missing partition is made again while dc's worker waits");
is( $node->safe_psql('dc', q{
SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'gb_scale maintenance' AND datname = 'dc'}),
	'1', 'dc: one worker, no second one started while the first waits');
is($node->safe_psql('dc', q{
SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.logs'::regclass AND inhdetachpending}),
	'1', 'dc: the detach is still waiting (the transaction is open)');

$long->query_safe('COMMIT');
$long->quit;
ok( $node->poll_query_until(
		'dc', q{
SELECT NOT EXISTS (SELECT FROM pg_inherits WHERE inhparent = 'public.logs'::regclass AND inhdetachpending)
   AND (SELECT min(from_time) FROM gb_partition_list('public.logs')) = date_trunc('day', now() - interval '5 days')}),
	'dc: once the transaction ends, the retirement completes');
set_instance_setting($node, 'gb_scale.maintenance_naptime', '0');

$node->stop;
done_testing();
