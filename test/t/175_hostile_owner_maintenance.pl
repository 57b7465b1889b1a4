# A hostile table owner against the maintenance of the background worker and
# of a superuser's pg_cron job (issue 13, item 1).
#
# mallory, an ordinary role, owns a registered table whose CHECK constraint,
# run when maintenance moves stray rows out of the default partition (a move
# fires no trigger, but the new partition checks its rows), SETs
# search_path, work_mem and a setting of her own (set_config(..., false)).
# alice owns another registered table, maintained later in the same pass
# (a higher OID), whose CHECK constraint logs the settings it runs with.
# Both log what they see (RAISE LOG: code running in a move may not write).
#  - The worker: alice's check sees none of mallory's settings; both
#    tables are maintained; mallory stays an ordinary role.
#  - pg_cron: the job runs CALL gb_run_maintenance() and then a query whose
#    bigint = integer comparison would reach mallory's operator (which makes
#    her a superuser) had her search_path reached the job's session.  The
#    job succeeds, alice's check sees none of mallory's settings, and
#    mallory stays an ordinary role.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
my $sockdir = $node->host;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron,gb_scale'
cron.database_name = 'postgres'
cron.host = '$sockdir'
cron.timezone = 'UTC'
timezone = 'UTC'
gb_scale.maintenance_databases = 'wdb'
gb_scale.maintenance_naptime = 0
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
CREATE ROLE alice LOGIN;
CREATE DATABASE wdb;
CREATE EXTENSION pg_cron;
});

