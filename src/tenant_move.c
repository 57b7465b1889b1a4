/*-------------------------------------------------------------------------
 *
 * tenant_move.c
 *	  Moving one tenant to another shard while it keeps writing:
 *	  CALL gb_tenant_move(tenant_id, target_shard[, keep_source]) on the
 *	  tenant's shard, gb_tenant_move_finish(tenant_id),
 *	  gb_tenant_move_abort(tenant_id), the state in gb_scale.tenant_move.
 *
 * Design (issue 17):
 *
 *	preparing	checks (below), a row in gb_scale.tenant_move naming the
 *				publication, subscription and slot (all "gb_move_<tenant>_<move>",
 *				recorded before any of them exists, so that an abort always
 *				knows what to drop), the fence trigger on every tenant table
 *				(below), and on the source a publication of every tenant
 *				table (gb_tenant_tables: isolated tables and managed
 *				partitioned tables with a tenant_column) with the row filter
 *				tenant_column = tenant and publish_via_partition_root, so that
 *				rows reach the target's own partitions.  Committed; then the
 *				tenant is marked in motion in shared memory and the move waits
 *				for every transaction already running (they may have passed
 *				the fence before the mark, without the pause lock).
 *	copying		the slot is created here, on the source, in a transaction
 *				without an xid (creating a logical slot waits for every
 *				transaction holding an xid, so the procedure's own writes are
 *				committed first); then over libpq the target runs
 *				gb_scale.tenant_move_subscribe(), which creates the
 *				subscription with that slot (create_slot = false, so it can
 *				run inside a function) and copy_data = true, and installs the
 *				fence there too.  The source's connection string is read from
 *				the target's own shard_config: no password ever travels in a
 *				statement, so none reaches pg_stat_activity or a log; the
 *				subscription is built from parse nodes, so no error context
 *				quotes it either.
 *	catching up	the target's pg_subscription_rel says every table is ready;
 *				the tenant's rows then on the target are recorded per table
 *				(rows_copied); caught up once the slot's confirmed_flush_lsn
 *				is within gb_scale.move_max_lag bytes of the source's WAL.
 *				Every wait is on the latch with a timeout
 *				(gb_scale.move_timeout): cancel works, a dead target ends it.
 *				gb_scale.move_switch = off returns here.
 *	paused		committed first (the view shows it); then, in one transaction,
 *				the pause lock (an advisory-type lock of kind MOVE_LOCK_KIND
 *				per database and tenant) in exclusive mode: the fence takes it
 *				in share mode for every write of a tenant in motion, so the
 *				move waits for writes under way and new ones wait for the
 *				switch.  The source's WAL insert position is read, and the
 *				move waits until the slot's confirmed_flush_lsn reaches it,
 *				at most gb_scale.move_max_pause (then an error ends the
 *				pause; the move stays paused for a new CALL).
 *	switched	gb_tenant_assign on the target (its transaction left open),
 *				then here, with state switched and the pause's length; the
 *				local commit releases the lock (the directory change is in the
 *				shared routing map before), then the target commits.  Writers
 *				that waited re-read the directory and fail with 40001 naming
 *				the target.  A cancel, error or crash before the local commit
 *				releases the lock with the tenant still here; the move stays
 *				paused.
 *	cleaning	the target writes its entry again (its commit above may have
 *				been lost) and drops the subscription (slot_name = NONE
 *				first); the slots and the publication are dropped here; every
 *				other shard with a connection string gets the entry too (a
 *				WARNING for one out of reach: gb_shard_sync there); the
 *				target's copied rows get shard_id = target (only now: the
 *				apply looked rows up by the source's key); then the rows here
 *				are purged, or, with keep_source, later by
 *				gb_tenant_move_finish once keep_source_until has passed.
 *				Rewrite and purge walk the tables by block ranges
 *				(gb_tenant_walk_step), a committed step at a time.
 *
 * Pacing: every other tenant's commit on a shard waits for the WAL written
 * before it, so the copy (in the target's table syncs, by the replica-only
 * trigger gb_tenant_move_pace), the rewrite and the purge each write at
 * most gb_scale.move_rate rows a second per table, that shard's setting.
 *	done		the tenant's mark in shared memory is cleared.
 *
 * A CALL holds a session lock (kind MOVE_LOCK_KIND + 1) per tenant: one at a
 * time.  A CALL for a move in copying (once the target's subscription is
 * recorded), catching up, paused, switched or cleaning goes on from there
 * (after a restart it marks the tenant again); preparing, failed moves and
 * copying ones without a subscription are aborted and started again.
 *
 * The fence: gb_scale.tenant_move_fence(tenant_column), a BEFORE INSERT OR
 * UPDATE OR DELETE row trigger named gb_tenant_fence, on a partitioned table
 * cloned to every partition, enabled on origin only (the default), so that
 * the target's apply (session_replication_role = replica) writes rows of a
 * tenant it does not serve yet.  Per row: if the tenant is in motion (a
 * count, then a scan of at most MOVE_MAX_MOVING entries under a spinlock),
 * the pause lock in share mode; then the routing map (one shared-memory
 * probe): a tenant that another shard serves is refused with 40001, the
 * SQLSTATE that clients already retry as a whole transaction, after
 * routing again.  gb_tenant_purge passes it; an abort's deletes on the
 * target run as replica.
 *
 * Who may move: CREATE SUBSCRIPTION needs a superuser in PostgreSQL 15, on
 * the target, through the role of the target's connection string; the
 * procedure itself creates a slot and a publication of every tenant table.
 * So only a superuser may call it (checked first, 42501), and the roles of
 * both connection strings must be superusers (or, on the source, a
 * replication role that bypasses row level security and reads the tables).
 *
 * Abort works from any state before switched (then the target serves the
 * tenant, and abort refuses): the target disables and drops the
 * subscription (slot_name = NONE first, so that no slot is dropped in a
 * transaction) and deletes the tenant's copied rows; then here, whatever the
 * target said, the walsenders still using the move's slots are ended and the
 * slots dropped (the subscription's slot and its table-sync slots,
 * pg_<subid>_sync_*), and the publication dropped.  When the target cannot
 * be reached the move is left failed with an error saying what remains
 * there, and a second abort finishes it.  Nothing of it ever holds WAL.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "partition.h"
#include "routing.h"
#include "shard_conn.h"

#include <limits.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/heap.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_subscription.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "commands/subscriptioncmds.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_node.h"
#include "replication/message.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "replication/worker_internal.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PG_FUNCTION_INFO_V1(gb_tenant_move);
PG_FUNCTION_INFO_V1(gb_tenant_move_abort);
PG_FUNCTION_INFO_V1(gb_tenant_move_subscribe);
PG_FUNCTION_INFO_V1(gb_tenant_move_unsubscribe);
PG_FUNCTION_INFO_V1(gb_tenant_move_fence);
PG_FUNCTION_INFO_V1(gb_tenant_move_pace);
PG_FUNCTION_INFO_V1(gb_tenant_move_finish);
PG_FUNCTION_INFO_V1(gb_tenant_move_rewrite);

extern Datum gb_shard_for_tenant(PG_FUNCTION_ARGS);
extern Datum gb_tenant_assign(PG_FUNCTION_ARGS);

/* Set by the purges: their deletes pass the fence (not their inserts). */
bool		gb_move_fence_bypass = false;

/*
 * The tenants being moved from this server's databases, in shared memory:
 * the fence takes the pause lock only for them, so that the writes of the
 * other tenants cost a look at the count.  Cleared by a restart, like the
 * lock itself.
 */
#define MOVE_MAX_MOVING		64
/* locktag_field4 of the pause lock (advisory locks use 1 and 2) */
#define MOVE_LOCK_KIND		17

typedef struct MoveSharedEntry
{
	Oid			database;
	int64		tenant;
} MoveSharedEntry;

typedef struct MoveShared
{
	slock_t		mutex;
	pg_atomic_uint32 count;
	MoveSharedEntry entries[MOVE_MAX_MOVING];
} MoveShared;

static MoveShared *move_shared = NULL;

/* The name of the fence trigger on every tenant table. */
#define MOVE_FENCE_TRIGGER	"gb_tenant_fence"
/*
 * The trigger that paces the target's initial copy: BEFORE INSERT, enabled
 * on replica only, so that it runs in the table syncs and nowhere else.
 */
#define MOVE_PACE_TRIGGER	"gb_tenant_move_pace"
/* The names of a move's publication, subscription and slot begin so. */
#define MOVE_NAME_PREFIX	"gb_move_"
/* Rows a step of a walk (rewrite, purge) changes when it is not paced. */
#define MOVE_UNPACED_STEP	10000

/* gb_scale.move_timeout (seconds) and gb_scale.move_max_lag (bytes). */
static int	gb_move_timeout = 3600;
static int	gb_move_max_lag = 1024 * 1024;
/* gb_scale.move_max_pause (ms): the longest the target may take to confirm */
static int	gb_move_max_pause = 10000;
/* gb_scale.move_switch: off stops a CALL once caught up, before the pause */
static bool gb_move_switch = true;

/*
 * gb_scale.move_rate: rows per second that a move writes on this shard per
 * table, in its copy (the target's table syncs), its shard_id rewrite (the
 * target) and its purge (the source); 0 for as fast as it goes.  Every
 * other tenant commits behind the WAL that these write: unpaced, a big
 * tenant's copy makes their commits wait for megabytes of it.
 */
static int	gb_move_rate = 10000;

/* Pacing: rows done since start, against gb_scale.move_rate. */
typedef struct MovePace
{
	TimestampTz start;
	int64		rows;
} MovePace;

/* How often the copy's progress is looked at, and reported (ms). */
#define MOVE_POLL_MS		200
#define MOVE_NOTICE_MS		5000
/* How often the pause wakes the walsender while it waits (ms). */
#define MOVE_NUDGE_MS		100
/*
 * Errors of the target's workers that one CALL lets them retry: a lost
 * connection costs one per worker (an apply and two table syncs).
 */
#define MOVE_MAX_SUB_ERRORS	6
/* How long an abort waits for a walsender to leave the move's slot (ms). */
#define MOVE_SLOT_WAIT_MS	10000

/* The states that a move leaves only through abort or its next steps. */
#define MOVE_ACTIVE \
	"m.state OPERATOR(pg_catalog.<>) ALL (ARRAY['done', 'aborted']::pg_catalog.text[])"

/* A connection to the target shard and the result being read. */
typedef struct MoveConn
{
	GbShardConn remote;
	int			shard;
} MoveConn;

/* What a move is, as its state row says. */
typedef struct MoveRow
{
	int64		move_id;
	int64		tenant;
	int			source;
	int			target;
	char	   *state;
	char	   *name;			/* publication, subscription and slot */
	Oid			subid;			/* the subscription on the target, once made */
} MoveRow;

/* ----------------------------------------------------------------
 * libpq to the target, every wait on the latch
 * ----------------------------------------------------------------
 */

static void
move_connect(MoveConn *mc, int shard, const char *conninfo)
{
	mc->shard = shard;
	mc->remote.peer = psprintf("target shard %d", shard);
	mc->remote.hint = psprintf("Check the connection_string of shard %d in gb_scale.shard_config.", shard);
	gb_shard_conn_open(&mc->remote, conninfo, "gb_tenant_move");
	/* from now on an error leaves the move to be aborted or resumed */
	mc->remote.hint = "The tenant is still served by this shard; gb_tenant_move_abort(tenant_id) undoes what the move did.";
}

