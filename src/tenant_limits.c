/*-------------------------------------------------------------------------
 *
 * tenant_limits.c
 *	  Per-tenant resource limits against noisy neighbours: the most
 *	  concurrent transactions of a tenant and its statements per second.
 *
 * gb_scale.tenant_limit holds a tenant's own limits, gb_scale.plan_limit
 * those of a plan tier; each limit of a tenant is its own value, else its
 * tier's, else none (NULL means "no value here").
 *
 * Concurrent transactions: every backend has a slot in shared memory (by
 * its PGPROC number) naming the (database, tenant) its transaction was set
 * to by gb_set_tenant().  A tenant's count is the number of slots naming
 * it, so nothing can leak: the slot is cleared at commit, abort and PREPARE,
 * at backend exit, overwritten by the next backend with that PGPROC, and
 * shared memory starts over after a crash.  The slot stays the tenant's
 * until the transaction ends, even when a savepoint's rollback gives the
 * transaction back an earlier tenant.
 *
 * Statements per second: a token bucket per (database, tenant) in shared
 * memory, holding at most one second's worth of statements (the burst) and
 * refilled by the time elapsed.  Every top-level statement the executor runs
 * with a tenant set takes one token (the statement that calls
 * gb_set_tenant() counts for the new tenant); statements inside functions
 * and triggers are part of theirs.  Utility statements (DDL, COPY, VACUUM)
 * take none.  The buckets live in a fixed table of
 * gb_scale.tenant_limits_max entries: when it is full, a tenant that has no
 * bucket yet is not rate-limited (logged once per server start), because
 * evicting a bucket would hand its tenant a fresh burst.
 *
 * Over a limit, a backend waits up to gb_scale.tenant_wait_timeout (short
 * sleeps on its latch, interruptible) and then fails with 53300 (too many
 * transactions) or 53400 (statement rate); 0 fails at once.
 *
 * Limits are cached per backend like the tenant settings: the tables'
 * triggers send a relcache invalidation, seen at the next statement (in the
 * changing transaction at its next command, never after a rollback).
 *
 * Only client backends are limited (not parallel workers, whose leader
 * answered for the statement, nor background workers).  Without
 * shared_preload_libraries the limits can be stored but are not enforced.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "partition.h"
#include "routing.h"
#include "tenant_limits.h"
#include "tenant_settings.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(gb_tenant_limit);
PG_FUNCTION_INFO_V1(gb_plan_limit);
PG_FUNCTION_INFO_V1(gb_tenant_limits_usage);

#define GB_LIMITS_TRANCHE		"gb_scale tenant_limits"
#define GB_TENANT_LIMIT_TABLE	"tenant_limit"
#define GB_PLAN_LIMIT_TABLE		"plan_limit"
/* Tenants a backend keeps before its cache starts over. */
#define GB_LIMITS_CACHE_TENANTS	1000
/* Longest single sleep while waiting, so that a freed place is seen soon. */
#define GB_LIMITS_NAP_MS		10

int			gb_tenant_limits_max = 10000;
static int	gb_tenant_wait_timeout_ms = 0;

/* One backend's transaction: the tenant it counts for. */
typedef struct GbXactSlot
{
	bool		active;
	Oid			dbid;
	int64		tenant;
} GbXactSlot;

/* Hashed as bytes: no padding. */
typedef struct GbBucketKey
{
	int64		tenant;
	Oid			dbid;
	uint32		pad;			/* always 0 */
} GbBucketKey;

StaticAssertDecl(sizeof(GbBucketKey) == sizeof(int64) + 2 * sizeof(uint32),
				 "GbBucketKey must have no padding");

typedef struct GbBucket
{
	GbBucketKey key;			/* hash key: first */
	slock_t		mutex;			/* guards the rest */
	double		tokens;
	TimestampTz refilled_at;
	int64		second;			/* the clock second admitted counts */
	int64		admitted;		/* statements admitted in that second */
	int64		since_full;		/* statements admitted since tokens were
								 * last at the burst: the error's count,
								 * which no clock second boundary resets */
	int32		rate;			/* the limit its last statement had */
} GbBucket;

typedef struct GbLimitsShared
{
	LWLock	   *lock;			/* slots: all; hash: shared to find and
								 * update, exclusive to add */
	bool		full_logged;	/* under lock */
	int			nslots;
	GbXactSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} GbLimitsShared;

