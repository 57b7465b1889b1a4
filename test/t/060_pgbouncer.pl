# Guarantee 8: IDs stay unique and ordered behind pgbouncer in transaction
# pooling mode, where many clients share a few server connections and
# consecutive transactions of one client may run on different backends.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

delete $ENV{SHARD_ID};

my $pgbouncer = '/usr/sbin/pgbouncer';
die "pgbouncer is not installed at $pgbouncer (Debian package pgbouncer)\n" unless -x $pgbouncer;

my $shard = 77;
my $pool_size = 3;
my $clients = 8;
my $per_client = 150;      # transactions per client and pgbench run
my $rows_per_tx = 20;

my $node = PostgreSQL::Test::Cluster->new('pooled');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
max_connections = 30
log_statement = none
});
$node->start;

# The shard id comes from ALTER DATABASE, so every pooled server connection
# pgbouncer opens picks it up without any session state.
$node->safe_psql('postgres', 'CREATE DATABASE gbtest');
$node->safe_psql(
	'gbtest', qq{
CREATE EXTENSION gb_scale;
ALTER DATABASE gbtest SET gb_scale.shard_id = $shard;
CREATE TABLE ids (
    ord bigserial,           -- per-backend issue order (sequence cache 1)
    run text NOT NULL,       -- which pgbench run
    client int NOT NULL,     -- pgbench client
    xid bigint NOT NULL,     -- txid_current(): the transaction
    pid int NOT NULL,        -- pg_backend_pid(): the pooled server connection
    stmt int NOT NULL,       -- statement number within the transaction
    id bigint NOT NULL DEFAULT gb_next_id());
});

# --- pgbouncer on 127.0.0.1 only, a port of its own, no unix socket.
my $bdir = PostgreSQL::Test::Utils::tempdir;
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my $pghost = $node->host;
my $pgport = $node->port;
append_to_file("$bdir/userlist.txt", qq{"postgres" ""\n"gb_app" ""\n});
append_to_file(
	"$bdir/pgbouncer.ini", qq{
[databases]
gbtest = host=$pghost port=$pgport dbname=gbtest user=postgres
gbapp = host=$pghost port=$pgport dbname=gbtest user=gb_app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $bdir/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $pool_size
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = $pool_size
max_client_conn = 50
ignore_startup_parameters = extra_float_digits
logfile = $bdir/pgbouncer.log
pidfile = $bdir/pgbouncer.pid
});

my ($b_out, $b_err) = ('', '');
my $bouncer = IPC::Run::start([ $pgbouncer, "$bdir/pgbouncer.ini" ],
	'>', \$b_out, '2>', \$b_err);
# Never leave pgbouncer behind, even if the test dies half-way.
END { $bouncer->kill_kill(grace => 5) if $bouncer && $bouncer->pumpable; }

my $bconn = "host=127.0.0.1 port=$bport user=postgres";

# Wait (bounded) until pgbouncer answers.
my $ready = 0;
for (my $i = 0; $i < 100 && !$ready; $i++)
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-XAtq', '-d', "$bconn dbname=gbtest", '-c', 'SELECT 1' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(10));
	$ready = ($out eq "1\n");
	select(undef, undef, undef, 0.2) unless $ready;
}
ok($ready, "pgbouncer accepts connections on 127.0.0.1:$bport")
  or diag("pgbouncer stderr: $b_err\nlog: "
	  . (-e "$bdir/pgbouncer.log" ? slurp_file("$bdir/pgbouncer.log") : ''));

# Confirm the settings pgbouncer actually runs with (admin console).
my $showcfg = '';
IPC::Run::run([ 'psql', '-XAt', '-d', "$bconn dbname=pgbouncer", '-c', 'SHOW CONFIG' ],
	'>', \$showcfg, '2>', \my $showerr, IPC::Run::timeout(10));
like($showcfg, qr/^pool_mode\|transaction\|/m, 'pgbouncer runs in transaction pooling mode');
like($showcfg, qr/^default_pool_size\|$pool_size\|/m,
	"pgbouncer pool size is $pool_size");

