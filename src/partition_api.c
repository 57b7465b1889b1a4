/*-------------------------------------------------------------------------
 *
 * partition_api.c
 *	  The SQL functions of the partition manager: registering a table,
 *	  changing its retention, dedicating tenants, creating partitions for a
 *	  backfill, the maintenance procedure, and what the status view and
 *	  gb_partition_list show.
 *
 * Every function that changes a table checks that the caller owns it,
 * validates all input before changing anything, and does the DDL as the
 * table's owner in a security-restricted operation (gb_as_owner_begin).
 *
 *-------------------------------------------------------------------------
 */
#include "partition.h"
#include "citus_glue.h"
#include "routing.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* General Bots' defaults, by profile name. */
typedef struct GbProfile
{
	const char *name;
	Interval	granularity;
	Interval	premake;
	Interval	retention;
} GbProfile;

static const GbProfile gb_profiles[] = {
	{"messages", {.time = 0,.day = 1,.month = 0}, {.time = 0,.day = 14,.month = 0}, {.time = 0,.day = 90,.month = 0}},
	{"sessions", {.time = 0,.day = 0,.month = 1}, {.time = 0,.day = 0,.month = 3}, {.time = 0,.day = 0,.month = 2}},
	{"analytics", {.time = 0,.day = 0,.month = 1}, {.time = 0,.day = 0,.month = 3}, {.time = 0,.day = 0,.month = 12}},
};

static char *
gb_interval_text(const Interval *iv)
{
	return DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(iv)));
}

static void
gb_require_owner(Oid relid)
{
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
}

static GbPartConfig *
gb_registration(Oid parent)
{
	List	   *configs = gb_config_load(parent);

	if (configs != NIL)
		return (GbPartConfig *) linitial(configs);
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("table %s is not registered with gb_scale", gb_qualified_name(parent)),
			 errhint("Register it with gb_partition_create().")));
	return NULL;				/* keep compilers quiet */
}

/* A premake or retention must be at least one period long. */
static void
gb_check_horizon(const char *what, const Interval *iv, GbGranularity g)
{
	if (gb_interval_cmp(iv, gb_granularity_interval(g)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" is shorter than the granularity \"%s\"", what, gb_interval_text(iv),
						gb_granularity_name(g)),
				 errhint("Give a %s of at least one partition's length.", what)));
}

/*
 * Citus distributes a partitioned table only when its partitions are plain
 * tables: a layout with partitions under partitions cannot be made on one.
 */
static void
gb_refuse_citus_layout(Oid parent, const char *layout)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("table %s is distributed by Citus, which cannot hold %s", gb_qualified_name(parent), layout),
			 errdetail("Citus does not distribute multi-level partitioned tables."),
			 errhint("Register it with time partitions alone; Citus spreads tenants over its shards, and gives a big tenant"
					 " a shard of its own with isolate_tenant_to_new_shard('%s', tenant_id, 'CASCADE').",
					 gb_qualified_name(parent))));
}

static void
gb_check_tenant_type(Oid relid, const char *column, AttrNumber attnum)
{
	Oid			typid = get_atttype(relid, attnum);

	if (typid != INT8OID && typid != INT4OID && typid != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant column \"%s\" has type %s", column, format_type_be(typid)),
				 errhint("A tenant column is bigint, integer or smallint.")));
}

static AttrNumber
gb_require_column(Oid relid, const char *column)
{
	AttrNumber	attnum = get_attnum(relid, column);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table %s does not exist", column, gb_qualified_name(relid)),
				 errhint("Name the column exactly, without quotes: mixed case and spaces are kept as given.")));
	return attnum;
}

/* The trees of a registration: the parent, or the tail and dedicated subtrees. */
List *
gb_registration_trees(const GbPartConfig *cfg, bool with_subtrees)
{
	List	   *trees = NIL;
	Relation	parent;
	PartitionDesc pd;
	Oid			tail;

	if (!cfg->is_list)
		return list_make1_oid(cfg->parent);
	parent = relation_open(cfg->parent, NoLock);
	pd = RelationGetPartitionDesc(parent, true);
	tail = get_default_oid_from_partdesc(pd);
	if (OidIsValid(tail))
		trees = lappend_oid(trees, tail);
	for (int i = 0; with_subtrees && i < pd->nparts; i++)
		if (pd->oids[i] != tail && get_rel_relkind(pd->oids[i]) == RELKIND_PARTITIONED_TABLE)
			trees = lappend_oid(trees, pd->oids[i]);
	relation_close(parent, NoLock);
	return trees;
}

/*
 * Create what TREE lacks for [from, to): its default partition when the
 * registration has one, and a partition for every period not yet covered,
 * but (LIMIT > 0) at most LIMIT partitions from the period of LIMIT_FROM on:
 * the premake that maintenance, bounded per transaction, completes.
 * Returns the number of tables created.
 */
static int
gb_fill_tree(const GbPartConfig *cfg, Oid tree_oid, TimestampTz from, TimestampTz to,
			 int limit, TimestampTz limit_from)
{
	GbPeriodCtx ctx;
	GbTreeBounds *bounds;
	int			created = 0;
	int			limited = 0;
	int64		limit_key;
	int64		end;

	(void) gb_read_tree(tree_oid, cfg, false, &ctx, &bounds);
	if (cfg->default_partition && !OidIsValid(bounds->default_oid))
	{
		gb_create_default_partition(cfg, tree_oid);
		created++;
		(void) gb_read_tree(tree_oid, cfg, false, &ctx, &bounds);
	}
	end = gb_key_from_time(&ctx, to);
	limit_key = limit > 0 ? gb_period_lower(&ctx, gb_period_of_key(&ctx, gb_key_from_time(&ctx, limit_from))) : 0;
	for (Timestamp start = gb_period_of_key(&ctx, gb_key_from_time(&ctx, from));
		 gb_period_lower(&ctx, start) < end; start = gb_period_next(&ctx, start))
	{
		int64		lo = gb_period_lower(&ctx, start);
		int64		hi = gb_period_lower(&ctx, gb_period_next(&ctx, start));
		int64		gap_lo;
		int64		gap_hi;

		CHECK_FOR_INTERRUPTS();
		/* partitions of an earlier granularity may cover part of it */
		while (lo < hi && gb_bounds_first_gap(bounds, lo, hi, &gap_lo, &gap_hi))
		{
			if (limit > 0 && lo >= limit_key && limited++ >= limit)
				return created;
			(void) gb_create_range_partition(cfg, tree_oid, &ctx, bounds, gap_lo, gap_hi, NULL);
			created += 1 + cfg->tenant_buckets;
			(void) gb_read_tree(tree_oid, cfg, false, &ctx, &bounds);
		}
	}
	return created;
}

