/*-------------------------------------------------------------------------
 *
 * routing_routes.c
 *	  gb_shard_routes(): the routing of every tenant as ordered, disjoint
 *	  tenant ranges, for load balancers and other routers.
 *
 * The rule is routing.c's: a tenant's tenant_shard_map entry, else the
 * active shard whose inclusive range holds it, else no shard.  The ranges
 * come from one merge of the active shards' ranges, sorted by their start,
 * with the map read in tenant order through its primary key: each entry is
 * a single-tenant range that cuts the range rule's ranges around it, and
 * tenants that no rule serves are left out.
 *
 * Both tables are locked first and then read in one snapshot, a fresh one
 * as gb_shard_for_tenant() uses (the latest commits and this transaction's
 * own changes), so the two agree, and a concurrent gb_tenant_assign or
 * directory edit is either wholly in the result or not at all: the ranges
 * never overlap and never miss a tenant.  Taking the snapshot after the
 * locks also covers a TRUNCATE and reload of the map, which an older
 * snapshot would see as an empty table.
 *
 * Memory: the shards (one per shard_config row) for the call; each range
 * goes straight to the tuplestore, which spills to disk past work_mem, so a
 * map of millions of tenants streams.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(gb_shard_routes);

#define GB_ROUTE_COLUMNS	9

/* A row of shard_config, with what a route shows of it. */
typedef struct GbRouteShard
{
	int16		shard_id;
	bool		active;
	int64		min_tenant;
	int64		max_tenant;
	char	   *connection;		/* NULL when the row has none */
	bool		parsed;			/* the endpoint below is filled in */
	Datum		region;			/* char(3) */
	Datum		datacenter;		/* varchar(32) */
	Datum		host;
	Datum		port;
	Datum		dbname;
	bool		region_null;
	bool		datacenter_null;
	bool		host_null;
	bool		port_null;
	bool		dbname_null;
} GbRouteShard;

/* The merge in progress. */
typedef struct GbRoutes
{
	ReturnSetInfo *rsinfo;
	MemoryContext call_context; /* the shards' endpoints live here */
	GbRouteShard *shards;		/* by shard_id */
	int			nshards;
	GbRouteShard **ranges;		/* the active shards, by min_tenant */
	int			nranges;
	int			range;			/* the first range that may still serve */
	int64		next;			/* the first tenant not yet routed */
	bool		done;			/* routed up to the largest bigint */
} GbRoutes;

static int
gb_route_shard_id_cmp(const void *a, const void *b)
{
	return (int) ((const GbRouteShard *) a)->shard_id - (int) ((const GbRouteShard *) b)->shard_id;
}

static int
gb_route_range_cmp(const void *a, const void *b)
{
	const GbRouteShard *x = *(const GbRouteShard *const *) a;
	const GbRouteShard *y = *(const GbRouteShard *const *) b;

	if (x->min_tenant != y->min_tenant)
		return x->min_tenant < y->min_tenant ? -1 : 1;
	return (int) x->shard_id - (int) y->shard_id;
}

/* A varlena column's value, detoasted into the current memory context. */
static Datum
gb_route_copy_varlena(Datum value, bool isnull)
{
	if (isnull)
		return (Datum) 0;
	return PointerGetDatum(PG_DETOAST_DATUM_COPY(value));
}

