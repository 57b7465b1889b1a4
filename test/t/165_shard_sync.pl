# gb_shard_sync between two servers, where the source asks for a password
# (what pg_regress, on one trusting instance, cannot show):
#  - a non-superuser member of gb_scale_admin syncs with a password that the
#    source uses; a wrong password, a connection the source lets in without
#    its password, or no password at all are refused (08001, 2F003);
#  - the caller's own privileges apply here (42501 without table rights), the
#    source's for the source role there (its error and SQLSTATE relayed, also
#    for a role that may read the directory but not the tiers' limits);
#  - statement_timeout ends a sync whose source does not answer (its
#    postmaster stopped) or whose source query waits for a lock, and the
#    connection to the source is closed at once, not at the end of the session;
#  - a standby refuses to sync (25006) before connecting anywhere.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $conf = q{
shared_preload_libraries = 'gb_scale'
timezone = 'UTC'
};

my $here = PostgreSQL::Test::Cluster->new('sync_here');
$here->init(allows_streaming => 1);
$here->append_conf('postgresql.conf', $conf . "gb_scale.shard_id = 1\n");
$here->start;

my $source = PostgreSQL::Test::Cluster->new('sync_source');
$source->init;
$source->append_conf('postgresql.conf', $conf . "gb_scale.shard_id = 2\n");
# The roles the syncs log in as must give their password; everyone else
# keeps the test cluster's trust.
my $hba = $source->data_dir . '/pg_hba.conf';
my $hba_rest = slurp_file($hba);
open(my $fh, '>', $hba) or die "could not write $hba: $!";
print $fh "local all sync_reader,sync_blind,sync_partial scram-sha-256\n", $hba_rest;
close $fh;
$source->start;

$source->safe_psql('postgres', q{
CREATE EXTENSION gb_scale;
CREATE ROLE sync_reader LOGIN PASSWORD 'reader-secret';
CREATE ROLE sync_blind LOGIN PASSWORD 'blind-secret';
CREATE ROLE sync_partial LOGIN PASSWORD 'partial-secret';
GRANT SELECT ON gb_scale.shard_config, gb_scale.tenant_shard_map, gb_scale.plan_setting,
                gb_scale.plan_limit, gb_scale.plan_quota TO sync_reader;
-- what the source role needed before the tiers' limits and quotas were synced
GRANT SELECT ON gb_scale.shard_config, gb_scale.tenant_shard_map, gb_scale.plan_setting TO sync_partial;
INSERT INTO gb_scale.shard_config
       (shard_id, region_code, datacenter, connection_string, is_primary, min_tenant_id, max_tenant_id, created_at)
VALUES (1, 'BRA', 'sao-paulo-1', 'host=shard1', true, 0, 999, '2025-01-01 00:00:00+00'),
       (2, 'USA', 'virginia-1', 'host=shard2', false, 1000, 1999, '2025-01-02 00:00:00+00');
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code, created_at)
VALUES (10, 2, 'USA', '2025-02-01 00:00:00+00'), (1010, 1, 'BRA', NULL);
});

$here->safe_psql('postgres', q{
CREATE EXTENSION gb_scale;
CREATE ROLE ops LOGIN IN ROLE gb_scale_admin;
CREATE ROLE weak LOGIN;
GRANT EXECUTE ON FUNCTION gb_shard_sync(text) TO weak;
});

my $base = 'host=' . $source->host . ' port=' . $source->port . ' dbname=postgres';
my $reader = "$base user=sync_reader password=reader-secret";
my $dump = q{
SELECT string_agg(c::text, ';' ORDER BY shard_id) FROM gb_scale.shard_config c
UNION ALL
SELECT string_agg(m::text, ';' ORDER BY tenant_id) FROM gb_scale.tenant_shard_map m};

# A non-superuser syncs with a password the source asked for.
psql_as($here, 'postgres', 'ops', "SELECT gb_shard_sync('$reader')");
is($here->safe_psql('postgres', $dump), $source->safe_psql('postgres', $dump),
	'ops (gb_scale_admin) synced both tables over a password connection');