/* Run one statement with text parameters; its result stays until the next. */
static PGresult *
move_query(MoveConn *mc, const char *sql, int nparams, const char *const *params,
		   ExecStatusType expected, const char *what)
{
	return gb_shard_conn_query(&mc->remote, sql, nparams, params, expected, what);
}

static void
move_disconnect(MoveConn *mc)
{
	gb_shard_conn_close(&mc->remote);
}

/* ----------------------------------------------------------------
 * Local SQL
 * ----------------------------------------------------------------
 */

/* Run SQL here with int8/text parameters; returns SPI_processed. */
static uint64
move_exec(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed (%d): %s", rc, sql);
	return SPI_processed;
}

static void
move_set_state(const MoveRow *m, const char *state)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {Int64GetDatum(m->move_id), CStringGetTextDatum(state)};

	move_exec("UPDATE gb_scale.tenant_move SET state = $2,"
			  " finished_at = CASE WHEN $2 OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'aborted']::pg_catalog.text[])"
			  "   THEN pg_catalog.now() END,"
			  " error = CASE WHEN $2 OPERATOR(pg_catalog.=) 'failed' THEN error END"
			  " WHERE move_id OPERATOR(pg_catalog.=) $1", 2, types, values, SPI_OK_UPDATE);
}

/* The active move of TENANT, if any (read in the current transaction). */
static bool
move_find(int64 tenant, MoveRow *m)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(tenant)};
	bool		isnull;

	if (move_exec("SELECT m.move_id, m.source_shard, m.target_shard, m.state, m.slot_name::pg_catalog.text,"
				  " m.target_subid FROM gb_scale.tenant_move m"
				  " WHERE m.tenant_id OPERATOR(pg_catalog.=) $1 AND " MOVE_ACTIVE
				  " FOR UPDATE", 1, types, values, SPI_OK_SELECT) == 0)
		return false;
	m->tenant = tenant;
	m->move_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	m->source = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	m->target = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	m->state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	m->name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);
	m->subid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isnull));
	if (isnull)
		m->subid = InvalidOid;
	/* the values above live in SPI's procedure memory, past commits */
	m->state = pstrdup(m->state);
	m->name = pstrdup(m->name);
	return true;
}

/* The connection string of SHARD in gb_scale.shard_config, or an error. */
static char *
move_shard_connstr(int shard, const char *role)
{
	Oid			types[1] = {INT2OID};
	Datum		values[1] = {Int16GetDatum((int16) shard)};
	char	   *connstr;

	if (move_exec("SELECT s.connection_string FROM gb_scale.shard_config s"
				  " WHERE s.shard_id OPERATOR(pg_catalog.=) $1", 1, types, values, SPI_OK_SELECT) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shard %d is not in gb_scale.shard_config", shard),
				 errhint("Add the shard to the directory on every shard (gb_shard_sync) before moving tenants %s it.",
						 role)));
	connstr = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (connstr == NULL || connstr[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shard %d has no connection_string in gb_scale.shard_config", shard),
				 errdetail("A move connects to the target through its connection string, and the target's subscription to the source through the source's."),
				 errhint("Set connection_string of shard %d on every shard (gb_shard_sync copies the directory).", shard)));
	return pstrdup(connstr);
}

/* ----------------------------------------------------------------
 * Pacing
 * ----------------------------------------------------------------
 */

/*
 * Wait until the rows done since the pace's start fit gb_scale.move_rate,
 * then start again: after each burst of rows (a statement of a walk, or
 * move_pace_burst() rows of a table sync).
 */
static void
move_pace_wait(MovePace *pace)
{
	if (gb_move_rate > 0 && pace->start != 0 && pace->rows > 0)
	{
		TimestampTz due = pace->start + pace->rows * USECS_PER_SEC / gb_move_rate;

		for (;;)
		{
			TimestampTz now = GetCurrentTimestamp();

			if (now >= due)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min((due - now) / 1000 + 1, 1000), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	pace->start = GetCurrentTimestamp();
	pace->rows = 0;
}

/*
 * A burst of rows between two sleeps: a hundredth of a second's worth, so
 * that its work and WAL stay short next to other tenants' writes.
 */
static int64
move_pace_burst(void)
{
	return gb_move_rate > 0 ? Max(gb_move_rate / 100, 1) : MOVE_UNPACED_STEP;
}

/* A step (one transaction) of a walk: a tenth of a second's worth. */
static int64
move_pace_step(void)
{
	return gb_move_rate > 0 ? Max(gb_move_rate / 10, 1) : MOVE_UNPACED_STEP;
}

/* After each statement of a walk (GbTenantWalk.pace). */
static void
move_pace_rows(int64 rows, void *pace_arg)
{
	MovePace   *pace = pace_arg;

	pace->rows += rows;
	move_pace_wait(pace);
}

/* A walk from its start, paced by PACE. */
static void
move_walk_init(GbTenantWalk *walk, MovePace *pace)
{
	memset(walk, 0, sizeof(*walk));
	walk->statement_rows = move_pace_burst();
	walk->pace = move_pace_rows;
	walk->pace_arg = pace;
	if (pace->start == 0)
		pace->start = GetCurrentTimestamp();
}

/*
 * gb_scale.tenant_move_pace(): BEFORE INSERT row trigger of every tenant
 * table on a shard that a move touched, enabled on replica only.  In a
 * table sync of a move's subscription it holds the copy to this shard's
 * gb_scale.move_rate; the apply of the catch-up and every other session
 * pass.
 */
Datum
gb_tenant_move_pace(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	static MovePace copy_pace;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("gb_scale.tenant_move_pace must be a BEFORE INSERT row trigger")));
	if (MyLogicalRepWorker != NULL && am_tablesync_worker() &&
		strncmp(MySubscription->name, MOVE_NAME_PREFIX, strlen(MOVE_NAME_PREFIX)) == 0)
	{
		if (copy_pace.start == 0)
			copy_pace.start = GetCurrentTimestamp();
		if (++copy_pace.rows >= move_pace_burst())
			move_pace_wait(&copy_pace);
	}
	return PointerGetDatum(trigdata->tg_trigtuple);
}

/*
 * Whether TGFOID is gb_scale.tenant_move_pace(): a trigger of it sleeps in a
 * move's table syncs and does nothing anywhere else.
 */
bool
gb_move_is_pace_trigger(Oid tgfoid)
{
	Oid			schema = get_namespace_oid("gb_scale", true);
	char	   *name = get_func_name(tgfoid);

	return OidIsValid(schema) && name != NULL && get_func_namespace(tgfoid) == schema &&
		strcmp(name, "tenant_move_pace") == 0;
}

/* ----------------------------------------------------------------
 * The pause and the fence
 * ----------------------------------------------------------------
 */

void
gb_tenant_move_shmem_request(void)
{
	RequestAddinShmemSpace(sizeof(MoveShared));
}

void
gb_tenant_move_shmem_init(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	move_shared = ShmemInitStruct("gb_scale tenant_move", sizeof(MoveShared), &found);
	if (!found)
	{
		SpinLockInit(&move_shared->mutex);
		pg_atomic_init_u32(&move_shared->count, 0);
		memset(move_shared->entries, 0, sizeof(move_shared->entries));
	}
	LWLockRelease(AddinShmemInitLock);
}

/* The lock that pauses TENANT's writes here: one per database and tenant. */
static void
move_pause_locktag(LOCKTAG *tag, int64 tenant)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) ((uint64) tenant >> 32),
						 (uint32) tenant, MOVE_LOCK_KIND);
}

/* The lock that one CALL gb_tenant_move of TENANT holds for its session. */
static void
move_call_locktag(LOCKTAG *tag, int64 tenant)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) ((uint64) tenant >> 32),
						 (uint32) tenant, MOVE_LOCK_KIND + 1);
}

static bool
move_is_moving(int64 tenant)
{
	bool		found = false;

	if (move_shared == NULL || pg_atomic_read_u32(&move_shared->count) == 0)
		return false;
	SpinLockAcquire(&move_shared->mutex);
	for (int i = 0; i < MOVE_MAX_MOVING; i++)
	{
		if (move_shared->entries[i].database == MyDatabaseId &&
			move_shared->entries[i].tenant == tenant)
		{
			found = true;
			break;
		}
	}
	SpinLockRelease(&move_shared->mutex);
	return found;
}

/*
 * Mark TENANT as moving, then wait for every transaction already running:
 * they may have passed the fence before the mark, without the pause lock.
 * Every later one takes the lock for the tenant's writes.
 */
static void
move_mark_moving(int64 tenant)
{
	int			free_entry = -1;
	bool		found = false;
	VirtualTransactionId *running;
	int			nrunning;

	if (move_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("moving tenant " INT64_FORMAT " needs gb_scale in shared_preload_libraries", tenant),
				 errhint("Add gb_scale to shared_preload_libraries and restart the server.")));
	SpinLockAcquire(&move_shared->mutex);
	for (int i = 0; i < MOVE_MAX_MOVING; i++)
	{
		if (move_shared->entries[i].database == MyDatabaseId &&
			move_shared->entries[i].tenant == tenant)
			found = true;
		else if (free_entry < 0 && move_shared->entries[i].database == InvalidOid)
			free_entry = i;
	}
	if (!found && free_entry >= 0)
	{
		move_shared->entries[free_entry].database = MyDatabaseId;
		move_shared->entries[free_entry].tenant = tenant;
		pg_atomic_fetch_add_u32(&move_shared->count, 1);
	}
	SpinLockRelease(&move_shared->mutex);
	if (!found && free_entry < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many tenants are being moved from this server (at most %d)", MOVE_MAX_MOVING),
				 errhint("Finish or abort other moves first.")));

	running = GetCurrentVirtualXIDs(InvalidTransactionId, false, false,
									PROC_IS_AUTOVACUUM | PROC_IN_VACUUM, &nrunning);
	for (int i = 0; i < nrunning; i++)
	{
		CHECK_FOR_INTERRUPTS();
		(void) VirtualXactLock(running[i], true);
	}
}

static void
move_unmark_moving(int64 tenant)
{
	if (move_shared == NULL)
		return;
	SpinLockAcquire(&move_shared->mutex);
	for (int i = 0; i < MOVE_MAX_MOVING; i++)
	{
		if (move_shared->entries[i].database == MyDatabaseId &&
			move_shared->entries[i].tenant == tenant)
		{
			move_shared->entries[i].database = InvalidOid;
			move_shared->entries[i].tenant = 0;
			pg_atomic_fetch_sub_u32(&move_shared->count, 1);
			break;
		}
	}
	SpinLockRelease(&move_shared->mutex);
}

/*
 * The fence, for one write of TENANT here: while the tenant moves, the
 * write holds the pause lock in share mode until its transaction ends (so
 * the switch waits for it, and it waits for the switch); then the tenant
 * must still be served by this shard.
 */
static void
move_fence_check(int64 tenant)
{
	bool		waited = false;
	int16		served;
	int			here;

	if (move_is_moving(tenant))
	{
		LOCKTAG		tag;

		move_pause_locktag(&tag, tenant);
		if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		{
			(void) LockAcquire(&tag, ShareLock, false, false);
			waited = true;
		}
	}
	served = gb_lookup_tenant(tenant);
	if (served < 0)
		return;
	here = gb_required_shard();
	if (served != here)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("tenant " INT64_FORMAT " is served by shard %d, not by this shard (%d)", tenant, served, here),
				 waited ?
				 errdetail("The tenant moved to shard %d while this write waited for the switch; nothing of this transaction was kept.", served) :
				 errdetail("The tenant's rows are written on shard %d only, so that they are never split between shards.", served),
				 errhint("Route the tenant's writes to shard %d (gb_shard_connection) and retry the transaction there.", served)));
}

