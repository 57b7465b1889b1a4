/*-------------------------------------------------------------------------
 *
 * partition_maint.c
 *	  The registrations (gb_scale.partition_config, partition_tenant) and
 *	  the maintenance pass over them.
 *
 * A pass first looks at every table without changing anything; tables with
 * nothing to do are recorded together in one statement, which keeps a pass
 * over hundreds of idle tables cheap.  Each table with work then gets its own
 * subtransaction (and, when the caller allows, its own transaction), run as
 * the table's owner in a security-restricted operation with search_path
 * pinned and a short lock_timeout: a failure, a lock that is not free, is
 * recorded in last_error and retried on the next pass, and never stops the
 * other tables.
 *
 *-------------------------------------------------------------------------
 */
#include "partition.h"
#include "citus_glue.h"
#include "routing.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* The clock of maintenance: gb_scale.test_now when a superuser set it. */
TimestampTz
gb_maintenance_now(void)
{
	if (gb_test_now != NULL && gb_test_now[0] != '\0')
		return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(gb_test_now),
													   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	return GetCurrentTimestamp();
}

static Oid
gb_internal_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, false);
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation %s.%s does not exist", GB_INTERNAL_SCHEMA, relname),
				 errhint("Is the gb_scale extension installed in this database?")));
	return relid;
}

Oid
gb_rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Become OWNER for work done on its table, as VACUUM does: a
 * security-restricted operation (no SET ROLE, no temporary objects), with
 * search_path pinned and maintenance's lock_timeout.  gb_as_owner_end (or
 * the (sub)transaction's abort) undoes every setting changed in the scope,
 * also a plain SET made by the owner's code (a trigger, a policy, an index
 * expression): it must never reach the caller's session.
 */
void
gb_as_owner_begin(Oid owner, Oid *save_userid, int *save_sec, int *nestlevel)
{
	GetUserIdAndSecContext(save_userid, save_sec);
	SetUserIdAndSecContext(owner, *save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	*nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("lock_timeout", psprintf("%d", gb_maintenance_lock_timeout),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

void
gb_as_owner_end(Oid save_userid, int save_sec, int nestlevel)
{
	AtEOXact_GUC(false, nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * Run SQL on the extension's own tables as their owner: the caller need not
 * be able to write them, and only fully qualified names are used.
 */
void
gb_catalog_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;

	gb_as_owner_begin(gb_rel_owner(gb_internal_relid(GB_PARTITION_CONFIG_TABLE)),
					  &save_userid, &save_sec, &nestlevel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", sql);
	SPI_finish();
	gb_as_owner_end(save_userid, save_sec, nestlevel);
	CommandCounterIncrement();
}

static GbRetentionMode
gb_mode_from_text(const char *mode)
{
	if (strcmp(mode, "detach") == 0)
		return GB_RETAIN_DETACH;
	if (strcmp(mode, "archive") == 0)
		return GB_RETAIN_ARCHIVE;
	return GB_RETAIN_DROP;
}

/* Registrations, in parent order; only PARENT's when it is valid. */
List *
gb_config_load(Oid parent)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(parent)};
	List	   *result = NIL;

	(void) gb_internal_relid(GB_PARTITION_CONFIG_TABLE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT c.parent::pg_catalog.oid, layout, granularity, premake, retention,"
							  " retention_mode, archive_schema, tenant_buckets, tenant_column,"
							  " default_partition, time_zone,"
							  " EXISTS (SELECT FROM gb_scale.partition_tenant t"
							  " WHERE t.parent::pg_catalog.oid OPERATOR(pg_catalog.=) c.parent::pg_catalog.oid),"
							  " EXISTS (SELECT FROM gb_scale.partition_retiring r"
							  " WHERE r.parent::pg_catalog.oid OPERATOR(pg_catalog.=) c.parent::pg_catalog.oid)"
							  " FROM gb_scale.partition_config c"
							  " WHERE $1 OPERATOR(pg_catalog.=) 0::pg_catalog.oid"
							  " OR c.parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
							  " ORDER BY c.parent::pg_catalog.oid",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read gb_scale.partition_config");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(caller);
		GbPartConfig *cfg = palloc0(sizeof(GbPartConfig));
		bool		isnull;
		Datum		d;
		char	   *text;

		cfg->parent = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		text = SPI_getvalue(tup, desc, 2);
		cfg->is_list = text != NULL && strcmp(text, "list") == 0;
		d = SPI_getbinval(tup, desc, 3, &isnull);
		if (isnull || !gb_granularity_from_interval(DatumGetIntervalP(d), &cfg->granularity))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("registration of table %u has an unsupported granularity", cfg->parent)));
		d = SPI_getbinval(tup, desc, 4, &isnull);
		cfg->premake = *DatumGetIntervalP(d);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		cfg->has_retention = !isnull;
		if (!isnull)
			cfg->retention = *DatumGetIntervalP(d);
		text = SPI_getvalue(tup, desc, 6);
		cfg->retention_mode = gb_mode_from_text(text ? text : "drop");
		cfg->archive_schema = SPI_getvalue(tup, desc, 7);
		d = SPI_getbinval(tup, desc, 8, &isnull);
		cfg->tenant_buckets = isnull ? 0 : DatumGetInt32(d);
		cfg->tenant_column = SPI_getvalue(tup, desc, 9);
		d = SPI_getbinval(tup, desc, 10, &isnull);
		cfg->default_partition = !isnull && DatumGetBool(d);
		cfg->time_zone = SPI_getvalue(tup, desc, 11);
		cfg->has_tenant_rows = DatumGetBool(SPI_getbinval(tup, desc, 12, &isnull));
		cfg->has_retiring = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
		result = lappend(result, cfg);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return result;
}

List *
gb_tenants_load(Oid parent)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(parent)};
	List	   *result = NIL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT tenant_id, retention, subtree::pg_catalog.oid, purged_before"
							  " FROM gb_scale.partition_tenant"
							  " WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1 ORDER BY tenant_id",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read gb_scale.partition_tenant");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(caller);
		GbTenantRow *t = palloc0(sizeof(GbTenantRow));
		bool		isnull;
		Datum		d;

		t->tenant_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		t->has_retention = !isnull;
		if (!isnull)
			t->retention = *DatumGetIntervalP(d);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		t->subtree = isnull ? InvalidOid : DatumGetObjectId(d);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		t->has_purged_before = !isnull;
		if (!isnull)
			t->purged_before = DatumGetTimestampTz(d);
		result = lappend(result, t);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return result;
}