static GbLimitsShared *gb_limits = NULL;
static HTAB *gb_limits_buckets = NULL;

/* 0 means unlimited. */
typedef struct GbLimits
{
	int32		max_xacts;
	int32		max_rate;
} GbLimits;

typedef struct GbLimitsEntry
{
	int64		tenant;			/* hash key */
	GbLimits	own;
} GbLimitsEntry;

static MemoryContext gb_limits_context = NULL;
static HTAB *gb_limits_entries = NULL;
static GbLimits gb_tier_limits[GB_PLAN_TIERS];
static bool gb_tier_limits_loaded = false;
static bool gb_any_tier_limit = false;
/* The tables are missing (extension dropped or not created): no limits. */
static bool gb_limits_absent = false;
static bool gb_limits_valid = false;
static Oid	gb_limits_relids[2] = {InvalidOid, InvalidOid};
static uint64 gb_limits_generation = 0;
static LocalTransactionId gb_limits_seen_lxid = InvalidLocalTransactionId;
static TimestampTz gb_limits_seen_statement = 0;

/* Whether this backend's slot is taken, and the exit callback is set. */
static bool gb_slot_taken = false;
static bool gb_exit_registered = false;

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;

/* Executor nesting; 0 at a top-level statement. */
static int	gb_limits_nesting = 0;
/* Top-level statements started, and the last one that took a token. */
static uint64 gb_limits_statements = 0;
static uint64 gb_limits_charged = PG_UINT64_MAX;

static Size
gb_limits_struct_size(void)
{
	return add_size(offsetof(GbLimitsShared, slots), mul_size(MaxBackends, sizeof(GbXactSlot)));
}

void
gb_tenant_limits_shmem_request(void)
{
	RequestAddinShmemSpace(add_size(MAXALIGN(gb_limits_struct_size()),
									hash_estimate_size(gb_tenant_limits_max, sizeof(GbBucket))));
	RequestNamedLWLockTranche(GB_LIMITS_TRANCHE, 1);
}

