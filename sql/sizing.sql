-- Sizing advice from live volumes (issue 15, section 5): gb_scale.sizing
-- names the row of General Bots' When-to-Scale table this shard is in, the
-- next threshold and the day it is crossed at the growth of the last 7 full
-- days; gb_scale.tenant_heavy names the tenants to dedicate or move.
-- The clock is gb_scale.test_now: 2026-03-10 12:00 UTC, so the last full
-- day is 2026-03-09 and the last 7 are 03-03 .. 03-09.  Rows 2 to 5 use the
-- test knob gb_scale.sizing_test_scale = 10000 (a counted row stands for
-- 10000), row 1 the real volumes.
\set VERBOSITY terse
SET timezone = 'UTC';
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS gb CASCADE;
DROP SCHEMA IF EXISTS hostile CASCADE;
DROP ROLE IF EXISTS regress_sz_owner;
DROP ROLE IF EXISTS regress_sz_monitor;
DROP ROLE IF EXISTS regress_sz_nobody;
RESET client_min_messages;
-- CPU figures depend on timing: keep them (and earlier tests' figures) out of the shares
-- compared here
SET gb_scale.stat_tenants_track = off;
SELECT gb_stat_tenants_reset();
SET gb_scale.test_now = '2026-03-10 12:00+00';

CREATE SCHEMA gb;
-- sessions by day; messages by tenant, then by day in Sao Paulo's days;
-- users by day with a default partition for the older ones
CREATE TABLE gb.sessions (id bigint NOT NULL, tenant_id bigint NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY RANGE (created_at);
CREATE TABLE gb.messages (id bigint NOT NULL, tenant_id bigint NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY LIST (tenant_id);
CREATE TABLE gb.users (id bigint NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('gb.sessions', 'created_at', '1 day', premake => '2 days',
                           start_at => '2026-03-01 00:00+00') > 0 AS sessions;
SELECT gb_partition_create('gb.messages', 'created_at', '1 day', premake => '2 days',
                           tenant_column => 'tenant_id', time_zone => 'America/Sao_Paulo',
                           start_at => '2026-03-01 00:00+00') > 0 AS messages;
SELECT gb_partition_create('gb.users', 'created_at', '1 day', premake => '2 days', default_partition => true,
                           start_at => '2026-03-03 00:00+00') > 0 AS users;

-- n rows a day, tenants 1..tenants in turn, spread over the day of TBL's zone
CREATE FUNCTION public.sz_fill(tbl regclass, day date, n integer, tenants integer, zone text DEFAULT 'UTC')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF tbl = 'gb.users'::regclass THEN
        INSERT INTO gb.users SELECT g, (day::timestamp AT TIME ZONE zone) + g * interval '1 second'
          FROM generate_series(1, n) g;
    ELSE
        EXECUTE format('INSERT INTO %s SELECT g, g %% %s + 1, ($1::timestamp AT TIME ZONE %L) + g * interval ''100 ms''
                          FROM generate_series(1, $2) g', tbl, tenants, zone) USING day, n;
    END IF;
END $$;
CREATE FUNCTION public.sz_reset() RETURNS void LANGUAGE sql AS $$
    TRUNCATE gb.sessions, gb.messages, gb.users;
$$;

-- Defaults: General Bots' names, registered (gb.users need not be).
SELECT * FROM gb_scale.sizing_source;

-- Row 1, real volumes: 50 sessions, 500 messages a day (flat), 100 users.
SELECT public.sz_fill('gb.sessions', d::date, 50, 5) FROM generate_series('2026-03-03'::date, '2026-03-09', '1 day') d;
SELECT public.sz_fill('gb.messages', d::date, 500, 7, 'America/Sao_Paulo')
  FROM generate_series('2026-03-03'::date, '2026-03-09', '1 day') d;
SELECT public.sz_fill('gb.users', '2026-02-01', 100, 1);
-- Sao Paulo's 2026-03-09 ends at 03:00 UTC on the 10th: this one counts,
-- the one of the 10th (local) does not, nor the one of today
INSERT INTO gb.messages VALUES (1, 3, '2026-03-10 02:59:59+00'), (2, 3, '2026-03-10 03:00:00+00'),
                               (3, 3, '2026-03-10 11:00:00+00');
SELECT * FROM gb_scale.sizing_daily('gb.messages', 2);
SELECT metric, source, day, volume, scale_row, setup, next_setup, next_threshold, growth_model,
       round(growth_per_day::numeric, 4) AS growth, crosses_on
  FROM gb_scale.sizing;

-- Row 2 from messages, growing compound: 3, 6, ..., 192 rows a day
-- (1.92M/day at scale 10000), doubling a day: 10M is crossed on the 3rd day.
SELECT public.sz_reset();
SET gb_scale.sizing_test_scale = 10000;
SELECT public.sz_fill('gb.messages', '2026-03-03'::date + i, 3 * (2 ^ i)::integer, 4, 'America/Sao_Paulo')
  FROM generate_series(0, 6) i;
SELECT public.sz_fill('gb.sessions', d::date, 5, 5) FROM generate_series('2026-03-03'::date, '2026-03-09', '1 day') d;
SELECT metric, volume, scale_row, setup, next_setup, next_threshold, growth_model,
       round(growth_per_day::numeric, 4) AS growth, crosses_on
  FROM gb_scale.sizing;

-- Row 3 from sessions: 150 a day (1.5M), flat: no crossing date.
SELECT public.sz_reset();
SELECT public.sz_fill('gb.sessions', d::date, 150, 5) FROM generate_series('2026-03-03'::date, '2026-03-09', '1 day') d;
SELECT public.sz_fill('gb.messages', '2026-03-09', 500, 4, 'America/Sao_Paulo');
SELECT metric, volume, scale_row, setup, next_setup, next_threshold, growth_per_day, crosses_on
  FROM gb_scale.sizing;

-- Row 4 from users: 80 old ones and 10 new a day (1.5M users, +100000 a
-- day, linear): 10M users in 85 days.
SELECT public.sz_reset();
SELECT public.sz_fill('gb.users', '2026-02-01', 80, 1);
SELECT public.sz_fill('gb.users', d::date, 10, 1) FROM generate_series('2026-03-03'::date, '2026-03-09', '1 day') d;
SELECT metric, volume, scale_row, setup, next_setup, next_threshold, growth_model, growth_per_day, crosses_on
  FROM gb_scale.sizing;

-- Row 5 from messages: 100000 on the last day (1B at scale 10000), none
-- before: the top row has no next threshold.
SELECT public.sz_reset();
SELECT public.sz_fill('gb.messages', '2026-03-09', 100000, 10, 'America/Sao_Paulo');
SELECT metric, volume, scale_row, setup, next_setup, next_threshold, growth_per_day, crosses_on
  FROM gb_scale.sizing;
RESET gb_scale.sizing_test_scale;

-- The knob is a superuser's only.
CREATE ROLE regress_sz_monitor;
GRANT pg_monitor TO regress_sz_monitor;
CREATE ROLE regress_sz_nobody;
SELECT 'gb.messages'::regclass::oid AS msgs \gset
SET ROLE regress_sz_monitor;
SET gb_scale.sizing_test_scale = 2;
SELECT metric, volume, scale_row FROM gb_scale.sizing WHERE metric IN ('messages_per_day', 'shard');
SELECT count(*) AS heavy FROM gb_scale.tenant_heavy();
SELECT gb_sizing_source('users', NULL);
RESET ROLE;
SET ROLE regress_sz_nobody;
SELECT * FROM gb_scale.sizing;
SELECT * FROM gb_scale.tenant_heavy();
SELECT * FROM gb_scale.sizing_daily(:msgs, 7);
RESET ROLE;

-- Heavy tenants: 1 holds 60% of the rows (move), 2 and 3 10% each (2 on
-- the tenant-listed messages: dedicate; 3 already dedicated: nothing),
-- 4..13 2% each (nothing).
SELECT public.sz_reset();
INSERT INTO gb.messages SELECT g, CASE WHEN g <= 600 THEN 1 WHEN g <= 700 THEN 2 WHEN g <= 800 THEN 3
                                       ELSE 4 + g % 10 END,
                               '2026-03-09 12:00+00'::timestamptz + g * interval '1 s'
  FROM generate_series(1, 1000) g;
SELECT gb_tenant_dedicate('gb.messages', 3) AS moved;
SELECT tenant_id, row_count, round(row_share::numeric, 3) AS row_share, cpu_share, action, command
  FROM gb_scale.tenant_heavy(5);
SELECT count(*) AS all_tenants FROM gb_scale.tenant_heavy(NULL);

-- Which tables count is set by gb_scale_admin: bad input changes nothing.
SELECT gb_sizing_source('visits', 'gb.sessions');
SELECT gb_sizing_source(NULL, 'gb.sessions');
CREATE TABLE public.sz_plain (id bigint);
SELECT gb_sizing_source('messages', 'public.sz_plain');
CREATE VIEW public.sz_view AS SELECT 1 AS id;
SELECT gb_sizing_source('users', 'public.sz_view');
SELECT * FROM gb_scale.sizing_source;
SELECT gb_scale.sizing_daily('public.sz_plain', 7);
SELECT gb_scale.sizing_daily('gb.messages', 0);
INSERT INTO public.sz_plain SELECT generate_series(1, 42);
SELECT gb_sizing_source('users', 'public.sz_plain');
SELECT * FROM gb_scale.sizing_source;
SELECT metric, source, volume FROM gb_scale.sizing WHERE metric = 'users';
SELECT gb_sizing_source('users', NULL);
SELECT * FROM gb_scale.sizing_source;
-- A dropped source is forgotten (the drop event trigger): back to the default.
SELECT gb_sizing_source('users', 'public.sz_plain');
DROP TABLE public.sz_plain;
SELECT * FROM gb_scale.sizing_source;
SELECT metric, source, volume FROM gb_scale.sizing WHERE metric = 'users';
CREATE TABLE public.sz_plain (id bigint);

-- A hostile owner's code on the counted table runs as her, restricted,
-- never as the superuser reading the view: an IMMUTABLE function in an
-- index expression (evaluated when the count is planned) and in a forced
-- policy of a partition.
CREATE ROLE regress_sz_owner;
CREATE SCHEMA hostile AUTHORIZATION regress_sz_owner;
SET ROLE regress_sz_owner;
CREATE TABLE hostile.calls (usr name, su boolean);
CREATE FUNCTION hostile.promote() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hostile.calls SELECT current_user, rolsuper FROM pg_catalog.pg_roles
     WHERE rolname OPERATOR(pg_catalog.=) current_user;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
        EXECUTE 'ALTER ROLE regress_sz_owner SUPERUSER';
    END IF;
EXCEPTION WHEN OTHERS THEN
    NULL;
END $$;
CREATE FUNCTION hostile.shift(integer) RETURNS integer IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hostile.promote();
    RETURN $1;
END $$;
CREATE FUNCTION hostile.allow(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hostile.promote();
    RETURN true;
END $$;
CREATE TABLE hostile.msgs (id bigint NOT NULL, tenant_id bigint NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY RANGE (created_at);
SELECT gb_partition_create('hostile.msgs', 'created_at', '1 day', premake => '2 days', tenant_column => 'tenant_id',
                           start_at => '2026-03-03 00:00+00') > 0 AS registered;
INSERT INTO hostile.msgs SELECT g, g % 2, '2026-03-09 00:00+00'::timestamptz + g * interval '1 min'
  FROM generate_series(1, 30) g;
CREATE INDEX msgs_shift ON hostile.msgs_p20260309 ((id + hostile.shift(1)));
ALTER TABLE hostile.msgs_p20260309 ENABLE ROW LEVEL SECURITY;
ALTER TABLE hostile.msgs_p20260309 FORCE ROW LEVEL SECURITY;
CREATE POLICY msgs_allow ON hostile.msgs_p20260309 USING (hostile.allow(id));
RESET ROLE;
SELECT gb_sizing_source('messages', 'hostile.msgs');
DELETE FROM hostile.calls;
-- a new session: the index expression is evaluated when first loaded
\c -
SET gb_scale.test_now = '2026-03-10 12:00+00';
SET gb_scale.stat_tenants_track = off;
SELECT metric, source, volume FROM gb_scale.sizing WHERE metric = 'messages_per_day';
SELECT tenant_id, row_count, action FROM gb_scale.tenant_heavy(2);
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sz_owner';
SELECT usr, su, count(*) > 0 AS ran FROM hostile.calls GROUP BY usr, su ORDER BY usr;
SELECT current_setting('search_path') AS search_path, current_setting('lock_timeout') AS lock_timeout;

-- Clean up.
SELECT gb_sizing_source('messages', NULL);
SELECT gb_partition_forget(parent) FROM gb_scale.partition_config
 WHERE parent::text IN ('hostile.msgs', 'gb.sessions', 'gb.messages', 'gb.users') ORDER BY parent::text;
SET client_min_messages = warning;
DROP SCHEMA hostile CASCADE;
DROP SCHEMA gb CASCADE;
DROP TABLE public.sz_plain;
DROP VIEW public.sz_view;
DROP FUNCTION public.sz_fill, public.sz_reset;
DROP ROLE regress_sz_owner, regress_sz_monitor, regress_sz_nobody;
RESET client_min_messages;
SELECT count(*) AS sources_left FROM gb_scale.sizing_source;
RESET gb_scale.test_now;