/*
 * Partitions detached concurrently but not yet retired.  The worker records
 * one in the transaction that detaches it and forgets it in the one that
 * retires it, so that a failure in between is retried by the next pass.
 */
void
gb_retiring_add(Oid parent, Oid partition)
{
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(parent), ObjectIdGetDatum(partition)};

	gb_catalog_exec("INSERT INTO gb_scale.partition_retiring VALUES ($1::pg_catalog.regclass, $2::pg_catalog.regclass)"
					" ON CONFLICT DO NOTHING",
					2, types, values, NULL);
}

void
gb_retiring_remove(Oid partition)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(partition)};

	gb_catalog_exec("DELETE FROM gb_scale.partition_retiring"
					" WHERE partition::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
					1, types, values, NULL);
}

static List *
gb_retiring_load(Oid parent)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(parent)};
	List	   *result = NIL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT partition::pg_catalog.oid FROM gb_scale.partition_retiring"
							  " WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
							  " ORDER BY partition::pg_catalog.oid",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read gb_scale.partition_retiring");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext spi = MemoryContextSwitchTo(caller);

		result = lappend_oid(result, relid);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return result;
}

static void
gb_tenant_record_purge(Oid parent, int64 tenant_id, TimestampTz purged_before)
{
	Oid			types[3] = {OIDOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[3] = {ObjectIdGetDatum(parent), Int64GetDatum(tenant_id),
	TimestampTzGetDatum(purged_before)};

	gb_catalog_exec("UPDATE gb_scale.partition_tenant SET purged_before = $3"
					" WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
					" AND tenant_id OPERATOR(pg_catalog.=) $2",
					3, types, values, NULL);
}

void
gb_config_record(Oid parent, TimestampTz now, const char *error)
{
	Oid			types[3] = {OIDOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[3] = {ObjectIdGetDatum(parent), TimestampTzGetDatum(now),
	error ? CStringGetTextDatum(error) : (Datum) 0};
	char		nulls[3] = {' ', ' ', error ? ' ' : 'n'};

	gb_catalog_exec("UPDATE gb_scale.partition_config SET last_run = $2,"
					" last_success = CASE WHEN $3 IS NULL THEN $2 ELSE last_success END,"
					" last_error = $3"
					" WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
					3, types, values, nulls);
}

/* Record a successful pass that had nothing to do, for many tables at once. */
void
gb_config_record_many(List *parents, TimestampTz now)
{
	Oid			types[2] = {OIDARRAYOID, TIMESTAMPTZOID};
	Datum		values[2];
	Datum	   *oids;
	int			n = list_length(parents);
	ListCell   *lc;
	int			i = 0;

	if (n == 0)
		return;
	oids = palloc(sizeof(Datum) * n);
	foreach(lc, parents)
		oids[i++] = ObjectIdGetDatum(lfirst_oid(lc));
	values[0] = PointerGetDatum(construct_array(oids, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	values[1] = TimestampTzGetDatum(now);
	gb_catalog_exec("UPDATE gb_scale.partition_config SET last_run = $2, last_success = $2, last_error = NULL"
					" WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)",
					2, types, values, NULL);
}

/*
 * Whether a plain table holds any row visible now; partitioned ones and
 * Citus tables (whose rows are in their shards) by SQL.
 */
bool
gb_has_rows(Oid relid)
{
	Relation	rel;
	bool		found;

	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE || gb_citus_table(relid))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(psprintf("SELECT FROM %s LIMIT 1", gb_qualified_name(relid)), true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read %s", gb_qualified_name(relid));
		found = SPI_processed > 0;
		SPI_finish();
		return found;
	}
	rel = table_open(relid, AccessShareLock);
	{
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
		TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
		TupleTableSlot *slot = table_slot_create(rel, NULL);

		found = table_scan_getnextslot(scan, ForwardScanDirection, slot);
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(scan);
		UnregisterSnapshot(snap);
	}
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Control values a drain can give a partition, as keys [*low, *high): years 2
 * to 294274 (snowflakes: from their epoch to two years before their last
 * millisecond), so that a period and the next one stay inside the type's
 * range in any time zone.  NULL, infinity and values beyond stay in the
 * default partition.
 */
static void
gb_drain_limits(const GbPeriodCtx *ctx, int64 *low, int64 *high)
{
	if (ctx->kind == GB_CTL_SNOWFLAKE)
	{
		*low = 0;
		*high = (GB_MAX_TIME_MS - INT64CONST(2) * 366 * SECS_PER_DAY * 1000) << GB_TIME_SHIFT;
		return;
	}
	*low = (int64) (date2j(2, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
	*high = (int64) (date2j(294275, 1, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
}

/*
 * Smallest control value in the default partition within [from, below), as
 * a key; false when none.
 */
static bool
gb_default_next_key(Oid deflt, const GbPeriodCtx *ctx, int64 from, int64 below, int64 *key)
{
	const char *qcol = quote_identifier(ctx->control_name);
	bool		isnull = true;
	Datum		d;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT pg_catalog.min(%s) FROM %s WHERE %s OPERATOR(pg_catalog.>=) %s"
							 " AND %s OPERATOR(pg_catalog.<) %s",
							 qcol, gb_qualified_name(deflt), qcol, gb_key_literal(ctx, from),
							 qcol, gb_key_literal(ctx, below)), false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the default partition");
	if (SPI_processed == 1)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			*key = ctx->kind == GB_CTL_DATE ? (int64) DatumGetDateADT(d) * USECS_PER_DAY : DatumGetInt64(d);
	}
	SPI_finish();
	return !isnull;
}

/* Rows of the default partition outside [low, high) or NULL: no drain moves them. */
static int64
gb_default_stuck_rows(Oid deflt, const GbPeriodCtx *ctx, int64 low, int64 high)
{
	const char *qcol = quote_identifier(ctx->control_name);
	int64		n = 0;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s WHERE %s IS NULL"
							 " OR %s OPERATOR(pg_catalog.<) %s OR %s OPERATOR(pg_catalog.>=) %s",
							 gb_qualified_name(deflt), qcol, qcol, gb_key_literal(ctx, low),
							 qcol, gb_key_literal(ctx, high)), false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the default partition");
	if (SPI_processed == 1)
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return n;
}

static void
gb_bounds_add(GbTreeBounds *b, Oid relid, int64 lo, int64 hi)
{
	b->ranges = repalloc(b->ranges, sizeof(GbRange) * (b->nranges + 1));
	b->ranges[b->nranges].relid = relid;
	b->ranges[b->nranges].lo = lo;
	b->ranges[b->nranges].hi = hi;
	b->nranges++;
	/* kept sorted by lo: insertion from the end */
	for (int i = b->nranges - 1; i > 0 && b->ranges[i - 1].lo > b->ranges[i].lo; i--)
	{
		GbRange		tmp = b->ranges[i];

		b->ranges[i] = b->ranges[i - 1];
		b->ranges[i - 1] = tmp;
	}
}

/* Upper bound (key) of a partition as its pg_class row says; false if none. */
static bool
gb_partition_upper_key(Oid partition, const GbPeriodCtx *ctx, int64 *key)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(partition));
	bool		isnull;
	Datum		d;
	bool		found = false;

	if (!HeapTupleIsValid(tup))
		return false;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
	if (!isnull)
	{
		PartitionBoundSpec *spec = (PartitionBoundSpec *) stringToNode(TextDatumGetCString(d));

		if (spec->strategy == PARTITION_STRATEGY_RANGE && list_length(spec->upperdatums) == 1)
		{
			PartitionRangeDatum *upper = linitial_node(PartitionRangeDatum, spec->upperdatums);

			if (upper->kind == PARTITION_RANGE_DATUM_VALUE && IsA(upper->value, Const))
			{
				Const	   *c = (Const *) upper->value;

				*key = ctx->kind == GB_CTL_DATE ? (int64) DatumGetDateADT(c->constvalue) * USECS_PER_DAY :
					DatumGetInt64(c->constvalue);
				found = true;
			}
		}
	}
	ReleaseSysCache(tup);
	return found;
}

/* The key below which whole periods are past RETENTION, or false when none is. */
bool
gb_retention_cutoff(const GbPeriodCtx *ctx, TimestampTz now, const Interval *retention, int64 *cutoff)
{
	TimestampTz t = gb_time_add(ctx->time_zone, now, retention, true);

	if (ctx->kind == GB_CTL_SNOWFLAKE && t < gb_ms_to_timestamptz(0))
		return false;
	*cutoff = gb_key_from_time(ctx, t);
	return true;
}

typedef struct GbTreeJob
{
	const GbPartConfig *cfg;
	Oid			tree;
	bool		has_retention;
	const Interval *retention;
	List	   *tenant_purges;	/* GbTenantRow * of tenants sharing this tree */
	TimestampTz now;
	bool		dry_run;
	bool		concurrent_detach;
	Oid			owner;
	List	  **pending;
	GbPassCounts *counts;
	const GbTenantRow *purging; /* the tenant of a GB_STEP_PURGE */
} GbTreeJob;

/*
 * One DDL step of a pass, in a subtransaction of its own: a lock that is not
 * free (a long reader of the tree) fails that step only, never the
 * partitions the pass already created.  On failure the error is kept for
 * last_error and false returned; the caller stops that kind of step.
 */
typedef enum GbStepKind
{
	GB_STEP_CREATE,				/* the range MADE->lo .. MADE->hi */
	GB_STEP_DRAIN,				/* the period of KEY, from the default */
	GB_STEP_RETIRE,
	GB_STEP_FINISH_RETIRE,		/* of a partition detached concurrently */
	GB_STEP_PURGE,				/* a sharing tenant's rows past its retention */
	GB_STEP_FINISH_DETACH,		/* PARTITION, an interrupted concurrent detach */
	GB_STEP_DRAIN_DEFAULT		/* every due period of the default, by DRAIN steps */
} GbStepKind;

/*
 * Give the rows of the default partition whose period holds KEY a partition
 * of their own.  MADE gets the period's bounds as soon as they are known, so
 * that a caller whose step failed can go on past them.
 */
static void
gb_drain_period(GbTreeJob *job, const GbPeriodCtx *ctx, const GbTreeBounds *bounds, int64 key,
				GbRange *made)
{
	Timestamp	period = gb_period_of_key(ctx, key);

	made->lo = gb_period_lower(ctx, period);
	made->hi = gb_period_lower(ctx, gb_period_next(ctx, period));
	if (made->lo > key || key >= made->hi)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("control value %s of the default partition has no partition period",
						gb_key_literal(ctx, key)),
				 errhint("Its row stays in the default partition.")));
	for (int i = 0; i < bounds->nranges; i++)
		if (bounds->ranges[i].lo < made->hi && made->lo < bounds->ranges[i].hi)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("rows of the default partition from %s are in no partition, but partition %s overlaps their period",
							gb_key_literal(ctx, key), gb_qualified_name(bounds->ranges[i].relid)),
					 errhint("Move the rows, or detach the partition and let maintenance make the period's own.")));
	made->relid = gb_create_time_partition(job->cfg, job->tree, ctx, bounds, period, &job->counts->moved);
}

