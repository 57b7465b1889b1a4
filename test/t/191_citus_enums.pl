
# Copyright (c) gb_scale developers
#
# Enum domains on Citus: a coordinator and two workers on loopback.
# gb_enum_create, gb_enum_add and gb_enum_rename on the coordinator take
# effect on every node in the same distributed transaction (a failure on one
# worker changes no node); labels and checks work in router, multi-shard and
# INSERT..SELECT queries on a table distributed by tenant_id; the labels view
# answers on a worker by the enum's name.
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

# every node's answer to a query, one line per node
sub on_all
{
	my ($sql) = @_;
	return join("\n", map { $_->safe_psql('postgres', $sql) } @nodes);
}

my $labels_sql =
  "SELECT string_agg(code || '=' || label, ',' ORDER BY code) FROM gb_enum_labels('app.tstate')";

$coord->safe_psql('postgres', 'CREATE SCHEMA app');
is($coord->safe_psql('postgres',
		"SELECT gb_enum_create('app.tstate', ARRAY['open', 'waiting', 'closed'])"),
	'app.tstate', 'gb_enum_create on the coordinator succeeds');
is(on_all($labels_sql), join("\n", ('0=open,1=waiting,2=closed') x 3),
	'the enum and its labels exist on every node');

$coord->safe_psql(
	'postgres', q{
CREATE TABLE app.tickets (tenant_id bigint NOT NULL, id int NOT NULL, state app.tstate NOT NULL,
                          PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('app.tickets', 'tenant_id');
INSERT INTO app.tickets SELECT t, 1, (t % 3)::smallint FROM generate_series(1, 30) t;
});
is($coord->safe_psql('postgres', 'SELECT count(DISTINCT nodeport) FROM citus_shards'),
	'2', 'the table using the enum is distributed over both workers');

# gb_enum_add: the new code is valid on every node
is($coord->safe_psql('postgres', "SELECT gb_enum_add('app.tstate', 'escalated')"),
	'3', 'gb_enum_add gives code 3');
is(on_all($labels_sql), join("\n", ('0=open,1=waiting,2=closed,3=escalated') x 3),
	'the added label is on every node');
$coord->safe_psql('postgres',
	'INSERT INTO app.tickets SELECT t, 2, 3 FROM generate_series(1, 30) t');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM app.tickets WHERE state = 3'),
	'30', 'every shard takes the new code (multi-row insert to all workers)');
my ($rc, $out, $err) = $coord->psql('postgres', 'INSERT INTO app.tickets VALUES (7, 9, 4)');
like($err, qr/value 4 is not a valid code for enum domain app\.tstate/,
	'a code never added is still refused by the worker');

# gb_enum_rename: seen on every node
$coord->safe_psql('postgres', "SELECT gb_enum_rename('app.tstate', 'waiting', 'pending')");
is(on_all($labels_sql), join("\n", ('0=open,1=pending,2=closed,3=escalated') x 3),
	'the rename is seen on every node');

# labels in router, multi-shard and pushed-down INSERT..SELECT queries
is($coord->safe_psql('postgres',
		"SELECT gb_label(state) FROM app.tickets WHERE tenant_id = 4 ORDER BY id"),
	"pending\nescalated", 'labels in a router query');
is($coord->safe_psql('postgres',
		"SELECT gb_label(state), count(*) FROM app.tickets GROUP BY 1 ORDER BY 1"),
	"closed|10\nescalated|30\nopen|10\npending|10", 'labels in a multi-shard query');
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM app.tickets WHERE state = gb_enum_code('app.tstate', 'pending')"),
	'10', 'a label folded to its code in a multi-shard query');
$coord->safe_psql(
	'postgres', q{
CREATE TABLE app.ticket_log (tenant_id bigint NOT NULL, id int NOT NULL, state app.tstate NOT NULL,
                             label text NOT NULL);
SELECT create_distributed_table('app.ticket_log', 'tenant_id', colocate_with => 'app.tickets');
INSERT INTO app.ticket_log SELECT tenant_id, id, state, gb_label(state) FROM app.tickets;
});
is($coord->safe_psql('postgres',
		"SELECT count(*) FROM app.ticket_log WHERE label = gb_enum_label('app.tstate', state)"),
	'60', 'INSERT..SELECT pushed down to the workers writes the labels');
($rc, $out, $err) = $coord->psql('postgres',
	'INSERT INTO app.ticket_log SELECT tenant_id, id, (state + 10)::smallint, gb_label(state) FROM app.tickets');
like($err, qr/value 1[0-3] is not a valid code for enum domain app\.tstate/,
	'the check holds in a pushed-down INSERT..SELECT');

