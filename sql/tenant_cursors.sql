-- A cursor WITH HOLD outlives its transaction, so it must never carry a
-- tenant's rows: no holdable cursor while a tenant is set, and no tenant
-- while the transaction has declared one.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_tc_app;
RESET client_min_messages;
CREATE ROLE regress_tc_app;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_tc_app;
CREATE SCHEMA tc AUTHORIZATION regress_tc_app;
SET ROLE regress_tc_app;
CREATE TABLE tc.msgs (tenant_id bigint NOT NULL, id int NOT NULL, body text);
CREATE TABLE tc.plain (id int);
INSERT INTO tc.msgs SELECT g % 2 + 1, g, 'm' || g FROM generate_series(1, 10) g;
INSERT INTO tc.plain SELECT generate_series(1, 3);
SELECT gb_tenant_isolation_enable('tc.msgs');

-- A holdable cursor while a tenant is set: refused, on any table.
BEGIN;
SELECT gb_set_tenant(1);
DECLARE c CURSOR WITH HOLD FOR SELECT * FROM tc.msgs;
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(1);
DECLARE c CURSOR WITH HOLD FOR SELECT * FROM tc.plain;
ROLLBACK;
-- also from a function
CREATE FUNCTION tc.open_held() RETURNS void LANGUAGE plpgsql AS
  $$BEGIN EXECUTE 'DECLARE f CURSOR WITH HOLD FOR SELECT * FROM tc.msgs'; END$$;
BEGIN;
SELECT gb_set_tenant(1);
SELECT tc.open_held();
ROLLBACK;
-- An ordinary cursor is fine: it ends with the transaction.
BEGIN;
SELECT gb_set_tenant(1);
DECLARE c CURSOR FOR SELECT tenant_id, id FROM tc.msgs ORDER BY id;
FETCH 2 FROM c;
COMMIT;
FETCH 2 FROM c;

-- A tenant in a transaction that declared a holdable cursor: refused.
BEGIN;
DECLARE c CURSOR WITH HOLD FOR SELECT * FROM tc.msgs;
SELECT gb_set_tenant(1);
ROLLBACK;
BEGIN;
SELECT tc.open_held();
SELECT gb_set_tenant(2);
ROLLBACK;
-- even from the cursor's own query, which runs at COMMIT
BEGIN;
DECLARE c CURSOR WITH HOLD FOR
  SELECT m.tenant_id, m.id FROM (SELECT gb_set_tenant(1)) s, LATERAL (SELECT * FROM tc.msgs OFFSET 0) m;
COMMIT;
FETCH 2 FROM c;
-- Once closed, or rolled back with its savepoint, it is no obstacle.
BEGIN;
DECLARE c CURSOR WITH HOLD FOR SELECT * FROM tc.msgs;
CLOSE c;
SAVEPOINT s;
DECLARE d CURSOR WITH HOLD FOR SELECT * FROM tc.msgs;
ROLLBACK TO s;
SELECT gb_set_tenant(1);
SELECT count(*) AS tenant_1_rows FROM tc.msgs;
COMMIT;

-- Without a tenant a holdable cursor is allowed, and it holds no tenant's
-- rows; a cursor held from an earlier transaction does not stop the next
-- transaction from setting its tenant.
BEGIN;
SELECT gb_set_tenant(1);
SELECT gb_set_tenant(NULL);
DECLARE h CURSOR WITH HOLD FOR SELECT tenant_id, id FROM tc.msgs ORDER BY id;
DECLARE p CURSOR WITH HOLD FOR SELECT id FROM tc.plain ORDER BY id;
COMMIT;
SELECT name, is_holdable FROM pg_cursors ORDER BY name;
BEGIN;
SELECT gb_set_tenant(2);
FETCH 2 FROM h;
FETCH 2 FROM p;
COMMIT;
CLOSE h;
CLOSE p;

RESET ROLE;
DROP SCHEMA tc CASCADE;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_tc_app;
DROP ROLE regress_tc_app;
