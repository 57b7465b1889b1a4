-- A table owner's code in what maintenance and the status view only plan
-- (issue 14, item 1).  regress_alice's IMMUTABLE function, in an index
-- expression of a partition of her default partition, tries to make her a
-- superuser whenever a superuser runs it.  PostgreSQL evaluates it when it
-- plans a query on that partition (folding the constant call).
--  - The dry run of a pass plans a SELECT on her partitioned default
--    partition (CALL gb_run_maintenance(...) by a superuser, as pg_cron does).
--  - The status view plans count(*) on her default partition.
-- Both must run it as regress_alice, restricted: she stays an ordinary role.
\set VERBOSITY terse
SET timezone = 'UTC';
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS alice CASCADE;
DROP ROLE IF EXISTS regress_alice;
RESET client_min_messages;
CREATE ROLE regress_alice;
CREATE SCHEMA alice AUTHORIZATION regress_alice;
SET gb_scale.test_now = '2025-03-10 12:00+00';

SET ROLE regress_alice;
CREATE TABLE alice.calls (usr name, su boolean);
CREATE FUNCTION alice.promote() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alice.calls SELECT current_user, rolsuper FROM pg_catalog.pg_roles
     WHERE rolname OPERATOR(pg_catalog.=) current_user;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
        EXECUTE 'ALTER ROLE regress_alice SUPERUSER';
    END IF;
EXCEPTION WHEN OTHERS THEN
    NULL;
END $$;
CREATE FUNCTION alice.shift(integer) RETURNS integer IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alice.promote();
    RETURN $1;
END $$;
CREATE TABLE alice.t2 (id integer NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
SELECT gb_partition_create('alice.t2', 'created_at', '1 day', premake => '2 days') > 0 AS registered;
-- her own default partition, itself partitioned
CREATE TABLE alice.t2_default PARTITION OF alice.t2 DEFAULT PARTITION BY RANGE (id);
CREATE TABLE alice.t2_default_all PARTITION OF alice.t2_default DEFAULT;
CREATE INDEX t2_default_all_shift ON alice.t2_default_all ((id + alice.shift(1)));
RESET ROLE;
-- what ran so far (creating the index) ran as her
DELETE FROM alice.calls;

-- The dry run of a superuser's pass over her table, in a new session (the
-- expressions are evaluated when first loaded into a session's cache).
\c -
SET gb_scale.test_now = '2025-03-10 12:00+00';
CALL gb_run_maintenance('alice.t2');
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_alice';
SELECT usr, su, count(*) > 0 AS ran FROM alice.calls GROUP BY usr, su ORDER BY usr;
SELECT last_error FROM gb_scale.partition_config WHERE parent = 'alice.t2'::regclass;
SELECT current_setting('search_path') AS search_path, current_setting('lock_timeout') AS lock_timeout;
DELETE FROM alice.calls;

-- A superuser reads the status view, in a new session.
\c -
SELECT parent, default_rows FROM gb_scale.partition_status WHERE parent = 'alice.t2'::regclass;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_alice';
SELECT usr, su, count(*) > 0 AS ran FROM alice.calls GROUP BY usr, su ORDER BY usr;
SELECT current_setting('search_path') AS search_path, current_setting('lock_timeout') AS lock_timeout;

SELECT gb_partition_forget('alice.t2');
DROP SCHEMA alice CASCADE;
DROP ROLE regress_alice;
