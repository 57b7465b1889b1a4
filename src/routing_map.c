/*-------------------------------------------------------------------------
 *
 * routing_map.c
 *	  gb_scale.tenant_shard_map in shared memory: one hash table per
 *	  database, kept in step by the transactions that change the map.
 *
 * See the top of routing.c for the design and its rules.  This file holds
 * the fixed shared memory (one slot per database), the DSA area that holds
 * the tables, their loading, the change tracking of the writing backend
 * and its commit-time updates, the table lookups used when shared memory
 * cannot answer, and gb_scale.routing_status.
 *
 * Locking: a slot's LWLock protects everything in the slot and its table;
 * readers take it shared for one probe, writers exclusively around their
 * pre-commit marks and their commit-time writes.  gb_map->lock (the named
 * tranche) serialises assigning slots to databases and creating the area.
 * A load holds ShareLock on tenant_shard_map, taken without waiting, so no
 * writer is between its first change and the end of its commit meanwhile.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(gb_tenant_map_changed);
PG_FUNCTION_INFO_V1(gb_routing_status);

#define GB_MAP_SLOTS			64	/* databases with a shared map */
#define GB_MAP_MIN_CAPACITY		1024
#define GB_MAP_TRACK_MAX		10000	/* changed tenants tracked one by one */
#define GB_TENANT_CACHE_MAX		65536	/* per-backend cache of table lookups */
#define GB_MAP_TRANCHE			"gb_scale routing"

/* One tenant of the map: 16 bytes. */
typedef struct GbMapEntry
{
	int64		tenant;
	int16		shard;			/* -1: no map entry (only while in flux) */
	uint16		flux;			/* writers between pre-commit and commit */
	bool		used;
} GbMapEntry;

typedef enum GbMapState
{
	GB_MAP_EMPTY,				/* to be read from the table */
	GB_MAP_LOADING,				/* being read by loader_pid */
	GB_MAP_READY,				/* answers lookups */
	GB_MAP_OVERFLOW				/* bigger than overflow_limit: not held */
} GbMapState;

typedef struct GbMapSlot
{
	LWLock		lock;
	Oid			dboid;			/* InvalidOid: free */
	Oid			map_relid;		/* the tenant_shard_map read */
	GbMapState	state;
	bool		synced;			/* a load ran since the slot was assigned */
	int			loader_pid;
	int64		overflow_limit;
	dsa_pointer table;
	uint64		capacity;		/* a power of two, or 0 */
	uint64		entries;
	uint32		committing;		/* writers between pre-commit and commit */
	uint64		generation;		/* bumped by every end of such a writer */
	uint64		loads;
	uint64		updates;		/* entries written by commits */
	uint64		reload_requests;	/* commits that left the map to reload */
	double		last_load_ms;
	TimestampTz last_load_at;
} GbMapSlot;

typedef struct GbMapShared
{
	LWLock	   *lock;
	int			tranche_id;
	dsa_handle	area;
	GbMapSlot	slots[GB_MAP_SLOTS];
	int			nprocs;
	/* by pgprocno: its transaction changed the map (parallel workers ask) */
	bool		changed_map[FLEXIBLE_ARRAY_MEMBER];
} GbMapShared;

/* A tenant changed by this backend's transaction. */
typedef struct GbMapChange
{
	int64		tenant;			/* hash key */
	SubTransactionId subid;		/* the oldest subtransaction that changed it */
	int16		final_shard;	/* at pre-commit: -1 when no longer mapped */
	bool		marked;			/* flux taken in shared memory */
} GbMapChange;

/* A table lookup remembered by this backend. */
typedef struct GbMapCached
{
	int64		tenant;
	int16		shard;
} GbMapCached;

int			gb_routing_map_cache_rows = 10000000;

static GbMapShared *gb_map = NULL;
static dsa_area *gb_map_area = NULL;
static int	gb_my_slot = -1;

/* This transaction's changes to the map. */
static MemoryContext gb_changes_context = NULL;
static HTAB *gb_changes = NULL;
static SubTransactionId gb_changes_max_subid = InvalidSubTransactionId;
static SubTransactionId gb_whole_change_subid = InvalidSubTransactionId;
static bool gb_committing = false;	/* counted in the slot's committing */
static dsa_pointer gb_marked_table = InvalidDsaPointer;
static bool gb_changes_published = false;	/* in changed_map */

/* Table lookups remembered, valid while the slot's generation is unchanged. */
static MemoryContext gb_cache_context = NULL;
static HTAB *gb_cache = NULL;
static uint64 gb_cache_generation = 0;
static Oid	gb_cache_relid = InvalidOid;

