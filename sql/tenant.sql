-- Tenant isolation, export and purge.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_app;
DROP ROLE IF EXISTS regress_other;
DROP ROLE IF EXISTS regress_tenant_admin;
RESET client_min_messages;
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
CREATE ROLE regress_app;
CREATE ROLE regress_other;
CREATE ROLE regress_tenant_admin IN ROLE gb_scale_admin;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_app;
CREATE SCHEMA app AUTHORIZATION regress_app;

-- The application's tables, owned by the application's role.
SET ROLE regress_app;
CREATE TABLE app.bots (tenant_id bigint NOT NULL, bot_id bigint NOT NULL, name text,
                       PRIMARY KEY (tenant_id, bot_id));
CREATE TABLE app.sessions (id bigint NOT NULL, tenant_id bigint NOT NULL, bot_id bigint NOT NULL,
                           started_at timestamptz NOT NULL,
                           FOREIGN KEY (tenant_id, bot_id) REFERENCES app.bots)
    PARTITION BY RANGE (started_at);
CREATE TABLE app.messages (id bigint NOT NULL, tenant_id bigint NOT NULL,
                           created_at timestamptz NOT NULL, body text)
    PARTITION BY LIST (tenant_id);
CREATE TABLE app.plain (tenant_id integer, note text);
SELECT gb_partition_create('app.sessions', 'started_at', '1 day', premake => '2 days',
                           tenant_column => 'tenant_id', start_at => '2025-03-08 00:00:00+00') AS sessions_parts;
SELECT gb_partition_create('app.messages', 'created_at', '1 day', premake => '2 days',
                           tenant_column => 'tenant_id', start_at => '2025-03-08 00:00:00+00') AS messages_parts;
INSERT INTO app.bots SELECT t, 1, 'bot of ' || t FROM generate_series(1, 3) t;
INSERT INTO app.sessions SELECT g, g % 3 + 1, 1, '2025-03-08 00:00:00+00'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 60) g;
INSERT INTO app.messages SELECT g, g % 3 + 1, '2025-03-08 00:00:00+00'::timestamptz + g * interval '30 minutes', 'm' || g
  FROM generate_series(1, 120) g;
SELECT gb_tenant_dedicate('app.messages', 2) AS moved;

