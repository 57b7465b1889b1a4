# A year of partition maintenance in seconds, with gb_scale.test_now (issue 7).
#
# gb.messages: profile 'messages' (daily, 14 days premade, 90 days retention)
# with a default partition; gb.sessions: profile 'sessions' (monthly, 3 months
# premade, 2 months retention), no default partition.  For every day of 2025
# one session sets gb_scale.test_now to that day's noon, inserts rows for 40
# tenants (and, into messages, rows 20-40 days ahead, beyond the premade
# range, which land in the default partition), runs CALL
# gb_run_maintenance(), then counts every row in and out against a ledger:
#  - nothing lost: every row at or after the oldest retained bound is there;
#  - nothing duplicated, nothing invented;
#  - retention exact: the oldest partition starts exactly at the start of the
#    period holding (test_now - retention), and no row older than it is left;
#  - premade horizon complete: partitions cover every instant from the oldest
#    bound to test_now + premake, without a gap;
#  - the default partition is empty after every pass.
# gb_scale.test_now is superuser-only and affects that session only: not
# another session (whose maintenance follows the real clock), not now(), not
# gb_next_id().
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('year');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 3
timezone = 'UTC'
log_statement = none
log_min_messages = warning
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
CREATE EXTENSION gb_scale;
CREATE SCHEMA gb AUTHORIZATION app;
CREATE SEQUENCE public.ids;
CREATE TABLE public.ledger_m (id bigint PRIMARY KEY, day date NOT NULL,
    tenant_id bigint NOT NULL, created_at timestamptz NOT NULL, body text NOT NULL);
CREATE INDEX ON public.ledger_m (day);
CREATE TABLE public.ledger_s (id bigint PRIMARY KEY, day date NOT NULL,
    tenant_id bigint NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON public.ledger_s (day);

-- '' when everything holds at the session's test_now, else what does not.
CREATE FUNCTION public.sim_check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    now_ timestamptz := current_setting('gb_scale.test_now')::timestamptz;
    r text := '';
    b timestamptz;
    b_exp timestamptz;
    n bigint;
BEGIN
    -- messages: daily, 14 days ahead, 90 days kept.
    b_exp := greatest('2025-01-01 00:00+00', date_trunc('day', now_ - interval '90 days'));
    SELECT min(from_time) INTO b FROM gb_partition_list('gb.messages') WHERE NOT is_default;
    IF b IS DISTINCT FROM b_exp THEN
        r := r || format(' messages: oldest bound %s, expected %s;', b, b_exp);
    END IF;
    WITH pl AS MATERIALIZED (
        SELECT from_time, to_time FROM gb_partition_list('gb.messages') WHERE NOT is_default)
    SELECT count(*) INTO n
    FROM (SELECT d FROM generate_series(b_exp, now_ + interval '14 days', interval '1 day') d
          UNION ALL SELECT now_ + interval '14 days') g(d)
    WHERE NOT EXISTS (SELECT 1 FROM pl WHERE pl.from_time <= g.d AND pl.to_time > g.d);
    IF n > 0 THEN r := r || format(' messages: %s days up to test_now + 14 days not covered;', n); END IF;
    SELECT count(*) INTO n FROM gb.messages_default;
    IF n > 0 THEN r := r || format(' messages: %s rows left in the default partition;', n); END IF;
    SELECT count(*) INTO n FROM public.ledger_m l LEFT JOIN gb.messages m ON m.id = l.id
    WHERE l.created_at >= b_exp AND m.id IS NULL;
    IF n > 0 THEN r := r || format(' messages: %s rows lost;', n); END IF;
    SELECT count(*) INTO n FROM gb.messages WHERE created_at < b_exp;
    IF n > 0 THEN r := r || format(' messages: %s rows older than the retention bound left;', n); END IF;
    SELECT count(*) - count(DISTINCT id) INTO n FROM gb.messages;
    IF n > 0 THEN r := r || format(' messages: %s duplicate rows;', n); END IF;
    SELECT (SELECT count(*) FROM gb.messages) - (SELECT count(*) FROM public.ledger_m WHERE created_at >= b_exp) INTO n;
    IF n <> 0 THEN r := r || format(' messages: table has %s rows more than the ledger;', n); END IF;

    -- sessions: monthly, 3 months ahead, 2 months kept, no default partition.
    b_exp := greatest('2025-01-01 00:00+00', date_trunc('month', now_ - interval '2 months'));
    SELECT min(from_time) INTO b FROM gb_partition_list('gb.sessions');
    IF b IS DISTINCT FROM b_exp THEN
        r := r || format(' sessions: oldest bound %s, expected %s;', b, b_exp);
    END IF;
    WITH pl AS MATERIALIZED (SELECT from_time, to_time FROM gb_partition_list('gb.sessions'))
    SELECT count(*) INTO n
    FROM (SELECT d FROM generate_series(b_exp, now_ + interval '3 months', interval '1 day') d
          UNION ALL SELECT now_ + interval '3 months') g(d)
    WHERE NOT EXISTS (SELECT 1 FROM pl WHERE pl.from_time <= g.d AND pl.to_time > g.d);
    IF n > 0 THEN r := r || format(' sessions: %s days up to test_now + 3 months not covered;', n); END IF;
    SELECT count(*) INTO n FROM public.ledger_s l LEFT JOIN gb.sessions s ON s.id = l.id
    WHERE l.created_at >= b_exp AND s.id IS NULL;
    IF n > 0 THEN r := r || format(' sessions: %s rows lost;', n); END IF;
    SELECT count(*) INTO n FROM gb.sessions WHERE created_at < b_exp;
    IF n > 0 THEN r := r || format(' sessions: %s rows older than the retention bound left;', n); END IF;
    SELECT count(*) - count(DISTINCT id) INTO n FROM gb.sessions;
    IF n > 0 THEN r := r || format(' sessions: %s duplicate rows;', n); END IF;
    SELECT (SELECT count(*) FROM gb.sessions) - (SELECT count(*) FROM public.ledger_s WHERE created_at >= b_exp) INTO n;
    IF n <> 0 THEN r := r || format(' sessions: table has %s rows more than the ledger;', n); END IF;

    SELECT count(*) INTO n FROM gb_scale.partition_config WHERE last_error IS NOT NULL;
    IF n > 0 THEN r := r || ' a table recorded an error: ' ||
        (SELECT string_agg(parent::text || ': ' || last_error, '; ') FROM gb_scale.partition_config);
    END IF;
    RETURN r;
END $$;
});

