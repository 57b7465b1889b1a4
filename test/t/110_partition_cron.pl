# Partition maintenance scheduled with the real pg_cron (issue 7):
#   SELECT cron.schedule('gb-scale', '* * * * *', 'CALL gb_run_maintenance()')
# (pg_cron 1.4 has no seconds syntax, so each run waits for a minute
# boundary).  A superuser's job:
#  - succeeds (cron.job_run_details) and does the work: a missing premade
#    partition is created, stray rows leave the default partition, old
#    partitions are retired;
#  - runs each table's maintenance as the table's owner: the owner's index
#    expression runs for the moved rows as the owner, without superuser
#    rights; the owner's trigger does not fire for a move;
#  - when one table's maintenance fails (its owner lost CREATE on the
#    schema), the failure is recorded for that table and the other tables
#    are maintained all the same.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
my $sockdir = $node->host;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron,gb_scale'
cron.database_name = 'postgres'
cron.host = '$sockdir'
timezone = 'UTC'
cron.timezone = 'UTC'
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION gb_scale;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE SCHEMA app AUTHORIZATION alice;
CREATE SCHEMA app2;
GRANT USAGE, CREATE ON SCHEMA app2 TO bob;
SET ROLE alice;
CREATE TABLE app.trig_log (
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    usr name, sess name, is_su text, escalation text, op text, tbl name, body text);
-- The owner's trigger: records who runs it, whether it can read a server
-- file (superuser rights: 'read', else the SQLSTATE), and tries to make
-- alice a superuser (which only works with superuser rights).
CREATE FUNCTION app.events_trg() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE esc text; b text; su text;
BEGIN
    BEGIN
        PERFORM pg_read_file('postgresql.conf', 0, 10);
        su := 'read';
    EXCEPTION WHEN OTHERS THEN
        su := SQLSTATE;
    END;
    BEGIN
        EXECUTE 'ALTER ROLE alice SUPERUSER';
        esc := 'escalated';
    EXCEPTION WHEN OTHERS THEN
        esc := SQLSTATE;
    END;
    IF TG_OP = 'DELETE' THEN b := OLD.body; ELSE b := NEW.body; END IF;
    INSERT INTO app.trig_log(usr, sess, is_su, escalation, op, tbl, body)
    VALUES (current_user, session_user, su, esc, TG_OP, TG_TABLE_NAME, b);
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
-- The owner's index expression: logs who evaluates it and whether it can
-- read a server file.
CREATE FUNCTION app.guard(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE su text;
BEGIN
    BEGIN
        PERFORM pg_read_file('postgresql.conf', 0, 10);
        su := 'read';
    EXCEPTION WHEN OTHERS THEN
        su := SQLSTATE;
    END;
    RAISE LOG 'gb_guard current_user=% session_user=% file=%', current_user, session_user, su;
    RETURN t;
END $$;
CREATE TABLE app.events (
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    body text
) PARTITION BY RANGE (created_at);
CREATE TRIGGER events_trg BEFORE INSERT OR DELETE ON app.events
    FOR EACH ROW EXECUTE FUNCTION app.events_trg();
CREATE INDEX events_guard ON app.events (app.guard(body));
SELECT gb_partition_create('app.events', 'created_at', '1 day',
    premake => '3 days', retention => '5 days', default_partition => true) > 0;
-- work for the first run
SELECT gb_partition_ensure('app.events', now() - interval '9 days', now());
RESET ROLE;
SET ROLE bob;
CREATE TABLE app2.broken (created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('app2.broken', 'created_at', '1 day', premake => '3 days') > 0;
RESET ROLE;
});

# The application (alice's own sessions) writes rows beyond the premade range.
psql_as($node, 'postgres', 'alice', q{
INSERT INTO app.events
SELECT g, now() + interval '10 days' + g * interval '1 minute', 'stray-' || g
FROM generate_series(1, 4) g});

my $ahead = q{now() + interval '2 days'};

sub partition_at
{
	my ($parent, $ts) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT partition FROM gb_partition_list('$parent')
WHERE NOT is_default AND from_time <= ($ts) AND to_time > ($ts)});
}

psql_as($node, 'postgres', 'alice', 'DROP TABLE ' . partition_at('app.events', $ahead));
is(partition_at('app.events', $ahead), '', 'app.events: the premade partition two days ahead is missing');
is( $node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM app.events_default),
       (SELECT count(*) FROM gb_partition_list('app.events') WHERE to_time <= now() - interval '5 days')}),
	'4|4', 'app.events: 4 stray rows in the default partition, 4 partitions due for retention');