/*
 * Give a new dedicated subtree the periods its tenants tail has (the tail's
 * rows of that tenant move there) and those the premake horizon needs: not
 * every period since the tail's oldest partition, which after a stray row of
 * the year 2 was given a partition would be hundreds of thousands.
 */
static int
gb_fill_subtree(const GbPartConfig *cfg, Oid subtree, const GbTreeBounds *tail, TimestampTz now)
{
	GbPeriodCtx ctx;
	GbTreeBounds *bounds;
	int			created = gb_fill_tree(cfg, subtree, now, gb_time_add(cfg->time_zone, now, &cfg->premake, false),
									   0, now);

	(void) gb_read_tree(subtree, cfg, false, &ctx, &bounds);
	for (int i = 0; i < tail->nranges; i++)
	{
		int64		lo = tail->ranges[i].lo;
		int64		hi = tail->ranges[i].hi;
		int64		gap_lo;
		int64		gap_hi;

		CHECK_FOR_INTERRUPTS();
		/* a bound at MINVALUE or MAXVALUE is none gb_scale made */
		if (lo == PG_INT64_MIN || hi == PG_INT64_MAX)
			continue;
		while (gb_bounds_first_gap(bounds, lo, hi, &gap_lo, &gap_hi))
		{
			(void) gb_create_range_partition(cfg, subtree, &ctx, bounds, gap_lo, gap_hi, NULL);
			created += 1 + cfg->tenant_buckets;
			(void) gb_read_tree(subtree, cfg, false, &ctx, &bounds);
		}
	}
	return created;
}