my $e = sql_error($here, 'postgres',
	"SELECT gb_shard_sync('$base user=sync_reader password=wrong')", user => 'ops');
is($e->{state}, '08001', 'a wrong password: 08001');
like($e->{stderr}, qr/password authentication failed/, '... with the source\'s reason');

# No user: the OS user running the source, a superuser it trusts.
$e = sql_error($here, 'postgres', "SELECT gb_shard_sync('$base password=unused')", user => 'ops');
is($e->{state}, '2F003', 'a password the source did not ask for (trust): 2F003');
like($e->{stderr}, qr/Non-superusers may only connect to a source shard that asks for the password/,
	'... and the detail says why');

$e = sql_error($here, 'postgres', "SELECT gb_shard_sync('$base user=sync_reader')", user => 'ops');
is($e->{state}, '2F003', 'no password in the connection string: 2F003');

# The caller's privileges here, the source role's there.
$e = sql_error($here, 'postgres', "SELECT gb_shard_sync('$reader')", user => 'weak');
is($e->{state}, '42501', 'EXECUTE without rights on the tables: 42501');
like($e->{message}, qr/permission denied for table/, '... from PostgreSQL itself');

$e = sql_error($here, 'postgres',
	"SELECT gb_shard_sync('$base user=sync_blind password=blind-secret')", user => 'ops');
is($e->{state}, '42501', 'a source role that may not read the tables: the source\'s 42501');
like($e->{message}, qr/could not read gb_scale\.shard_config on the source shard: permission denied/,
	'... named as the source\'s error');

$e = sql_error($here, 'postgres',
	"SELECT gb_shard_sync('$base user=sync_partial password=partial-secret')", user => 'ops');
is($e->{state}, '42501', 'a source role that may not read the tiers\' limits: the source\'s 42501');
like($e->{message}, qr/could not read gb_scale\.plan_limit on the source shard: permission denied/,
	'... naming gb_scale.plan_limit');

# statement_timeout ends a sync whose source does not answer at all.
my ($pm_pid) = slurp_file($source->data_dir . '/postmaster.pid') =~ /^(\d+)/;
kill 'STOP', $pm_pid or die "could not stop the source's postmaster";
$e = sql_error($here, 'postgres',
	"SET statement_timeout = '2s'; SELECT gb_shard_sync('$base')");
kill 'CONT', $pm_pid;
is($e->{state}, '57014', 'statement_timeout ends the wait for a stopped source');

# ... and one whose source query waits for a lock; the source's session goes
# as soon as its query ends, not when the calling session ends.
my $locker = $source->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE gb_scale.tenant_shard_map IN ACCESS EXCLUSIVE MODE;');
my $caller = $here->background_psql('postgres', on_error_stop => 0);
my $token = async_start($caller, "SET statement_timeout = '2s'; SELECT gb_shard_sync('$base')");
my (undef, $err) = async_wait($caller, $token);
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout ends the wait for a lock on the source');
$locker->query_safe('COMMIT');
ok( $source->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'gb_shard_sync'}),
	'the connection to the source was closed while the calling session lives on');
is($caller->query_safe('SELECT 1'), '1', 'the calling session is still usable');
$caller->quit;
$locker->quit;

# A standby refuses before connecting anywhere.
$here->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('sync_standby');
$standby->init_from_backup($here, 'bk', has_streaming => 1);
$standby->start;
$e = sql_error($standby, 'postgres', "SELECT gb_shard_sync('$reader')");
is($e->{state}, '25006', 'a standby refuses to sync: 25006');
$standby->stop;

# Rows are unchanged by all the refused syncs.
is($here->safe_psql('postgres', $dump), $source->safe_psql('postgres', $dump),
	'the refused syncs changed nothing');

$here->stop;
$source->stop;
done_testing();
