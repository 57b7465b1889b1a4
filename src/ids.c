/*-------------------------------------------------------------------------
 *
 * ids.c
 *	  gb_next_id(): snowflake IDs from shared memory, made durable by a
 *	  WAL-logged reservation mark.
 *
 * One slot per shard id lives in shared memory.  Its state is the last
 * issued "tick", (milliseconds << 12) | sequence, advanced by compare-and-
 * swap: the next tick is max(last + 1, now << 12), so more than 4096 IDs in a
 * millisecond borrow the next one instead of wrapping.
 *
 * Durability: no tick beyond the slot's reservation mark is handed out until
 * the mark has been raised, written to the sequence gb_scale.id_mark and its
 * WAL flushed.  After any (re)start, and after promotion of a standby that
 * replayed that WAL, the slot resumes just past the mark.  A mark covers
 * gb_scale.reservation_ms of ID time, so the cost is one flush per window.
 *
 * Clock: the generator never trusts the wall clock to move forward.  When it
 * is found behind (a step back, or a restart that resumes past the mark), the
 * generator's clock continues from where it was at half speed (timed by the
 * monotonic clock) until the wall clock catches up, so timestamps stay close
 * and callers do not stall.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"

#include <time.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define GB_TICKS_PER_MS		(INT64CONST(1) << GB_SEQUENCE_BITS)
#define GB_CACHE_LINE		128

typedef struct GbIdSlot
{
	/* Hot fields, read or written by every call. */
	pg_atomic_uint64 last_tick;	/* last tick issued */
	pg_atomic_uint64 mark_ms;	/* durable reservation mark (ID ms) */
	pg_atomic_uint64 wall_seen_ms;	/* highest wall-clock ms observed */
	pg_atomic_uint64 issued;	/* IDs issued since start */
	pg_atomic_uint32 owner_db;	/* database generating with this shard */
	pg_atomic_uint32 clock_floor_active;	/* see GbIdSlot.floor_* */
	/* cppcheck-suppress unusedStructMember */
	char		pad[GB_CACHE_LINE - 4 * sizeof(pg_atomic_uint64) - 2 * sizeof(pg_atomic_uint32)];

	/* Cold fields, under mutex. */
	slock_t		mutex;
	int64		floor_base_ms;	/* generator clock when the wall clock fell behind */
	int64		floor_mono_ms;	/* monotonic clock at that moment */
	uint64		clock_regressions;
	uint64		waits;
	uint64		mark_flushes;
} pg_attribute_aligned(GB_CACHE_LINE) GbIdSlot;

typedef struct GbIdShared
{
	LWLock	   *lock;			/* serialises claiming slots */
	GbIdSlot	slots[GB_MAX_SHARD_ID + 1];
} GbIdShared;

static GbIdShared *gb_ids = NULL;

Size
gb_ids_shmem_size(void)
{
	return add_size(sizeof(GbIdShared), GB_CACHE_LINE);
}

int
gb_ids_lwlock_count(void)
{
	return 1;
}

/* Round up to a cache line, so that each slot owns its cache lines. */
static GbIdShared *
gb_align_shared(void *raw)
{
	uintptr_t	misalignment = (uintptr_t) raw % GB_CACHE_LINE;

	return (GbIdShared *) ((char *) raw +
						   (misalignment ? GB_CACHE_LINE - misalignment : 0));
}