PG_FUNCTION_INFO_V1(gb_partition_create);
Datum
gb_partition_create(PG_FUNCTION_ARGS)
{
	const GbProfile *profile = NULL;
	GbPartConfig cfg;
	Oid			parent;
	char	   *control;
	Interval	granularity;
	Relation	rel;
	PartitionKey key;
	AttrNumber	control_attnum;
	GbControlKind kind;
	TimestampTz now = gb_maintenance_now();
	TimestampTz from;
	TimestampTz to;
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	int			created = 0;
	ListCell   *lc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("gb_partition_create: parent and control must not be NULL")));
	parent = PG_GETARG_OID(0);
	control = NameStr(*PG_GETARG_NAME(1));
	memset(&cfg, 0, sizeof(cfg));
	cfg.parent = parent;

	if (!PG_ARGISNULL(9))
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(9));

		for (int i = 0; i < (int) lengthof(gb_profiles); i++)
			if (strcmp(gb_profiles[i].name, name) == 0)
				profile = &gb_profiles[i];
		if (profile == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown partition profile \"%s\"", name),
					 errhint("Known profiles: messages, sessions, analytics.")));
	}
	if (!PG_ARGISNULL(2))
		granularity = *PG_GETARG_INTERVAL_P(2);
	else if (profile != NULL)
		granularity = profile->granularity;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gb_partition_create: granularity must be given"),
				 errhint("Pass a granularity or a profile.")));
	if (!gb_granularity_from_interval(&granularity, &cfg.granularity))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported granularity \"%s\"", gb_interval_text(&granularity)),
				 errhint("Use one of: 1 hour, 1 day, 1 week, 1 month, 3 months, 1 year.")));
	if (!PG_ARGISNULL(3))
		cfg.premake = *PG_GETARG_INTERVAL_P(3);
	else if (profile != NULL)
		cfg.premake = profile->premake;
	else
	{
		cfg.premake = granularity;
		cfg.premake.time *= 4;
		cfg.premake.day *= 4;
		cfg.premake.month *= 4;
	}
	gb_check_horizon("premake", &cfg.premake, cfg.granularity);
	if (!PG_ARGISNULL(4) || profile != NULL)
	{
		cfg.has_retention = true;
		cfg.retention = PG_ARGISNULL(4) ? profile->retention : *PG_GETARG_INTERVAL_P(4);
		gb_check_horizon("retention", &cfg.retention, cfg.granularity);
	}
	cfg.retention_mode = GB_RETAIN_DROP;
	cfg.tenant_column = PG_ARGISNULL(5) ? NULL : pstrdup(NameStr(*PG_GETARG_NAME(5)));
	if (!PG_ARGISNULL(6))
	{
		cfg.tenant_buckets = PG_GETARG_INT32(6);
		if (cfg.tenant_buckets < 2 || cfg.tenant_buckets > 1024)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant_buckets %d is out of range", cfg.tenant_buckets),
					 errhint("Use 2 to 1024 hash buckets, or NULL for none.")));
		if (cfg.tenant_column == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant_buckets needs tenant_column"),
					 errhint("Name the column that holds the tenant id.")));
	}
	cfg.default_partition = !PG_ARGISNULL(7) && PG_GETARG_BOOL(7);
	if (PG_ARGISNULL(8))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gb_partition_create: time_zone must not be NULL"),
				 errhint("Leave it out for UTC.")));
	cfg.time_zone = text_to_cstring(PG_GETARG_TEXT_PP(8));
	gb_check_time_zone(cfg.time_zone);
	from = PG_ARGISNULL(10) ? now : PG_GETARG_TIMESTAMPTZ(10);

	gb_require_owner(parent);
	if (get_rel_relkind(parent) != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("table %s is not partitioned", gb_qualified_name(parent)),
				 errhint("Declare it PARTITION BY RANGE (%s), or PARTITION BY LIST (tenant column) with tenant_column.",
						 quote_identifier(control))));
	rel = table_open(parent, ShareUpdateExclusiveLock);
	if (gb_config_load(parent) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already registered with gb_scale", gb_qualified_name(parent)),
				 errhint("Change it with gb_partition_retention(), or gb_partition_forget() it first.")));
	control_attnum = gb_require_column(parent, control);
	if (!gb_control_kind_from_type(get_atttype(parent, control_attnum), &kind))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("control column \"%s\" has type %s", control,
						format_type_be(get_atttype(parent, control_attnum))),
				 errhint("The control column is timestamptz, timestamp, date, or bigint holding gb_scale snowflake IDs.")));
	if (kind == GB_CTL_DATE && cfg.granularity == GB_GRAN_HOUR)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a date column cannot be partitioned by the hour"),
				 errhint("Use a granularity of 1 day or more.")));
	if (cfg.tenant_column != NULL)
		(void) gb_require_column(parent, cfg.tenant_column);

	key = RelationGetPartitionKey(rel);
	if (key->strategy == PARTITION_STRATEGY_RANGE)
	{
		if (key->partnatts != 1 || key->partattrs[0] != control_attnum)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("table %s is not partitioned by RANGE (%s)", gb_qualified_name(parent),
							quote_identifier(control)),
					 errhint("The partition key must be the control column alone.")));
	}
	else if (key->strategy == PARTITION_STRATEGY_LIST)
	{
		AttrNumber	tenant_attnum;

		if (cfg.tenant_column == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("table %s is partitioned by LIST but no tenant_column was given",
							gb_qualified_name(parent)),
					 errhint("Pass tenant_column naming the LIST partition key.")));
		tenant_attnum = gb_require_column(parent, cfg.tenant_column);
		if (key->partnatts != 1 || key->partattrs[0] != tenant_attnum)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("table %s is not partitioned by LIST (%s)", gb_qualified_name(parent),
							quote_identifier(cfg.tenant_column)),
					 errhint("The LIST partition key must be the tenant column alone.")));
		gb_check_tenant_type(parent, cfg.tenant_column, tenant_attnum);
		if (OidIsValid(get_default_oid_from_partdesc(RelationGetPartitionDesc(rel, true))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("table %s already has a default partition", gb_qualified_name(parent)),
					 errhint("gb_scale makes the tenants tail the default partition of a LIST parent.")));
		cfg.is_list = true;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("table %s is partitioned by HASH", gb_qualified_name(parent)),
				 errhint("gb_scale manages tables partitioned by RANGE on time or by LIST on the tenant.")));
	if ((cfg.is_list || cfg.tenant_buckets > 0) && gb_citus_table(parent))
		gb_refuse_citus_layout(parent, cfg.is_list ? "the LIST layout by tenant" : "tenant hash buckets");

	{
		Oid			types[10] = {OIDOID, TEXTOID, INTERVALOID, INTERVALOID, INTERVALOID, INT4OID,
		NAMEOID, BOOLOID, TEXTOID, TEXTOID};
		Datum		values[10];
		char		nulls[10];

		memset(nulls, ' ', sizeof(nulls));
		values[0] = ObjectIdGetDatum(parent);
		values[1] = CStringGetTextDatum(cfg.is_list ? "list" : "range");
		values[2] = IntervalPGetDatum(&granularity);
		values[3] = IntervalPGetDatum(&cfg.premake);
		values[4] = IntervalPGetDatum(&cfg.retention);
		nulls[4] = cfg.has_retention ? ' ' : 'n';
		values[5] = Int32GetDatum(cfg.tenant_buckets);
		nulls[5] = cfg.tenant_buckets > 0 ? ' ' : 'n';
		values[6] = cfg.tenant_column ? PointerGetDatum(PG_GETARG_NAME(5)) : (Datum) 0;
		nulls[6] = cfg.tenant_column ? ' ' : 'n';
		values[7] = BoolGetDatum(cfg.default_partition);
		values[8] = CStringGetTextDatum(cfg.time_zone);
		values[9] = profile ? CStringGetTextDatum(profile->name) : (Datum) 0;
		nulls[9] = profile ? ' ' : 'n';
		gb_catalog_exec("INSERT INTO gb_scale.partition_config (parent, layout, granularity, premake, retention,"
						" tenant_buckets, tenant_column, default_partition, time_zone, profile)"
						" VALUES ($1::pg_catalog.regclass, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
						10, types, values, nulls);
	}

	owner = rel->rd_rel->relowner;
	table_close(rel, NoLock);	/* keeping the lock */
	gb_as_owner_begin(owner, &save_userid, &save_sec, &nestlevel);
	if (cfg.is_list)
	{
		(void) gb_create_subtree(&cfg, control, false, 0, true);
		created++;
	}
	/*
	 * Through the horizon, and at least start_at's own period; from now's
	 * period on, no more partitions than a pass creates in one transaction
	 * (the first pass makes the rest: a premake of years of hours would
	 * otherwise hold more locks than the lock table has).
	 */
	to = gb_time_add(cfg.time_zone, now, &cfg.premake, false);
	if (to <= from)
		to = from + 1;
	foreach(lc, gb_registration_trees(&cfg, false))
		created += gb_fill_tree(&cfg, lfirst_oid(lc), from, to, gb_maintenance_premake_limit, now);
	gb_as_owner_end(save_userid, save_sec, nestlevel);
	PG_RETURN_INT32(created);
}

