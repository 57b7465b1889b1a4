# Copyright (c) gb_scale developers
#
# Routing with Citus as the engine: a coordinator and two workers on
# loopback, 3000 tenants in a table distributed by tenant_id.  On every
# node, gb_shard_for_tenant answers with the shard (gb_scale.shard_config
# row, matched by host and port) of the node holding the tenant's
# placement, and gb_shard_connection with that row's connection string;
# after a shard move, a tenant isolation and a rolled-back placement change
# the answer follows in the next transaction.  Then per-tenant statistics:
# where a tenant's router query counts on the coordinator and on the worker
# that runs its shard query.
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
my $ntenants = 3000;

# gb_scale.shard_id of each node, by port (citus_cluster: node number + 1)
my %shard_of_port = map { $nodes[$_]->port => $_ + 1 } 0 .. $#nodes;

sub conninfo { my ($node) = @_; return 'host=127.0.0.1 port=' . $node->port . ' dbname=postgres'; }

# The directory on every node: one row per Citus node, with tenant ranges
# that disagree with Citus' placement (the range rule must not answer).
my $directory = join(",\n",
	map {
		sprintf("(%d, 'USA', 'node%d', '%s', %s, true, %d, %d)",
			$_ + 1, $_, conninfo($nodes[$_]), $_ == 0 ? 'true' : 'false',
			$_ * 1000 + 1, ($_ + 1) * 1000)
	} 0 .. $#nodes);
$_->safe_psql(
	'postgres', qq{
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string,
                                   is_primary, is_active, min_tenant_id, max_tenant_id)
VALUES $directory;
}) for @nodes;

$coord->safe_psql(
	'postgres', qq{
CREATE SCHEMA app;
CREATE TABLE app.accounts (tenant_id bigint NOT NULL, id int NOT NULL, v int NOT NULL,
                           PRIMARY KEY (tenant_id, id));
SELECT create_distributed_table('app.accounts', 'tenant_id');
CREATE TABLE app.notes (tenant_id bigint NOT NULL, id int NOT NULL, body text);
SELECT create_distributed_table('app.notes', 'tenant_id', colocate_with => 'app.accounts');
INSERT INTO app.accounts SELECT t, 1, t FROM generate_series(1, $ntenants) t;
});
is($coord->safe_psql('postgres', 'SELECT count(DISTINCT nodeport) FROM citus_shards'),
	'2', 'the tenants are distributed over both workers');

# Citus' placement of every tenant, as "tenant|shard id of its node"
sub citus_placement
{
	my $rows = $coord->safe_psql(
		'postgres', qq{
SELECT t, c.nodeport FROM generate_series(1, $ntenants) t
  JOIN citus_shards c ON c.shardid = get_shard_id_for_distribution_column('app.accounts', t)
                     AND c.table_name = 'app.accounts'::regclass
 ORDER BY t});
	return join("\n",
		map { my ($t, $port) = split /\|/; "$t|$shard_of_port{$port}" } split /\n/, $rows);
}