/*
 * Delete the rows of a tenant sharing the tree that lie before KEY (the
 * period where its retention cutoff falls), and record that it was done.
 */
static void
gb_purge_tenant(GbTreeJob *job, const GbPeriodCtx *ctx, const GbTenantRow *t, int64 key)
{
	int			tenant_scope;

	/* as that tenant, for tables whose row level security is forced */
	tenant_scope = gb_tenant_scope_begin(t->tenant_id);
	job->counts->purged += (int64) gb_exec_count(psprintf("DELETE FROM %s WHERE %s OPERATOR(pg_catalog.=) " INT64_FORMAT
														  " AND %s OPERATOR(pg_catalog.<) %s",
														  gb_qualified_name(job->tree),
														  quote_identifier(gb_tenant_column_of(job->cfg)), t->tenant_id,
														  quote_identifier(ctx->control_name), gb_key_literal(ctx, key)));
	gb_tenant_scope_end(tenant_scope);
	gb_tenant_record_purge(job->cfg->parent, t->tenant_id, gb_time_from_key(ctx, key));
}

static bool gb_try_step(GbTreeJob *job, GbStepKind kind, const GbPeriodCtx *ctx, GbTreeBounds *bounds,
						int64 key, Oid partition, GbRange *made);

/*
 * Rows waiting in the default partition go to partitions of their own,
 * period by period in key order, each in its own subtransaction: a period
 * that fails is recorded and passed over, and premake still runs.  At most
 * gb_scale.maintenance_drain_limit periods per tree and transaction (both
 * those created and those that failed), which bounds the locks one
 * transaction holds; the rest wait for the pass's next transaction when
 * this one made progress and the caller may commit, else the next pass.
 */