PG_FUNCTION_INFO_V1(gb_partition_ensure);
Datum
gb_partition_ensure(PG_FUNCTION_ARGS)
{
	Oid			parent = PG_GETARG_OID(0);
	TimestampTz from = PG_GETARG_TIMESTAMPTZ(1);
	TimestampTz to = PG_GETARG_TIMESTAMPTZ(2);
	GbPartConfig *cfg;
	Relation	rel;
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	int			created = 0;
	ListCell   *lc;

	gb_require_owner(parent);
	cfg = gb_registration(parent);
	if (from >= to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_time must be before to_time"),
				 errhint("Partitions are created for [from_time, to_time).")));
	rel = table_open(parent, ShareUpdateExclusiveLock);
	owner = rel->rd_rel->relowner;
	table_close(rel, NoLock);	/* keeping the lock */
	gb_as_owner_begin(owner, &save_userid, &save_sec, &nestlevel);
	foreach(lc, gb_registration_trees(cfg, true))
		created += gb_fill_tree(cfg, lfirst_oid(lc), from, to, 0, from);
	gb_as_owner_end(save_userid, save_sec, nestlevel);
	PG_RETURN_INT32(created);
}

PG_FUNCTION_INFO_V1(gb_partition_retention);
Datum
gb_partition_retention(PG_FUNCTION_ARGS)
{
	Oid			parent;
	GbPartConfig *cfg;
	char	   *mode;
	Oid			types[4] = {OIDOID, INTERVALOID, TEXTOID, NAMEOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("gb_partition_retention: parent and mode must not be NULL")));
	parent = PG_GETARG_OID(0);
	gb_require_owner(parent);
	cfg = gb_registration(parent);
	mode = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(mode, "drop") != 0 && strcmp(mode, "detach") != 0 && strcmp(mode, "archive") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown retention mode \"%s\"", mode),
				 errhint("Use drop, detach or archive.")));
	if (strcmp(mode, "archive") == 0)
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("retention mode \"archive\" needs archive_schema"),
					 errhint("Name the schema that retired partitions move to.")));
		(void) get_namespace_oid(NameStr(*PG_GETARG_NAME(3)), false);
	}
	if (!PG_ARGISNULL(1))
		gb_check_horizon("retention", PG_GETARG_INTERVAL_P(1), cfg->granularity);
	values[0] = ObjectIdGetDatum(parent);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PointerGetDatum(PG_GETARG_INTERVAL_P(1));
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[2] = CStringGetTextDatum(mode);
	values[3] = strcmp(mode, "archive") == 0 ? PointerGetDatum(PG_GETARG_NAME(3)) : (Datum) 0;
	nulls[3] = strcmp(mode, "archive") == 0 ? ' ' : 'n';
	gb_catalog_exec("UPDATE gb_scale.partition_config SET retention = $2, retention_mode = $3, archive_schema = $4"
					" WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
					4, types, values, nulls);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(gb_partition_forget);
Datum
gb_partition_forget(PG_FUNCTION_ARGS)
{
	Oid			parent = PG_GETARG_OID(0);
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(parent)};

	gb_require_owner(parent);
	(void) gb_registration(parent);
	gb_catalog_exec("DELETE FROM gb_scale.partition_tenant WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
					1, types, values, NULL);
	gb_catalog_exec("DELETE FROM gb_scale.partition_config WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
					1, types, values, NULL);
	PG_RETURN_VOID();
}

/* The registration's tenant row, or NULL. */
static GbTenantRow *
gb_tenant_row(Oid parent, int64 tenant_id)
{
	ListCell   *lc;

	foreach(lc, gb_tenants_load(parent))
	{
		GbTenantRow *t = (GbTenantRow *) lfirst(lc);

		if (t->tenant_id == tenant_id)
			return t;
	}
	return NULL;
}

PG_FUNCTION_INFO_V1(gb_tenant_retention);
Datum
gb_tenant_retention(PG_FUNCTION_ARGS)
{
	Oid			parent;
	int64		tenant_id;
	GbPartConfig *cfg;
	GbTenantRow *row;
	Oid			types[3] = {OIDOID, INT8OID, INTERVALOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("gb_tenant_retention: parent and tenant_id must not be NULL")));
	parent = PG_GETARG_OID(0);
	tenant_id = PG_GETARG_INT64(1);
	gb_require_owner(parent);
	cfg = gb_registration(parent);
	if (!cfg->is_list && cfg->tenant_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table %s was registered without a tenant column", gb_qualified_name(parent)),
				 errhint("Register it with tenant_column to give tenants retentions of their own.")));
	row = gb_tenant_row(parent, tenant_id);
	values[0] = ObjectIdGetDatum(parent);
	values[1] = Int64GetDatum(tenant_id);
	if (PG_ARGISNULL(2))
	{
		if (row != NULL && OidIsValid(row->subtree))
			gb_catalog_exec("UPDATE gb_scale.partition_tenant SET retention = NULL, purged_before = NULL"
							" WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1 AND tenant_id OPERATOR(pg_catalog.=) $2",
							2, types, values, NULL);
		else
			gb_catalog_exec("DELETE FROM gb_scale.partition_tenant"
							" WHERE parent::pg_catalog.oid OPERATOR(pg_catalog.=) $1 AND tenant_id OPERATOR(pg_catalog.=) $2",
							2, types, values, NULL);
		PG_RETURN_VOID();
	}
	gb_check_horizon("retention", PG_GETARG_INTERVAL_P(2), cfg->granularity);
	if ((row == NULL || !OidIsValid(row->subtree)) && cfg->has_retention &&
		gb_interval_cmp(PG_GETARG_INTERVAL_P(2), &cfg->retention) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant " INT64_FORMAT " shares partitions whose retention is %s; %s is longer",
						tenant_id, gb_interval_text(&cfg->retention), gb_interval_text(PG_GETARG_INTERVAL_P(2))),
				 errhint(cfg->is_list ? "gb_tenant_dedicate() the tenant first, to give it partitions of its own." :
						 "A longer retention needs partitions of the tenant's own: register the table partitioned by LIST on the tenant.")));
	values[2] = PointerGetDatum(PG_GETARG_INTERVAL_P(2));
	gb_catalog_exec("INSERT INTO gb_scale.partition_tenant (parent, tenant_id, retention)"
					" VALUES ($1::pg_catalog.regclass, $2, $3)"
					" ON CONFLICT (parent, tenant_id) DO UPDATE SET retention = EXCLUDED.retention, purged_before = NULL",
					3, types, values, nulls);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(gb_tenant_dedicate);
