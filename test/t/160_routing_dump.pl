# The shard directory and tenant isolation through pg_dump / pg_restore
# (issue 8): shard_config and tenant_shard_map are dumped with their rows
# (the map after the shards it references), isolated tables keep their
# forced row level security, policies and registrations, and the restored
# database routes and isolates exactly like the original.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('rdump');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 4
timezone = 'UTC'
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
CREATE DATABASE src OWNER app;
});
$node->safe_psql('src', q{
CREATE EXTENSION gb_scale;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO app;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, is_primary, min_tenant_id, max_tenant_id, created_at) VALUES
    (1, 'USA', 'us-east-1', 'host=s1 dbname=gb', true, 1, 1000000, '2025-01-01 00:00:00+00'),
    (4, 'DEU', 'eu-central-1', 'host=s4 dbname=gb', false, 3000001, 4000000, '2025-01-02 00:00:00+00'),
    (6, 'SGP', 'ap-southeast-1', 'host=s6 dbname=gb', false, 5000001, 6000000, '2025-01-03 00:00:00+00');
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, is_active, min_tenant_id, max_tenant_id)
VALUES (7, 'JPN', 'ap-northeast-1', 'host=s7 dbname=gb', false, 1, 10);
SELECT gb_tenant_assign(t, 6::smallint) FROM generate_series(1, 50) t;
SELECT gb_tenant_assign(3000005, 1::smallint);
CREATE SCHEMA gb AUTHORIZATION app;
SET ROLE app;
CREATE TABLE gb.sessions (
    shard_id smallint NOT NULL DEFAULT gb_current_shard(),
    id bigint NOT NULL DEFAULT gb_next_id(),
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shard_id, id, created_at)
) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('gb.sessions', 'created_at', '1 month', premake => '2 months');
CREATE TABLE gb.bots (tenant_id bigint NOT NULL, name text);
INSERT INTO gb.bots SELECT t, 'bot ' || t FROM generate_series(1, 5) t;
INSERT INTO gb.sessions (tenant_id) SELECT t % 5 + 1 FROM generate_series(1, 100) t;
SELECT gb_tenant_isolation_enable('gb.sessions');
SELECT gb_tenant_isolation_enable('gb.bots');
});

# What the original says, to compare with the restored copy.
my $probe = q{
SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s', shard_id, region_code, datacenter,
                         connection_string, is_primary, is_active, min_tenant_id, max_tenant_id, created_at), E'\n'
                  ORDER BY shard_id) FROM gb_scale.shard_config
UNION ALL
SELECT string_agg(format('%s|%s|%s|%s', tenant_id, shard_id, region_code, created_at), E'\n' ORDER BY tenant_id)
  FROM gb_scale.tenant_shard_map
UNION ALL
SELECT string_agg(format('%s|%s', tbl, tenant_column), E'\n' ORDER BY tbl::text) FROM gb_scale.tenant_isolation
UNION ALL
SELECT string_agg(format('%s|%s|%s|%s', c.oid::regclass, c.relrowsecurity, c.relforcerowsecurity,
                         (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)), E'\n' ORDER BY c.oid::regclass::text)
  FROM pg_class c WHERE c.relnamespace = 'gb'::regnamespace AND c.relkind IN ('r', 'p')
UNION ALL
SELECT string_agg(format('%s=%s', t, gb_shard_for_tenant(t)), ' ' ORDER BY t)
  FROM unnest(ARRAY[1, 49, 51, 999999, 3000001, 3000005, 5000001, 5999999]::bigint[]) t
};
my $before = $node->safe_psql('src', $probe);
like($before, qr/^1\|USA\|us-east-1\|host=s1 dbname=gb\|t\|t\|1\|1000000\|2025-01-01/m, 'the directory holds the shards');

my $file = $node->basedir . '/src.dump';
$node->command_ok(
	[ $node->installed_command('pg_dump'), '-Fc', '-f', $file, '-d', $node->connstr('src') ],
	'pg_dump -Fc of a database with a shard directory and isolated tables');
$node->safe_psql('postgres', 'CREATE DATABASE dst OWNER app');
$node->command_ok(
	[ $node->installed_command('pg_restore'), '--exit-on-error', '-d', $node->connstr('dst'), $file ],
	'pg_restore --exit-on-error into a new database');

is($node->safe_psql('dst', $probe), $before,
	'restored: the same shards, map entries (with created_at), isolation registrations, forced RLS and policies, and routing answers');

# Constraints still hold in the copy.
my ($ret, $out, $err) = $node->psql('dst',
	q{INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
      VALUES (8, 'GBR', 'eu-west-2', 'x', 3500000, 3600000)});
like($err, qr/shard_config_active_ranges_disjoint/, 'the restored directory still refuses overlapping ranges');
($ret, $out, $err) = $node->psql('dst',
	q{INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (77, 4, 'USA')});
like($err, qr/tenant_shard_map_region_matches_shard/, 'and map entries in another region than their shard');

# Isolation works in the copy, for the owner, and new rows get the copy's
# shard (two databases of one instance cannot share one).
$node->safe_psql('postgres', 'ALTER DATABASE dst SET gb_scale.shard_id = 5');
is( $node->safe_psql('dst', q{
SET ROLE app;
SELECT (SELECT count(*) FROM gb.sessions) || '/' || (SELECT count(*) FROM gb.bots);
BEGIN;
SELECT gb_set_tenant(3);
INSERT INTO gb.sessions (tenant_id) VALUES (3);
SELECT (SELECT count(*) FROM gb.sessions) || '/' || (SELECT count(*) FROM gb.bots)
    || '/' || (SELECT count(*) FROM gb.sessions WHERE shard_id = 5 AND gb_shard_for_id(id) = 5);
COMMIT;
}), "0/0\n\n21/1/1", 'the restored tables show nothing without a tenant, and only its rows with one');
($ret, $out, $err) = $node->psql('dst', q{SET ROLE app; INSERT INTO gb.bots VALUES (9, 'x')});
like($err, qr/no tenant is set for this transaction/, 'and refuse writes without a tenant');

# Export and purge see the restored registrations.
is( $node->safe_psql('dst', q{
SELECT string_agg(table_name || '=' || n, ' ' ORDER BY table_name::text)
  FROM (SELECT table_name, count(*) AS n FROM gb_tenant_export(2) GROUP BY 1) e}),
	'gb.bots=1 gb.sessions=20', 'gb_tenant_export in the restored database');

$node->stop;
done_testing();