void
gb_tenant_limits_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gb_limits = ShmemInitStruct("gb_scale tenant_limits", gb_limits_struct_size(), &found);
	if (!found)
	{
		gb_limits->lock = &(GetNamedLWLockTranche(GB_LIMITS_TRANCHE))->lock;
		gb_limits->full_logged = false;
		gb_limits->nslots = MaxBackends;
		memset(gb_limits->slots, 0, mul_size(MaxBackends, sizeof(GbXactSlot)));
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(GbBucketKey);
	info.entrysize = sizeof(GbBucket);
	gb_limits_buckets = ShmemInitHash("gb_scale tenant_limits buckets",
									  gb_tenant_limits_max, gb_tenant_limits_max,
									  &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

/* Whether this process is limited: client backends with the preload. */
static bool
gb_limits_active(void)
{
	return gb_limits != NULL && IsNormalProcessingMode() && OidIsValid(MyDatabaseId) &&
		MyBackendType == B_BACKEND && !IsParallelWorker() && MyProc != NULL &&
		MyProc->pgprocno >= 0 && MyProc->pgprocno < gb_limits->nslots;
}

/*
 * The per-backend cache of the two tables.
 */

static void
gb_limits_relcache_callback(Oid relid)
{
	if (!OidIsValid(relid) || !OidIsValid(gb_limits_relids[0]) ||
		relid == gb_limits_relids[0] || relid == gb_limits_relids[1])
	{
		gb_limits_generation++;
		gb_limits_valid = false;
	}
}

static void
gb_limits_ready(void)
{
	HASHCTL		ctl;

	if (MyProc->lxid != gb_limits_seen_lxid ||
		GetCurrentStatementStartTimestamp() != gb_limits_seen_statement)
	{
		AcceptInvalidationMessages();
		gb_limits_seen_lxid = MyProc->lxid;
		gb_limits_seen_statement = GetCurrentStatementStartTimestamp();
	}
	if (gb_limits_valid && hash_get_num_entries(gb_limits_entries) < GB_LIMITS_CACHE_TENANTS)
		return;
	if (gb_limits_context == NULL)
		gb_limits_context = AllocSetContextCreate(CacheMemoryContext, "gb_scale tenant limits",
												  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(gb_limits_context);
	gb_limits_entries = NULL;
	gb_tier_limits_loaded = false;
	{
		Oid			nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);

		gb_limits_relids[0] = OidIsValid(nsp) ? get_relname_relid(GB_TENANT_LIMIT_TABLE, nsp) : InvalidOid;
		gb_limits_relids[1] = OidIsValid(nsp) ? get_relname_relid(GB_PLAN_LIMIT_TABLE, nsp) : InvalidOid;
		gb_limits_absent = !OidIsValid(gb_limits_relids[0]) || !OidIsValid(gb_limits_relids[1]);
	}
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(GbLimitsEntry);
	ctl.hcxt = gb_limits_context;
	gb_limits_entries = hash_create("gb_scale tenant limits", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	gb_limits_valid = true;
}

/* A limit column: NULL or not positive (never stored so) is no limit. */
static int32
gb_limit_value(HeapTuple tuple, TupleDesc desc, AttrNumber attnum)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, desc, &isnull);

	if (isnull || DatumGetInt32(value) <= 0)
		return 0;
	return DatumGetInt32(value);
}

/*
 * Rows of one table: TENANT's row of tenant_limit into *own (false when it
 * has none), or every tier's row of plan_limit into tiers[].
 */
static bool
gb_scan_limits(bool by_tenant, int64 tenant, GbLimits *own, GbLimits *tiers)
{
	Relation	rel = table_open(gb_directory_relid(by_tenant ? GB_TENANT_LIMIT_TABLE : GB_PLAN_LIMIT_TABLE),
								 AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	att_xacts = gb_directory_attnum(rel, "max_xacts", INT4OID);
	AttrNumber	att_rate = gb_directory_attnum(rel, "max_statements_per_second", INT4OID);
	AttrNumber	att_key;
	Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(rel)));
	Oid			pkey = by_tenant ? RelationGetPrimaryKeyIndex(rel) : InvalidOid;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	if (by_tenant)
		att_key = gb_directory_attnum(rel, "tenant_id", INT8OID);
	else
	{
		att_key = get_attnum(RelationGetRelid(rel), "tier");
		if (att_key == InvalidAttrNumber ||
			getBaseType(get_atttype(RelationGetRelid(rel), att_key)) != INT2OID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("table %s.%s has no column \"tier\" of type gb_plan_tier",
							GB_INTERNAL_SCHEMA, GB_PLAN_LIMIT_TABLE),
					 errhint("Recreate the extension.")));
		memset(tiers, 0, GB_PLAN_TIERS * sizeof(GbLimits));
	}
	ScanKeyInit(&key, att_key, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(tenant));
	scan = systable_beginscan(rel, pkey, OidIsValid(pkey), snapshot, by_tenant ? 1 : 0, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		keyval = heap_getattr(tuple, att_key, desc, &isnull);
		GbLimits	limits;

		CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;
		limits.max_xacts = gb_limit_value(tuple, desc, att_xacts);
		limits.max_rate = gb_limit_value(tuple, desc, att_rate);
		if (by_tenant)
		{
			if (DatumGetInt64(keyval) != tenant)
				continue;
			*own = limits;
			found = true;
			break;
		}
		/* a stored tier is never trusted as an index */
		for (int t = 0; t < GB_PLAN_TIERS; t++)
			if (DatumGetInt16(keyval) == t)
				tiers[t] = limits;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found;
}

/* TENANT's effective limits: its own, else its tier's, else none. */
static GbLimits
gb_limits_of(int64 tenant)
{
	GbLimitsEntry *entry;
	GbLimits	result;
	int			tier;

	for (;;)
	{
		uint64		generation;
		GbLimits	own;

		gb_limits_ready();
		if (gb_limits_absent)
		{
			memset(&result, 0, sizeof(result));
			return result;
		}
		generation = gb_limits_generation;
		if (!gb_tier_limits_loaded)
		{
			GbLimits	tiers[GB_PLAN_TIERS];

			(void) gb_scan_limits(false, 0, NULL, tiers);
			if (generation != gb_limits_generation)
				continue;
			memcpy(gb_tier_limits, tiers, sizeof(tiers));
			gb_any_tier_limit = false;
			for (int t = 0; t < GB_PLAN_TIERS; t++)
				gb_any_tier_limit |= tiers[t].max_xacts > 0 || tiers[t].max_rate > 0;
			gb_tier_limits_loaded = true;
		}
		entry = hash_search(gb_limits_entries, &tenant, HASH_FIND, NULL);
		if (entry != NULL)
			break;
		memset(&own, 0, sizeof(own));
		(void) gb_scan_limits(true, tenant, &own, NULL);
		if (generation != gb_limits_generation)
			continue;
		entry = hash_search(gb_limits_entries, &tenant, HASH_ENTER, NULL);
		entry->own = own;
		break;
	}
	result = entry->own;
	/* the tier is looked up only when some tier has a limit */
	if (!gb_any_tier_limit || (result.max_xacts > 0 && result.max_rate > 0))
		return result;
	tier = gb_tenant_tier_of(tenant);
	if (tier >= 0 && tier < GB_PLAN_TIERS)
	{
		if (result.max_xacts == 0)
			result.max_xacts = gb_tier_limits[tier].max_xacts;
		if (result.max_rate == 0)
			result.max_rate = gb_tier_limits[tier].max_rate;
	}
	return result;
}

