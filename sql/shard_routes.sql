-- gb_shard_routes(): every routable tenant as ordered, disjoint ranges that
-- agree with gb_shard_for_tenant() tenant by tenant; the README's load
-- balancer maps made from it; bad directories; who may call it.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_routes_monitor;
DROP ROLE IF EXISTS regress_routes_admin;
DROP ROLE IF EXISTS regress_routes_nobody;
RESET client_min_messages;

-- Shards with every kind of connection string (passwords included), ranges
-- at both ends of bigint, a gap at 0 and between 3,000,001 and 4,999,999,
-- and an inactive (removed) shard 3 whose range routes nobody.
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, is_active, min_tenant_id, max_tenant_id) VALUES
    (1, 'USA', 'us-east-1', 'host=shard1.example port=5432 dbname=gb user=router password=s3cret', true, 1, 1000000),
    (2, 'USA', 'us-west-2', 'postgresql://router:t0psecret@shard2.example:6432/gb_two?sslmode=require', true, 1000001, 2000000),
    (3, 'BRA', 'sa-east-1', 'hostaddr=10.0.0.3 port=5433 dbname=gb password=''a b''', false, 2000001, 3000000),
    (4, 'DEU', 'eu-central-1', 'host=db4a.example,db4b.example port=5432,5433 dbname=gb', true, 5000000, 9223372036854775807),
    (5, 'SGP', 'ap-southeast-1', 'dbname=gb', true, -9223372036854775808, -1);

-- Placements: inside a range on another shard, at a range's first and last
-- tenant, side by side, in gaps, parked on the inactive shard, and at both
-- ends of bigint.
SELECT gb_tenant_assign(t, s::smallint)
  FROM (VALUES (42, 4), (43, 4), (1, 2), (1000000, 1), (0, 1), (4000000, 2), (5000000, 5),
               (9223372036854775807, 1), (-9223372036854775808, 4)) v(t, s);
-- Parked: gb_tenant_assign refuses an inactive shard, a move in progress
-- keeps the entry while the shard is taken out.
UPDATE gb_scale.shard_config SET is_active = true WHERE shard_id = 3;
SELECT gb_tenant_assign(2500000, 3::smallint);
UPDATE gb_scale.shard_config SET is_active = false WHERE shard_id = 3;

SELECT * FROM gb_shard_routes();

-- No password, user or other option than host, port and dbname, anywhere.
SELECT count(*) AS rows_with_secrets
  FROM gb_shard_routes() r WHERE r::text ~ '(s3cret|t0psecret|a b|router|sslmode)';

-- Ordered and disjoint: every range starts after the one before it ends.
CREATE FUNCTION pg_temp.check_routes() RETURNS TABLE (ranges bigint, out_of_order bigint, empty bigint)
LANGUAGE sql AS $$
    SELECT count(*), count(*) FILTER (WHERE min_tenant_id <= prev_max), count(*) FILTER (WHERE min_tenant_id > max_tenant_id)
      FROM (SELECT r.*, lag(r.max_tenant_id) OVER (ORDER BY r.min_tenant_id) AS prev_max
              FROM gb_shard_routes() r) x
$$;
SELECT * FROM pg_temp.check_routes();

-- Agreement with gb_shard_for_tenant: the shard of each tenant's range (NULL
-- outside every range) against the lookup (NULL when it raises P0002), for
-- the tenants around every boundary and for random tenants, near and far.
-- (Serial: under force_parallel_mode, each call would start a worker.)
CREATE FUNCTION pg_temp.lookup(t bigint) RETURNS smallint
LANGUAGE plpgsql SET force_parallel_mode = off AS $$
BEGIN
    RETURN gb_shard_for_tenant(t);
EXCEPTION WHEN no_data_found THEN
    RETURN NULL;
