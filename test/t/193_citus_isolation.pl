# Copyright (c) gb_scale developers
#
# Tenant isolation on Citus: a coordinator and two workers on loopback.
# gb_tenant_isolation_enable before or after create_distributed_table puts
# the policies on every shard; the tenant set by gb_set_tenant on the
# coordinator reaches every worker a query touches (router and multi-shard
# reads and writes, INSERT..SELECT, COPY out), so a tenant reads and writes
# exactly its rows; COPY FROM is refused as PostgreSQL refuses it under row
# level security; no client sets the tenant by SET on any node, and a role
# that may not call gb_set_tenant cannot set it on a worker through the
# forwarding function, Citus' SET propagation or run_command_on_workers;
# gb_tenant_export and gb_tenant_purge work on isolated distributed tables.
#
# Needs Citus installed for this PostgreSQL: `test/citus.sh install` (as root;
# from ../shared/citus/ beside the repository, or GB_CITUS_TARBALL).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use GbScaleTest;

my @nodes = citus_cluster(2);
my ($coord, @workers) = @nodes;

# every shard of TABLE has row level security (forced, unless NOFORCE: a
# partition's) and the four policies
sub shards_isolated
{
	my ($table, $noforce) = @_;
	my $force = $noforce ? 'NOT c.relforcerowsecurity' : 'c.relforcerowsecurity';
	return $coord->safe_psql(
		'postgres', qq{
SELECT count(*) FILTER (WHERE result = 't') || '/' || count(*)
  FROM run_command_on_shards('$table', \$\$
    SELECT c.relrowsecurity AND $force
           AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                 AND p.polname IN ('gb_tenant_read', 'gb_tenant_insert',
                                   'gb_tenant_update', 'gb_tenant_delete')) = 4
      FROM pg_class c WHERE c.oid = '%s'::regclass\$\$)});
}

my $nshards = $coord->safe_psql('postgres', 'SHOW citus.shard_count');

# the application's roles: the tables' owner, the application (may switch
# tenants) and an ordinary role with the same table rights but no
# gb_set_tenant; Citus makes the roles on the workers
$coord->safe_psql(
	'postgres', q{
CREATE ROLE app_owner LOGIN;
CREATE ROLE app LOGIN;
CREATE ROLE intruder LOGIN;
CREATE SCHEMA app AUTHORIZATION app_owner;
GRANT USAGE ON SCHEMA app TO app, intruder;
});
$_->safe_psql('postgres', 'GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO app') for @nodes;

# isolation enabled after distributing
psql_as(
	$coord, 'postgres', 'app_owner', q{
CREATE TABLE app.conv (tenant_id bigint NOT NULL, id int NOT NULL, body text,
                       PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('app.conv', 'tenant_id');
INSERT INTO app.conv SELECT t, i, 'b' FROM generate_series(1, 10) t, generate_series(1, 10) i;
SELECT gb_tenant_isolation_enable('app.conv');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.conv TO app, intruder;
});
is(shards_isolated('app.conv'), "$nshards/$nshards",
	'isolation enabled after distributing: every shard has the policies');

# isolation enabled, then distributed
psql_as(
	$coord, 'postgres', 'app_owner', q{
CREATE TABLE app.conv2 (tenant_id bigint NOT NULL, id int NOT NULL, body text,
                        PRIMARY KEY (tenant_id, id));
SELECT gb_tenant_isolation_enable('app.conv2');
SELECT create_distributed_table('app.conv2', 'tenant_id', colocate_with => 'app.conv');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.conv2 TO app, intruder;
});
is(shards_isolated('app.conv2'), "$nshards/$nshards",
	'isolation enabled, then distributed: every shard has the policies');

# with Citus' DDL propagation off, the policies still reach the shards
psql_as(
	$coord, 'postgres', 'app_owner', q{
CREATE TABLE app.conv3 (tenant_id bigint NOT NULL, id int NOT NULL);
SELECT create_distributed_table('app.conv3', 'tenant_id', colocate_with => 'app.conv');
SET citus.enable_ddl_propagation = off;
SELECT gb_tenant_isolation_enable('app.conv3');
});
is(shards_isolated('app.conv3'), "$nshards/$nshards",
	'isolation enabled with DDL propagation off: still on every shard');
is(psql_as($coord, 'postgres', 'app_owner', q{
SET citus.enable_ddl_propagation = off;
SELECT gb_tenant_isolation_disable('app.conv3');
SHOW citus.enable_ddl_propagation}), "\noff", 'the session keeps its own propagation setting');
is(shards_isolated('app.conv3'), "0/$nshards", 'disabling removes the policies from every shard');
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM run_command_on_shards('app.conv3', \$\$SELECT relrowsecurity FROM pg_class WHERE oid = '%s'::regclass\$\$) WHERE result = 'f'"),
	$nshards, 'and turns row level security off on every shard');