# Two kinds of transactions, 20 rows each: one INSERT in autocommit, and an
# explicit BEGIN ... COMMIT with three INSERTs taking IDs from the column
# default.  Run once per protocol pgbouncer's transaction mode supports.
for my $mode ('simple', 'extended')
{
	$node->pgbench(
		"-h 127.0.0.1 -p $bport -U postgres -n -c $clients -j 2 -t $per_client -M $mode",
		0,
		[qr{number of transactions actually processed: @{[ $clients * $per_client ]}/}],
		[],
		"pgbench -M $mode: $clients clients through pgbouncer",
		{
			"060_single_$mode\@1" => qq{
INSERT INTO ids (run, client, xid, pid, stmt)
SELECT '$mode', :client_id, txid_current(), pg_backend_pid(), 1
FROM generate_series(1, $rows_per_tx);
},
			"060_multi_$mode\@1" => qq{
BEGIN;
INSERT INTO ids (run, client, xid, pid, stmt, id)
VALUES ('$mode', :client_id, txid_current(), pg_backend_pid(), 1, DEFAULT);
INSERT INTO ids (run, client, xid, pid, stmt)
SELECT '$mode', :client_id, txid_current(), pg_backend_pid(), 2 FROM generate_series(1, 9);
INSERT INTO ids (run, client, xid, pid, stmt)
SELECT '$mode', :client_id, txid_current(), pg_backend_pid(), 3 FROM generate_series(1, 10);
COMMIT;
},
		},
		'gbtest');
}

my $total = 2 * $clients * $per_client * $rows_per_tx;
my ($count, $distinct, $wrong_shard, $txs, $multi) = split /\|/, $node->safe_psql(
	'gbtest', qq{
SELECT count(*), count(DISTINCT id),
       count(*) FILTER (WHERE gb_id_shard(id) <> $shard),
       count(DISTINCT xid),
       count(DISTINCT xid) FILTER (WHERE stmt = 3)
FROM ids});
is($count, $total, "all $total rows arrived");
is($count - $distinct, 0, 'no duplicate IDs behind the pooler');
is($wrong_shard, 0, "every ID decodes to shard $shard");
is($txs, 2 * $clients * $per_client, 'one xid per pgbench transaction');
cmp_ok($multi, '>', 0, "$multi of them were multi-statement transactions");

# Within each transaction the IDs increase in the order they were taken,
# across statements, and the transaction stayed on one server connection.
is( $node->safe_psql(
		'gbtest', q{
SELECT count(*) FROM (
    SELECT id, lag(id) OVER (PARTITION BY xid ORDER BY ord) AS prev FROM ids) s
WHERE id <= prev}),
	'0',
	'IDs increase within every transaction');
is( $node->safe_psql(
		'gbtest', q{
SELECT count(*) FROM (SELECT xid FROM ids GROUP BY xid HAVING count(DISTINCT pid) > 1) s}),
	'0',
	'each transaction ran on a single server connection');
is( $node->safe_psql(
		'gbtest', qq{
SELECT count(*) FROM (SELECT xid FROM ids GROUP BY xid HAVING count(*) <> $rows_per_tx) s}),
	'0',
	"each transaction stored $rows_per_tx rows");

# The pool really was shared: 8 clients, at most 3 backends, and backends
# served transactions of several clients.
my ($nclients, $npids, $shared_pids) = split /\|/, $node->safe_psql(
	'gbtest', q{
SELECT count(DISTINCT client), count(DISTINCT pid),
       (SELECT count(*) FROM (SELECT pid FROM ids GROUP BY pid
                              HAVING count(DISTINCT client) > 1) s)
FROM ids});
is($nclients, $clients, "$clients pgbench clients wrote rows");
cmp_ok($npids, '<=', $pool_size,
	"only $npids server backends (pool size $pool_size) served them");
cmp_ok($shared_pids, '>', 0,
	"$shared_pids backends served transactions of more than one client");

# Per client and run, consecutive transactions moved between backends, the
# case a per-session ID cache would get wrong.
my $moves = $node->safe_psql(
	'gbtest', q{
SELECT count(*) FROM (
    SELECT pid, lag(pid) OVER (PARTITION BY run, client ORDER BY xid) AS prev
    FROM (SELECT DISTINCT run, client, xid, pid FROM ids) t) s
WHERE pid <> prev});
cmp_ok($moves, '>', 0,
	"clients' transactions moved between server connections ($moves times)");