# the labels view, by the enum's name: joined on the coordinator (Citus
# ships the coordinator's rows to the workers) and on a worker (its own rows)
is($coord->safe_psql(
		'postgres', q{
SELECT l.label, count(*) FROM app.tickets t
  JOIN gb_scale.enum_labels l ON l.enum_type = 'app.tstate'::regtype AND l.code = t.state
 GROUP BY 1 ORDER BY 1}),
	"closed|10\nescalated|30\nopen|10\npending|10",
	'the labels view joined with the distributed table on the coordinator');
is($workers[0]->safe_psql(
		'postgres', q{
SELECT l.label, count(*) FROM app.tickets t
  JOIN gb_scale.enum_labels l ON l.enum_type = 'app.tstate'::regtype AND l.code = t.state
 GROUP BY 1 ORDER BY 1}),
	"closed|10\nescalated|30\nopen|10\npending|10",
	'the labels view joined on a worker finds every label by the enum\'s name');

# a failure on one worker changes no node
$workers[1]->safe_psql('postgres',
	'SET citus.enable_ddl_propagation = off; CREATE DOMAIN app.taken AS smallint');
($rc, $out, $err) = $coord->psql('postgres', "SELECT gb_enum_create('app.taken', ARRAY['a', 'b'])");
like($err, qr/type "taken" already exists/, 'gb_enum_create fails when a worker has the name');
is(on_all("SELECT count(*) FROM gb_scale.enum_label WHERE enum_type::text LIKE '%taken'"),
	"0\n0\n0", 'no node has labels of the failed enum');
is(on_all("SELECT to_regtype('app.taken') IS NULL"), "t\nt\nf",
	'the domain was made on no other node');

$workers[1]->safe_psql('postgres',
	q{SET citus.enable_ddl_propagation = off;
      SELECT gb_enum_add('app.tstate', 'hand_made', 4::smallint)});
($rc, $out, $err) = $coord->psql('postgres', "SELECT gb_enum_add('app.tstate', 'reopened')");
like($err, qr/code 4 of enum app\.tstate is already used/,
	'gb_enum_add fails when the code is taken on a worker');
is(on_all("SELECT count(*) FROM gb_enum_labels('app.tstate') WHERE label = 'reopened'"),
	"0\n0\n0", 'the failed add changed no node');
($rc, $out, $err) = $coord->psql('postgres', "SELECT gb_enum_rename('app.tstate', 'open', 'hand_made')");
like($err, qr/already has label "hand_made"/, 'gb_enum_rename fails when a worker has the new label');
is(on_all("SELECT count(*) FROM gb_enum_labels('app.tstate') WHERE label = 'open'"),
	"1\n1\n1", 'the failed rename changed no node');

# an ordinary role: every node runs the change as that role, and the domain
# is the role's everywhere
$coord->safe_psql(
	'postgres', q{
CREATE ROLE enum_owner LOGIN;
GRANT USAGE, CREATE ON SCHEMA app TO enum_owner;
});
$coord->safe_psql(
	'postgres', q{
SET ROLE enum_owner;
SELECT gb_enum_create('app.prio', ARRAY['low', 'high']);
SELECT gb_enum_add('app.prio', 'urgent');
SELECT gb_enum_rename('app.prio', 'low', 'minor');
});
is(on_all(q{SELECT pg_get_userbyid(typowner) || ' ' ||
                   (SELECT string_agg(code || '=' || label, ',' ORDER BY code) FROM gb_enum_labels('app.prio'))
              FROM pg_type WHERE oid = 'app.prio'::regtype}),
	join("\n", ('enum_owner 0=minor,1=high,2=urgent') x 3),
	'an ordinary role\'s enum is its own on every node, with the same labels');
($rc, $out, $err) = $coord->psql('postgres', q{
CREATE ROLE enum_other LOGIN;
GRANT USAGE ON SCHEMA app TO enum_other;
SET ROLE enum_other;
SELECT gb_enum_add('app.prio', 'other');});
like($err, qr/must be owner of type app\.prio/, 'another role may not change it');

# with citus.enable_ddl_propagation off, as Citus' own DDL, only this node changes
$coord->safe_psql('postgres',
	q{SET citus.enable_ddl_propagation = off; SELECT gb_enum_add('app.prio', 'local_only')});
is(on_all("SELECT count(*) FROM gb_enum_labels('app.prio') WHERE label = 'local_only'"),
	"1\n0\n0", 'with DDL propagation off only the coordinator changes');

$_->stop for @nodes;
done_testing();