/* The tenant of a row, from the column named by the trigger's argument. */
static bool
move_row_tenant(Relation rel, HeapTuple tuple, const char *column, int64 *tenant)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			attnum = SPI_fnumber(desc, column);
	bool		isnull;
	Datum		value;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table %s has no tenant column %s for its trigger %s",
						RelationGetRelationName(rel), quote_identifier(column), MOVE_FENCE_TRIGGER),
				 errhint("Drop the trigger; the next move of a tenant installs it again.")));
	value = heap_getattr(tuple, attnum, desc, &isnull);
	if (isnull)
		return false;
	switch (TupleDescAttr(desc, attnum - 1)->atttypid)
	{
		case INT8OID:
			*tenant = DatumGetInt64(value);
			break;
		case INT4OID:
			*tenant = DatumGetInt32(value);
			break;
		case INT2OID:
			*tenant = DatumGetInt16(value);
			break;
		default:
			return false;
	}
	return true;
}

/*
 * gb_scale.tenant_move_fence(tenant_column): BEFORE INSERT OR UPDATE OR
 * DELETE row trigger of every tenant table on a shard that a move touched.
 * Enabled on origin only: the target's apply (session_replication_role =
 * replica) writes rows of a tenant it does not serve yet.
 */
Datum
gb_tenant_move_fence(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *column;
	int64		tenant = 0;
	bool		has_tenant;
	HeapTuple	result;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("gb_scale.tenant_move_fence must be a BEFORE row trigger with the tenant column as its argument")));
	column = trigdata->tg_trigger->tgargs[0];
	result = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;

	has_tenant = move_row_tenant(trigdata->tg_relation, trigdata->tg_trigtuple, column, &tenant);

	/*
	 * A purge (gb_move_fence_bypass) removes rows of a tenant served
	 * elsewhere: it may delete or change them, never make one.  The table
	 * owners' triggers and foreign key actions run inside it, so an INSERT
	 * or a row updated into such a tenant is checked even then.
	 */
	if (has_tenant && (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || !gb_move_fence_bypass))
		move_fence_check(tenant);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		int64		new_tenant = 0;

		if (move_row_tenant(trigdata->tg_relation, trigdata->tg_newtuple, column, &new_tenant) &&
			(!has_tenant || new_tenant != tenant))
			move_fence_check(new_tenant);
	}
	return PointerGetDatum(result);
}

/*
 * The fence and the pacing trigger on every tenant table (cloned to
 * partitions), where not there.
 *
 * CREATE TRIGGER takes SHARE ROW EXCLUSIVE on its table.  Taken table after
 * table, waiting for one while holding another, it deadlocks with every
 * writer that writes the tables in the other order (a message, then its
 * session): every tenant's writes on the shard wait deadlock_timeout, then
 * one of them fails.  So the locks are taken all together, only at a moment
 * when no transaction writes any of the tables, without queueing (no writer
 * ever waits behind the move), and tried again 1 ms later otherwise.
 */
static bool move_rel_has_trigger(Oid relid, const char *name);

static void
move_install_fence(List *tables)
{
	List	   *missing = NIL;
	ListCell   *lc;

	foreach(lc, tables)
	{
		GbTenantTable *t = lfirst(lc);

		if (move_exec("SELECT FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) $1"
					  " AND g.tgname OPERATOR(pg_catalog.=) ANY ('{" MOVE_FENCE_TRIGGER "," MOVE_PACE_TRIGGER "}')",
					  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(t->relid)}, SPI_OK_SELECT) < 2)
			missing = lappend(missing, t);
	}
	if (missing == NIL)
		return;

	for (;;)
	{
		ListCell   *busy = NULL;

		foreach(lc, missing)
		{
			if (!ConditionalLockRelationOid(((GbTenantTable *) lfirst(lc))->relid, ShareRowExclusiveLock))
			{
				busy = lc;
				break;
			}
		}
		if (busy == NULL)
			break;
		foreach(lc, missing)
		{
			if (lc == busy)
				break;
			UnlockRelationOid(((GbTenantTable *) lfirst(lc))->relid, ShareRowExclusiveLock);
		}
		CHECK_FOR_INTERRUPTS();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	foreach(lc, missing)
	{
		GbTenantTable *t = lfirst(lc);
		const char *qname = gb_qualified_name(t->relid);

		if (!move_rel_has_trigger(t->relid, MOVE_FENCE_TRIGGER))
			move_exec(psprintf("CREATE TRIGGER " MOVE_FENCE_TRIGGER " BEFORE INSERT OR UPDATE OR DELETE ON %s"
							   " FOR EACH ROW EXECUTE FUNCTION gb_scale.tenant_move_fence(%s)",
							   qname, quote_literal_cstr(t->column)),
					  0, NULL, NULL, SPI_OK_UTILITY);
		if (!move_rel_has_trigger(t->relid, MOVE_PACE_TRIGGER))
		{
			move_exec(psprintf("CREATE TRIGGER " MOVE_PACE_TRIGGER " BEFORE INSERT ON %s"
							   " FOR EACH ROW EXECUTE FUNCTION gb_scale.tenant_move_pace()", qname),
					  0, NULL, NULL, SPI_OK_UTILITY);
			move_exec(psprintf("ALTER TABLE %s ENABLE REPLICA TRIGGER " MOVE_PACE_TRIGGER, qname),
					  0, NULL, NULL, SPI_OK_UTILITY);
		}
	}
}

/* Whether REL has a trigger named NAME. */
static bool
move_rel_has_trigger(Oid relid, const char *name)
{
	Relation	trigrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	trigrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(trigrel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (!found && HeapTupleIsValid(tuple = systable_getnext(scan)))
		found = strcmp(NameStr(((Form_pg_trigger) GETSTRUCT(tuple))->tgname), name) == 0;
	systable_endscan(scan);
	table_close(trigrel, AccessShareLock);
	return found;
}

/* Whether REL carries the fence, so a move may be copying its rows. */
static bool
move_rel_fenced(Oid relid)
{
	return move_rel_has_trigger(relid, MOVE_FENCE_TRIGGER);
}

/*
 * The name of a move's publication (source) or subscription (target) in
 * this database, or NULL: while one exists the move copies or follows the
 * tenant's rows.
 */
static char *
move_active_in_database(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *found = NULL;

	rel = table_open(PublicationRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (found == NULL && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		const char *name = NameStr(((Form_pg_publication) GETSTRUCT(tuple))->pubname);

		if (strncmp(name, MOVE_NAME_PREFIX, strlen(MOVE_NAME_PREFIX)) == 0)
			found = pstrdup(name);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (found != NULL)
		return found;

	rel = table_open(SubscriptionRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (found == NULL && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_subscription sub = (Form_pg_subscription) GETSTRUCT(tuple);

		if (sub->subdbid == MyDatabaseId && strncmp(NameStr(sub->subname), MOVE_NAME_PREFIX, strlen(MOVE_NAME_PREFIX)) == 0)
			found = pstrdup(NameStr(sub->subname));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * TRUNCATE of a moved table while a move runs in this database: refused.
 * The move does not replicate it (its publication leaves truncate out), so
 * it would remove the moving tenant's rows on one side only.  The tables
 * it would empty are found as TRUNCATE finds them: the named ones, their
 * partitions and, with CASCADE, the tables referencing them.
 */
void
gb_move_check_truncate(TruncateStmt *stmt)
{
	List	   *relids = NIL;
	ListCell   *lc;
	char	   *move = NULL;

	foreach(lc, stmt->relations)
	{
		Oid			relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);

		if (!OidIsValid(relid))
			continue;
		if (lfirst_node(RangeVar, lc)->inh)
			relids = list_concat_unique_oid(relids, find_all_inheritors(relid, NoLock, NULL));
		else
			relids = list_append_unique_oid(relids, relid);
	}
	if (stmt->behavior == DROP_CASCADE)
	{
		List	   *added = relids;

		while (added != NIL)
		{
			List	   *referencing;

			CHECK_FOR_INTERRUPTS();
			referencing = list_difference_oid(heap_truncate_find_FKs(added), relids);
			relids = list_concat(relids, referencing);
			added = referencing;
		}
	}
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);

		CHECK_FOR_INTERRUPTS();
		if (!move_rel_fenced(relid))
			continue;
		if (move == NULL && (move = move_active_in_database()) == NULL)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot truncate table %s while tenant move %s runs in this database",
						gb_qualified_name(relid), move),
				 errdetail("A move replicates the tenant's inserts, updates and deletes only; a TRUNCATE would remove its rows on one shard and not on the other."),
				 errhint("Wait until the move is done (gb_scale.tenant_moves) or abort it, or DELETE the rows instead.")));
	}
}

/*
 * The tenant column named by REL's fence trigger, or by one of its
 * inheritance parents' (a child that joined by INHERIT gets no clone), or
 * NULL when no fence guards it.
 */
static char *
move_fence_column(Oid relid, int depth)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *column = NULL;
	List	   *parents = NIL;
	ListCell   *lc;

	check_stack_depth();
	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (column == NULL && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tuple);
		bool		isnull;
		Datum		args;

		if (strcmp(NameStr(trig->tgname), MOVE_FENCE_TRIGGER) != 0 || trig->tgnargs != 1)
			continue;
		args = heap_getattr(tuple, Anum_pg_trigger_tgargs, RelationGetDescr(rel), &isnull);
		if (!isnull)
			column = pstrdup((const char *) VARDATA_ANY(DatumGetByteaPP(args)));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (column != NULL)
		return column;

	rel = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		parents = lappend_oid(parents, ((Form_pg_inherits) GETSTRUCT(tuple))->inhparent);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	foreach(lc, parents)
	{
		if ((column = move_fence_column(lfirst_oid(lc), depth + 1)) != NULL)
			break;
	}
	return column;
}

/* Whether this database has a publication of a move of TENANT. */
static bool
move_publishing(int64 tenant)
{
	char	   *prefix = psprintf(MOVE_NAME_PREFIX INT64_FORMAT "_", tenant);
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	rel = table_open(PublicationRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (!found && HeapTupleIsValid(tuple = systable_getnext(scan)))
		found = strncmp(NameStr(((Form_pg_publication) GETSTRUCT(tuple))->pubname), prefix, strlen(prefix)) == 0;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * A table that joins a tree the fence guards (ATTACH PARTITION, INHERIT)
 * brings its rows without any row trigger firing: refused when it holds
 * rows of a tenant that another shard serves (they would be split between
 * shards) or that a move copies from here (the move would not see them).
 * Called from the event trigger at the end of the command.
 */
void
gb_move_check_newcomer(Oid relid)
{
	char	   *column = move_fence_column(relid, 0);
	AttrNumber	attnum;
	Oid			type;
	int			nestlevel;
	int			here;
	Portal		portal;

	if (column == NULL || (attnum = get_attnum(relid, column)) == InvalidAttrNumber)
		return;
	type = get_atttype(relid, attnum);
	if (type != INT8OID && type != INT4OID && type != INT2OID)
		return;
	here = gb_required_shard();

	/* every row, or an error: none hidden by a policy */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("row_security", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL,
									   psprintf("SELECT DISTINCT r.%s::pg_catalog.int8 FROM %s r WHERE r.%s IS NOT NULL",
												quote_identifier(column), gb_qualified_name(relid),
												quote_identifier(column)),
									   0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int64		tenant = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			int16		served = gb_lookup_tenant(tenant);

			CHECK_FOR_INTERRUPTS();
			if (served >= 0 && served != here)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("table %s holds rows of tenant " INT64_FORMAT ", which shard %d serves, not this shard (%d)",
								gb_qualified_name(relid), tenant, served, here),
						 errdetail("Its rows would join the tenant's tree here without passing the fence, split from the tenant's rows on shard %d.", served),
						 errhint("Copy those rows to shard %d and delete them here first.", served)));
			if (move_is_moving(tenant) || move_publishing(tenant))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("table %s holds rows of tenant " INT64_FORMAT ", which is being moved from this shard",
								gb_qualified_name(relid), tenant),
						 errdetail("A move copies the tenant's inserts, updates and deletes; rows that join by ATTACH or INHERIT would not reach the target."),
						 errhint("Wait until the move is done, then add them on the tenant's new shard, or abort the move first.")));
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	AtEOXact_GUC(false, nestlevel);
}

