-- gb_scale function contract: every function of the extension with the
-- markings the planner and the executor trust.  A wrong marking is a bug
-- (wrong results from a folded or cached call, or a write in a parallel
-- worker), so the list is reviewed here, one function per line.
--
-- Why each function carries its labels (what its C code does):
--   gb_id_timestamp, gb_id_shard, gb_id_sequence, gb_id_decode, gb_id_from_time
--     immutable strict parallel safe: bit arithmetic on the arguments only; no
--     catalog, no setting, no shared memory; errors depend on the arguments only.
--   gb_next_id, gb_next_ids
--     volatile strict parallel unsafe, like nextval(): each call advances the
--     shared-memory counter and may write and flush the mark sequence
--     gb_scale.id_mark, a write that a parallel worker may not do.
--   gb_id_generator_status
--     volatile (values move between two calls in one statement) and parallel
--     safe: it only reads shared memory, under spinlocks and atomics, and
--     database names from the catalog; a parallel worker attaches to the same
--     shared memory and inherits the session's settings, so it sees the same.
--   gb_label, gb_enum_label, gb_enum_code, gb_enum_labels
--     stable strict parallel safe: read labels (through the per-backend cache,
--     loaded read-only); labels change only between statements, by a commit
--     that invalidates the domain.  A worker loads its own cache read-only.
--   gb_scale.enum_check
--     stable strict parallel safe: the CHECK of every enum domain, so it runs
--     wherever a value is coerced, workers included; its verdict depends on its
--     arguments alone, labels are only read to word the error.
--   gb_enum_create, gb_enum_add, gb_enum_rename
--     volatile parallel unsafe: they run DDL and write gb_scale.enum_label.
--     gb_enum_create and gb_enum_add are not strict: a NULL code means "the
--     default codes", and NULL names and labels are reported, not ignored.
--   gb_scale.enum_code_support
--     called by the planner directly, never by the executor: its markings are
--     not used, and it keeps the defaults.
--   gb_partition_create, gb_partition_ensure, gb_partition_retention,
--   gb_partition_forget, gb_tenant_dedicate, gb_tenant_retention,
--   gb_run_maintenance (a procedure)
--     volatile parallel unsafe: they run DDL, move rows and write
--     gb_scale.partition_config and partition_tenant.  Not strict where a
--     NULL means something: gb_partition_create (NULL granularity with a
--     profile, NULL premake/retention/tenant arguments), gb_partition_retention
--     and gb_tenant_retention (NULL retention: keep forever, or no override),
--     gb_run_maintenance (NULL: every registered table).  The others are
--     strict: a NULL table, tenant or time does nothing.
--   gb_partition_list, gb_scale.partition_stats
--     volatile strict parallel unsafe: they read the partition tree, the
--     sizes of relations (which move between two calls, like
--     pg_relation_size) and, for the view gb_scale.partition_status, the
--     default partition's rows; kept in the leader.
--   gb_shard_routes
--     stable parallel safe, like gb_shard_for_tenant: it reads the shard
--     directory by scans in one snapshot, writes nothing and keeps no state
--     between calls, so a worker answers as its leader would.
--   gb_tenant_plan, gb_tenant_setting, gb_plan_setting
--     volatile parallel unsafe: they write gb_scale.tenant_plan,
--     tenant_setting and plan_setting.  Not strict: a NULL tier or value
--     removes, a NULL tenant, tier or name is reported.
--   gb_tenant_limit, gb_plan_limit
--     volatile parallel unsafe: they write gb_scale.tenant_limit and
--     plan_limit.  Not strict: a NULL limit means "no value here" (both NULL
--     remove the row), a NULL tenant or tier is reported.
--   gb_scale.tenant_limits_usage
--     volatile (the counts move between two calls in one statement) strict
--     parallel safe: it only reads shared memory, under its lock and
--     spinlocks, and database names from the catalog, like
--     gb_scale.stat_tenants.
--   gb_tenant_quota, gb_plan_quota
--     volatile parallel unsafe: they write gb_scale.tenant_quota and
--     plan_quota and create the counting trigger on the table.  Not
--     strict: a NULL quota is no limit (both NULL remove the row), a NULL
--     tenant, tier or table is reported.
--   gb_scale.tenant_quota_usage
--     volatile (the counters move between two calls in one statement) strict
--     parallel safe: it only reads shared memory under its lock, like
--     gb_scale.tenant_limits_usage.
--   gb_tenant_tier, gb_tenant_config, gb_scale.tenant_settings
--     stable parallel safe: they read the tables through the per-backend
--     cache, loaded read-only (a worker loads its own); values change only
--     between commands, by a write whose trigger invalidates the cache.
--     gb_tenant_config reads the transaction's tenant, which reaches workers
--     as a setting; it is not strict: a NULL default_value is the default.
--   trigger and event-trigger functions (gb_scale.partition_on_drop removes
--   the configuration of a dropped table, gb_scale.partition_on_rename
--   follows a renamed tenant column, gb_scale.isolation_on_ddl gives a
--   table that joins an isolated tree its policies,
--   gb_scale.tenant_settings_changed invalidates the settings and quota
--   caches, gb_scale.quota_count counts and checks inserted rows: a
--   statement's, or on a partitioned table each row's, in any partition),
--   gb_scale.enum_create_builtin,
--   gb_scale.id_mark_init
--     volatile parallel unsafe: they write, and run only from triggers or the
--     install script.
--   gb_scale.stat_tenants, gb_scale.stat_tenants_info
--     volatile (the counters move between two calls in one statement) strict
--     parallel safe: they only read shared memory, under its lock and
--     spinlocks, and database names from the catalog; a parallel worker
--     attaches to the same shared memory and sees the same.
--   gb_stat_tenants_reset(), gb_stat_tenants_reset(bigint)
--     volatile parallel safe: they only remove entries from shared memory (no
--     database or backend-local state), which a worker reaches alike.  The
--     second is not strict: NULL names the "no tenant set" entry.
--   gb_scale.sizing_daily, gb_scale.sizing_rows, gb_scale.sizing_tenant_rows,
--   gb_scale.tenant_heavy
--     volatile strict (tenant_heavy: not strict, a NULL top is no limit)
--     parallel unsafe: they count as the table's owner, switching the user
--     and saving settings, which a parallel worker may not do.
--   gb_sizing_source
--     volatile parallel unsafe: it writes gb_scale.sizing_source; not
--     strict: a NULL table resets the kind to its default, a NULL kind is
--     reported.
--   gb_tenant_move (a procedure), gb_tenant_move_abort,
--   gb_tenant_move_finish,
--   gb_scale.tenant_move_subscribe, gb_scale.tenant_move_unsubscribe,
--   gb_scale.tenant_move_rewrite
--     volatile strict parallel unsafe: they create and drop publications,
--     subscriptions and replication slots, talk to another shard over libpq
--     and write gb_scale.tenant_move (gb_tenant_move_finish purges,
--     tenant_move_rewrite updates the moved rows).
--   gb_scale.tenant_move_fence, gb_scale.tenant_move_pace
--     trigger functions (not strict), volatile parallel unsafe: the fence
--     may wait on a move's lock, the pace sleeps in a table sync.
-- No function is SECURITY DEFINER or LEAKPROOF: everything runs with the
-- caller's rights (the generator switches to the mark's owner internally for
-- the one write it needs).  C functions resolve no names through search_path
-- and carry no SET clause; every other function pins
-- search_path = pg_catalog, pg_temp.  The lang column records an
-- implementation choice (the label guard, the drop event trigger and the
-- postgres_fdw set-up in PL/pgSQL, everything else in C): a function may
-- change language with a reviewed edit of its line, as long as the last
-- query stays empty.
\set VERBOSITY terse
SET search_path = public, pg_catalog;

