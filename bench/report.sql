-- Report of bench/run.sh: reads the samples (TSV) on stdin and prints the
-- results.  psql variables: n, query_reps, pgbench_secs, pgbench_reps.
\set ON_ERROR_STOP on

CREATE TEMP TABLE s (
	ord serial,			-- arrival order: rows are listed in the order first run
	section text, test text, variant text, clients int, rep int,
	value float8,		-- query ms, or pgbench TPS
	ids bigint, flushes bigint, waits bigint, wal_write bigint, wal_sync bigint
);
\copy s (section, test, variant, clients, rep, value, ids, flushes, waits, wal_write, wal_sync) FROM pstdin

-- One row per configuration.  "best" is the lowest time or the highest TPS
-- (the run least disturbed by the noisy VM), "spread" max/min over the
-- repetitions; per-run counters are medians, IDs per flush is over all runs.
CREATE TEMP VIEW agg AS
SELECT section, test, variant, clients, min(ord) AS ord,
	CASE section WHEN 'query' THEN min(value) ELSE max(value) END AS best,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med,
	max(value) / nullif(min(value), 0) AS spread,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY ids) AS ids_run,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY flushes) AS flushes_run,
	sum(ids)::float8 / nullif(sum(flushes), 0) AS ids_per_flush,
	sum(waits) AS waits,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY wal_write) AS wal_write_run,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY wal_sync) AS wal_sync_run
FROM s GROUP BY section, test, variant, clients;

