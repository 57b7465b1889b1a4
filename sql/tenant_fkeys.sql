-- A purge never deletes or changes another tenant's row (issue 13, item 4).
-- Foreign keys whose ON DELETE action writes (CASCADE, SET NULL, SET
-- DEFAULT) into a purged table are checked before anything is deleted.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET gb_scale.test_now = '2025-03-10 12:34:56+00';
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS fk CASCADE;
DROP SCHEMA IF EXISTS fk_other CASCADE;
DROP ROLE IF EXISTS regress_fk_app;
DROP ROLE IF EXISTS regress_fk_other;
DROP ROLE IF EXISTS regress_fk_admin;
RESET client_min_messages;
CREATE ROLE regress_fk_app;
CREATE ROLE regress_fk_other;
CREATE ROLE regress_fk_admin IN ROLE gb_scale_admin;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_fk_app;
CREATE SCHEMA fk AUTHORIZATION regress_fk_app;
CREATE SCHEMA fk_other AUTHORIZATION regress_fk_other;

SET ROLE regress_fk_app;
-- As in the issue: bot_id alone is the key; messages reference it.
CREATE TABLE fk.bots (tenant_id bigint NOT NULL, bot_id bigint PRIMARY KEY, name text,
                      UNIQUE (tenant_id, bot_id));
CREATE TABLE fk.msgs (tenant_id bigint NOT NULL, id bigint PRIMARY KEY,
                      bot_id bigint REFERENCES fk.bots ON DELETE CASCADE, body text);
SELECT gb_tenant_isolation_enable('fk.bots');
SELECT gb_tenant_isolation_enable('fk.msgs');
BEGIN;
SELECT gb_set_tenant(1);
INSERT INTO fk.bots VALUES (1, 100, 'bot of 1'), (1, 101, 'another bot of 1');
INSERT INTO fk.msgs VALUES (1, 1, 100, 'tenant 1 to its own bot');
COMMIT;
BEGIN;
SELECT gb_set_tenant(2);
INSERT INTO fk.bots VALUES (2, 200, 'bot of 2');
-- Tenant 2 cannot read bot 100, but the foreign key tells it that bot 100
-- exists (and 999 does not), and lets it reference tenant 1's bot.
SELECT count(*) AS bots_visible_to_2 FROM fk.bots;
SAVEPOINT s;
INSERT INTO fk.msgs VALUES (2, 20, 999, 'no such bot');
ROLLBACK TO s;
INSERT INTO fk.msgs VALUES (2, 21, 100, 'tenant 2 to tenant 1''s bot'),
                           (2, 22, 101, 'again'), (2, 23, 200, 'tenant 2 to its own bot');
COMMIT;
RESET ROLE;

\set all_rows 'SELECT ''bots'' AS tbl, tenant_id, bot_id AS id FROM fk.bots UNION ALL SELECT ''msgs'', tenant_id, id FROM fk.msgs ORDER BY 1, 2, 3'
:all_rows;

