-- Objects for bench/partitions_scale.sh, created in each of its databases
-- (gb_scale's database and pg_partman's, which has no gb_scale at all).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

-- Server-side wall time of one statement in ms (as in setup.sql).
CREATE FUNCTION bench_time(q text) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE q;
	RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END
$$;

-- The ids of every table: no gb_next_id(), which pg_partman's database lacks.
CREATE SEQUENCE bench_ids;

-- A lean events table: a primary key, no other index and no toasted
-- column, so that registering 3,000 of them (each index built costs an
-- fsync) fits the run; both managers make the same partitions of it.
CREATE FUNCTION bench_scale_parent(t text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE %I (
		id bigint NOT NULL DEFAULT nextval(%L),
		tenant_id bigint NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (id, created_at)
	) PARTITION BY RANGE (created_at)', t, 'bench_ids');
END
$$;

-- Registration of t with daily partitions from start_days back to
-- premake_days ahead, as either manager makes them (pg_partman is given the
-- start, so that both make the same partitions; it adds a default one).
CREATE FUNCTION bench_scale_register_sql(manager text, t text, premake_days int, start_days int)
RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE manager
		WHEN 'gb_scale' THEN format(
			'SELECT gb_partition_create(%L, %L, %L, premake => %L, start_at => %L)',
			t, 'created_at', '1 day', make_interval(days => premake_days),
			date_trunc('day', now()) - make_interval(days => start_days))
		ELSE format(
			'SELECT partman.create_parent(%L, %L, %L, %L, p_premake => %s, p_start_partition => %L)',
			'public.' || t, 'created_at', 'native', 'daily', premake_days,
			date_trunc('day', now()) - make_interval(days => start_days))
	END
$$;
