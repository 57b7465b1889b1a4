/*-------------------------------------------------------------------------
 *
 * routing.c
 *	  Which shard serves a tenant: gb_scale.shard_config and
 *	  gb_scale.tenant_shard_map, read through a per-backend cache.
 *
 * The cache holds every shard (there are at most 1024) and the map's
 * entries: all of them when the map is small enough
 * (gb_scale.routing_map_cache_rows), else the tenants looked up so far.  Statement triggers on both tables
 * send a relcache invalidation of the table changed: the backend that made
 * the change sees it at its next command (and again on rollback), the others
 * at their next statement, because every lookup in a new statement first
 * accepts pending invalidations.  Rows are read with a catalog snapshot,
 * which is taken after those invalidations, so nothing committed before the
 * load can be missed.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(gb_shard_directory_changed);
PG_FUNCTION_INFO_V1(gb_shard_for_tenant);
PG_FUNCTION_INFO_V1(gb_shard_connection);
PG_FUNCTION_INFO_V1(gb_current_shard);
PG_FUNCTION_INFO_V1(gb_tenant_assign);

/* Columns of gb_scale.shard_config and gb_scale.tenant_shard_map */
enum
{
	SC_SHARD_ID = 1, SC_REGION, SC_DATACENTER, SC_CONNECTION, SC_IS_PRIMARY,
	SC_IS_ACTIVE, SC_MIN_TENANT, SC_MAX_TENANT, SC_CREATED_AT, SC_NATTS = SC_CREATED_AT
};
enum
{
	TM_TENANT_ID = 1, TM_SHARD_ID
};

/*
 * A map of up to gb_scale.routing_map_cache_rows entries is read whole, as a
 * sorted array (16 bytes an entry), so that every lookup is a binary search;
 * a bigger one is looked up tenant by tenant through its primary key,
 * remembering up to GB_TENANT_CACHE_MAX answers before the cache starts over.
 * A heap page holds well over 50 map rows: a bigger table is not even read.
 */
#define GB_MAP_ROWS_PER_BLOCK_MIN	50
#define GB_TENANT_CACHE_MAX			65536

static int	gb_routing_map_cache_rows = 500000;

typedef struct GbShard
{
	int64		min_tenant;
	int64		max_tenant;
	char	   *connection;
	int16		shard_id;
	bool		active;
} GbShard;

typedef struct GbTenantEntry
{
	int64		tenant_id;		/* hash key */
	int16		shard_id;		/* -1: no shard serves it */
} GbTenantEntry;

static MemoryContext gb_routing_context = NULL;
static GbShard *gb_shards = NULL;	/* active shards first, by min_tenant */
static int	gb_nshards = 0;
static int	gb_nactive = 0;
static bool gb_shards_valid = false;
static HTAB *gb_tenant_cache = NULL;
static bool gb_map_complete = false;	/* gb_tenant_cache holds the whole map */
static Oid	gb_shard_config_relid = InvalidOid;
static Oid	gb_tenant_map_relid = InvalidOid;

/* Bumped by every invalidation, so that a load that raced one is redone. */
static uint64 gb_routing_generation = 0;

/* The statement whose invalidations were last accepted. */
static LocalTransactionId gb_seen_lxid = InvalidLocalTransactionId;
static TimestampTz gb_seen_statement = 0;

/*
 * Forget everything.  Invalidations can arrive while a load is running (a
 * lock or a TOAST fetch accepts them), so this only marks the cache stale;
 * its memory is released by the next load.
 */
static void
gb_routing_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == gb_shard_config_relid || relid == gb_tenant_map_relid ||
		!OidIsValid(gb_shard_config_relid))
	{
		gb_routing_generation++;
		gb_shards_valid = false;
		gb_tenant_cache = NULL;
		gb_map_complete = false;
	}
}

/* A new limit applies from the next lookup. */
static void
gb_routing_map_cache_rows_assign(int newval, void *extra)
{
	gb_routing_relcache_callback((Datum) 0, InvalidOid);
}

