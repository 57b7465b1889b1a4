-- Objects for the routing part of bench/run.sh (bench/routing.sh), created in
-- database bench_route: General Bots' shards as DESIGN.md describes them, and
-- the PL/pgSQL lookup of their migration as the baseline.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION gb_scale;

-- Server-side wall time of one statement in ms (as in setup.sql), and the
-- same with the statement's single value, to check a lookup while timing it.
CREATE FUNCTION bench_time(q text) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE q;
	RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END
$$;
-- The same with the backend's time on a CPU (Linux schedstat, ns): on a
-- machine shared with other jobs, wall time also counts the waits for a
-- CPU, which have nothing to do with the function measured.
CREATE FUNCTION bench_time_cpu(q text, OUT wall_ms double precision, OUT cpu_ms double precision)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	c0 bigint;
BEGIN
	c0 := split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint;
	t0 := clock_timestamp();
	EXECUTE q;
	wall_ms := 1000 * extract(epoch FROM clock_timestamp() - t0);
	cpu_ms := (split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - c0) / 1e6;
END
$$;
CREATE FUNCTION bench_time_value(q text, OUT ms double precision, OUT v text)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE q INTO v;
	ms := 1000 * extract(epoch FROM clock_timestamp() - t0);
END
$$;

-- Seven shards of 1,000,000 tenants each: tenants 1..7,000,000.
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, is_primary,
	min_tenant_id, max_tenant_id)
SELECT s, r, dc, format('host=shard%s.gb.internal port=5432 dbname=botserver', s), true,
	(s - 1) * 1000000::bigint + 1, s * 1000000::bigint
FROM unnest(ARRAY['USA', 'USA', 'BRA', 'DEU', 'GBR', 'SGP', 'JPN'],
	ARRAY['us-east-1', 'us-west-2', 'sa-east-1', 'eu-central-1', 'eu-west-2', 'ap-southeast-1', 'ap-northeast-1'])
	WITH ORDINALITY AS u(r, dc, s);

-- Explicit placements are written by bench/routing.sh, one map size after
-- the other (rt_fill).
VACUUM ANALYZE gb_scale.shard_config;

-- The baseline: General Bots' migration routes with a PL/pgSQL function
-- like this one (explicit map first, then the active shard whose range holds
-- the tenant), declared without volatility, hence VOLATILE, and without a
-- SET clause, as there.
CREATE FUNCTION get_shard_for_tenant(p_tenant_id bigint) RETURNS smallint
LANGUAGE plpgsql AS $$
DECLARE
	v smallint;
BEGIN
	SELECT m.shard_id INTO v FROM gb_scale.tenant_shard_map m WHERE m.tenant_id = p_tenant_id;
	IF v IS NULL THEN
		SELECT c.shard_id INTO v FROM gb_scale.shard_config c
		WHERE c.is_active AND p_tenant_id BETWEEN c.min_tenant_id AND c.max_tenant_id;
	END IF;
	RETURN v;
END
$$;

-- The same body declared STABLE, the kindest form of the baseline: its
-- queries share the caller's snapshot instead of taking one each.
CREATE FUNCTION get_shard_for_tenant_stable(p_tenant_id bigint) RETURNS smallint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v smallint;
BEGIN
	SELECT m.shard_id INTO v FROM gb_scale.tenant_shard_map m WHERE m.tenant_id = p_tenant_id;
	IF v IS NULL THEN
		SELECT c.shard_id INTO v FROM gb_scale.shard_config c
		WHERE c.is_active AND p_tenant_id BETWEEN c.min_tenant_id AND c.max_tenant_id;
	END IF;
	RETURN v;
END
$$;