/* ----------------------------------------------------------------
 * Preconditions
 * ----------------------------------------------------------------
 */

static void
move_require_superuser(const char *what)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errdetail("A move creates a replication slot and a publication here and, in PostgreSQL 15, a subscription on the target, which only a superuser may create."),
				 errhint("Run it as a superuser; the roles of both shards' connection strings must be superusers too.")));
}

/*
 * PostgreSQL 15 refuses UPDATE and DELETE on a table whose publication's row
 * filter uses a column outside its replica identity, for every tenant: so
 * every leaf of every moved table must have REPLICA IDENTITY FULL, or an
 * identity index (its own, or its primary key by default) holding the
 * tenant column.
 */
static void
move_check_replica_identity(const GbTenantTable *t)
{
	Oid			types[2] = {REGCLASSOID, TEXTOID};
	Datum		values[2] = {ObjectIdGetDatum(t->relid), CStringGetTextDatum(t->column)};

	/* pg_partition_tree() has no row for a table outside any tree */
	if (move_exec("WITH p AS (SELECT t.relid FROM pg_catalog.pg_partition_tree($1) t WHERE t.isleaf"
				  "  UNION ALL SELECT $1 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_partition_tree($1)))"
				  " SELECT p.relid::pg_catalog.text FROM p"
				  " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid"
				  " JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid"
				  "  AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name"
				  " WHERE c.relreplident OPERATOR(pg_catalog.<>) 'f'"
				  " AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i"
				  "  WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid"
				  "  AND CASE WHEN c.relreplident OPERATOR(pg_catalog.=) 'd' THEN i.indisprimary"
				  "   WHEN c.relreplident OPERATOR(pg_catalog.=) 'i' THEN i.indisreplident ELSE false END"
				  "  AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[]))"
				  " ORDER BY 1 LIMIT 1", 2, types, values, SPI_OK_SELECT) > 0)
	{
		char	   *leaf = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the replica identity of table %s does not include its tenant column %s",
						leaf, quote_identifier(t->column)),
				 errdetail("The move publishes updates and deletes of %s filtered on %s; PostgreSQL 15 then refuses every UPDATE and DELETE of a table whose replica identity lacks the filter's column.",
						   gb_qualified_name(t->relid), quote_identifier(t->column)),
				 errhint("Run ALTER TABLE %s REPLICA IDENTITY FULL, or add %s to a unique index and use ALTER TABLE %s REPLICA IDENTITY USING INDEX on it.",
						 leaf, quote_identifier(t->column), leaf)));
	}
}

/* Free slots and walsenders here: the move's slot and its table syncs. */
static void
move_check_slots(int ntables)
{
	int			needed = 1 + Min(ntables, 2);
	int64		used;
	int64		senders;
	bool		isnull;

	move_exec("SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots),"
			  " (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication)",
			  0, NULL, NULL, SPI_OK_SELECT);
	used = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	senders = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (max_replication_slots - used < needed || max_wal_senders - senders < needed)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("not enough free replication slots or WAL senders for a move"),
				 errdetail("A move needs %d free of each here (its slot and up to two table syncs); " INT64_FORMAT " of max_replication_slots = %d and " INT64_FORMAT " of max_wal_senders = %d are in use.",
						   needed, used, max_replication_slots, senders, max_wal_senders),
				 errhint("Raise max_replication_slots and max_wal_senders (a restart), or wait for other moves to end.")));
}

/*
 * PostgreSQL 15 applies a subscription's changes as its owner, a
 * superuser: whatever code of a table's owner the apply runs would run
 * with a superuser's rights.  So a move is refused when a non-superuser
 * owns a moved table (or a partition of one) on the target that has such
 * code: a trigger the apply fires (ENABLE ALWAYS or REPLICA), or a
 * function of a non-superuser in its constraints, defaults, indexes or
 * column domains.  $1: the moved tables, a regclass[] literal.  Checked by
 * the source over libpq before anything starts, and by the target again
 * when it subscribes.
 */
#define MOVE_UNTRUSTED_APPLY_SQL \
	"WITH r AS (SELECT c.oid AS rel FROM pg_catalog.pg_class c" \
	"  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) c.relowner WHERE NOT o.rolsuper" \
	"  AND c.oid OPERATOR(pg_catalog.=) ANY (SELECT t::pg_catalog.oid FROM pg_catalog.unnest($1::pg_catalog.regclass[]) t" \
	"   UNION SELECT p.relid::pg_catalog.oid FROM pg_catalog.unnest($1::pg_catalog.regclass[]) t," \
	"    pg_catalog.pg_partition_tree(t) p))," \
	" code(rel, objclass, objid) AS (" \
	"  SELECT n.conrelid, 'pg_catalog.pg_constraint'::pg_catalog.regclass, n.oid FROM pg_catalog.pg_constraint n" \
	"   WHERE n.conrelid OPERATOR(pg_catalog.=) ANY (SELECT rel FROM r)" \
	"  UNION ALL SELECT d.adrelid, 'pg_catalog.pg_attrdef'::pg_catalog.regclass, d.oid FROM pg_catalog.pg_attrdef d" \
	"   WHERE d.adrelid OPERATOR(pg_catalog.=) ANY (SELECT rel FROM r)" \
	"  UNION ALL SELECT i.indrelid, 'pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid FROM pg_catalog.pg_index i" \
	"   WHERE i.indrelid OPERATOR(pg_catalog.=) ANY (SELECT rel FROM r)" \
	"  UNION ALL SELECT a.attrelid, 'pg_catalog.pg_constraint'::pg_catalog.regclass, n.oid" \
	"   FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_constraint n ON n.contypid OPERATOR(pg_catalog.=) a.atttypid" \
	"   WHERE a.attrelid OPERATOR(pg_catalog.=) ANY (SELECT rel FROM r) AND a.attnum OPERATOR(pg_catalog.>) 0" \
	"   AND NOT a.attisdropped)" \
	" SELECT pg_catalog.format('table %s has trigger %I, which fires for replicated rows'," \
	"   g.tgrelid::pg_catalog.regclass, g.tgname)" \
	"  FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) ANY (SELECT rel FROM r)" \
	"  AND (NOT g.tgisinternal OR g.tgparentid OPERATOR(pg_catalog.<>) 0)" \
	"  AND g.tgname OPERATOR(pg_catalog.<>) ALL ('{" MOVE_FENCE_TRIGGER "," MOVE_PACE_TRIGGER "}')" \
	"  AND g.tgenabled OPERATOR(pg_catalog.=) ANY ('{A,R}'::pg_catalog.\"char\"[])" \
	" UNION ALL" \
	" SELECT pg_catalog.format('table %s uses function %s of role %I', c.rel::pg_catalog.regclass," \
	"   p.oid::pg_catalog.regprocedure, o.rolname)" \
	"  FROM code c JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) c.objclass" \
	"   AND d.objid OPERATOR(pg_catalog.=) c.objid" \
	"  JOIN pg_catalog.pg_proc p ON (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass" \
	"    AND p.oid OPERATOR(pg_catalog.=) d.refobjid)" \
	"   OR (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass" \
	"    AND p.oid OPERATOR(pg_catalog.=) (SELECT op.oprcode FROM pg_catalog.pg_operator op" \
	"     WHERE op.oid OPERATOR(pg_catalog.=) d.refobjid))" \
	"  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) p.proowner WHERE NOT o.rolsuper" \
	" LIMIT 1"

/* The moved tables as a regclass[] literal, for MOVE_UNTRUSTED_APPLY_SQL. */
static char *
move_tables_literal(List *tables)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, tables)
	{
		const char *name = gb_qualified_name(((GbTenantTable *) lfirst(lc))->relid);

		if (lc != list_head(tables))
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '"');
		for (const char *c = name; *c; c++)
		{
			if (*c == '"' || *c == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *c);
		}
		appendStringInfoChar(&buf, '"');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static void
move_refuse_untrusted_apply(int shard, const char *found)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot move a tenant to shard %d: %s", shard, found),
			 errdetail("PostgreSQL 15 applies a subscription's changes with the rights of its owner, a superuser, so the move would run that code of a non-superuser as a superuser."),
			 errhint("For the time of the move, make the trigger fire on origin only (ALTER TABLE ... ENABLE TRIGGER), or have the function owned by a superuser who trusts it.")));
}

/*
 * The target has every moved table with every column (42P01, 42703), and no
 * row of the tenant yet (a copy would collide with it); no code of a
 * non-superuser that the apply would run as a superuser.
 */
static void
move_check_target(MoveConn *mc, List *tables, int64 tenant)
{
	ListCell   *lc;

	foreach(lc, tables)
	{
		GbTenantTable *t = lfirst(lc);
		char	   *qname = gb_qualified_name(t->relid);
		StringInfoData cols;
		const char *params[2];
		PGresult   *res;
		char	   *sql;

		initStringInfo(&cols);
		move_exec("SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum)::pg_catalog.text"
				  " FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) $1"
				  " AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped",
				  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(t->relid)}, SPI_OK_SELECT);
		appendStringInfoString(&cols, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));

		params[0] = qname;
		params[1] = cols.data;
		res = move_query(mc,
						 "SELECT pg_catalog.to_regclass($1) IS NOT NULL,"
						 " (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(w.attname), ', ' ORDER BY w.ord)"
						 "  FROM pg_catalog.unnest($2::pg_catalog.text[]) WITH ORDINALITY w(attname, ord)"
						 "  WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a"
						 "   WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)"
						 "   AND a.attname OPERATOR(pg_catalog.=) w.attname::pg_catalog.name"
						 "   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped))",
						 2, params, PGRES_TUPLES_OK, "check the moved tables");
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table %s does not exist on target shard %d", qname, mc->shard),
					 errdetail("Every table holding tenants' rows is copied to a table of the same name on the target."),
					 errhint("Create it on shard %d (the same schema as here), then call gb_tenant_move again.", mc->shard)));
		if (!PQgetisnull(res, 0, 1))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table %s on target shard %d lacks column(s) %s", qname, mc->shard,
							PQgetvalue(res, 0, 1)),
					 errdetail("The target's table must have every column of this shard's."),
					 errhint("Add them on shard %d, then call gb_tenant_move again.", mc->shard)));

		sql = psprintf("SELECT EXISTS (SELECT FROM %s WHERE %s OPERATOR(pg_catalog.=) '" INT64_FORMAT "'::pg_catalog.int8)",
					   qname, quote_identifier(t->column), tenant);
		res = move_query(mc, sql, 0, NULL, PGRES_TUPLES_OK, "look for the tenant's rows");
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("target shard %d already holds rows of tenant " INT64_FORMAT " in table %s",
							mc->shard, tenant, qname),
					 errdetail("The copy would collide with them."),
					 errhint("Find out where they come from; an earlier aborted move deletes its copies (gb_tenant_move_abort).")));
	}
	{
		const char *literal = move_tables_literal(tables);
		PGresult   *res = move_query(mc, MOVE_UNTRUSTED_APPLY_SQL, 1, &literal, PGRES_TUPLES_OK,
									 "check the code of the target's tables");

		if (PQntuples(res) > 0)
			move_refuse_untrusted_apply(mc->shard, PQgetvalue(res, 0, 0));
	}
}

