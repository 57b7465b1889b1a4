# Tenant resource limits (src/tenant_limits.c) where a single session or
# isolationtester cannot show them:
#  - a backend that dies with a transaction open gives its tenant's place
#    back, whether terminated (its exit callback) or killed with SIGKILL
#    (the crash restart starts shared memory over);
#  - with gb_scale.tenant_wait_timeout a session over the concurrency limit
#    waits (wait event Extension) and proceeds when the other one commits;
#  - the statement rate: with 5 per second (a burst of 5) the sixth
#    statement of a tight run is refused with 53400, counted without any
#    timing assertion;
#  - limits survive pg_dump/pg_restore; without shared_preload_libraries
#    they are stored with a warning and not enforced.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('limits');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'gb_scale'\ngb_scale.shard_id = 1\nrestart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
$node->safe_psql('postgres', 'SELECT gb_tenant_limit(31, 1, NULL)');

# SQLSTATE of a statement run in a fresh session ('' when it succeeds).
sub state_of
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return $state // '';
}

my $try31 = 'BEGIN; SELECT gb_set_tenant(31); COMMIT;';

# A transaction holds tenant 31's only place.
sub hold
{
	my $holder = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $holder->query_safe('SELECT pg_backend_pid()');
	$holder->query_safe('BEGIN; SELECT gb_set_tenant(31);');
	return ($holder, $pid);
}

# Terminated: the exit callback frees the place.
my ($holder, $pid) = hold();
is(state_of($try31), '53300', 'a second transaction of tenant 31 is refused');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid, 60000)");
is(state_of($try31), '', 'after pg_terminate_backend the place is free');
$holder->quit;

# Killed: the crash restart starts shared memory over.
($holder, $pid) = hold();
is(state_of($try31), '53300', 'refused again while a holder runs');
kill 'KILL', $pid;
$holder->quit;
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server did not come back after the crash';
is(state_of($try31), '', 'after a SIGKILL and the crash restart the place is free');

# Waiting: a second session waits for the place, then proceeds.
($holder, $pid) = hold();
my $waiter = $node->background_psql('postgres', on_error_stop => 0);
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/waiting/,
	"SET gb_scale.tenant_wait_timeout = '5min';\n\\echo waiting\nBEGIN;\nSELECT gb_set_tenant(31);\n");
$node->poll_query_until('postgres',
	"SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $waiter_pid")
  or die 'the second session does not wait';
$holder->query_safe('COMMIT');
my $after = $waiter->query_safe("SELECT 'proceeded'");
like($after, qr/proceeded/, 'the waiting session proceeds once the holder commits');
$waiter->query_safe('COMMIT');
is(state_of($try31), '', 'and its place is free again after its commit');
$holder->quit;
$waiter->quit;

# Statement rate: 5 per second.  The statement setting the tenant and four
# nextval() calls take the burst; the sixth statement is refused before it
# runs, so the sequence (not transactional) stops at 4.
$node->safe_psql('postgres',
	'CREATE SEQUENCE tl_seq; SELECT gb_tenant_limit(32, NULL, 5)');
my $burst = "BEGIN;\nSELECT gb_set_tenant(32);\n"
  . ("SELECT nextval('tl_seq');\n" x 10) . "COMMIT;\n";
my ($ret, $out, $err) = $node->psql('postgres', $burst,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+53400: tenant 32 is over its limit of 5 statements per second/,
	'the sixth statement is refused with 53400');
is($node->safe_psql('postgres', 'SELECT last_value FROM tl_seq'), '4',
	'exactly the burst of 5 statements ran');
# Another tenant has its own bucket; without a limit nothing is counted.
is(state_of("BEGIN; SELECT gb_set_tenant(33); SELECT 1; SELECT 2; SELECT 3; SELECT 4; SELECT 5; SELECT 6; COMMIT;"),
	'', 'a tenant without a limit is not refused');

# A transaction that drops the extension after setting a tenant goes on:
# without the limit tables there are no limits.
$node->safe_psql('postgres', 'CREATE DATABASE dropping');
$node->safe_psql('dropping', 'CREATE EXTENSION gb_scale');
is($node->safe_psql('dropping',
		"BEGIN; SELECT gb_set_tenant(51); DROP EXTENSION gb_scale; SELECT 'after the drop'; ROLLBACK;"),
	"\nafter the drop", 'statements after DROP EXTENSION in the tenant\'s transaction run');

# pg_dump / pg_restore keep the limits, and the restored database enforces
# them.  (The drop above was rolled back.)
$node->safe_psql('dropping', 'SELECT gb_tenant_limit(61, 3, 1), gb_plan_limit(2, 4, NULL)');
my $dump = $node->basedir . '/limits.dump';
command_ok([ $node->installed_command('pg_dump'), '-Fc', '-f', $dump, '-d', $node->connstr('dropping') ],
	'pg_dump -Fc of a database with limits');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok([ $node->installed_command('pg_restore'), '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore --exit-on-error into a new database');
is($node->safe_psql('restored',
		"SELECT string_agg(concat_ws(',', tenant_id, max_xacts, max_statements_per_second), ' ') FROM gb_scale.tenant_limit")
	  . ' ' . $node->safe_psql('restored',
		"SELECT string_agg(concat_ws(',', tier, max_xacts, max_statements_per_second), ' ') FROM gb_scale.plan_limit"),
	'61,3,1 2,4', 'the limits are restored');
($ret, $out, $err) = $node->psql('restored', "BEGIN; SELECT gb_set_tenant(61); SELECT 'refused'; COMMIT;",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+53400: tenant 61 is over its limit of 1 statements per second/,
	'and enforced in the restored database');

$node->stop;

# Without shared_preload_libraries: the extension installs, limits are
# stored with a warning, and nothing is enforced.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', "gb_scale.shard_id = 1\n");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
my ($pret, $pout, $perr) = $plain->psql('postgres', 'SELECT gb_tenant_limit(41, 1, 1)');
is($pret, 0, 'without the preload gb_tenant_limit stores the limits');
like($perr, qr/WARNING:  tenant limits are stored but not enforced/, 'and warns that they are not enforced');
is($plain->safe_psql('postgres', 'SELECT max_xacts, max_statements_per_second FROM gb_scale.tenant_limit'),
	'1|1', 'the row is there');
is($plain->safe_psql('postgres',
		"BEGIN; SELECT gb_set_tenant(41); SELECT 1; SELECT 2; SELECT 'not enforced'; COMMIT;"),
	"\n1\n2\nnot enforced", 'statements of the tenant are not limited');
$plain->stop;
done_testing();