# --- Routing and tenant isolation behind the pooler.  The application's
# role owns an isolated table (row level security forced for the owner); each
# transaction sets its tenant, writes a row with the shard column's default
# and counts the other tenants' rows it can see; a statement in autocommit
# records the tenant it finds.  No tenant may leak from one pooled
# transaction into the next, whoever's it is.
$node->safe_psql(
	'gbtest', q{
CREATE ROLE gb_app LOGIN;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO gb_app;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (77, 'USA', 'us-east-1', 'dbname=gbtest', 1, 1000000);
CREATE TABLE routed (
    shard_id smallint NOT NULL DEFAULT gb_current_shard(),
    id bigint NOT NULL DEFAULT gb_next_id(),
    tenant_id bigint NOT NULL,
    client int NOT NULL,
    pid int NOT NULL,
    routed_to smallint NOT NULL,
    others_seen bigint NOT NULL,
    PRIMARY KEY (shard_id, id));
ALTER TABLE routed OWNER TO gb_app;
SELECT gb_tenant_isolation_enable('routed');
CREATE TABLE leaks (client int NOT NULL, pid int NOT NULL, tenant bigint);
ALTER TABLE leaks OWNER TO gb_app;
});
$node->pgbench(
	"-h 127.0.0.1 -p $bport -U gb_app -n -c $clients -j 2 -t $per_client -M extended",
	0,
	[qr{number of transactions actually processed: @{[ $clients * $per_client ]}/}],
	[],
	"pgbench: $clients tenants through pgbouncer, each transaction with its tenant",
	{
		"060_tenant\@3" => q{
\set tenant (:client_id + 1) * 1000
BEGIN;
SELECT gb_set_tenant(:tenant);
INSERT INTO routed (tenant_id, client, pid, routed_to, others_seen)
SELECT :tenant, :client_id, pg_backend_pid(), gb_shard_for_tenant(:tenant),
       (SELECT count(*) FROM routed WHERE tenant_id <> :tenant);
COMMIT;
},
		"060_no_tenant\@1" => q{
INSERT INTO leaks VALUES (:client_id, pg_backend_pid(), gb_scale.current_tenant());
},
	},
	'gbapp');
my ($rrows, $rtenants, $wrong_default, $wrong_route, $seen, $rpids) = split /\|/,
  $node->safe_psql(
	'gbtest', qq{
SELECT count(*), count(DISTINCT tenant_id),
       count(*) FILTER (WHERE shard_id <> $shard OR gb_shard_for_id(id) <> shard_id),
       count(*) FILTER (WHERE routed_to <> $shard),
       sum(others_seen), count(DISTINCT pid)
FROM routed});
cmp_ok($rrows, '>', 0, "$rrows isolated rows written through the pooler");
is($rtenants, $clients, "by $clients tenants");
is($wrong_default, 0, 'shard_id DEFAULT gb_current_shard() is the shard in every row, and the shard of its ID');
is($wrong_route, 0, 'gb_shard_for_tenant routed every tenant to the shard');
is($seen, 0, 'no transaction saw another tenant\'s rows');
cmp_ok($rpids, '<=', $pool_size, "on at most $pool_size shared server connections");
my ($lrows, $leaked, $lpids_shared) = split /\|/, $node->safe_psql(
	'gbtest', q{
SELECT count(*), count(tenant),
       (SELECT count(*) FROM (SELECT l.pid FROM leaks l JOIN routed r USING (pid)
                              GROUP BY l.pid) s)
FROM leaks});
cmp_ok($lrows, '>', 0, "$lrows autocommit statements ran between tenants' transactions");
is($leaked, 0, 'none of them found a tenant left over from a pooled transaction');
cmp_ok($lpids_shared, '>', 0, 'on server connections that had served tenants');
is( $node->safe_psql('gbtest', q{SET ROLE gb_app; SELECT count(*) FROM routed}),
	'0', 'without a tenant the owner sees no rows');

# --- Stop pgbouncer: SIGTERM to its pid, SIGKILL after a bounded grace.
my $bpid = slurp_file("$bdir/pgbouncer.pid");
chomp $bpid;
$bouncer->kill_kill(grace => 10);
ok(!kill(0, $bpid), "pgbouncer (pid $bpid) stopped");

$node->stop;
done_testing();