static void
gb_drain_default(GbTreeJob *job, const GbPeriodCtx *ctx, GbTreeBounds *bounds)
{
	if (gb_has_rows(bounds->default_oid))
	{
		int64		low;
		int64		high;
		int64		cursor;
		int64		key = 0;
		int			steps = 0;
		int			drained = 0;
		int64		stuck;

		gb_drain_limits(ctx, &low, &high);
		cursor = low;
		while (steps++ < gb_maintenance_drain_limit && cursor < high &&
			   gb_default_next_key(bounds->default_oid, ctx, cursor, high, &key))
		{
			GbRange		made = {InvalidOid, key, key};

			CHECK_FOR_INTERRUPTS();
			if (gb_try_step(job, GB_STEP_DRAIN, ctx, bounds, key, InvalidOid, &made))
			{
				gb_bounds_add(bounds, made.relid, made.lo, made.hi);
				job->counts->created++;
				drained++;
			}
			/* past the period, or past the key (its day, for a date) when it has none */
			cursor = made.hi > key ? made.hi : key + (ctx->kind == GB_CTL_DATE ? USECS_PER_DAY : 1);
		}
		if (steps > gb_maintenance_drain_limit && drained > 0)
			job->counts->drain_more = true;
		stuck = gb_default_stuck_rows(bounds->default_oid, ctx, low, high);
		if (stuck > 0 && job->counts->error == NULL)
			job->counts->error = psprintf(INT64_FORMAT " rows of default partition %s have a control value"
										  " no partition can hold (%s); they stay there",
										  stuck, gb_qualified_name(bounds->default_oid),
										  ctx->kind == GB_CTL_SNOWFLAKE ?
										  "NULL, before the snowflake epoch, or in the last two years of snowflake IDs" :
										  "NULL, infinity, or outside the years 2 to 294274");
	}
}

