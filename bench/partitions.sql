-- Objects for the partition part of bench/run.sh (bench/partitions.sh),
-- created in each of its databases: gb_scale and pg_partman side by side.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION gb_scale;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;

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

-- A General Bots messages table, declared as a migration would: the same
-- parent for both managers, each of which builds the partitions under it.
-- bare: the same columns with no index, to see what the managers add to
-- the cost of the DDL itself (an index on a new partition costs an fsync).
CREATE FUNCTION bench_parent(t text, bare boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE %I (
		id bigint NOT NULL DEFAULT gb_next_id(),
		tenant_id bigint NOT NULL,
		body text,
		created_at timestamptz NOT NULL DEFAULT now()
	) PARTITION BY RANGE (created_at)', t);
	IF NOT bare THEN
		EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (id, created_at)', t);
		EXECUTE format('CREATE INDEX ON %I (tenant_id, created_at)', t);
	END IF;
END
$$;

-- Registration of parent t with daily partitions from start_at (NULL: the
-- current day) up to premake days ahead, by either manager.  pg_partman's
-- premake counts partitions ahead of the current one and, with no start
-- partition given, makes as many behind it: 'pg_partman' is given the start,
-- so that both make the same partitions, 'pg_partman default' is not.
CREATE FUNCTION bench_register_sql(manager text, t text, premake_days int,
	start_at timestamptz DEFAULT NULL, retention interval DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE manager
		WHEN 'gb_scale' THEN format(
			'SELECT gb_partition_create(%L, %L, %L, premake => %L, retention => %L, start_at => %L)',
			t, 'created_at', '1 day', make_interval(days => premake_days), retention, start_at)
		WHEN 'pg_partman' THEN format(
			'SELECT partman.create_parent(%L, %L, %L, %L, p_premake => %s, p_start_partition => %L)',
			'public.' || t, 'created_at', 'native', 'daily', premake_days,
			coalesce(start_at, date_trunc('day', now())))
		WHEN 'plain DDL' THEN format('SELECT bench_plain_partitions(%L, %s)', t, premake_days)
		WHEN 'pg_partman default' THEN format(
			'SELECT partman.create_parent(%L, %L, %L, %L, p_premake => %s)',
			'public.' || t, 'created_at', 'native', 'daily', premake_days)
	END
$$;

-- The floor under both managers: the same daily partitions as gb_scale
-- makes (the current day and premake_days ahead) by bare CREATE TABLE ...
-- PARTITION OF statements, nothing registered.
CREATE FUNCTION bench_plain_partitions(t text, premake_days int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	d timestamptz := date_trunc('day', now());
BEGIN
	FOR i IN 0 .. premake_days LOOP
		EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
			t || '_p' || to_char(d + make_interval(days => i), 'YYYYMMDD'), t,
			d + make_interval(days => i), d + make_interval(days => i + 1));
	END LOOP;
	RETURN premake_days + 1;
END
$$;

-- Leaf partitions under parent t (pg_partman's default partition included).
CREATE FUNCTION bench_leaves(t regclass) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT count(*) FROM pg_partition_tree(t) WHERE isleaf
$$;