/*
 * Waiting.
 */

/* Sleep up to MS on the latch; false when the wait is over (deadline). */
static bool
gb_limits_nap(TimestampTz deadline, long want_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	long		left_ms;

	if (now >= deadline)
		return false;
	left_ms = (long) ((deadline - now + 999) / 1000);
	want_ms = Max(1, Min(want_ms, Min(left_ms, GB_LIMITS_NAP_MS)));
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 want_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	return true;
}

static TimestampTz
gb_limits_deadline(void)
{
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), gb_tenant_wait_timeout_ms);
}

/*
 * Concurrent transactions.
 */

static void
gb_slot_release(void)
{
	if (!gb_slot_taken || gb_limits == NULL)
		return;
	LWLockAcquire(gb_limits->lock, LW_EXCLUSIVE);
	gb_limits->slots[MyProc->pgprocno].active = false;
	LWLockRelease(gb_limits->lock);
	gb_slot_taken = false;
}

static void
gb_limits_exit(int code, Datum arg)
{
	if (MyProc != NULL)
		gb_slot_release();
}

/* Take this backend's slot for TENANT, waiting while it is at MAX_XACTS. */
static void
gb_slot_take(int64 tenant, int32 max_xacts)
{
	TimestampTz deadline = gb_limits_deadline();
	int			me = MyProc->pgprocno;

	if (!gb_exit_registered)
	{
		before_shmem_exit(gb_limits_exit, (Datum) 0);
		gb_exit_registered = true;
	}
	for (;;)
	{
		int			running = 0;

		LWLockAcquire(gb_limits->lock, LW_EXCLUSIVE);
		if (max_xacts > 0)
			for (int i = 0; i < gb_limits->nslots; i++)
				if (i != me && gb_limits->slots[i].active &&
					gb_limits->slots[i].tenant == tenant &&
					gb_limits->slots[i].dbid == MyDatabaseId)
					running++;
		if (max_xacts == 0 || running < max_xacts)
		{
			gb_limits->slots[me].active = true;
			gb_limits->slots[me].dbid = MyDatabaseId;
			gb_limits->slots[me].tenant = tenant;
			LWLockRelease(gb_limits->lock);
			gb_slot_taken = true;
			return;
		}
		LWLockRelease(gb_limits->lock);
		if (!gb_limits_nap(deadline, GB_LIMITS_NAP_MS))
			ereport(ERROR,
					(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
					 errmsg("tenant " INT64_FORMAT " has too many concurrent transactions", tenant),
					 errdetail("Its limit is %d concurrent transactions and %d are running.",
							   max_xacts, running),
					 errhint("Retry when one of them ends, raise gb_scale.tenant_wait_timeout to wait longer, or raise the limit with gb_tenant_limit() or gb_plan_limit().")));
	}
}

static void
gb_limits_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
	{
		gb_slot_release();
		gb_limits_nesting = 0;
	}
}

/*
 * Statements per second.
 */

