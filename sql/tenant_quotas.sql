-- Row quotas per tenant and table (src/tenant_quotas.c)
SET client_min_messages = warning;
-- the quotas' clock, as maintenance's, for tests
SET gb_scale.test_now = '2026-03-15 10:00+00';
CREATE TABLE quota_notes (id bigserial, body text);
-- rows of a table without a tenant column count for the transaction's tenant
SELECT gb_tenant_quota(501, 'quota_notes', 5, NULL);
SELECT tgname FROM pg_trigger WHERE tgrelid = 'quota_notes'::regclass;
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) SELECT 'a' FROM generate_series(1, 3);
COMMIT;
-- over the quota: the whole statement is refused, nothing is written
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) SELECT 'b' FROM generate_series(1, 3);
ROLLBACK;
SELECT count(*) FROM quota_notes;
-- up to the quota is fine
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) VALUES ('c'), ('d');
COMMIT;
SELECT tenant_id, tbl, source, rows_per_day, rows_per_month, rows_today, reserved_today, rows_this_month
  FROM gb_tenant_quotas;
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) VALUES ('e');
ROLLBACK;
-- rows of no tenant, and of tenants without a quota, are not counted
INSERT INTO quota_notes (body) SELECT 'f' FROM generate_series(1, 10);
BEGIN;
SELECT gb_set_tenant(502);
INSERT INTO quota_notes (body) SELECT 'g' FROM generate_series(1, 10);
COMMIT;
-- a larger quota: rolled-back rows and a savepoint's rolled-back rows give theirs back
SELECT gb_tenant_quota(501, 'quota_notes', 8, 100);
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) SELECT 'h' FROM generate_series(1, 3);
SELECT rows_today, reserved_today FROM gb_tenant_quotas WHERE tenant_id = 501;
ROLLBACK;
SELECT rows_today, reserved_today FROM gb_tenant_quotas WHERE tenant_id = 501;
BEGIN;
SELECT gb_set_tenant(501);
SAVEPOINT s;
INSERT INTO quota_notes (body) SELECT 'i' FROM generate_series(1, 3);
ROLLBACK TO SAVEPOINT s;
INSERT INTO quota_notes (body) VALUES ('j');
SAVEPOINT t;
INSERT INTO quota_notes (body) VALUES ('k');
RELEASE SAVEPOINT t;
COMMIT;
SELECT rows_today, reserved_today, rows_this_month FROM gb_tenant_quotas WHERE tenant_id = 501;
-- COPY is counted and refused alike
BEGIN;
SELECT gb_set_tenant(501);
COPY quota_notes (body) FROM stdin;
l
m
n
\.
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(501);
COPY quota_notes (body) FROM stdin;
l
\.
COMMIT;
SELECT rows_today, reserved_today FROM gb_tenant_quotas WHERE tenant_id = 501;
-- the next day starts at zero; the month goes on, up to its quota
SET gb_scale.test_now = '2026-03-16 00:00+00';
SELECT day, rows_today, rows_this_month FROM gb_tenant_quotas WHERE tenant_id = 501;
SELECT gb_tenant_quota(501, 'quota_notes', 8, 13);
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) SELECT 'o' FROM generate_series(1, 6);
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) SELECT 'o' FROM generate_series(1, 4);
COMMIT;
SELECT day, rows_today, rows_this_month FROM gb_tenant_quotas WHERE tenant_id = 501;
-- a statement of an earlier clock counts for the counter's period
SET gb_scale.test_now = '2026-03-15 23:00+00';
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) VALUES ('p');
COMMIT;
SELECT day, rows_today, rows_this_month FROM gb_tenant_quotas WHERE tenant_id = 501;
SET gb_scale.test_now = '2026-04-01 00:00+00';
SELECT day, rows_today, rows_this_month FROM gb_tenant_quotas WHERE tenant_id = 501;
BEGIN;
SELECT gb_set_tenant(501);
INSERT INTO quota_notes (body) SELECT 'q' FROM generate_series(1, 8);
COMMIT;
SELECT day, rows_today, rows_this_month FROM gb_tenant_quotas WHERE tenant_id = 501;

