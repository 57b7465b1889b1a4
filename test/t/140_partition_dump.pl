# Partition registrations through pg_dump / pg_restore (issue 7):
#  - what a DBA does before the dump never leaves a configuration that breaks
#    the restore or maintenance: a registered table renamed, its schema
#    renamed, a registered table dropped, a schema holding one dropped, a
#    registration rolled back;
#  - pg_dump -Fc and pg_restore --exit-on-error into a new database bring
#    back every registration (same settings, same partitions, same rows);
#  - maintenance carries on in the restored database: a pass at a later
#    clock (gb_scale.test_now) does there exactly what it does in the
#    original, and the background worker, once the restored database is
#    listed, maintains it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pdump');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.maintenance_naptime = 1
timezone = 'UTC'
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE DATABASE src OWNER alice;
});
$node->safe_psql('src', q{
CREATE EXTENSION gb_scale;
CREATE SCHEMA app AUTHORIZATION alice;
CREATE SCHEMA old_name AUTHORIZATION alice;
CREATE SCHEMA doomed AUTHORIZATION alice;
CREATE SCHEMA archive AUTHORIZATION alice;
SET ROLE alice;
CREATE TABLE app.messages (
    id bigint NOT NULL, tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL, body text,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('app.messages', 'created_at', NULL, profile => 'messages',
    premake => '5 days', default_partition => true);
CREATE TABLE app."Odd ""Name""" ("Created At" timestamptz NOT NULL, tenant bigint NOT NULL)
    PARTITION BY RANGE ("Created At");
SELECT gb_partition_create('app."Odd ""Name"""', 'Created At', '1 month',
    premake => '2 months', retention => '3 months', tenant_column => 'tenant', tenant_buckets => 2);
SELECT gb_partition_retention('app."Odd ""Name"""', '3 months', 'archive', 'archive');
CREATE TABLE old_name.events (day date NOT NULL, n int) PARTITION BY RANGE (day);
SELECT gb_partition_create('old_name.events', 'day', '1 week', premake => '3 weeks',
    retention => '6 weeks', time_zone => 'America/Sao_Paulo');
CREATE TABLE app.to_rename (created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('app.to_rename', 'created_at', '1 day');
CREATE TABLE app.gone (created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('app.gone', 'created_at', '1 day');
CREATE TABLE doomed.t (created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('doomed.t', 'created_at', '1 day');
CREATE TABLE app.never (created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
INSERT INTO app.messages
SELECT g, g % 10, now() - interval '1 day' + g * interval '1 minute', 'm' || g
FROM generate_series(1, 2000) g;
INSERT INTO app.messages VALUES (9999999, 1, now() + interval '40 days', 'stray');
INSERT INTO app."Odd ""Name""" SELECT now(), g FROM generate_series(1, 50) g;
INSERT INTO old_name.events SELECT current_date, g FROM generate_series(1, 30) g;
});

# What a DBA does before the dump.
$node->safe_psql('src', q{
BEGIN;
SELECT gb_partition_create('app.never', 'created_at', '1 day');
ROLLBACK;
ALTER TABLE app.to_rename RENAME TO renamed;
ALTER SCHEMA old_name RENAME TO new_name;
DROP TABLE app.gone;
DROP SCHEMA doomed CASCADE;
});
is( $node->safe_psql('src', q{
SELECT string_agg(parent::text, ',' ORDER BY parent::text) FROM gb_scale.partition_config}),
	'app."Odd ""Name""",app.messages,app.renamed,new_name.events',
	'src: the registrations follow renames; dropped tables and the rolled-back one leave none');
is($node->safe_psql('src', q{SELECT count(*) FROM pg_class WHERE relname LIKE 'never_%'}),
	'0', 'src: the rolled-back registration left no partition');
is($node->safe_psql('src', q{SELECT count(*) FROM gb_scale.partition_tenant}),
	'0', 'src: no tenant registrations');
$node->safe_psql('src', 'CALL gb_run_maintenance()');
is( $node->safe_psql('src', q{SELECT count(*) FROM gb_scale.partition_config WHERE last_error IS NOT NULL}),
	'0', 'src: a maintenance pass after the renames and drops has no error');

my $config_sql = q{
SELECT parent::text, layout, granularity, premake, retention, retention_mode, archive_schema,
       tenant_buckets, default_partition, time_zone, profile
FROM gb_scale.partition_config ORDER BY parent::text};
my $parts_sql = q{
SELECT c.parent::text, l.partition::text, l.is_default, l.bucket, l.from_time, l.to_time, l.bounds,
       (SELECT relowner::regrole::text FROM pg_class WHERE oid = l.partition)
FROM gb_scale.partition_config c, gb_partition_list(c.parent) l
ORDER BY 1, 2};
my $rows_sql = q{
SELECT (SELECT count(*) || '/' || sum(id) FROM app.messages),
       (SELECT count(*) FROM app.messages_default),
       (SELECT count(*) FROM app."Odd ""Name"""),
       (SELECT count(*) FROM new_name.events)};

my %src = map { $_ => $node->safe_psql('src', $_) } ($config_sql, $parts_sql, $rows_sql);

my $file = $node->basedir . '/src.dump';
$node->command_ok(
	[ $node->installed_command('pg_dump'), '-Fc', '-f', $file, '-d', $node->connstr('src') ],
	'pg_dump -Fc of a database with registrations');
$node->safe_psql('postgres', 'CREATE DATABASE dst OWNER alice');
$node->command_ok(
	[ $node->installed_command('pg_restore'), '--exit-on-error', '-d', $node->connstr('dst'), $file ],
	'pg_restore --exit-on-error into a new database');

is($node->safe_psql('dst', $config_sql), $src{$config_sql}, 'dst: every registration is back, with its settings');
is($node->safe_psql('dst', $parts_sql), $src{$parts_sql}, 'dst: the same partitions, bounds and owners');
is($node->safe_psql('dst', $rows_sql), $src{$rows_sql}, 'dst: the same rows');

# Maintenance carries on: a pass 100 days later does the same in both.
for my $db ('src', 'dst')
{
	$node->safe_psql($db, q{
SELECT set_config('gb_scale.test_now', (now() + interval '100 days')::text, false);
CALL gb_run_maintenance();
});
	is( $node->safe_psql($db, q{
SELECT count(*) FROM gb_scale.partition_config
WHERE last_error IS NULL AND last_success IS NOT NULL}),
		'4', "$db: a pass 100 days later succeeds on the 4 tables");
}
my $parts_dst = $node->safe_psql('dst', $parts_sql);
is($parts_dst, $node->safe_psql('src', $parts_sql),
	'the pass 100 days later created and retired the same partitions in src and dst');
is( $node->safe_psql('dst', q{
SELECT count(*) FROM gb_partition_list('app.messages')
WHERE NOT is_default AND from_time <= now() + interval '100 days' AND to_time > now() + interval '100 days'}),
	'1', 'dst: the partition of the new clock exists');
is( $node->safe_psql('dst', q{
SELECT count(*) FROM gb_partition_list('app.messages') WHERE to_time <= now() + interval '10 days'}),
	'0', 'dst: retention (90 days) retired the partitions of the old rows');
is( $node->safe_psql('dst', q{
SELECT count(*) FROM pg_tables WHERE schemaname = 'archive'}),
	$node->safe_psql('src', q{SELECT count(*) FROM pg_tables WHERE schemaname = 'archive'}),
	'dst: the archive retention moved as many partitions to the archive schema as in src');
is($node->safe_psql('dst', q{SELECT count(*) FROM app.messages WHERE body = 'stray'}),
	'1', 'dst: the stray row is still there (40 days ahead, inside the retention)');

# The worker maintains the restored database once listed.
$node->append_conf('postgresql.conf', "gb_scale.maintenance_databases = 'dst'\n");
$node->reload;
$node->poll_query_until('postgres', 'SHOW gb_scale.maintenance_databases', 'dst');
my $ahead = q{now() + interval '2 days'};
my $p = $node->safe_psql('dst', qq{
SELECT partition FROM gb_partition_list('app.renamed')
WHERE from_time <= ($ahead) AND to_time > ($ahead)});
like($p, qr/^app\./, "dst: app.renamed has a partition two days ahead ($p)");
$node->safe_psql('dst', "DROP TABLE $p");
ok( $node->poll_query_until(
		'dst', qq{
SELECT count(*) = 1 FROM gb_partition_list('app.renamed')
WHERE from_time <= ($ahead) AND to_time > ($ahead)}),
	'dst: the worker recreates it');

$node->stop;
done_testing();