/* Columns of tenant_shard_map, found by name. */
static Oid	gb_map_columns_relid = InvalidOid;
static AttrNumber gb_map_tenant_attnum;
static AttrNumber gb_map_shard_attnum;

/* The load in progress, for its clean-up on error. */
static dsa_pointer gb_loading_table = InvalidDsaPointer;

static int
gb_map_nprocs(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

Size
gb_routing_shmem_size(void)
{
	return MAXALIGN(add_size(offsetof(GbMapShared, changed_map), gb_map_nprocs()));
}

void
gb_routing_shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gb_map = ShmemInitStruct("gb_scale routing map", gb_routing_shmem_size(), &found);
	if (!found)
	{
		memset(gb_map, 0, gb_routing_shmem_size());
		gb_map->lock = &(GetNamedLWLockTranche(GB_MAP_TRANCHE))->lock;
		gb_map->tranche_id = LWLockNewTrancheId();
		gb_map->area = DSM_HANDLE_INVALID;
		gb_map->nprocs = gb_map_nprocs();
		for (int i = 0; i < GB_MAP_SLOTS; i++)
		{
			LWLockInitialize(&gb_map->slots[i].lock, gb_map->tranche_id);
			gb_map->slots[i].table = InvalidDsaPointer;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
gb_routing_shmem_request(void)
{
	RequestAddinShmemSpace(gb_routing_shmem_size());
	RequestNamedLWLockTranche(GB_MAP_TRANCHE, 1);
}

static void
gb_map_require_shared(void)
{
	if (gb_map == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shard routing requires gb_scale to be loaded via shared_preload_libraries"),
				 errhint("Add gb_scale to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* The area holding the tables, created by the first backend that needs it. */
static dsa_area *
gb_map_get_area(void)
{
	if (gb_map_area != NULL)
		return gb_map_area;
	LWLockRegisterTranche(gb_map->tranche_id, GB_MAP_TRANCHE);
	LWLockAcquire(gb_map->lock, LW_EXCLUSIVE);
	PG_TRY();
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		if (gb_map->area == DSM_HANDLE_INVALID)
		{
			gb_map_area = dsa_create(gb_map->tranche_id);
			dsa_pin(gb_map_area);
			gb_map->area = dsa_get_handle(gb_map_area);
		}
		else
			gb_map_area = dsa_attach(gb_map->area);
		dsa_pin_mapping(gb_map_area);
		MemoryContextSwitchTo(old);
	}
	PG_FINALLY();
	{
		LWLockRelease(gb_map->lock);
	}
	PG_END_TRY();
	return gb_map_area;
}

/*
 * This database's slot, assigned on first use.  A slot whose database is
 * gone is taken over; when every slot serves a live database, NULL: the
 * database is then routed from the table alone.
 */
static GbMapSlot *
gb_map_my_slot(void)
{
	bool		gone[GB_MAP_SLOTS];
	Oid			seen[GB_MAP_SLOTS];

	gb_map_require_shared();
	if (gb_my_slot >= 0 && gb_map->slots[gb_my_slot].dboid == MyDatabaseId)
		return &gb_map->slots[gb_my_slot];
	LWLockRegisterTranche(gb_map->tranche_id, GB_MAP_TRANCHE);

	/* which slots serve a database that is gone, looked up without the lock */
	LWLockAcquire(gb_map->lock, LW_SHARED);
	for (int i = 0; i < GB_MAP_SLOTS; i++)
		seen[i] = gb_map->slots[i].dboid;
	LWLockRelease(gb_map->lock);
	for (int i = 0; i < GB_MAP_SLOTS; i++)
		gone[i] = !OidIsValid(seen[i]) ||
			(seen[i] != MyDatabaseId && !SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(seen[i])));

	LWLockAcquire(gb_map->lock, LW_EXCLUSIVE);
	for (int i = 0; i < GB_MAP_SLOTS && gb_my_slot < 0; i++)
		if (gb_map->slots[i].dboid == MyDatabaseId)
			gb_my_slot = i;
	for (int i = 0; i < GB_MAP_SLOTS && gb_my_slot < 0; i++)
	{
		GbMapSlot  *slot = &gb_map->slots[i];

		if (!gone[i] || slot->dboid != seen[i])
			continue;
		/* a gone database's table is freed by the next load of this slot */
		LWLockAcquire(&slot->lock, LW_EXCLUSIVE);
		slot->dboid = MyDatabaseId;
		slot->map_relid = InvalidOid;
		slot->state = GB_MAP_EMPTY;
		slot->synced = false;
		slot->committing = 0;
		slot->loads = slot->updates = slot->reload_requests = 0;
		slot->last_load_ms = 0;
		slot->last_load_at = 0;
		LWLockRelease(&slot->lock);
		gb_my_slot = i;
	}
	LWLockRelease(gb_map->lock);
	return gb_my_slot >= 0 ? &gb_map->slots[gb_my_slot] : NULL;
}

static inline uint64
gb_map_hash(int64 tenant)
{
	return murmurhash32((uint32) tenant ^ (uint32) ((uint64) tenant >> 32));
}

static GbMapEntry *
gb_table_find(GbMapEntry *table, uint64 capacity, int64 tenant)
{
	uint64		mask = capacity - 1;

	for (uint64 i = gb_map_hash(tenant) & mask;; i = (i + 1) & mask)
	{
		if (!table[i].used)
			return NULL;
		if (table[i].tenant == tenant)
			return &table[i];
	}
}

/* The entry of TENANT, made (as absent) when missing; room is the caller's. */
static GbMapEntry *
gb_table_enter(GbMapEntry *table, uint64 capacity, int64 tenant, uint64 *entries)
{
	uint64		mask = capacity - 1;

	for (uint64 i = gb_map_hash(tenant) & mask;; i = (i + 1) & mask)
	{
		if (!table[i].used)
		{
			table[i].used = true;
			table[i].tenant = tenant;
			table[i].shard = -1;
			table[i].flux = 0;
			(*entries)++;
			return &table[i];
		}
		if (table[i].tenant == tenant)
			return &table[i];
	}
}

/* Backward-shift deletion: no tombstones, probes stay short. */
static void
gb_table_delete(GbMapEntry *table, uint64 capacity, const GbMapEntry *entry, uint64 *entries)
{
	uint64		mask = capacity - 1;
	uint64		hole = entry - table;

	for (uint64 i = (hole + 1) & mask; table[i].used; i = (i + 1) & mask)
	{
		uint64		home = gb_map_hash(table[i].tenant) & mask;

		if (((i - home) & mask) >= ((i - hole) & mask))
		{
			table[hole] = table[i];
			hole = i;
		}
	}
	table[hole].used = false;
	(*entries)--;
}

static bool
gb_table_has_room(uint64 capacity, uint64 entries)
{
	return capacity > 0 && entries + 1 <= capacity / 4 * 3;
}

/* A zeroed table of CAPACITY entries; InvalidDsaPointer when out of memory. */
static dsa_pointer
gb_table_alloc(uint64 capacity)
{
	return dsa_allocate_extended(gb_map_get_area(), capacity * sizeof(GbMapEntry),
								 DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM | DSA_ALLOC_ZERO);
}

/* Copies OLD's entries into a new table twice its size; false if none. */
static bool
gb_table_grow(dsa_pointer *table, uint64 *capacity)
{
	uint64		new_capacity = *capacity ? *capacity * 2 : GB_MAP_MIN_CAPACITY;
	dsa_pointer new_table = gb_table_alloc(new_capacity);
	GbMapEntry *dst;
	uint64		count = 0;

	if (!DsaPointerIsValid(new_table))
		return false;
	dst = dsa_get_address(gb_map_area, new_table);
	if (DsaPointerIsValid(*table))
	{
		GbMapEntry *src = dsa_get_address(gb_map_area, *table);

		for (uint64 i = 0; i < *capacity; i++)
			if (src[i].used)
				*gb_table_enter(dst, new_capacity, src[i].tenant, &count) = src[i];
		dsa_free(gb_map_area, *table);
	}
	*table = new_table;
	*capacity = new_capacity;
	return true;
}

/* Find the columns of tenant_shard_map by name, with their types. */
static void
gb_map_columns(Relation rel)
{
	if (gb_map_columns_relid == RelationGetRelid(rel))
		return;
	gb_map_tenant_attnum = gb_directory_attnum(rel, "tenant_id", INT8OID);
	gb_map_shard_attnum = gb_directory_attnum(rel, "shard_id", INT2OID);
	gb_map_columns_relid = RelationGetRelid(rel);
}

static void
gb_map_relcache_callback(Oid relid)
{
	if (!OidIsValid(relid) || relid == gb_map_columns_relid)
		gb_map_columns_relid = InvalidOid;
}

/* TENANT's entry in the table, as SNAPSHOT sees it; -1: none. */
static int16
gb_map_read_with(Relation rel, Snapshot snapshot, int64 tenant)
{
	Oid			index = RelationGetPrimaryKeyIndex(rel);
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	int16		shard = -1;

	if (!OidIsValid(index))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s.%s has lost its primary key", GB_INTERNAL_SCHEMA, GB_TENANT_MAP_TABLE),
				 errhint("Recreate the extension.")));
	gb_map_columns(rel);
	ScanKeyInit(&key, gb_map_tenant_attnum, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(tenant));
	scan = systable_beginscan(rel, index, true, snapshot, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, gb_map_shard_attnum, RelationGetDescr(rel), &isnull);

		if (!isnull)
			shard = DatumGetInt16(d);
	}
	systable_endscan(scan);
	return shard;
}

/*
 * TENANT's entry by the primary key, in a snapshot taken now: the latest
 * committed map plus this transaction's changes (in a parallel worker, its
 * leader's).
 */
static int16
gb_map_read(Oid relid, int64 tenant)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Snapshot	snapshot;
	int16		shard;

	InvalidateCatalogSnapshot();
	snapshot = RegisterSnapshot(GetCatalogSnapshot(relid));
	shard = gb_map_read_with(rel, snapshot, tenant);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return shard;
}

