-- Report of the routing part of bench/run.sh (bench/routing.sh): reads its
-- samples (TSV) on stdin.  psql variables: reps, pgb_secs, pgb_reps,
-- one_reps.  Every ratio is of figures from this run.
\set ON_ERROR_STOP on

CREATE TEMP TABLE rs (
	section text, test text, variant text, n bigint, rep int,
	value float8		-- ms, TPS or a count: see the section
);
\copy rs FROM pstdin

-- Formatting as in report.sql.
CREATE FUNCTION pg_temp.num(x float8, d int DEFAULT 0) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(round(x::numeric, d)::text, '-') $$;
CREATE FUNCTION pg_temp.ratio(x float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(round(x::numeric, 1)::text || 'x', '-') $$;
CREATE FUNCTION pg_temp.verdict(x float8, target float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN x IS NULL OR x = 'NaN' THEN 'n/a' WHEN round(x::numeric, 1) >= target THEN 'PASS' ELSE 'BELOW' END
$$;
CREATE FUNCTION pg_temp.one(s text, t text, v text) RETURNS float8
LANGUAGE sql STABLE AS $$ SELECT max(value) FROM rs WHERE section = s AND test = t AND variant = v $$;

\echo
\echo '6. Shard routing: gb_shard_for_tenant() against the PL/pgSQL lookup of General Bots'' migration'
\echo '   (tenant_shard_map first, then the active shard whose range holds the tenant), same cluster, same run;'
\echo '   7 shards of 1,000,000 tenants, 100,000 tenants in tenant_shard_map'
SELECT format('   machine load average (1 min) before 6a, 6b, 6c and after: %s',
		string_agg(value::text, ', ' ORDER BY test = 'after', array_position(ARRAY['query', 'pgbench', 'one'], variant)))
FROM rs WHERE section = 'load';
SELECT format('   check over %s tenants (%s mapped): gb_shard_for_tenant differs from the PL/pgSQL lookup on %s, from the placement rule on %s',
		pg_temp.num(pg_temp.one('check', 'tenants', 'distinct')), pg_temp.num(pg_temp.one('check', 'tenants', 'mapped')),
		pg_temp.num(pg_temp.one('check', 'differ', 'plpgsql')), pg_temp.num(pg_temp.one('check', 'differ', 'rule')));

-- 6a. Per call in one query, from the backend's CPU time (wall time beside
-- it): each function's net cost is its CPU time per row minus that of the
-- empty loop run with the same number of rows; best of the repetitions.
CREATE TEMP VIEW q AS
SELECT c.test AS set, c.variant, c.n, min(w.value) AS wall_best,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY w.value) AS wall_med,
	min(c.value) AS cpu_best, percentile_cont(0.5) WITHIN GROUP (ORDER BY c.value) AS cpu_med,
	1e6 * min(c.value) / c.n AS ns_row
FROM rs c JOIN rs w ON w.section = 'query' AND (w.test, w.variant, w.n, w.rep) = (c.test, c.variant, c.n, c.rep)
WHERE c.section = 'cpu' GROUP BY c.test, c.variant, c.n;
CREATE TEMP VIEW qn AS
SELECT f.*, CASE WHEN f.variant LIKE 'empty%' THEN NULL ELSE f.ns_row - e.ns_row END AS ns_net
FROM q f JOIN q e ON e.set = f.set AND e.n = f.n AND e.variant LIKE 'empty%';

\echo
\echo '6a. One query: SELECT count(f(t)) FROM generate_series(1, N) g, t cycling through a set of tenants,'
SELECT format('    %s, half of them mapped, over all 7 shards; %s repetitions,',
		string_agg(format('%s (%s)', value, variant), ', ' ORDER BY value), :reps)
