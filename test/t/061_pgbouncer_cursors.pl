# Issue 13, item 3: behind PgBouncer in transaction mode with a pool of one
# server connection, a cursor WITH HOLD must never carry one tenant's rows to
# the next client.  Client A works for tenant 1 and tries every way to leave
# a holdable cursor behind; client B, on the same server connection, tries to
# FETCH from it and must never get a row of tenant 1.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

delete $ENV{SHARD_ID};

my $pgbouncer = '/usr/sbin/pgbouncer';
die "pgbouncer is not installed at $pgbouncer (Debian package pgbouncer)\n" unless -x $pgbouncer;

my $node = PostgreSQL::Test::Cluster->new('pooled_cursors');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
max_connections = 20
});
$node->start;

# gb.msgs as in the issue: owned by the application's role, isolated, with
# rows of tenants 1 and 2.
$node->safe_psql('postgres', 'CREATE DATABASE gbtest');
$node->safe_psql(
	'gbtest', q{
CREATE EXTENSION gb_scale;
CREATE ROLE gb_app LOGIN;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO gb_app;
CREATE SCHEMA gb AUTHORIZATION gb_app;
SET ROLE gb_app;
CREATE TABLE gb.msgs (tenant_id bigint NOT NULL, id int NOT NULL, body text NOT NULL);
SELECT gb_tenant_isolation_enable('gb.msgs');
CREATE FUNCTION gb.open_held() RETURNS void LANGUAGE plpgsql AS
  $$BEGIN EXECUTE 'DECLARE c CURSOR WITH HOLD FOR SELECT tenant_id, body FROM gb.msgs'; END$$;
RESET ROLE;
INSERT INTO gb.msgs SELECT t, g, 'secret of tenant ' || t FROM generate_series(1, 2) t, generate_series(1, 5) g;
});

# --- pgbouncer on 127.0.0.1 only, a port of its own, one server connection.
my $bdir = PostgreSQL::Test::Utils::tempdir;
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my $pghost = $node->host;
my $pgport = $node->port;
append_to_file("$bdir/userlist.txt", qq{"gb_app" ""\n"postgres" ""\n});
append_to_file(
	"$bdir/pgbouncer.ini", qq{
[databases]
gbapp = host=$pghost port=$pgport dbname=gbtest user=gb_app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $bdir/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = 1
max_client_conn = 20
ignore_startup_parameters = extra_float_digits
logfile = $bdir/pgbouncer.log
pidfile = $bdir/pgbouncer.pid
});

my ($b_out, $b_err) = ('', '');
my $bouncer = IPC::Run::start([ $pgbouncer, "$bdir/pgbouncer.ini" ],
	'>', \$b_out, '2>', \$b_err);
# Never leave pgbouncer behind, even if the test dies half-way.
END { $bouncer->kill_kill(grace => 5) if $bouncer && $bouncer->pumpable; }

my $app = "host=127.0.0.1 port=$bport dbname=gbapp user=gb_app";

# One client session through pgbouncer: each statement a separate query
# message, errors do not stop it.  Returns stdout and stderr.
sub client
{
	my @stmts = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-d', $app, map { ('-c', $_) } @stmts ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return ($out, $err);
}

my $ready = 0;
for (my $i = 0; $i < 100 && !$ready; $i++)
{
	my ($out) = client('SELECT 1');
	$ready = ($out eq "1\n");
	select(undef, undef, undef, 0.2) unless $ready;
}
ok($ready, "pgbouncer accepts connections on 127.0.0.1:$bport")
  or diag("pgbouncer stderr: $b_err\nlog: "
	  . (-e "$bdir/pgbouncer.log" ? slurp_file("$bdir/pgbouncer.log") : ''));

my $showcfg = '';
IPC::Run::run(
	[ 'psql', '-XAt', '-d', "host=127.0.0.1 port=$bport dbname=pgbouncer user=postgres", '-c', 'SHOW CONFIG' ],
	'>', \$showcfg, '2>', \my $showerr, IPC::Run::timeout(10));
like($showcfg, qr/^pool_mode\|transaction\|/m, 'pgbouncer runs in transaction pooling mode');
like($showcfg, qr/^default_pool_size\|1\|/m, 'with a pool of one server connection');

# Client B, right after A on the same server connection: what FETCH gives.
sub client_b_fetches
{
	my ($what, $a_pid) = @_;
	my ($out, $err) = client('SELECT pg_backend_pid()', 'FETCH 2 FROM c');
	my ($b_pid, @rows) = split /\n/, $out;
	is($b_pid, $a_pid, "$what: client B runs on client A's server connection") if defined $a_pid;
	unlike($out, qr/tenant 1/, "$what: client B fetches none of tenant 1's rows");
	like($err, qr/cursor "c" does not exist/, "$what: there is no cursor c for client B");
	return;
}

# 1. The issue's repro: a tenant, then DECLARE ... WITH HOLD.
my ($out, $err) = client(
	'SELECT pg_backend_pid()', 'BEGIN', 'SELECT gb_set_tenant(1)',
	'DECLARE c CURSOR WITH HOLD FOR SELECT tenant_id, body FROM gb.msgs', 'COMMIT');
my ($a_pid) = split /\n/, $out;
like($err, qr/cannot declare holdable cursor "c" while a tenant is set/,
	'DECLARE ... WITH HOLD with a tenant set is refused');
client_b_fetches('tenant, then DECLARE WITH HOLD', $a_pid);