END
$$;
CREATE FUNCTION pg_temp.disagreements(every integer DEFAULT 1) RETURNS TABLE (tenants bigint, routed bigint, disagree bigint)
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE routes_now ON COMMIT DROP AS
    SELECT r.*, row_number() OVER (ORDER BY r.min_tenant_id) AS n FROM gb_shard_routes() r;
    CREATE INDEX ON routes_now (min_tenant_id);
    ANALYZE routes_now;
    CREATE TEMP TABLE probe ON COMMIT DROP AS
    SELECT DISTINCT t FROM (
        SELECT b + d AS t
          FROM (SELECT min_tenant_id AS b FROM routes_now WHERE n % every = 0
                UNION ALL SELECT max_tenant_id FROM routes_now WHERE n % every = 0
                UNION ALL SELECT min_tenant_id FROM gb_scale.shard_config
                UNION ALL SELECT max_tenant_id FROM gb_scale.shard_config) bounds,
               (VALUES (-1), (0), (1)) delta(d)
         WHERE (d < 0 AND b > -9223372036854775808) OR d = 0 OR (d > 0 AND b < 9223372036854775807)
        UNION ALL
        SELECT (random()::numeric * 18446744073709551615 - 9223372036854775808)::numeric(20, 0)::bigint
          FROM generate_series(1, 2000)
        UNION ALL
        SELECT (random() * 10000000 - 1000)::bigint FROM generate_series(1, 2000)
        UNION ALL
        SELECT v FROM (VALUES (-9223372036854775808), (-9223372036854775807), (9223372036854775806),
                              (9223372036854775807)) e(v)) p;
    -- the range that starts last at or before each tenant, if it reaches it
    RETURN QUERY
    SELECT count(*), count(r.shard_id),
           count(*) FILTER (WHERE r.shard_id IS DISTINCT FROM pg_temp.lookup(p.t))
      FROM probe p
      LEFT JOIN LATERAL (SELECT x.shard_id, x.max_tenant_id FROM routes_now x WHERE x.min_tenant_id <= p.t
                          ORDER BY x.min_tenant_id DESC LIMIT 1) r ON r.max_tenant_id >= p.t;
END
$$;
SELECT setseed(0.15);
BEGIN;
SELECT tenants > 3000 AS many_tenants, routed > 1000 AS many_routed, disagree FROM pg_temp.disagreements();
COMMIT;

-- This transaction's own changes are in the routes, as in the lookups, and
-- gone after a rollback.
BEGIN;
SELECT gb_tenant_assign(42, 1::smallint);
SELECT gb_tenant_assign(3500000, 4::smallint);
DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id = 1;
UPDATE gb_scale.shard_config SET max_tenant_id = 999999 WHERE shard_id = 1;
SELECT min_tenant_id, max_tenant_id, shard_id, explicit FROM gb_shard_routes()
 WHERE min_tenant_id BETWEEN 1 AND 4000000 ORDER BY 1;
SELECT * FROM pg_temp.check_routes();
SELECT disagree FROM pg_temp.disagreements();
ROLLBACK;
SELECT min_tenant_id, max_tenant_id, shard_id, explicit FROM gb_shard_routes()
 WHERE min_tenant_id BETWEEN 1 AND 4000000 ORDER BY 1;

-- A shard removed from the directory (its placements moved off first, as
-- the foreign key requires): its range routes nobody any more.
BEGIN;
SELECT gb_tenant_assign(t, 1::smallint) FROM (VALUES (1), (4000000)) v(t);
DELETE FROM gb_scale.shard_config WHERE shard_id = 2;
SELECT min_tenant_id, max_tenant_id, shard_id, explicit FROM gb_shard_routes()
 WHERE min_tenant_id BETWEEN 1 AND 4000000 ORDER BY 1;
SELECT disagree FROM pg_temp.disagreements();
ROLLBACK;

-- A map bigger than a few pages, some of it in the ranges, some not: every
-- placement is a one-tenant range, split ranges included.
BEGIN;
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code)
SELECT g * 97, CASE WHEN g % 3 = 0 THEN 2 ELSE 4 END, CASE WHEN g % 3 = 0 THEN 'USA' ELSE 'DEU' END
  FROM generate_series(1, 20000) g
ON CONFLICT (tenant_id) DO NOTHING;
SELECT count(*) FILTER (WHERE explicit) AS placements,
       (SELECT count(*) FROM gb_scale.tenant_shard_map) AS map_rows,
       count(*) FILTER (WHERE NOT explicit) AS range_pieces
  FROM gb_shard_routes();
SELECT * FROM pg_temp.check_routes();
SELECT disagree FROM pg_temp.disagreements(every => 50);
ROLLBACK;