-- Isolation: argument checks first.
SELECT gb_tenant_isolation_enable('app.bots', 'nope');
SELECT gb_tenant_isolation_enable('app.bots', 'name');
SELECT gb_tenant_isolation_enable('app.messages_tenants_seq');
RESET ROLE;
SET ROLE regress_other;
SELECT gb_tenant_isolation_enable('app.bots');
RESET ROLE;
SET ROLE regress_app;
SELECT gb_tenant_isolation_enable('app.bots');
SELECT gb_tenant_isolation_enable('app.sessions');
SELECT gb_tenant_isolation_enable('app.messages');
SELECT gb_tenant_isolation_enable('app.plain');
-- Again: nothing changes, nothing is duplicated.
SELECT gb_tenant_isolation_enable('app.messages');
SELECT tbl, tenant_column FROM gb_scale.tenant_isolation ORDER BY tbl::text;
-- Every table of the trees carries the policies; only the isolated tables force them.
SELECT c.relname, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       (SELECT string_agg(p.polname, ',' ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c
 WHERE c.relnamespace = 'app'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;
SELECT p.polname, p.polcmd, pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
  FROM pg_policy p WHERE p.polrelid = 'app.bots'::regclass ORDER BY p.polname;

-- No tenant set: the owner reads nothing, and writes fail.
SELECT (SELECT count(*) FROM app.bots) AS bots, (SELECT count(*) FROM app.sessions) AS sessions,
       (SELECT count(*) FROM app.messages) AS messages;
INSERT INTO app.bots VALUES (1, 2, 'second');
UPDATE app.bots SET name = 'x';
-- With a tenant, for this transaction only.
BEGIN;
SELECT gb_set_tenant(2);
SELECT (SELECT count(*) FROM app.bots) AS bots, (SELECT count(*) FROM app.sessions) AS sessions,
       (SELECT count(*) FROM app.messages) AS messages, current_setting('gb_scale.tenant_id') AS setting;
INSERT INTO app.bots VALUES (2, 2, 'second of 2');
COMMIT;
BEGIN;
SELECT gb_set_tenant(2);
INSERT INTO app.bots VALUES (1, 3, 'someone else''s');
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(2);
UPDATE app.bots SET name = 'renamed' WHERE bot_id = 2;
UPDATE app.bots SET tenant_id = 1 WHERE bot_id = 2;
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(1);
UPDATE app.messages SET body = body || '!' WHERE id <= 6;
DELETE FROM app.bots WHERE bot_id = 2;
SELECT count(*) AS bots_of_1 FROM app.bots;
-- Switching inside a transaction, and a rolled back savepoint undoing it.
SAVEPOINT s;
SELECT gb_set_tenant(3);
SELECT gb_scale.current_tenant() AS in_savepoint;
ROLLBACK TO s;
SELECT gb_scale.current_tenant() AS after_savepoint;
SELECT gb_set_tenant(NULL);
SELECT count(*) AS cleared FROM app.bots;
COMMIT;
-- After the transaction the tenant is gone (safe behind transaction pooling).
SELECT gb_scale.current_tenant() IS NULL AS gone, count(*) AS visible FROM app.messages;
SELECT gb_set_tenant(3);
SELECT count(*) AS next_statement_sees FROM app.messages;
-- No other way to switch tenants.
SET gb_scale.tenant_id = '3';
SET LOCAL gb_scale.tenant_id = '3';
SELECT set_config('gb_scale.tenant_id', '3', true);
CREATE FUNCTION app.sneaky() RETURNS bigint LANGUAGE sql SET gb_scale.tenant_id = '3' RETURN 1;
RESET gb_scale.tenant_id;
RESET ROLE;
ALTER ROLE regress_app SET gb_scale.tenant_id = '3';
ALTER DATABASE contrib_regression SET gb_scale.tenant_id = '3';
-- Not PUBLIC's.
SET ROLE regress_other;
SELECT gb_set_tenant(1);
RESET ROLE;
-- Superusers (and BYPASSRLS roles) see everything.
SELECT (SELECT count(*) FROM app.bots) AS bots, (SELECT count(*) FROM app.messages) AS messages;

-- New partitions made by maintenance get the policies.
SET gb_scale.test_now = '2025-03-14 12:00:00+00';
CALL gb_run_maintenance();
SELECT c.relname, c.relrowsecurity AS rls,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c
 WHERE c.relnamespace = 'app'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname ~ '_p2025031[4-6]$'
 ORDER BY c.relname;
-- And a newly dedicated tenant's subtree.
SET ROLE regress_app;
SELECT gb_tenant_dedicate('app.messages', 3) AS moved;
SELECT count(*) FILTER (WHERE NOT c.relrowsecurity) AS without_rls, count(*) AS tables
  FROM pg_partition_tree('app.messages') t JOIN pg_class c ON c.oid = t.relid;
-- Another role granted the table reads only its tenant's rows, also
-- through a partition.
GRANT SELECT ON ALL TABLES IN SCHEMA app TO regress_other;
GRANT USAGE ON SCHEMA app TO regress_other;
RESET ROLE;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_other;
SET ROLE regress_other;
BEGIN;
SELECT gb_set_tenant(1);
SELECT count(*) AS via_parent FROM app.messages;
SELECT count(*) AS via_tail FROM app.messages_tenants;
SELECT count(*) AS via_other_tenant_subtree FROM app.messages_t2;
COMMIT;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_other;

-- Export: every row of one tenant, in every tenant table.
SELECT table_name, count(*) AS "rows", min((row_data->>'tenant_id')::bigint) AS lo,
       max((row_data->>'tenant_id')::bigint) AS hi
  FROM gb_tenant_export(2) GROUP BY 1 ORDER BY table_name::text;
SELECT row_data FROM gb_tenant_export(1) WHERE table_name = 'app.bots'::regclass;
-- Only the owner, or gb_scale_admin.
SET ROLE regress_other;
SELECT count(*) FROM gb_tenant_export(2);
SELECT count(*) FROM gb_tenant_purge(2);
RESET ROLE;
SET ROLE regress_tenant_admin;
SELECT count(*) AS admin_exports FROM gb_tenant_export(2);
RESET ROLE;
SET ROLE regress_app;
SELECT count(*) AS owner_exports FROM gb_tenant_export(2);

-- Purge: in one transaction, referencing tables first, the dedicated
-- tenant's partitions by DROP.
SELECT count(*) AS before_2 FROM gb_tenant_export(2);
SELECT table_name, rows_removed FROM gb_tenant_purge(2);
SELECT count(*) AS after_2 FROM gb_tenant_export(2);
SELECT count(*) AS subtree_left FROM pg_class WHERE relname LIKE 'messages\_t2%';
SELECT tenant_id, subtree FROM gb_scale.partition_tenant ORDER BY 1;
SELECT table_name, count(*) FROM gb_tenant_export(1) GROUP BY 1 ORDER BY table_name::text;
-- A purge that fails part-way changes nothing.
RESET ROLE;
CREATE TABLE app.audit (bot_tenant bigint, bot_id bigint, FOREIGN KEY (bot_tenant, bot_id) REFERENCES app.bots);
INSERT INTO app.audit VALUES (1, 1);
SET ROLE regress_tenant_admin;
SELECT table_name, rows_removed FROM gb_tenant_purge(1);
RESET ROLE;
SELECT table_name, count(*) FROM gb_tenant_export(1) GROUP BY 1 ORDER BY table_name::text;
DROP TABLE app.audit;
SELECT table_name, rows_removed FROM gb_tenant_purge(1);
-- An unknown tenant: every table, nothing removed.
SELECT table_name, rows_removed FROM gb_tenant_purge(999) ORDER BY table_name::text;

-- Turning isolation off: the owner only, the whole tree, once.
SET ROLE regress_other;
SELECT gb_tenant_isolation_disable('app.messages');
RESET ROLE;
SET ROLE regress_app;
SELECT gb_tenant_isolation_disable('app.messages');
SELECT gb_tenant_isolation_disable('app.messages');
SELECT count(*) FILTER (WHERE c.relrowsecurity OR c.relforcerowsecurity) AS with_rls,
       (SELECT count(*) FROM pg_policy p JOIN pg_partition_tree('app.messages') t ON p.polrelid = t.relid) AS policies,
       (SELECT count(*) FROM app.messages) AS rows_visible
  FROM pg_partition_tree('app.messages') t JOIN pg_class c ON c.oid = t.relid;
RESET ROLE;
SELECT tbl FROM gb_scale.tenant_isolation ORDER BY tbl::text;
-- Dropping an isolated table takes its registration along.
DROP TABLE app.plain;
SELECT count(*) AS registrations FROM gb_scale.tenant_isolation;
RESET gb_scale.test_now;
DROP SCHEMA app CASCADE;
SELECT count(*) AS registrations_left FROM gb_scale.tenant_isolation;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_app;
DROP ROLE regress_app;
DROP ROLE regress_other;
DROP ROLE regress_tenant_admin;