/* If the load of a slot fails, the slot goes back to be loaded again. */
static void
gb_map_load_abandon(int code, Datum arg)
{
	GbMapSlot  *slot = (GbMapSlot *) DatumGetPointer(arg);

	LWLockAcquire(&slot->lock, LW_EXCLUSIVE);
	if (slot->state == GB_MAP_LOADING && slot->loader_pid == MyProcPid)
		slot->state = GB_MAP_EMPTY;
	LWLockRelease(&slot->lock);
	if (DsaPointerIsValid(gb_loading_table))
		dsa_free(gb_map_area, gb_loading_table);
	gb_loading_table = InvalidDsaPointer;
}

/*
 * Read the whole map into a new table of SLOT, when no writer is in flight;
 * false when one is (the caller answers from the table meanwhile).
 */
static bool
gb_map_load(GbMapSlot *slot, Oid relid)
{
	int64		limit = gb_routing_map_cache_rows;
	uint64		capacity = GB_MAP_MIN_CAPACITY;
	uint64		count = 0;
	bool		overflow = false;
	bool		mine = false;
	instr_time	start;
	instr_time	elapsed;

	if (!ConditionalLockRelationOid(relid, ShareLock))
		return false;
	(void) gb_map_get_area();
	LWLockAcquire(&slot->lock, LW_EXCLUSIVE);
	if (slot->committing == 0 &&
		(slot->map_relid != relid || slot->state == GB_MAP_EMPTY ||
		 (slot->state == GB_MAP_OVERFLOW && slot->overflow_limit < limit)))
	{
		slot->state = GB_MAP_LOADING;
		slot->loader_pid = MyProcPid;
		mine = true;
	}
	LWLockRelease(&slot->lock);
	if (!mine)
	{
		/* loaded or being loaded by another backend: ask the table this time */
		UnlockRelationOid(relid, ShareLock);
		return false;
	}

	INSTR_TIME_SET_CURRENT(start);
	PG_ENSURE_ERROR_CLEANUP(gb_map_load_abandon, PointerGetDatum(slot));
	{
		Relation	rel = table_open(relid, AccessShareLock);
		Snapshot	snapshot;
		SysScanDesc scan;
		HeapTuple	tuple;
		double		estimate = Min(Max(rel->rd_rel->reltuples, 0), limit);
		GbMapEntry *table;

		gb_map_columns(rel);
		while (!gb_table_has_room(capacity, (uint64) estimate) && capacity < (UINT64CONST(1) << 40))
			capacity *= 2;
		gb_loading_table = gb_table_alloc(capacity);
		overflow = !DsaPointerIsValid(gb_loading_table) || limit == 0;
		InvalidateCatalogSnapshot();
		snapshot = RegisterSnapshot(GetCatalogSnapshot(relid));
		scan = systable_beginscan(rel, InvalidOid, false, snapshot, 0, NULL);
		while (!overflow && HeapTupleIsValid(tuple = systable_getnext(scan)))
		{
			bool		tenant_null;
			bool		shard_null;
			Datum		tenant = heap_getattr(tuple, gb_map_tenant_attnum, RelationGetDescr(rel), &tenant_null);
			Datum		shard = heap_getattr(tuple, gb_map_shard_attnum, RelationGetDescr(rel), &shard_null);

			CHECK_FOR_INTERRUPTS();
			if (tenant_null || shard_null)
				continue;
			if ((int64) count >= limit ||
				(!gb_table_has_room(capacity, count) && !gb_table_grow(&gb_loading_table, &capacity)))
			{
				overflow = true;
				break;
			}
			table = dsa_get_address(gb_map_area, gb_loading_table);
			gb_table_enter(table, capacity, DatumGetInt64(tenant), &count)->shard = DatumGetInt16(shard);
		}
		systable_endscan(scan);
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
	}
	PG_END_ENSURE_ERROR_CLEANUP(gb_map_load_abandon, PointerGetDatum(slot));
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);

	LWLockAcquire(&slot->lock, LW_EXCLUSIVE);
	if (DsaPointerIsValid(slot->table))
		dsa_free(gb_map_area, slot->table);
	slot->map_relid = relid;
	slot->synced = true;
	if (overflow)
	{
		if (DsaPointerIsValid(gb_loading_table))
			dsa_free(gb_map_area, gb_loading_table);
		slot->table = InvalidDsaPointer;
		slot->capacity = slot->entries = 0;
		slot->state = GB_MAP_OVERFLOW;
		slot->overflow_limit = limit;
	}
	else
	{
		slot->table = gb_loading_table;
		slot->capacity = capacity;
		slot->entries = count;
		slot->state = GB_MAP_READY;
	}
	gb_loading_table = InvalidDsaPointer;
	slot->loads++;
	slot->last_load_ms = INSTR_TIME_GET_MILLISEC(elapsed);
	slot->last_load_at = GetCurrentTimestamp();
	LWLockRelease(&slot->lock);
	UnlockRelationOid(relid, ShareLock);
	return true;
}