void
gb_ids_shmem_init(void)
{
	bool		found;
	void	   *raw;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	raw = ShmemInitStruct("gb_scale id generator", gb_ids_shmem_size(), &found);
	gb_ids = gb_align_shared(raw);
	if (!found)
	{
		memset(raw, 0, gb_ids_shmem_size());
		for (int i = 0; i <= GB_MAX_SHARD_ID; i++)
		{
			GbIdSlot   *slot = &gb_ids->slots[i];

			pg_atomic_init_u64(&slot->last_tick, 0);
			pg_atomic_init_u64(&slot->mark_ms, 0);
			pg_atomic_init_u64(&slot->wall_seen_ms, 0);
			pg_atomic_init_u64(&slot->issued, 0);
			pg_atomic_init_u32(&slot->owner_db, InvalidOid);
			pg_atomic_init_u32(&slot->clock_floor_active, 0);
			SpinLockInit(&slot->mutex);
		}
		gb_ids->lock = &(GetNamedLWLockTranche("gb_scale"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Milliseconds since the gb_scale epoch by the wall clock, shifted by the
 * instance-wide gb_scale.debug_clock_offset_ms.  The coarse clock (the
 * kernel tick, 1-4 ms) costs a third of the precise one; it only makes ID
 * timestamps lag by up to a tick, never affects uniqueness or order.
 */
static inline int64
gb_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - GB_EPOCH_UNIX_MS +
		gb_debug_clock_offset_ms;
}

static inline uint64
gb_compose_id(uint64 tick, int shard)
{
	return ((tick >> GB_SEQUENCE_BITS) << GB_TIME_SHIFT) |
		((uint64) shard << GB_SHARD_SHIFT) |
		(tick & GB_MAX_SEQUENCE);
}

/* Milliseconds of the monotonic clock, which steps of the wall clock do not move. */
static inline int64
gb_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The generator clock while the floor is active: half speed from its base.
 * Its progress is measured on the monotonic clock, so a later step of the
 * wall clock (back to the right time, say) ends the floor instead of
 * moving it.
 */
static inline int64
gb_floor_now(const GbIdSlot *slot)
{
	return slot->floor_base_ms + (gb_monotonic_ms() - slot->floor_mono_ms) / 2;
}

/*
 * Start (or restart) the clock floor because the wall clock is behind
 * "resume_ms", where the generator's clock had got to.  Caller holds mutex.
 */
static void
gb_start_floor(GbIdSlot *slot, int64 resume_ms)
{
	slot->floor_base_ms = resume_ms;
	slot->floor_mono_ms = gb_monotonic_ms();
	pg_atomic_write_u32(&slot->clock_floor_active, 1);
}

/*
 * The generator's notion of "now" in ID milliseconds: the wall clock, unless
 * the wall clock went backwards, in which case the floor keeps it moving
 * forward.  A regression is a wall-clock reading below one that another call
 * had already observed before we read the clock.
 */
static int64
gb_generator_now(GbIdSlot *slot, int shard)
{
	uint64		seen = pg_atomic_read_u64(&slot->wall_seen_ms);
	int64		wall;
	int64		now;
	bool		regressed = false;

	pg_read_barrier();
	wall = gb_wall_ms();

	if (wall > (int64) seen)
		pg_atomic_compare_exchange_u64(&slot->wall_seen_ms, &seen, (uint64) wall);
	else if (wall < (int64) seen)
	{
		SpinLockAcquire(&slot->mutex);
		seen = pg_atomic_read_u64(&slot->wall_seen_ms);
		if (wall < (int64) seen)
		{
			int64		resume = (int64) seen;

			if (pg_atomic_read_u32(&slot->clock_floor_active))
				resume = Max(resume, gb_floor_now(slot));
			gb_start_floor(slot, resume);
			pg_atomic_write_u64(&slot->wall_seen_ms, (uint64) wall);
			slot->clock_regressions++;
			regressed = true;
		}
		SpinLockRelease(&slot->mutex);
		if (regressed)
			ereport(WARNING,
					(errmsg("clock moved backwards by %lld ms; gb_scale shard %d keeps counting from its last ID",
							(long long) ((int64) seen - wall), shard),
					 errdetail("IDs stay unique and increasing; their timestamps run ahead of the clock until it catches up."),
					 errhint("Check the server's time synchronisation.")));
	}

	now = wall;
	if (pg_atomic_read_u32(&slot->clock_floor_active))
	{
		SpinLockAcquire(&slot->mutex);
		if (pg_atomic_read_u32(&slot->clock_floor_active))
		{
			int64		floor_now = gb_floor_now(slot);

			if (floor_now > wall)
				now = floor_now;
			else
				pg_atomic_write_u32(&slot->clock_floor_active, 0);
		}
		SpinLockRelease(&slot->mutex);
	}
	return now;
}

static Oid
gb_id_mark_relid(void)
{
	Oid			nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(GB_ID_MARK_SEQUENCE, nsp) : InvalidOid;

	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_SEQUENCE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sequence %s.%s is missing in database \"%s\"",
						GB_INTERNAL_SCHEMA, GB_ID_MARK_SEQUENCE,
						get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION gb_scale in this database.")));
	return relid;
}

/*
 * The reservation mark lives in a sequence owned by the extension's owner.
 * Callers of gb_next_id() need no privilege on it: we act as its owner for
 * the duration of the call, as PostgreSQL does for its own internal work.
 */
static Oid
gb_switch_to_owner(Oid relid, Oid *save_userid, int *save_sec_context)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(owner, *save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	return owner;
}

static int64
gb_read_mark(Oid relid)
{
	Oid			save_userid;
	int			save_sec_context;
	Datum		value;

	LOCAL_FCINFO(fcinfo, 1);

	gb_switch_to_owner(relid, &save_userid, &save_sec_context);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(relid);
	fcinfo->args[0].isnull = false;
	value = pg_sequence_last_value(fcinfo);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return fcinfo->isnull ? 0 : DatumGetInt64(value);
}

/* Write the mark and flush its WAL before any ID under it can be returned. */
static void
gb_write_mark(Oid relid, int64 mark_ms)
{
	Oid			save_userid;
	int			save_sec_context;

	gb_switch_to_owner(relid, &save_userid, &save_sec_context);
	DirectFunctionCall2(setval_oid, ObjectIdGetDatum(relid), Int64GetDatum(mark_ms));
	SetUserIdAndSecContext(save_userid, save_sec_context);
	XLogFlush(XactLastRecEnd);
}

/*
 * Raise the durable mark so that it covers "needed_ms".
 *
 * Raisers of one database queue on a self-conflicting lock on its mark
 * sequence rather than on an LWLock: the wait is interruptible and the
 * catalog and buffer work inside it may block safely.  Several slots may
 * belong to one database (the shard id can differ per role) and they share
 * its sequence, so the value written is the highest mark among them.
 */
static void
gb_raise_mark(GbIdSlot *slot, int64 needed_ms, int64 now)
{
	Oid			relid = gb_id_mark_relid();
	int64		new_mark;
	int64		db_mark;

	LockRelationOid(relid, ShareUpdateExclusiveLock);
	if ((int64) pg_atomic_read_u64(&slot->mark_ms) < needed_ms)
	{
		new_mark = Min(Max(needed_ms, now) + gb_reservation_ms, GB_MAX_TIME_MS);
		db_mark = new_mark;
		for (int i = 0; i <= GB_MAX_SHARD_ID; i++)
		{
			GbIdSlot   *other = &gb_ids->slots[i];

			if (pg_atomic_read_u32(&other->owner_db) == MyDatabaseId)
			{
				/* The owner is published after the mark (gb_claim_slot). */
				pg_read_barrier();
				db_mark = Max(db_mark, (int64) pg_atomic_read_u64(&other->mark_ms));
			}
		}
		gb_write_mark(relid, db_mark);
		pg_atomic_write_u64(&slot->mark_ms, (uint64) new_mark);
		SpinLockAcquire(&slot->mutex);
		slot->mark_flushes++;
		SpinLockRelease(&slot->mutex);
	}
	UnlockRelationOid(relid, ShareUpdateExclusiveLock);
}

static void
gb_report_shard_taken(int shard, Oid owner)
{
	char	   *owner_name = get_database_name(owner);

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("shard id %d is already used by database \"%s\" on this instance",
					shard, owner_name ? owner_name : "(dropped)"),
			 errdetail("Two databases generating IDs with one shard id would issue duplicate IDs; the first database to generate keeps the shard id until the server restarts."),
			 errhint("Give database \"%s\" its own shard id: ALTER DATABASE ... SET gb_scale.shard_id = <0-%d>.",
					 get_database_name(MyDatabaseId), GB_MAX_SHARD_ID)));
}

/*
 * First use of a shard id by this database since the instance started: take
 * the slot and resume just past the durable mark.  A shard id taken by another
 * database is refused, since both would issue the same IDs, unless that
 * database has been dropped; the slot then keeps counting from where it was.
 */
static void
gb_claim_slot(GbIdSlot *slot, int shard)
{
	Oid			seen_owner = pg_atomic_read_u32(&slot->owner_db);
	bool		seen_owner_dropped;
	Oid			relid;
	int64		mark;
	int64		wall;
	int64		ahead_ms = 0;
	Oid			owner;

	seen_owner_dropped = OidIsValid(seen_owner) && get_database_name(seen_owner) == NULL;
	if (OidIsValid(seen_owner) && !seen_owner_dropped)
		gb_report_shard_taken(shard, seen_owner);

	/* Catalog and buffer access happen before the instance-wide LWLock. */
	relid = gb_id_mark_relid();
	LockRelationOid(relid, ShareUpdateExclusiveLock);
	mark = gb_read_mark(relid);
	wall = gb_wall_ms();

	LWLockAcquire(gb_ids->lock, LW_EXCLUSIVE);
	owner = pg_atomic_read_u32(&slot->owner_db);
	if (owner == InvalidOid || (seen_owner_dropped && owner == seen_owner))
	{
		uint64		last = pg_atomic_read_u64(&slot->last_tick);
		uint64		past_mark = (uint64) (mark + 1) * GB_TICKS_PER_MS - 1;

		/*
		 * The slot of a dropped database keeps counting from its last tick,
		 * which it knows exactly; otherwise it resumes past the durable mark,
		 * which may lie ahead of the clock.
		 */
		pg_atomic_write_u64(&slot->mark_ms, (uint64) mark);
		pg_atomic_write_u64(&slot->wall_seen_ms, (uint64) Max(wall, 0));
		if (past_mark > last)
		{
			pg_atomic_write_u64(&slot->last_tick, past_mark);
			ahead_ms = mark + 1 - wall;
		}
		if (ahead_ms > 0)
		{
			SpinLockAcquire(&slot->mutex);
			gb_start_floor(slot, mark + 1);
			if (ahead_ms > (int64) gb_max_lead_ms + gb_reservation_ms)
				slot->clock_regressions++;
			SpinLockRelease(&slot->mutex);
		}

		/*
		 * Publish the owner only after the state above: other backends of
		 * this database read owner_db without the lock and then use
		 * last_tick and mark_ms.  On weakly ordered CPUs (ARM, POWER) they
		 * could otherwise see the owner first and compute, or even CAS, from
		 * a zero last_tick that our store of the resume tick then overwrites.
		 */
		pg_write_barrier();
		pg_atomic_write_u32(&slot->owner_db, MyDatabaseId);
		owner = MyDatabaseId;
	}
	LWLockRelease(gb_ids->lock);
	UnlockRelationOid(relid, ShareUpdateExclusiveLock);

	/*
	 * Resuming ahead of the clock is expected after a restart within a
	 * reservation window; further ahead, the clock must have stepped back.
	 */
	if (ahead_ms > (int64) gb_max_lead_ms + gb_reservation_ms)
		ereport(WARNING,
				(errmsg("gb_scale shard %d resumes %lld ms ahead of the clock, past its durable mark",
						shard, (long long) ahead_ms),
				 errdetail("The clock is behind the IDs issued before the restart. IDs stay unique and increasing; their timestamps run ahead of the clock until it catches up."),
				 errhint("Check the server's time synchronisation.")));
	else if (ahead_ms > 0)
		ereport(LOG,
				(errmsg("gb_scale shard %d resumes %lld ms ahead of the clock, past its durable mark",
						shard, (long long) ahead_ms)));

	if (owner != MyDatabaseId)
		gb_report_shard_taken(shard, owner);
}

int
gb_required_shard(void)
{
	if (gb_shard_id == GB_SHARD_UNSET)
	{
		if (gb_shard_id_env_error)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("environment variable SHARD_ID has invalid value \"%s\"",
							gb_shard_id_env_error),
					 errdetail("A shard id is 0 to %d, written with 1 to 4 digits and nothing else.", GB_MAX_SHARD_ID),
					 errhint("Fix SHARD_ID in the server's environment, or set gb_scale.shard_id in postgresql.conf or with ALTER DATABASE ... SET.")));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("gb_scale.shard_id is not set"),
				 errdetail("Every ID carries the shard id of the database that made it."),
				 errhint("Set gb_scale.shard_id (0-%d) in postgresql.conf or with ALTER DATABASE %s SET gb_scale.shard_id = ..., or start the server with SHARD_ID in its environment.",
						 GB_MAX_SHARD_ID, quote_identifier(get_database_name(MyDatabaseId)))));
	}
	return gb_shard_id;
}