# gb_shard_for_tenant of every tenant on NODE, in one statement
sub routed
{
	my ($node, $settings) = @_;
	return $node->safe_psql('postgres',
		($settings // '')
		  . "SELECT t, gb_shard_for_tenant(t) FROM generate_series(1, $ntenants) t ORDER BY t");
}

sub agree
{
	my ($expected, $got) = @_;
	my %want = map { split /\|/ } split /\n/, $expected;
	my %have = map { split /\|/ } split /\n/, $got;
	return scalar grep { defined $have{$_} && $have{$_} == $want{$_} } keys %want;
}

my $placement = citus_placement();
for my $i (0 .. $#nodes)
{
	my $name = $i == 0 ? 'the coordinator' : "worker $i";
	is(agree($placement, routed($nodes[$i])), $ntenants,
		"gb_shard_for_tenant agrees with Citus' placement for all $ntenants tenants on $name");
}

# gb_shard_connection: the directory's connection string of the tenant's node
my %conn_of_shard = map { $_ + 1 => conninfo($nodes[$_]) } 0 .. $#nodes;
for my $node ($coord, $workers[1])
{
	my $got = $node->safe_psql('postgres',
		"SELECT t, gb_shard_connection(t) FROM generate_series(1, $ntenants) t ORDER BY t");
	my %shard = map { split /\|/ } split /\n/, $placement;
	my $right = grep { my ($t, $c) = split /\|/; $c eq $conn_of_shard{ $shard{$t} } } split /\n/, $got;
	is($right, $ntenants, 'gb_shard_connection names the node holding each tenant on '
		  . ($node == $coord ? 'the coordinator' : 'worker 2'));
}

# the tenant's rows are where the answer says: its node holds them locally
my $tenant = 7;
my $shard = $coord->safe_psql('postgres', "SELECT gb_shard_for_tenant($tenant)");
my $holder = $nodes[ $shard - 1 ];
is($holder->safe_psql(
		'postgres', qq{
SET citus.enable_manual_changes_to_shards = on;
SELECT format('SELECT count(*) FROM app.%I WHERE tenant_id = $tenant',
              'accounts_' || get_shard_id_for_distribution_column('app.accounts', $tenant))
\\gexec}),
	'1', "the node gb_shard_for_tenant names holds tenant $tenant\'s row in its shard");

# a shard move: the answer follows on every node, in the session that asked
# before the move too
my ($shardid, $from_port) = split /\|/, $coord->safe_psql(
	'postgres', qq{
SELECT c.shardid, c.nodeport FROM citus_shards c
 WHERE c.shardid = get_shard_id_for_distribution_column('app.accounts', $tenant)
   AND c.table_name = 'app.accounts'::regclass});
my ($to) = grep { $_->port != $from_port } @workers;
my $moved = $coord->safe_psql(
	'postgres', qq{
SELECT gb_shard_for_tenant($tenant);
SELECT citus_move_shard_placement($shardid, '127.0.0.1', $from_port, '127.0.0.1', @{[ $to->port ]},
                                  shard_transfer_mode => 'block_writes');
SELECT gb_shard_for_tenant($tenant);});
is($moved, "$shard\n\n$shard_of_port{$to->port}",
	'after citus_move_shard_placement the same session routes the tenant to the new node');
$placement = citus_placement();
for my $i (0 .. $#nodes)
{
	is(agree($placement, routed($nodes[$i])), $ntenants,
		"after the move every tenant follows Citus' placement on node $i");
}

# isolate_tenant_to_new_shard, then moving the new shard: only that tenant
# changes node
my $lonely = 42;
my $before = $coord->safe_psql('postgres', "SELECT gb_shard_for_tenant($lonely)");
my $new_shard = $coord->safe_psql('postgres',
	"SELECT isolate_tenant_to_new_shard('app.accounts', $lonely, cascade_option => 'CASCADE',
                                        shard_transfer_mode => 'block_writes')");
my ($here) = split /\|/, $coord->safe_psql('postgres',
	"SELECT nodeport FROM citus_shards WHERE shardid = $new_shard");
my ($there) = grep { $_->port != $here } @workers;
$coord->safe_psql('postgres',
	"SELECT citus_move_shard_placement($new_shard, '127.0.0.1', $here, '127.0.0.1', "
	  . $there->port . ", shard_transfer_mode => 'block_writes')");
$placement = citus_placement();
for my $i (0 .. $#nodes)
{
	is(agree($placement, routed($nodes[$i])), $ntenants,
		"after isolating tenant $lonely and moving its shard every tenant follows on node $i");
}
is($workers[1]->safe_psql('postgres', "SELECT gb_shard_for_tenant($lonely)"),
	$shard_of_port{ $there->port }, "tenant $lonely is routed to the node its own shard moved to");

# a placement change seen by its own transaction, gone on rollback
my $other_group = $coord->safe_psql(
	'postgres', qq{
SELECT n.groupid FROM pg_dist_node n
 WHERE n.groupid <> 0 AND n.groupid <> (SELECT p.groupid FROM pg_dist_placement p
                                         WHERE p.shardid = $new_shard)});
my $other_shard = $coord->safe_psql('postgres',
	"SELECT s.shard_id FROM pg_dist_node n JOIN gb_scale.shard_config s
        ON s.connection_string = format('host=127.0.0.1 port=%s dbname=postgres', n.nodeport)
      WHERE n.groupid = $other_group");
is($coord->safe_psql(
		'postgres', qq{
BEGIN;
UPDATE pg_dist_placement SET groupid = $other_group WHERE shardid = $new_shard;
SELECT gb_shard_for_tenant($lonely);
ROLLBACK;
SELECT gb_shard_for_tenant($lonely);}),
	"$other_shard\n$shard_of_port{$there->port}",
	'a placement changed in a transaction is seen by it and forgotten on rollback');

# Citus places tenants: gb_tenant_assign is refused with a hint
my ($rc, $out, $err) = $coord->psql('postgres', 'SELECT gb_tenant_assign(5, 1::smallint)');
like($err, qr/cannot place tenant 5 with gb_tenant_assign: Citus places tenants here.*\n.*\n.*isolate_tenant_to_new_shard/,
	'gb_tenant_assign is refused: Citus places tenants');

($rc, $out, $err) = $coord->psql('postgres', 'CALL gb_tenant_move(5, 2::smallint)');
like($err, qr/cannot move tenant 5 with gb_tenant_move: Citus places tenants here.*\n.*\n.*isolate_tenant_to_new_shard.*citus_move_shard_placement/,
	'gb_tenant_move is refused: Citus moves shards, with their tenants');

($rc, $out, $err) = $coord->psql('postgres', 'SELECT * FROM gb_shard_routes()');
like($err, qr/gb_shard_routes cannot list routes: Citus places tenants here/,
	'gb_shard_routes is refused: Citus hashes tenants, it makes no tenant ranges');

# a node missing from the directory: an error naming the node, not a guess
($rc, $out, $err) = $workers[0]->psql(
	'postgres', qq{
BEGIN;
DELETE FROM gb_scale.shard_config WHERE shard_id = $shard_of_port{$there->port};
SELECT gb_shard_for_tenant($lonely);});
like($err, qr/no shard in gb_scale\.shard_config is the Citus node 127\.0\.0\.1:@{[ $there->port ]} holding tenant $lonely/,
	'a node missing from the directory is named in the error');

# tables distributed by tenant_id in two colocation groups: ambiguous, until
# gb_scale.citus_tenant_table names the one that routes
$coord->safe_psql(
	'postgres', q{
CREATE TABLE app.audit (tenant_id bigint NOT NULL, at timestamptz);
SELECT create_distributed_table('app.audit', 'tenant_id', colocate_with => 'none', shard_count => 4);
});
($rc, $out, $err) = $coord->psql('postgres', 'SELECT gb_shard_for_tenant(1)');
like($err, qr/tables distributed by tenant_id are in more than one colocation group \(accounts and audit among them\)/,
	'two colocation groups distributed by tenant_id are refused as ambiguous');
like($err, qr/gb_scale\.citus_tenant_table/, 'the hint names the setting');
is(agree($placement, routed($coord, "SET gb_scale.citus_tenant_table = 'app.accounts';")),
	$ntenants, 'gb_scale.citus_tenant_table names the table that routes');
($rc, $out, $err) = $coord->psql('postgres', "SET gb_scale.citus_tenant_table = 'accounts'");
like($err, qr/schema-qualified table name/, 'the setting takes only a schema-qualified name');
($rc, $out, $err) = $coord->psql('postgres',
	"SET gb_scale.citus_tenant_table = 'gb_scale.shard_config'; SELECT gb_shard_for_tenant(1)");
like($err, qr/table gb_scale\.shard_config named by gb_scale\.citus_tenant_table is not hash-distributed by a bigint column/,
	'a table that is not distributed is refused');
$coord->safe_psql('postgres', 'DROP TABLE app.audit');

# ---- per-tenant statistics on a coordinator with workers ----
# The coordinator counts the application's statements, once, for the tenant
# set there; the worker that runs the shard query counts that shard-level
# work (its own view of the node: under the tenant set on the worker, if
# any); Citus' bookkeeping between nodes (assign_distributed_transaction_id,
# COMMIT PREPARED of a two-phase commit) counts as no statement and no
# second transaction.
$tenant = 11;
$shard = $coord->safe_psql('postgres', "SELECT gb_shard_for_tenant($tenant)");
$holder = $nodes[ $shard - 1 ];
my ($idle) = grep { $_ != $holder } @workers;
my $stat_tenant = qq{
SELECT reads, writes, rows_returned, rows_updated, xacts FROM gb_stat_tenants
 WHERE database = current_database() AND tenant_id = $tenant};
# every entry of the node summed (the reset itself is one read of one row
# in one transaction)
my $stat_node = q{
SELECT sum(reads), sum(writes), sum(rows_returned), sum(rows_updated), sum(xacts)
  FROM gb_stat_tenants WHERE database = current_database()};

$_->safe_psql('postgres', 'SELECT gb_stat_tenants_reset()') for @nodes;
$coord->safe_psql(
	'postgres', qq{
BEGIN;
SELECT gb_set_tenant($tenant);
SELECT v FROM app.accounts WHERE tenant_id = $tenant;
UPDATE app.accounts SET v = v + 1 WHERE tenant_id = $tenant;
COMMIT;});
is($coord->safe_psql('postgres', $stat_tenant), '2|1|2|1|1',
	'the coordinator counts the tenant\'s router statements and transaction once');
is($holder->safe_psql('postgres', $stat_node), '2|1|2|1|2',
	'the worker holding the tenant counts the shard read and write once, and one transaction');
is($idle->safe_psql('postgres', $stat_node), '1|0|1|0|1',
	'the other worker counts nothing of it');

# a write to two workers: two-phase commit
my ($there_tenant) = grep { $coord->safe_psql('postgres', "SELECT gb_shard_for_tenant($_)") == $shard_of_port{ $idle->port } } 1 .. 50;
$_->safe_psql('postgres', 'SELECT gb_stat_tenants_reset()') for @nodes;
$coord->safe_psql('postgres',
	"UPDATE app.accounts SET v = v + 1 WHERE tenant_id IN ($tenant, $there_tenant)");
is($coord->safe_psql('postgres', $stat_node), '1|1|1|2|2',
	'the coordinator counts the multi-shard write once');
is(join("\n", map { $_->safe_psql('postgres', $stat_node) } @workers), join("\n", ('1|1|1|1|2') x 2),
	'each worker counts its shard write and one transaction (prepared and committed)');

$_->stop for @nodes;
done_testing();