# a distributed partitioned table: the shards of its partitions, also of a
# partition made after isolation was enabled
psql_as(
	$coord, 'postgres', 'app_owner', q{
CREATE TABLE app.events (tenant_id bigint NOT NULL, at date NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT create_distributed_table('app.events', 'tenant_id', colocate_with => 'app.conv');
SELECT gb_tenant_isolation_enable('app.events');
CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
GRANT SELECT, INSERT ON app.events TO app;
});
is(join(' ', map { shards_isolated($_, 1) } ('app.events_2025', 'app.events_2026')),
	"$nshards/$nshards $nshards/$nshards", 'every shard of every partition has the policies');

# every query shape, as the application with tenant 3
sub as_tenant
{
	my ($tenant, $sql, $node) = @_;
	return psql_as($node // $coord, 'postgres', 'app',
		"BEGIN; SELECT gb_set_tenant($tenant) \\gset\n$sql\nCOMMIT;");
}

is(as_tenant(3, 'SELECT count(*) FROM app.conv WHERE tenant_id = 3;'),
	'10', 'router SELECT: the tenant reads its 10 rows on the worker');
is(as_tenant(3, 'SELECT count(*) FROM app.conv WHERE tenant_id = 4;'),
	'0', 'router SELECT of another tenant: no row');
is(as_tenant(3, 'SELECT count(*), min(tenant_id), max(tenant_id) FROM app.conv;'),
	'10|3|3', 'multi-shard SELECT: exactly the tenant\'s rows from both workers');
is(as_tenant(3, "SELECT count(*) FROM app.conv WHERE body = 'b' AND id > 5;"),
	'5', 'multi-shard SELECT with a filter');
is(as_tenant(3, "WITH u AS (UPDATE app.conv SET body = 'r' WHERE tenant_id = 3 AND id = 1 RETURNING 1) SELECT count(*) FROM u;"),
	'1', 'router UPDATE of the tenant\'s row');
is(as_tenant(3, "WITH u AS (UPDATE app.conv SET body = 'r' WHERE tenant_id = 4 RETURNING 1) SELECT count(*) FROM u;"),
	'0', 'router UPDATE of another tenant\'s rows changes nothing');
is(as_tenant(3, "UPDATE app.conv SET body = 'm' WHERE id <= 5; SELECT count(*) FROM app.conv WHERE body = 'm';"),
	'5', 'multi-shard UPDATE changes the tenant\'s rows');
is($coord->safe_psql('postgres', "SELECT count(*), min(tenant_id), max(tenant_id) FROM app.conv WHERE body IN ('m', 'r')"),
	'5|3|3', 'and no other tenant\'s row');
is(as_tenant(3, 'DELETE FROM app.conv WHERE tenant_id = 3 AND id = 10; DELETE FROM app.conv WHERE tenant_id = 4 AND id = 10; DELETE FROM app.conv WHERE id = 9 AND tenant_id IN (5, 6);'),
	'', 'router DELETEs');
is($coord->safe_psql('postgres', 'SELECT string_agg(tenant_id::text, \',\' ORDER BY tenant_id) FROM app.conv WHERE id >= 9'),
	'1,1,2,2,3,4,4,5,5,6,6,7,7,8,8,9,9,10,10', 'only the tenant\'s row was deleted');
is(as_tenant(3, "INSERT INTO app.conv VALUES (3, 10, 'new'); SELECT count(*) FROM app.conv;"),
	'10', 'router INSERT of the tenant\'s row');
my $e = sql_error($coord, 'postgres', "BEGIN; SELECT gb_set_tenant(3); INSERT INTO app.conv VALUES (4, 11, 'x');",
	user => 'app');
like($e->{message}, qr/new row violates row-level security policy/, 'router INSERT of another tenant\'s row is refused');
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(3); INSERT INTO app.conv VALUES (3, 12, 'x'), (4, 12, 'x');", user => 'app');
like($e->{message}, qr/new row violates row-level security policy/, 'a multi-row INSERT naming another tenant is refused');
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(3); UPDATE app.conv SET tenant_id = 4 WHERE tenant_id = 3 AND id = 2;", user => 'app');
like($e->{message}, qr/new row violates row-level security policy|modifying the partition value/,
	'an UPDATE cannot give a row to another tenant');

# INSERT..SELECT between colocated tables, pushed down to the workers
is(as_tenant(3, 'INSERT INTO app.conv2 SELECT * FROM app.conv; SELECT count(*) FROM app.conv2;'),
	'10', 'INSERT..SELECT pushed down copies the tenant\'s rows');
is($coord->safe_psql('postgres', 'SELECT count(*), min(tenant_id), max(tenant_id) FROM app.conv2'),
	'10|3|3', 'and only those');
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(3); INSERT INTO app.conv2 SELECT tenant_id + 1, id + 100, body FROM app.conv;",
	user => 'app');