/* Take one token of TENANT's bucket of MAX_RATE per second, or wait. */
static void
gb_bucket_take(int64 tenant, int32 max_rate)
{
	TimestampTz deadline = gb_limits_deadline();
	GbBucketKey key;

	memset(&key, 0, sizeof(key));
	key.tenant = tenant;
	key.dbid = MyDatabaseId;
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		GbBucket   *bucket;
		bool		found;
		bool		admitted = false;
		double		missing = 0;
		int64		current = 0;

		LWLockAcquire(gb_limits->lock, LW_SHARED);
		bucket = hash_search(gb_limits_buckets, &key, HASH_FIND, NULL);
		if (bucket == NULL)
		{
			LWLockRelease(gb_limits->lock);
			LWLockAcquire(gb_limits->lock, LW_EXCLUSIVE);
			bucket = hash_search(gb_limits_buckets, &key, HASH_ENTER_NULL, &found);
			if (bucket == NULL)
			{
				bool		first = !gb_limits->full_logged;

				gb_limits->full_logged = true;
				LWLockRelease(gb_limits->lock);
				if (first)
					ereport(LOG,
							(errmsg("gb_scale.tenant_limits_max (%d) tenants have a statement rate bucket: tenant " INT64_FORMAT " and later new ones are not rate-limited",
									gb_tenant_limits_max, tenant),
							 errhint("Raise gb_scale.tenant_limits_max and restart the server.")));
				return;
			}
			if (!found)
			{
				SpinLockInit(&bucket->mutex);
				bucket->tokens = max_rate;
				bucket->refilled_at = now;
				bucket->second = 0;
				bucket->admitted = 0;
				bucket->since_full = 0;
			}
		}
		SpinLockAcquire(&bucket->mutex);
		bucket->rate = max_rate;
		if (now > bucket->refilled_at)
		{
			bucket->tokens += (double) (now - bucket->refilled_at) / USECS_PER_SEC * max_rate;
			bucket->refilled_at = now;
		}
		/* a lowered limit takes effect at once; a full burst restarts the
		 * count */
		if (bucket->tokens >= max_rate)
		{
			bucket->tokens = max_rate;
			bucket->since_full = 0;
		}
		if (bucket->second != now / USECS_PER_SEC)
		{
			bucket->second = now / USECS_PER_SEC;
			bucket->admitted = 0;
		}
		if (bucket->tokens >= 1.0)
		{
			bucket->tokens -= 1.0;
			bucket->admitted++;
			bucket->since_full++;
			admitted = true;
		}
		else
			missing = 1.0 - bucket->tokens;
		current = bucket->since_full;
		SpinLockRelease(&bucket->mutex);
		LWLockRelease(gb_limits->lock);
		if (admitted)
			return;
		if (!gb_limits_nap(deadline, (long) (missing * 1000.0 / max_rate) + 1))
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("tenant " INT64_FORMAT " is over its limit of %d statements per second", tenant, max_rate),
					 errdetail("Its burst of %d statements is used up: " INT64_FORMAT " were admitted since it was last full.",
							   max_rate, current),
					 errhint("Slow down the tenant's statements, raise gb_scale.tenant_wait_timeout to wait for the limit, or raise it with gb_tenant_limit() or gb_plan_limit().")));
	}
}

/* Charge the running top-level statement once, to the current tenant. */
static void
gb_limits_charge(int64 tenant, const GbLimits *limits)
{
	if (gb_limits_charged == gb_limits_statements)
		return;
	gb_limits_charged = gb_limits_statements;
	if (limits->max_rate > 0)
		gb_bucket_take(tenant, limits->max_rate);
}

/*
 * Called by gb_set_tenant() once the tenant is set: the transaction now
 * counts for TENANT (none when !HAS_TENANT), and so does its statement.
 */
void
gb_tenant_limits_enter(bool has_tenant, int64 tenant)
{
	GbLimits	limits;
	const GbXactSlot *mine;

	if (!gb_limits_active())
		return;
	if (!has_tenant)
	{
		gb_slot_release();
		return;
	}
	limits = gb_limits_of(tenant);
	mine = &gb_limits->slots[MyProc->pgprocno];
	/* only this backend writes its slot: reading it unlocked is safe */
	if (!(gb_slot_taken && mine->tenant == tenant && mine->dbid == MyDatabaseId))
		gb_slot_take(tenant, limits.max_xacts);
	gb_limits_charge(tenant, &limits);
}

/*
 * Executor hooks: the nesting level, and a token per top-level statement.
 */

static void
gb_limits_executor_start(QueryDesc *queryDesc, int eflags)
{
	int64		tenant;

	if (gb_limits_nesting == 0 && gb_limits_active())
	{
		gb_limits_statements++;
		if (gb_tenant_current(&tenant))
		{
			GbLimits	limits = gb_limits_of(tenant);

			gb_limits_charge(tenant, &limits);
		}
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
gb_limits_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
					   bool execute_once)
{
	gb_limits_nesting++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		gb_limits_nesting--;
	}
	PG_END_TRY();
}

static void
gb_limits_executor_finish(QueryDesc *queryDesc)
{
	gb_limits_nesting++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		gb_limits_nesting--;
	}
	PG_END_TRY();
}

