-- Report of the partition part of bench/run.sh (bench/partitions.sh): reads
-- its samples (TSV) on stdin.  psql variables: partman (its version),
-- passes, ins_secs, ins_reps.  Every ratio is of figures from this run.
\set ON_ERROR_STOP on

CREATE TEMP TABLE ps (
	section text, test text, variant text, n int, rep int,
	value float8		-- ms, TPS, a count or seconds: see the section
);
\copy ps FROM pstdin

-- Formatting as in report.sql: a number, a ratio, a verdict on the ratio
-- as printed; '-' or 'n/a' for none.
CREATE FUNCTION pg_temp.num(x float8, d int DEFAULT 0) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(round(x::numeric, d)::text, '-') $$;
CREATE FUNCTION pg_temp.ratio(x float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(round(x::numeric, 2)::text || 'x', '-') $$;
CREATE FUNCTION pg_temp.verdict(x float8, target float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN x IS NULL OR x = 'NaN' THEN 'n/a' WHEN round(x::numeric, 2) >= target THEN 'PASS' ELSE 'BELOW' END
$$;
CREATE FUNCTION pg_temp.one(s text, t text, v text) RETURNS float8
LANGUAGE sql STABLE AS $$ SELECT max(value) FROM ps WHERE section = s AND test = t AND variant = v $$;

\echo
\echo '5. Partitions: gb_scale against pg_partman ':partman' on the same cluster, in the same run'
SELECT format('   machine load average (1 min) before 5a, 5b, 5c, 5d and after: %s',
		string_agg(value::text, ', ' ORDER BY test = 'after', array_position(ARRAY['maint', 'register', 'insert', 'stall'], variant)))
FROM ps WHERE section = 'load';

-- 5a. No-op maintenance.
CREATE TEMP VIEW maint AS
SELECT variant, min(n) AS tables, min(value) AS best,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med,
	max(value) / nullif(min(value), 0) AS spread
FROM ps WHERE section = 'maint' AND test = 'pass' GROUP BY variant;

SELECT tables AS maint_tables FROM maint LIMIT 1 \gset
\echo
SELECT format('5a. A maintenance pass with nothing to do over %s tables per manager (leaves: gb_scale %s, pg_partman %s,',
		:maint_tables, pg_temp.one('maint', 'leaves', 'gb_scale'), pg_temp.one('maint', 'leaves', 'pg_partman'));
\echo '    its default partitions included), each pass warm (its session made one just before), median of ':passes
\echo '    passes; pg_partman proc = CALL partman.run_maintenance_proc() (a commit per table), func = SELECT'
\echo '    partman.run_maintenance() (one transaction); gb_scale = CALL gb_run_maintenance()'
\set mfmt '%-18s %12s %14s %14s %7s %18s'
SELECT format(:'mfmt', '', 'median ms', 'median ms', 'best ms', '', 'slower than');
SELECT format(:'mfmt', 'manager', 'per pass', 'per table', 'per table', 'spread', 'gb_scale (median)');
SELECT format(:'mfmt', m.variant, pg_temp.num(m.med, 1), pg_temp.num(m.med / m.tables, 4),
		pg_temp.num(m.best / m.tables, 4), pg_temp.ratio(m.spread),
		CASE WHEN m.variant = 'gb_scale' THEN '-' ELSE pg_temp.ratio(m.med / g.med) END)
FROM maint m, maint g WHERE g.variant = 'gb_scale'
ORDER BY m.variant <> 'gb_scale', m.variant;
SELECT format('    target gb_scale <= 0.1 ms per table: %s ms %s', pg_temp.num(med / tables, 4),
		CASE WHEN round((med / tables)::numeric, 4) <= 0.1 THEN 'PASS' ELSE 'BELOW' END)
FROM maint WHERE variant = 'gb_scale';
SELECT format('    target >= 30x faster than pg_partman (its faster form, %s): %s %s', p.variant,
		pg_temp.ratio(p.med / g.med), pg_temp.verdict(p.med / g.med, 30))
FROM maint g, (SELECT * FROM maint WHERE variant LIKE 'pg_partman%' ORDER BY med LIMIT 1) p
WHERE g.variant = 'gb_scale';
SELECT format('    partitions made during the timed passes (0 = they were no-ops): gb_scale %s, pg_partman %s',
		pg_temp.one('maint', 'made', 'gb_scale'), pg_temp.one('maint', 'made', 'pg_partman'));

-- 5b. Registration.
CREATE TEMP VIEW reg AS
SELECT split_part(test, ' ', 2) AS shape, variant, count(*) AS tables, avg(value) AS mean,
	percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med, min(value) AS best, max(value) AS worst
FROM ps WHERE section = 'create' AND test LIKE 'register %' GROUP BY test, variant;

\echo
SELECT format('5b. Registering a table with 30 daily partitions premade, one transaction per table, %s tables per row',
		(SELECT max(tables) FROM reg));
\echo '    (after one warm-up registration each): gb_partition_create(..., premake => 30 days) against'
\echo '    partman.create_parent(..., p_premake => 30) given the current day as p_start_partition (the same'
\echo '    partitions) and with its default start (30 days back: twice the partitions), and the same partitions'
\echo '    made by bare CREATE TABLE ... PARTITION OF statements (plain DDL: the floor under any manager); on'
\echo '    the messages table (indexed: primary key and one index) and on a bare one (no index)'
\set rfmt '%-8s %-19s %9s %9s %9s %9s %12s %8s %7s'
SELECT format(:'rfmt', 'table', 'manager', 'mean ms', 'median', 'best', 'worst', 'leaves/table', 'ratio', 'target');
SELECT format(:'rfmt', r.shape, r.variant, pg_temp.num(r.mean, 1), pg_temp.num(r.med, 1), pg_temp.num(r.best, 1),
		pg_temp.num(r.worst, 1),
		pg_temp.num(pg_temp.one('create', 'leaves ' || r.shape, r.variant) / r.tables, 1),
		CASE WHEN r.variant = 'gb_scale' THEN '-' ELSE pg_temp.ratio(r.mean / g.mean) END,
		CASE WHEN r.variant LIKE 'pg_partman%' THEN pg_temp.verdict(r.mean / g.mean, 10) ELSE '' END)
FROM reg r JOIN reg g ON g.shape = r.shape AND g.variant = 'gb_scale'
ORDER BY r.shape DESC, r.variant <> 'gb_scale', r.variant = 'plain DDL', r.variant;
\echo '    ratio = its mean / gb_scale''s mean (target: pg_partman >= 10x; judge it on the rows with the same'
\echo '    partitions, "pg_partman"); pg_partman''s leaves include its default partition'
SELECT format('    cost over the plain DDL, ms per table: gb_scale %s (indexed), %s (bare); pg_partman %s, %s',
		pg_temp.num(max(mean) FILTER (WHERE shape = 'indexed' AND variant = 'gb_scale')
			- max(mean) FILTER (WHERE shape = 'indexed' AND variant = 'plain DDL'), 1),
		pg_temp.num(max(mean) FILTER (WHERE shape = 'bare' AND variant = 'gb_scale')
			- max(mean) FILTER (WHERE shape = 'bare' AND variant = 'plain DDL'), 1),
		pg_temp.num(max(mean) FILTER (WHERE shape = 'indexed' AND variant = 'pg_partman')
			- max(mean) FILTER (WHERE shape = 'indexed' AND variant = 'plain DDL'), 1),
		pg_temp.num(max(mean) FILTER (WHERE shape = 'bare' AND variant = 'pg_partman')
			- max(mean) FILTER (WHERE shape = 'bare' AND variant = 'plain DDL'), 1))
FROM reg;

-- 5c. Inserts.
\echo
SELECT format('5c. Single-row INSERT (pgbench -M prepared -j 2, synchronous_commit = off, %s s per run, %s repetitions)',
		:ins_secs, :ins_reps);
SELECT format('    into a gb_scale-managed messages table of %s daily partitions against the same table of %s;',
		pg_temp.one('insert', 'leaves', '1000'), pg_temp.one('insert', 'leaves', '10'));
\echo '    "paired" = median over repetitions of the ratio of two back-to-back runs; the target is judged on it'
CREATE TEMP VIEW ins_paired AS
SELECT a.n AS clients, percentile_cont(0.5) WITHIN GROUP (ORDER BY a.value / b.value) AS ratio
FROM ps a JOIN ps b ON b.section = 'insert' AND b.test = 'tps' AND b.variant = '10' AND b.n = a.n AND b.rep = a.rep
WHERE a.section = 'insert' AND a.test = 'tps' AND a.variant = '1000'
GROUP BY a.n;
\set ifmt '%-8s %15s %15s %12s %8s'
SELECT format(:'ifmt', 'clients', 'TPS 1000 parts', 'TPS 10 parts', 'ratio paired', 'target');
SELECT format(:'ifmt', p.clients,
		pg_temp.num((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FROM ps
			WHERE section = 'insert' AND test = 'tps' AND variant = '1000' AND n = p.clients), 1),
		pg_temp.num((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY value) FROM ps
			WHERE section = 'insert' AND test = 'tps' AND variant = '10' AND n = p.clients), 1),
		pg_temp.ratio(p.ratio), pg_temp.verdict(p.ratio, 0.9))
FROM ins_paired p ORDER BY p.clients;
\echo '    (TPS columns: medians; target >= 0.9x)'

-- 5d. Stalls.
\echo
SELECT format('5d. Longest stall while a %s s transaction reads the parent and maintenance retires partitions older',
		pg_temp.one('stall', 'reader_s', 'both'));
\echo '    than 5 days (gb_scale: its background worker, DETACH CONCURRENTLY; pg_partman: run_maintenance()),'
\echo '    2 pgbench clients at 200 TPS of single-row inserts and selects pruned to the current day'
\echo '    (synchronous_commit = off: lock waits, not disk waits);'
\echo '    latency counted from each transaction''s scheduled start; "retention done" = seconds after'
\echo '    maintenance started until no partition older than the retention was left'
\set sfmt '%-16s %8s %15s %9s %9s %9s %9s %8s %8s'
SELECT format(:'sfmt', '', '', '', '-- insert ms --', '', '-- select ms --', '', '', '');
SELECT format(:'sfmt', 'manager', 'retired', 'retention done', 'max', 'p99', 'max', 'p99', 'inserts', 'selects');
SELECT format(:'sfmt', CASE m WHEN 'none' THEN 'no maintenance' ELSE m END,
		CASE m WHEN 'none' THEN '-' ELSE pg_temp.num(pg_temp.one('stall', 'retired', m)) END,
		CASE WHEN m = 'none' THEN '-' WHEN pg_temp.one('stall', 'done_s', m) = 'NaN' THEN 'never'
			ELSE '+' || pg_temp.num(pg_temp.one('stall', 'done_s', m), 1) || ' s' END,
		pg_temp.num(pg_temp.one('stall', 'insert max', m), 1), pg_temp.num(pg_temp.one('stall', 'insert p99', m), 1),
		pg_temp.num(pg_temp.one('stall', 'select max', m), 1), pg_temp.num(pg_temp.one('stall', 'select p99', m), 1),
		pg_temp.num(pg_temp.one('stall', 'insert count', m)), pg_temp.num(pg_temp.one('stall', 'select count', m)))
FROM unnest(ARRAY['gb_scale', 'pg_partman', 'none']) m;
SELECT format('    longest stall, pg_partman / gb_scale: %s (the same load with no reader and no maintenance: %s ms)',
		pg_temp.ratio(greatest(pg_temp.one('stall', 'insert max', 'pg_partman'), pg_temp.one('stall', 'select max', 'pg_partman'))
			/ nullif(greatest(pg_temp.one('stall', 'insert max', 'gb_scale'), pg_temp.one('stall', 'select max', 'gb_scale')), 0)),
		pg_temp.num(greatest(pg_temp.one('stall', 'insert max', 'none'), pg_temp.one('stall', 'select max', 'none')), 1));