FROM rs WHERE section = 'set';
\echo '    each in a session that ran the query over the whole set (gb_shard_for_tenant) or 1,000 rows (PL/pgSQL)'
\echo '    just before; timed in wall time and in the backend''s time on a CPU (schedstat; the figures to the'
\echo '    right of "|" are from its best); empty = the same query computing t alone, with the same N (net ='
\echo '    minus its CPU time per row); plpgsql = the migration''s function (VOLATILE), plpgsql stable = the'
\echo '    same declared STABLE; faster = gb_shard_for_tenant''s speed over it, raw (per row) and net (per call)'
\set qfmt '%-5s %-20s %8s %9s %9s %9s %9s | %8s %9s %9s %9s'
SELECT format(:'qfmt', '', '', '', 'wall ms', '', 'CPU ms', '', 'CPU', 'net ns', 'faster', 'faster');
SELECT format(:'qfmt', 'set', 'f', 'N', 'best', 'median', 'best', 'median', 'ns/row', 'per call', 'raw', 'net');
SELECT format(:'qfmt', f.set, f.variant, f.n, pg_temp.num(f.wall_best, 1), pg_temp.num(f.wall_med, 1),
		pg_temp.num(f.cpu_best, 1), pg_temp.num(f.cpu_med, 1), pg_temp.num(f.ns_row, 1), pg_temp.num(f.ns_net, 1),
		CASE WHEN f.variant LIKE 'plpgsql%' THEN pg_temp.ratio(f.ns_row / g.ns_row) ELSE '-' END,
		CASE WHEN f.variant NOT LIKE 'plpgsql%' THEN '-' WHEN g.ns_net <= 0 THEN 'n/a'
			ELSE pg_temp.ratio(f.ns_net / g.ns_net) END)
FROM qn f JOIN qn g ON g.set = f.set AND g.variant = 'gb_shard_for_tenant'
	JOIN rs z ON z.section = 'set' AND z.variant = f.set
ORDER BY z.value, array_position(ARRAY['empty', 'gb_shard_for_tenant', 'empty (slow N)', 'plpgsql', 'plpgsql stable'], f.variant);
\echo '    (n/a: gb_shard_for_tenant''s net cost is within the noise of the empty loop)'
SELECT format('    target >= 20x faster than the migration''s PL/pgSQL lookup, %s set: raw %s %s, net %s', f.set,
		pg_temp.ratio(f.ns_row / g.ns_row), pg_temp.verdict(f.ns_row / g.ns_row, 20),
		CASE WHEN g.ns_net <= 0 THEN 'n/a (above any ratio the noise allows measuring)'
			ELSE pg_temp.ratio(f.ns_net / g.ns_net) || ' ' || pg_temp.verdict(f.ns_net / g.ns_net, 20) END)
FROM qn f JOIN qn g ON g.set = f.set AND g.variant = 'gb_shard_for_tenant'
	JOIN rs z ON z.section = 'set' AND z.variant = f.set
WHERE f.variant = 'plpgsql'
ORDER BY z.value;

-- 6b. pgbench.  Latency per request = clients / TPS (every client always has
-- one request in flight), in us; "paired" ratios are the median over
-- repetitions of the ratio of runs made back to back.
CREATE TEMP VIEW p AS
SELECT test AS set, n AS clients, variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS tps,
	1e6 * n / percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS lat
FROM rs WHERE section = 'pgbench' GROUP BY test, n, variant;
CREATE TEMP VIEW pn AS
SELECT f.*, CASE WHEN f.variant = 'empty' THEN NULL ELSE f.lat - e.lat END AS us_net
FROM p f JOIN p e ON e.set = f.set AND e.clients = f.clients AND e.variant = 'empty';
CREATE TEMP VIEW p_paired AS
SELECT a.test AS set, a.n AS clients, percentile_cont(0.5) WITHIN GROUP (ORDER BY b.value / a.value) AS ratio
FROM rs a JOIN rs b ON b.section = 'pgbench' AND b.test = a.test AND b.variant = 'gb_shard_for_tenant'
	AND b.n = a.n AND b.rep = a.rep
WHERE a.section = 'pgbench' AND a.variant = 'plpgsql'
GROUP BY a.test, a.n;