void
gb_tenant_limits_init(void)
{
	gb_register_relcache_callback(gb_limits_relcache_callback);

	/* superuser-only: a tenant's session must not wait longer than allowed */
	DefineCustomIntVariable("gb_scale.tenant_wait_timeout",
							"How long a statement over its tenant's limit waits before it fails.",
							"0 fails at once.",
							&gb_tenant_wait_timeout_ms,
							0, 0, 600000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* see gb_scale.stat_tenants_max: only while the postmaster loads us */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("gb_scale.tenant_limits_max",
							"Most (database, tenant) statement rate buckets kept in shared memory.",
							"When full, tenants without a bucket are not rate-limited.  Each bucket takes about 100 bytes.",
							&gb_tenant_limits_max,
							10000, 10, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = gb_limits_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = gb_limits_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = gb_limits_executor_finish;
	RegisterXactCallback(gb_limits_xact_callback, NULL);
}

/*
 * The SQL functions.
 */

/* A limit argument: NULL or at least 1. */
static Datum
gb_limit_arg(FunctionCallInfo fcinfo, int argno, const char *name, char *null)
{
	int32		value;

	*null = PG_ARGISNULL(argno) ? 'n' : ' ';
	if (PG_ARGISNULL(argno))
		return (Datum) 0;
	value = PG_GETARG_INT32(argno);
	if (value < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least 1, not %d", name, value),
				 errhint("NULL means no limit of its own.")));
	return Int32GetDatum(value);
}

static void
gb_warn_not_enforced(void)
{
	if (gb_limits == NULL)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant limits are stored but not enforced: gb_scale is not in shared_preload_libraries"),
				 errhint("Add gb_scale to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Store KEY's row of TABLE, or remove it when both limits are NULL. */
static void
gb_store_limits(FunctionCallInfo fcinfo, const char *table, const char *key_column,
				Oid key_type, Datum key)
{
	Oid			types[3] = {key_type, INT4OID, INT4OID};
	Datum		values[3];
	char		nulls[4] = "   ";

	values[0] = key;
	values[1] = gb_limit_arg(fcinfo, 1, "max_xacts", &nulls[1]);
	values[2] = gb_limit_arg(fcinfo, 2, "max_statements_per_second", &nulls[2]);
	if (nulls[1] == 'n' && nulls[2] == 'n')
	{
		gb_catalog_exec(psprintf("DELETE FROM gb_scale.%s l WHERE l.%s OPERATOR(pg_catalog.=) $1",
								 table, key_column),
						1, types, values, NULL);
		return;
	}
	gb_catalog_exec(psprintf("INSERT INTO gb_scale.%s AS l (%s, max_xacts, max_statements_per_second)"
							 " VALUES ($1, $2, $3) ON CONFLICT (%s) DO UPDATE"
							 " SET max_xacts = excluded.max_xacts,"
							 " max_statements_per_second = excluded.max_statements_per_second,"
							 " updated_at = pg_catalog.now()"
							 " WHERE l.max_xacts IS DISTINCT FROM excluded.max_xacts"
							 " OR l.max_statements_per_second IS DISTINCT FROM excluded.max_statements_per_second",
							 table, key_column, key_column),
					3, types, values, nulls);
	gb_warn_not_enforced();
}

/* gb_tenant_limit(tenant_id bigint, max_xacts integer, max_statements_per_second integer) */
Datum
gb_tenant_limit(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant_id must not be NULL"),
				 errhint("Name the tenant whose limits change.")));
	gb_store_limits(fcinfo, GB_TENANT_LIMIT_TABLE, "tenant_id", INT8OID, PG_GETARG_DATUM(0));
	PG_RETURN_VOID();
}

/* gb_plan_limit(tier integer, max_xacts integer, max_statements_per_second integer) */
Datum
gb_plan_limit(PG_FUNCTION_ARGS)
{
	int16		tier = gb_tier_arg(fcinfo, 0);

	gb_store_limits(fcinfo, GB_PLAN_LIMIT_TABLE, "tier", INT2OID, Int16GetDatum(tier));
	PG_RETURN_VOID();
}

/* Running transactions of one (database, tenant), for the usage view. */
typedef struct GbUsageEntry
{
	GbBucketKey key;			/* hash key: first */
	int32		running;
	bool		shown;
} GbUsageEntry;

static void
gb_usage_put(ReturnSetInfo *rsinfo, const GbBucketKey *key, int32 running, const GbBucket *bucket)
{
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	char	   *dbname = get_database_name(key->dbid);

	if (dbname == NULL)
		nulls[0] = true;
	else
		values[0] = CStringGetDatum(dbname);
	values[1] = Int64GetDatum(key->tenant);
	values[2] = Int32GetDatum(running);
	if (bucket == NULL)
		nulls[3] = nulls[4] = true;
	else
	{
		TimestampTz now = GetCurrentTimestamp();
		double		tokens = bucket->tokens;

		/* refilled to now, as the next statement would see it */
		if (now > bucket->refilled_at)
			tokens += (double) (now - bucket->refilled_at) / USECS_PER_SEC * bucket->rate;
		values[3] = Float8GetDatum(Min(tokens, (double) bucket->rate));
		values[4] = Int64GetDatum(bucket->second == now / USECS_PER_SEC ? bucket->admitted : 0);
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * gb_scale.tenant_limits_usage(): per (database, tenant), the transactions
 * running for it and, for tenants with a statement rate in use, the tokens
 * left (as of their last statement) and the statements admitted in the
 * current second.  A snapshot copied under the lock, then shown.
 */
Datum
gb_tenant_limits_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GbXactSlot *slots;
	GbBucket   *buckets;
	long		nbuckets = 0;
	long		capacity;
	int			nslots;
	HASH_SEQ_STATUS scan;
	GbBucket   *bucket;
	HASHCTL		ctl;
	HTAB	   *running;
	GbUsageEntry *entry;

	if (gb_limits == NULL || gb_limits_buckets == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("gb_tenant_limits_usage requires gb_scale to be loaded via shared_preload_libraries"),
				 errhint("Add gb_scale to shared_preload_libraries in postgresql.conf and restart the server.")));
	InitMaterializedSRF(fcinfo, 0);

	nslots = gb_limits->nslots;
	slots = palloc_array(GbXactSlot, nslots);
	LWLockAcquire(gb_limits->lock, LW_SHARED);
	memcpy(slots, gb_limits->slots, nslots * sizeof(GbXactSlot));
	capacity = hash_get_num_entries(gb_limits_buckets);
	buckets = palloc_array(GbBucket, Max(capacity, 1));
	hash_seq_init(&scan, gb_limits_buckets);
	while ((bucket = hash_seq_search(&scan)) != NULL)
	{
		if (nbuckets >= capacity)
		{
			hash_seq_term(&scan);
			break;
		}
		SpinLockAcquire(&bucket->mutex);
		buckets[nbuckets++] = *bucket;
		SpinLockRelease(&bucket->mutex);
	}
	LWLockRelease(gb_limits->lock);

	ctl.keysize = sizeof(GbBucketKey);
	ctl.entrysize = sizeof(GbUsageEntry);
	ctl.hcxt = CurrentMemoryContext;
	running = hash_create("gb_scale tenant limits usage", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < nslots; i++)
	{
		GbBucketKey key;
		bool		found;

		if (!slots[i].active)
			continue;
		memset(&key, 0, sizeof(key));
		key.tenant = slots[i].tenant;
		key.dbid = slots[i].dbid;
		entry = hash_search(running, &key, HASH_ENTER, &found);
		if (!found)
		{
			entry->running = 0;
			entry->shown = false;
		}
		entry->running++;
	}
	for (long i = 0; i < nbuckets; i++)
	{
		CHECK_FOR_INTERRUPTS();
		entry = hash_search(running, &buckets[i].key, HASH_FIND, NULL);
		if (entry != NULL)
			entry->shown = true;
		gb_usage_put(rsinfo, &buckets[i].key, entry ? entry->running : 0, &buckets[i]);
	}
	hash_seq_init(&scan, running);
	while ((entry = hash_seq_search(&scan)) != NULL)
		if (!entry->shown)
			gb_usage_put(rsinfo, &entry->key, entry->running, NULL);
	return (Datum) 0;
}

/*
 * gb_shard_sync: make gb_scale.plan_limit equal to the source shard's rows,
 * sent as text[] columns (tier, max_xacts, max_statements_per_second,
 * updated_at; rows with both limits NULL are not sent: gb_plan_limit()
 * removes such a row).  gb_plan_limits_check() checks every row as
 * gb_plan_limit() checks it, before the sync writes anything;
 * gb_plan_limits_sync() then writes only the rows that differ, as the
 * tables' owner.
 */

typedef struct GbLimitSyncContext
{
	const char *tier;
} GbLimitSyncContext;

static void
gb_limit_sync_errcontext(void *arg)
{
	errcontext("limits of plan tier %s on the source shard", ((GbLimitSyncContext *) arg)->tier);
}

/* A limit sent by the source: NULL or at least 1, as gb_limit_arg() wants. */
static void
gb_limit_sync_value(const char *value, const char *name)
{
	int32		limit = pg_strtoint32(value);

	if (limit < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least 1, not %d", name, limit),
				 errhint("NULL means no limit of its own.")));
}

