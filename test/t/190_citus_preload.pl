# gb_scale loaded together with Citus (shared_preload_libraries = 'citus,
# gb_scale', Citus first as it demands): PostgreSQL 15 gives a backend 10
# relcache invalidation callbacks for every library together, Citus takes 5
# and the planner 1, so gb_scale must use one slot for all its caches
# (CREATE EXTENSION citus failed with "out of relcache_callback_list slots"
# while gb_scale registered one per cache).  On a single-node Citus (the
# coordinator holds the shards), tenants' router queries on a table
# distributed by tenant_id count for the tenant in gb_stat_tenants and in
# Citus' citus_stat_tenants, and gb_scale's caches still see invalidations.
#
# Needs Citus installed for this PostgreSQL: `test/citus.sh install` (as root;
# from ../shared/citus/ beside the repository, or GB_CITUS_TARBALL).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($pkglibdir) = run_command([ 'pg_config', '--pkglibdir' ]);
chomp $pkglibdir;
BAIL_OUT("Citus is not installed for this PostgreSQL (no $pkglibdir/citus.so): run test/citus.sh install as root")
  unless -f "$pkglibdir/citus.so";

my $node = PostgreSQL::Test::Cluster->new('citus_single');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'citus,gb_scale'
gb_scale.shard_id = 1
listen_addresses = '127.0.0.1'
});
$node->start;
my $port = $node->port;

# Each statement in its own session: every new backend registers the
# callbacks of both libraries afresh.
$node->safe_psql('postgres', 'CREATE EXTENSION citus');
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
$node->safe_psql('postgres',
	"SELECT citus_set_coordinator_host('127.0.0.1', $port)");
$node->safe_psql('postgres',
	"SELECT citus_set_node_property('127.0.0.1', $port, 'shouldhaveshards', true)");
$node->safe_psql(
	'postgres', q{
CREATE TABLE ct_accounts (tenant_id bigint NOT NULL, id int NOT NULL, v int NOT NULL,
                          PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('ct_accounts', 'tenant_id');
INSERT INTO ct_accounts SELECT t, i, t * i FROM generate_series(1, 20) t, generate_series(1, 5) i;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM citus_shards'),
	'32', 'the coordinator holds the 32 shards of the distributed table');

$node->safe_psql('postgres',
	"SELECT citus_stat_tenants_reset(); SELECT gb_stat_tenants_reset()");
is( $node->safe_psql(
		'postgres', q{
SET citus.stat_tenants_track = 'all';
BEGIN;
SELECT gb_set_tenant(7);
INSERT INTO ct_accounts VALUES (7, 100, 1);
SELECT v FROM ct_accounts WHERE tenant_id = 7 AND id = 3;
COMMIT;
}),
	"\n21", "a tenant's router queries run on the single node");
is( $node->safe_psql(
		'postgres', q{
SELECT reads, writes, rows_returned, rows_inserted, xacts FROM gb_stat_tenants
 WHERE database = current_database() AND tenant_id = 7}),
	'2|1|2|1|1',
	'gb_stat_tenants counts the tenant\'s statements, rows and transaction once');
# Citus runs the statement on the local shard through the executor a second
# time, nested in the distributed one: that run's rows are not counted again.
is( $node->safe_psql(
		'postgres', q{
SELECT read_count_in_this_period, query_count_in_this_period FROM citus_stat_tenants
 WHERE tenant_attribute = '7'}),
	'1|2', 'citus_stat_tenants counts the same queries for tenant 7');

# gb_scale's caches behind the shared slot still hear of changes: with Citus
# as the engine (ct_accounts is distributed by tenant_id) a tenant's shard is
# the directory's row for the node holding it, and a change of that row is
# routed by the next statement of a session that used the directory before.
is( $node->safe_psql(
		'postgres', qq{
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string,
                                   is_primary, is_active, min_tenant_id, max_tenant_id)
VALUES (1, 'USA', 'us-east-1', 'host=127.0.0.1 port=$port dbname=postgres', true, true, 1, 1000);
SELECT gb_shard_for_tenant(5);
UPDATE gb_scale.shard_config SET shard_id = 2 WHERE shard_id = 1;
SELECT gb_shard_for_tenant(1500);
}),
	"1\n2",
	'the routing cache sees a shard changed in the same session');

$node->stop;
done_testing();