/*
 * The tenant's dedicated partition subtrees (gb_tenant_dedicate) are made on
 * the target first, so that the copy lands in them; one already there (a
 * move resumed after an error) is kept.
 */
static void
move_dedicate_on_target(MoveConn *mc, List *tables, int64 tenant, const char *target_schema)
{
	ListCell   *lc;
	char		tenant_text[32];

	snprintf(tenant_text, sizeof(tenant_text), INT64_FORMAT, tenant);
	foreach(lc, tables)
	{
		GbTenantTable *t = lfirst(lc);
		const char *params[2];
		bool		dedicated = false;
		ListCell   *lr;

		foreach(lr, gb_tenants_load(t->relid))
		{
			const GbTenantRow *row = lfirst(lr);

			dedicated |= row->tenant_id == tenant && OidIsValid(row->subtree);
		}
		if (!dedicated)
			continue;
		params[0] = gb_qualified_name(t->relid);
		params[1] = tenant_text;
		(void) move_query(mc, psprintf("SELECT %s.gb_tenant_dedicate($1::pg_catalog.regclass, $2::pg_catalog.int8)"
									   " WHERE NOT EXISTS (SELECT FROM gb_scale.partition_tenant p"
									   "  WHERE p.parent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass"
									   "  AND p.tenant_id OPERATOR(pg_catalog.=) $2::pg_catalog.int8 AND p.subtree IS NOT NULL)",
									   quote_identifier(target_schema)),
						  2, params, PGRES_TUPLES_OK, "give the tenant its own partitions");
		ereport(NOTICE,
				(errmsg("tenant " INT64_FORMAT ": its own partitions of %s made on shard %d", tenant, params[0], mc->shard)));
	}
}

/* ----------------------------------------------------------------
 * The move
 * ----------------------------------------------------------------
 */

/* The publication: every table, filtered on the tenant, via the roots. */
static void
move_create_publication(const char *name, List *tables, int64 tenant)
{
	StringInfoData sql;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE PUBLICATION %s FOR TABLE ", quote_identifier(name));
	foreach(lc, tables)
	{
		GbTenantTable *t = lfirst(lc);

		appendStringInfo(&sql, "%s%s WHERE (%s OPERATOR(pg_catalog.=) '" INT64_FORMAT "'::pg_catalog.int8)",
						 lc == list_head(tables) ? "" : ", ",
						 gb_qualified_name(t->relid), quote_identifier(t->column), tenant);
	}
	/*
	 * No truncate: a row filter does not apply to it, so a TRUNCATE here
	 * would empty the whole table on the target, every tenant's rows.
	 */
	appendStringInfoString(&sql, " WITH (publish = 'insert, update, delete', publish_via_partition_root = true)");
	move_exec(sql.data, 0, NULL, NULL, SPI_OK_UTILITY);
}

/* Rows of the tenant per table on the target, as a jsonb object text. */
static char *
move_count_target(MoveConn *mc, List *tables, int64 tenant)
{
	StringInfoData sql;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT pg_catalog.jsonb_build_object(");
	foreach(lc, tables)
	{
		GbTenantTable *t = lfirst(lc);
		char	   *qname = gb_qualified_name(t->relid);

		appendStringInfo(&sql, "%s%s, (SELECT pg_catalog.count(*) FROM %s WHERE %s OPERATOR(pg_catalog.=) '" INT64_FORMAT "'::pg_catalog.int8)",
						 lc == list_head(tables) ? "" : ", ",
						 quote_literal_cstr(qname), qname, quote_identifier(t->column), tenant);
	}
	appendStringInfoString(&sql, ")::pg_catalog.text");
	return pstrdup(PQgetvalue(move_query(mc, sql.data, 0, NULL, PGRES_TUPLES_OK, "count the copied rows"), 0, 0));
}

/* The slot's lag behind this shard's WAL, in bytes; -1 when it is gone. */
static int64
move_lag(const char *slot)
{
	bool		isnull;
	Datum		lag;

	if (move_exec("SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::pg_catalog.int8"
				  " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name OPERATOR(pg_catalog.=) $1::pg_catalog.name",
				  1, (Oid[]) {TEXTOID}, (Datum[]) {CStringGetTextDatum(slot)}, SPI_OK_SELECT) == 0)
		return -1;
	lag = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? INT64_MAX : DatumGetInt64(lag);
}

/*
 * Wait until the target's initial copy is done and the slot has caught up;
 * records rows_copied and lag_bytes.
 */
static void
move_wait_catch_up(MoveRow *m, MoveConn *mc, List *tables)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) gb_move_timeout * 1000);
	TimestampTz next_notice = 0;
	bool		copied = false;
	int64		errors_before = -1;
	int64		errors_seen = 0;
	char		subid[16];
	const char *params[1] = {subid};

	snprintf(subid, sizeof(subid), "%u", m->subid);
	for (;;)
	{
		PGresult   *res;
		int			pending;
		int64		errors;
		int64		lag;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		res = move_query(mc,
						 "SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_subscription_rel r"
						 "  WHERE r.srsubid OPERATOR(pg_catalog.=) $1::pg_catalog.oid"
						 "  AND r.srsubstate OPERATOR(pg_catalog.<>) 'r'),"
						 " (SELECT s.apply_error_count OPERATOR(pg_catalog.+) s.sync_error_count"
						 "  FROM pg_catalog.pg_stat_subscription_stats s WHERE s.subid OPERATOR(pg_catalog.=) $1::pg_catalog.oid),"
						 " EXISTS (SELECT FROM pg_catalog.pg_subscription s WHERE s.oid OPERATOR(pg_catalog.=) $1::pg_catalog.oid)",
						 1, params, PGRES_TUPLES_OK, "follow the copy");
		/* without it, no table would be pending and the copy seem done */
		if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the subscription %s of the move of tenant " INT64_FORMAT " is gone from target shard %d",
							m->name, m->tenant, m->target),
					 errhint("Call gb_tenant_move_abort(" INT64_FORMAT ") and move again.", m->tenant)));
		pending = atoi(PQgetvalue(res, 0, 0));

		/*
		 * The counts are cumulative and also count a lost connection (a
		 * restart of either shard, a walsender ended), after which the
		 * workers reconnect by themselves: only the errors since this CALL
		 * began count, and the CALL ends once they are more than a couple of
		 * such events cause.
		 */
		errors = PQgetisnull(res, 0, 1) ? 0 : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		if (errors_before < 0)
			errors_before = errors;
		if (errors - errors_before > errors_seen)
		{
			errors_seen = errors - errors_before;
			if (errors_seen > MOVE_MAX_SUB_ERRORS)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the subscription %s on target shard %d keeps failing", m->name, m->target),
						 errdetail("Its table sync or apply workers failed " INT64_FORMAT " time(s) during this call; the target's server log says why.",
								   errors_seen),
						 errhint("Fix the cause, then call gb_tenant_move(" INT64_FORMAT ", %d) again, or gb_tenant_move_abort(" INT64_FORMAT ").",
								 m->tenant, m->target, m->tenant)));
			ereport(NOTICE,
					(errmsg("tenant " INT64_FORMAT ": the subscription on shard %d failed " INT64_FORMAT " time(s) during this call; its workers retry",
							m->tenant, m->target, errors_seen)));
		}
		lag = move_lag(m->name);
		if (lag < 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the replication slot %s of the move of tenant " INT64_FORMAT " is gone", m->name, m->tenant),
					 errhint("Call gb_tenant_move_abort(" INT64_FORMAT ") and move again.", m->tenant)));

		if (pending == 0 && !copied)
		{
			char	   *counts = move_count_target(mc, tables, m->tenant);

			move_exec("UPDATE gb_scale.tenant_move SET state = 'catching up', rows_copied = $2::pg_catalog.jsonb"
					  " WHERE move_id OPERATOR(pg_catalog.=) $1", 2, (Oid[]) {INT8OID, TEXTOID},
					  (Datum[]) {Int64GetDatum(m->move_id), CStringGetTextDatum(counts)}, SPI_OK_UPDATE);
			SPI_commit();
			ereport(NOTICE,
					(errmsg("tenant " INT64_FORMAT ": initial copy to shard %d done, rows: %s; catching up",
							m->tenant, m->target, counts)));
			copied = true;
		}
		if (copied && lag <= gb_move_max_lag)
		{
			move_exec("UPDATE gb_scale.tenant_move SET lag_bytes = $2 WHERE move_id OPERATOR(pg_catalog.=) $1",
					  2, (Oid[]) {INT8OID, INT8OID}, (Datum[]) {Int64GetDatum(m->move_id), Int64GetDatum(lag)},
					  SPI_OK_UPDATE);
			SPI_commit();
			ereport(NOTICE,
					(errmsg("tenant " INT64_FORMAT ": caught up with shard %d, " INT64_FORMAT " bytes behind",
							m->tenant, m->target, lag)));
			return;
		}

		now = GetCurrentTimestamp();
		if (now >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("the move of tenant " INT64_FORMAT " did not catch up within gb_scale.move_timeout (%d s)",
							m->tenant, gb_move_timeout),
					 errdetail("%d table(s) still copying; the slot is " INT64_FORMAT " bytes behind.", pending, lag),
					 errhint("The move stays as it is and the tenant is still served here: gb_tenant_move_abort(" INT64_FORMAT ") undoes it.",
							 m->tenant)));
		if (now >= next_notice)
		{
			ereport(NOTICE,
					(errmsg("tenant " INT64_FORMAT ": %s, %d table(s) still copying, " INT64_FORMAT " bytes behind",
							m->tenant, copied ? "catching up" : "copying", pending, lag)));
			next_notice = TimestampTzPlusMilliseconds(now, MOVE_NOTICE_MS);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 MOVE_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

static void move_drop_slot(const char *slot);

/*
 * paused, then switched: the tenant's writes here wait on the pause lock,
 * the target confirms this shard's last WAL position, and the directory
 * changes on both shards.  The lock is the transaction's: the commit that
 * records the switch releases it, and a cancel or a crash releases it with
 * the tenant still here.
 */
static void
move_switch(MoveRow *m, MoveConn *mc, const char *target_schema)
{
	LOCKTAG		tag;
	TimestampTz paused_at;
	TimestampTz deadline;
	TimestampTz nudged_at;
	char	   *lsn;
	double		pause;
	char		tenant_text[32];
	char		target_text[16];
	const char *params[2] = {tenant_text, target_text};

	move_set_state(m, "paused");
	SPI_commit();

	/* the tenant's new writes wait from the lock's request on */
	paused_at = GetCurrentTimestamp();
	move_pause_locktag(&tag, m->tenant);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	ereport(NOTICE,
			(errmsg("tenant " INT64_FORMAT ": writes paused, switching to shard %d", m->tenant, m->target)));

	/* every write of the tenant committed here is before this position */
	move_exec("SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text", 0, NULL, NULL, SPI_OK_SELECT);
	lsn = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	deadline = TimestampTzPlusMilliseconds(paused_at, (int64) gb_move_max_pause);
	nudged_at = 0;
	for (;;)
	{
		bool		isnull;
		Datum		done;

		CHECK_FOR_INTERRUPTS();
		if (move_exec("SELECT s.confirmed_flush_lsn OPERATOR(pg_catalog.>=) $2::pg_catalog.pg_lsn"
					  " FROM pg_catalog.pg_replication_slots s WHERE s.slot_name OPERATOR(pg_catalog.=) $1::pg_catalog.name",
					  2, (Oid[]) {TEXTOID, TEXTOID},
					  (Datum[]) {CStringGetTextDatum(m->name), CStringGetTextDatum(lsn)}, SPI_OK_SELECT) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("replication slot %s of tenant " INT64_FORMAT "'s move is gone", m->name, m->tenant),
					 errhint("The tenant is still served by this shard; call gb_tenant_move_abort(" INT64_FORMAT ").", m->tenant)));
		done = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull && DatumGetBool(done))
			break;
		/*
		 * The apply confirms a position in its feedback, sent when it hears
		 * from the source; a source that writes nothing else sends nothing
		 * until wal_sender_timeout / 2.  A WAL record that the move's
		 * publication does not carry wakes the walsender, which then asks
		 * where the apply is.
		 */
		if (TimestampDifferenceExceeds(nudged_at, GetCurrentTimestamp(), MOVE_NUDGE_MS))
		{
			XLogFlush(LogLogicalMessage("gb_scale.tenant_move", "", 0, false));
			nudged_at = GetCurrentTimestamp();
		}
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("target shard %d did not confirm WAL position %s within gb_scale.move_max_pause (%d ms)",
							m->target, lsn, gb_move_max_pause),
					 errdetail("The pause ended: tenant " INT64_FORMAT " is still served by this shard and writable.", m->tenant),
					 errhint("Call gb_tenant_move(" INT64_FORMAT ", %d) again once the target keeps up (gb_scale.tenant_moves shows its lag), or gb_tenant_move_abort(" INT64_FORMAT ").",
							 m->tenant, m->target, m->tenant)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 5, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	/*
	 * The target's entry first, left uncommitted until this shard's commit:
	 * if that commit fails the target does not serve the tenant; if the
	 * target's commit fails after it, the tenant is refused on both until a
	 * new CALL finishes the move (it assigns the target again).
	 */
	snprintf(tenant_text, sizeof(tenant_text), INT64_FORMAT, m->tenant);
	snprintf(target_text, sizeof(target_text), "%d", m->target);
	move_query(mc, "BEGIN", 0, NULL, PGRES_COMMAND_OK, "begin the switch");
	move_query(mc, psprintf("SELECT %s.gb_tenant_assign($1::pg_catalog.int8, $2::pg_catalog.int2)",
							quote_identifier(target_schema)),
			   2, params, PGRES_TUPLES_OK, "assign the tenant");
	(void) DirectFunctionCall2(gb_tenant_assign, Int64GetDatum(m->tenant), Int16GetDatum((int16) m->target));
	pause = (double) (GetCurrentTimestamp() - paused_at) / 1000000.0;
	move_exec("UPDATE gb_scale.tenant_move SET state = 'switched', lag_bytes = 0,"
			  " pause = pg_catalog.make_interval(secs => $2)"
			  " WHERE move_id OPERATOR(pg_catalog.=) $1", 2, (Oid[]) {INT8OID, FLOAT8OID},
			  (Datum[]) {Int64GetDatum(m->move_id), Float8GetDatum(pause)}, SPI_OK_UPDATE);
	SPI_commit();
	move_query(mc, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "commit the switch");
	ereport(NOTICE,
			(errmsg("tenant " INT64_FORMAT ": switched to shard %d; its writes waited %.3f s",
					m->tenant, m->target, pause)));
}