-- The README's load balancer maps, verbatim.  nginx: one map file, a
-- placement as an exact key (nginx tries those first), each shard's range
-- as one anchored regex made of decimal blocks.
CREATE TEMP TABLE nginx_map AS
WITH RECURSIVE r AS MATERIALIZED (SELECT * FROM gb_shard_routes() WHERE max_tenant_id >= 1),
ranges AS (
    SELECT shard_id, greatest(min(min_tenant_id), 1)::numeric AS lo, max(max_tenant_id)::numeric AS hi
      FROM r WHERE NOT explicit GROUP BY shard_id
),
blocks AS (         -- [lo, hi] cut into aligned blocks p * 10^k .. (p + 1) * 10^k - 1
    SELECT shard_id, lo AS cur, hi FROM ranges
    UNION ALL
    SELECT shard_id, cur + 10::numeric ^ (SELECT max(j) FROM generate_series(0, 18) j
                                           WHERE cur % 10::numeric ^ j = 0 AND cur + 10::numeric ^ j - 1 <= hi), hi
      FROM blocks WHERE cur <= hi
),
cut AS (
    SELECT shard_id, div(cur, 10::numeric ^ k)::bigint AS p, k
      FROM blocks, LATERAL (SELECT max(j) AS k FROM generate_series(0, 18) j
                             WHERE cur % 10::numeric ^ j = 0 AND cur + 10::numeric ^ j - 1 <= hi) s
     WHERE cur <= hi
),
alternatives AS (   -- neighbouring blocks of one size under one prefix: a character class
    SELECT shard_id, coalesce(nullif(p / 10, 0)::text, '')
           || CASE WHEN min(p % 10) = max(p % 10) THEN min(p % 10)::text
                   ELSE format('[%s-%s]', min(p % 10), max(p % 10)) END
           || CASE k WHEN 0 THEN '' WHEN 1 THEN '[0-9]' ELSE format('[0-9]{%s}', k) END AS alt
      FROM cut GROUP BY shard_id, k, p / 10
)
SELECT format('%s gb_shard_%s;', min_tenant_id, shard_id) AS line FROM r WHERE explicit
UNION ALL
SELECT format('"~^(?:%s)$" gb_shard_%s;', string_agg(alt, '|' ORDER BY alt), shard_id)
  FROM alternatives GROUP BY shard_id;
SELECT line FROM nginx_map WHERE line LIKE '"%' ORDER BY line;
SELECT count(*) AS exact_keys FROM nginx_map WHERE line NOT LIKE '"%';

-- HAProxy: placements in a string map (a tree lookup), each shard's range
-- as one "min:max" key of a map_int file; one call, so both files come from
-- one snapshot.
CREATE TEMP TABLE haproxy_map AS
WITH r AS MATERIALIZED (SELECT * FROM gb_shard_routes() WHERE max_tenant_id >= 1)
SELECT 'placement' AS file, min_tenant_id::text AS key, 'gb_shard_' || shard_id AS backend
  FROM r WHERE explicit
UNION ALL
SELECT 'range', greatest(min(min_tenant_id), 1) || ':' || max(max_tenant_id), 'gb_shard_' || shard_id
  FROM r WHERE NOT explicit GROUP BY shard_id;
SELECT * FROM haproxy_map WHERE file = 'range' ORDER BY key;

-- What nginx and HAProxy do with those lines (exact key first, else the
-- matching range), against gb_shard_for_tenant for positive tenants.
CREATE FUNCTION pg_temp.lb_disagreements() RETURNS TABLE (tenants bigint, nginx_disagree bigint, haproxy_disagree bigint)
LANGUAGE sql AS $$
    WITH probe AS (
        SELECT DISTINCT t::bigint AS t FROM (
            SELECT b + d AS t
              FROM (SELECT min_tenant_id::numeric AS b FROM gb_shard_routes()
                    UNION ALL SELECT max_tenant_id FROM gb_shard_routes()) x,
                   (VALUES (-1), (0), (1)) delta(d)
            UNION ALL SELECT (random()::numeric * 9223372036854775806 + 1)::numeric(20, 0) FROM generate_series(1, 2000)
            UNION ALL SELECT (random()::numeric * 10000000 + 1)::numeric(20, 0) FROM generate_series(1, 2000)
            UNION ALL SELECT v FROM (VALUES (1), (9), (10), (99), (100), (999999), (9223372036854775807)) e(v)) p
         WHERE t BETWEEN 1 AND 9223372036854775807
    ),
    nginx AS (
        SELECT p.t, coalesce((SELECT substring(m.line FROM 'gb_shard_(\d+);$')::smallint FROM nginx_map m
                               WHERE m.line NOT LIKE '"%' AND split_part(m.line, ' ', 1) = p.t::text),
                             (SELECT substring(m.line FROM 'gb_shard_(\d+);$')::smallint FROM nginx_map m
                               WHERE m.line LIKE '"%' AND p.t::text ~ substring(m.line FROM '^"~(.*)" ')
                               LIMIT 1)) AS shard
          FROM probe p
    ),
    haproxy AS (
        SELECT p.t, coalesce((SELECT substring(h.backend FROM '\d+$')::smallint FROM haproxy_map h
                               WHERE h.file = 'placement' AND h.key = p.t::text),
                             (SELECT substring(h.backend FROM '\d+$')::smallint FROM haproxy_map h
                               WHERE h.file = 'range'
                                 AND p.t BETWEEN split_part(h.key, ':', 1)::bigint AND split_part(h.key, ':', 2)::bigint
                               LIMIT 1)) AS shard
          FROM probe p
    )
    SELECT count(*),
           count(*) FILTER (WHERE n.shard IS DISTINCT FROM pg_temp.lookup(n.t)),
           count(*) FILTER (WHERE h.shard IS DISTINCT FROM pg_temp.lookup(n.t))
      FROM nginx n JOIN haproxy h USING (t)
