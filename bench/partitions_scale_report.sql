-- Report of bench/partitions_scale.sh: reads its samples (TSV: test,
-- variant, n, value) on stdin.  psql variables: parts, reps.  Every ratio is
-- of figures from this run.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE TEMP TABLE s (test text, variant text, n int, value float8);
\copy s FROM pstdin

CREATE FUNCTION pg_temp.med(t text, v text, k int) RETURNS float8
LANGUAGE sql STABLE AS $$
	SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FROM s
	WHERE test = t AND variant = v AND n = k
$$;
CREATE FUNCTION pg_temp.num(x float8, d int DEFAULT 1) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(round(x::numeric, d)::text, '-') $$;
CREATE FUNCTION pg_temp.ratio(x float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(round(x::numeric, 1)::text || 'x', '-') $$;
CREATE FUNCTION pg_temp.verdict(x float8, target float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN x IS NULL THEN 'n/a' WHEN round(x::numeric, 1) >= target THEN 'PASS' ELSE 'BELOW' END
$$;

SELECT min(n) AS noop_n FROM s WHERE test = 'noop fresh' \gset
\echo
SELECT format('A. A maintenance pass with nothing to do, %s tables per manager of 61 daily partitions (leaves: gb_scale %s,',
		:noop_n, (SELECT max(value) FROM s WHERE test = 'leaves' AND variant = 'gb_scale'))
	|| format(E'\n   pg_partman %s); median of %s passes, ms; "new session": the first call of a new connection,',
		(SELECT max(value) FROM s WHERE test = 'leaves' AND variant = 'pg_partman'), :reps)
	|| E'\n   as the worker and pg_cron make it; "warm": the second call of a session.'
	|| E'\n   gb_scale: CALL gb_run_maintenance(); pg_partman: SELECT partman.run_maintenance()';
SELECT format('%-12s %14s %10s %28s', 'manager', 'new session', 'warm', 'pg_partman new / this new');
SELECT format('%-12s %14s %10s %28s', v, pg_temp.num(pg_temp.med('noop fresh', v, :noop_n)),
		pg_temp.num(pg_temp.med('noop warm', v, :noop_n)),
		CASE v WHEN 'gb_scale' THEN pg_temp.ratio(pg_temp.med('noop fresh', 'pg_partman', :noop_n)
			/ nullif(pg_temp.med('noop fresh', 'gb_scale', :noop_n), 0))
			|| ' ' || pg_temp.verdict(pg_temp.med('noop fresh', 'pg_partman', :noop_n)
			/ nullif(pg_temp.med('noop fresh', 'gb_scale', :noop_n), 0), 30) || ' (target 30x)' ELSE '-' END)
FROM unnest(ARRAY['gb_scale', 'pg_partman']) v;

\echo
SELECT format('B. As registered tables accumulate, %s daily partitions a table (pg_partman: and its default partition),', :'parts')
	|| E'\n   one database per manager; pg_partman''s has no gb_scale installed.';
\echo
\echo '   B1. A pass that makes one new daily partition for every table (premake raised by a day), in a new'
\echo '   session: gb_scale CALL gb_run_maintenance(), pg_partman CALL partman.run_maintenance_proc(); one pass'
\echo '   per size; ms per table'
SELECT format('%8s %12s %12s %12s %14s %20s', 'tables', 'gb_scale', 'pg_partman', 'made gb/pm', 'gb_scale pass', 'pg_partman / gb');
SELECT format('%8s %12s %12s %12s %14s %20s', n, pg_temp.num(g / n, 2), pg_temp.num(p / n, 2),
		format('%s/%s', (SELECT max(value) FROM s WHERE test = 'made' AND variant = 'gb_scale' AND s.n = x.n),
			(SELECT max(value) FROM s WHERE test = 'made' AND variant = 'pg_partman' AND s.n = x.n)),
		pg_temp.num(g, 0) || ' ms', pg_temp.ratio(p / nullif(g, 0)) || ' ' || pg_temp.verdict(p / nullif(g, 0), 2)
		|| CASE WHEN n >= 1000 THEN ' (target 2x)' ELSE '' END)
FROM (SELECT n, pg_temp.med('create', 'gb_scale', n) g, pg_temp.med('create', 'pg_partman', n) p
	FROM (SELECT DISTINCT n FROM s WHERE test = 'create') d) x
ORDER BY n;

\echo
\echo '   B2. Registering one more table (one transaction each, timed server-side), mean ms of the'
\echo '   registrations in each band of table numbers'
SELECT format('%14s %12s %12s', 'tables', 'gb_scale', 'pg_partman');
WITH bands(lo, hi) AS (
	SELECT greatest(1, k - 99), k FROM (SELECT DISTINCT n AS k FROM s WHERE test = 'create') c
	UNION SELECT 1, least(100, (SELECT min(n) FROM s WHERE test = 'create'))
)
SELECT format('%14s %12s %12s', lo || '-' || hi,
		pg_temp.num((SELECT avg(value) FROM s WHERE test = 'register' AND variant = 'gb_scale' AND n BETWEEN lo AND hi)),
		pg_temp.num((SELECT avg(value) FROM s WHERE test = 'register' AND variant = 'pg_partman' AND n BETWEEN lo AND hi)))
FROM bands ORDER BY hi, lo;

\echo
SELECT format('   B3. DROP TABLE of an unrelated empty table (the second DROP of a new session), median of %s, ms;', :reps)
	|| E'\n   "no gb_scale": pg_partman''s database, the same number of tables, no gb_scale hook';
SELECT format('%12s %12s %14s %20s', 'registered', 'gb_scale', 'no gb_scale', 'gb_scale - none');
SELECT format('%12s %12s %14s %20s', n, pg_temp.num(g, 2), pg_temp.num(p, 2), pg_temp.num(g - p, 2))
FROM (SELECT n, pg_temp.med('drop', 'gb_scale', n) g, pg_temp.med('drop', 'no gb_scale', n) p
	FROM (SELECT DISTINCT n FROM s WHERE test = 'drop') d) x
ORDER BY n;