/* The schema of gb_scale on the shard of MC. */
static char *
move_remote_schema(MoveConn *mc)
{
	PGresult   *res = move_query(mc, "SELECT n.nspname FROM pg_catalog.pg_extension e"
								 " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
								 " WHERE e.extname OPERATOR(pg_catalog.=) 'gb_scale'", 0, NULL, PGRES_TUPLES_OK,
								 "find gb_scale");

	if (PQntuples(res) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension gb_scale is not installed on shard %d", mc->shard),
				 errhint("CREATE EXTENSION gb_scale there first.")));
	return pstrdup(PQgetvalue(res, 0, 0));
}

/*
 * Every other shard of the directory learns the switch too, each on its
 * own: one that cannot be reached gets a WARNING (its routers still reach
 * the source, whose fence names the target) and gb_shard_sync there later.
 */
static void
move_push_directory(const MoveRow *m)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	List	   *shards = NIL;
	List	   *connstrs = NIL;
	ListCell   *ls;
	ListCell   *lc;
	char		tenant_text[32];
	char		target_text[16];
	const char *params[2] = {tenant_text, target_text};

	snprintf(tenant_text, sizeof(tenant_text), INT64_FORMAT, m->tenant);
	snprintf(target_text, sizeof(target_text), "%d", m->target);
	move_exec("SELECT s.shard_id::pg_catalog.int4, s.connection_string FROM gb_scale.shard_config s"
			  " WHERE s.shard_id OPERATOR(pg_catalog.<>) ALL (ARRAY[$1, $2]::pg_catalog.int2[])"
			  " AND s.connection_string OPERATOR(pg_catalog.<>) '' ORDER BY s.shard_id",
			  2, (Oid[]) {INT2OID, INT2OID},
			  (Datum[]) {Int16GetDatum((int16) m->source), Int16GetDatum((int16) m->target)}, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		shards = lappend_int(shards, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
		connstrs = lappend(connstrs, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
	}
	forboth(ls, shards, lc, connstrs)
	{
		MoveConn   *mc = palloc0(sizeof(MoveConn));

		CHECK_FOR_INTERRUPTS();
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		PG_TRY();
		{
			move_connect(mc, lfirst_int(ls), lfirst(lc));
			move_query(mc, psprintf("SELECT %s.gb_tenant_assign($1::pg_catalog.int8, $2::pg_catalog.int2)",
									quote_identifier(move_remote_schema(mc))),
					   2, params, PGRES_TUPLES_OK, "assign the tenant");
			move_disconnect(mc);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcxt);
			edata = CopyErrorData();
			FlushErrorState();
			if (mc->remote.conn != NULL)
				move_disconnect(mc);
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			ereport(WARNING,
					(errmsg("tenant " INT64_FORMAT ": shard %d's directory could not be told of the switch to shard %d",
							m->tenant, lfirst_int(ls), m->target),
					 errdetail_internal("%s", edata->message),
					 errhint("Run gb_shard_sync() on shard %d; until then its routers reach shard %d, which refuses the tenant's writes naming shard %d.",
							 lfirst_int(ls), m->source, m->target)));
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}
}

/* This shard's part of a move's end: its slots and its publication. */
static void
move_drop_source_objects(const MoveRow *m)
{
	move_drop_slot(m->name);
	if (OidIsValid(m->subid))
	{
		/* the table syncs' slots: pg_<subid>_sync_<relid>_<system id> */
		char	   *pattern = psprintf("pg\\_%u\\_sync\\_%%", m->subid);
		List	   *slots = NIL;
		ListCell   *lc;

		move_exec("SELECT s.slot_name::pg_catalog.text FROM pg_catalog.pg_replication_slots s"
				  " WHERE s.slot_name OPERATOR(pg_catalog.~~) $1", 1, (Oid[]) {TEXTOID},
				  (Datum[]) {CStringGetTextDatum(pattern)}, SPI_OK_SELECT);
		for (uint64 i = 0; i < SPI_processed; i++)
			slots = lappend(slots, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		foreach(lc, slots)
		{
			move_drop_slot(lfirst(lc));
		}
	}
	move_exec(psprintf("DROP PUBLICATION IF EXISTS %s", quote_identifier(m->name)), 0, NULL, NULL, SPI_OK_UTILITY);
}

/*
 * Delete the tenant's rows here (gb_tenant_purge): the move is done once
 * the caller commits.
 */
static void
move_purge_source(MoveRow *m, const char *schema, bool commit)
{
	bool		isnull;
	Datum		removed;
	int64		walked = 0;
	GbTenantWalk walk;
	MovePace	pace = {0};

	/*
	 * Paced, by block ranges (commits in between when the CALL runs it);
	 * gb_tenant_purge then takes the dedicated subtrees, what the walk did
	 * not meet, and the tenant's settings.
	 */
	move_walk_init(&walk, &pace);
	while (!walk.done)
	{
		walked += gb_tenant_purge_step(m->tenant, &walk, move_pace_step());
		if (commit)
			SPI_commit();
	}
	move_exec(psprintf("SELECT pg_catalog.sum(p.rows_removed)::pg_catalog.int8 FROM %s.gb_tenant_purge($1) p",
					   quote_identifier(schema)),
			  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(m->tenant)}, SPI_OK_SELECT);
	removed = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	move_set_state(m, "done");
	move_unmark_moving(m->tenant);
	ereport(NOTICE,
			(errmsg("tenant " INT64_FORMAT ": move to shard %d done, " INT64_FORMAT " row(s) purged here",
					m->tenant, m->target, walked + (isnull ? 0 : DatumGetInt64(removed)))));
}

/*
 * cleaning: the target (serving the tenant, its entry written again in case
 * the switch's commit there was lost) drops the subscription; the slots and
 * the publication go here; the target's copies get its shard_id, step by
 * step now that no apply looks them up by the source's key; the rows here
 * are purged now, or after keep_source (gb_tenant_move_finish).
 */
static void
move_cleanup(MoveRow *m, MoveConn *mc, const Interval *keep_source,
			 const char *schema, const char *target_schema)
{
	char		tenant_text[32];
	char		target_text[16];
	char		table_text[16] = "0";
	char		leaf_text[16] = "0";
	char		block_text[16] = "0";
	const char *params[5] = {tenant_text, target_text, table_text, leaf_text, block_text};

	snprintf(tenant_text, sizeof(tenant_text), INT64_FORMAT, m->tenant);
	snprintf(target_text, sizeof(target_text), "%d", m->target);
	move_set_state(m, "cleaning");
	SPI_commit();

	move_query(mc, psprintf("SELECT %s.gb_tenant_assign($1::pg_catalog.int8, $2::pg_catalog.int2)",
							quote_identifier(target_schema)),
			   2, params, PGRES_TUPLES_OK, "assign the tenant");
	move_query(mc, "SELECT gb_scale.tenant_move_unsubscribe($1)", 1, (const char *[]) {m->name},
			   PGRES_TUPLES_OK, "drop the subscription");
	move_drop_source_objects(m);
	SPI_commit();
	move_push_directory(m);

	/*
	 * As the tables' owners there, a step per transaction, paced by the
	 * target's gb_scale.move_rate, until the walk returns no position.
	 */
	for (;;)
	{
		PGresult   *res;

		CHECK_FOR_INTERRUPTS();
		res = move_query(mc, "SELECT r.table_no, r.leaf, r.block FROM gb_scale.tenant_move_rewrite("
						 "$1::pg_catalog.int8, $2::pg_catalog.int2, $3::pg_catalog.int4,"
						 " $4::pg_catalog.oid, $5::pg_catalog.int8) r",
						 5, params, PGRES_TUPLES_OK, "rewrite shard_id of the copied rows");
		if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
			break;
		strlcpy(table_text, PQgetvalue(res, 0, 0), sizeof(table_text));
		strlcpy(leaf_text, PQgetvalue(res, 0, 1), sizeof(leaf_text));
		strlcpy(block_text, PQgetvalue(res, 0, 2), sizeof(block_text));

		/*
		 * Nothing is written here, but a transaction left open for the whole
		 * rewrite (minutes for a big tenant) holds back this shard's xmin
		 * horizon: vacuum could not remove any tenant's dead rows.
		 */
		SPI_commit();
	}

	if (keep_source != NULL)
	{
		move_exec("UPDATE gb_scale.tenant_move SET keep_source_until = pg_catalog.now() OPERATOR(pg_catalog.+) $2"
				  " WHERE move_id OPERATOR(pg_catalog.=) $1", 2, (Oid[]) {INT8OID, INTERVALOID},
				  (Datum[]) {Int64GetDatum(m->move_id), IntervalPGetDatum(keep_source)}, SPI_OK_UPDATE);
		SPI_commit();
		ereport(NOTICE,
				(errmsg("tenant " INT64_FORMAT ": served by shard %d; its rows stay here for keep_source, until gb_tenant_move_finish(" INT64_FORMAT ") after that",
						m->tenant, m->target, m->tenant)));
		return;
	}
	move_purge_source(m, schema, true);
	SPI_commit();
}

/*
 * The move itself, from preparing or from where an earlier CALL stopped.
 */
static void
move_run(int64 tenant, int target, int source, const Interval *keep_source, const char *schema)
{
	MoveRow		m;
	MoveConn   *mc;
	List	   *tables;
	char	   *target_connstr;
	bool		resume;
	bool		switched;
	ListCell   *lc;

	resume = move_find(tenant, &m);

	/*
	 * Once the target has its subscription (copying, with its oid recorded)
	 * a new CALL waits for it again: the subscription goes on by itself
	 * across restarts.  Before, or once failed, only an abort cleans up.
	 */
	if (resume && (m.target != target ||
				   !((strcmp(m.state, "copying") == 0 && OidIsValid(m.subid)) ||
					 strcmp(m.state, "catching up") == 0 || strcmp(m.state, "paused") == 0 ||
					 strcmp(m.state, "switched") == 0 || strcmp(m.state, "cleaning") == 0)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("tenant " INT64_FORMAT " is already being moved to shard %d (state %s)", tenant, m.target, m.state),
				 m.target != target ?
				 errhint("Call gb_tenant_move(" INT64_FORMAT ", %d) to go on with it, or gb_tenant_move_abort(" INT64_FORMAT ").",
						 tenant, m.target, tenant) :
				 errhint("A move in this state cannot go on: call gb_tenant_move_abort(" INT64_FORMAT "), then move again.",
						 tenant)));
	switched = resume && (strcmp(m.state, "switched") == 0 || strcmp(m.state, "cleaning") == 0);
	if (!switched)
	{
		int			served = DatumGetInt16(DirectFunctionCall1(gb_shard_for_tenant, Int64GetDatum(tenant)));

		if (served != source)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tenant " INT64_FORMAT " is served by shard %d, not by this shard (%d)", tenant, served, source),
					 errhint("Call gb_tenant_move on shard %d.", served)));
		if (target == source)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant " INT64_FORMAT " is already on shard %d", tenant, target),
					 errhint("Name another shard as the target.")));
	}
	target_connstr = move_shard_connstr(target, "to");
	(void) move_shard_connstr(source, "from");

	tables = gb_tenant_tables("move");
	if (tables == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no table holds tenants' rows on this shard"),
				 errhint("Register them with gb_tenant_isolation_enable or gb_partition_create(..., tenant_column => ...).")));
	if (!resume)
	{
		foreach(lc, tables)
		{
			move_check_replica_identity(lfirst(lc));
		}
		move_check_slots(list_length(tables));
	}

	mc = palloc0(sizeof(MoveConn));
	PG_TRY();
	{
		char	   *target_schema;

		move_connect(mc, target, target_connstr);
		target_schema = move_remote_schema(mc);

		if (resume)
		{
			ereport(NOTICE,
					(errmsg("tenant " INT64_FORMAT ": going on with its move to shard %d (state %s)", tenant, target, m.state)));
			if (!switched)
			{
				/* after a restart, the mark is gone */
				move_mark_moving(tenant);
				move_wait_catch_up(&m, mc, tables);
				if (gb_move_switch)
					move_switch(&m, mc, target_schema);
			}
			if (gb_move_switch || switched)
				move_cleanup(&m, mc, keep_source, schema, target_schema);
		}
		else
		{
			char		subid[16];
			const char *params[3];
			PGresult   *res;
			StringInfoData names;

			move_check_target(mc, tables, tenant);
			move_dedicate_on_target(mc, tables, tenant, target_schema);

			/*
			 * preparing: the row, with the names, the fence and the
			 * publication
			 */
			move_exec("INSERT INTO gb_scale.tenant_move (tenant_id, source_shard, target_shard, state)"
					  " VALUES ($1, $2, $3, 'preparing') RETURNING move_id", 3,
					  (Oid[]) {INT8OID, INT2OID, INT2OID},
					  (Datum[]) {Int64GetDatum(tenant), Int16GetDatum((int16) source), Int16GetDatum((int16) target)},
					  SPI_OK_INSERT_RETURNING);
			{
				bool		isnull;

				m.move_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			}
			m.tenant = tenant;
			m.source = source;
			m.target = target;
			m.subid = InvalidOid;
			m.name = psprintf(MOVE_NAME_PREFIX INT64_FORMAT "_" INT64_FORMAT, tenant, m.move_id);
			move_exec("UPDATE gb_scale.tenant_move SET publication = $2, subscription = $2, slot_name = $2"
					  " WHERE move_id OPERATOR(pg_catalog.=) $1", 2, (Oid[]) {INT8OID, TEXTOID},
					  (Datum[]) {Int64GetDatum(m.move_id), CStringGetTextDatum(m.name)}, SPI_OK_UPDATE);
			move_install_fence(tables);
			move_create_publication(m.name, tables, tenant);
			initStringInfo(&names);
			foreach(lc, tables)
			{
				appendStringInfo(&names, "%s%s", lc == list_head(tables) ? "" : ", ",
								 gb_qualified_name(((GbTenantTable *) lfirst(lc))->relid));
			}
			SPI_commit();
			move_mark_moving(tenant);
			ereport(NOTICE,
					(errmsg("tenant " INT64_FORMAT ": moving to shard %d, tables %s (publication %s)",
							tenant, target, names.data, m.name)));

			/*
			 * copying: the slot, in a transaction that has no xid (its
			 * creation waits for every transaction that has one), then the
			 * subscription
			 */
			move_exec("SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')", 1,
					  (Oid[]) {NAMEOID}, (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(m.name))},
					  SPI_OK_SELECT);
			move_set_state(&m, "copying");
			SPI_commit();

			snprintf(subid, sizeof(subid), "%d", source);
			params[0] = m.name;
			params[1] = m.name;
			params[2] = subid;
			res = move_query(mc, "SELECT gb_scale.tenant_move_subscribe($1, $2, $3)", 3, params,
							 PGRES_TUPLES_OK, "create the subscription");
			m.subid = (Oid) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
			move_exec("UPDATE gb_scale.tenant_move SET target_subid = $2 WHERE move_id OPERATOR(pg_catalog.=) $1",
					  2, (Oid[]) {INT8OID, OIDOID}, (Datum[]) {Int64GetDatum(m.move_id), ObjectIdGetDatum(m.subid)},
					  SPI_OK_UPDATE);
			SPI_commit();
			ereport(NOTICE,
					(errmsg("tenant " INT64_FORMAT ": shard %d subscribed (slot %s), copying", tenant, target, m.name)));

			move_wait_catch_up(&m, mc, tables);
			if (gb_move_switch)
			{
				move_switch(&m, mc, target_schema);
				move_cleanup(&m, mc, keep_source, schema, target_schema);
			}
		}
	}
	PG_FINALLY();
	{
		if (mc->remote.conn != NULL)
			move_disconnect(mc);
	}
	PG_END_TRY();
}

