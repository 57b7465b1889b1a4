/*-------------------------------------------------------------------------
 *
 * sizing.c
 *	  Live volumes of the registered tables, for the sizing advice
 *	  (gb_scale.sizing, gb_scale.tenant_heavy).
 *
 * The counts read the leaf partitions (and each tree's default partition)
 * directly, as the table's owner in a security-restricted operation: the
 * owner's index expressions, policies and CHECK constraints never run with
 * the caller's rights, and a tenant-isolated parent's FORCE ROW LEVEL
 * SECURITY (which would show the owner no tenant's rows) does not apply to
 * its partitions.  Days are the registration's days, in its time zone, on
 * the maintenance clock (gb_scale.test_now when set).
 *
 *-------------------------------------------------------------------------
 */
#include "partition.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

/* Test knob: every counted row stands for this many (superuser only). */
static int	gb_sizing_test_scale = 1;

void
gb_sizing_init(void)
{
	DefineCustomIntVariable("gb_scale.sizing_test_scale",
							"Test knob: each row the sizing views count stands for this many rows.",
							"Lets a test reach the When-to-Scale thresholds with few rows; leave it at 1.",
							&gb_sizing_test_scale,
							1, 1, 1000000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/* A partition of a registered table and the bounds of its rows, in keys. */
typedef struct GbSizingPart
{
	Oid			relid;
	int64		lo;
	int64		hi;
	bool		is_default;
} GbSizingPart;

/*
 * The partitions holding every row of PARENT's registration, with the period
 * context of its trees (they share the control column).  Errors when PARENT
 * is not registered.
 */
static List *
gb_sizing_parts(Oid parent, GbPartConfig **cfg_out, GbPeriodCtx *ctx)
{
	List	   *configs = gb_config_load(parent);
	GbPartConfig *cfg;
	List	   *parts = NIL;
	ListCell   *lc;
	bool		have_ctx = false;

	if (configs == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table %s is not registered with gb_partition_create", gb_qualified_name(parent)),
				 errhint("Sizing counts the partitions of registered tables; register it, or name another table.")));
	cfg = (GbPartConfig *) linitial(configs);
	/* its partition list is read next, under the lock a query would take */
	LockRelationOid(parent, AccessShareLock);
	foreach(lc, gb_registration_trees(cfg, true))
	{
		Relation	tree = relation_open(lfirst_oid(lc), AccessShareLock);
		GbTreeBounds *bounds;

		gb_period_ctx_for_tree(tree, cfg, ctx);
		have_ctx = true;
		bounds = gb_tree_bounds(tree, ctx);
		for (int i = 0; i < bounds->nranges; i++)
		{
			GbSizingPart *p = palloc(sizeof(GbSizingPart));

			p->relid = bounds->ranges[i].relid;
			p->lo = bounds->ranges[i].lo;
			p->hi = bounds->ranges[i].hi;
			p->is_default = false;
			parts = lappend(parts, p);
		}
		if (OidIsValid(bounds->default_oid))
		{
			GbSizingPart *p = palloc(sizeof(GbSizingPart));

			p->relid = bounds->default_oid;
			p->lo = PG_INT64_MIN;
			p->hi = PG_INT64_MAX;
			p->is_default = true;
			parts = lappend(parts, p);
		}
		relation_close(tree, NoLock);
	}
	if (!have_ctx)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no partition tree to count", gb_qualified_name(parent)),
				 errhint("Run SELECT gb_partition_maintain() to create its partitions.")));
	*cfg_out = cfg;
	return parts;
}

/* Run a query returning rows of int8 columns as OWNER, restricted. */
static void
gb_sizing_run(Oid owner, const char *sql, int ncols, ReturnSetInfo *rsinfo, int64 *first_row)
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;

	gb_as_owner_begin(owner, &save_userid, &save_sec, &nestlevel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "sizing count failed");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		values[2];
		bool		nulls[2];

		CHECK_FOR_INTERRUPTS();
		for (int c = 0; c < ncols && c < 2; c++)
			values[c] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1, &nulls[c]);
		if (first_row != NULL && r == 0)
			for (int c = 0; c < ncols && c < 2; c++)
				first_row[c] = nulls[c] ? 0 : DatumGetInt64(values[c]);
		if (rsinfo != NULL)
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	gb_as_owner_end(save_userid, save_sec, nestlevel);
}

/* The key of local midnight starting the day DAYS_BACK days before NOW's. */
static TimestampTz
gb_sizing_day_start(const char *tz, TimestampTz now, int days_back)
{
	TimestampTz today = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_trunc_zone,
																CStringGetTextDatum("day"),
																TimestampTzGetDatum(now),
																CStringGetTextDatum(tz)));
	Interval	back;

	memset(&back, 0, sizeof(back));
	back.day = days_back;
	return gb_time_add(tz, today, &back, true);
}

/*
 * gb_scale.sizing_daily(tbl, days): the rows of each of the last DAYS full
 * days (oldest first), and the distinct tenants among them when the table
 * has a tenant column, each scaled by gb_scale.sizing_test_scale.
 */
