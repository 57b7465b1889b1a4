# A table owner's code in the worker's DETACH PARTITION ... CONCURRENTLY
# (issue 14, item 1).
#
# alice's IMMUTABLE function app.shift() tries to make her a superuser when a
# superuser runs it.  It sits in a CHECK constraint of two partitions past
# retention; PostgreSQL folds the constant call when it detaches such a
# partition (it looks for a constraint that implies the partition's bounds),
# which in the worker would run it as the bootstrap superuser.  A third old
# partition references nothing of hers and is detached concurrently.
# After the worker's pass: every partition past retention is gone, alice's
# function never ran as another role, and alice is still an ordinary role.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hostile_detach');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
timezone = 'UTC'
gb_scale.maintenance_databases = 'wdb'
gb_scale.maintenance_naptime = 0
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE DATABASE wdb;
});
$node->safe_psql('wdb', q{
CREATE EXTENSION gb_scale;
CREATE SCHEMA app AUTHORIZATION alice;
SET ROLE alice;
CREATE TABLE app.calls (usr name, su boolean);
CREATE FUNCTION app.promote() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.calls SELECT current_user, rolsuper FROM pg_catalog.pg_roles
     WHERE rolname OPERATOR(pg_catalog.=) current_user;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
        EXECUTE 'ALTER ROLE alice SUPERUSER';
    END IF;
EXCEPTION WHEN OTHERS THEN
    NULL;
END $$;
CREATE FUNCTION app.shift(integer) RETURNS integer IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.promote();
    RETURN $1;
END $$;
CREATE TABLE app.logs (id integer NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('app.logs', 'created_at', '1 day', premake => '3 days', retention => '5 days') > 0;
SELECT gb_partition_ensure('app.logs', now() - interval '9 days', now());
});
my $old = $node->safe_psql('wdb', q{
SELECT string_agg(partition::text, ' ' ORDER BY from_time) FROM gb_partition_list('app.logs')
 WHERE to_time <= now() - interval '5 days'});
my @old = split / /, $old;
cmp_ok(scalar(@old), '>=', 3, "app.logs has partitions due for retention: @old");
psql_as($node, 'wdb', 'alice', qq{
ALTER TABLE $old[0] ADD CONSTRAINT guard CHECK (app.shift(1) OPERATOR(pg_catalog.=) 1);
ALTER TABLE $old[1] ADD CONSTRAINT guard CHECK (id OPERATOR(pg_catalog.>) app.shift(-100));
DELETE FROM app.calls;
});

set_instance_setting($node, 'gb_scale.maintenance_naptime', '1');
ok( $node->poll_query_until(
		'wdb', q{
SELECT (SELECT min(from_time) FROM gb_partition_list('app.logs')) = date_trunc('day', now() - interval '5 days')}),
	'the worker retires every partition past retention');
set_instance_setting($node, 'gb_scale.maintenance_naptime', '0');
is( $node->safe_psql('wdb', q{
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'app' AND c.relname LIKE 'logs_p%' AND NOT c.relispartition}),
	'0', 'none of them is left detached');
is( $node->safe_psql('wdb', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}),
	'f', 'alice is still an ordinary role');
is( $node->safe_psql('wdb', q{SELECT count(*) FROM app.calls WHERE su OR usr <> 'alice'}),
	'0', "alice's function never ran as another role");
is( $node->safe_psql('wdb', q{SELECT coalesce(last_error, 'none') FROM gb_scale.partition_config}),
	'none', 'no error recorded');

$node->stop;
done_testing();
