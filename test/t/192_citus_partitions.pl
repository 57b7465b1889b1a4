# Copyright (c) gb_scale developers
#
# Managed partitions of tables distributed by Citus: a coordinator and two
# workers on loopback.
#  - rows waiting in the default partition (in its shards, on the workers)
#    move into partitions of their own, by CALL gb_run_maintenance() and by
#    the background worker; the new partitions are distributed and colocated;
#  - gb_partition_list's sizes and row estimates are the shards' figures, the
#    status view counts the default's rows on the shards;
#  - retention by the background worker retires expired partitions with a
#    plain DETACH under gb_scale.maintenance_lock_timeout: while a long
#    reader holds the table on the coordinator, each pass fails with the lock
#    timeout recorded in last_error and the application's queries keep
#    flowing; once the reader ends, the next pass retires them;
#  - layouts Citus cannot distribute (tenant hash buckets, the LIST layout,
#    gb_tenant_dedicate) are refused with 0A000 and a hint naming
#    isolate_tenant_to_new_shard.
#
# Needs Citus installed for this PostgreSQL: `test/citus.sh install` (as root;
# from ../shared/citus/ beside the repository, or GB_CITUS_TARBALL).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::Bin/lib";
use GbScaleTest;

my @nodes = citus_cluster(2, "timezone = 'UTC'\n");
my ($coord, @workers) = @nodes;

# one query on the coordinator; its error ends the test, and is shown
sub q1
{
	my ($ret, $out, $err) = $coord->psql('postgres', $_[0]);
	(my $msg = "query failed: $_[0]: $err") =~ s/\s+/ /g;
	BAIL_OUT($msg) if $ret != 0;
	return $out;
}

q1(q{
CREATE SCHEMA app;
CREATE TABLE app.msgs (tenant_id bigint NOT NULL, id bigint NOT NULL, created_at timestamptz NOT NULL,
                       body text, PRIMARY KEY (tenant_id, id, created_at)) PARTITION BY RANGE (created_at);
SELECT create_distributed_table('app.msgs', 'tenant_id');
SELECT gb_partition_create('app.msgs', 'created_at', '1 day', premake => '2 days', tenant_column => 'tenant_id',
                           default_partition => true) > 0;
INSERT INTO app.msgs SELECT t % 40, t, date_trunc('day', now()) + interval '10 days 1 hour', repeat('x', 200)
  FROM generate_series(1, 3000) t;
});

# where the rows of day N (from today) are: default or a partition, on the shards
sub day_partitions
{
	my ($days) = @_;
	return q1(qq{
SELECT count(*) FROM gb_partition_list('app.msgs')
 WHERE NOT is_default AND from_time = date_trunc('day', now()) + interval '$days days'});
}

is(q1(q{SELECT pg_relation_size('app.msgs_default')}), '0',
	"the coordinator's own copy of the default partition is empty");
is(q1('SELECT count(*) FROM app.msgs_default'), '3000', 'the default holds the rows on the shards');
is(q1(q{SELECT default_rows FROM gb_scale.partition_status WHERE parent = 'app.msgs'::regclass}),
	'3000', 'the status view counts the rows of the default on the shards');

# drain by CALL
q1('CALL gb_run_maintenance()');
is(q1('SELECT count(*) FROM app.msgs_default'), '0', 'CALL moved the rows out of the default partition');
is(day_partitions(10), '1', 'into a partition of their own day');
is(q1(q{
SELECT count(*) FROM app.msgs WHERE created_at >= date_trunc('day', now()) + interval '10 days'
                                AND created_at < date_trunc('day', now()) + interval '11 days'}),
	'3000', 'every row is in it');
my $p10 = q1(q{
SELECT partition FROM gb_partition_list('app.msgs')
 WHERE from_time = date_trunc('day', now()) + interval '10 days'});
is(q1(qq{
SELECT count(*) FROM pg_dist_partition p
 WHERE p.logicalrelid = '$p10'::regclass
   AND p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'app.msgs'::regclass)}),
	'1', "the new partition $p10 is distributed, colocated with its table");
is(q1(qq{SELECT pg_relation_size('$p10')}), '0', '... and its rows are on the shards only');
is(q1(q{SELECT coalesce(last_error, '') FROM gb_scale.partition_status WHERE parent = 'app.msgs'::regclass}),
	'', 'no error recorded');

# sizes and row estimates: the shards', not the coordinator's empty shell
q1("ANALYZE $p10");
is(q1(qq{
SELECT bytes = citus_total_relation_size('$p10') AND bytes > 256 * 1024
       AND bytes <> pg_total_relation_size('$p10')
  FROM gb_partition_list('app.msgs') WHERE partition = '$p10'::regclass}),
	't', 'gb_partition_list gives the size of the partition on the shards');