/* Whether this parallel worker's leader has changed the map. */
static bool
gb_leader_changed_map(void)
{
	PGPROC	   *leader = MyProc->lockGroupLeader;

	return leader == NULL || leader->pgprocno >= gb_map->nprocs ||
		gb_map->changed_map[leader->pgprocno];
}

static bool
gb_changes_cover(int64 tenant)
{
	if (gb_whole_change_subid != InvalidSubTransactionId)
		return true;
	return gb_changes != NULL && hash_search(gb_changes, &tenant, HASH_FIND, NULL) != NULL;
}

/*
 * The answer of the table, remembered under the slot's generation when no
 * writer was committing before and after it was read.
 */
static int16
gb_map_read_cached(GbMapSlot *slot, Oid relid, int64 tenant)
{
	uint64		generation = 0;
	bool		cacheable = false;
	GbMapCached *cached;
	int16		shard;

	if (slot != NULL)
	{
		LWLockAcquire(&slot->lock, LW_SHARED);
		generation = slot->generation;
		cacheable = slot->synced && slot->committing == 0;
		LWLockRelease(&slot->lock);
	}
	if (!cacheable)
		return gb_map_read(relid, tenant);
	if (gb_cache != NULL && (gb_cache_generation != generation || gb_cache_relid != relid ||
							 hash_get_num_entries(gb_cache) >= GB_TENANT_CACHE_MAX))
	{
		MemoryContextReset(gb_cache_context);
		gb_cache = NULL;
	}
	if (gb_cache != NULL)
	{
		cached = hash_search(gb_cache, &tenant, HASH_FIND, NULL);
		if (cached != NULL)
			return cached->shard;
	}
	shard = gb_map_read(relid, tenant);

	LWLockAcquire(&slot->lock, LW_SHARED);
	cacheable = slot->generation == generation && slot->committing == 0;
	LWLockRelease(&slot->lock);
	if (!cacheable)
		return shard;
	if (gb_cache == NULL)
	{
		HASHCTL		ctl;

		if (gb_cache_context == NULL)
			gb_cache_context = AllocSetContextCreate(TopMemoryContext, "gb_scale routing lookups",
													 ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(GbMapCached);
		ctl.hcxt = gb_cache_context;
		gb_cache = hash_create("gb_scale routing lookups", 1024, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		gb_cache_generation = generation;
		gb_cache_relid = relid;
	}
	cached = hash_search(gb_cache, &tenant, HASH_ENTER, NULL);
	cached->shard = shard;
	return shard;
}

/*
 * TENANT's explicit placement in gb_scale.tenant_shard_map (RELID), -1 when
 * it has none.
 */
int16
gb_map_shard(Oid relid, int64 tenant)
{
	GbMapSlot  *slot;

	gb_map_require_shared();
	if (IsParallelWorker() ? gb_leader_changed_map() : gb_changes_cover(tenant))
		return gb_map_read(relid, tenant);
	slot = gb_map_my_slot();
	if (slot == NULL || gb_routing_map_cache_rows == 0)
		return gb_map_read_cached(slot, relid, tenant);

	for (;;)
	{
		bool		load;

		LWLockAcquire(&slot->lock, LW_SHARED);
		if (slot->state == GB_MAP_READY && slot->map_relid == relid &&
			slot->entries <= (uint64) gb_routing_map_cache_rows)
		{
			GbMapEntry *entry;
			int16		shard;

			if (gb_map_area == NULL)
			{
				LWLockRelease(&slot->lock);
				(void) gb_map_get_area();
				continue;
			}
			entry = gb_table_find(dsa_get_address(gb_map_area, slot->table), slot->capacity, tenant);
			if (entry == NULL || entry->flux == 0)
			{
				shard = entry ? entry->shard : -1;
				LWLockRelease(&slot->lock);
				return shard;
			}
			/* a writer is committing it: the table knows */
			LWLockRelease(&slot->lock);
			return gb_map_read(relid, tenant);
		}
		/* a transaction that changed the map would read its own changes */
		load = slot->committing == 0 && gb_changes == NULL &&
			gb_whole_change_subid == InvalidSubTransactionId &&
			(slot->map_relid != relid || slot->state == GB_MAP_EMPTY ||
			 (slot->state == GB_MAP_OVERFLOW && slot->overflow_limit < gb_routing_map_cache_rows));
		LWLockRelease(&slot->lock);
		if (!load || !gb_map_load(slot, relid))
			return gb_map_read_cached(slot, relid, tenant);
	}
}

/* ---------- this transaction's changes ---------- */

static void
gb_changes_reset(void)
{
	if (gb_changes_context != NULL)
		MemoryContextReset(gb_changes_context);
	gb_changes = NULL;
	gb_changes_max_subid = InvalidSubTransactionId;
	gb_whole_change_subid = InvalidSubTransactionId;
	gb_committing = false;
	gb_marked_table = InvalidDsaPointer;
	if (gb_changes_published)
		gb_map->changed_map[MyProc->pgprocno] = false;
	gb_changes_published = false;
}

/* Parallel workers of this backend will ask the table. */
static void
gb_changes_publish(void)
{
	if (gb_map != NULL && MyProc != NULL && MyProc->pgprocno < gb_map->nprocs)
	{
		gb_map->changed_map[MyProc->pgprocno] = true;
		gb_changes_published = true;
	}
}

static void
gb_changes_whole(SubTransactionId subid)
{
	gb_changes_publish();
	if (gb_whole_change_subid == InvalidSubTransactionId || subid < gb_whole_change_subid)
		gb_whole_change_subid = subid;
}

static void
gb_changes_record(int64 tenant)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	bool		found;
	GbMapChange *change;

	if (gb_changes == NULL)
	{
		HASHCTL		ctl;

		gb_changes_publish();
		if (gb_changes_context == NULL)
			gb_changes_context = AllocSetContextCreate(TopMemoryContext, "gb_scale routing changes",
													   ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(GbMapChange);
		ctl.hcxt = gb_changes_context;
		gb_changes = hash_create("gb_scale routing changes", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (hash_get_num_entries(gb_changes) >= GB_MAP_TRACK_MAX &&
		hash_search(gb_changes, &tenant, HASH_FIND, NULL) == NULL)
	{
		/* too many to follow one by one: the whole map is reloaded */
		gb_changes_whole(TopSubTransactionId);
		return;
	}
	change = hash_search(gb_changes, &tenant, HASH_ENTER, &found);
	if (!found)
	{
		change->subid = subid;
		change->marked = false;
		change->final_shard = -1;
	}
	if (subid > gb_changes_max_subid)
		gb_changes_max_subid = subid;
}

/*
 * BEFORE INSERT OR UPDATE OR DELETE ... FOR EACH ROW and BEFORE TRUNCATE on
 * tenant_shard_map, enabled ALWAYS so that logical replication's apply
 * fires them too: remembers the tenants changed, for the commit.
 */
Datum
gb_tenant_map_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	result = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("gb_scale.tenant_map_changed() must be called as a trigger")));
	rel = trigdata->tg_relation;
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
	{
		gb_changes_whole(GetCurrentSubTransactionId());
		return PointerGetDatum(NULL);
	}
	gb_map_columns(rel);
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		result = trigdata->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		result = trigdata->tg_trigtuple;
	else
		result = trigdata->tg_newtuple;

	for (int i = 0; i < 2; i++)
	{
		HeapTuple	tuple = i == 0 ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
		bool		isnull;
		Datum		tenant;

		if (tuple == NULL)
			continue;
		tenant = heap_getattr(tuple, gb_map_tenant_attnum, RelationGetDescr(rel), &isnull);
		if (!isnull)
			gb_changes_record(DatumGetInt64(tenant));
	}
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		result = NULL;
	return PointerGetDatum(result);
}

/*
 * Pre-commit: read the final placement of every tenant changed, then mark
 * its entry in flux (room made here, so that an error still aborts).
 */
static void
gb_map_pre_commit(void)
{
	GbMapSlot  *slot;
	Oid			relid = InvalidOid;
	HASH_SEQ_STATUS status;
	GbMapChange *change;

	if (gb_map == NULL)
		return;
	slot = gb_map_my_slot();
	if (slot == NULL)
		return;

	if (gb_whole_change_subid == InvalidSubTransactionId && gb_changes != NULL)
	{
		Oid			nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);

		relid = OidIsValid(nsp) ? get_relname_relid(GB_TENANT_MAP_TABLE, nsp) : InvalidOid;
		/* dropped by this transaction (DROP EXTENSION): nothing to keep */
		if (!OidIsValid(relid))
			gb_changes_whole(TopSubTransactionId);
	}
	if (OidIsValid(relid))
	{
		Relation	rel;
		Snapshot	snapshot;

		rel = table_open(relid, AccessShareLock);
		CommandCounterIncrement();
		InvalidateCatalogSnapshot();
		snapshot = RegisterSnapshot(GetCatalogSnapshot(relid));
		hash_seq_init(&status, gb_changes);
		while ((change = hash_seq_search(&status)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			change->final_shard = gb_map_read_with(rel, snapshot, change->tenant);
		}
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
	}

	LWLockAcquire(&slot->lock, LW_EXCLUSIVE);
	slot->committing++;
	gb_committing = true;
	if (gb_whole_change_subid != InvalidSubTransactionId)
	{
		if (slot->state != GB_MAP_EMPTY)
			slot->reload_requests++;
		slot->state = GB_MAP_EMPTY;
	}
	else if (slot->state == GB_MAP_READY && slot->map_relid == relid && gb_changes != NULL)
	{
		if (gb_map_area == NULL)
		{
			LWLockRelease(&slot->lock);
			(void) gb_map_get_area();
			LWLockAcquire(&slot->lock, LW_EXCLUSIVE);
		}
		gb_marked_table = slot->table;
		hash_seq_init(&status, gb_changes);
		while ((change = hash_seq_search(&status)) != NULL)
		{
			GbMapEntry *table = dsa_get_address(gb_map_area, slot->table);
			GbMapEntry *entry = gb_table_find(table, slot->capacity, change->tenant);

			if (entry == NULL && !gb_table_has_room(slot->capacity, slot->entries))
			{
				/* growing moves entries that other committers marked */
				if (slot->committing > 1 || !gb_table_grow(&slot->table, &slot->capacity))
				{
					hash_seq_term(&status);
					slot->reload_requests++;
					slot->state = GB_MAP_EMPTY;
					break;
				}
				gb_marked_table = slot->table;
				table = dsa_get_address(gb_map_area, slot->table);
			}
			if (entry == NULL)
				entry = gb_table_enter(table, slot->capacity, change->tenant, &slot->entries);
			entry->flux++;
			change->marked = true;
		}
	}
	LWLockRelease(&slot->lock);
}

/*
 * Commit or abort: write the final placements (commit only) and release the
 * marks.  Nothing here allocates or reads anything that can fail.
 */
static void
gb_map_end(bool commit)
{
	GbMapSlot  *slot = &gb_map->slots[gb_my_slot];

	LWLockAcquire(&slot->lock, LW_EXCLUSIVE);
	if (gb_changes != NULL && DsaPointerIsValid(gb_marked_table) &&
		slot->state == GB_MAP_READY && slot->table == gb_marked_table)
	{
		HASH_SEQ_STATUS status;
		GbMapChange *change;
		GbMapEntry *table = dsa_get_address(gb_map_area, slot->table);

		hash_seq_init(&status, gb_changes);
		while ((change = hash_seq_search(&status)) != NULL)
		{
			GbMapEntry *entry;

			if (!change->marked)
				continue;
			entry = gb_table_find(table, slot->capacity, change->tenant);
			if (entry == NULL)
				continue;
			if (commit)
			{
				entry->shard = change->final_shard;
				slot->updates++;
			}
			if (entry->flux > 0)
				entry->flux--;
			if (entry->flux == 0 && entry->shard < 0)
				gb_table_delete(table, slot->capacity, entry, &slot->entries);
		}
	}
	slot->committing--;
	slot->generation++;
	LWLockRelease(&slot->lock);
}

static void
gb_map_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (gb_changes != NULL || gb_whole_change_subid != InvalidSubTransactionId)
				gb_map_pre_commit();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (gb_changes != NULL || gb_whole_change_subid != InvalidSubTransactionId)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that changed %s.%s",
								GB_INTERNAL_SCHEMA, GB_TENANT_MAP_TABLE),
						 errhint("Change the shard directory in transactions that commit directly.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
			if (gb_committing)
				gb_map_end(event == XACT_EVENT_COMMIT);
			gb_changes_reset();
			break;
		default:
			break;
	}
}