\echo
\echo '6b. Per request: pgbench -M prepared -j 2, one SELECT f(:t) per transaction, t drawn at random from the'
SELECT format('    hot or the wide set of 6a, %s s per run, %s repetitions; empty = SELECT :t::bigint; medians;', :pgb_secs, :pgb_reps);
\echo '    latency = clients / TPS; net = minus the empty request''s; faster = plpgsql latency / gb_shard_for_tenant'
\echo '    latency (paired: median of the ratio within each repetition)'
\set pfmt '%-5s %-8s %-20s %10s %12s %12s %9s %9s %9s'
SELECT format(:'pfmt', 'set', 'clients', 'f', 'TPS', 'latency us', 'net us', 'faster', 'faster', 'faster');
SELECT format(:'pfmt', '', '', '', '', '', 'per request', 'raw', 'paired', 'net');
SELECT format(:'pfmt', f.set, f.clients, f.variant, pg_temp.num(f.tps, 0), pg_temp.num(f.lat, 1), pg_temp.num(f.us_net, 1),
		CASE WHEN f.variant = 'plpgsql' THEN pg_temp.ratio(f.lat / g.lat) ELSE '-' END,
		CASE WHEN f.variant = 'plpgsql' THEN pg_temp.ratio(pp.ratio) ELSE '-' END,
		CASE WHEN f.variant <> 'plpgsql' THEN '-'
			WHEN g.us_net <= 0 THEN 'n/a' ELSE pg_temp.ratio(f.us_net / g.us_net) END)
FROM pn f JOIN pn g ON g.set = f.set AND g.clients = f.clients AND g.variant = 'gb_shard_for_tenant'
	JOIN p_paired pp ON pp.set = f.set AND pp.clients = f.clients
	JOIN rs z ON z.section = 'set' AND z.variant = f.set
ORDER BY z.value, f.clients, array_position(ARRAY['empty', 'gb_shard_for_tenant', 'plpgsql'], f.variant);
SELECT format('    target >= 20x faster per request, %s set, %s clients: paired %s %s; net %s %s', f.set, f.clients,
		pg_temp.ratio(pp.ratio), pg_temp.verdict(pp.ratio, 20),
		CASE WHEN g.us_net <= 0 THEN 'n/a (gb_shard_for_tenant within the noise of the empty request)'
			ELSE pg_temp.ratio(f.us_net / g.us_net) END,
		CASE WHEN g.us_net <= 0 THEN '' ELSE pg_temp.verdict(f.us_net / g.us_net, 20) END)
FROM pn f JOIN pn g ON g.set = f.set AND g.clients = f.clients AND g.variant = 'gb_shard_for_tenant'
	JOIN p_paired pp ON pp.set = f.set AND pp.clients = f.clients
	JOIN rs z ON z.section = 'set' AND z.variant = f.set
WHERE f.variant = 'plpgsql'
ORDER BY z.value, f.clients;
SELECT format('    noise: the empty request''s latency ranged over %s us between repetitions (%s set, %s clients)',
		pg_temp.num(1e6 * n / min(value) - 1e6 * n / max(value), 1), test, n)
FROM rs WHERE section = 'pgbench' AND variant = 'empty'
GROUP BY test, n ORDER BY test, n;

-- 6c. Single lookups.
\echo
SELECT format('6c. Single lookups, timed server-side, %s repetitions: the first of a new session (range-only tenant),', :one_reps);
\echo '    and, in a session that had just made the same lookup twice (before: the second), the first after another'
\echo '    session moved the mapped tenant between shards (stale = answers giving the old shard)'
\set ofmt '%-20s %10s %10s %10s %10s %10s %8s'
SELECT format(:'ofmt', '', 'first in', 'session', 'before', 'after a', 'change', '');
SELECT format(:'ofmt', 'f', 'median ms', 'max ms', 'median ms', 'median ms', 'max ms', 'stale');
SELECT format(:'ofmt', v,
		pg_temp.num((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FROM rs WHERE section = 'first' AND variant = v), 3),
		pg_temp.num((SELECT max(value) FROM rs WHERE section = 'first' AND variant = v), 3),
		pg_temp.num((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FROM rs WHERE section = 'change' AND test = 'warm' AND variant = v), 3),
		pg_temp.num((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FROM rs WHERE section = 'change' AND test = 'ms' AND variant = v), 3),
		pg_temp.num((SELECT max(value) FROM rs WHERE section = 'change' AND test = 'ms' AND variant = v), 3),
		CASE WHEN v = 'empty' THEN '-' ELSE
			(SELECT sum(value)::int || ' of ' || count(*) FROM rs WHERE section = 'change' AND test = 'stale' AND variant = v) END)
FROM unnest(ARRAY['empty', 'gb_shard_for_tenant', 'plpgsql']) v;