-- The purge of tenant 1 refuses, naming tenant 2, the table, the key and
-- the rows, and changes nothing: not even tenant 1's own message, which
-- would have gone first.  The admin may read none of the tables: the check
-- runs as their owner.
SET ROLE regress_fk_admin;
SELECT * FROM gb_tenant_purge(1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
:all_rows;

-- Tenant 2's messages to tenant 1's bot do not stop the purge of tenant 2,
-- which deletes only tenant 2's rows.
BEGIN;
SELECT table_name, rows_removed FROM gb_tenant_purge(2) ORDER BY table_name::text;
:all_rows;
ROLLBACK;

-- SET NULL and SET DEFAULT change the rows of other tenants: refused too.
DELETE FROM fk.msgs WHERE tenant_id = 2 AND bot_id < 200;
SET ROLE regress_fk_app;
CREATE TABLE fk.notes (tenant_id bigint NOT NULL, id bigint, bot_id bigint REFERENCES fk.bots ON DELETE SET NULL);
CREATE TABLE fk.tags (tenant_id bigint NOT NULL, id bigint, bot_id bigint DEFAULT 200 REFERENCES fk.bots ON DELETE SET DEFAULT);
SELECT gb_tenant_isolation_enable('fk.notes');
SELECT gb_tenant_isolation_enable('fk.tags');
RESET ROLE;
INSERT INTO fk.notes VALUES (3, 30, 101), (3, 31, 101), (4, 40, 100);
SELECT * FROM gb_tenant_purge(1);
DELETE FROM fk.notes;
INSERT INTO fk.tags VALUES (2, 20, 100);
SELECT * FROM gb_tenant_purge(1);
DELETE FROM fk.tags;

-- A table without a tenant column: its rows belong to no tenant.
CREATE TABLE fk.audit (bot_id bigint REFERENCES fk.bots ON DELETE CASCADE, what text);
INSERT INTO fk.audit VALUES (100, 'created');
SELECT * FROM gb_tenant_purge(1);
\echo :LAST_ERROR_SQLSTATE
DROP TABLE fk.audit;

-- A key within one table.
SET ROLE regress_fk_app;
CREATE TABLE fk.folders (tenant_id bigint NOT NULL, id bigint PRIMARY KEY,
                         parent_id bigint REFERENCES fk.folders ON DELETE CASCADE);
SELECT gb_tenant_isolation_enable('fk.folders');
RESET ROLE;
INSERT INTO fk.folders VALUES (1, 1, NULL), (1, 2, 1), (5, 3, 1);
SELECT * FROM gb_tenant_purge(1);
DELETE FROM fk.folders WHERE tenant_id = 5;

-- Another owner's table: checked as an owner who may read both tables in
-- full, or refused.  Here neither may: the other table forces row level
-- security, and its owner may not read fk.bots.
GRANT USAGE ON SCHEMA fk TO regress_fk_other;
GRANT REFERENCES ON fk.bots TO regress_fk_other;
SET ROLE regress_fk_other;
CREATE TABLE fk_other.links (tenant_id bigint NOT NULL, bot_id bigint REFERENCES fk.bots ON DELETE CASCADE);
SELECT gb_tenant_isolation_enable('fk_other.links');
RESET ROLE;
INSERT INTO fk_other.links VALUES (6, 100);
SELECT * FROM gb_tenant_purge(1);
\echo :LAST_ERROR_SQLSTATE
-- Its owner may read fk.bots, and row level security does not stop it: the
-- check runs as that owner and finds tenant 6's row.
GRANT SELECT ON fk.bots TO regress_fk_other;
ALTER ROLE regress_fk_other BYPASSRLS;
SELECT * FROM gb_tenant_purge(1);
DELETE FROM fk_other.links;

-- A partitioned table, tenant 1 with partitions of its own: the key into
-- it holds its tenant column, paired with another column than the
-- referencing table's tenant column.
SET ROLE regress_fk_app;
CREATE TABLE fk.docs (tenant_id bigint NOT NULL, doc_id bigint NOT NULL, created_at timestamptz NOT NULL,
                      PRIMARY KEY (tenant_id, doc_id, created_at)) PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('fk.docs', 'created_at', '1 day', premake => '2 days',
                           tenant_column => 'tenant_id', start_at => '2025-03-08 00:00:00+00') > 0 AS docs_parts;
CREATE TABLE fk.refs (tenant_id bigint NOT NULL, doc_tenant bigint, doc_id bigint, created_at timestamptz,
                      FOREIGN KEY (doc_tenant, doc_id, created_at) REFERENCES fk.docs ON DELETE CASCADE);
SELECT gb_tenant_isolation_enable('fk.refs');
INSERT INTO fk.docs VALUES (1, 7, '2025-03-09 10:00:00+00'), (2, 8, '2025-03-09 10:00:00+00');
SELECT gb_tenant_dedicate('fk.docs', 1) AS moved;
RESET ROLE;
INSERT INTO fk.refs VALUES (2, 1, 7, '2025-03-09 10:00:00+00');
SELECT * FROM gb_tenant_purge(1);
-- Tenant 1's own reference is no obstacle: its dedicated partitions, which
-- PostgreSQL would not drop while referenced, are emptied and detached
-- first (below).
UPDATE fk.refs SET tenant_id = 1;

-- With the tenant column in the key, nothing can cross tenants, and
-- CASCADE does what it says for the tenant's own rows.
SET ROLE regress_fk_app;
CREATE TABLE fk.sessions (tenant_id bigint NOT NULL, id bigint, bot_id bigint,
                          FOREIGN KEY (tenant_id, bot_id) REFERENCES fk.bots (tenant_id, bot_id) ON DELETE CASCADE);
SELECT gb_tenant_isolation_enable('fk.sessions');
BEGIN;
SELECT gb_set_tenant(2);
SAVEPOINT s;
INSERT INTO fk.sessions VALUES (2, 1, 100);
ROLLBACK TO s;
INSERT INTO fk.sessions VALUES (2, 2, 200);
COMMIT;
RESET ROLE;
INSERT INTO fk.sessions VALUES (1, 3, 100), (1, 4, 101);
SELECT table_name, rows_removed FROM gb_tenant_purge(1) ORDER BY table_name::text;
:all_rows;
SELECT tenant_id, id, bot_id FROM fk.sessions ORDER BY id;
SELECT tenant_id, id, parent_id FROM fk.folders ORDER BY id;
SELECT to_regclass('fk.docs_t1') AS docs_t1, (SELECT count(*) FROM fk.refs) AS refs,
       (SELECT string_agg(tenant_id::text, ',') FROM fk.docs) AS docs_tenants,
       (SELECT count(*) FROM gb_scale.partition_tenant WHERE parent = 'fk.docs'::regclass AND subtree IS NOT NULL) AS dedicated;

-- Clean up.
RESET gb_scale.test_now;
SET client_min_messages = warning;
DROP SCHEMA fk_other CASCADE;
DROP SCHEMA fk CASCADE;
RESET client_min_messages;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_fk_app;
DROP ROLE regress_fk_app;
DROP ROLE regress_fk_other;
DROP ROLE regress_fk_admin;
SELECT count(*) AS registrations_left FROM gb_scale.tenant_isolation;