Datum
gb_tenant_dedicate(PG_FUNCTION_ARGS)
{
	Oid			parent = PG_GETARG_OID(0);
	int64		tenant_id = PG_GETARG_INT64(1);
	GbPartConfig *cfg;
	GbTenantRow *row;
	Relation	rel;
	Oid			owner;
	Oid			tail_oid;
	Oid			subtree;
	GbPeriodCtx ctx;
	GbTreeBounds *bounds;
	TimestampTz now = gb_maintenance_now();
	char	   *tcol;
	char	   *columns;
	char	   *qual;
	int64		moved;
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;

	gb_require_owner(parent);
	cfg = gb_registration(parent);
	if (gb_citus_table(parent))
		gb_refuse_citus_layout(parent, "a tenant's own partitions (gb_tenant_dedicate)");
	if (!cfg->is_list)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("table %s is not partitioned by LIST on its tenant column", gb_qualified_name(parent)),
				 errhint("Only tables declared PARTITION BY LIST (tenant column) can give a tenant its own partitions.")));
	row = gb_tenant_row(parent, tenant_id);
	if (row != NULL && OidIsValid(row->subtree))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("tenant " INT64_FORMAT " of table %s already has its own partitions", tenant_id,
						gb_qualified_name(parent)),
				 errhint("Its subtree is %s.", gb_qualified_name(row->subtree))));
	rel = table_open(parent, ShareUpdateExclusiveLock);
	owner = rel->rd_rel->relowner;
	columns = gb_column_list(rel);
	tail_oid = get_default_oid_from_partdesc(RelationGetPartitionDesc(rel, true));
	table_close(rel, NoLock);	/* keeping the lock */
	if (!OidIsValid(tail_oid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("table %s has lost its tenants tail (its default partition)", gb_qualified_name(parent)),
				 errhint("gb_partition_forget() and register the table again.")));
	(void) gb_read_tree(tail_oid, cfg, false, &ctx, &bounds);
	tcol = gb_tenant_column_of(cfg);

	gb_as_owner_begin(owner, &save_userid, &save_sec, &nestlevel);
	subtree = gb_create_subtree(cfg, ctx.control_name, true, tenant_id, false);
	(void) gb_fill_subtree(cfg, subtree, bounds, now);
	qual = psprintf("%s OPERATOR(pg_catalog.=) " INT64_FORMAT, quote_identifier(tcol), tenant_id);
	/* the bulk of the rows, while the tenant (and everyone) goes on writing */
	moved = (int64) gb_move_rows(tail_oid, subtree, columns, qual);

	/*
	 * Then the rows written meanwhile, and the attach, with the table closed:
	 * its writers and readers lock it before they read its partitions, so
	 * that those who wait for it here plan with the tenant's subtree (else a
	 * writer would find the tenant's rows gone from the tail and change
	 * nothing, an insert would be routed to the tail and fail its new
	 * partition constraint, a reader would miss them).  The tail's own lock
	 * keeps out writes that name it directly.  A writer waiting for a row the
	 * first move took, while holding the table, is a deadlock that fails one
	 * of the two.
	 */
	LockRelationOid(parent, AccessExclusiveLock);
	LockRelationOid(tail_oid, ExclusiveLock);
	moved += (int64) gb_move_rows(tail_oid, subtree, columns, qual);
	gb_exec_sql(psprintf("ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (" INT64_FORMAT ")",
						 gb_qualified_name(parent), gb_qualified_name(subtree), tenant_id));
	gb_as_owner_end(save_userid, save_sec, nestlevel);
	gb_invalidate_default_tree(parent);

	{
		Oid			types[3] = {OIDOID, INT8OID, OIDOID};
		Datum		values[3] = {ObjectIdGetDatum(parent), Int64GetDatum(tenant_id), ObjectIdGetDatum(subtree)};

		gb_catalog_exec("INSERT INTO gb_scale.partition_tenant (parent, tenant_id, subtree)"
						" VALUES ($1::pg_catalog.regclass, $2, $3::pg_catalog.regclass)"
						" ON CONFLICT (parent, tenant_id) DO UPDATE SET subtree = EXCLUDED.subtree",
						3, types, values, NULL);
	}
	PG_RETURN_INT64(moved);
}