void
gb_routing_init(void)
{
	DefineCustomIntVariable("gb_scale.routing_map_cache_rows",
							"Largest gb_scale.tenant_shard_map that each backend reads whole for routing lookups.",
							"A bigger map is looked up tenant by tenant, remembering the latest answers. 0 never reads it whole.",
							&gb_routing_map_cache_rows,
							500000, 0, 10000000,
							PGC_SUSET, 0,
							NULL, gb_routing_map_cache_rows_assign, NULL);
	CacheRegisterRelcacheCallback(gb_routing_relcache_callback, (Datum) 0);
}

/* AFTER ... FOR EACH STATEMENT on both directory tables. */
Datum
gb_shard_directory_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("gb_scale.shard_directory_changed() must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

static Oid
gb_directory_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s.%s does not exist", GB_INTERNAL_SCHEMA, relname),
				 errhint("Run CREATE EXTENSION gb_scale in this database.")));
	return relid;
}

static int
gb_shard_cmp(const void *a, const void *b)
{
	const GbShard *x = (const GbShard *) a;
	const GbShard *y = (const GbShard *) b;

	if (x->active != y->active)
		return x->active ? -1 : 1;
	if (x->min_tenant != y->min_tenant)
		return x->min_tenant < y->min_tenant ? -1 : 1;
	return (int) x->shard_id - (int) y->shard_id;
}

static HTAB *
gb_tenant_cache_create(long nelem)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(GbTenantEntry);
	ctl.hcxt = gb_routing_context;
	return hash_create("gb_scale tenant shards", nelem, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Read the whole map into gb_tenant_cache when it is small enough, so that a
 * tenant missing from the cache is missing from the map; otherwise leave the
 * cache to be filled tenant by tenant.
 */
static void
gb_load_map_whole(Snapshot snapshot)
{
	Relation	rel = table_open(gb_tenant_map_relid, AccessShareLock);
	BlockNumber max_blocks = (BlockNumber) (gb_routing_map_cache_rows / GB_MAP_ROWS_PER_BLOCK_MIN + 1);
	HTAB	   *cache;
	SysScanDesc scan;
	HeapTuple	tuple;
	long		count = 0;

	if (gb_routing_map_cache_rows == 0 || RelationGetNumberOfBlocks(rel) > max_blocks)
	{
		table_close(rel, AccessShareLock);
		return;
	}
	cache = gb_tenant_cache_create(Max(1024, (long) RelationGetNumberOfBlocks(rel) * 100));
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		int64		tenant = DatumGetInt64(heap_getattr(tuple, TM_TENANT_ID, RelationGetDescr(rel), &isnull));
		GbTenantEntry *entry;

		if (++count > gb_routing_map_cache_rows)
			break;
		entry = hash_search(cache, &tenant, HASH_ENTER, NULL);
		entry->shard_id = DatumGetInt16(heap_getattr(tuple, TM_SHARD_ID, RelationGetDescr(rel), &isnull));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (count > gb_routing_map_cache_rows)
	{
		hash_destroy(cache);
		return;
	}
	gb_tenant_cache = cache;
	gb_map_complete = true;
}

/* Read every shard; true unless an invalidation arrived meanwhile. */
static bool
gb_load_shards(void)
{
	uint64		generation;
	Relation	rel;
	Snapshot	snapshot;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			capacity = 16;
	MemoryContext old;

	if (gb_routing_context == NULL)
		gb_routing_context = AllocSetContextCreate(TopMemoryContext, "gb_scale routing",
												   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(gb_routing_context);
	gb_tenant_cache = NULL;
	gb_map_complete = false;
	gb_shards = NULL;
	gb_nshards = gb_nactive = 0;
	rel = table_open(gb_directory_relid(GB_SHARD_CONFIG_TABLE), AccessShareLock);
	gb_tenant_map_relid = gb_directory_relid(GB_TENANT_MAP_TABLE);
	gb_shard_config_relid = RelationGetRelid(rel);
	generation = gb_routing_generation;

	old = MemoryContextSwitchTo(gb_routing_context);
	gb_shards = palloc(capacity * sizeof(GbShard));
	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(rel)));
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		values[SC_NATTS];
		bool		nulls[SC_NATTS];
		GbShard    *s;

		heap_deform_tuple(tuple, RelationGetDescr(rel), values, nulls);
		if (gb_nshards == capacity)
		{
			capacity *= 2;
			gb_shards = repalloc(gb_shards, capacity * sizeof(GbShard));
		}
		s = &gb_shards[gb_nshards++];
		s->shard_id = DatumGetInt16(values[SC_SHARD_ID - 1]);
		s->connection = TextDatumGetCString(values[SC_CONNECTION - 1]);
		/* is_active has a default but may be NULL: only true is active */
		s->active = !nulls[SC_IS_ACTIVE - 1] && DatumGetBool(values[SC_IS_ACTIVE - 1]);
		s->min_tenant = DatumGetInt64(values[SC_MIN_TENANT - 1]);
		s->max_tenant = DatumGetInt64(values[SC_MAX_TENANT - 1]);
		if (s->active)
			gb_nactive++;
	}
	systable_endscan(scan);
	MemoryContextSwitchTo(old);
	table_close(rel, AccessShareLock);
	gb_load_map_whole(snapshot);
	UnregisterSnapshot(snapshot);

	qsort(gb_shards, gb_nshards, sizeof(GbShard), gb_shard_cmp);
	if (generation != gb_routing_generation)
		return false;
	gb_shards_valid = true;
	return true;
}