/* Every row of shard_config, as SNAPSHOT sees it. */
static void
gb_routes_read_shards(GbRoutes *r, Relation rel, Snapshot snapshot)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	att_shard = gb_directory_attnum(rel, "shard_id", INT2OID);
	AttrNumber	att_region = gb_directory_attnum(rel, "region_code", BPCHAROID);
	AttrNumber	att_datacenter = gb_directory_attnum(rel, "datacenter", VARCHAROID);
	AttrNumber	att_connection = gb_directory_attnum(rel, "connection_string", TEXTOID);
	AttrNumber	att_active = gb_directory_attnum(rel, "is_active", BOOLOID);
	AttrNumber	att_min = gb_directory_attnum(rel, "min_tenant_id", INT8OID);
	AttrNumber	att_max = gb_directory_attnum(rel, "max_tenant_id", INT8OID);
	int			capacity = 16;
	SysScanDesc scan;
	HeapTuple	tuple;

	r->shards = palloc(capacity * sizeof(GbRouteShard));
	r->nshards = 0;
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		bool		null_active;
		bool		null_min;
		bool		null_max;
		Datum		shard = heap_getattr(tuple, att_shard, desc, &isnull);
		Datum		active = heap_getattr(tuple, att_active, desc, &null_active);
		Datum		min_tenant = heap_getattr(tuple, att_min, desc, &null_min);
		Datum		max_tenant = heap_getattr(tuple, att_max, desc, &null_max);
		Datum		value;
		GbRouteShard *s;

		CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;
		if (r->nshards == capacity)
		{
			capacity *= 2;
			r->shards = repalloc(r->shards, capacity * sizeof(GbRouteShard));
		}
		s = &r->shards[r->nshards++];
		memset(s, 0, sizeof(GbRouteShard));
		s->shard_id = DatumGetInt16(shard);
		/* routing.c's rule: only is_active true with both bounds is active */
		s->active = !null_active && DatumGetBool(active) && !null_min && !null_max;
		s->min_tenant = null_min ? 0 : DatumGetInt64(min_tenant);
		s->max_tenant = null_max ? 0 : DatumGetInt64(max_tenant);
		value = heap_getattr(tuple, att_region, desc, &s->region_null);
		s->region = gb_route_copy_varlena(value, s->region_null);
		value = heap_getattr(tuple, att_datacenter, desc, &s->datacenter_null);
		s->datacenter = gb_route_copy_varlena(value, s->datacenter_null);
		value = heap_getattr(tuple, att_connection, desc, &isnull);
		s->connection = isnull ? NULL : TextDatumGetCString(value);
	}
	systable_endscan(scan);
	qsort(r->shards, r->nshards, sizeof(GbRouteShard), gb_route_shard_id_cmp);

	r->ranges = palloc(Max(r->nshards, 1) * sizeof(GbRouteShard *));
	r->nranges = 0;
	for (int i = 0; i < r->nshards; i++)
		if (r->shards[i].active)
			r->ranges[r->nranges++] = &r->shards[i];
	qsort(r->ranges, r->nranges, sizeof(GbRouteShard *), gb_route_range_cmp);

	/*
	 * The exclusion constraint keeps active ranges apart, but it may be
	 * deferred inside a transaction: overlapping ranges have no single
	 * answer to give a router.
	 */
	for (int i = 1; i < r->nranges; i++)
		if (r->ranges[i]->min_tenant <= r->ranges[i - 1]->max_tenant)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("active shards %d and %d both serve tenant " INT64_FORMAT,
							r->ranges[i - 1]->shard_id, r->ranges[i]->shard_id, r->ranges[i]->min_tenant),
					 errdetail("Their tenant ranges in gb_scale.shard_config overlap, which constraint shard_config_active_ranges_disjoint allows only while it is deferred."),
					 errhint("Make the ranges disjoint again (or deactivate one of the shards) before asking for the routes.")));
}

static GbRouteShard *
gb_routes_shard(GbRoutes *r, int16 shard_id)
{
	GbRouteShard key = {0};

	key.shard_id = shard_id;
	return bsearch(&key, r->shards, r->nshards, sizeof(GbRouteShard), gb_route_shard_id_cmp);
}

/* Names the shard whose connection string failed to parse. */
static void
gb_routes_parse_context(void *arg)
{
	errcontext("connection_string of shard %d in %s.%s",
			   ((GbRouteShard *) arg)->shard_id, GB_INTERNAL_SCHEMA, GB_SHARD_CONFIG_TABLE);
}

