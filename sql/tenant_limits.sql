-- Resource limits of tenants and plan tiers: concurrent transactions and
-- statements per second.  The concurrency limit across sessions is in
-- specs/tenant_limits_xacts.spec, a killed backend in test/t/180.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_tl_app;
DROP ROLE IF EXISTS regress_tl_admin;
RESET client_min_messages;
CREATE ROLE regress_tl_app;
CREATE ROLE regress_tl_admin IN ROLE gb_scale_admin;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_tl_app;

CREATE VIEW tl_stored AS
SELECT * FROM (SELECT 'tenant ' || tenant_id AS owner, max_xacts, max_statements_per_second FROM gb_scale.tenant_limit
               UNION ALL
               SELECT 'tier ' || gb_label(tier), max_xacts, max_statements_per_second FROM gb_scale.plan_limit) s
 ORDER BY owner COLLATE "C";
GRANT SELECT ON tl_stored TO regress_tl_admin;

-- Storing: per tenant and per tier; NULL is "no value here"; both NULL remove.
SET ROLE regress_tl_admin;
SELECT gb_tenant_limit(1, 3, 100), gb_tenant_limit(2, NULL, 50), gb_tenant_limit(3, 2, NULL);
SELECT gb_plan_limit(0, 1, 10), gb_plan_limit(3, NULL, 1000);
SELECT gb_tenant_limit(1, 4, 100);                      -- changes
SELECT gb_tenant_limit(3, NULL, NULL);                  -- removes
SELECT gb_plan_limit(3, NULL, NULL);                    -- removes
SELECT * FROM tl_stored;
-- Bad input changes nothing.
SELECT gb_tenant_limit(1, 0, 5);
SELECT gb_tenant_limit(1, 5, -1);
SELECT gb_tenant_limit(NULL, 5, 5);
SELECT gb_plan_limit(4, 1, 1);
SELECT gb_plan_limit(-1, 1, 1);
SELECT gb_plan_limit(NULL, 1, 1);
SELECT * FROM tl_stored;
RESET ROLE;

-- Only gb_scale_admin sets limits or reads them; the tables are written
-- through the functions only.
SET ROLE regress_tl_app;
SELECT gb_tenant_limit(1, NULL, NULL);
SELECT gb_plan_limit(0, NULL, NULL);
SELECT * FROM gb_scale.tenant_limit;
RESET ROLE;
SET ROLE regress_tl_admin;
INSERT INTO gb_scale.tenant_limit (tenant_id, max_xacts) VALUES (9, 1);
DELETE FROM gb_scale.plan_limit;
RESET ROLE;
SELECT * FROM tl_stored;
-- gb_scale.tenant_wait_timeout is a superuser's setting.
SET ROLE regress_tl_app;
SET gb_scale.tenant_wait_timeout = '1s';
RESET ROLE;

-- Statements per second: with 1 per second, the statement that sets the
-- tenant takes the only token and the next one in the same second is
-- refused, naming the tenant, the limit and the current value.
SELECT gb_tenant_limit(10, NULL, 1);
SET ROLE regress_tl_app;
BEGIN;
SELECT gb_set_tenant(10);
SELECT 'second statement' AS refused;
ROLLBACK;
-- Waiting: the next statement waits for the next token, then runs.
RESET ROLE;
SET gb_scale.tenant_wait_timeout = '30s';
SET ROLE regress_tl_app;
BEGIN;
SELECT gb_set_tenant(10);
SELECT 'waited for its token' AS admitted;
COMMIT;
RESET ROLE;
RESET gb_scale.tenant_wait_timeout;

-- A tenant without a value of its own has its tier's; its own wins.
SELECT gb_tenant_plan(11, 0), gb_tenant_plan(12, 0), gb_tenant_limit(12, NULL, 1000);
SELECT gb_plan_limit(0, NULL, 1);
SET ROLE regress_tl_app;
BEGIN;
SELECT gb_set_tenant(11);
SELECT 'tier limit' AS refused;
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(12);
SELECT 'own limit' AS admitted, 2 AS a;
SELECT 'own limit' AS admitted, 3 AS a;
COMMIT;
RESET ROLE;

-- Changes follow transactions: a rolled-back limit is never applied, a
-- removed one no longer is, and a change is seen by the next command.
SELECT gb_plan_limit(0, NULL, NULL);
BEGIN;
SELECT gb_tenant_limit(13, NULL, 1);
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(13);
SELECT 'no limit after rollback' AS admitted, 2 AS a;
SELECT 'no limit after rollback' AS admitted, 3 AS a;
COMMIT;
BEGIN;
SELECT gb_set_tenant(13);
SELECT gb_tenant_limit(13, NULL, 1);
SELECT 'limit seen at the next command: its one token' AS admitted;
SELECT 'limit seen at the next command' AS refused;
ROLLBACK;

-- One transaction at a time is this session's: the limit of 1 admits it,
-- and a later tenant in the same transaction takes its place.
SELECT gb_tenant_limit(14, 1, NULL), gb_tenant_limit(15, 1, NULL);
BEGIN;
SELECT gb_set_tenant(14);
SELECT gb_set_tenant(14);
SELECT gb_set_tenant(15);
-- gb_tenant_limits_usage: the transaction counts for tenant 15 now; tenant
-- 10 has a rate bucket (its tokens move with the clock: only their range).
SELECT tenant_id, running_xacts FROM gb_tenant_limits_usage
 WHERE database = current_database() AND tenant_id IN (14, 15) ORDER BY tenant_id;
SELECT tenant_id, running_xacts, tokens BETWEEN 0 AND 1 AS tokens_in_burst
  FROM gb_tenant_limits_usage WHERE database = current_database() AND tenant_id = 10;
-- with no tenant set, the transaction counts for none
SELECT gb_set_tenant(NULL);
SELECT count(*) AS running_for_15 FROM gb_tenant_limits_usage
 WHERE database = current_database() AND tenant_id = 15 AND running_xacts > 0;
COMMIT;
-- pg_monitor and gb_scale_admin read it; others do not.
SET ROLE regress_tl_app;
SELECT count(*) FROM gb_tenant_limits_usage;
RESET ROLE;

-- Clean up.
SELECT gb_tenant_limit(t, NULL, NULL) FROM generate_series(1, 15) t;
SELECT gb_tenant_plan(t, NULL) FROM generate_series(11, 12) t;
SELECT * FROM tl_stored;
DROP VIEW tl_stored;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_tl_app;
DROP ROLE regress_tl_app;
DROP ROLE regress_tl_admin;
