-- Quotas on a partitioned table whose owner is hostile (the row path,
-- gb_quota_count_tree).  regress_quentin owns the tree; the inserting role
-- regress_app is a tenant's application.  His triggers beside
-- gb_quota_count_tree run as the inserter (as any trigger does) and try to
-- turn quotas off, switch the transaction's tenant mid-statement, and slip
-- rows into a partition by name; each attempt either fails the statement
-- (nothing written, nothing counted) or is counted.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS quentin CASCADE;
DROP ROLE IF EXISTS regress_quentin;
DROP ROLE IF EXISTS regress_app;
RESET client_min_messages;
SET gb_scale.test_now = '2026-05-20 10:00+00';
CREATE ROLE regress_quentin;
CREATE ROLE regress_app;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_app;
CREATE SCHEMA quentin AUTHORIZATION regress_quentin;
GRANT USAGE ON SCHEMA quentin TO regress_app;

SET ROLE regress_quentin;
CREATE TABLE quentin.events (tenant_id bigint NOT NULL, body text) PARTITION BY LIST (tenant_id);
CREATE TABLE quentin.events_701 PARTITION OF quentin.events FOR VALUES IN (701);
CREATE TABLE quentin.events_rest PARTITION OF quentin.events DEFAULT;
GRANT INSERT, SELECT ON quentin.events, quentin.events_701, quentin.events_rest TO regress_app;
-- which trick his trigger plays ('' for none); readable by everyone
CREATE TABLE quentin.trick (name text NOT NULL);
INSERT INTO quentin.trick VALUES ('');
GRANT SELECT ON quentin.trick TO PUBLIC;
CREATE FUNCTION quentin.meddle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t text := (SELECT name FROM quentin.trick);
BEGIN
    IF t = 'quotas_off' THEN
        PERFORM pg_catalog.set_config('gb_scale.quotas', 'off', true);
    ELSIF t = 'other_tenant' THEN
        PERFORM public.gb_set_tenant(702);
    ELSIF t = 'extra_row' AND NEW.body IS DISTINCT FROM 'extra' THEN
        INSERT INTO quentin.events_701 VALUES (NEW.tenant_id, 'extra');
    END IF;
    RETURN NEW;
END
$$;
-- named to fire before gb_quota_count_tree (triggers fire by name)
CREATE TRIGGER a_meddle BEFORE INSERT ON quentin.events FOR EACH ROW EXECUTE FUNCTION quentin.meddle();
CREATE TRIGGER a_meddle_after AFTER INSERT ON quentin.events FOR EACH ROW EXECUTE FUNCTION quentin.meddle();
RESET ROLE;

SELECT gb_tenant_quota(701, 'quentin.events', 6, NULL);
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'quentin'::regnamespace AND t.tgname LIKE 'gb_quota%' ORDER BY 1;

SET ROLE regress_app;
BEGIN;
SELECT gb_set_tenant(701);
INSERT INTO quentin.events VALUES (701, 'a'), (701, 'b');
COMMIT;
RESET ROLE;

-- his trigger cannot turn quotas off: the statement fails, nothing is written
UPDATE quentin.trick SET name = 'quotas_off';
SET ROLE regress_app;
BEGIN;
SELECT gb_set_tenant(701);
INSERT INTO quentin.events VALUES (701, 'c');
ROLLBACK;
RESET ROLE;

-- A table without a registered tenant column counts rows for the
-- transaction's tenant when each row arrives, which code running as the
-- inserter may change (as the application itself may): his switch to 702
-- takes the row out of 701's count.  Registering the tenant column (tenant
-- isolation or a tenant layout) binds the count to the row's own tenant.
UPDATE quentin.trick SET name = 'other_tenant';
SET ROLE regress_app;
BEGIN;
SELECT gb_set_tenant(701);
INSERT INTO quentin.events VALUES (701, 'd');
COMMIT;
RESET ROLE;
SELECT tenant_id, rows_today, reserved_today FROM gb_tenant_quotas WHERE tbl = 'quentin.events'::regclass;

-- rows his trigger slips into a partition by name count too: 2 inserted
-- rows become 6 (each AFTER and BEFORE row adds one), over the 4 left
UPDATE quentin.trick SET name = 'extra_row';
SET ROLE regress_app;
BEGIN;
SELECT gb_set_tenant(701);
INSERT INTO quentin.events VALUES (701, 'e'), (701, 'f');
ROLLBACK;
-- one row becomes 3: within the quota, all counted
BEGIN;
SELECT gb_set_tenant(701);
INSERT INTO quentin.events VALUES (701, 'g');
COMMIT;
RESET ROLE;
SELECT body, count(*) FROM quentin.events GROUP BY body ORDER BY body;
SELECT tenant_id, rows_today, reserved_today FROM gb_tenant_quotas WHERE tbl = 'quentin.events'::regclass;

-- one row left: two are refused, his trick or not
UPDATE quentin.trick SET name = '';
SET ROLE regress_app;
BEGIN;
SELECT gb_set_tenant(701);
INSERT INTO quentin.events VALUES (701, 'h'), (701, 'i');
ROLLBACK;
RESET ROLE;

-- Clean up.
RESET gb_scale.test_now;
SET client_min_messages = warning;
DROP SCHEMA quentin CASCADE;
RESET client_min_messages;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_app;
DROP ROLE regress_quentin;
DROP ROLE regress_app;
SELECT count(*) AS quotas_left FROM gb_scale.tenant_quota;