like($e->{message}, qr/new row violates row-level security policy/,
	'INSERT..SELECT writing another tenant\'s rows is refused');
is(as_tenant(3, 'INSERT INTO app.conv2 SELECT tenant_id, id + 100, body FROM app.conv WHERE id <= 2; SELECT count(*) FROM app.conv2;'),
	'12', 'INSERT..SELECT with a filter, pushed down');
# Citus writes the rows it pulled to the coordinator with COPY, which the
# workers refuse under row level security: a clear error, nothing written
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(3); INSERT INTO app.conv2 SELECT tenant_id, id + 200, body FROM app.conv ORDER BY id LIMIT 2;",
	user => 'app');
like($e->{message}, qr/COPY FROM not supported with row-level security/,
	'INSERT..SELECT through the coordinator is refused by the workers');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM app.conv2 WHERE id > 200'), '0', 'and wrote nothing');

# COPY out reads the tenant's rows; COPY FROM is refused, as PostgreSQL
# refuses it under row level security
is(as_tenant(4, "COPY (SELECT tenant_id, count(*) FROM app.conv GROUP BY 1) TO STDOUT;"),
	"4\t10", 'COPY (query) TO: the tenant\'s rows');
is(as_tenant(4, 'COPY app.conv (tenant_id) TO STDOUT;'), join("\n", ('4') x 10), 'COPY table TO: the tenant\'s rows');
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(3); COPY app.conv FROM STDIN;\n4\t50\tx\n\\.\n", user => 'app');
like($e->{message}, qr/COPY FROM not supported with row-level security/, 'COPY FROM is refused');
like($e->{stderr}, qr/Table app\.conv is distributed by Citus/, 'on the coordinator, before Citus writes a row');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM app.conv WHERE id = 50'), '0', 'and wrote nothing');

# shards on the coordinator too (local execution): the tenant holds there;
# COPY FROM and INSERT..SELECT pulled to the coordinator, which Citus would
# write into its local shards with no policy checked, are refused before a
# row is written
$coord->safe_psql('postgres',
	"SELECT citus_set_node_property('127.0.0.1', " . $coord->port . ", 'shouldhaveshards', true)");
psql_as(
	$coord, 'postgres', 'app_owner', q{
CREATE TABLE app.local (tenant_id bigint NOT NULL, id int NOT NULL);
SELECT create_distributed_table('app.local', 'tenant_id', colocate_with => 'none');
INSERT INTO app.local SELECT t, i FROM generate_series(1, 10) t, generate_series(1, 3) i;
SELECT gb_tenant_isolation_enable('app.local');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.local TO app;
});
is($coord->safe_psql('postgres', "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'app.local'::regclass"),
	'3', 'app.local has shards on the coordinator and both workers');
is(shards_isolated('app.local'), "$nshards/$nshards", 'every shard has the policies, the coordinator\'s too');
is(as_tenant(2, 'SELECT count(*), min(tenant_id), max(tenant_id) FROM app.local; UPDATE app.local SET id = id + 10; SELECT count(*) FROM app.local WHERE id > 10;'),
	"3|2|2\n3", 'reads and writes on every node, the coordinator\'s shards included, are the tenant\'s');