-- Formatting: a number rounded to d digits, a ratio, a target verdict; '-' for none.
-- The verdict judges the ratio as printed (2 decimals), so that "1.00x" never
-- reads BELOW a 1.0 target.
CREATE FUNCTION pg_temp.num(x float8, d int DEFAULT 0) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(round(x::numeric, d)::text, '-') $$;
CREATE FUNCTION pg_temp.ratio(x float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(round(x::numeric, 2)::text || 'x', '-') $$;
CREATE FUNCTION pg_temp.verdict(x float8, target float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN x IS NULL THEN 'n/a' WHEN round(x::numeric, 2) >= target THEN 'PASS' ELSE 'BELOW' END
$$;
-- The durable-mark and WAL columns that end the rows of both tables.
CREATE FUNCTION pg_temp.mark_cols(a agg) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT format(' | %7s %10s %5s %8s %7s', pg_temp.num(a.flushes_run, 1),
		pg_temp.num(a.ids_per_flush), a.waits, pg_temp.num(a.wal_write_run, 1),
		pg_temp.num(a.wal_sync_run, 1))
$$;
\set mark_head1 ' | ---- mark ----      gen. -- WAL/run --'
\set mark_head2 ' | flushes  IDs/flush waits   writes   syncs'

\echo
\echo '1. Single session: SELECT count(X) FROM generate_series(1, ':n'), ':query_reps' repetitions'
\echo '   net = minus the count(1) baseline; speedup = throughput of gb_next_id() / throughput of X, from best times'
\set q1fmt '%-20s %9s %9s %6s %7s %8s %8s %8s'
SELECT format(:'q1fmt', '', 'best', 'median', '', 'ns', 'net ns', 'speedup', 'speedup') || :'mark_head1';
SELECT format(:'q1fmt', 'X', 'ms', 'ms', 'spread', 'per row', 'per call', 'raw', 'net') || :'mark_head2';

CREATE TEMP VIEW single AS
SELECT a, a.ord, a.variant, a.best,
	(a.best - base.best) * 1e6 / :n AS net_ns,
	CASE WHEN a.variant <> 'count(1)' THEN a.best / gb.best END AS speedup_raw,
	CASE WHEN a.variant <> 'count(1)' AND a.best > base.best AND gb.best > base.best
		THEN (a.best - base.best) / (gb.best - base.best) END AS speedup_net
FROM agg a,
	(SELECT best FROM agg WHERE section = 'query' AND variant = 'count(1)') base,
	(SELECT best FROM agg WHERE section = 'query' AND variant = 'gb_next_id()') gb
WHERE a.section = 'query';

SELECT format(:'q1fmt', variant, pg_temp.num(best, 1), pg_temp.num((a).med, 1),
		pg_temp.ratio((a).spread), pg_temp.num(best * 1e6 / :n, 1),
		CASE WHEN variant = 'count(1)' THEN '-' ELSE pg_temp.num(net_ns, 1) END,
		pg_temp.ratio(speedup_raw), pg_temp.ratio(speedup_net)) || pg_temp.mark_cols(a)
FROM single ORDER BY ord;

SELECT format('   target gb_next_id() >= 3x nextval cache 1 throughput: raw %s %s, net %s',
		pg_temp.ratio(speedup_raw), pg_temp.verdict(speedup_raw, 3),
		CASE WHEN speedup_net IS NULL
			THEN 'n/a (gb_next_id() not measurably above the count(1) baseline)'
			ELSE pg_temp.ratio(speedup_net) || ' ' || pg_temp.verdict(speedup_net, 3) END)
FROM single WHERE variant = 'nextval cache 1';

\echo
\echo '2. pgbench: INSERT of 1 or 100 rows per transaction (async: synchronous_commit = off), -M prepared -j 2,'
\echo '   ':pgbench_secs' s per run, ':pgbench_reps' repetitions'
\echo '   ratio = TPS with the gb_next_id() key / TPS with the bigserial key; "paired" is the median over'
\echo '   repetitions of the ratio of two back-to-back runs, robust to commit latency drifting between'
\echo '   repetitions; the target (>= 1.0) is judged on it'

-- Each repetition ran the two keys back to back: compare within the pair.
CREATE TEMP VIEW paired AS
SELECT g.test, g.clients,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY g.value / b.value) AS ratio
FROM s g JOIN s b ON b.section = g.section AND b.variant = 'bigserial'
	AND b.test = g.test AND b.clients = g.clients AND b.rep = g.rep
WHERE g.section = 'pgbench' AND g.variant = 'gb_next_id'
GROUP BY g.test, g.clients;

\set q2fmt '%-9s %7s %-10s %9s %9s %6s %7s %7s %-6s %10s'
SELECT format(:'q2fmt', '', '', '', 'TPS', 'TPS', '', 'ratio', 'ratio', '', 'gb IDs') || :'mark_head1';
SELECT format(:'q2fmt', 'rows/txn', 'clients', 'key', 'best', 'median', 'spread', 'best', 'paired', 'target', 'per run') || :'mark_head2';

SELECT format(:'q2fmt', a.test, a.clients, a.variant,
		pg_temp.num(a.best, 1), pg_temp.num(a.med, 1), pg_temp.ratio(a.spread),
		pg_temp.ratio(a.best / b.best), pg_temp.ratio(p.ratio),
		CASE WHEN p.ratio IS NULL THEN '' ELSE pg_temp.verdict(p.ratio, 1.0) END,
		CASE WHEN a.variant = 'bigserial' THEN '-' ELSE pg_temp.num(a.ids_run) END)
	|| pg_temp.mark_cols(a)
FROM agg a
	LEFT JOIN agg b ON a.variant = 'gb_next_id' AND b.section = a.section
		AND b.variant = 'bigserial' AND b.test = a.test AND b.clients = a.clients
	LEFT JOIN paired p ON a.variant = 'gb_next_id' AND p.test = a.test AND p.clients = a.clients
WHERE a.section = 'pgbench'
ORDER BY split_part(a.test, ' ', 1)::int, a.test, a.clients, a.variant <> 'bigserial';

\echo
\echo '3. Durable-mark cost: the columns right of "|" in both tables.  mark flushes = setval + WAL flush of'
\echo '   gb_scale.id_mark per run (median); IDs/flush over all runs; gen. waits = calls that waited for the'
\echo '   clock (lead > gb_scale.max_lead_ms); WAL writes/syncs = pg_stat_wal deltas per run (median, all'
\echo '   processes), for context: a commit under synchronous_commit = on costs one sync.'