static void
gb_check_can_generate(const char *what)
{
	if (gb_ids == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires gb_scale to be loaded via shared_preload_libraries", what),
				 errhint("Add gb_scale to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute %s during recovery", what),
				 errdetail("A standby cannot issue IDs: they would not be durable on the primary."),
				 errhint("Generate IDs on the primary; after promotion this server issues IDs itself.")));
	PreventCommandIfReadOnly(what);
}

/*
 * Reserve "count" consecutive ticks for the current shard and return the
 * first.  Waits, interruptibly, while the last of them would lead the
 * generator clock by more than gb_scale.max_lead_ms.
 */
static uint64
gb_reserve_ticks(int64 count, int *shard_out, const char *what)
{
	int			shard;
	GbIdSlot   *slot;
	bool		counted_wait = false;

	gb_check_can_generate(what);
	shard = gb_required_shard();
	slot = &gb_ids->slots[shard];
	if (pg_atomic_read_u32(&slot->owner_db) != MyDatabaseId)
		gb_claim_slot(slot, shard);

	/*
	 * Pairs with the write barrier that publishes the owner in gb_claim_slot:
	 * having seen the owner, we see the last_tick and mark_ms stored before.
	 */
	pg_read_barrier();
	*shard_out = shard;

	for (;;)
	{
		int64		now = gb_generator_now(slot, shard);
		uint64		last = pg_atomic_read_u64(&slot->last_tick);
		uint64		first = Max(last + 1, (uint64) Max(now, 0) * GB_TICKS_PER_MS);
		int64		end_ms = (int64) ((first + count - 1) >> GB_SEQUENCE_BITS);
		int64		lead = end_ms - now;

		if (end_ms > GB_MAX_TIME_MS)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("gb_scale IDs are exhausted: time %lld ms past 2024-01-01 exceeds the 41-bit range",
							(long long) end_ms),
					 errhint("Check the server clock and gb_scale.debug_clock_offset_ms.")));

		if (lead > gb_max_lead_ms)
		{
			if (!counted_wait)
			{
				SpinLockAcquire(&slot->mutex);
				slot->waits++;
				SpinLockRelease(&slot->mutex);
				counted_wait = true;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Max(lead - gb_max_lead_ms, 1), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			continue;
		}

		if (end_ms > (int64) pg_atomic_read_u64(&slot->mark_ms))
		{
			gb_raise_mark(slot, end_ms, now);
			continue;
		}

		if (pg_atomic_compare_exchange_u64(&slot->last_tick, &last, first + count - 1))
		{
			pg_atomic_fetch_add_u64(&slot->issued, count);
			return first;
		}
	}
}