static bool
gb_try_step(GbTreeJob *job, GbStepKind kind, const GbPeriodCtx *ctx, GbTreeBounds *bounds,
			int64 key, Oid partition, GbRange *made)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (kind == GB_STEP_CREATE)
			made->relid = gb_create_range_partition(job->cfg, job->tree, ctx, bounds, made->lo, made->hi,
													 &job->counts->moved);
		else if (kind == GB_STEP_DRAIN)
			gb_drain_period(job, ctx, bounds, key, made);
		else if (kind == GB_STEP_RETIRE)
			gb_retire_partition(job->tree, partition, job->cfg->retention_mode, job->cfg->archive_schema, false);
		else if (kind == GB_STEP_PURGE)
			gb_purge_tenant(job, ctx, job->purging, key);
		else if (kind == GB_STEP_FINISH_DETACH)
			gb_finalize_detach(job->tree, partition);
		else if (kind == GB_STEP_DRAIN_DEFAULT)
			gb_drain_default(job, ctx, bounds);
		else
		{
			gb_retire_partition(job->tree, partition, job->cfg->retention_mode, job->cfg->archive_schema, true);
			gb_retiring_remove(partition);
		}
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		if (job->counts->error == NULL)
			job->counts->error = edata->message;
		/* cppcheck-suppress redundantAssignment ; PG_TRY is setjmp */
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

/*
 * Bring one time tree up to date: its default partition, interrupted
 * detaches, rows waiting in the default, the premake horizon, retention and
 * per-tenant purges.  In a dry run only reports whether anything is due.
 */
