-- Plan tiers, per-tenant PostgreSQL settings and application configuration.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_ts_app;
DROP ROLE IF EXISTS regress_ts_admin;
RESET client_min_messages;
CREATE ROLE regress_ts_app;
CREATE ROLE regress_ts_admin IN ROLE gb_scale_admin;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_ts_app;

-- A view of what is stored, without the times.
CREATE VIEW ts_stored AS
SELECT * FROM (SELECT 'tenant ' || tenant_id AS owner, name, kind, value FROM gb_scale.tenant_setting
               UNION ALL
               SELECT 'tier ' || gb_label(tier), name, kind, value FROM gb_scale.plan_setting) s
 ORDER BY owner, name COLLATE "C";
GRANT SELECT ON ts_stored TO regress_ts_admin;
-- The SQLSTATE of a statement.
CREATE FUNCTION ts_try(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$f$;

-- Plans: a tenant is placed on a gb_plan_tier code; NULL removes it.
SET ROLE regress_ts_admin;
SELECT gb_tenant_plan(1, 2), gb_tenant_plan(2, 0), gb_tenant_plan(3, 3), gb_tenant_plan(4, 1);
SELECT gb_tenant_plan(4, 3);                            -- moves
SELECT gb_tenant_plan(3, NULL);                         -- removes
SELECT tenant_id, tier, gb_label(tier) AS label FROM gb_scale.tenant_plan ORDER BY tenant_id;
SELECT gb_tenant_tier(1) AS t1, gb_label(gb_tenant_tier(4)) AS t4, gb_tenant_tier(3) AS t3,
       gb_tenant_tier(99) AS unplaced;
SELECT gb_tenant_plan(5, gb_enum_code('gb_plan_tier', 'starter'));
-- Bad input changes nothing.
SELECT gb_tenant_plan(1, 4);
SELECT gb_tenant_plan(1, -1);
SELECT gb_tenant_plan(NULL, 1);
SELECT tenant_id, tier FROM gb_scale.tenant_plan ORDER BY tenant_id;

-- Settings: validated like SET, stored under their canonical name.
SELECT gb_tenant_setting(1, 'statement_timeout', '2s');
SELECT gb_tenant_setting(1, 'Work_Mem', '8MB');
SELECT gb_tenant_setting(1, 'search_path', 'tenant_1, public');
SELECT gb_tenant_setting(2, 'lock_timeout', '500ms');
SELECT gb_plan_setting(2, 'statement_timeout', '30s');              -- pro
SELECT gb_plan_setting(2, 'idle_in_transaction_session_timeout', '1min');
SELECT gb_plan_setting(0, 'statement_timeout', '5s');               -- free
SELECT gb_plan_setting(0, 'work_mem', '1MB');
-- Configuration: any name with a prefix of the application's own.
SELECT gb_tenant_setting(1, 'app.model', 'gpt-4o');
SELECT gb_tenant_setting(1, 'gb.channel.whatsapp.enabled', 'true');
SELECT gb_plan_setting(2, 'app.model', 'gpt-4o-mini');
SELECT gb_plan_setting(2, 'app.max_bots', '10');
SELECT gb_plan_setting(0, 'app.max_bots', '1');
SELECT gb_tenant_setting(1, 'app.empty', '');
SELECT * FROM ts_stored;

-- Bad values: 22023 naming the setting; nothing is stored.
-- The SQLSTATE of each (the messages follow).
SELECT stmt, ts_try(stmt) AS sqlstate
  FROM (VALUES
    ($$SELECT gb_tenant_setting(1, 'statement_timeout', 'soon')$$),
    ($$SELECT gb_tenant_setting(1, 'work_mem', '1')$$),
    ($$SELECT gb_tenant_setting(1, 'enable_seqscan', 'maybe')$$),
    ($$SELECT gb_plan_setting(1, 'lock_timeout', '-5')$$),
    ($$SELECT gb_tenant_setting(1, 'default_transaction_isolation', 'chaos')$$),
    ($$SELECT gb_tenant_setting(1, 'role', 'postgres')$$),
    ($$SELECT gb_tenant_setting(1, 'session_authorization', 'postgres')$$),
    ($$SELECT gb_tenant_setting(1, 'ROLE', 'postgres')$$),
    ($$SELECT gb_tenant_setting(1, 'gb_scale.tenant_id', '2')$$),
    ($$SELECT gb_tenant_setting(1, 'gb_scale.anything', 'x')$$),
    ($$SELECT gb_tenant_setting(1, 'transaction_isolation', 'serializable')$$),
    ($$SELECT gb_tenant_setting(1, 'log_statement', 'all')$$),
    ($$SELECT gb_tenant_setting(1, 'shared_buffers', '1GB')$$),
    ($$SELECT gb_plan_setting(3, 'log_min_duration_statement', '0')$$),
    ($$SELECT gb_tenant_setting(1, 'statement_timeoutt', '1s')$$),
    ($$SELECT gb_tenant_setting(1, 'plpgsql.nonexistent', '1')$$),
    ($$SELECT gb_tenant_setting(1, 'app.', 'x')$$),
    ($$SELECT gb_tenant_setting(1, 'app..x', 'x')$$),
    ($$SELECT gb_tenant_setting(1, 'app.bad name', 'x')$$),
    ($$SELECT gb_tenant_setting(1, '9app.x', 'x')$$),
    ($$SELECT gb_tenant_setting(1, NULL, 'x')$$),
    ($$SELECT gb_tenant_setting(NULL, 'app.x', 'x')$$),
    ($$SELECT gb_plan_setting(7, 'app.x', 'x')$$),
    ($$SELECT gb_plan_setting(NULL, 'app.x', 'x')$$)
  ) AS v(stmt);
SELECT gb_tenant_setting(1, 'statement_timeout', 'soon');
SELECT gb_tenant_setting(1, 'work_mem', '1');
SELECT gb_tenant_setting(1, 'enable_seqscan', 'maybe');
SELECT gb_plan_setting(1, 'lock_timeout', '-5');
SELECT gb_tenant_setting(1, 'default_transaction_isolation', 'chaos');
-- Refused names: 42501.
SELECT gb_tenant_setting(1, 'role', 'postgres');
SELECT gb_tenant_setting(1, 'session_authorization', 'postgres');
SELECT gb_tenant_setting(1, 'ROLE', 'postgres');
SELECT gb_tenant_setting(1, 'gb_scale.tenant_id', '2');
SELECT gb_tenant_setting(1, 'gb_scale.anything', 'x');
SELECT gb_tenant_setting(1, 'transaction_isolation', 'serializable');
SELECT gb_tenant_setting(1, 'log_statement', 'all');                 -- superuser
SELECT gb_tenant_setting(1, 'shared_buffers', '1GB');                -- postmaster
SELECT gb_plan_setting(3, 'log_min_duration_statement', '0');
-- Unknown names and bad configuration names.  A prefix is known once its
-- extension is loaded in the session (PL/pgSQL: by running a DO block).
DO $$BEGIN END$$;
SELECT gb_tenant_setting(1, 'statement_timeoutt', '1s');
SELECT gb_tenant_setting(1, 'plpgsql.nonexistent', '1');
SELECT gb_tenant_setting(1, 'app.', 'x');
SELECT gb_tenant_setting(1, 'app..x', 'x');
SELECT gb_tenant_setting(1, 'app.bad name', 'x');
SELECT gb_tenant_setting(1, '9app.x', 'x');
SELECT gb_tenant_setting(1, NULL, 'x');
SELECT gb_tenant_setting(NULL, 'app.x', 'x');
SELECT gb_plan_setting(7, 'app.x', 'x');
SELECT gb_plan_setting(NULL, 'app.x', 'x');
SELECT * FROM ts_stored;

-- Removing: NULL value; a name that is not stored is no error.
SELECT gb_tenant_setting(1, 'app.empty', NULL);
SELECT gb_tenant_setting(1, 'app.never_set', NULL);
SELECT gb_tenant_setting(1, 'ROLE', NULL);
SELECT count(*) AS app_empty FROM gb_scale.tenant_setting WHERE name = 'app.empty';

-- Everything in force for a tenant, and where it comes from.
SELECT * FROM gb_scale.tenant_settings(1) ORDER BY name COLLATE "C";
SELECT * FROM gb_scale.tenant_settings(2) ORDER BY name COLLATE "C";
SELECT * FROM gb_scale.tenant_settings(99) ORDER BY name COLLATE "C";
RESET ROLE;

-- The application: gb_set_tenant() applies the settings as SET LOCAL.
SET ROLE regress_ts_app;
SHOW statement_timeout;
BEGIN;
SELECT gb_set_tenant(1);
SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem,
       current_setting('search_path') AS search_path, current_setting('lock_timeout') AS lock_timeout,
       current_setting('idle_in_transaction_session_timeout') AS idle_timeout;
-- A later SET in the transaction still wins.
SET LOCAL statement_timeout = '7s';
SHOW statement_timeout;
SELECT gb_tenant_config('app.model') AS model, gb_tenant_config('app.max_bots') AS max_bots,
       gb_tenant_config('gb.channel.whatsapp.enabled') AS whatsapp,
       gb_tenant_config('app.missing') AS missing, gb_tenant_config('app.missing', 'fallback') AS with_default,
       gb_tenant_config('statement_timeout', 'not config') AS setting_is_not_config;
COMMIT;
-- Nothing survives the transaction.
SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem,
       current_setting('search_path') AS search_path;
SELECT gb_tenant_config('app.model') AS no_tenant, gb_tenant_config('app.model', 'default') AS no_tenant_default;

-- The same after a rollback.
BEGIN;
SELECT gb_set_tenant(1);
SHOW work_mem;
ROLLBACK;
SHOW work_mem;

-- Tier fallback: tenant 2 (free) has its own lock_timeout, the rest from its tier.
BEGIN;
SELECT gb_set_tenant(2);
SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem,
       current_setting('lock_timeout') AS lock_timeout;
SELECT gb_tenant_config('app.max_bots') AS max_bots, gb_tenant_config('app.model', 'none') AS model;
-- Another tenant in the same transaction: tenant 2's settings go, tenant 1's come.
SELECT gb_set_tenant(1);
SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem,
       current_setting('lock_timeout') AS lock_timeout;
-- A value the transaction set itself is left alone when the tenant changes.
SET LOCAL search_path = app_chosen, public;
SELECT gb_set_tenant(NULL);
SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('work_mem') AS work_mem,
       current_setting('search_path') AS search_path, gb_tenant_config('app.model') AS model;
COMMIT;
SHOW search_path;

-- A plain SET after the tenant's SET LOCAL is the session's, as in PostgreSQL.
BEGIN;
SELECT gb_set_tenant(1);
SET work_mem = '3MB';
COMMIT;
SHOW work_mem;
RESET work_mem;

-- A tenant in a subtransaction that rolls back takes its settings along.
BEGIN;
SAVEPOINT s;
SELECT gb_set_tenant(1);
SHOW work_mem;
ROLLBACK TO SAVEPOINT s;
SHOW work_mem;
SELECT gb_tenant_config('app.model', 'none') AS model;
COMMIT;
RESET ROLE;

-- Cache invalidation: a change is seen by the next command of the changing
-- transaction, and forgotten when it rolls back.
BEGIN;
SELECT gb_set_tenant(1);
SELECT gb_tenant_config('app.model') AS before_change;
SELECT gb_tenant_setting(1, 'app.model', 'claude');
SELECT gb_tenant_config('app.model') AS after_change;
SELECT gb_tenant_setting(1, 'app.model', NULL);
SELECT gb_tenant_config('app.model') AS tier_value_after_removal;
SELECT gb_tenant_plan(1, 0);
SELECT gb_tenant_config('app.model', 'none') AS free_tier_has_none, gb_tenant_config('app.max_bots') AS free_max_bots;
ROLLBACK;
BEGIN;
SELECT gb_set_tenant(1);
SELECT gb_tenant_config('app.model') AS after_rollback, gb_tenant_config('app.max_bots') AS max_bots;
COMMIT;
-- A tier's default changed in one transaction is seen by the next.
SELECT gb_plan_setting(2, 'app.max_bots', '20');
BEGIN;
SELECT gb_set_tenant(1);
SELECT gb_tenant_config('app.max_bots') AS max_bots;
COMMIT;
-- Rows written by hand (by the tables' owner) invalidate too, and are
-- checked again when applied.
INSERT INTO gb_scale.tenant_setting (tenant_id, name, kind, value) VALUES (6, 'app.x', 'config', 'by hand');
INSERT INTO gb_scale.tenant_setting (tenant_id, name, kind, value) VALUES (7, 'role', 'setting', 'postgres');
BEGIN;
SELECT gb_set_tenant(6);
SELECT gb_tenant_config('app.x') AS by_hand;
COMMIT;
BEGIN;
SELECT gb_set_tenant(7);
ROLLBACK;
TRUNCATE gb_scale.tenant_setting;
BEGIN;
SELECT gb_set_tenant(6);
SELECT gb_tenant_config('app.x', 'gone') AS after_truncate;
COMMIT;

-- Privileges: the application reads configuration, never writes it.
SET ROLE regress_ts_app;
SELECT gb_tenant_setting(1, 'app.model', 'x');
SELECT gb_plan_setting(1, 'app.model', 'x');
SELECT gb_tenant_plan(1, 1);
SELECT gb_tenant_tier(1);
SELECT * FROM gb_scale.tenant_settings(1);
SELECT count(*) FROM gb_scale.tenant_setting;
RESET ROLE;

-- Export and purge include the plan and the values.
SELECT gb_tenant_setting(1, 'work_mem', '8MB');
SELECT gb_tenant_setting(1, 'app.model', 'gpt-4o');
SELECT table_name, row_data - 'updated_at' AS row_data FROM gb_tenant_export(1) ORDER BY 1::text, 2::text;
SET ROLE regress_ts_app;
SELECT * FROM gb_tenant_export(1);
SELECT * FROM gb_tenant_purge(1);
SELECT * FROM gb_tenant_export(2);
RESET ROLE;
SET ROLE regress_ts_admin;
SELECT * FROM gb_tenant_purge(1) ORDER BY 1::text;
SELECT * FROM gb_tenant_export(1);
SELECT gb_tenant_tier(1);
RESET ROLE;

DROP VIEW ts_stored;
DROP FUNCTION ts_try(text);
TRUNCATE gb_scale.tenant_plan, gb_scale.tenant_setting, gb_scale.plan_setting;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_ts_app;
DROP ROLE regress_ts_app;
DROP ROLE regress_ts_admin;
