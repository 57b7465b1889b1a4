# Thousands of stray periods in a default partition (issue 14, item 6): the
# drain must not take a lock for every one of them in one transaction.  With
# a small shared lock table (max_locks_per_transaction = 10), 400 stray days
# would need far more locks than exist if one transaction created all their
# partitions ("out of shared memory", which other sessions would hit too).
# gb_scale.maintenance_drain_limit bounds the periods of one transaction; a
# CALL outside a transaction block goes on in transactions of its own, so one
# pass still moves them all, and another session keeps working meanwhile.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('drain_locks');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 3
timezone = 'UTC'
max_connections = 10
max_locks_per_transaction = 10
gb_scale.maintenance_drain_limit = 20
log_min_messages = warning
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION gb_scale;
CREATE TABLE public.ev (id bigint NOT NULL, at timestamptz NOT NULL, note text) PARTITION BY RANGE (at);
CREATE INDEX ON public.ev (id);
SET gb_scale.test_now = '2025-03-10 12:00+00';
SELECT gb_partition_create('public.ev', 'at', '1 day', default_partition => true);
INSERT INTO public.ev SELECT g, '2026-01-01 06:00+00'::timestamptz + g * interval '1 day', 'x'
  FROM generate_series(1, 400) g;
});

# one pass, from outside a transaction block (as pg_cron and the worker run it)
my ($rc, $out, $err) = $node->psql('postgres',
	"SET gb_scale.test_now = '2025-03-10 12:00+00'; CALL gb_run_maintenance('public.ev');");
is($rc, 0, 'the pass succeeds') or diag($err);
unlike($err, qr/out of shared memory/, 'no out of shared memory');
is( $node->safe_psql('postgres', 'SELECT count(*) FROM ONLY public.ev_default'),
	'0', 'every stray row left the default partition in one pass');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_class WHERE relname ~ '^ev_p202[67]' AND relkind = 'r'}),
	'400', 'one partition per stray day');
# every row once: read the partitions a few at a time (one query over all of
# them would itself need more locks than the table has)
my @parts = split /\n/, $node->safe_psql('postgres',
	q{SELECT oid::regclass FROM pg_class WHERE relname ~ '^ev_p202[67]' AND relkind = 'r' ORDER BY 1});
my %seen;
my $copies = 0;
while (my @batch = splice(@parts, 0, 25))
{
	my $ids = $node->safe_psql('postgres',
		'SELECT string_agg(id::text, \',\') FROM (' . join(' UNION ALL ', map { "SELECT id FROM $_" } @batch) . ') t');
	for my $id (split /,/, $ids) { $copies++; $seen{$id} = 1; }
}
is("$copies|" . scalar(keys %seen), '400|400', 'every row once');
is( $node->safe_psql('postgres',
		q{SELECT coalesce(last_error, '') FROM gb_scale.partition_config WHERE parent = 'public.ev'::regclass}),
	'', 'last_error is empty');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'a new session still connects');

$node->stop;
done_testing();
