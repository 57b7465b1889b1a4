# Premake bounded per transaction (issue 14, "premake is not bounded per
# transaction"): after a long outage a pass must create hundreds of missing
# periods, and a premake of years of hours asks for thousands at once.  Each
# new partition holds locks until its transaction ends; with a small shared
# lock table (max_locks_per_transaction = 10) one transaction creating 400
# partitions would fail with "out of shared memory", and other sessions with
# it.  gb_scale.maintenance_premake_limit bounds the partitions one
# transaction creates for premake in one time tree, oldest first (and a
# registration before its first pass, from now's period on); a CALL
# outside a transaction block goes on in transactions of its own, so one pass
# still creates them all.  Inside a transaction block the pass stops at the
# limit and says so in last_error, and the next pass goes on.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('premake_locks');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 3
timezone = 'UTC'
max_connections = 10
max_locks_per_transaction = 10
gb_scale.maintenance_premake_limit = 20
log_min_messages = warning
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION gb_scale;
CREATE TABLE public.ev (id bigint NOT NULL, at timestamptz NOT NULL, note text) PARTITION BY RANGE (at);
CREATE INDEX ON public.ev (id);
SET gb_scale.test_now = '2025-03-10 12:00+00';
SELECT gb_partition_create('public.ev', 'at', '1 day', premake => '4 days');
});

# Partitions of ev, counted a few at a time would need no lock: by name.
sub partitions
{
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.ev'::regclass});
}
my $before = partitions();

# 400 days later, from outside a transaction block (as pg_cron and the worker)
my ($rc, $out, $err) = $node->psql('postgres',
	"SET gb_scale.test_now = '2026-04-14 12:00+00'; CALL gb_run_maintenance('public.ev');");
is($rc, 0, 'the pass after a 400-day outage succeeds') or diag($err);
unlike($err, qr/out of shared memory/, 'no out of shared memory');
is(partitions() - $before, 400, 'one pass created every missing day through the horizon');
is( $node->safe_psql('postgres',
		q{SET gb_scale.test_now = '2026-04-14 12:00+00';
		  SELECT coalesce(last_error, '') || '|' || at_risk FROM gb_scale.partition_status}),
	'|false', 'last_error is empty and the table is not at risk');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'a new session still connects');

# Inside a transaction block the pass cannot commit: it creates 20
# partitions, oldest first, and last_error says that the rest wait; the next
# pass (the newest partition still ends before now) goes on from there.
($rc, $out, $err) = $node->psql('postgres', q{
SET gb_scale.test_now = '2027-06-01 12:00+00';
BEGIN;
CALL gb_run_maintenance('public.ev');
COMMIT;
});
is($rc, 0, 'a pass in a transaction block succeeds') or diag($err);
is( $node->safe_psql('postgres',
		q{SET gb_scale.test_now = '2027-06-01 12:00+00';
		  SELECT last_error ~ 'maintenance_premake_limit', last_success < '2027-06-01', at_risk,
		         partitions FROM gb_scale.partition_status}),
	't|t|t|425', 'it created 20 partitions; last_error names the limit and the table is at risk');
($rc, $out, $err) = $node->psql('postgres', q{
SET gb_scale.test_now = '2027-06-01 12:00+00';
BEGIN;
CALL gb_run_maintenance('public.ev');
COMMIT;
});
is( $node->safe_psql('postgres', q{SELECT max(to_time) FROM gb_partition_list('public.ev')}),
	'2026-05-29 00:00:00+00', 'the next such pass goes on where it stopped');
($rc, $out, $err) = $node->psql('postgres',
	"SET gb_scale.test_now = '2027-06-01 12:00+00'; CALL gb_run_maintenance('public.ev');");
is($rc, 0, 'a pass outside a transaction block succeeds') or diag($err);
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM generate_series('2026-04-14'::timestamptz, '2027-06-05', '1 day') d
		   WHERE NOT EXISTS (SELECT FROM gb_partition_list('public.ev') l
		                      WHERE l.from_time <= d AND l.to_time > d)}),
	'0', 'and every day of the outage and the horizon has its partition');
is( $node->safe_psql('postgres',
		q{SET gb_scale.test_now = '2027-06-01 12:00+00';
		  SELECT coalesce(last_error, '') || '|' || at_risk FROM gb_scale.partition_status}),
	'|false', 'last_error is empty again and the table is not at risk');

# A premake of 30 days of hours (720 partitions) at registration: the
# registration creates now's period and the next 19 (what a pass creates in
# one transaction), and the first pass outside a transaction block the rest.
($rc, $out, $err) = $node->psql('postgres', q{
CREATE TABLE public.hr (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SET gb_scale.test_now = '2027-06-01 12:30+00';
SELECT gb_partition_create('public.hr', 'at', '1 hour', premake => '30 days');
});
is($rc, 0, 'registering 30 days of hourly premake succeeds') or diag($err);
is($out, '20', 'it creates 20 partitions');
unlike($err, qr/out of shared memory/, 'no out of shared memory');
($rc, $out, $err) = $node->psql('postgres',
	"SET gb_scale.test_now = '2027-06-01 12:30+00'; CALL gb_run_maintenance('public.hr');");
is($rc, 0, 'the first pass succeeds') or diag($err);
is( $node->safe_psql('postgres',
		q{SET gb_scale.test_now = '2027-06-01 12:30+00';
		  SELECT partitions || '|' || at_risk || '|' || coalesce(last_error, '')
		    FROM gb_scale.partition_status WHERE parent = 'public.hr'::regclass}),
	'721|false|', 'it created the rest of the horizon');

$node->stop;
done_testing();
