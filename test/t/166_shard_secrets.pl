# No piece of a shard password reaches the server log, a client error or
# pg_stat_activity, on every path of gb_shard_sync() and gb_shard_fdw_setup():
# success, failure (wrong password, malformed string, refused user mapping),
# cancel (statement_timeout and pg_cancel_backend while the source does not
# answer), with log_statement = all, log_min_error_statement = debug5 and
# log_min_duration_statement = 0.  pg_stat_activity is watched from another
# session while a sync waits on a stopped source, and after it ends.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $here = PostgreSQL::Test::Cluster->new('secret_here');
$here->init;
$here->append_conf('postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 1
log_statement = all
log_min_error_statement = debug5
log_min_duration_statement = 0
log_error_verbosity = verbose
});
$here->start;

my $source = PostgreSQL::Test::Cluster->new('secret_source');
$source->init;
$source->append_conf('postgresql.conf', "shared_preload_libraries = 'gb_scale'\ngb_scale.shard_id = 2\n");
my $hba = $source->data_dir . '/pg_hba.conf';
my $hba_rest = slurp_file($hba);
open(my $fh, '>', $hba) or die "could not write $hba: $!";
print $fh "local all sync_reader scram-sha-256\n", $hba_rest;
close $fh;
$source->start;
$source->safe_psql('postgres', q{
CREATE EXTENSION gb_scale;
CREATE ROLE sync_reader LOGIN PASSWORD 'Rd9xQpass';
GRANT SELECT ON gb_scale.shard_config, gb_scale.tenant_shard_map, gb_scale.plan_setting,
                gb_scale.plan_limit, gb_scale.plan_quota TO sync_reader;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (1, 'BRA', 'sao-paulo-1', 'host=shard1', 0, 999);
});

$here->safe_psql('postgres', q{
CREATE EXTENSION gb_scale;
CREATE ROLE ops LOGIN IN ROLE gb_scale_admin;
});

my $base = 'host=' . $source->host . ' port=' . $source->port . ' dbname=postgres';
# Every secret used below: none may appear anywhere.
my @secrets = ('Rd9xQpass', 'Wr0ngPw7', 'Spl1tPw', 'St0pPwA', 'St0pPwB', 'Fdw5ecr3t', 'Qu0tedPw');

# Success, as a non-superuser, the password in a quoted value too.
psql_as($here, 'postgres', 'ops',
	"SELECT gb_shard_sync('$base user=sync_reader password=Rd9xQpass')");
psql_as($here, 'postgres', 'ops',
	"SELECT gb_shard_sync('$base user=sync_reader password=''Rd9xQpass''')");
is($here->safe_psql('postgres', 'SELECT datacenter FROM gb_scale.shard_config'), 'sao-paulo-1',
	'the syncs went through');

# Failures: the client's errors hold no password.
my $e = sql_error($here, 'postgres',
	"SELECT gb_shard_sync('$base user=sync_reader password=Wr0ngPw7')", user => 'ops');
is($e->{state}, '08001', 'a wrong password fails');
unlike($e->{stderr}, qr/Wr0ngPw7/, '... and the client error does not show it');
$e = sql_error($here, 'postgres', "SELECT gb_shard_sync('$base password=Spl1tPw x Spl1tPw')");
is($e->{state}, '22023', 'a malformed string fails');
unlike($e->{stderr}, qr/Spl1tPw/, '... and the client error does not quote it');

# A source that does not answer: the sync waits; pg_stat_activity, watched
# from another session, shows the statement with the password masked.
my ($pm_pid) = slurp_file($source->data_dir . '/postmaster.pid') =~ /^(\d+)/;
kill 'STOP', $pm_pid or die "could not stop the source's postmaster";
my $caller = $here->background_psql('postgres', on_error_stop => 0);
my $token = async_start($caller,
	"SET statement_timeout = '3s'; SELECT gb_shard_sync('$base password=''St0pPwA'' user=x')");
ok( $here->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE query LIKE '%gb_shard_sync%' AND state = 'active' AND pid <> pg_backend_pid()}),
	'the waiting sync is in pg_stat_activity');
my $activity = $here->safe_psql('postgres',
	q{SELECT query FROM pg_stat_activity WHERE query LIKE '%gb_shard_sync%' AND pid <> pg_backend_pid()});
unlike($activity, qr/St0pPwA/, 'pg_stat_activity does not show the password while the sync waits');
like($activity, qr/password=''\.\.\.''/, '... but the masked statement');
my (undef, $err) = async_wait($caller, $token);
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout ends the sync');
unlike($err, qr/St0pPwA/, '... and its error does not show the password');
$activity = $here->safe_psql('postgres',
	q{SELECT query FROM pg_stat_activity WHERE query LIKE '%gb_shard_sync%' AND pid <> pg_backend_pid()});
unlike($activity, qr/St0pPwA/, 'nor does pg_stat_activity after the sync ended');

# pg_cancel_backend.
$token = async_start($caller, "SELECT gb_shard_sync('$base password=St0pPwB')");
ok( $here->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE query LIKE '%gb_shard_sync%' AND state = 'active' AND pid <> pg_backend_pid()}),
	'the second waiting sync is in pg_stat_activity');
$activity = $here->safe_psql('postgres',
	q{SELECT query FROM pg_stat_activity WHERE query LIKE '%gb_shard_sync%' AND pid <> pg_backend_pid()});
unlike($activity, qr/St0pPwB/, 'pg_stat_activity does not show its password');
$here->safe_psql('postgres',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	   WHERE query LIKE '%gb_shard_sync%' AND pid <> pg_backend_pid()});
(undef, $err) = async_wait($caller, $token);
like($err, qr/canceling statement due to user request/, 'pg_cancel_backend ends the sync');
unlike($err, qr/St0pPwB/, '... and its error does not show the password');
$caller->quit;
kill 'CONT', $pm_pid;

# gb_shard_fdw_setup(): the password is in shard_config (written under
# log_statement = all); an administrator without USAGE on the server fails
# at its user mapping.
$here->safe_psql('postgres', q{
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (7, 'USA', 'us-east-1', 'host=shard7.invalid dbname=gb user=bot password=Fdw5ecr3t', 1000, 1999);
SET client_min_messages = warning;
SELECT gb_shard_fdw_setup();
});
$e = sql_error($here, 'postgres', 'SELECT gb_shard_fdw_setup()', user => 'ops');
is($e->{state}, '42501', 'gb_shard_fdw_setup() without USAGE on the server fails');
unlike($e->{stderr}, qr/Fdw5ecr3t/, '... and its error and context do not show the password');
$here->safe_psql('postgres', q{
UPDATE gb_scale.shard_config SET connection_string = 'host=shard7.invalid password=''Qu0tedPw'''
 WHERE shard_id = 7;
SELECT gb_shard_fdw_setup();
});
is($here->safe_psql('postgres', q{SELECT array_to_string(umoptions, ',') FROM pg_user_mappings
	WHERE srvname = 'gb_shard_7'}), 'password=Qu0tedPw', 'the user mapping was changed');

# The log: every statement above is there, masked; no secret is.
my $log = slurp_file($here->logfile);
like($log, qr/statement: SELECT gb_shard_sync\('[^']*password=\.\.\.'\)/,
	'log_statement logged the syncs, masked');
like($log, qr/STATEMENT:  SELECT gb_shard_sync/, 'the failed syncs\' statements were logged, masked');
like($log, qr/permission denied for foreign server/, 'the failed set-up was logged');
for my $secret (@secrets)
{
	unlike($log, qr/\Q$secret\E/, "the server log holds no piece of $secret");
}

$here->stop;
$source->stop;
done_testing();