-- a tenant column: each row counts for its tenant; a plan tier's quota
CREATE TABLE quota_orders (id bigserial, tenant_id bigint NOT NULL, amount int);
SELECT gb_tenant_isolation_enable('quota_orders', tenant_column => 'tenant_id');
SELECT gb_tenant_plan(511, 1);
SELECT gb_tenant_plan(512, 1);
SELECT gb_plan_quota(1, 'quota_orders', NULL, 4);
-- a tenant's own row replaces its tier's, NULL being no limit for that period
SELECT gb_tenant_quota(513, 'quota_orders', 2, NULL);
INSERT INTO quota_orders (tenant_id, amount) VALUES (511, 1), (511, 2), (512, 3), (514, 4);
-- one tenant over its quota refuses the whole statement
INSERT INTO quota_orders (tenant_id, amount) VALUES (512, 5), (511, 6), (511, 7), (511, 8);
INSERT INTO quota_orders (tenant_id, amount) VALUES (513, 9), (513, 10), (513, 11);
SELECT tenant_id, count(*) FROM quota_orders GROUP BY 1 ORDER BY 1;
SELECT tenant_id, tbl, source, rows_per_day, rows_per_month, rows_today, rows_this_month
  FROM gb_tenant_quotas WHERE tbl = 'quota_orders'::regclass ORDER BY 1;