/* The shard's host, port and dbname, read from its connection string once. */
static void
gb_routes_endpoint(GbRoutes *r, GbRouteShard *s)
{
	MemoryContext old;
	ErrorContextCallback callback;
	char	   *host = NULL;
	char	   *port = NULL;
	char	   *dbname = NULL;

	if (s->parsed)
		return;
	old = MemoryContextSwitchTo(r->call_context);
	if (s->connection != NULL)
	{
		callback.callback = gb_routes_parse_context;
		callback.arg = s;
		callback.previous = error_context_stack;
		error_context_stack = &callback;
		gb_conninfo_endpoint(s->connection, &host, &port, &dbname);
		error_context_stack = callback.previous;
	}
	s->host_null = host == NULL;
	s->port_null = port == NULL;
	s->dbname_null = dbname == NULL;
	s->host = host ? CStringGetTextDatum(host) : (Datum) 0;
	s->port = port ? CStringGetTextDatum(port) : (Datum) 0;
	s->dbname = dbname ? CStringGetTextDatum(dbname) : (Datum) 0;
	s->parsed = true;
	MemoryContextSwitchTo(old);
}

static void
gb_routes_emit(GbRoutes *r, int64 from, int64 to, GbRouteShard *s, bool explicit)
{
	Datum		values[GB_ROUTE_COLUMNS];
	bool		nulls[GB_ROUTE_COLUMNS] = {0};

	gb_routes_endpoint(r, s);
	values[0] = Int64GetDatum(from);
	values[1] = Int64GetDatum(to);
	values[2] = Int16GetDatum(s->shard_id);
	values[3] = BoolGetDatum(explicit);
	values[4] = s->region;
	nulls[4] = s->region_null;
	values[5] = s->datacenter;
	nulls[5] = s->datacenter_null;
	values[6] = s->host;
	nulls[6] = s->host_null;
	values[7] = s->port;
	nulls[7] = s->port_null;
	values[8] = s->dbname;
	nulls[8] = s->dbname_null;
	tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, values, nulls);
}

/* The range rule's routes of the tenants from r->next to UPTO. */
static void
gb_routes_by_range(GbRoutes *r, int64 upto)
{
	while (!r->done && r->next <= upto && r->range < r->nranges)
	{
		GbRouteShard *s = r->ranges[r->range];
		int64		from;
		int64		to;

		if (s->max_tenant < r->next)
		{
			r->range++;
			continue;
		}
		if (s->min_tenant > upto)
			break;
		from = Max(s->min_tenant, r->next);
		to = Min(s->max_tenant, upto);
		gb_routes_emit(r, from, to, s, false);
		if (to == PG_INT64_MAX)
			r->done = true;
		else
			r->next = to + 1;
	}
}

/* The map entry of TENANT on SHARD_ID, after the range rule's routes below it. */
static void
gb_routes_explicit(GbRoutes *r, int64 tenant, int16 shard_id)
{
	GbRouteShard *s;

	/* the primary key yields each tenant once, in order */
	if (r->done || tenant < r->next)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("tenant " INT64_FORMAT " of %s.%s is out of order in its primary key",
						tenant, GB_INTERNAL_SCHEMA, GB_TENANT_MAP_TABLE),
				 errhint("REINDEX TABLE %s.%s.", GB_INTERNAL_SCHEMA, GB_TENANT_MAP_TABLE)));
	s = gb_routes_shard(r, shard_id);
	/* only if the foreign key was bypassed (session_replication_role) */
	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("tenant " INT64_FORMAT " is placed on shard %d, which is not in %s.%s",
						tenant, shard_id, GB_INTERNAL_SCHEMA, GB_SHARD_CONFIG_TABLE),
				 errhint("Add shard %d back to %s.%s, or move the tenant with gb_tenant_assign().",
						 shard_id, GB_INTERNAL_SCHEMA, GB_SHARD_CONFIG_TABLE)));
	if (tenant > r->next)
		gb_routes_by_range(r, tenant - 1);
	gb_routes_emit(r, tenant, tenant, s, true);
	if (tenant == PG_INT64_MAX)
		r->done = true;
	else
		r->next = tenant + 1;
}