static bool
gb_maintain_tree(GbTreeJob *job)
{
	const GbPartConfig *cfg = job->cfg;
	Oid			tree = job->tree;
	GbPeriodCtx ctx;
	GbTreeBounds *bounds;
	int64		now_key;
	int64		first_key;
	int64		horizon;
	Timestamp	start;
	bool		create_failed = false;
	int			premade = 0;
	ListCell   *lc;

	/* nothing due as stored by an earlier look, and nothing since changed */
	if (job->dry_run && job->tenant_purges == NIL &&
		gb_horizon_says_idle(cfg, tree, job->now, job->has_retention, job->retention))
		return false;
	if (!gb_read_tree(tree, cfg, job->dry_run, &ctx, &bounds))
		return job->dry_run;

	/* the default partition the registration asks for */
	if (cfg->default_partition && !OidIsValid(bounds->default_oid))
	{
		if (job->dry_run)
			goto due;
		gb_create_default_partition(cfg, tree);
		if (!gb_read_tree(tree, cfg, false, &ctx, &bounds))
			return false;
	}

	/* finish what an interrupted DETACH ... CONCURRENTLY began */
	foreach(lc, gb_pending_detaches(job->tree))
	{
		Oid			part = lfirst_oid(lc);
		int64		upper;
		int64		cutoff;
		bool		expired;

		if (job->dry_run)
			goto due;
		expired = job->has_retention && gb_partition_upper_key(part, &ctx, &upper) &&
			gb_retention_cutoff(&ctx, job->now, job->retention, &cutoff) && upper <= cutoff;
		/* a lock that is not free fails this step only: retried next pass */
		if (!gb_try_step(job, GB_STEP_FINISH_DETACH, &ctx, bounds, 0, part, NULL))
			continue;
		if (expired)
		{
			gb_retire_partition(job->tree, part, cfg->retention_mode, cfg->archive_schema, true);
			job->counts->retired++;
		}
		/* the bounds read above may still have listed it */
		if (!gb_read_tree(tree, cfg, false, &ctx, &bounds))
			return false;
	}

	/*
	 * Rows waiting in the default partition go to partitions of their own
	 * (gb_drain_default).  Its own queries (a lock on the default that is not
	 * free, say) fail in a step of their own too: premake still runs.
	 */
	if (OidIsValid(bounds->default_oid))
	{
		if (job->dry_run)
		{
			if (gb_has_rows(bounds->default_oid))
				goto due;
		}
		else if (!gb_try_step(job, GB_STEP_DRAIN_DEFAULT, &ctx, bounds, 0, InvalidOid, NULL) &&
				 !gb_read_tree(tree, cfg, false, &ctx, &bounds))
			return false;
	}

	/*
	 * The premake horizon: every period from now's until now + premake, and
	 * those a pause of maintenance left missing since the newest partition
	 * (but none that retention would retire at once).  At most
	 * gb_scale.maintenance_premake_limit partitions per tree and transaction,
	 * oldest first, which bounds the locks one transaction holds; the rest
	 * wait for the pass's next transaction when the caller may commit, else
	 * for the next pass (until the pause is made up, the newest partition
	 * still ends before now, so it is not forgotten).
	 */
	now_key = gb_key_from_time(&ctx, job->now);
	horizon = gb_key_from_time(&ctx, gb_time_add(ctx.time_zone, job->now, &cfg->premake, false));
	first_key = now_key;
	if (bounds->nranges > 0 && bounds->ranges[bounds->nranges - 1].hi < now_key &&
		bounds->ranges[bounds->nranges - 1].hi != PG_INT64_MIN)
	{
		int64		cutoff;

		first_key = bounds->ranges[bounds->nranges - 1].hi;
		if (job->has_retention && gb_retention_cutoff(&ctx, job->now, job->retention, &cutoff))
			first_key = Max(first_key, cutoff);
	}
	for (start = gb_period_of_key(&ctx, first_key);
		 !create_failed && !job->counts->premake_more && gb_period_lower(&ctx, start) < horizon;
		 start = gb_period_next(&ctx, start))
	{
		int64		lo = gb_period_lower(&ctx, start);
		int64		hi = gb_period_lower(&ctx, gb_period_next(&ctx, start));
		GbRange		made = {InvalidOid, 0, 0};

		CHECK_FOR_INTERRUPTS();
		/* after a change of granularity, what older partitions leave of it */
		while (lo < hi && gb_bounds_first_gap(bounds, lo, hi, &made.lo, &made.hi))
		{
			if (job->dry_run)
				goto due;
			if (premade >= gb_maintenance_premake_limit)
			{
				job->counts->premake_more = true;
				break;
			}
			if (!gb_try_step(job, GB_STEP_CREATE, &ctx, bounds, 0, InvalidOid, &made))
			{
				create_failed = true;
				break;
			}
			gb_bounds_add(bounds, made.relid, made.lo, made.hi);
			job->counts->created++;
			premade++;
		}
	}

	/* retention: partitions whose whole period is older than now - retention */
	if (job->has_retention)
	{
		int64		cutoff;

		if (gb_retention_cutoff(&ctx, job->now, job->retention, &cutoff))
		{
			for (int i = 0; i < bounds->nranges; i++)
			{
				GbRange    *r = &bounds->ranges[i];

				if (r->hi == PG_INT64_MAX || r->hi > cutoff)
					continue;
				if (job->dry_run)
					goto due;
				/* Citus refuses DETACH ... CONCURRENTLY: a plain one, as CALL does */
				if (job->concurrent_detach && !OidIsValid(bounds->default_oid) && !gb_citus_table(tree))
				{
					GbPendingDetach *p = palloc0(sizeof(GbPendingDetach));

					p->parent = cfg->parent;
					p->owner = job->owner;
					p->tree = job->tree;
					p->partition = r->relid;
					p->mode = cfg->retention_mode;
					p->archive_schema = cfg->archive_schema;
					*job->pending = lappend(*job->pending, p);
				}
				else if (gb_try_step(job, GB_STEP_RETIRE, &ctx, bounds, 0, r->relid, NULL))
					job->counts->retired++;
				else
					break;
			}
		}
	}

	/* tenants with a shorter retention than the tree they share */
	foreach(lc, job->tenant_purges)
	{
		GbTenantRow *t = (GbTenantRow *) lfirst(lc);
		int64		cutoff;
		int64		aligned;
		TimestampTz aligned_time;

		if (!gb_retention_cutoff(&ctx, job->now, &t->retention, &cutoff))
			continue;
		aligned = gb_period_lower(&ctx, gb_period_of_key(&ctx, cutoff));
		aligned_time = gb_time_from_key(&ctx, aligned);
		if (t->has_purged_before && t->purged_before >= aligned_time)
			continue;
		if (job->dry_run)
			goto due;
		/* in a subtransaction: a row lock not free fails it, not the premake done above */
		job->purging = t;
		(void) gb_try_step(job, GB_STEP_PURGE, &ctx, bounds, aligned, InvalidOid, NULL);
		job->purging = NULL;
	}

	if (job->dry_run && job->tenant_purges == NIL)
		gb_horizon_note_idle(cfg, tree, job->now, job->has_retention, job->retention, &ctx, bounds);
	return false;

due:
	return true;
}

