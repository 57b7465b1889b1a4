# Tenant plans, settings and tier defaults through pg_dump / pg_restore: the
# rows come back, and gb_set_tenant() applies them in the restored database.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

delete $ENV{SHARD_ID};

my $node = PostgreSQL::Test::Cluster->new('settings_dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'gb_scale'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
CREATE EXTENSION gb_scale;
SELECT gb_tenant_plan(1, 2), gb_tenant_plan(2, 0);
SELECT gb_tenant_setting(1, 'work_mem', '7MB'), gb_tenant_setting(1, 'app.model', 'm1');
SELECT gb_plan_setting(2, 'statement_timeout', '30s'), gb_plan_setting(0, 'app.model', 'free-model');
});

my $rows = q{
SELECT string_agg(r, E'\n' ORDER BY r COLLATE "C") FROM (
    SELECT format('plan %s %s', tenant_id, tier) AS r FROM gb_scale.tenant_plan
    UNION ALL SELECT format('tenant %s %s %s %s', tenant_id, name, kind, value) FROM gb_scale.tenant_setting
    UNION ALL SELECT format('tier %s %s %s %s', tier, name, kind, value) FROM gb_scale.plan_setting) s};
my $before = $node->safe_psql('src', $rows);

my $file = $node->basedir . '/src.dump';
$node->command_ok(
	[ $node->installed_command('pg_dump'), '-Fc', '-f', $file, '-d', $node->connstr('src') ],
	'pg_dump -Fc of a database with tenant plans and settings');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok(
	[ $node->installed_command('pg_restore'), '--exit-on-error', '-d', $node->connstr('dst'), $file ],
	'pg_restore --exit-on-error into a new database');

is($node->safe_psql('dst', $rows), $before, 'plans, tenant settings and tier defaults are restored');
is( $node->safe_psql(
		'dst', q{
BEGIN;
SELECT gb_set_tenant(1);
SELECT concat_ws(' ', current_setting('work_mem'), current_setting('statement_timeout'),
                 gb_tenant_config('app.model'));
SELECT gb_set_tenant(2);
SELECT concat_ws(' ', current_setting('work_mem'), current_setting('statement_timeout'),
                 gb_tenant_config('app.model'));
COMMIT;}),
	"\n7MB 30s m1\n\n4MB 0 free-model",
	'gb_set_tenant applies the restored settings and configuration');

$node->stop;
done_testing();