PG_FUNCTION_INFO_V1(gb_run_maintenance);
Datum
gb_run_maintenance(PG_FUNCTION_ARGS)
{
	Oid			only = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	bool		nonatomic = fcinfo->context != NULL && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;

	if (SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	gb_run_pass(only, nonatomic, false);
	SPI_finish();
	PG_RETURN_VOID();
}

/* One leaf for gb_partition_list. */
typedef struct GbListRow
{
	Oid			relid;
	bool		has_tenant;
	int64		tenant_id;
	int			bucket;			/* -1: none */
	bool		is_default;
	int64		lo;
	int64		hi;
} GbListRow;

static void
gb_list_emit(ReturnSetInfo *rsinfo, const GbPeriodCtx *ctx, const GbListRow *r)
{
	Datum		values[9];
	bool		nulls[9];
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(r->relid));
	bool		isnull;
	Datum		bound;
	float4		reltuples;

	if (!HeapTupleIsValid(tup))
		return;
	memset(nulls, 0, sizeof(nulls));
	values[0] = ObjectIdGetDatum(r->relid);
	values[1] = Int64GetDatum(r->tenant_id);
	nulls[1] = !r->has_tenant;
	values[2] = Int32GetDatum(r->bucket);
	nulls[2] = r->bucket < 0;
	values[3] = BoolGetDatum(r->is_default);
	nulls[4] = r->is_default || r->lo == PG_INT64_MIN;
	values[4] = nulls[4] ? (Datum) 0 : TimestampTzGetDatum(gb_time_from_key(ctx, r->lo));
	nulls[5] = r->is_default || r->hi == PG_INT64_MAX;
	values[5] = nulls[5] ? (Datum) 0 : TimestampTzGetDatum(gb_time_from_key(ctx, r->hi));
	bound = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
	nulls[6] = isnull;
	values[6] = isnull ? (Datum) 0 : DirectFunctionCall2(pg_get_expr, bound, ObjectIdGetDatum(r->relid));
	reltuples = ((Form_pg_class) GETSTRUCT(tup))->reltuples;
	nulls[7] = reltuples < 0;
	values[7] = Int64GetDatum((int64) reltuples);
	ReleaseSysCache(tup);
	if (gb_citus_table(r->relid))
	{
		/* the coordinator's relation is an empty shell: the shards' figures */
		int64		rows = 0;

		nulls[7] = !gb_citus_estimated_rows(r->relid, &rows);
		values[7] = Int64GetDatum(rows);
		values[8] = Int64GetDatum(gb_citus_total_size(r->relid));
	}
	else
		values[8] = DirectFunctionCall1(pg_total_relation_size, ObjectIdGetDatum(r->relid));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static int
gb_bucket_of(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		isnull;
	Datum		d;
	int			bucket = -1;

	if (!HeapTupleIsValid(tup))
		return -1;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
	if (!isnull)
	{
		PartitionBoundSpec *spec = (PartitionBoundSpec *) stringToNode(TextDatumGetCString(d));

		if (spec->strategy == PARTITION_STRATEGY_HASH)
			bucket = spec->remainder;
	}
	ReleaseSysCache(tup);
	return bucket;
}

static int
gb_oid_bucket_cmp(const ListCell *a, const ListCell *b)
{
	int			ba = gb_bucket_of(lfirst_oid(a));
	int			bb = gb_bucket_of(lfirst_oid(b));

	return ba < bb ? -1 : (ba > bb ? 1 : 0);
}

/* Every leaf of a registration's trees, with its typed bounds. */
PG_FUNCTION_INFO_V1(gb_partition_list);
Datum
gb_partition_list(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			parent = PG_GETARG_OID(0);
	GbPartConfig *cfg;
	Relation	rel;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	cfg = gb_registration(parent);
	rel = table_open(parent, AccessShareLock);
	foreach(lc, gb_registration_trees(cfg, true))
	{
		Relation	tree = relation_open(lfirst_oid(lc), AccessShareLock);
		GbPeriodCtx ctx;
		GbTreeBounds *bounds;
		GbListRow	row;
		HeapTuple	tup;

		gb_period_ctx_for_tree(tree, cfg, &ctx);
		bounds = gb_tree_bounds(tree, &ctx);
		memset(&row, 0, sizeof(row));
		row.bucket = -1;
		if (cfg->is_list && RelationGetRelid(tree) != get_default_oid_from_partdesc(RelationGetPartitionDesc(rel, true)))
		{
			/* a dedicated subtree: FOR VALUES IN (tenant) */
			tup = SearchSysCache1(RELOID, ObjectIdGetDatum(RelationGetRelid(tree)));
			if (HeapTupleIsValid(tup))
			{
				bool		isnull;
				Datum		d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);

				if (!isnull)
				{
					PartitionBoundSpec *spec = (PartitionBoundSpec *) stringToNode(TextDatumGetCString(d));

					if (spec->strategy == PARTITION_STRATEGY_LIST && list_length(spec->listdatums) == 1)
					{
						Const	   *c = linitial_node(Const, spec->listdatums);

						row.has_tenant = true;
						row.tenant_id = c->consttype == INT8OID ? DatumGetInt64(c->constvalue) :
							c->consttype == INT4OID ? DatumGetInt32(c->constvalue) : DatumGetInt16(c->constvalue);
					}
				}
				ReleaseSysCache(tup);
			}
		}
		for (int i = 0; i < bounds->nranges; i++)
		{
			row.lo = bounds->ranges[i].lo;
			row.hi = bounds->ranges[i].hi;
			row.is_default = false;
			if (get_rel_relkind(bounds->ranges[i].relid) == RELKIND_PARTITIONED_TABLE)
			{
				List	   *children = find_inheritance_children(bounds->ranges[i].relid, AccessShareLock);
				ListCell   *child;

				list_sort(children, gb_oid_bucket_cmp);
				foreach(child, children)
				{
					row.relid = lfirst_oid(child);
					row.bucket = gb_bucket_of(row.relid);
					gb_list_emit(rsinfo, &ctx, &row);
				}
				row.bucket = -1;
			}
			else
			{
				row.relid = bounds->ranges[i].relid;
				gb_list_emit(rsinfo, &ctx, &row);
			}
		}
		if (OidIsValid(bounds->default_oid))
		{
			row.relid = bounds->default_oid;
			row.is_default = true;
			gb_list_emit(rsinfo, &ctx, &row);
		}
		relation_close(tree, NoLock);
	}
	table_close(rel, NoLock);
	return (Datum) 0;
}

/*
 * Row count of a default partition, for a caller allowed to read the table.
 * Planning the count evaluates the owner's index expressions and CHECK
 * constraints: it runs as the partition's owner, restricted, as the pass does.
 */