$$;
SELECT tenants > 3000 AS many_tenants, nginx_disagree, haproxy_disagree FROM pg_temp.lb_disagreements();

-- Bad directories: each refused with the shard or tenant named, and
-- nothing of the connection string quoted but what libpq's error keeps of
-- a string without a password.
\set VERBOSITY default
\set SHOW_CONTEXT errors
BEGIN;
UPDATE gb_scale.shard_config SET connection_string = 'host=shard1.example password=s3cret dbname' WHERE shard_id = 1;
SELECT count(*) FROM gb_shard_routes();
ROLLBACK;
BEGIN;
UPDATE gb_scale.shard_config SET connection_string = 'postgresql://router:t0psecret@[shard2.example/gb' WHERE shard_id = 2;
SELECT count(*) FROM gb_shard_routes();
ROLLBACK;
\set SHOW_CONTEXT never
-- An inactive shard's string is never read: its tenants are not routed.
BEGIN;
UPDATE gb_scale.shard_config SET connection_string = 'nonsense' WHERE shard_id = 3;
DELETE FROM gb_scale.tenant_shard_map WHERE shard_id = 3;
SELECT count(*) AS routes FROM gb_shard_routes();
ROLLBACK;
-- Overlapping active ranges, possible only while the exclusion constraint
-- is deferred: no single answer.
BEGIN;
SET CONSTRAINTS gb_scale.shard_config_active_ranges_disjoint DEFERRED;
UPDATE gb_scale.shard_config SET max_tenant_id = 1500000 WHERE shard_id = 1;
SELECT count(*) FROM gb_shard_routes();
ROLLBACK;
-- A placement on a shard missing from shard_config (its foreign key
-- bypassed, as a replica's apply may): refused, as gb_shard_connection does.
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO gb_scale.tenant_shard_map (tenant_id, shard_id, region_code) VALUES (77, 99, 'USA');
SET LOCAL session_replication_role = origin;
SELECT gb_shard_for_tenant(77) AS lookup_says;
SELECT count(*) FROM gb_shard_routes();
ROLLBACK;
-- An empty directory has no routes.
BEGIN;
TRUNCATE gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;
SELECT count(*) AS routes FROM gb_shard_routes();
ROLLBACK;
-- Nothing above changed the routes.
SELECT * FROM pg_temp.check_routes();

-- Who may call it: gb_scale_admin and pg_monitor members, not PUBLIC.
\set VERBOSITY terse
CREATE ROLE regress_routes_monitor IN ROLE pg_monitor;
CREATE ROLE regress_routes_admin IN ROLE gb_scale_admin;
CREATE ROLE regress_routes_nobody;
SET ROLE regress_routes_monitor;
SELECT count(*) AS monitor_routes FROM gb_shard_routes();
SET ROLE regress_routes_admin;
SELECT count(*) AS admin_routes FROM gb_shard_routes();
SET ROLE regress_routes_nobody;
SELECT count(*) FROM gb_shard_routes();
RESET ROLE;

DROP ROLE regress_routes_monitor;
DROP ROLE regress_routes_admin;
DROP ROLE regress_routes_nobody;
TRUNCATE gb_scale.tenant_shard_map;
DELETE FROM gb_scale.shard_config;
