# Per-tenant settings behind pgbouncer in transaction pooling mode: the
# settings gb_set_tenant() applies as SET LOCAL never reach the next
# transaction of the same server connection, whoever's it is (another
# tenant, or no tenant), after COMMIT, ROLLBACK or an error; a change of a
# tenant's configuration reaches the pooled backends that cached it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

delete $ENV{SHARD_ID};

my $pgbouncer = '/usr/sbin/pgbouncer';
die "pgbouncer is not installed at $pgbouncer (Debian package pgbouncer)\n" unless -x $pgbouncer;

my $pool_size = 2;
my $clients = 4;
my $per_client = 150;

my $node = PostgreSQL::Test::Cluster->new('settings');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'gb_scale'
max_connections = 30
log_statement = none
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE gbtest');
$node->safe_psql(
	'gbtest', q{
CREATE EXTENSION gb_scale;
CREATE ROLE gb_app LOGIN;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO gb_app;
-- What each transaction saw, before and after gb_set_tenant().
CREATE TABLE public.seen (
    id bigserial PRIMARY KEY,
    round int NOT NULL,
    phase text NOT NULL,
    tenant int NOT NULL,          -- 0: no tenant
    xid bigint NOT NULL DEFAULT txid_current(),
    pid int NOT NULL DEFAULT pg_backend_pid(),
    st text NOT NULL DEFAULT current_setting('statement_timeout'),
    wm text NOT NULL DEFAULT current_setting('work_mem'),
    sp text NOT NULL DEFAULT current_setting('search_path'),
    lt text NOT NULL DEFAULT current_setting('lock_timeout'),
    model text NOT NULL DEFAULT gb_tenant_config('app.model', 'none'));
GRANT INSERT ON public.seen TO gb_app;
GRANT USAGE ON SEQUENCE public.seen_id_seq TO gb_app;
-- Tenant 1: settings and configuration of its own; tenant 2: its pro
-- tier's lock_timeout and its own configuration.
SELECT gb_tenant_setting(1, 'statement_timeout', '1234ms');
SELECT gb_tenant_setting(1, 'work_mem', '7MB');
SELECT gb_tenant_setting(1, 'search_path', 'tenant_1, public');
SELECT gb_tenant_setting(1, 'app.model', 'm1');
SELECT gb_tenant_plan(2, 2);
SELECT gb_plan_setting(2, 'lock_timeout', '4321ms');
SELECT gb_tenant_setting(2, 'app.model', 'm2');
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

my $app = "host=127.0.0.1 port=$bport dbname=gbapp user=gb_app";

# One client session through pgbouncer: each -c a separate query message;
# errors do not stop it.
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

my $show = q{SELECT concat_ws(' ', pg_backend_pid(), current_setting('statement_timeout'),
    current_setting('work_mem'), current_setting('search_path'), current_setting('lock_timeout'),
    gb_tenant_config('app.model', 'none'))};
my $defaults = qr/^\d+ 0 4MB "\$user", public 0 none$/;

# --- Sequential clients: each psql is a new client of pgbouncer, served by
# one of the pooled server connections.  Tenant 1's transaction ends by
# COMMIT, ROLLBACK or an error; the next transaction, of tenant 2 or of no
# tenant, sees none of its settings.
for my $end ('COMMIT', 'ROLLBACK', 'SELECT 1/0')
{
	my ($out, $err) = client('BEGIN', 'SELECT gb_set_tenant(1)', $show, $end, 'ROLLBACK');
	my ($pid1) = $out =~ /^(\d+) /m;
	my $found = 0;
	like($out, qr/^\d+ 1234ms 7MB tenant_1, public 0 m1$/m, "tenant 1 has its settings ($end)");
	for (my $try = 0; $try < 20 && !$found; $try++)
	{
		# pgbouncer hands out the pool's connections in turn: keep asking
		# until the one tenant 1 used serves us.
		my ($o2) = client($show);
		my ($pid) = $o2 =~ /^(\d+) /m;
		next unless defined $pid && defined $pid1 && $pid == $pid1;
		like($o2, $defaults, "after tenant 1's $end, no tenant on its backend sees the defaults");
		my ($o3) = client('BEGIN', 'SELECT gb_set_tenant(2)', $show, 'COMMIT');
		like($o3, qr/^\d+ 0 4MB "\$user", public 4321ms m2$/m,
			"after tenant 1's $end, tenant 2 sees only its own settings");
		$found = 1;
	}
	ok($found, "a later client was served by tenant 1's backend after its $end");
}

# A later SET in the transaction wins; a plain SET is the session's as in
# PostgreSQL (the application's own doing), SET LOCAL is not.
{
	my ($out) = client('BEGIN', 'SELECT gb_set_tenant(1)', q{SET LOCAL statement_timeout = '9s'},
		q{SELECT current_setting('statement_timeout')}, 'COMMIT');
	like($out, qr/^9s$/m, 'a later SET LOCAL in the transaction wins over the tenant\'s setting');
}

# --- Many clients, few server connections: every transaction records what
# it saw before and after gb_set_tenant() of a random tenant (or none).
sub run_round
{
	my ($round) = @_;
	$node->pgbench(
		"-h 127.0.0.1 -p $bport -U gb_app -n -c $clients -j 2 -t $per_client -M simple",
		0,
		[qr{number of transactions actually processed: @{[ $clients * $per_client ]}/}],
		[],
		"round $round: $clients clients through pgbouncer",
		{
			"062_settings_$round\@1" => qq{
\\set t random(0, 2)
BEGIN;
INSERT INTO public.seen (round, phase, tenant) VALUES ($round, 'before', :t);
SELECT gb_set_tenant(NULLIF(:t, 0));
INSERT INTO public.seen (round, phase, tenant) VALUES ($round, 'after', :t);
COMMIT;
},
		},
		'gbapp');
}

run_round(1);
# A change of tenant 1's configuration, by another session, reaches the
# pooled backends that cached the old value.
$node->safe_psql('gbtest', q{SELECT gb_tenant_setting(1, 'app.model', 'm1b'),
                                    gb_tenant_setting(1, 'work_mem', '9MB')});
run_round(2);

my $check = sub {
	my ($sql) = @_;
	return $node->safe_psql('gbtest', $sql);
};

is( $check->(q{SELECT count(*) FROM seen WHERE phase = 'before'
                AND (st, wm, sp, lt, model) IS DISTINCT FROM ('0', '4MB', '"$user", public', '0', 'none')}),
	'0', 'no transaction starts with a setting or configuration of an earlier tenant');
is( $check->(q{SELECT count(*) FROM seen WHERE phase = 'after' AND tenant = 0
                AND (st, wm, sp, lt, model) IS DISTINCT FROM ('0', '4MB', '"$user", public', '0', 'none')}),
	'0', 'transactions without a tenant see the defaults');
is( $check->(q{SELECT count(*) FROM seen WHERE phase = 'after' AND tenant = 2
                AND (st, wm, sp, lt, model) IS DISTINCT FROM ('0', '4MB', '"$user", public', '4321ms', 'm2')}),
	'0', 'tenant 2 sees its tier\'s setting and its own configuration, nothing of tenant 1');
is( $check->(q{SELECT count(*) FROM seen WHERE phase = 'after' AND tenant = 1
                AND (st, wm, sp, lt, model) IS DISTINCT FROM
                    ('1234ms', CASE round WHEN 1 THEN '7MB' ELSE '9MB' END, 'tenant_1, public', '0',
                     CASE round WHEN 1 THEN 'm1' ELSE 'm1b' END)}),
	'0', 'tenant 1 sees its settings, and in round 2 the changed ones');
is( $check->(q{SELECT count(*) FROM (SELECT xid FROM seen GROUP BY xid HAVING count(DISTINCT pid) > 1) s}),
	'0', 'each transaction ran on one server connection');

# The hazard was exercised: backends were shared, and transactions of
# another tenant or of none followed one of tenant 1 on the same backend.
my ($npids, $followers) = split /\|/, $check->(q{
SELECT (SELECT count(DISTINCT pid) FROM seen),
       count(*) FILTER (WHERE prev_tenant = 1 AND tenant <> 1)
  FROM (SELECT tenant, lag(tenant) OVER (PARTITION BY pid ORDER BY id) AS prev_tenant
          FROM seen WHERE phase = 'before') s});
cmp_ok($npids, '<=', $pool_size, "only $npids server backends served the clients");
cmp_ok($followers, '>', 0,
	"$followers transactions of another tenant or none followed tenant 1 on its backend");
cmp_ok($check->(q{SELECT count(*) FROM seen WHERE round = 2 AND phase = 'after' AND tenant = 1}),
	'>', 0, 'tenant 1 ran in round 2');

my $bpid = slurp_file("$bdir/pgbouncer.pid");
chomp $bpid;
$bouncer->kill_kill(grace => 10);
ok(!kill(0, $bpid), "pgbouncer (pid $bpid) stopped");
$node->stop;
done_testing();