#define GB_PLAN_LIMIT_SOURCE \
	"ROWS FROM (pg_catalog.unnest($1::pg_catalog.int2[]), pg_catalog.unnest($2::pg_catalog.int4[])," \
	" pg_catalog.unnest($3::pg_catalog.int4[]), pg_catalog.unnest($4::pg_catalog.timestamptz[]))" \
	" AS s(tier, max_xacts, max_statements_per_second, updated_at)"

void
gb_plan_limits_check(const Datum *cols)
{
	Datum	   *values[4];
	bool	   *nulls[4];
	int			n = gb_plan_sync_columns(cols, 4, values, nulls, GB_PLAN_LIMIT_TABLE);
	ErrorContextCallback errcallback;
	GbLimitSyncContext ctx;

	errcallback.callback = gb_limit_sync_errcontext;
	errcallback.arg = &ctx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		/* NOT NULL on the source; both limits NULL are filtered there */
		if (nulls[0][i] || (nulls[1][i] && nulls[2][i]))
			elog(ERROR, "gb_scale.plan_limit of the source shard sent a row without a tier or a limit");
		ctx.tier = TextDatumGetCString(values[0][i]);
		(void) gb_plan_sync_tier(ctx.tier);
		if (!nulls[1][i])
			gb_limit_sync_value(TextDatumGetCString(values[1][i]), "max_xacts");
		if (!nulls[2][i])
			gb_limit_sync_value(TextDatumGetCString(values[2][i]), "max_statements_per_second");
	}
	error_context_stack = errcallback.previous;
}

