# gb_stat_tenants shares the executor hooks with pg_stat_statements and
# auto_explain: with gb_scale loaded before them and after them, all three
# see the same workload (pg_stat_statements' calls, rows, buffers and nested
# statements, auto_explain's plans with actual rows, gb_stat_tenants' counts
# for the tenant).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $workload = q{
BEGIN;
SELECT gb_set_tenant(42);
INSERT INTO st_t SELECT g FROM generate_series(1, 5) g;
SELECT count(*) FROM st_t WHERE v > 2;
SELECT st_nested();
COMMIT;
};

for my $order ('gb_scale, pg_stat_statements, auto_explain',
	'pg_stat_statements, auto_explain, gb_scale')
{
	(my $name = $order) =~ s/\W+/_/g;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = '$order'
gb_scale.shard_id = 1
pg_stat_statements.track = all
auto_explain.log_min_duration = 0
auto_explain.log_analyze = on
auto_explain.log_nested_statements = on
});
	$node->start;
	$node->safe_psql(
		'postgres', q{
CREATE EXTENSION gb_scale;
CREATE EXTENSION pg_stat_statements;
CREATE TABLE st_t (v int);
CREATE FUNCTION st_nested() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    SELECT count(*) INTO n FROM st_t WHERE v < 4;
    RETURN n;
END $$;
SELECT pg_stat_statements_reset();
SELECT gb_stat_tenants_reset();
});
	my $log_offset = -s $node->logfile;
	$node->safe_psql('postgres', $workload);

	is( $node->safe_psql(
			'postgres', q{
SELECT reads, writes, rows_returned, rows_inserted, xacts, exec_time_ms > 0
  FROM gb_stat_tenants WHERE database = current_database() AND tenant_id = 42}),
		'3|1|3|5|1|t',
		"$order: gb_stat_tenants counts tenant 42's statements once");

	is( $node->safe_psql(
			'postgres', q{
SELECT calls, rows, shared_blks_hit + shared_blks_read + shared_blks_dirtied > 0, total_exec_time > 0
  FROM pg_stat_statements WHERE query LIKE 'INSERT INTO st_t%'}),
		'1|5|t|t',
		"$order: pg_stat_statements sees the INSERT with its rows, buffers and time");
	is( $node->safe_psql(
			'postgres', q{
SELECT toplevel, calls, rows FROM pg_stat_statements
 WHERE query ~ '^SELECT count\(\*\)\s+FROM st_t' ORDER BY toplevel}),
		"f|1|1\nt|1|1",
		"$order: pg_stat_statements sees the top-level and the nested SELECT");

	my $log = slurp_file($node->logfile, $log_offset);
	like($log, qr/Query Text: INSERT INTO st_t SELECT g FROM generate_series\(1, 5\) g.*?Insert on st_t .*?\(actual [^)]*rows=0 loops=1\)/s,
		"$order: auto_explain logs the INSERT's plan with actual rows");
	like($log, qr/Query Text: SELECT count\(\*\)\s+FROM st_t WHERE v < 4/,
		"$order: auto_explain logs the nested statement");
	like($log, qr/Query Text: SELECT count\(\*\) FROM st_t WHERE v > 2.*?Aggregate .*?\(actual [^)]*rows=1 loops=1\)/s,
		"$order: auto_explain logs the SELECT's plan");
	$node->stop;
}

done_testing();
