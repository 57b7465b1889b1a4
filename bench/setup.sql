-- Objects for bench/run.sh, created in a fresh database of a throwaway cluster.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION gb_scale;

-- Baselines for the single-session comparison.
CREATE SEQUENCE seq_cache1 CACHE 1;
CREATE SEQUENCE seq_cache1000 CACHE 1000;
CREATE SEQUENCE sf_seq CACHE 1;

-- The PL/pgSQL snowflake of the General Bots scaling guide:
-- (ms since 2024-01-01) << 22 | shard << 12 | nextval & 4095.
-- clock_timestamp(), not now(): now() is frozen for the whole transaction.
CREATE FUNCTION sf_next_id() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	shard constant bigint := 1;
	epoch_ms constant bigint := 1704067200000;
	ms bigint;
BEGIN
	ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - epoch_ms;
	RETURN (ms << 22) | (shard << 12) | (nextval('sf_seq') & 4095);
END
$$;

-- Tables for pgbench: identical but for the key's default.  Autovacuum is
-- off because the tables are truncated before every run anyway, and a
-- worker waking up mid-run would only add noise to one side.
CREATE TABLE t_snow (
	id bigint PRIMARY KEY DEFAULT gb_next_id(),
	tenant_id bigint NOT NULL,
	body text
) WITH (autovacuum_enabled = false);
CREATE TABLE t_serial (
	id bigserial PRIMARY KEY,
	tenant_id bigint NOT NULL,
	body text
) WITH (autovacuum_enabled = false);

-- Server-side wall time of one query in ms: no client round trip or
-- result transfer in the number.
CREATE FUNCTION bench_time(q text) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE q;
	RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END
$$;

-- Counters read before and after each run; the runner subtracts them.
-- The generator reports no row until the first ID, hence the coalesce.
CREATE FUNCTION bench_counters(OUT ids bigint, OUT flushes bigint, OUT waits bigint,
	OUT wal_write bigint, OUT wal_sync bigint)
LANGUAGE sql AS $$
	SELECT coalesce(sum(g.ids_issued), 0)::bigint, coalesce(sum(g.mark_flushes), 0)::bigint,
		coalesce(sum(g.waits), 0)::bigint, w.wal_write, w.wal_sync
	FROM pg_stat_wal w LEFT JOIN gb_id_generator_status() g ON true
	GROUP BY w.wal_write, w.wal_sync
$$;

-- Block until the generator is no longer ahead of the clock, so that a run
-- does not start with lead left over from the previous one.
-- A procedure so that CALL prints nothing.
CREATE PROCEDURE bench_wait_lead(timeout_s int DEFAULT 30)
LANGUAGE plpgsql AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
	WHILE coalesce((SELECT max(lead_ms) FROM gb_id_generator_status()), 0) > 0 LOOP
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'gb_scale generator still % ms ahead of the clock after % s',
				(SELECT max(lead_ms) FROM gb_id_generator_status()), timeout_s;
		END IF;
		PERFORM pg_sleep(0.02);
	END LOOP;
END
$$;