is(q1(qq{SELECT "rows" FROM gb_partition_list('app.msgs') WHERE partition = '$p10'::regclass}),
	'3000', '... and the row estimate summed over the shards');
# Citus' run_command_on_shards is PL/pgSQL naming format() unqualified: a
# schema first in the caller's search_path must not take it over
q1(q{
CREATE SCHEMA evil;
CREATE TABLE evil.hits (n int);
CREATE FUNCTION evil.format(text, text) RETURNS text LANGUAGE plpgsql
  AS $$BEGIN INSERT INTO evil.hits VALUES (1); RETURN $1; END$$;
});
is(q1(qq{SET search_path = evil, pg_catalog, public;
SELECT "rows" FROM gb_partition_list('app.msgs') WHERE partition = '$p10'::regclass}),
	'3000', 'the row estimate with a hostile schema first in search_path');
is(q1('SELECT count(*) FROM evil.hits'), '0', '... which ran none of its functions');

is(q1(q{SELECT gb_scale.sizing_rows('app.msgs')}), '3000', 'the sizing figures count the rows on the shards');
is(q1(q{SELECT count(*) || '/' || sum(row_count) FROM gb_scale.sizing_tenant_rows('app.msgs')}), '40/3000',
	'... per tenant too');

# A table with retention and no default partition (which the worker retired
# with DETACH ... CONCURRENTLY on a single node), with expired partitions.
q1(q{
CREATE ROLE app_user LOGIN;
GRANT USAGE ON SCHEMA app TO app_user;
CREATE TABLE app.logs (tenant_id bigint NOT NULL, created_at timestamptz NOT NULL, line text)
  PARTITION BY RANGE (created_at);
SELECT create_distributed_table('app.logs', 'tenant_id');
SELECT gb_partition_create('app.logs', 'created_at', '1 day', premake => '2 days', retention => '5 days') > 0;
SELECT gb_partition_ensure('app.logs', now() - interval '9 days', now()) > 0;
INSERT INTO app.logs SELECT t, now() - interval '8 days', 'old' FROM generate_series(1, 100) t;
GRANT SELECT, INSERT ON app.logs TO app_user;
});
my $expired = q{
SELECT count(*) FROM gb_partition_list('app.logs') WHERE to_time <= date_trunc('day', now() - interval '5 days')};
my $n_expired = q1($expired);
cmp_ok($n_expired, '>=', 3, "app.logs has $n_expired expired partitions");

# a long reader holds app.logs on the coordinator
my $long = $coord->background_psql('postgres', on_error_stop => 0);
$long->query_safe('BEGIN');
$long->query_safe('SELECT count(*) FROM app.logs');

# rows for the worker to drain, then the worker
q1(q{INSERT INTO app.msgs SELECT t, t, date_trunc('day', now()) + interval '20 days', 'w'
       FROM generate_series(1, 200) t});
set_instance_setting($coord, 'gb_scale.maintenance_databases', 'postgres');
set_instance_setting($coord, 'gb_scale.maintenance_naptime', '1');

ok($coord->poll_query_until('postgres', q{
SELECT last_error LIKE '%lock timeout%' FROM gb_scale.partition_status WHERE parent = 'app.logs'::regclass}),
	"the worker's retirement fails on the long reader's lock, and says so in last_error");
my $first_run = q1(q{SELECT last_run FROM gb_scale.partition_status WHERE parent = 'app.logs'::regclass});
ok($coord->poll_query_until('postgres', qq{
SELECT last_run > '$first_run' AND last_error LIKE '%lock timeout%'
  FROM gb_scale.partition_status WHERE parent = 'app.logs'::regclass}),
	'the next pass tries again, and records the lock timeout again');

# the application meanwhile: none of its queries waits for the long reader
my $app = $coord->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'app_user' ]);
my ($max_s, $errors) = (0, '');
for my $i (1 .. 40)
{
	my $t0 = time;
	my ($out, $ret) = $app->query(
		$i % 2
		? "INSERT INTO app.logs VALUES ($i, now(), 'new')"
		: "SELECT count(*) FROM app.logs WHERE tenant_id = $i AND created_at >= date_trunc('day', now())");
	my $s = time - $t0;
	$max_s = $s if $s > $max_s;
	$errors .= "$i: $app->{stderr}\n" if $ret != 0;
}
$app->quit;
note(sprintf('longest application query while retirement retried: %.3f s', $max_s));
is($errors, '', "the application's inserts and reads all succeed while retirement retries");
cmp_ok($max_s, '<', 5, 'none of them waits for the long reader (its queries stay short)');
is(q1($expired), $n_expired, 'the expired partitions stay while the reader holds the table');
is(q1(q{SELECT count(*) FROM app.logs WHERE line = 'new'}), '20', 'every insert is there');

