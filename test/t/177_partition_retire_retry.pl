# Retiring partitions that the worker detached concurrently (issue 14, item 9).
#
# alice's table app.logs passes to bob (ALTER TABLE ... OWNER TO): its older
# partitions still belong to alice.  The worker detaches them concurrently
# and then drops them, as their own owner.  While an event trigger refuses
# DROP TABLE, that step fails: the failure is recorded in last_error (never
# only logged), the detached partitions are remembered in
# gb_scale.partition_retiring, and once DROP TABLE works again a later pass
# drops them and clears last_error.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('retire_retry');
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
CREATE ROLE bob LOGIN;
CREATE DATABASE wdb;
});
$node->safe_psql('wdb', q{
CREATE EXTENSION gb_scale;
CREATE SCHEMA app AUTHORIZATION alice;
GRANT CREATE, USAGE ON SCHEMA app TO bob;
CREATE TABLE public.block_drop (why text);
GRANT SELECT ON public.block_drop TO PUBLIC;
CREATE FUNCTION public.refuse_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM public.block_drop) THEN
        RAISE EXCEPTION 'DROP TABLE refused for this test';
    END IF;
END $$;
CREATE EVENT TRIGGER refuse_drop ON ddl_command_start WHEN TAG IN ('DROP TABLE')
    EXECUTE FUNCTION public.refuse_drop();
SET ROLE alice;
CREATE TABLE app.logs (id integer NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('app.logs', 'created_at', '1 day', premake => '3 days', retention => '5 days') > 0;
SELECT gb_partition_ensure('app.logs', now() - interval '9 days', now());
RESET ROLE;
ALTER TABLE app.logs OWNER TO bob;
INSERT INTO public.block_drop VALUES ('on');
});
my $old = $node->safe_psql('wdb', q{
SELECT count(*) FROM gb_partition_list('app.logs') l JOIN pg_class c ON c.oid = l.partition
 WHERE l.to_time <= now() - interval '5 days' AND c.relowner = 'alice'::regrole});
cmp_ok($old, '>=', 3, "app.logs (now bob's) has $old partitions of alice's due for retention");

my $leftovers = q{
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'app' AND c.relname LIKE 'logs_p%' AND c.relkind = 'r' AND NOT c.relispartition};

set_instance_setting($node, 'gb_scale.maintenance_naptime', '1');
ok( $node->poll_query_until(
		'wdb', qq{
SELECT ($leftovers) = $old AND (SELECT last_error LIKE '%DROP TABLE refused for this test%' FROM gb_scale.partition_config)}),
	'while DROP TABLE fails, the partitions are detached and the failure is in last_error');
is($node->safe_psql('wdb', q{SELECT count(*) FROM gb_scale.partition_retiring}),
	$old, 'the detached partitions are remembered for the next passes');

$node->safe_psql('wdb', q{DELETE FROM public.block_drop});
ok( $node->poll_query_until(
		'wdb', qq{
SELECT ($leftovers) = 0 AND (SELECT last_error IS NULL AND last_success >= last_run FROM gb_scale.partition_config)}),
	'once DROP TABLE works again, a later pass drops them and clears last_error');
set_instance_setting($node, 'gb_scale.maintenance_naptime', '0');
is($node->safe_psql('wdb', q{SELECT count(*) FROM gb_scale.partition_retiring}),
	'0', 'nothing left to retire');
is( $node->safe_psql('wdb', q{
SELECT (SELECT min(from_time) FROM gb_partition_list('app.logs')) = date_trunc('day', now() - interval '5 days')}),
	't', 'the table keeps exactly its retention');

$node->stop;
done_testing();