/* Accept other sessions' changes once per statement, and load the shards. */
static void
gb_routing_ready(void)
{
	if (MyProc->lxid != gb_seen_lxid || GetCurrentStatementStartTimestamp() != gb_seen_statement)
	{
		AcceptInvalidationMessages();
		gb_seen_lxid = MyProc->lxid;
		gb_seen_statement = GetCurrentStatementStartTimestamp();
	}
	while (!gb_shards_valid)
		(void) gb_load_shards();
}

static const GbShard *
gb_shard_by_id(int16 shard_id)
{
	for (int i = 0; i < gb_nshards; i++)
		if (gb_shards[i].shard_id == shard_id)
			return &gb_shards[i];
	return NULL;
}

/* The active shard whose inclusive range holds TENANT, by binary search. */
static int16
gb_shard_by_range(int64 tenant)
{
	int			lo = 0;
	int			hi = gb_nactive - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		const GbShard *s = &gb_shards[mid];

		if (tenant < s->min_tenant)
			hi = mid - 1;
		else if (tenant > s->max_tenant)
			lo = mid + 1;
		else
			return s->shard_id;
	}
	return -1;
}

/* The explicit placement of TENANT, by the primary key of the map; -1: none. */
static int16
gb_shard_by_map(int64 tenant)
{
	Relation	rel = table_open(gb_tenant_map_relid, AccessShareLock);
	Oid			index = RelationGetPrimaryKeyIndex(rel);
	Snapshot	snapshot;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	int16		shard = -1;

	if (!OidIsValid(index))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s.%s has lost its primary key", GB_INTERNAL_SCHEMA, GB_TENANT_MAP_TABLE),
				 errhint("Recreate the extension.")));
	ScanKeyInit(&key, TM_TENANT_ID, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(tenant));
	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(rel)));
	scan = systable_beginscan(rel, index, true, snapshot, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, TM_SHARD_ID, RelationGetDescr(rel), &isnull);

		if (!isnull)
			shard = DatumGetInt16(d);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return shard;
}

