-- Renaming the columns of a registered table (issue 14, item 11): the
-- tenant column of tenant buckets and the control column.  Premake goes on
-- making partitions of the right shape, inserts keep working, and the
-- per-tenant retention still purges by the renamed tenant column.
\set VERBOSITY terse
SET timezone = 'UTC';
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS ren CASCADE;
RESET client_min_messages;
CREATE SCHEMA ren;
SET gb_scale.test_now = '2025-03-10 12:00+00';
CREATE TABLE ren.msgs (tenant_id bigint NOT NULL, created_at timestamptz NOT NULL, body text)
    PARTITION BY RANGE (created_at);
SELECT gb_partition_create('ren.msgs', 'created_at', '1 day', premake => '2 days',
                           tenant_column => 'tenant_id', tenant_buckets => 2) > 0 AS registered;
CREATE TABLE ren.lst (tenant_id bigint NOT NULL, created_at timestamptz NOT NULL) PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('ren.lst', 'created_at', '1 day', premake => '2 days', tenant_column => 'tenant_id') > 0 AS registered;

ALTER TABLE ren.msgs RENAME COLUMN tenant_id TO account_id;
ALTER TABLE ren.msgs RENAME COLUMN created_at TO sent_at;
ALTER TABLE ren.lst RENAME COLUMN tenant_id TO account_id;
ALTER TABLE ren.lst RENAME COLUMN created_at TO sent_at;
-- another column's rename changes nothing
ALTER TABLE ren.msgs RENAME COLUMN body TO text_body;
SELECT parent, tenant_column FROM gb_scale.partition_config WHERE parent::text LIKE 'ren.%' ORDER BY parent::text;
SELECT gb_tenant_retention('ren.msgs', 7, '3 days');
INSERT INTO ren.msgs VALUES (7, '2025-03-11 10:00+00', 'old'), (8, '2025-03-11 10:00+00', 'old');

SET gb_scale.test_now = '2025-03-20 12:00+00';
CALL gb_run_maintenance();
SELECT parent, last_error FROM gb_scale.partition_config WHERE parent::text LIKE 'ren.%' ORDER BY parent::text;
-- tenant 7's old row is purged by the renamed column, tenant 8's is kept
SELECT account_id, text_body FROM ren.msgs ORDER BY 1;
-- the newest partitions are split by the renamed tenant column
SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_class c
 WHERE c.relname IN ('msgs_p20250321', 'msgs_p20250322') ORDER BY 1;
INSERT INTO ren.msgs VALUES (7, '2025-03-21 10:00+00', 'a'), (8, '2025-03-22 10:00+00', 'b');
INSERT INTO ren.lst VALUES (7, '2025-03-21 10:00+00');
SELECT account_id, sent_at FROM ren.msgs WHERE text_body <> 'old' ORDER BY 1;
SELECT account_id, sent_at FROM ren.lst ORDER BY 1;

SET client_min_messages = warning;
DROP SCHEMA ren CASCADE;
RESET client_min_messages;