CREATE VIEW gb_functions AS
SELECT p.oid, p.oid::regprocedure::text COLLATE "C" AS function, l.lanname
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'gb_scale';

SELECT f.function, pg_get_function_result(p.oid) AS returns,
       p.provolatile AS vol, p.proisstrict AS strict, p.proparallel AS par,
       p.prosecdef AS secdef, p.proleakproof AS leakproof, f.lanname AS lang,
       coalesce(array_to_string(p.proconfig, '; '), '-') AS config,
       coalesce(nullif(p.prosupport, 0)::regproc::text, '-') AS support
  FROM gb_functions f JOIN pg_proc p ON p.oid = f.oid
 ORDER BY f.function;

-- Defaults and output columns are part of the signatures callers use
-- (unaligned: one long line must not pad the others).
\pset format unaligned
SELECT f.function, pg_get_function_arguments(p.oid) AS arguments
  FROM gb_functions f JOIN pg_proc p ON p.oid = f.oid
 WHERE p.pronargdefaults > 0 OR p.proargmodes IS NOT NULL
 ORDER BY f.function;
\pset format aligned

-- The rule on its own, whatever the language: no SECURITY DEFINER, no
-- interpreted function without its search_path pinned, no C function with a
-- SET clause.  Must stay empty.
SELECT f.function, f.lanname, p.prosecdef, p.proconfig
  FROM gb_functions f JOIN pg_proc p ON p.oid = f.oid
 WHERE p.prosecdef
    OR (f.lanname <> 'c' AND p.proconfig IS DISTINCT FROM '{"search_path=pg_catalog, pg_temp"}')
    OR (f.lanname = 'c' AND p.proconfig IS NOT NULL)
 ORDER BY f.function;

DROP VIEW gb_functions;
RESET search_path;