-- a partitioned table: the quota on its root covers the tree
CREATE TABLE quota_events (tenant_id bigint NOT NULL, at date NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE quota_events_a PARTITION OF quota_events FOR VALUES IN (521);
CREATE TABLE quota_events_b PARTITION OF quota_events DEFAULT;
SELECT gb_tenant_quota(521, 'quota_events_a', 1, NULL);
SELECT gb_tenant_quota(521, 'quota_events', 3, NULL);
BEGIN;
SELECT gb_set_tenant(521);
INSERT INTO quota_events VALUES (521, '2026-01-01'), (521, '2026-01-02');
INSERT INTO quota_events VALUES (521, '2026-01-03'), (521, '2026-01-04');
ROLLBACK;
SELECT rows_today FROM gb_tenant_quotas WHERE tbl = 'quota_events'::regclass;
-- rows inserted into a partition by name count against the root's quota,
-- INSERT and COPY alike, and are refused over it (nothing written)
BEGIN;
SELECT gb_set_tenant(521);
INSERT INTO quota_events_a VALUES (521, '2026-01-05'), (521, '2026-01-06');
COPY quota_events_a FROM stdin;
521	2026-01-07
\.
SELECT rows_today, reserved_today FROM gb_tenant_quotas WHERE tbl = 'quota_events'::regclass;
COMMIT;
BEGIN;
SELECT gb_set_tenant(521);
INSERT INTO quota_events_a VALUES (521, '2026-01-08');
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(521);
COPY quota_events_a FROM stdin;
521	2026-01-09
\.
ROLLBACK;
SELECT count(*) FROM quota_events;
SELECT tenant_id, rows_today, reserved_today FROM gb_tenant_quotas WHERE tbl = 'quota_events'::regclass;
-- the row trigger is cloned to the partitions; none is made on a partition
SELECT c.relname, t.tgname, t.tgparentid <> 0 AS cloned
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgname LIKE 'gb_quota%' AND c.relname LIKE 'quota_events%' ORDER BY 1;

-- a quota on a partitioned table covers partitions made after it, at any
-- depth (CREATE TABLE ... PARTITION OF, ATTACH PARTITION), each row
-- counting for the tenant of the root's registered tenant column even where
-- a partition's columns are in another order; a table attached with rows
-- brings them uncounted (a quota counts inserts)
CREATE TABLE quota_msgs (tenant_id bigint NOT NULL, kind int NOT NULL, body text)
  PARTITION BY LIST (kind);
SELECT gb_tenant_isolation_enable('quota_msgs', tenant_column => 'tenant_id');
SELECT gb_tenant_quota(541, 'quota_msgs', 4, NULL);
SELECT gb_tenant_quota(542, 'quota_msgs', 100, NULL);
CREATE TABLE quota_msgs_1 PARTITION OF quota_msgs FOR VALUES IN (1);
CREATE TABLE quota_msgs_2 PARTITION OF quota_msgs FOR VALUES IN (2) PARTITION BY LIST (tenant_id);
CREATE TABLE quota_msgs_2a PARTITION OF quota_msgs_2 FOR VALUES IN (541);
CREATE TABLE quota_msgs_3 (body text, kind int NOT NULL, tenant_id bigint NOT NULL);
INSERT INTO quota_msgs_3 VALUES ('old', 3, 541), ('old', 3, 541), ('old', 3, 541);
ALTER TABLE quota_msgs ATTACH PARTITION quota_msgs_3 FOR VALUES IN (3);
SELECT tenant_id, rows_today FROM gb_tenant_quotas WHERE tbl = 'quota_msgs'::regclass ORDER BY 1;
INSERT INTO quota_msgs_1 VALUES (541, 1, 'a'), (542, 1, 'b');
INSERT INTO quota_msgs_2 VALUES (541, 2, 'c');
INSERT INTO quota_msgs_2a VALUES (541, 2, 'd');
INSERT INTO quota_msgs_3 VALUES ('e', 3, 542), ('f', 3, 542);
SELECT tenant_id, rows_today FROM gb_tenant_quotas WHERE tbl = 'quota_msgs'::regclass ORDER BY 1;
-- 541 is at 3 of 4: two more rows are refused (the message counts the
-- statement's row already reserved as its own), one fits, then none does
INSERT INTO quota_msgs_3 VALUES ('g', 3, 542), ('h', 3, 541), ('i', 3, 541);
INSERT INTO quota_msgs VALUES (541, 1, 'j');
INSERT INTO quota_msgs_2a VALUES (541, 2, 'k');
SELECT tenant_id, count(*) FROM quota_msgs GROUP BY 1 ORDER BY 1;
SELECT tenant_id, rows_today, reserved_today FROM gb_tenant_quotas WHERE tbl = 'quota_msgs'::regclass ORDER BY 1;
-- a detached partition leaves the quota behind
ALTER TABLE quota_msgs DETACH PARTITION quota_msgs_3;
INSERT INTO quota_msgs_3 VALUES ('j', 3, 541);
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'quota_msgs_3'::regclass;
-- a table with its own quota can become a partition of a tree with one:
-- rows inserted into it by name count for both (for it: the transaction's
-- tenant, as it has no tenant column registered of its own)
SELECT gb_tenant_quota(541, 'quota_msgs_3', 10, NULL);
ALTER TABLE quota_msgs ATTACH PARTITION quota_msgs_3 FOR VALUES IN (3);
BEGIN;
SELECT gb_set_tenant(541);
INSERT INTO quota_msgs_3 VALUES ('l', 3, 541);
ROLLBACK;
SELECT gb_tenant_quota(541, 'quota_msgs', 5, NULL);
BEGIN;
SELECT gb_set_tenant(541);
INSERT INTO quota_msgs_3 VALUES ('l', 3, 541);
COMMIT;
SELECT tenant_id, tbl, rows_today FROM gb_tenant_quotas
 WHERE tbl IN ('quota_msgs'::regclass, 'quota_msgs_3'::regclass) ORDER BY 1, tbl::text;
DROP TABLE quota_msgs;

-- partitions made by gb_scale's maintenance are covered
SET gb_scale.test_now = '2026-03-10 12:00+00';
CREATE TABLE quota_log (at timestamptz NOT NULL, body text) PARTITION BY RANGE (at);
SELECT gb_partition_create('quota_log', 'at', '1 day', premake => '1 day',
                           start_at => '2026-03-10 00:00+00') AS parts;
SELECT gb_tenant_quota(551, 'quota_log', 2, NULL);
SET gb_scale.test_now = '2026-03-13 12:00+00';
CALL gb_run_maintenance('quota_log');
SELECT c.relname, count(t.oid) AS quota_triggers
  FROM pg_partition_tree('quota_log') p JOIN pg_class c ON c.oid = p.relid
  LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = 'gb_quota_count_tree'
 GROUP BY 1 ORDER BY 1;
BEGIN;
SELECT gb_set_tenant(551);
INSERT INTO quota_log_p20260313 VALUES ('2026-03-13 13:00+00', 'a'), ('2026-03-13 14:00+00', 'b');
INSERT INTO quota_log_p20260313 VALUES ('2026-03-13 15:00+00', 'c');
ROLLBACK;
SELECT day, rows_today FROM gb_tenant_quotas WHERE tbl = 'quota_log'::regclass;
DROP TABLE quota_log;
SET gb_scale.test_now = '2026-04-01 00:00+00';

-- a tenant column registered after the quota was first used: rows count
-- for their tenants from the next statement on
CREATE TABLE quota_late (tenant_id bigint NOT NULL, body text);
SELECT gb_tenant_quota(561, 'quota_late', 2, NULL);
BEGIN;
SELECT gb_set_tenant(561);
INSERT INTO quota_late VALUES (562, 'a');
COMMIT;
SELECT gb_tenant_isolation_enable('quota_late', tenant_column => 'tenant_id');
INSERT INTO quota_late VALUES (561, 'b'), (561, 'c'), (561, 'd');
INSERT INTO quota_late VALUES (561, 'b');
SELECT tenant_id, rows_today FROM gb_tenant_quotas WHERE tbl = 'quota_late'::regclass;
DROP TABLE quota_late;

-- refused arguments
SELECT gb_tenant_quota(501, 'quota_notes', 0, NULL);
SELECT gb_plan_quota(7, 'quota_notes', 1, NULL);
SELECT gb_plan_quota(NULL, 'quota_notes', 1, NULL);
SELECT gb_tenant_quota(501, 'pg_class', 1, NULL);
CREATE VIEW quota_view AS SELECT 1 AS x;
SELECT gb_tenant_quota(501, 'quota_view', 1, NULL);
-- the trigger is not meant to be called otherwise
CREATE TABLE quota_misuse (x int);
CREATE TRIGGER misuse AFTER INSERT ON quota_misuse FOR EACH ROW EXECUTE FUNCTION gb_scale.quota_count();
INSERT INTO quota_misuse VALUES (1);

-- both NULL remove a row; a dropped table's rows go with it
SELECT gb_tenant_quota(513, 'quota_orders', NULL, NULL);
SELECT tenant_id, source, rows_per_day, rows_per_month FROM gb_tenant_quotas
 WHERE tbl = 'quota_orders'::regclass ORDER BY 1;
DROP TABLE quota_orders, quota_notes, quota_events, quota_misuse;
DROP VIEW quota_view;
SELECT count(*) FROM gb_scale.tenant_quota;
SELECT count(*) FROM gb_scale.plan_quota;
SELECT gb_tenant_plan(511, NULL);
SELECT gb_tenant_plan(512, NULL);

-- a gb_scale_admin member sets quotas on its own table; an ordinary role
-- with no right on gb_scale's tables inserts and is counted and refused
CREATE ROLE regress_quota_admin IN ROLE gb_scale_admin;
CREATE ROLE regress_quota_app;
CREATE SCHEMA quota_app AUTHORIZATION regress_quota_admin;
GRANT USAGE ON SCHEMA quota_app TO regress_quota_app;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_quota_app;
SET ROLE regress_quota_admin;
CREATE TABLE quota_app.items (id serial, body text);
GRANT INSERT, SELECT ON quota_app.items TO regress_quota_app;
GRANT USAGE ON SEQUENCE quota_app.items_id_seq TO regress_quota_app;
SELECT gb_tenant_quota(531, 'quota_app.items', 2, NULL);
SET ROLE regress_quota_app;
BEGIN;
SELECT gb_set_tenant(531);
INSERT INTO quota_app.items (body) VALUES ('a'), ('b');
COMMIT;
BEGIN;
SELECT gb_set_tenant(531);
INSERT INTO quota_app.items (body) VALUES ('c');
ROLLBACK;
RESET ROLE;
SELECT tenant_id, rows_today FROM gb_tenant_quotas WHERE tbl = 'quota_app.items'::regclass;
DROP SCHEMA quota_app CASCADE;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_quota_app;
DROP ROLE regress_quota_app;
DROP ROLE regress_quota_admin;
SELECT count(*) FROM gb_scale.tenant_quota;
RESET gb_scale.test_now;