/*
 * gb_shard_routes() RETURNS TABLE (min_tenant_id bigint, max_tenant_id bigint,
 *   shard_id smallint, explicit boolean, region_code char(3),
 *   datacenter varchar(32), host text, port text, dbname text)
 */
Datum
gb_shard_routes(PG_FUNCTION_ARGS)
{
	GbRoutes	r;
	Relation	config;
	Relation	map;
	Relation	index;
	Oid			index_oid;
	AttrNumber	att_tenant;
	AttrNumber	att_shard;
	Snapshot	snapshot;
	SysScanDesc scan;
	HeapTuple	tuple;
	MemoryContext row_context;
	MemoryContext old;
	Oid			citus_table = gb_citus_tenant_relid();

	/* Citus hashes tenant ids: its placement makes no tenant ranges */
	if (OidIsValid(citus_table))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("gb_shard_routes cannot list routes: Citus places tenants here"),
				 errdetail("Citus places tenants by a hash of their id (table %s), not by tenant ranges.",
						   get_rel_name(citus_table)),
				 errhint("Send queries to any Citus node, which routes them itself, or ask gb_shard_for_tenant() per tenant.")));
	InitMaterializedSRF(fcinfo, 0);
	memset(&r, 0, sizeof(r));
	r.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	r.call_context = CurrentMemoryContext;
	r.next = PG_INT64_MIN;

	/* locks first, then the snapshot: see the top of the file */
	config = table_open(gb_directory_relid(GB_SHARD_CONFIG_TABLE), AccessShareLock);
	map = table_open(gb_directory_relid(GB_TENANT_MAP_TABLE), AccessShareLock);
	att_tenant = gb_directory_attnum(map, "tenant_id", INT8OID);
	att_shard = gb_directory_attnum(map, "shard_id", INT2OID);
	index_oid = RelationGetPrimaryKeyIndex(map);
	if (!OidIsValid(index_oid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s.%s has lost its primary key", GB_INTERNAL_SCHEMA, GB_TENANT_MAP_TABLE),
				 errhint("Recreate the extension.")));
	index = index_open(index_oid, AccessShareLock);
	if (index->rd_rel->relam != BTREE_AM_OID || index->rd_index->indnkeyatts != 1 ||
		index->rd_index->indkey.values[0] != att_tenant ||
		(index->rd_indoption[0] & INDOPTION_DESC) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the primary key of table %s.%s is not an ascending btree on tenant_id",
						GB_INTERNAL_SCHEMA, GB_TENANT_MAP_TABLE),
				 errhint("Recreate the extension.")));

	InvalidateCatalogSnapshot();
	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(map)));
	gb_routes_read_shards(&r, config, snapshot);

	row_context = AllocSetContextCreate(CurrentMemoryContext, "gb_shard_routes row",
										ALLOCSET_SMALL_SIZES);
	scan = systable_beginscan_ordered(map, index, snapshot, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext_ordered(scan, ForwardScanDirection)))
	{
		bool		tenant_null;
		bool		shard_null;
		Datum		tenant = heap_getattr(tuple, att_tenant, RelationGetDescr(map), &tenant_null);
		Datum		shard = heap_getattr(tuple, att_shard, RelationGetDescr(map), &shard_null);

		CHECK_FOR_INTERRUPTS();
		/* as in routing_map.c: an entry without a shard leaves the range rule */
		if (tenant_null || shard_null)
			continue;
		old = MemoryContextSwitchTo(row_context);
		gb_routes_explicit(&r, DatumGetInt64(tenant), DatumGetInt16(shard));
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_context);
	}
	systable_endscan_ordered(scan);
	if (!r.done)
		gb_routes_by_range(&r, PG_INT64_MAX);

	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);
	table_close(map, AccessShareLock);
	table_close(config, AccessShareLock);
	return (Datum) 0;
}
