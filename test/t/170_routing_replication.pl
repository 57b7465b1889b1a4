# The shard directory kept in step by logical replication (issue 13, item
# 9): the apply worker fires the directory's ALWAYS row and TRUNCATE
# triggers, so a subscriber backend that already looked a tenant up answers
# the publisher's new placement at its next statement once the apply has
# caught up.  Also: an entry "in flux" (its writer between pre-commit and
# commit, held there by a synchronous-replication wait) is answered from the
# table, and the lookups refuse to run without shared_preload_libraries.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $conf = q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 1
wal_level = logical
max_wal_senders = 4
max_replication_slots = 4
};
my $pub = PostgreSQL::Test::Cluster->new('pub');
$pub->init(allows_streaming => 'logical');
$pub->append_conf('postgresql.conf', $conf);
$pub->start;
my $sub = PostgreSQL::Test::Cluster->new('sub');
$sub->init;
$sub->append_conf('postgresql.conf', $conf);
$sub->start;

for my $node ($pub, $sub)
{
	$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
}
$pub->safe_psql('postgres', q{
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (1, 'USA', 'us-east-1', 'dbname=one', 1, 1000), (2, 'DEU', 'eu-central-1', 'dbname=two', 1001, 2000);
SELECT gb_tenant_assign(6, 2::smallint);
CREATE PUBLICATION directory FOR TABLE gb_scale.shard_config, gb_scale.tenant_shard_map;
});
my $pub_conn = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION directory CONNECTION '$pub_conn' PUBLICATION directory");
$sub->wait_for_subscription_sync($pub, 'directory');

# A subscriber backend that looks tenants up before and after each change.
my $s = $sub->background_psql('postgres');
is($s->query_safe('SELECT gb_shard_for_tenant(5), gb_shard_for_tenant(6)'), '1|2',
	'the subscriber routes by the copied directory');
is($sub->safe_psql('postgres',
	q{SELECT state FROM gb_scale.routing_status WHERE database = current_database()}),
	'ready', "the subscriber's map is in shared memory");

$pub->safe_psql('postgres', 'SELECT gb_tenant_assign(5, 2::smallint)');
$pub->wait_for_catchup('directory');
is($s->query_safe('SELECT gb_shard_for_tenant(5), gb_shard_for_tenant(6)'), '2|2',
	'an assignment on the publisher is seen by the next statement once applied');

$pub->safe_psql('postgres', 'DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id = 6');
$pub->wait_for_catchup('directory');
is($s->query_safe('SELECT gb_shard_for_tenant(5), gb_shard_for_tenant(6)'), '2|1',
	'a removed placement too');
is($sub->safe_psql('postgres',
	q{SELECT state, entries, updates >= 2 FROM gb_scale.routing_status WHERE database = current_database()}),
	'ready|1|t', 'the apply updated the shared map entry by entry');

$pub->safe_psql('postgres',
	'UPDATE gb_scale.shard_config SET min_tenant_id = 1001, max_tenant_id = 3000 WHERE shard_id = 2');
$pub->safe_psql('postgres',
	'UPDATE gb_scale.shard_config SET max_tenant_id = 500 WHERE shard_id = 1');
$pub->wait_for_catchup('directory');
is($s->query_safe('SELECT gb_shard_for_tenant(400), gb_shard_for_tenant(2500)'),
	'1|2', 'a change of the shards is seen as well');
is(sql_error($sub, 'postgres', 'SELECT gb_shard_for_tenant(700)')->{state}, 'P0002',
	'tenant 700 lost its shard');

$pub->safe_psql('postgres', 'TRUNCATE gb_scale.tenant_shard_map');
$pub->wait_for_catchup('directory');
is($s->query_safe('SELECT gb_shard_for_tenant(5)'), '1', 'a replicated TRUNCATE is seen');
$s->query_safe('SELECT gb_shard_for_tenant(6)');
is($s->query_safe(
	q{SELECT state, entries FROM gb_scale.routing_status WHERE database = current_database()}),
	'ready|0', 'and the map was read again');
$s->quit;

# An entry in flux: the writer waits for a synchronous standby that does
# not exist, after its pre-commit marks; readers ask the table, which still
# shows the old placement; once released, the new one.
set_instance_setting($pub, 'synchronous_standby_names', 'nobody');
my $r = $pub->background_psql('postgres');
is($r->query_safe('SELECT gb_shard_for_tenant(7)'), '1', 'tenant 7 by range');
my $w = $pub->background_psql('postgres');
my $token = async_start($w, 'SELECT gb_tenant_assign(7, 2::smallint)');
$pub->poll_query_until('postgres',
	q{SELECT committing = 1 FROM gb_scale.routing_status WHERE database = current_database()})
  or die 'the writer did not reach its commit';
is($r->query_safe('SELECT gb_shard_for_tenant(7), gb_shard_for_tenant(8)'), '1|1',
	'an entry in flux is answered from the table: the commit is not visible yet');
set_instance_setting($pub, 'synchronous_standby_names', undef);
async_wait($w, $token);
is($r->query_safe('SELECT gb_shard_for_tenant(7)'), '2', 'committed: the new placement');
is($pub->safe_psql('postgres',
	q{SELECT committing, entries FROM gb_scale.routing_status WHERE database = current_database()}),
	'0|1', 'no writer left in flux');
$w->quit;
$r->quit;

# A transaction that changed the map and then dropped the extension
# commits; the extension made again routes from its new, empty map.
$pub->safe_psql('postgres', q{CREATE DATABASE dropper});
$pub->safe_psql('dropper', q{
CREATE EXTENSION gb_scale;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (1, 'USA', 'us-east-1', 'dbname=one', 1, 1000), (2, 'DEU', 'eu-central-1', 'dbname=two', 1001, 2000);
SELECT gb_tenant_assign(5, 2::smallint);
SELECT gb_shard_for_tenant(5);
});
$pub->safe_psql('dropper', q{
BEGIN;
SELECT gb_tenant_assign(5, 1::smallint);
DROP EXTENSION gb_scale;
COMMIT;
});
is($pub->safe_psql('dropper', q{
CREATE EXTENSION gb_scale;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (1, 'USA', 'us-east-1', 'dbname=one', 1, 1000), (2, 'DEU', 'eu-central-1', 'dbname=two', 1001, 2000);
SELECT gb_shard_for_tenant(5), (SELECT entries FROM gb_scale.routing_status WHERE database = current_database());
}), '1|0', 'DROP EXTENSION after a map change commits; the new extension starts from its own map');

# Without shared_preload_libraries the lookups say what is missing.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
my $e = sql_error($plain, 'postgres', 'SELECT gb_shard_for_tenant(1)');
is($e->{state}, '55000', 'without preload, gb_shard_for_tenant fails with 55000');
like($e->{hint}, qr/shared_preload_libraries/, '... and a hint naming shared_preload_libraries');
$plain->stop;

$sub->stop;
$pub->stop;
done_testing();