/* A rolled-back subtransaction's changes are forgotten. */
static void
gb_map_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS status;
	GbMapChange *change;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	if (gb_whole_change_subid != InvalidSubTransactionId && gb_whole_change_subid >= mySubid)
		gb_whole_change_subid = InvalidSubTransactionId;
	if (gb_changes == NULL || gb_changes_max_subid < mySubid)
		return;
	/* every subtransaction started since is a child of this one */
	hash_seq_init(&status, gb_changes);
	while ((change = hash_seq_search(&status)) != NULL)
		if (change->subid >= mySubid)
			hash_search(gb_changes, &change->tenant, HASH_REMOVE, NULL);
	gb_changes_max_subid = parentSubid;
	if (hash_get_num_entries(gb_changes) == 0)
		gb_changes = NULL;
}

void
gb_routing_map_init(void)
{
	DefineCustomIntVariable("gb_scale.routing_map_cache_rows",
							"Largest gb_scale.tenant_shard_map held in shared memory for routing lookups.",
							"A bigger map is looked up tenant by tenant through its primary key, remembering the latest answers per backend. 0 never uses the shared map.",
							&gb_routing_map_cache_rows,
							10000000, 0, 100000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	gb_register_relcache_callback(gb_map_relcache_callback);
	RegisterXactCallback(gb_map_xact_callback, NULL);
	RegisterSubXactCallback(gb_map_subxact_callback, NULL);
}

static const char *
gb_map_state_name(GbMapState state)
{
	switch (state)
	{
		case GB_MAP_EMPTY:
			return "stale";
		case GB_MAP_LOADING:
			return "loading";
		case GB_MAP_READY:
			return "ready";
		case GB_MAP_OVERFLOW:
			return "overflow";
	}
	return "unknown";
}

/* gb_scale.routing_status(): one row per database with a slot. */
Datum
gb_routing_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	gb_map_require_shared();
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < GB_MAP_SLOTS; i++)
	{
		GbMapSlot  *slot = &gb_map->slots[i];
		GbMapSlot	copy;
		Datum		values[12];
		bool		nulls[12] = {0};
		char	   *dbname;

		LWLockAcquire(&slot->lock, LW_SHARED);
		copy = *slot;
		LWLockRelease(&slot->lock);
		if (!OidIsValid(copy.dboid))
			continue;
		dbname = get_database_name(copy.dboid);
		if (dbname == NULL)
			continue;
		values[0] = CStringGetDatum(dbname);
		values[1] = CStringGetTextDatum(copy.map_relid == InvalidOid && copy.state == GB_MAP_EMPTY
										? "empty" : gb_map_state_name(copy.state));
		values[2] = Int64GetDatum((int64) copy.entries);
		values[3] = Int64GetDatum((int64) copy.capacity);
		values[4] = Int64GetDatum((int64) (copy.capacity * sizeof(GbMapEntry)));
		values[5] = Int64GetDatum((int64) copy.loads);
		values[6] = Int64GetDatum((int64) copy.updates);
		values[7] = Int64GetDatum((int64) copy.reload_requests);
		values[8] = Int32GetDatum((int32) copy.committing);
		values[9] = Float8GetDatum(copy.last_load_ms);
		if (copy.last_load_at != 0)
			values[10] = TimestampTzGetDatum(copy.last_load_at);
		else
			nulls[10] = nulls[9] = true;
		if (copy.state == GB_MAP_OVERFLOW)
			values[11] = Int64GetDatum(copy.overflow_limit);
		else
			nulls[11] = true;
		values[0] = DirectFunctionCall1(namein, values[0]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