/*
 * Maintain one registered table (all its trees).  Returns whether anything
 * was (in a dry run: would be) done.  The caller provides the transaction.
 */
bool
gb_maintain_one(const GbPartConfig *cfg, TimestampTz now, bool dry_run, bool concurrent_detach,
				List **pending, GbPassCounts *counts)
{
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	List	   *tenants;
	List	   *shared_purges = NIL;
	bool		needed = false;
	ListCell   *lc;
	GbTreeJob	job;
	Oid			tail = InvalidOid;

	/* the parent: locked for reading (never waited for in a dry run) */
	if (!dry_run)
		LockRelationOid(cfg->parent, AccessShareLock);
	else if (!ConditionalLockRelationOid(cfg->parent, AccessShareLock))
		return true;
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(cfg->parent)))
		return false;
	if (cfg->is_list)
	{
		Relation	rel = relation_open(cfg->parent, NoLock);

		tail = get_default_oid_from_partdesc(RelationGetPartitionDesc(rel, true));
		relation_close(rel, NoLock);
	}
	owner = gb_rel_owner(cfg->parent);
	tenants = cfg->has_tenant_rows ? gb_tenants_load(cfg->parent) : NIL;
	foreach(lc, tenants)
	{
		GbTenantRow *t = (GbTenantRow *) lfirst(lc);

		if (!OidIsValid(t->subtree) && t->has_retention)
			shared_purges = lappend(shared_purges, t);
	}
	/* a dry run too: it plans queries on the owner's tables (gb_has_rows) */
	gb_as_owner_begin(owner, &save_userid, &save_sec, &nestlevel);

	memset(&job, 0, sizeof(job));
	job.cfg = cfg;
	job.now = now;
	job.dry_run = dry_run;
	job.concurrent_detach = concurrent_detach;
	job.owner = owner;
	job.pending = pending;
	job.counts = counts;
	job.has_retention = cfg->has_retention;
	job.retention = &cfg->retention;
	job.tenant_purges = shared_purges;

	/* partitions the worker detached concurrently and could not retire yet */
	if (cfg->has_retiring && dry_run)
	{
		gb_as_owner_end(save_userid, save_sec, nestlevel);
		return true;
	}

	if (!cfg->is_list)
	{
		job.tree = cfg->parent;
		needed = gb_maintain_tree(&job);
	}
	else
	{
		if (OidIsValid(tail))
		{
			job.tree = tail;
			needed = gb_maintain_tree(&job);
		}
		else if (dry_run)
			needed = true;
		else if (counts->error == NULL)
			counts->error = psprintf("table %s has lost its tenants tail (its DEFAULT partition): rows of"
									 " tenants without partitions of their own have nowhere to go; attach it again, or"
									 " gb_partition_forget() the table and register it again", gb_qualified_name(cfg->parent));
		foreach(lc, tenants)
		{
			GbTenantRow *t = (GbTenantRow *) lfirst(lc);

			if (needed && dry_run)
				break;
			if (!OidIsValid(t->subtree) || !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(t->subtree)))
				continue;
			job.tree = t->subtree;
			job.tenant_purges = NIL;
			job.has_retention = t->has_retention || cfg->has_retention;
			job.retention = t->has_retention ? &t->retention : &cfg->retention;
			needed |= gb_maintain_tree(&job);
		}
	}

	/* after premake: a retirement that keeps failing never holds it up */
	if (cfg->has_retiring && !dry_run)
	{
		foreach(lc, gb_retiring_load(cfg->parent))
		{
			Oid			part = lfirst_oid(lc);

			CHECK_FOR_INTERRUPTS();
			if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part)) || get_rel_relispartition(part))
				gb_retiring_remove(part);	/* gone, or attached again */
			else if (gb_try_step(&job, GB_STEP_FINISH_RETIRE, NULL, NULL, 0, part, NULL))
				counts->retired++;
			else
				break;
		}
	}

	gb_as_owner_end(save_userid, save_sec, nestlevel);
	return needed;
}

/* Whether the current user may have this table maintained: its owner's rights. */
static bool
gb_may_maintain(Oid parent)
{
	return has_privs_of_role(GetUserId(), gb_rel_owner(parent));
}

/*
 * Two runs on one table must not interleave: a transaction-level lock on
 * (gb_scale.partition_config, parent), which no SQL command can take or hold.
 */