PG_FUNCTION_INFO_V1(gb_sizing_daily);
Datum
gb_sizing_daily(PG_FUNCTION_ARGS)
{
	Oid			parent = PG_GETARG_OID(0);
	int32		days = PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GbPartConfig *cfg;
	GbPeriodCtx ctx;
	List	   *parts;
	char	   *tcol;
	TimestampTz now = gb_maintenance_now();
	Oid			owner = gb_rel_owner(parent);

	if (days < 1 || days > 366)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days must be between 1 and 366, not %d", days),
				 errhint("The sizing view reads the last 7 full days.")));
	InitMaterializedSRF(fcinfo, 0);
	parts = gb_sizing_parts(parent, &cfg, &ctx);
	tcol = gb_tenant_column_of(cfg);
	for (int d = days; d >= 1; d--)
	{
		TimestampTz from = gb_sizing_day_start(ctx.time_zone, now, d);
		TimestampTz to = gb_sizing_day_start(ctx.time_zone, now, d - 1);
		int64		lo = gb_key_from_time(&ctx, from);
		int64		hi = gb_key_from_time(&ctx, to);
		StringInfoData sql;
		bool		any = false;
		ListCell   *lc;
		int64		counts[2] = {0, 0};
		Datum		values[3];
		bool		nulls[3] = {false, false, tcol == NULL};

		CHECK_FOR_INTERRUPTS();
		initStringInfo(&sql);
		appendStringInfo(&sql, "SELECT pg_catalog.count(*), pg_catalog.count(DISTINCT s.t) FROM (");
		foreach(lc, parts)
		{
			GbSizingPart *p = lfirst(lc);

			if (!p->is_default && (p->hi <= lo || p->lo >= hi))
				continue;
			appendStringInfo(&sql, "%sSELECT %s AS t FROM %s WHERE %s OPERATOR(pg_catalog.>=) %s AND %s OPERATOR(pg_catalog.<) %s",
							 any ? " UNION ALL " : "",
							 tcol ? quote_identifier(tcol) : "NULL::pg_catalog.int8",
							 gb_qualified_name(p->relid),
							 quote_identifier(ctx.control_name), gb_key_literal(&ctx, lo),
							 quote_identifier(ctx.control_name), gb_key_literal(&ctx, hi));
			any = true;
		}
		appendStringInfoString(&sql, ") s");
		if (any)
			gb_sizing_run(owner, sql.data, 2, NULL, counts);
		/* the local date of the day, not the UTC date of its start */
		values[0] = DirectFunctionCall1(timestamp_date,
										DirectFunctionCall2(timestamptz_zone, CStringGetTextDatum(ctx.time_zone),
															TimestampTzGetDatum(from)));
		values[1] = Int64GetDatum(counts[0] * gb_sizing_test_scale);
		values[2] = Int64GetDatum(counts[1]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * gb_scale.sizing_rows(tbl): every row of a table (of every partition of a
 * registered one), scaled by gb_scale.sizing_test_scale.
 */
PG_FUNCTION_INFO_V1(gb_sizing_rows);
Datum
gb_sizing_rows(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int64		total = 0;

	if (get_rel_relkind(relid) == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("Name an existing table.")));
	if (gb_config_load(relid) != NIL)
	{
		GbPartConfig *cfg;
		GbPeriodCtx ctx;
		ListCell   *lc;

		foreach(lc, gb_sizing_parts(relid, &cfg, &ctx))
		{
			GbSizingPart *p = lfirst(lc);

			CHECK_FOR_INTERRUPTS();
			total += gb_count_rows(p->relid);
		}
	}
	else
		total = gb_count_rows(relid);
	PG_RETURN_INT64(total * gb_sizing_test_scale);
}

/*
 * gb_scale.sizing_tenant_rows(tbl): rows per tenant of a registered table
 * with a tenant column, one row per (partition, tenant): the caller sums.
 * Not scaled: shares do not change with the scale.
 */
PG_FUNCTION_INFO_V1(gb_sizing_tenant_rows);
Datum
gb_sizing_tenant_rows(PG_FUNCTION_ARGS)
{
	Oid			parent = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GbPartConfig *cfg;
	GbPeriodCtx ctx;
	List	   *parts;
	char	   *tcol;
	Oid			owner = gb_rel_owner(parent);
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	parts = gb_sizing_parts(parent, &cfg, &ctx);
	tcol = gb_tenant_column_of(cfg);
	if (tcol == NULL)
		return (Datum) 0;
	foreach(lc, parts)
	{
		GbSizingPart *p = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		gb_sizing_run(owner,
					  psprintf("SELECT %s::pg_catalog.int8, pg_catalog.count(*) FROM %s GROUP BY 1",
							   quote_identifier(tcol), gb_qualified_name(p->relid)),
					  2, rsinfo, NULL);
	}
	return (Datum) 0;
}
