# gb_stat_tenants when full: with gb_scale.stat_tenants_max = 10, new tenants
# evict the least active entries (by a score that halves every idle period),
# never the busy ones, and gb_stat_tenants_info counts each eviction.  Then
# the periods: a tenant's counts move from the current period to the
# previous one and out, while the totals since reset stay.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;

my $node = PostgreSQL::Test::Cluster->new('evict');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 1
gb_scale.stat_tenants_max = 10
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale; SELECT gb_stat_tenants_reset();');

is($node->safe_psql('postgres', 'SELECT capacity, entries, evictions FROM gb_stat_tenants_info'),
	'10|1|0', 'capacity 10, only the no-tenant entry after the reset');

# A busy "no tenant" session and a busy tenant 1, then 21 tenants with one
# statement each: 23 entries for 10 places.
$node->safe_psql('postgres', join('', map { "SELECT $_;\n" } 1 .. 20));
$node->safe_psql('postgres',
	"BEGIN; SELECT gb_set_tenant(1);\n" . join('', map { "SELECT $_;\n" } 1 .. 30) . "COMMIT;\n");
$node->safe_psql('postgres',
	join('', map { "BEGIN; SELECT gb_set_tenant($_); COMMIT;\n" } 100 .. 120));

is($node->safe_psql('postgres', 'SELECT capacity, entries, evictions FROM gb_stat_tenants_info'),
	'10|10|13', 'full at 10 entries, 13 evictions counted');
is( $node->safe_psql(
		'postgres', q{
SELECT coalesce(string_agg(coalesce(tenant_id::text, 'none'), ',' ORDER BY tenant_id NULLS FIRST), '')
  FROM gb_stat_tenants WHERE database = current_database()}),
	'none,1,113,114,115,116,117,118,119,120',
	'the busy entries stay; the oldest of the idle ones went first');
is( $node->safe_psql(
		'postgres', 'SELECT reads, xacts FROM gb_stat_tenants WHERE tenant_id = 1'),
	'31|1', 'the busy tenant kept its counts');

# Periods of 5 s.  The workload starts just after a period begins (periods
# are aligned on the clock), so that it falls in one period.
set_instance_setting($node, 'gb_scale.stat_tenants_period', '5');
$node->safe_psql('postgres', q{
SELECT pg_sleep(5.2 - (extract(epoch FROM clock_timestamp())::numeric % 5));
BEGIN;
SELECT gb_set_tenant(500);
SELECT 1;
SELECT 2;
COMMIT;
});
is( $node->safe_psql(
		'postgres', 'SELECT reads, xacts, reads_current, xacts_current FROM gb_stat_tenants WHERE tenant_id = 500'),
	'3|1|3|1', 'the current period holds the new work');
ok( $node->poll_query_until(
		'postgres', q{
SELECT reads_current = 0 AND xacts_current = 0 AND reads_previous = 3 AND xacts_previous = 1 AND reads = 3
  FROM gb_stat_tenants WHERE tenant_id = 500}),
	'a period later, the work is in the previous period');
ok( $node->poll_query_until(
		'postgres', q{
SELECT reads_current = 0 AND reads_previous = 0 AND reads = 3 AND xacts = 1
  FROM gb_stat_tenants WHERE tenant_id = 500}),
	'two periods later, only the totals since reset hold it');

# Resetting everything clears the eviction count and records the time.
$node->safe_psql('postgres', 'SELECT gb_stat_tenants_reset()');
is( $node->safe_psql(
		'postgres', q{SELECT entries, evictions, last_reset > now() - interval '1 minute' FROM gb_stat_tenants_info}),
	'1|0|t', 'reset: no evictions, a fresh reset time');

$node->stop;

# Without shared_preload_libraries the views and resets fail clearly.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
for my $sql ('SELECT * FROM gb_stat_tenants', 'SELECT * FROM gb_stat_tenants_info',
	'SELECT gb_stat_tenants_reset()', 'SELECT gb_stat_tenants_reset(1)')
{
	my $e = sql_error($plain, 'postgres', $sql);
	is($e->{state}, '55000', "without the preload, $sql fails with 55000");
	like($e->{hint}, qr/shared_preload_libraries/, '... and the hint names shared_preload_libraries');
}
$plain->stop;

done_testing();