static int16
gb_lookup_tenant(int64 tenant)
{
	for (;;)
	{
		GbTenantEntry *entry;
		bool		found;
		uint64		generation;
		int16		shard;

		gb_routing_ready();
		if (gb_tenant_cache != NULL)
		{
			entry = hash_search(gb_tenant_cache, &tenant, HASH_FIND, NULL);
			if (entry)
				return entry->shard_id;
			if (gb_map_complete)
				return gb_shard_by_range(tenant);
		}
		if (gb_tenant_cache == NULL || hash_get_num_entries(gb_tenant_cache) >= GB_TENANT_CACHE_MAX)
		{
			if (gb_tenant_cache)
				hash_destroy(gb_tenant_cache);
			gb_tenant_cache = gb_tenant_cache_create(1024);
		}

		generation = gb_routing_generation;
		shard = gb_shard_by_map(tenant);
		if (generation != gb_routing_generation)
			continue;			/* the map changed under us: start over */
		if (shard < 0)
			shard = gb_shard_by_range(tenant);
		entry = hash_search(gb_tenant_cache, &tenant, HASH_ENTER, &found);
		entry->shard_id = shard;
		return shard;
	}
}

static int16
gb_required_tenant_shard(int64 tenant)
{
	int16		shard = gb_lookup_tenant(tenant);

	if (shard < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no shard serves tenant " INT64_FORMAT, tenant),
				 errdetail("Tenant " INT64_FORMAT " has no entry in gb_scale.tenant_shard_map and no active shard's tenant range holds it.", tenant),
				 errhint("Place it with gb_tenant_assign(), or widen an active shard's range in gb_scale.shard_config.")));
	return shard;
}

Datum
gb_shard_for_tenant(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT16(gb_required_tenant_shard(PG_GETARG_INT64(0)));
}

Datum
gb_shard_connection(PG_FUNCTION_ARGS)
{
	int16		shard = gb_required_tenant_shard(PG_GETARG_INT64(0));
	const GbShard *s;

	/* the lookup left the shards loaded */
	s = gb_shard_by_id(shard);
	if (s != NULL)
		PG_RETURN_TEXT_P(cstring_to_text(s->connection));
	/* only if the directory changed in between */
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("shard %d of tenant " INT64_FORMAT " is not in gb_scale.shard_config",
					shard, PG_GETARG_INT64(0))));
	PG_RETURN_NULL();
}

Datum
gb_current_shard(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT16((int16) gb_required_shard());
}

/*
 * Write or move a tenant's entry, with its shard's region.  Runs with the
 * caller's rights: gb_scale_admin and superusers may write the map.
 */
Datum
gb_tenant_assign(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	int16		shard = PG_GETARG_INT16(1);
	Oid			types[2] = {INT8OID, INT2OID};
	Datum		values[2];
	bool		isnull;
	bool		active;

	if (shard < 0 || shard > GB_MAX_SHARD_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shard id %d is out of range", shard),
				 errhint("A shard id is an integer from 0 to %d.", GB_MAX_SHARD_ID)));
	values[0] = Int64GetDatum(tenant);
	values[1] = Int16GetDatum(shard);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT s.is_active FROM gb_scale.shard_config s"
							  " WHERE s.shard_id OPERATOR(pg_catalog.=) $2 FOR KEY SHARE",
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read gb_scale.shard_config");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("shard %d does not exist", shard),
				 errhint("Add it to gb_scale.shard_config first (or sync the directory with gb_shard_sync()).")));
	active = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull || !active)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shard %d is not active; tenant " INT64_FORMAT " cannot be placed on it", shard, tenant),
				 errhint("Set is_active on the shard in gb_scale.shard_config first.")));
	if (SPI_execute_with_args("INSERT INTO gb_scale.tenant_shard_map AS m (tenant_id, shard_id, region_code)"
							  " SELECT $1, s.shard_id, s.region_code FROM gb_scale.shard_config s"
							  " WHERE s.shard_id OPERATOR(pg_catalog.=) $2"
							  " ON CONFLICT (tenant_id) DO UPDATE SET shard_id = excluded.shard_id,"
							  " region_code = excluded.region_code"
							  " WHERE m.shard_id OPERATOR(pg_catalog.<>) excluded.shard_id"
							  " OR m.region_code OPERATOR(pg_catalog.<>) excluded.region_code",
							  2, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write gb_scale.tenant_shard_map");
	SPI_finish();
	PG_RETURN_VOID();
}