PG_FUNCTION_INFO_V1(gb_next_id);
Datum
gb_next_id(PG_FUNCTION_ARGS)
{
	int			shard;
	uint64		tick = gb_reserve_ticks(1, &shard, "gb_next_id()");

	PG_RETURN_INT64((int64) gb_compose_id(tick, shard));
}

typedef struct GbIdRun
{
	uint64		first_tick;
	int			shard;
} GbIdRun;

PG_FUNCTION_INFO_V1(gb_next_ids);
Datum
gb_next_ids(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	GbIdRun    *run;

	if (SRF_IS_FIRSTCALL())
	{
		int32		n = PG_GETARG_INT32(0);
		int64		capacity = ((int64) gb_max_lead_ms + 1) * GB_TICKS_PER_MS;
		MemoryContext oldcontext;

		funcctx = SRF_FIRSTCALL_INIT();
		if (n < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("gb_next_ids: count must not be negative, got %d", n),
					 errhint("Ask for the number of IDs to reserve, e.g. gb_next_ids(1000).")));
		if (n > capacity)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("gb_next_ids: cannot reserve %d IDs in one step", n),
					 errdetail("At most %lld IDs fit within gb_scale.max_lead_ms = %d (4096 per millisecond).",
							   (long long) capacity, gb_max_lead_ms),
					 errhint("Reserve in smaller batches, or raise gb_scale.max_lead_ms in postgresql.conf; it applies to every session.")));
		oldcontext = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		run = palloc(sizeof(GbIdRun));
		MemoryContextSwitchTo(oldcontext);
		run->first_tick = n > 0 ? gb_reserve_ticks(n, &run->shard, "gb_next_ids()") : 0;
		funcctx->max_calls = n;
		funcctx->user_fctx = run;
	}

	funcctx = SRF_PERCALL_SETUP();
	run = funcctx->user_fctx;
	if (funcctx->call_cntr < funcctx->max_calls)
	{
		/* Computed first: SRF_RETURN_NEXT advances call_cntr before using its argument. */
		Datum		id = Int64GetDatum((int64) gb_compose_id(run->first_tick + funcctx->call_cntr,
															 run->shard));

		SRF_RETURN_NEXT(funcctx, id);
	}
	SRF_RETURN_DONE(funcctx);
}