my $jobid = $node->safe_psql('postgres',
	q{SELECT cron.schedule('gb-scale', '* * * * *', 'CALL gb_run_maintenance()')});
like($jobid, qr/^\d+$/, "cron.schedule gave job $jobid");

# Wait for a finished run of the job (at the next minute boundary).
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = $jobid AND status IN ('succeeded', 'failed')}),
	'the pg_cron job ran');
is( $node->safe_psql('postgres', qq{
SELECT status || '|' || coalesce(return_message, '') FROM cron.job_run_details WHERE jobid = $jobid ORDER BY runid LIMIT 1}),
	'succeeded|CALL', 'cron.job_run_details: the run succeeded');

is(partition_at('app.events', $ahead),
	$node->safe_psql('postgres', qq{SELECT 'app.events_p' || to_char($ahead, 'YYYYMMDD')}),
	'the job created the missing premade partition');
is( $node->safe_psql('postgres', q{
SELECT (SELECT count(*) FROM app.events_default),
       (SELECT count(*) FROM app.events WHERE body LIKE 'stray-%')}),
	'0|4', 'the job moved the stray rows out of the default partition, none lost');
is( $node->safe_psql('postgres', q{
SELECT min(from_time) = date_trunc('day', now() - interval '5 days')
FROM gb_partition_list('app.events') WHERE NOT is_default}),
	't', 'the job retired the partitions older than the retention');
is( $node->safe_psql('postgres', q{
SELECT count(*) FROM app.trig_log WHERE body LIKE 'stray-%' AND sess <> 'alice'}),
	'0', "the superuser's job did not fire alice's trigger for the move");
my @guard;
my $log = slurp_file($node->logfile);
while ($log =~ /LOG:\s+gb_guard current_user=(\w+) session_user=(\w+) file=(\w+)/g)
{
	push @guard, "$1/$3" if $2 ne 'alice';
}
ok(scalar(@guard) > 0, "the job evaluated alice's index expression for the moved rows (" . scalar(@guard) . ' times)');
is(join(',', sort keys %{ { map { $_ => 1 } @guard } }),
	'alice/42501', '... always as alice, without superuser rights (reading a server file: 42501)');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}),
	'f', 'alice is still an ordinary role');
is( $node->safe_psql('postgres', q{
SELECT last_error IS NULL AND last_success IS NOT NULL
FROM gb_scale.partition_config WHERE parent = 'app.events'::regclass}),
	't', 'app.events: success recorded');

# One table fails, the others carry on.
$node->safe_psql('postgres', 'REVOKE CREATE ON SCHEMA app2 FROM bob');
psql_as($node, 'postgres', 'bob', 'DROP TABLE ' . partition_at('app2.broken', $ahead));
psql_as($node, 'postgres', 'alice', 'DROP TABLE ' . partition_at('app.events', $ahead));
my $runs = $node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE jobid = $jobid");
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) > $runs FROM cron.job_run_details WHERE jobid = $jobid AND status IN ('succeeded', 'failed')}),
	'the pg_cron job ran again');
is(partition_at('app.events', $ahead) ne '' ? 1 : 0,
	1, 'app.events is maintained although app2.broken fails');
is(partition_at('app2.broken', $ahead), '', 'app2.broken could not be maintained');
like( $node->safe_psql('postgres', q{
SELECT last_error FROM gb_scale.partition_config WHERE parent = 'app2.broken'::regclass}),
	qr/permission denied/, 'app2.broken: the failure is recorded as its last error');
is( $node->safe_psql('postgres', q{
SELECT last_error IS NULL FROM gb_scale.partition_config WHERE parent = 'app.events'::regclass}),
	't', 'app.events: no error recorded');

$node->safe_psql('postgres', 'GRANT CREATE ON SCHEMA app2 TO bob');
$runs = $node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE jobid = $jobid");
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) > $runs FROM cron.job_run_details WHERE jobid = $jobid AND status IN ('succeeded', 'failed')}),
	'the pg_cron job ran a third time');
is(partition_at('app2.broken', $ahead) ne '' ? 1 : 0,
	1, 'app2.broken is maintained once bob may create in its schema again');
is( $node->safe_psql('postgres', q{
SELECT last_error IS NULL FROM gb_scale.partition_config WHERE parent = 'app2.broken'::regclass}),
	't', 'app2.broken: error cleared');
is( $node->safe_psql('postgres', qq{
SELECT string_agg(DISTINCT status, ',') FROM cron.job_run_details WHERE jobid = $jobid}),
	'succeeded', 'every run of the job succeeded');

$node->safe_psql('postgres', q{SELECT cron.unschedule('gb-scale')});
$node->stop;
done_testing();