# Both databases: mallory's table first (maintained first), then alice's.
# The checks act only in sessions other than their owners' own, that is
# when maintenance runs them.
my $setup = q{
CREATE EXTENSION gb_scale;
CREATE SCHEMA mallory AUTHORIZATION mallory;
CREATE SCHEMA app AUTHORIZATION alice;
SET ROLE mallory;
CREATE FUNCTION mallory.chk(body text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF session_user <> 'mallory' THEN
        RAISE LOG 'gb_seen db=% tbl=events usr=% planted=% work_mem=% search_path=%', current_database(),
            current_user, coalesce(nullif(current_setting('mallory.planted', true), ''), 'unset'),
            current_setting('work_mem'), current_setting('search_path');
        PERFORM pg_catalog.set_config('search_path', 'mallory, pg_catalog', false);
        PERFORM pg_catalog.set_config('work_mem', '77kB', false);
        PERFORM pg_catalog.set_config('mallory.planted', 'by mallory', false);
    END IF;
    RETURN true;
END $$;
-- Makes mallory a superuser when a superuser runs it.
CREATE FUNCTION mallory.eq(a bigint, b integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR mallory.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = mallory.eq);
CREATE TABLE mallory.events (created_at timestamptz NOT NULL, body text) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('mallory.events', 'created_at', '1 day', premake => '3 days',
                           default_partition => true) > 0;
ALTER TABLE mallory.events ADD CONSTRAINT events_chk CHECK (mallory.chk(body));
RESET ROLE;

SET ROLE alice;
CREATE FUNCTION app.chk(body text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF session_user <> 'alice' THEN
        RAISE LOG 'gb_seen db=% tbl=logs usr=% planted=% work_mem=% search_path=%', current_database(),
            current_user, coalesce(nullif(current_setting('mallory.planted', true), ''), 'unset'),
            current_setting('work_mem'), current_setting('search_path');
    END IF;
    RETURN true;
END $$;
CREATE TABLE app.logs (created_at timestamptz NOT NULL, body text) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('app.logs', 'created_at', '1 day', premake => '3 days',
                           default_partition => true) > 0;
ALTER TABLE app.logs ADD CONSTRAINT logs_chk CHECK (app.chk(body));
RESET ROLE;
};
my $stray = {
	mallory => q{INSERT INTO mallory.events
SELECT now() + interval '10 days' + g * interval '1 minute', 'stray ' || g FROM generate_series(1, 3) g},
	alice => q{INSERT INTO app.logs
SELECT now() + interval '10 days' + g * interval '1 minute', 'stray ' || g FROM generate_series(1, 3) g},
};
for my $db ('wdb', 'postgres')
{
	$node->safe_psql($db, $setup);
	psql_as($node, $db, $_, $stray->{$_}) for sort keys %$stray;
	is( $node->safe_psql($db, q{
SELECT (SELECT count(*) FROM mallory.events_default), (SELECT count(*) FROM app.logs_default),
       'mallory.events'::regclass::oid < 'app.logs'::regclass::oid}),
		'3|3|t', "$db: 3 stray rows in each default partition; mallory's table comes first in a pass");
}

# What each check logged in database DB, in order: [tbl, usr, planted, work_mem, search_path].
sub seen
{
	my ($db) = @_;
	my $log = slurp_file($node->logfile);
	my @rows;
	while ($log =~ /LOG:\s+gb_seen db=(\w+) tbl=(\w+) usr=(\w+) planted=(.*?) work_mem=(\S+) search_path=(.*)$/mg)
	{
		push @rows, [ $2, $3, $4, $5, $6 ] if $1 eq $db;
	}
	return @rows;
}

# What alice's check saw, distinct.
sub alice_saw
{
	my %saw = map { join('|', @{$_}[ 1 .. 3 ]) => 1 } grep { $_->[0] eq 'logs' } seen(@_);
	return join(',', sort keys %saw);
}

# Whether mallory's checks all ran before alice's.
sub in_order
{
	my @tbls = map { $_->[0] } seen(@_);
	my $joined = join(',', @tbls);
	return scalar(@tbls) > 0 && $joined =~ /^(events,)*events(,logs)+$/ ? 't' : "f ($joined)";
}

my $mallory_su = q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'};

###########################################################################
# The background worker.
###########################################################################
set_instance_setting($node, 'gb_scale.maintenance_naptime', '1');
ok( $node->poll_query_until(
		'wdb', q{
SELECT (SELECT count(*) FROM mallory.events_default) = 0 AND (SELECT count(*) FROM app.logs_default) = 0}),
	'worker: the stray rows of both tables left their default partitions');
set_instance_setting($node, 'gb_scale.maintenance_naptime', '0');
is( $node->safe_psql('wdb', q{
SELECT (SELECT count(*) FROM mallory.events), (SELECT count(*) FROM app.logs)}),
	'3|3', 'worker: no row lost');
is(in_order('wdb'), 't', "worker: mallory's check ran before alice's, in one pass");
my @mallory = grep { $_->[0] eq 'events' } seen('wdb');
is( join(',', sort keys %{ { map { $_->[1] => 1 } @mallory } }) . '|' . $mallory[0][4],
	'mallory|pg_catalog, pg_temp', "worker: mallory's check ran as mallory, search_path pinned");
is(alice_saw('wdb'),
	'alice|unset|4MB', "worker: alice's check, later in the pass, saw none of mallory's settings");
is($node->safe_psql('wdb', $mallory_su), 'f', 'worker: mallory is still an ordinary role');

###########################################################################
# A superuser's pg_cron job.
###########################################################################
my $jobid = $node->safe_psql('postgres', q{
SELECT cron.schedule('gb-scale', '* * * * *',
                     'CALL gb_run_maintenance(); SELECT count(*) FROM pg_class WHERE relpages::bigint = 0')});
like($jobid, qr/^\d+$/, "cron.schedule gave job $jobid");
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = $jobid AND status IN ('succeeded', 'failed')}),
	'the pg_cron job ran');
$node->safe_psql('postgres', q{SELECT cron.unschedule('gb-scale')});
is( $node->safe_psql('postgres', qq{
SELECT status || '|' || coalesce(return_message, '') FROM cron.job_run_details WHERE jobid = $jobid ORDER BY runid LIMIT 1}),
	'succeeded|1 row', 'pg_cron: the job succeeded, its query after the CALL too');
is( $node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM mallory.events_default), (SELECT count(*) FROM app.logs_default),
       (SELECT count(*) FROM mallory.events), (SELECT count(*) FROM app.logs)}),
	'0|0|3|3', 'pg_cron: the stray rows of both tables left their default partitions, none lost');
is(in_order('postgres'), 't', "pg_cron: mallory's check ran before alice's");
is(alice_saw('postgres'),
	'alice|unset|4MB', "pg_cron: alice's check saw none of mallory's settings");
is($node->safe_psql('postgres', $mallory_su),
	'f', "pg_cron: mallory is still an ordinary role (the job's session never took her search_path)");

$node->stop;
done_testing();