void
gb_plan_limits_sync(const Datum *cols)
{
	Oid			types[4] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[4] = {cols[0], cols[1], cols[2], cols[3]};
	uint64		removed;
	uint64		changed;
	uint64		added;

	/* gb_plan_limit() calls wait for the sync, and it for them */
	(void) gb_plan_sync_exec("LOCK TABLE gb_scale.plan_limit IN SHARE ROW EXCLUSIVE MODE",
							 0, NULL, NULL, SPI_OK_UTILITY);
	removed = gb_plan_sync_exec("DELETE FROM gb_scale.plan_limit p"
								" WHERE NOT EXISTS (SELECT FROM " GB_PLAN_LIMIT_SOURCE
								" WHERE s.tier OPERATOR(pg_catalog.=) p.tier)",
								4, types, args, SPI_OK_DELETE);
	changed = gb_plan_sync_exec("UPDATE gb_scale.plan_limit p"
								" SET max_xacts = s.max_xacts,"
								" max_statements_per_second = s.max_statements_per_second, updated_at = s.updated_at"
								" FROM " GB_PLAN_LIMIT_SOURCE
								" WHERE s.tier OPERATOR(pg_catalog.=) p.tier"
								" AND (p.max_xacts, p.max_statements_per_second)"
								" IS DISTINCT FROM (s.max_xacts, s.max_statements_per_second)",
								4, types, args, SPI_OK_UPDATE);
	added = gb_plan_sync_exec("INSERT INTO gb_scale.plan_limit (tier, max_xacts, max_statements_per_second, updated_at)"
							  " SELECT s.tier, s.max_xacts, s.max_statements_per_second, s.updated_at"
							  " FROM " GB_PLAN_LIMIT_SOURCE
							  " WHERE NOT EXISTS (SELECT FROM gb_scale.plan_limit p"
							  " WHERE s.tier OPERATOR(pg_catalog.=) p.tier)",
							  4, types, args, SPI_OK_INSERT);
	if (removed + changed + added > 0)
		ereport(NOTICE,
				(errmsg("plan tier limits synced: " UINT64_FORMAT " added, " UINT64_FORMAT " changed, "
						UINT64_FORMAT " removed", added, changed, removed)));
}