$long->query_safe('COMMIT');
$long->quit;
ok($coord->poll_query_until('postgres', "SELECT ($expired) = 0"),
	'once the reader ends, the worker retires the expired partitions');
ok($coord->poll_query_until('postgres', q{
SELECT last_error IS NULL FROM gb_scale.partition_status WHERE parent = 'app.logs'::regclass}),
	'and last_error is cleared');
is(q1(q{
SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'app.logs%'}),
	q1(q{SELECT count(*) + 1 FROM gb_partition_list('app.logs')}),
	'the retired partitions are gone from Citus too');
is(q1(q{SELECT count(*) FROM app.logs WHERE line = 'old'}), '0', 'their rows with them');

# the worker drained the default partition too
ok($coord->poll_query_until('postgres', 'SELECT count(*) = 0 FROM app.msgs_default'),
	'the background worker moved the rows out of the default partition');
is(day_partitions(20), '1', 'into a partition of their own day');
is(q1(q{SELECT count(*) FROM app.msgs WHERE body = 'w'}), '200', 'no row lost');
set_instance_setting($coord, 'gb_scale.maintenance_naptime', '0');

# a drain the workers cannot make without firing a trigger: refused, in last_error
q1(q{
CREATE TABLE app.trg (tenant_id bigint NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT create_distributed_table('app.trg', 'tenant_id');
SELECT gb_partition_create('app.trg', 'created_at', '1 day', premake => '1 day', default_partition => true) > 0;
CREATE FUNCTION app.audit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN OLD; END$$;
SET citus.enable_unsafe_triggers = on;
CREATE TRIGGER audit_del BEFORE DELETE ON app.trg_default FOR EACH ROW EXECUTE FUNCTION app.audit();
INSERT INTO app.trg VALUES (1, now() + interval '10 days');
});
q1(q{CALL gb_run_maintenance('app.trg')});
like(q1(q{SELECT last_error FROM gb_scale.partition_status WHERE parent = 'app.trg'::regclass}),
	qr/cannot move rows of Citus table app\.trg_default to another partition: trigger "audit_del" on app\.trg_default would act on the move/,
	'a drain that would fire a trigger on the workers is refused, and says so in last_error');
is(q1('SELECT count(*) FROM app.trg_default'), '1', '... the row stays in the default');

# layouts Citus cannot distribute
q1(q{
CREATE TABLE app.events (tenant_id bigint NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT create_distributed_table('app.events', 'tenant_id');
CREATE TABLE app.bytenant (tenant_id bigint NOT NULL, created_at timestamptz NOT NULL) PARTITION BY LIST (tenant_id);
SELECT create_distributed_table('app.bytenant', 'tenant_id');
});
my $e = sql_error($coord, 'postgres', q{
SELECT gb_partition_create('app.events', 'created_at', '1 day', tenant_column => 'tenant_id', tenant_buckets => 4)});
is($e->{state}, '0A000', 'tenant hash buckets on a distributed table: 0A000');
like($e->{message}, qr/table app\.events is distributed by Citus, which cannot hold tenant hash buckets/,
	'... naming the table');
like($e->{hint}, qr/isolate_tenant_to_new_shard\('app\.events'/, '... hint: isolate_tenant_to_new_shard');
is(q1(q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'app.events'::regclass}), '0',
	'... and nothing was made');

$e = sql_error($coord, 'postgres', q{
SELECT gb_partition_create('app.bytenant', 'created_at', '1 day', tenant_column => 'tenant_id')});
is($e->{state}, '0A000', 'the LIST layout on a distributed table: 0A000');
like($e->{message}, qr/table app\.bytenant is distributed by Citus, which cannot hold the LIST layout/,
	'... naming the table');
like($e->{hint}, qr/isolate_tenant_to_new_shard/, '... hint: isolate_tenant_to_new_shard');

$e = sql_error($coord, 'postgres', q{SELECT gb_tenant_dedicate('app.msgs', 7)});
is($e->{state}, '0A000', 'gb_tenant_dedicate on a distributed table: 0A000');
like($e->{message}, qr/table app\.msgs is distributed by Citus/, '... naming the table');
like($e->{hint}, qr/isolate_tenant_to_new_shard\('app\.msgs', tenant_id, 'CASCADE'\)/,
	'... hint: isolate_tenant_to_new_shard');

# registered with such a layout first: Citus itself refuses to distribute it
q1(q{
CREATE TABLE app.local_list (tenant_id bigint NOT NULL, created_at timestamptz NOT NULL) PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('app.local_list', 'created_at', '1 day', tenant_column => 'tenant_id') > 0;
});
$e = sql_error($coord, 'postgres', q{SELECT create_distributed_table('app.local_list', 'tenant_id')});
like($e->{message}, qr/distributing multi-level partitioned tables is not supported/,
	'a LIST-layout table registered before: create_distributed_table refuses it');

$_->stop for @nodes;
done_testing();