Datum
gb_tenant_move(PG_FUNCTION_ARGS)
{
	int64		tenant;
	int			target;
	int			source;
	bool		nonatomic;
	Interval   *keep_source = NULL;
	char	   *schema;
	LOCKTAG		call_tag;

	/* a procedure cannot be STRICT */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("gb_tenant_move needs a tenant_id and a target_shard, not NULL")));
	tenant = PG_GETARG_INT64(0);
	target = PG_GETARG_INT16(1);
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		/* a copy here: the argument may not outlive the first commit */
		keep_source = palloc(sizeof(Interval));
		memcpy(keep_source, PG_GETARG_INTERVAL_P(2), sizeof(Interval));
	}
	nonatomic = fcinfo->context != NULL && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;

	/* Before anything else: who may, and whether the server can. */
	move_require_superuser("move a tenant");
	if (OidIsValid(gb_citus_tenant_relid()))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot move tenant " INT64_FORMAT " with gb_tenant_move: Citus places tenants here", tenant),
				 errdetail("Tenants are routed by the placement of table %s's shards.",
						   gb_qualified_name(gb_citus_tenant_relid())),
				 errhint("Give the tenant its own shard with isolate_tenant_to_new_shard(), then move that shard online with citus_move_shard_placement().")));
	if (wal_level < WAL_LEVEL_LOGICAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("moving tenant " INT64_FORMAT " needs wal_level = logical", tenant),
				 errdetail("The move copies the tenant's rows by logical replication; wal_level is %s.",
						   GetConfigOption("wal_level", false, false)),
				 errhint("Set wal_level = logical in postgresql.conf and restart the server.")));
	if (!nonatomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("gb_tenant_move must be called with CALL outside a transaction block"),
				 errdetail("It commits its steps as it goes."),
				 errhint("Run CALL gb_tenant_move(" INT64_FORMAT ", %d) on its own.", tenant, target)));
	/* the extension's schema: the procedure's own */
	schema = get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid));

	source = gb_required_shard();
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * One CALL per tenant at a time (a session lock, released below or when
	 * the session ends); a move stopped once caught up, or later, goes on
	 * when it is called again with the same target.
	 */
	move_call_locktag(&call_tag, tenant);
	if (LockAcquire(&call_tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("tenant " INT64_FORMAT " is being moved by another session", tenant),
				 errhint("Wait for its CALL gb_tenant_move to end, or cancel it.")));
	PG_TRY();
	{
		move_run(tenant, target, source, keep_source, schema);
	}
	PG_FINALLY();
	{
		LockRelease(&call_tag, ExclusiveLock, true);
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * Drop a slot of the move here, ending the walsender that still streams
 * from it (the target may be unreachable, or slow to notice).
 */
static void
move_drop_slot(const char *slot)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MOVE_SLOT_WAIT_MS);
	Datum		name = CStringGetTextDatum(slot);

	for (;;)
	{
		bool		isnull;
		Datum		pid;

		CHECK_FOR_INTERRUPTS();
		if (move_exec("SELECT s.active_pid FROM pg_catalog.pg_replication_slots s"
					  " WHERE s.slot_name OPERATOR(pg_catalog.=) $1::pg_catalog.name",
					  1, (Oid[]) {TEXTOID}, &name, SPI_OK_SELECT) == 0)
			return;
		pid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			break;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("replication slot %s is still in use by process %d", slot, DatumGetInt32(pid)),
					 errhint("Call gb_tenant_move_abort again.")));
		move_exec("SELECT pg_catalog.pg_terminate_backend($1)", 1, (Oid[]) {INT4OID}, &pid, SPI_OK_SELECT);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	move_exec("SELECT pg_catalog.pg_drop_replication_slot($1)", 1, (Oid[]) {NAMEOID},
			  (Datum[]) {DirectFunctionCall1(namein, CStringGetDatum(slot))}, SPI_OK_SELECT);
}

