
# Copyright (c) gb_scale developers
#
# Snowflake IDs and the built-in enums on Citus: a coordinator and two
# workers on loopback, tables distributed by tenant_id.  gb_next_id() as a
# column default gives unique IDs through single-row and multi-row INSERT,
# COPY, and INSERT ... SELECT (pushed down, where each worker evaluates the
# default with its own shard id, and pulled through the coordinator); each
# ID names the node that made it.  The built-in enums label and check codes
# in router, multi-shard and pushed-down queries, on every node.
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

$coord->safe_psql(
	'postgres', q{
CREATE TABLE msgs (tenant_id bigint NOT NULL, id bigint NOT NULL DEFAULT gb_next_id(),
                   role gb_message_role NOT NULL, channel gb_channel_type NOT NULL,
                   body text, PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('msgs', 'tenant_id');
CREATE TABLE msgs_copy (LIKE msgs INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE msgs_copy ADD PRIMARY KEY (tenant_id, id);
SELECT create_distributed_table('msgs_copy', 'tenant_id', colocate_with => 'msgs');
});
is($coord->safe_psql('postgres', "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'msgs'::regclass"),
	'2', 'msgs is distributed over both workers');

# single-row INSERTs (router), a multi-row INSERT, COPY, all through the coordinator
$coord->safe_psql('postgres',
	"INSERT INTO msgs (tenant_id, role, channel, body) VALUES ($_, 1, 0, 'single')")
  for 1 .. 40;
$coord->safe_psql('postgres',
	q{INSERT INTO msgs (tenant_id, role, channel, body)
	  SELECT t, 2, 1, 'multi' FROM generate_series(1, 40) t, generate_series(1, 25) i});
$coord->safe_psql('postgres', q{COPY msgs (tenant_id, role, channel, body) FROM stdin;
1	1	2	copied
2	2	2	copied
3	3	2	copied
4	4	2	copied
\.
});
my $rows = $coord->safe_psql('postgres',
	q{INSERT INTO msgs (tenant_id, role, channel, body) VALUES
	    (5, 1, 3, 'values-1'), (6, 2, 3, 'values-2'), (7, 1, 3, 'values-3')
	  RETURNING id});
is(scalar(split /\n/, $rows), 3, 'a multi-row INSERT .. VALUES returns its three ids');

is( $coord->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE gb_id_shard(id) = 1)
  FROM msgs}),
	'1047|1047|1047',
	'1047 rows through the coordinator: unique ids, each made by the coordinator (shard 1)');

# a pushed-down INSERT .. SELECT evaluates the default on each worker
$coord->safe_psql('postgres',
	q{INSERT INTO msgs_copy (tenant_id, role, channel, body) SELECT tenant_id, role, channel, body FROM msgs});
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT id),
       string_agg(DISTINCT gb_id_shard(id)::text, ',' ORDER BY gb_id_shard(id)::text)
  FROM msgs_copy}),
	'1047|1047|2,3',
	'pushed-down INSERT .. SELECT: unique ids, made by the workers (shards 2 and 3)');
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FROM msgs a JOIN msgs_copy b USING (tenant_id, id)}),
	'0', 'no id of msgs_copy repeats one of msgs');

# INSERT .. SELECT pulled through the coordinator (LIMIT): Citus sends the
# rows to the shards by COPY without the id, so the workers make the ids
$coord->safe_psql('postgres',
	q{INSERT INTO msgs_copy (tenant_id, role, channel, body)
	  SELECT tenant_id, role, channel, 'pulled' FROM msgs ORDER BY id LIMIT 100});
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE gb_id_shard(id) IN (2, 3))
  FROM msgs_copy WHERE body = 'pulled'}),
	'100|100|100', 'INSERT .. SELECT through the coordinator: 100 unique ids, made by the workers');
is($coord->safe_psql('postgres', 'SELECT count(*) - count(DISTINCT id) FROM msgs_copy'),
	'0', 'msgs_copy: every id unique across both kinds of INSERT .. SELECT');

# ids made on a worker directly carry its shard id
is( join(',', map { $_->safe_psql('postgres', 'SELECT gb_id_shard(gb_next_id())') } @nodes),
	'1,2,3', 'gb_next_id() on each node names that node');

# built-in enums: labels in router and multi-shard queries, on every node
is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(gb_enum_label('gb_message_role', role) || '=' || n, ',' ORDER BY role)
  FROM (SELECT role, count(*) AS n FROM msgs GROUP BY role) s}),
	'user=43,assistant=1002,system=1,tool=1',
	'multi-shard GROUP BY on a built-in enum, labelled');
is( $coord->safe_psql(
		'postgres', q{
SELECT string_agg(DISTINCT gb_enum_label('gb_channel_type', channel), ',' ORDER BY gb_enum_label('gb_channel_type', channel)) FROM msgs WHERE tenant_id = 3}),
	'telegram,web,whatsapp', 'router query labels the built-in enum');
is( $coord->safe_psql(
		'postgres', q{
SELECT count(*) FROM msgs m JOIN msgs_copy c USING (tenant_id)
 WHERE gb_enum_label('gb_message_role', m.role) = 'tool' AND c.body = 'copied'}),
	'1', 'a pushed-down join filters by a built-in enum label');
is( join(',', map { $_->safe_psql('postgres', "SELECT gb_enum_label('gb_channel_type', 7::smallint)") } @nodes),
	'voice,voice,voice', 'every node labels the built-in enum alike');

# the domain's CHECK holds on the workers: a router INSERT, a multi-row
# INSERT and a pushed-down INSERT .. SELECT of an invalid code fail whole
my ($ret, $out, $err) = $coord->psql('postgres',
	"INSERT INTO msgs (tenant_id, role, channel) VALUES (901, 7, 0)");
like($err, qr/gb_message_role/, 'router INSERT of an invalid role code is refused, naming the domain');
($ret, $out, $err) = $coord->psql('postgres',
	"INSERT INTO msgs (tenant_id, role, channel) VALUES (902, 1, 0), (903, 1, 42)");
like($err, qr/gb_channel_type/, 'multi-row INSERT with one invalid channel code is refused');
($ret, $out, $err) = $coord->psql('postgres',
	"INSERT INTO msgs_copy (tenant_id, role, channel) SELECT tenant_id, (role + 20)::smallint, channel FROM msgs");
like($err, qr/gb_message_role/, 'pushed-down INSERT .. SELECT with invalid codes is refused');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM msgs WHERE tenant_id IN (901, 902, 903)'),
	'0', 'nothing of the refused INSERTs was written');

done_testing();