int64
gb_count_rows(Oid relid)
{
	int64		n = 0;
	bool		isnull;
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;

	gb_as_owner_begin(gb_rel_owner(relid), &save_userid, &save_sec, &nestlevel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s", gb_qualified_name(relid)), true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	gb_as_owner_end(save_userid, save_sec, nestlevel);
	return n;
}

/*
 * What the status view shows of one registration's partitions.  Tables
 * locked exclusively right now are shown without figures rather than waited
 * for.
 */
PG_FUNCTION_INFO_V1(gb_partition_stats);
Datum
gb_partition_stats(PG_FUNCTION_ARGS)
{
	Oid			parent = PG_GETARG_OID(0);
	TupleDesc	desc;
	Datum		values[9];
	bool		nulls[9];
	List	   *configs;
	GbPartConfig *cfg;
	Relation	rel;
	int			leaves = 0;
	int			dedicated = 0;
	bool		have_oldest = false;
	bool		have_newest = false;
	bool		have_covered = false;
	TimestampTz oldest = 0;
	TimestampTz newest = 0;
	TimestampTz covered_until = 0;
	TimestampTz now = gb_maintenance_now();
	int64		default_rows = 0;
	bool		have_risk = false;
	bool		at_risk = false;
	bool		may_count = pg_class_aclcheck(parent, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
	char	   *control = NULL;
	Oid			control_type = InvalidOid;
	ListCell   *lc;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	memset(nulls, true, sizeof(nulls));
	configs = gb_config_load(parent);
	if (configs == NIL || !ConditionalLockRelationOid(parent, AccessShareLock))
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
	cfg = (GbPartConfig *) linitial(configs);
	rel = try_relation_open(parent, NoLock);
	if (rel == NULL)
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
	/* a list-layout table without its tenants tail: most tenants' rows have nowhere to go */
	if (cfg->is_list && !OidIsValid(get_default_oid_from_partdesc(RelationGetPartitionDesc(rel, true))))
	{
		at_risk = true;
		have_risk = true;
	}
	foreach(lc, gb_registration_trees(cfg, true))
	{
		Oid			tree_oid = lfirst_oid(lc);
		Relation	tree;
		GbPeriodCtx ctx;
		GbTreeBounds *bounds;

		if (!ConditionalLockRelationOid(tree_oid, AccessShareLock))
			continue;
		tree = relation_open(tree_oid, NoLock);
		gb_period_ctx_for_tree(tree, cfg, &ctx);
		control = ctx.control_name;
		control_type = ctx.control_type;
		bounds = gb_tree_bounds(tree, &ctx);
		if (tree_oid != cfg->parent && cfg->is_list &&
			tree_oid != get_default_oid_from_partdesc(RelationGetPartitionDesc(rel, true)))
			dedicated++;
		for (int i = 0; i < bounds->nranges; i++)
		{
			Oid			part = bounds->ranges[i].relid;

			leaves += get_rel_relkind(part) == RELKIND_PARTITIONED_TABLE ?
				list_length(find_inheritance_children(part, NoLock)) : 1;
		}
		/* partitions run without a gap from now's period to covered_until */
		{
			int64		now_key = gb_key_from_time(&ctx, now);
			int64		reach = now_key;

			for (int i = 0; i < bounds->nranges; i++)
				if (bounds->ranges[i].lo <= reach && bounds->ranges[i].hi > reach)
					reach = bounds->ranges[i].hi;
			/* short of the horizon the premake step makes partitions to */
			at_risk |= reach < gb_key_from_time(&ctx, gb_time_add(ctx.time_zone, now, &cfg->premake, false));
			have_risk = true;
			if (reach != PG_INT64_MAX &&
				(!have_covered || gb_time_from_key(&ctx, reach) < covered_until))
			{
				covered_until = reach == now_key ? now : gb_time_from_key(&ctx, reach);
				have_covered = true;
			}
		}
		if (bounds->nranges > 0)
		{
			int64		lo = bounds->ranges[0].lo;
			int64		hi = bounds->ranges[bounds->nranges - 1].hi;

			if (lo != PG_INT64_MIN && (!have_oldest || gb_time_from_key(&ctx, lo) < oldest))
			{
				oldest = gb_time_from_key(&ctx, lo);
				have_oldest = true;
			}
			if (hi != PG_INT64_MAX && (!have_newest || gb_time_from_key(&ctx, hi) > newest))
			{
				newest = gb_time_from_key(&ctx, hi);
				have_newest = true;
			}
		}
		if (OidIsValid(bounds->default_oid))
		{
			leaves++;
			if (may_count)
				default_rows += gb_count_rows(bounds->default_oid);
		}
		relation_close(tree, NoLock);
	}
	relation_close(rel, NoLock);

	memset(nulls, false, sizeof(nulls));
	nulls[0] = control == NULL;
	values[0] = control ? DirectFunctionCall1(namein, CStringGetDatum(control)) : (Datum) 0;
	nulls[1] = !OidIsValid(control_type);
	values[1] = ObjectIdGetDatum(control_type);
	values[2] = Int32GetDatum(leaves);
	nulls[3] = !have_oldest;
	values[3] = TimestampTzGetDatum(oldest);
	nulls[4] = !have_newest;
	values[4] = TimestampTzGetDatum(newest);
	nulls[5] = !have_covered;
	values[5] = have_covered ?
		DirectFunctionCall1(interval_justify_hours,
							DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(covered_until),
												TimestampTzGetDatum(now))) : (Datum) 0;
	nulls[6] = !may_count;
	values[6] = Int64GetDatum(default_rows);
	values[7] = Int32GetDatum(dedicated);
	nulls[8] = !have_risk;
	values[8] = BoolGetDatum(at_risk);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* Relations the running DROP removed, from the sql_drop event trigger's list. */
static List *
gb_dropped_relations(void)
{
	List	   *dropped = NIL;
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d"
					" WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
					" AND d.objsubid OPERATOR(pg_catalog.=) 0", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the objects of the event trigger");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext spi = MemoryContextSwitchTo(outer);

		CHECK_FOR_INTERRUPTS();
		if (!isnull)
			dropped = lappend_oid(dropped, relid);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return dropped;
}

/*
 * sql_drop: forget registrations (and tenant rows) of the tables the command
 * dropped, so that maintenance and a dump never meet a dangling one.  Only
 * the dropped relations are looked up, by index: a DROP costs in proportion
 * to what it drops, not to how many tables are registered.
 */
PG_FUNCTION_INFO_V1(gb_partition_on_drop);
Datum
gb_partition_on_drop(PG_FUNCTION_ARGS)
{
	Oid			nsp;
	List	   *dropped;
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1];

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s.partition_on_drop() can only be called as an event trigger", GB_INTERNAL_SCHEMA)));
	nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid(GB_PARTITION_CONFIG_TABLE, nsp)) ||
		!OidIsValid(get_relname_relid(GB_PARTITION_TENANT_TABLE, nsp)))
		PG_RETURN_VOID();
	dropped = gb_dropped_relations();
	if (dropped == NIL)
		PG_RETURN_VOID();
	values[0] = gb_oid_array(dropped);
	gb_catalog_exec("DELETE FROM gb_scale.partition_tenant t"
					" WHERE t.parent::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)", 1, types, values, NULL);
	gb_catalog_exec("UPDATE gb_scale.partition_tenant t SET subtree = NULL"
					" WHERE t.subtree::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)", 1, types, values, NULL);
	gb_catalog_exec("DELETE FROM gb_scale.partition_config p"
					" WHERE p.parent::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)", 1, types, values, NULL);
	/* and tenant isolation's registrations (src/tenant.c) */
	if (OidIsValid(get_relname_relid(GB_TENANT_ISOLATION_TABLE, nsp)))
		gb_catalog_exec("DELETE FROM gb_scale.tenant_isolation i"
						" WHERE i.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)", 1, types, values, NULL);
	/* and the sizing sources (src/sizing.c): the kind goes back to its default */
	if (OidIsValid(get_relname_relid("sizing_source", nsp)))
		gb_catalog_exec("DELETE FROM gb_scale.sizing_source s"
						" WHERE s.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)", 1, types, values, NULL);
	/* and the row quotas (src/tenant_quotas.c) */
	if (OidIsValid(get_relname_relid("tenant_quota", nsp)) && OidIsValid(get_relname_relid("plan_quota", nsp)))
	{
		gb_catalog_exec("DELETE FROM gb_scale.tenant_quota q"
						" WHERE q.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)", 1, types, values, NULL);
		gb_catalog_exec("DELETE FROM gb_scale.plan_quota q"
						" WHERE q.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)", 1, types, values, NULL);
	}
	PG_RETURN_VOID();
}