my $sim = $node->background_psql('postgres', on_error_stop => 0);
$sim->set_query_timer_restart;
my ($out, $err) = $sim->query(q{
SET gb_scale.test_now = '2025-01-01 12:00:00+00';
SET ROLE app;
CREATE TABLE gb.messages (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    body text,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE gb.sessions (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
RESET ROLE;
});
is($err, 0, 'tables created by their owner');
($out, $err) = $sim->query(q{
SELECT gb_partition_create('gb.messages', 'created_at', NULL, profile => 'messages',
    default_partition => true, start_at => '2025-01-01 00:00+00') > 0,
       gb_partition_create('gb.sessions', 'created_at', NULL, profile => 'sessions',
    start_at => '2025-01-01 00:00+00') > 0});
is($out, 't|t', 'gb.messages and gb.sessions registered with their profiles (superuser, test_now set)');
is($sim->{stderr}, '', '... without error');
is( $sim->query(q{
SELECT granularity, premake, retention, default_partition, profile
FROM gb_scale.partition_config WHERE parent = 'gb.messages'::regclass}),
	'1 day|14 days|90 days|t|messages', 'messages profile: daily, 14 days ahead, 90 days kept');
is( $sim->query(q{
SELECT granularity, premake, retention, default_partition, profile
FROM gb_scale.partition_config WHERE parent = 'gb.sessions'::regclass}),
	'1 mon|3 mons|2 mons|f|sessions', 'sessions profile: monthly, 3 months ahead, 2 months kept');
is( $sim->query(q{
SELECT max(to_time) < '2025-03-01', min(from_time) FROM gb_partition_list('gb.messages') WHERE NOT is_default}),
	't|2025-01-01 00:00:00+00',
	'registration premade from start_at to test_now + premake, not to the real clock');
is($sim->query('SELECT public.sim_check()'), '', 'day 0: every invariant holds');

# test_now is superuser-only and session-only.
$node->safe_psql('postgres', 'GRANT USAGE ON SCHEMA public TO app');
my $e = sql_error($node, 'postgres', q{SET gb_scale.test_now = '2025-01-01'}, user => 'app');
is($e->{state}, '42501', 'an ordinary role cannot SET gb_scale.test_now (42501)');
is($node->safe_psql('postgres', 'SHOW gb_scale.test_now'),
	'', 'another session: gb_scale.test_now is empty (the real clock)');
# Session-only: a stored setting must not hand the fake clock to sessions
# that never set it (whether the ALTER is refused or not).
$node->psql('postgres', q{ALTER DATABASE postgres SET gb_scale.test_now = '2025-01-01 00:00+00'});
$node->psql('postgres', q{ALTER ROLE app SET gb_scale.test_now = '2025-01-01 00:00+00'});
is($node->safe_psql('postgres', q{SELECT current_setting('gb_scale.test_now')}),
	'', 'ALTER DATABASE ... SET gb_scale.test_now does not reach a new session');
is(psql_as($node, 'postgres', 'app', q{SELECT current_setting('gb_scale.test_now')}),
	'', 'ALTER ROLE ... SET gb_scale.test_now does not reach a new session of that role');
# Whatever happened above, no stored setting may reach the sessions below.
$node->psql('postgres', 'ALTER DATABASE postgres RESET gb_scale.test_now');
$node->psql('postgres', 'ALTER ROLE app RESET gb_scale.test_now');
is( $sim->query(q{
SELECT abs(extract(epoch FROM now() - clock_timestamp())) < 60,
       abs(extract(epoch FROM gb_id_timestamp(gb_next_id()) - clock_timestamp())) < 60}),
	't|t', 'with test_now set, now() and gb_next_id() still follow the real clock');

# A session row beyond the premade range, without a default partition: 23514.
($out, $err) = $sim->query(q{
\set VERBOSITY verbose
INSERT INTO gb.sessions VALUES (-1, 1, '2025-09-01 00:00+00');
\set VERBOSITY default});
like($sim->{stderr}, qr/23514/, 'sessions: an insert beyond the premade range fails with 23514');
$sim->{stderr} = '';

###########################################################################
# The year.
###########################################################################
my $days = $node->safe_psql('postgres',
	q{SELECT string_agg(d::date::text, ' ' ORDER BY d) FROM generate_series('2025-01-01'::date, '2025-12-31', '1 day') d}
);
my @failures;
my %retried;
my $ran = 0;
for my $d (split / /, $days)
{
	$sim->{stderr} = '';
	my ($res, $failed) = $sim->query(qq{
SET gb_scale.test_now = '$d 12:00:00+00';
INSERT INTO public.ledger_m
SELECT nextval('public.ids'), '$d'::date, t, '$d 00:00+00'::timestamptz + (t * 3 + k) * interval '7 minutes', '$d/' || t || '/' || k
FROM generate_series(1, 40) t, generate_series(0, 2) k
UNION ALL
SELECT nextval('public.ids'), '$d'::date, t, '$d 00:00+00'::timestamptz + (20 + t % 21) * interval '1 day' + t * interval '1 minute', '$d/' || t || '/ahead'
FROM generate_series(1, 40, 2) t;
INSERT INTO gb.messages SELECT id, tenant_id, created_at, body FROM public.ledger_m WHERE day = '$d';
INSERT INTO public.ledger_s
SELECT nextval('public.ids'), '$d'::date, t, '$d 00:00+00'::timestamptz + t * interval '17 minutes'
FROM generate_series(1, 40) t;
INSERT INTO gb.sessions SELECT id, tenant_id, created_at FROM public.ledger_s WHERE day = '$d';
CALL gb_run_maintenance();
SELECT public.sim_check();
});
	$ran++;
	# A DDL that meets a lock (autovacuum working on a partition) gives up
	# after gb_scale.maintenance_lock_timeout and is retried by the next
	# pass: run that next pass, as the worker or the cron job would.
	for (my $try = 0; $try < 3 && !$failed && $res =~ /lock timeout/; $try++)
	{
		$retried{$d}++;
		($res, $failed) = $sim->query(q{
SELECT pg_sleep(0.5);
CALL gb_run_maintenance();
SELECT public.sim_check();
});
		$res =~ s/^\n//;
	}
	if ($failed || $res ne '')
	{
		push @failures, "$d:$res $sim->{stderr}";
		$sim->{stderr} = '';
		last if @failures >= 10;
	}
}
is($ran, 365, 'simulated 365 days');
note('days whose pass met a lock and was run again: '
	  . (join(', ', map { "$_ x$retried{$_}" } sort keys %retried) || 'none'));
is(join("\n", @failures), '', 'every day: nothing lost, nothing duplicated, retention exact, horizon complete, default empty');

is( $sim->query(q{
SELECT count(*) FROM public.ledger_m l JOIN gb.messages m USING (id)
WHERE (m.tenant_id, m.created_at, m.body) IS DISTINCT FROM (l.tenant_id, l.created_at, l.body)}),
	'0', 'every kept message has exactly the values inserted');
is( $sim->query(q{
SELECT count(*), min(created_at), max(created_at) FROM gb.messages}),
	$sim->query(q{
SELECT count(*), min(created_at), max(created_at) FROM public.ledger_m WHERE created_at >= '2025-10-02 00:00+00'}),
	'end of the year: messages hold exactly the ledger rows from 2025-10-02 on (90 days before 2025-12-31)');
is( $sim->query(q{
SELECT count(*) FROM gb.sessions}),
	$sim->query(q{SELECT count(*) FROM public.ledger_s WHERE created_at >= '2025-10-01 00:00+00'}),
	'end of the year: sessions hold exactly the ledger rows from 2025-10-01 on');
is( $sim->query(q{
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'gb' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname NOT IN ('messages', 'sessions')}),
	'0', 'retired partitions were dropped, not left behind as tables');
cmp_ok($sim->query('SELECT count(*) FROM public.ledger_m'), '==', 365 * 140,
	'the ledger saw 140 messages a day');

###########################################################################
# Another session runs maintenance on the real clock.
###########################################################################
$node->safe_psql('postgres', q{CALL gb_run_maintenance('gb.sessions')});
is( $node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE from_time <= now() AND to_time > now()),
       count(*) FILTER (WHERE from_time <= now() + interval '3 months' AND to_time > now() + interval '3 months'),
       count(*) FILTER (WHERE to_time <= now() - interval '2 months')
FROM gb_partition_list('gb.sessions')}),
	'1|1|0',
	'a session without test_now maintains by the real clock: partitions for now and now + 3 months, none older than 2 months'
);
is($sim->query('SHOW gb_scale.test_now') =~ /^2025-12-31/ ? 1 : 0,
	1, 'the simulating session still has its test_now');

$sim->quit;
$node->stop;
done_testing();