# 2. The cursor first, then the tenant.
($out, $err) = client(
	'SELECT pg_backend_pid()', 'BEGIN',
	'DECLARE c CURSOR WITH HOLD FOR SELECT tenant_id, body FROM gb.msgs',
	'SELECT gb_set_tenant(1)', 'COMMIT');
($a_pid) = split /\n/, $out;
like($err, qr/cannot set a tenant: this transaction declared holdable cursor "c"/,
	'gb_set_tenant after DECLARE ... WITH HOLD is refused');
client_b_fetches('DECLARE WITH HOLD, then tenant', $a_pid);

# 3. From a PL/pgSQL function.
($out, $err) = client('SELECT pg_backend_pid()', 'BEGIN', 'SELECT gb_set_tenant(1)',
	'SELECT gb.open_held()', 'COMMIT');
($a_pid) = split /\n/, $out;
like($err, qr/cannot declare holdable cursor "c"/, 'a holdable cursor opened by a function is refused');
client_b_fetches('function', $a_pid);

# 4. The tenant set by the cursor's own query, which runs at COMMIT.
($out, $err) = client(
	'SELECT pg_backend_pid()', 'BEGIN',
	'DECLARE c CURSOR WITH HOLD FOR SELECT m.tenant_id, m.body FROM (SELECT gb_set_tenant(1)) s, '
	  . 'LATERAL (SELECT * FROM gb.msgs OFFSET 0) m',
	'COMMIT');
($a_pid) = split /\n/, $out;
like($err, qr/cannot set a tenant: this transaction declared holdable cursor "c"/,
	'a tenant set by the holdable cursor\'s own query fails the COMMIT');
client_b_fetches('tenant set by the cursor\'s query', $a_pid);

# 5. The extended query protocol (pgbench -M extended): Parse/Bind/Execute of
# DECLARE.  pgbench aborts its client at the refusal.
my $script = "$bdir/declare.sql";
append_to_file($script, q{BEGIN;
SELECT gb_set_tenant(1);
DECLARE c CURSOR WITH HOLD FOR SELECT tenant_id, body FROM gb.msgs;
COMMIT;
});
my ($p_out, $p_err) = ('', '');
IPC::Run::run(
	[ 'pgbench', '-n', '-M', 'extended', '-c', '1', '-t', '1', '-f', $script,
	  '-h', '127.0.0.1', '-p', $bport, '-U', 'gb_app', 'gbapp' ],
	'>', \$p_out, '2>', \$p_err, IPC::Run::timeout(60));
like($p_err, qr/cannot declare holdable cursor "c" while a tenant is set/,
	'extended protocol: DECLARE ... WITH HOLD with a tenant set is refused');
client_b_fetches('extended protocol', undef);

# 6. Without a tenant a holdable cursor is allowed: it ran at COMMIT without
# a tenant, so it holds none of the isolated rows, even for a client that
# sets its own tenant afterwards.
($out, $err) = client('SELECT pg_backend_pid()', 'BEGIN',
	'DECLARE c CURSOR WITH HOLD FOR SELECT tenant_id, body FROM gb.msgs', 'COMMIT');
($a_pid) = split /\n/, $out;
is($err, '', 'a holdable cursor without a tenant is allowed');
($out, $err) = client('SELECT pg_backend_pid()', 'BEGIN', 'SELECT gb_set_tenant(2)', 'FETCH ALL FROM c', 'COMMIT',
	'CLOSE c');
my ($b_pid, @rows) = grep { $_ ne '' } split /\n/, $out;
is($b_pid, $a_pid, 'client B runs on client A\'s server connection');
is(scalar(@rows), 0, 'the held cursor has no isolated rows, for any tenant');
is($err, '', 'and client B may still set its tenant');
like((client('BEGIN', 'SELECT gb_set_tenant(1)', 'SELECT count(*) FROM gb.msgs', 'COMMIT'))[0],
	qr/^5$/m, 'tenant 1 still reads its own rows');

my $bpid = slurp_file("$bdir/pgbouncer.pid");
chomp $bpid;
$bouncer->kill_kill(grace => 10);
ok(!kill(0, $bpid), "pgbouncer (pid $bpid) stopped");

# Without shared_preload_libraries a session loads gb_scale only when it
# first calls one of its functions, perhaps in the middle of the DECLARE;
# gb_set_tenant still finds the holdable cursor, and a partition made in a
# fresh session still gets the tree's policies (from the event trigger).
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
my ($ret, $stdout, $stderr) = $node->psql(
	'gbtest', q{
SET ROLE gb_app;
BEGIN;
DECLARE c CURSOR WITH HOLD FOR SELECT tenant_id, body FROM gb.msgs;
SELECT gb_set_tenant(1);
COMMIT;
});
like($stderr, qr/cannot set a tenant: this transaction declared holdable cursor "c"/,
	'not preloaded: gb_set_tenant after DECLARE ... WITH HOLD is refused');
$node->safe_psql(
	'gbtest', q{
SET ROLE gb_app;
CREATE TABLE gb.events (tenant_id bigint NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
SELECT gb_tenant_isolation_enable('gb.events');
});
is( $node->safe_psql(
		'gbtest', q{
SET ROLE gb_app;
CREATE TABLE gb.events_2026 PARTITION OF gb.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT c.relrowsecurity || ' ' || (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
  FROM pg_class c WHERE c.oid = 'gb.events_2026'::regclass;
}),
	'true 4',
	'not preloaded: a partition made in a fresh session carries the policies');

$node->stop;
done_testing();