/* The target's part of an abort: subscription and copied rows. */
static void
move_abort_target(const MoveRow *m)
{
	MoveConn   *mc = palloc0(sizeof(MoveConn));
	char		tenant_text[32];

	snprintf(tenant_text, sizeof(tenant_text), INT64_FORMAT, m->tenant);
	PG_TRY();
	{
		const char *params[1] = {m->name};

		move_connect(mc, m->target, move_shard_connstr(m->target, "to"));
		move_query(mc, "BEGIN", 0, NULL, PGRES_COMMAND_OK, "begin the clean-up");
		move_query(mc, "SELECT gb_scale.tenant_move_unsubscribe($1)", 1, params, PGRES_TUPLES_OK,
				   "drop the subscription");
		/*
		 * gb_tenant_purge: as each table's owner, past the fence (the target
		 * does not serve the tenant), and so never with the rights of the
		 * role this connection logs in as.
		 */
		move_query(mc, psprintf("SELECT FROM %s.gb_tenant_purge($1::pg_catalog.int8)",
								quote_identifier(move_remote_schema(mc))),
				   1, (const char *[]) {tenant_text}, PGRES_TUPLES_OK, "delete the tenant's copied rows");
		move_query(mc, "COMMIT", 0, NULL, PGRES_COMMAND_OK, "commit the clean-up");
	}
	PG_FINALLY();
	{
		if (mc->remote.conn != NULL)
			move_disconnect(mc);
	}
	PG_END_TRY();
}

Datum
gb_tenant_move_abort(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	MoveRow		m;
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorData  *target_error = NULL;

	move_require_superuser("abort a tenant's move");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!move_find(tenant, &m))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant " INT64_FORMAT " has no move in progress on this shard", tenant),
				 errhint("gb_scale.tenant_moves lists the moves; run the abort on the move's source shard.")));
	if (strcmp(m.state, "switched") == 0 || strcmp(m.state, "cleaning") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant " INT64_FORMAT "'s move cannot be aborted: shard %d serves it since the switch", tenant, m.target),
				 errdetail("The directory on both shards names shard %d, whose rows of the tenant may have changed since.", m.target),
				 errhint("Finish the move with CALL gb_tenant_move(" INT64_FORMAT ", %d); to bring the tenant back, move it again from shard %d.",
						 tenant, m.target, m.target)));

	/*
	 * The target first, in a subtransaction: when it cannot be reached, the
	 * slots and the publication here are dropped all the same.
	 */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		move_abort_target(&m);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		target_error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
	}
	PG_END_TRY();

	move_drop_source_objects(&m);
	move_unmark_moving(tenant);

	if (target_error != NULL)
	{
		char	   *error = psprintf("abort: target shard %d could not be cleaned (%s); its subscription %s and the tenant's copied rows may remain there, call gb_tenant_move_abort(" INT64_FORMAT ") again once it is reachable",
									 m.target, target_error->message, m.name, tenant);

		move_exec("UPDATE gb_scale.tenant_move SET state = 'failed', error = $2, lag_bytes = NULL"
				  " WHERE move_id OPERATOR(pg_catalog.=) $1", 2, (Oid[]) {INT8OID, TEXTOID},
				  (Datum[]) {Int64GetDatum(m.move_id), CStringGetTextDatum(error)}, SPI_OK_UPDATE);
		ereport(WARNING,
				(errmsg("tenant " INT64_FORMAT ": the move's slots and publication are dropped here, but target shard %d could not be cleaned",
						tenant, m.target),
				 errdetail_internal("%s", target_error->message),
				 errhint("Call gb_tenant_move_abort(" INT64_FORMAT ") again once shard %d is reachable.", tenant, m.target)));
	}
	else
	{
		move_set_state(&m, "aborted");
		move_exec("UPDATE gb_scale.tenant_move SET lag_bytes = NULL WHERE move_id OPERATOR(pg_catalog.=) $1",
				  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(m.move_id)}, SPI_OK_UPDATE);
		ereport(NOTICE,
				(errmsg("tenant " INT64_FORMAT ": move to shard %d aborted; the tenant stays on shard %d",
						tenant, m.target, m.source)));
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * The end of a move started with keep_source: once the window is over, the
 * tenant's rows here are purged and the move is done.
 */
Datum
gb_tenant_move_finish(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	MoveRow		m;
	bool		isnull;
	Datum		until;
	Datum		due;

	move_require_superuser("finish a tenant's move");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!move_find(tenant, &m))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant " INT64_FORMAT " has no move in progress on this shard", tenant),
				 errhint("gb_scale.tenant_moves lists the moves; run it on the move's source shard.")));
	move_exec("SELECT m.keep_source_until, m.keep_source_until OPERATOR(pg_catalog.<=) pg_catalog.now()"
			  " FROM gb_scale.tenant_move m WHERE m.move_id OPERATOR(pg_catalog.=) $1",
			  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(m.move_id)}, SPI_OK_SELECT);
	until = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (strcmp(m.state, "cleaning") != 0 || isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant " INT64_FORMAT "'s move to shard %d is not waiting for its keep_source window (state %s)",
						tenant, m.target, m.state),
				 errhint("CALL gb_tenant_move(" INT64_FORMAT ", %d) continues a move.", tenant, m.target)));
	due = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (!DatumGetBool(due))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant " INT64_FORMAT "'s rows stay on this shard until %s (keep_source)",
						tenant, timestamptz_to_str(DatumGetTimestampTz(until))),
				 errhint("Call gb_tenant_move_finish(" INT64_FORMAT ") after that.", tenant)));
	move_purge_source(&m, get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid)), false);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * The target's side, called over libpq by the source
 * ----------------------------------------------------------------
 */

/*
 * gb_scale.tenant_move_rewrite(tenant, shard, table_no, leaf, block): on
 * the target after the switch, the next step of a walk (gb_tenant_walk_step)
 * that gives the tenant's copied rows this shard's shard_id, in each table
 * as its owner (a security-restricted operation), paced by this shard's
 * gb_scale.move_rate.  Returns where the next step starts, or NULLs once the
 * walk is over; the first step starts at 0, 0, 0.
 */
Datum
gb_tenant_move_rewrite(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	int16		shard = PG_GETARG_INT16(1);
	GbTenantWalk walk;
	List	   *tables = NIL;
	ListCell   *lc;
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int64		rewritten;
	static MovePace rewrite_pace;

	move_require_superuser("rewrite a moved tenant's rows");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	move_walk_init(&walk, &rewrite_pace);
	walk.table = PG_GETARG_INT32(2);
	walk.leaf = PG_GETARG_OID(3);
	if (PG_GETARG_INT64(4) < 0 || PG_GETARG_INT64(4) > MaxBlockNumber)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("block " INT64_FORMAT " is out of range", PG_GETARG_INT64(4)),
				 errhint("Start the walk at 0, 0, 0 and pass on what each step returns.")));
	walk.block = (BlockNumber) PG_GETARG_INT64(4);
	foreach(lc, gb_tenant_tables("move"))
	{
		GbTenantTable *t = lfirst(lc);

		if (get_attnum(t->relid, "shard_id") != InvalidAttrNumber)
			tables = lappend(tables, t);
	}

	rewritten = gb_tenant_walk_step(tables, tenant, shard, NIL, &walk, move_pace_step());

	values[0] = Int32GetDatum(walk.table);
	values[1] = ObjectIdGetDatum(walk.leaf);
	values[2] = Int64GetDatum((int64) walk.block);
	values[3] = Int64GetDatum(rewritten);
	nulls[0] = nulls[1] = nulls[2] = walk.done;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Create the move's subscription to SOURCE_SHARD, whose connection string
 * is read here from this shard's directory (no password travels), with the
 * slot that the source made.  Returns its oid.
 */
Datum
gb_tenant_move_subscribe(PG_FUNCTION_ARGS)
{
	char	   *name = NameStr(*PG_GETARG_NAME(0));
	char	   *publication = NameStr(*PG_GETARG_NAME(1));
	int			source = PG_GETARG_INT16(2);
	CreateSubscriptionStmt *stmt = makeNode(CreateSubscriptionStmt);
	ObjectAddress address;
	List	   *tables;

	move_require_superuser("subscribe to a tenant's move");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	tables = gb_tenant_tables("move");
	if (move_exec(MOVE_UNTRUSTED_APPLY_SQL, 1, (Oid[]) {TEXTOID},
				  (Datum[]) {CStringGetTextDatum(move_tables_literal(tables))}, SPI_OK_SELECT) > 0)
		move_refuse_untrusted_apply(gb_required_shard(),
									SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	/* this shard refuses the tenant's writes until it serves it */
	move_install_fence(tables);
	stmt->subname = pstrdup(name);
	stmt->conninfo = move_shard_connstr(source, "from");
	stmt->publication = list_make1(makeString(pstrdup(publication)));
	stmt->options = list_make4(makeDefElem("slot_name", (Node *) makeString(pstrdup(name)), -1),
							   makeDefElem("create_slot", (Node *) makeString("false"), -1),
							   makeDefElem("copy_data", (Node *) makeString("true"), -1),
							   makeDefElem("enabled", (Node *) makeString("true"), -1));

	address = CreateSubscription(make_parsestate(NULL), stmt, false);
	SPI_finish();
	PG_RETURN_OID(address.objectId);
}

/*
 * Drop the move's subscription NAME, if any, without dropping a slot here
 * (that needs a top-level command; the source drops the slots itself).
 */
Datum
gb_tenant_move_unsubscribe(PG_FUNCTION_ARGS)
{
	char	   *name = NameStr(*PG_GETARG_NAME(0));
	const char *qname = quote_identifier(name);
	Datum		arg = CStringGetTextDatum(name);

	move_require_superuser("drop a tenant's move subscription");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (move_exec("SELECT FROM pg_catalog.pg_subscription s WHERE s.subname OPERATOR(pg_catalog.=) $1::pg_catalog.name"
				  " AND s.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d"
				  "  WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())",
				  1, (Oid[]) {TEXTOID}, &arg, SPI_OK_SELECT) > 0)
	{
		move_exec(psprintf("ALTER SUBSCRIPTION %s DISABLE", qname), 0, NULL, NULL, SPI_OK_UTILITY);
		move_exec(psprintf("ALTER SUBSCRIPTION %s SET (slot_name = NONE)", qname), 0, NULL, NULL, SPI_OK_UTILITY);
		move_exec(psprintf("DROP SUBSCRIPTION %s", qname), 0, NULL, NULL, SPI_OK_UTILITY);
	}
	SPI_finish();
	PG_RETURN_VOID();
}

void
gb_tenant_move_init(void)
{
	DefineCustomIntVariable("gb_scale.move_timeout",
							"Longest time gb_tenant_move waits for the copy to catch up.",
							"After it the procedure stops with an error; the move stays until gb_tenant_move_abort.",
							&gb_move_timeout,
							3600, 1, INT_MAX / 1000,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gb_scale.move_max_lag",
							"Lag of a move's slot, in bytes, below which the copy has caught up.",
							NULL,
							&gb_move_max_lag,
							1024 * 1024, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gb_scale.move_max_pause",
							"Longest time a move's pause waits for the target to confirm the source's WAL position.",
							"After it the pause ends with an error, the tenant still served by the source; a new CALL tries again.",
							&gb_move_max_pause,
							10000, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gb_scale.move_rate",
							"Rows per second, per table, that a move writes on this shard: its copy, its shard_id rewrite, its purge.",
							"0 writes them as fast as it can, and every other tenant's commits queue behind their WAL.",
							&gb_move_rate,
							10000, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("gb_scale.move_switch",
							 "Whether gb_tenant_move goes on to the pause, the switch and the cleanup once caught up.",
							 "Off: the CALL returns once caught up; a later CALL with the same target switches.",
							 &gb_move_switch,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}