static bool
gb_try_lock_table(Oid parent)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, gb_internal_relid(GB_PARTITION_CONFIG_TABLE), parent, 0);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/* The dry run; a table whose look fails is due, so that its error is recorded. */
static bool
gb_table_is_due(const GbPartConfig *cfg, TimestampTz now)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	GbPassCounts counts = {0};
	bool		due;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		due = gb_maintain_one(cfg, now, true, false, NULL, &counts);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		/* cppcheck-suppress redundantAssignment ; PG_TRY is setjmp */
		due = true;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return due;
}

static void
gb_pass_commit(bool nonatomic, bool in_worker)
{
	if (in_worker)
	{
		if (ActiveSnapshotSet())
			PopActiveSnapshot();
		CommitTransactionCommand();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	else if (nonatomic)
	{
		SPI_commit();
		SPI_start_transaction();
	}
}

/* Pending concurrent detaches of the last pass, for the worker. */
List	   *gb_pass_pending = NIL;

/*
 * One maintenance pass over every registered table (or ONLY_PARENT).
 * NONATOMIC: the caller may commit between tables (CALL outside a
 * transaction block, or the worker).  IN_WORKER: the worker's real clock and
 * its own transactions; retired partitions are left in gb_pass_pending for
 * DETACH ... CONCURRENTLY.
 */
void
gb_run_pass(Oid only_parent, bool nonatomic, bool in_worker)
{
	MemoryContext passcxt = AllocSetContextCreate(in_worker ? TopMemoryContext :
												  nonatomic ? PortalContext : CurrentMemoryContext,
												  "gb_scale maintenance pass", ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(passcxt);
	TimestampTz now = in_worker ? GetCurrentTimestamp() : gb_maintenance_now();
	List	   *configs = gb_config_load(only_parent);
	List	   *idle = NIL;
	List	   *busy = NIL;
	List	   *redrain = NIL;
	ListCell   *lc;

	if (OidIsValid(only_parent) && configs == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table %s is not registered with gb_scale", gb_qualified_name(only_parent)),
				 errhint("Register it with gb_partition_create().")));
	gb_pass_pending = NIL;
	gb_horizons_load();

	foreach(lc, configs)
	{
		GbPartConfig *cfg = (GbPartConfig *) lfirst(lc);

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(cfg->parent)))
			continue;
		if (!gb_may_maintain(cfg->parent))
		{
			if (OidIsValid(only_parent))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("must be owner of table %s to maintain it", gb_qualified_name(cfg->parent)),
						 errhint("Run maintenance as the table's owner, a member of its role, or a superuser.")));
			continue;
		}
		if (gb_table_is_due(cfg, now))
			busy = lappend(busy, cfg);
		else
			idle = lappend_oid(idle, cfg->parent);
	}
	gb_horizons_forget();
	gb_config_record_many(idle, now);
	gb_pass_commit(nonatomic, in_worker);

	foreach(lc, busy)
	{
		GbPartConfig *cfg = (GbPartConfig *) lfirst(lc);
		GbPassCounts counts = {0};
		ResourceOwner owner = CurrentResourceOwner;
		char	   *error = NULL;
		List	   *pending = NIL;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(passcxt);
		PG_TRY();
		{
			if (gb_try_lock_table(cfg->parent))
			{
				(void) gb_maintain_one(cfg, now, false, in_worker, &pending, &counts);
				error = counts.error;
				if (in_worker && counts.created + counts.retired > 0)
					ereport(LOG,
							(errmsg("gb_scale maintenance of %s: %d partitions created, %d retired, " INT64_FORMAT " rows moved",
									gb_qualified_name(cfg->parent), counts.created, counts.retired, counts.moved)));
			}
			else
				error = "another maintenance run was working on this table";
			ReleaseCurrentSubTransaction();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(passcxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			/* cppcheck-suppress redundantAssignment ; PG_TRY is setjmp */
			error = edata->message;
			pending = NIL;
			if (in_worker)
				ereport(LOG,
						(errmsg("gb_scale maintenance of table %u failed: %s", cfg->parent, edata->message)));
		}
		PG_END_TRY();
		MemoryContextSwitchTo(passcxt);
		CurrentResourceOwner = owner;
		/* inside a transaction block, a short horizon waits for the next pass: say so */
		if (counts.premake_more && !(nonatomic || in_worker) && error == NULL)
			error = psprintf("premake created gb_scale.maintenance_premake_limit (%d) partitions of a time tree"
							 " in this transaction; the next pass outside a transaction block creates the rest",
							 gb_maintenance_premake_limit);
		/* a table's second round queues the same retired partitions again */
		if (!list_member_ptr(redrain, cfg))
			gb_pass_pending = list_concat(gb_pass_pending, pending);
		gb_config_record(cfg->parent, now, error);
		gb_pass_commit(nonatomic, in_worker);
		/* more periods wait (in a default, or for premake): on in a transaction of their own */
		if ((counts.drain_more || counts.premake_more) && (nonatomic || in_worker))
		{
			busy = lappend(busy, cfg);
			redrain = lappend(redrain, cfg);
		}
	}
	MemoryContextSwitchTo(oldcxt);
	if (!in_worker)
		MemoryContextDelete(passcxt);
}
