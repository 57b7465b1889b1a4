# Row quotas (src/tenant_quotas.c) across restarts and settings:
#  - the flusher writes the counts within gb_scale.quota_flush_interval;
#  - a clean restart keeps the counts exactly, and an immediate stop loses
#    at most the rows of the last flush interval (the postmaster writes the
#    counts at its exit, after every backend has gone);
#  - a crash restart falls back to the last flush;
#  - gb_scale.quotas = off refuses nothing and keeps counting;
#  - gb_scale.quota_time_zone decides where a day starts;
#  - gb_scale.quota_entries: full, a new counter is refused until past
#    months' counters can go.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('quotas');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'gb_scale'\ngb_scale.shard_id = 1\n"
	  . "gb_scale.quota_flush_interval = 1\nrestart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
$node->safe_psql('postgres',
	"CREATE TABLE notes (id serial, body text); SELECT gb_tenant_quota(41, 'notes', NULL, 10)");

my $file = $node->data_dir . '/pg_stat/gb_scale_quotas.stat';

sub file_content { return -e $file ? slurp_file($file) : ''; }

sub insert_rows
{
	my ($n) = @_;
	return $node->psql('postgres',
		"BEGIN; SELECT gb_set_tenant(41); INSERT INTO notes (body) SELECT 'x' FROM generate_series(1, $n); COMMIT;");
}

sub month_rows
{
	return $node->safe_psql('postgres',
		"SELECT rows_this_month FROM gb_tenant_quotas WHERE tenant_id = 41");
}

# The flusher writes committed rows within its interval.
my $before = file_content();
is(insert_rows(3), 0, 'three rows inserted');
my $waited = 0;
while (file_content() eq $before && $waited < 180 * 10)
{
	usleep(100_000);
	$waited++;
}
isnt(file_content(), $before, 'the flusher wrote the counters');

# Immediate stop: the flushed rows are kept.
$node->stop('immediate');
$node->start;
is(month_rows(), '3', 'after an immediate stop the flushed rows are counted');

# With a slow flusher, an immediate stop loses at most the rows committed
# since its last flush.
$node->append_conf('postgresql.conf', "gb_scale.quota_flush_interval = 3600\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('gb_scale.quota_flush_interval') = '1h'")
  or die 'the reload was not seen';
$before = file_content();
is(insert_rows(2), 0, 'two more rows inserted');
is(month_rows(), '5', 'five rows counted');
$node->stop('immediate');
$node->start;
my $after = month_rows();
ok($after eq '3' || $after eq '5',
	"after an immediate stop at most the last interval's rows are uncounted ($after)");

# A clean restart keeps the counts exactly.
$node->safe_psql('postgres', "SELECT 1");
my $now = month_rows();
is(insert_rows(4), 0, 'four rows inserted');
$node->restart;
is(month_rows(), $now + 4, 'a clean restart keeps the counts exactly');

# A crash falls back to the last flush: with the slow flusher, a row
# committed since is not counted after the crash restart.
my $exact = month_rows();
is(insert_rows(1), 0, 'one more row inserted');
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
kill 'KILL', $victim_pid;
$victim->quit;
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'the server did not come back after the crash';
is(month_rows(), $exact, 'after a crash the counts are those of the last flush');

# The quota is enforced with the counts read back.
my $left = 10 - month_rows();
my ($ret, $out, $err) = $node->psql('postgres',
	"BEGIN; SELECT gb_set_tenant(41); INSERT INTO notes (body) SELECT 'y' FROM generate_series(1, "
	  . ($left + 1) . "); COMMIT;",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+53400: tenant 41 is over its quota of rows per month in table public.notes/,
	'over the quota after the restarts: refused with 53400');

# gb_scale.quotas = off: nothing refused, still counted.
$node->append_conf('postgresql.conf', "gb_scale.quotas = off\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('gb_scale.quotas') = 'off'")
  or die 'the reload was not seen';
is(insert_rows($left + 1), 0, 'with gb_scale.quotas = off the rows are inserted');
is(month_rows(), 11, 'and counted');
$node->append_conf('postgresql.conf', "gb_scale.quotas = on\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('gb_scale.quotas') = 'on'")
  or die 'the reload was not seen';
isnt(insert_rows(1), 0, 'back on, the tenant over its quota is refused');

# The day follows gb_scale.quota_time_zone: 23:30 UTC on 2026-03-15 is the
# 16th in Tokyo.
$node->safe_psql('postgres', "SELECT gb_tenant_quota(42, 'notes', 100, NULL)");
$node->append_conf('postgresql.conf', "gb_scale.quota_time_zone = 'Asia/Tokyo'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('gb_scale.quota_time_zone') = 'Asia/Tokyo'")
  or die 'the reload was not seen';
is( $node->safe_psql('postgres',
		"SET gb_scale.test_now = '2026-03-15 23:30+00'; BEGIN; SELECT gb_set_tenant(42); "
		  . "INSERT INTO notes (body) VALUES ('z'); COMMIT; "
		  . "SELECT day FROM gb_tenant_quotas WHERE tenant_id = 42"),
	"\n2026-03-16",
	'the day is Tokyo\'s');

# With every counter taken, an insert that needs a new one is refused; in a
# later month the past month's counters make room.
$node->append_conf('postgresql.conf', "gb_scale.quota_entries = 100\n");
$node->restart;
$node->safe_psql('postgres',
	"CREATE TABLE orders (tenant_id bigint NOT NULL, n int);
	 SELECT gb_tenant_isolation_enable('orders', tenant_column => 'tenant_id');
	 SELECT gb_tenant_plan(t, 2) FROM generate_series(1001, 1300) t;
	 SELECT gb_plan_quota(2, 'orders', NULL, 1000);");
my $used = $node->safe_psql('postgres', 'SELECT count(*) FROM gb_scale.tenant_quota_usage()');
my $fill = 100 - $used;
$node->safe_psql('postgres',
	"SET gb_scale.test_now = '2026-02-10 12:00+00';
	 INSERT INTO orders SELECT t, 1 FROM generate_series(1001, 1000 + $fill) t;");
($ret, $out, $err) = $node->psql('postgres',
	"SET gb_scale.test_now = '2026-02-10 12:00+00'; INSERT INTO orders VALUES (1200, 1);",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+53400: no row quota counter is free for tenant 1200 on table public.orders/,
	'with every counter taken a new tenant is refused');
is( $node->psql('postgres',
		"SET gb_scale.test_now = '2026-03-01 00:00+00'; INSERT INTO orders VALUES (1200, 1);"),
	0,
	'a month later the past counters make room');

$node->stop;
done_testing();