# another tenant whose shard is on the coordinator: only local shards written
my $local_tenant = $coord->safe_psql(
	'postgres', q{
SELECT min(t) FROM generate_series(11, 1000) t
 WHERE (SELECT s.nodeport FROM citus_shards s
         WHERE s.shardid = get_shard_id_for_distribution_column('app.local', t)) = } . $coord->port);
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(2); INSERT INTO app.local SELECT $local_tenant, id + 100 FROM app.local ORDER BY 2 LIMIT 2; COMMIT;",
	user => 'app');
is($e->{state}, '0A000', 'INSERT..SELECT pulled to a coordinator holding shards is refused');
like($e->{message}, qr/INSERT \.\.\. SELECT through the coordinator is not supported with row-level security/,
	'by the coordinator, naming the reason');
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(2); COPY app.local FROM STDIN;\n$local_tenant\t99\n\\.\nCOMMIT;", user => 'app');
like($e->{message}, qr/COPY FROM not supported with row-level security/, 'COPY FROM into it is refused');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM app.local WHERE id = 99 OR id > 100'), '0',
	'no row was written for another tenant');
$coord->safe_psql('postgres',
	"SELECT citus_set_node_property('127.0.0.1', " . $coord->port . ", 'shouldhaveshards', false)");

# no tenant: no rows, writes refused on the worker
is(psql_as($coord, 'postgres', 'app', 'SELECT count(*) FROM app.conv'), '0', 'no tenant: no rows');
$e = sql_error($coord, 'postgres', "UPDATE app.conv SET body = 'z' WHERE tenant_id = 3", user => 'app');
like($e->{message}, qr/no tenant is set for this transaction/, 'no tenant: writes refused');