/*
 * After ALTER TABLE ... RENAME COLUMN: a registration naming the column by
 * its old name (the tenant column; the control column is read from the
 * partition key) takes the new one.  The renamed column is known by number
 * (objsubid); it was the registered one if no column bears that name any
 * more.  Other commands report no column and change nothing.
 */
PG_FUNCTION_INFO_V1(gb_partition_on_rename);
Datum
gb_partition_on_rename(PG_FUNCTION_ARGS)
{
	static const char *const follow[] = {
		"UPDATE gb_scale.partition_config r SET tenant_column = a.attname"
		" FROM pg_catalog.pg_event_trigger_ddl_commands() d, pg_catalog.pg_attribute a"
		" WHERE d.objsubid OPERATOR(pg_catalog.>) 0"
		" AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
		" AND r.parent::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid"
		" AND a.attrelid OPERATOR(pg_catalog.=) d.objid AND a.attnum OPERATOR(pg_catalog.=) d.objsubid"
		" AND r.tenant_column OPERATOR(pg_catalog.<>) a.attname"
		" AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute o WHERE o.attrelid OPERATOR(pg_catalog.=) d.objid"
		" AND o.attname OPERATOR(pg_catalog.=) r.tenant_column AND NOT o.attisdropped)",
		"UPDATE gb_scale.tenant_isolation r SET tenant_column = a.attname"
		" FROM pg_catalog.pg_event_trigger_ddl_commands() d, pg_catalog.pg_attribute a"
		" WHERE d.objsubid OPERATOR(pg_catalog.>) 0"
		" AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
		" AND r.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid"
		" AND a.attrelid OPERATOR(pg_catalog.=) d.objid AND a.attnum OPERATOR(pg_catalog.=) d.objsubid"
		" AND r.tenant_column OPERATOR(pg_catalog.<>) a.attname"
		" AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute o WHERE o.attrelid OPERATOR(pg_catalog.=) d.objid"
		" AND o.attname OPERATOR(pg_catalog.=) r.tenant_column AND NOT o.attisdropped)"
	};
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	Oid			nsp;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s.partition_on_rename() can only be called as an event trigger", GB_INTERNAL_SCHEMA)));
	/* only a rename reports a column; anything else costs no query */
	if (trigdata->parsetree == NULL || !IsA(trigdata->parsetree, RenameStmt) ||
		((RenameStmt *) trigdata->parsetree)->renameType != OBJECT_COLUMN)
		PG_RETURN_VOID();
	nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid(GB_PARTITION_CONFIG_TABLE, nsp)))
		PG_RETURN_VOID();
	gb_catalog_exec(follow[0], 0, NULL, NULL, NULL);
	if (OidIsValid(get_relname_relid(GB_TENANT_ISOLATION_TABLE, nsp)))
		gb_catalog_exec(follow[1], 0, NULL, NULL, NULL);
	PG_RETURN_VOID();
}