PG_FUNCTION_INFO_V1(gb_id_generator_status);
Datum
gb_id_generator_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		wall;

	if (gb_ids == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("gb_id_generator_status() requires gb_scale to be loaded via shared_preload_libraries"),
				 errhint("Add gb_scale to shared_preload_libraries in postgresql.conf and restart the server.")));

	InitMaterializedSRF(fcinfo, 0);
	wall = gb_wall_ms();
	for (int shard = 0; shard <= GB_MAX_SHARD_ID; shard++)
	{
		GbIdSlot   *slot = &gb_ids->slots[shard];
		Oid			owner = pg_atomic_read_u32(&slot->owner_db);
		Datum		values[11];
		bool		nulls[11] = {0};
		uint64		last_tick;
		uint64		issued;
		int64		last_ms;
		char	   *dbname;

		if (owner == InvalidOid)
			continue;
		/* The owner is published after the state (gb_claim_slot). */
		pg_read_barrier();
		last_tick = pg_atomic_read_u64(&slot->last_tick);
		last_ms = (int64) (last_tick >> GB_SEQUENCE_BITS);
		dbname = get_database_name(owner);

		values[0] = Int16GetDatum((int16) shard);
		if (dbname)
			values[1] = CStringGetTextDatum(dbname);
		else
			nulls[1] = true;
		issued = pg_atomic_read_u64(&slot->issued);
		if (issued > 0)
		{
			values[2] = Int64GetDatum((int64) gb_compose_id(last_tick, shard));
			values[3] = TimestampTzGetDatum(gb_ms_to_timestamptz(last_ms));
		}
		else
			nulls[2] = nulls[3] = true;
		values[4] = Int64GetDatum(Max(last_ms - wall, 0));
		values[5] = TimestampTzGetDatum(gb_ms_to_timestamptz((int64) pg_atomic_read_u64(&slot->mark_ms)));
		values[6] = Int64GetDatum((int64) issued);
		SpinLockAcquire(&slot->mutex);
		values[7] = Int64GetDatum((int64) slot->clock_regressions);
		values[8] = Int64GetDatum((int64) slot->waits);
		values[9] = Int64GetDatum((int64) slot->mark_flushes);
		SpinLockRelease(&slot->mutex);
		values[10] = BoolGetDatum(pg_atomic_read_u32(&slot->clock_floor_active) != 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Called by the install script right after it creates gb_scale.id_mark.
 *
 * DROP EXTENSION drops the mark, but tables outside the extension keep the
 * IDs, which may lie ahead of the clock; a mark restarting at 0 would let
 * the generator resume below them after a restart.  Shared memory still knows
 * how far this database's slots got, so the new mark starts there.  Without
 * shared memory, or with no slot of this database (a new database, or a
 * restart since the DROP), there is nothing to carry over.  The mark is only
 * ever raised, should an update script call this again.
 */
PG_FUNCTION_INFO_V1(gb_id_mark_init);
Datum
gb_id_mark_init(PG_FUNCTION_ARGS)
{
	int64		high_ms = 0;
	Oid			relid;

	if (!gb_in_own_extension_script())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("gb_scale.id_mark_init() can only be called by CREATE EXTENSION gb_scale"),
				 errdetail("It starts a new durable mark past the IDs this instance has issued."),
				 errhint("To raise the mark by hand, call setval() on gb_scale.id_mark before the first gb_next_id() since the server started.")));

	if (gb_ids == NULL)
		PG_RETURN_VOID();
	for (int i = 0; i <= GB_MAX_SHARD_ID; i++)
	{
		GbIdSlot   *slot = &gb_ids->slots[i];

		if (pg_atomic_read_u32(&slot->owner_db) != MyDatabaseId)
			continue;
		/* Pairs with the write barrier that publishes the owner. */
		pg_read_barrier();
		high_ms = Max(high_ms, (int64) pg_atomic_read_u64(&slot->mark_ms));
		high_ms = Max(high_ms,
					  (int64) (pg_atomic_read_u64(&slot->last_tick) >> GB_SEQUENCE_BITS));
	}
	if (high_ms == 0)
		PG_RETURN_VOID();

	relid = gb_id_mark_relid();
	LockRelationOid(relid, ShareUpdateExclusiveLock);
	if (gb_read_mark(relid) < high_ms)
		gb_write_mark(relid, high_ms);
	UnlockRelationOid(relid, ShareUpdateExclusiveLock);
	PG_RETURN_VOID();
}