# subplans (a CTE Citus plans first) and prepared statements, whose plans
# Citus caches after five runs: each transaction sees its own tenant
is(as_tenant(4, 'WITH top AS (SELECT id FROM app.conv ORDER BY id DESC LIMIT 3)
SELECT count(*), min(c.tenant_id), max(c.tenant_id) FROM app.conv c WHERE c.id IN (SELECT id FROM top);'),
	'3|4|4', 'a query with a subplan reads the tenant\'s rows in both steps');
my $prepared = "PREPARE multi AS SELECT count(*), min(tenant_id), max(tenant_id) FROM app.conv WHERE id <= 8;
PREPARE router(bigint) AS SELECT count(*) FROM app.conv WHERE tenant_id = \$1;\n";
$prepared .= "BEGIN; SELECT gb_set_tenant($_) \\gset\nEXECUTE multi; EXECUTE router($_); EXECUTE router(" . ($_ % 10 + 1) . "); COMMIT;\n"
  for (1, 2, 4 .. 10);
is(psql_as($coord, 'postgres', 'app', $prepared),
	join("\n", map { "8|$_|$_\n10\n0" } (1, 2, 4 .. 10)),
	'prepared statements run nine times, a tenant each: always its rows only');

# switching tenants inside a transaction, also after the workers were used,
# and a rolled-back savepoint
is(as_tenant(3, 'SELECT count(*) FROM app.conv; SELECT gb_set_tenant(5) \gset
SELECT count(*), min(tenant_id) FROM app.conv;'),
	"10\n10|5", 'a new tenant in the same transaction reaches the connections already open');
is(as_tenant(3, 'SAVEPOINT s; SELECT gb_set_tenant(6) \gset
SELECT count(*), min(tenant_id) FROM app.conv; ROLLBACK TO s; SELECT count(*), min(tenant_id) FROM app.conv;'),
	"10|6\n10|3", 'a rolled-back savepoint gives back the tenant on the workers');
is(as_tenant('NULL', 'SELECT count(*) FROM app.conv;'), '0', 'gb_set_tenant(NULL) clears it everywhere');

# SET is refused on every node, and a role that may not call gb_set_tenant
# cannot set the tenant on a worker in any other way
for my $node (@nodes)
{
	$e = sql_error($node, 'postgres', 'SET gb_scale.tenant_id = 3', user => 'app');
	is($e->{state}, '42501', 'SET of the tenant is refused on ' . $node->name);
	$e = sql_error($node, 'postgres', "SELECT set_config('gb_scale.tenant_id', '3', true)", user => 'intruder');
	is($e->{state}, '42501', 'set_config of the tenant is refused on ' . $node->name);
}
$e = sql_error($workers[0], 'postgres', 'SELECT gb_scale.forwarded_tenant(3)', user => 'intruder');
is($e->{state}, '42501', 'a role without gb_set_tenant cannot take a forwarded tenant on a worker');
like($e->{message}, qr/permission denied to set tenant 3 for role "intruder"/, 'the refusal names tenant and role');
$e = sql_error($coord, 'postgres', 'SELECT gb_scale.forwarded_tenant(3)', user => 'intruder');
is($e->{state}, '42501', 'nor on the coordinator');
is($workers[0]->safe_psql('postgres', 'SELECT count(*) FROM app.conv', connstr => $workers[0]->connstr('postgres') . ' user=intruder'),
	'0', 'the intruder reads nothing through a worker');
$e = sql_error($coord, 'postgres',
	"SET citus.propagate_set_commands = local; BEGIN; SET LOCAL gb_scale.tenant_id = 3;", user => 'intruder');
is($e->{state}, '42501', 'SET LOCAL with Citus\' SET propagation is refused');
like($coord->safe_psql('postgres',
		"SELECT string_agg(result, ',') FROM run_command_on_workers('SELECT gb_scale.forwarded_tenant(3)')",
		connstr => $coord->connstr('postgres') . ' user=intruder'),
	qr/^ERROR:  permission denied to set tenant 3 for role "intruder",ERROR:  permission denied to set tenant 3/,
	'run_command_on_workers cannot forward a tenant for the intruder');
my ($rc, $out, $err) = $workers[0]->psql('postgres', 'SELECT 1',
	connstr => $workers[0]->connstr('postgres') . ' user=intruder options=-cgb_scale.tenant_id=3');
like($err, qr/gb_scale\.tenant_id can only be set by gb_set_tenant/,
	'a tenant in the connection options is refused on a worker');
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(3);", user => 'intruder');
like($e->{message}, qr/permission denied for function gb_set_tenant/, 'the intruder cannot call gb_set_tenant');

# the partitioned table: each partition's shards check the tenant
is(as_tenant(4, "INSERT INTO app.events VALUES (4, '2025-06-01', 1), (4, '2026-06-01', 2); SELECT count(*) FROM app.events;"),
	'2', 'rows of the tenant in both partitions');
$e = sql_error($coord, 'postgres',
	"BEGIN; SELECT gb_set_tenant(4); INSERT INTO app.events VALUES (5, '2026-06-01', 1);", user => 'app');
like($e->{message}, qr/new row violates row-level security policy/, 'another tenant\'s row refused in the new partition');
is(as_tenant(5, 'SELECT count(*) FROM app.events;'), '0', 'another tenant sees none of them');

# export and purge of isolated distributed tables
is($coord->safe_psql('postgres',
		"SELECT table_name, count(*) FROM gb_tenant_export(5) GROUP BY 1 ORDER BY 1"),
	"app.conv|10\napp.local|3", 'gb_tenant_export (as a superuser) returns the tenant\'s rows from the workers');
is(psql_as($coord, 'postgres', 'app_owner',
		"SELECT table_name, count(*), min((row_data->>'tenant_id')::bigint), max((row_data->>'tenant_id')::bigint) FROM gb_tenant_export(3) GROUP BY 1 ORDER BY 1"),
	"app.conv|10|3|3\napp.conv2|12|3|3\napp.local|3|3|3", 'gb_tenant_export as the owner: every row of tenant 3, no other');
is(psql_as($coord, 'postgres', 'app_owner', 'SELECT table_name, count(*) FROM gb_tenant_export(4) GROUP BY 1 ORDER BY 1'),
	"app.conv|10\napp.events|2\napp.local|3", 'gb_tenant_export of a distributed partitioned table');
is(psql_as($coord, 'postgres', 'app_owner', 'SELECT table_name, rows_removed FROM gb_tenant_purge(3) ORDER BY 1'),
	"app.conv|10\napp.conv2|12\napp.events|0\napp.local|3", 'gb_tenant_purge removes the tenant\'s rows');
is($coord->safe_psql('postgres', 'SELECT count(*) FILTER (WHERE tenant_id = 3), count(*) FROM app.conv'),
	'0|90', 'tenant 3 is gone, every other row stays');
is($coord->safe_psql('postgres', 'SELECT count(*) FILTER (WHERE tenant_id = 3), count(*) FROM app.local'),
	'0|27', 'also from the coordinator\'s shards');
is(as_tenant(4, 'SELECT count(*) FROM app.conv;'), '10', 'after the purge the others still work');

$_->stop for @nodes;
done_testing();
