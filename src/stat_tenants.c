/*-------------------------------------------------------------------------
 *
 * stat_tenants.c
 *	  Per-tenant statistics: what each tenant's statements and transactions
 *	  cost, in shared memory, shown by gb_stat_tenants.
 *
 * One entry per (database, tenant); "no tenant set" is an entry of its own
 * (tenant_id NULL).  Each entry holds the counters since reset and those of
 * the current and the previous period of gb_scale.stat_tenants_period.  When
 * the table is full, the entry with the lowest activity score (statements
 * and transactions, halved for every period without any) makes room and is
 * counted as an eviction.
 *
 * What counts where (gb_scale.stat_tenants_track = on):
 * - a statement counts once, when its top-level executor run ends, for the
 *   tenant set at that moment (so "SELECT gb_set_tenant(7)" counts for 7):
 *   a write if it is INSERT, UPDATE, DELETE or MERGE or has a data-modifying
 *   WITH, else a read.  COPY, CALL and DO count as one statement each (COPY
 *   FROM a write; CALL and DO a write when they changed rows).  Statements
 *   run inside functions, procedures and triggers count as statements only
 *   with track = all;
 * - rows inserted, updated and deleted count wherever they happen (in
 *   functions and triggers too); rows returned count for top-level
 *   statements (every level with track = all);
 * - executor time is the wall-clock time of top-level ExecutorRun and
 *   ExecutorFinish (nested statements are inside it, never added twice);
 * - CPU time (user + system, getrusage) is measured per transaction rather
 *   than per statement, because each getrusage() is a system call: from the
 *   end of the backend's previous transaction to the end of this one, so
 *   that parsing and planning count too.  It goes to the tenant of the
 *   transaction's statements; when a statement ends with another tenant
 *   set, the time so far goes to the previous one.  Parallel workers add
 *   their own CPU time to the same tenant (the tenant setting reaches them);
 *   their rows come back through the leader and count there once;
 * - transactions count at commit, abort or PREPARE, for the tenant of their
 *   statements (or the one set at the end when they ran none);
 * - a statement that fails counts its time but not as a statement, and the
 *   rows of its nested statements do not count.
 * Only client sessions (and their parallel workers) count: not autovacuum
 * nor background workers such as the partition maintenance worker.
 * Under Citus each node counts its own part: the node receiving the
 * application's statement counts it once, a worker the shard queries it
 * runs.  Not counted: Citus' bookkeeping between nodes (table-less
 * statements over its internal connections, and their transactions when
 * they ran nothing else), the nested executor run of a shard query that
 * Citus executes locally inside a distributed statement, and the
 * transaction of COMMIT/ROLLBACK PREPARED (counted at PREPARE).
 *
 * Locking: gb_stat->lock guards the hash table, shared to find an entry and
 * update it, exclusive to add, evict or remove entries.  An entry's counters
 * are changed and copied under its spinlock (several backends may hold the
 * lock shared).  evictions and last_reset are under gb_stat->mutex.  A
 * backend accumulates a statement's counters locally and takes the lock
 * once when the statement ends and once when its transaction ends.  The
 * update at commit must not fail (the transaction is committed by then), so
 * it never allocates outside the preallocated table.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"
#include "stat_tenants.h"
#include "citus_glue.h"

#include <math.h>
#include <sys/resource.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "portability/instr_time.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "nodes/extensible.h"
#include "parser/parsetree.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(gb_stat_tenants);
PG_FUNCTION_INFO_V1(gb_stat_tenants_info);
PG_FUNCTION_INFO_V1(gb_stat_tenants_reset_all);
PG_FUNCTION_INFO_V1(gb_stat_tenants_reset_tenant);

#define GB_STAT_TRANCHE		"gb_scale stat_tenants"
#define GB_STAT_COUNTERS	9	/* columns of one GbStatCounters */

typedef enum GbStatTrack
{
	GB_STAT_TRACK_OFF,
	GB_STAT_TRACK_ON,
	GB_STAT_TRACK_ALL
} GbStatTrack;

static const struct config_enum_entry gb_stat_track_options[] = {
	{"off", GB_STAT_TRACK_OFF, false},
	{"on", GB_STAT_TRACK_ON, false},
	{"all", GB_STAT_TRACK_ALL, false},
	{NULL, 0, false}
};

int			gb_stat_tenants_max = 10000;
static int	gb_stat_tenants_track = GB_STAT_TRACK_ON;
static int	gb_stat_tenants_period_s = 60;

/*
 * Hashed and compared as bytes, so without padding: a struct copy need not
 * copy padding bytes.
 */
typedef struct GbStatKey
{
	int64		tenant;			/* 0 when has_tenant is false */
	Oid			dbid;
	uint32		has_tenant;		/* 1: tenant is set; 0: none set */
} GbStatKey;

StaticAssertDecl(sizeof(GbStatKey) == sizeof(int64) + sizeof(Oid) + sizeof(uint32),
				 "GbStatKey must have no padding");

/* Keep GB_STAT_COUNTERS and gb_stat_put_counters in step with this. */
typedef struct GbStatCounters
{
	int64		reads;
	int64		writes;
	int64		rows_returned;
	int64		rows_inserted;
	int64		rows_updated;
	int64		rows_deleted;
	double		exec_time_ms;
	double		cpu_time_ms;
	int64		xacts;
} GbStatCounters;

typedef struct GbStatEntry
{
	GbStatKey	key;			/* hash key: first */
	slock_t		mutex;			/* guards everything below */
	TimestampTz period_start;	/* start of the period "current" covers */
	TimestampTz score_at;		/* when score was last decayed */
	double		score;			/* activity, halved per idle period */
	GbStatCounters total;
	GbStatCounters current;
	GbStatCounters previous;
} GbStatEntry;

typedef struct GbStatShared
{
	LWLock	   *lock;
	slock_t		mutex;			/* guards evictions and last_reset */
	int64		evictions;
	TimestampTz last_reset;
} GbStatShared;

static GbStatShared *gb_stat = NULL;
static HTAB *gb_stat_hash = NULL;

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* Executor (and COPY, CALL, DO) nesting depth; 0 is a top-level statement. */
static int	gb_stat_nesting = 0;

/* gb_stat_nesting inside the innermost run of a Citus distributed plan; -1: none. */
static int	gb_stat_citus_level = -1;

/* Counters of the top-level statement running, nested work included. */
static GbStatCounters gb_stat_statement;

/* The tenant the transaction's statements ran for, once one has ended. */
static bool gb_stat_owner_known = false;
static GbStatKey gb_stat_owner;

/* This process's CPU time (ms) when the CPU being attributed began; < 0: none. */
static double gb_stat_cpu_mark = -1;

/* The transaction ending runs COMMIT/ROLLBACK PREPARED: counted at PREPARE. */
static bool gb_stat_finishing_prepared = false;

/*
 * Citus' connections between nodes name themselves so (Citus tells its own
 * backends apart by this prefix of application_name).
 */
#define GB_CITUS_INTERNAL_APPNAME	"citus_internal gpid="

static Size
gb_stat_hash_size(void)
{
	return hash_estimate_size(gb_stat_tenants_max, sizeof(GbStatEntry));
}

void
gb_stat_tenants_shmem_request(void)
{
	RequestAddinShmemSpace(add_size(MAXALIGN(sizeof(GbStatShared)), gb_stat_hash_size()));
	RequestNamedLWLockTranche(GB_STAT_TRANCHE, 1);
}

void
gb_stat_tenants_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gb_stat = ShmemInitStruct("gb_scale stat_tenants", sizeof(GbStatShared), &found);
	if (!found)
	{
		gb_stat->lock = &(GetNamedLWLockTranche(GB_STAT_TRANCHE))->lock;
		SpinLockInit(&gb_stat->mutex);
		gb_stat->evictions = 0;
		gb_stat->last_reset = GetCurrentTimestamp();
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(GbStatKey);
	info.entrysize = sizeof(GbStatEntry);
	/* fixed size: an insert never takes shared memory others were promised */
	gb_stat_hash = ShmemInitHash("gb_scale stat_tenants hash",
								 gb_stat_tenants_max, gb_stat_tenants_max,
								 &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

static void
gb_stat_require_shared(void)
{
	if (gb_stat == NULL || gb_stat_hash == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("gb_stat_tenants requires gb_scale to be loaded via shared_preload_libraries"),
				 errhint("Add gb_scale to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Whether this process counts now: see the header comment for which ones. */
static bool
gb_stat_active(void)
{
	return gb_stat != NULL &&
		gb_stat_tenants_track != GB_STAT_TRACK_OFF &&
		IsNormalProcessingMode() &&
		OidIsValid(MyDatabaseId) &&
		(MyBackendType == B_BACKEND || IsParallelWorker());
}

static GbStatKey
gb_stat_current_key(void)
{
	GbStatKey	key;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.has_tenant = gb_tenant_current(&key.tenant) ? 1 : 0;
	return key;
}

static double
gb_stat_cpu_ms(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
		(double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

/* CPU time since the mark, and a new mark; 0 when there was no mark. */
static double
gb_stat_cpu_take(void)
{
	double		now = gb_stat_cpu_ms();
	double		spent = 0;

	if (gb_stat_cpu_mark >= 0 && now >= gb_stat_cpu_mark)
		spent = now - gb_stat_cpu_mark;
	gb_stat_cpu_mark = now;
	return spent;
}

static void
gb_stat_add(GbStatCounters *to, const GbStatCounters *from)
{
	to->reads += from->reads;
	to->writes += from->writes;
	to->rows_returned += from->rows_returned;
	to->rows_inserted += from->rows_inserted;
	to->rows_updated += from->rows_updated;
	to->rows_deleted += from->rows_deleted;
	to->exec_time_ms += from->exec_time_ms;
	to->cpu_time_ms += from->cpu_time_ms;
	to->xacts += from->xacts;
}

static int64
gb_stat_rows_changed(const GbStatCounters *c)
{
	return c->rows_inserted + c->rows_updated + c->rows_deleted;
}

static int64
gb_stat_period_us(void)
{
	return (int64) gb_stat_tenants_period_s * USECS_PER_SEC;
}

/* Start of the period holding NOW; periods are aligned on the epoch. */
static TimestampTz
gb_stat_period_of(TimestampTz now)
{
	int64		len = gb_stat_period_us();
	int64		into = now % len;

	if (into < 0)
		into += len;
	return now - into;
}

/* Moves an entry's periods forward to the one holding NOW. */
static void
gb_stat_roll(GbStatEntry *entry, TimestampTz now)
{
	TimestampTz start = gb_stat_period_of(now);

	if (entry->period_start == start)
		return;
	if (entry->period_start == start - gb_stat_period_us())
		entry->previous = entry->current;
	else
		memset(&entry->previous, 0, sizeof(GbStatCounters));
	memset(&entry->current, 0, sizeof(GbStatCounters));
	entry->period_start = start;
}

/* The activity score at NOW: halved for every period since score_at. */
static double
gb_stat_score_at(const GbStatEntry *entry, TimestampTz now)
{
	double		periods = (double) (now - entry->score_at) / (double) gb_stat_period_us();

	return periods > 0 ? entry->score * exp2(-periods) : entry->score;
}

/*
 * Removes the least active entry.  Called with the lock held exclusively;
 * one pass over the table, no allocation (it may run while committing).
 */
static void
gb_stat_evict(TimestampTz now)
{
	HASH_SEQ_STATUS scan;
	GbStatEntry *entry;
	GbStatEntry *victim = NULL;
	double		lowest = 0;

	hash_seq_init(&scan, gb_stat_hash);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		double		score = gb_stat_score_at(entry, now);

		if (victim == NULL || score < lowest)
		{
			victim = entry;
			lowest = score;
		}
	}
	if (victim == NULL)
		return;
	(void) hash_search(gb_stat_hash, &victim->key, HASH_REMOVE, NULL);
	SpinLockAcquire(&gb_stat->mutex);
	gb_stat->evictions++;
	SpinLockRelease(&gb_stat->mutex);
}

/* The entry of KEY, made (evicting another when full) with the lock held exclusively. */
static GbStatEntry *
gb_stat_enter(const GbStatKey *key, TimestampTz now)
{
	GbStatEntry *entry;
	bool		found;

	entry = hash_search(gb_stat_hash, key, HASH_FIND, NULL);
	if (entry != NULL)
		return entry;
	if (hash_get_num_entries(gb_stat_hash) >= gb_stat_tenants_max)
		gb_stat_evict(now);
	entry = hash_search(gb_stat_hash, key, HASH_ENTER_NULL, &found);
	if (entry == NULL || found)
		return entry;
	SpinLockInit(&entry->mutex);
	entry->period_start = gb_stat_period_of(now);
	entry->score_at = now;
	entry->score = 0;
	memset(&entry->total, 0, sizeof(GbStatCounters));
	memset(&entry->current, 0, sizeof(GbStatCounters));
	memset(&entry->previous, 0, sizeof(GbStatCounters));
	return entry;
}

/* Adds ADD to the entry of KEY in shared memory.  Never raises an error. */
static void
gb_stat_flush(const GbStatKey *key, const GbStatCounters *add)
{
	TimestampTz now = GetCurrentTimestamp();
	GbStatEntry *entry;
	double		activity = (double) (add->reads + add->writes + add->xacts);

	LWLockAcquire(gb_stat->lock, LW_SHARED);
	entry = hash_search(gb_stat_hash, key, HASH_FIND, NULL);
	if (entry == NULL)
	{
		LWLockRelease(gb_stat->lock);
		LWLockAcquire(gb_stat->lock, LW_EXCLUSIVE);
		entry = gb_stat_enter(key, now);
	}
	if (entry != NULL)
	{
		SpinLockAcquire(&entry->mutex);
		gb_stat_roll(entry, now);
		gb_stat_add(&entry->total, add);
		gb_stat_add(&entry->current, add);
		entry->score = gb_stat_score_at(entry, now) + activity;
		entry->score_at = now;
		SpinLockRelease(&entry->mutex);
	}
	LWLockRelease(gb_stat->lock);
}

static bool
gb_stat_key_equal(const GbStatKey *a, const GbStatKey *b)
{
	return a->dbid == b->dbid && a->has_tenant == b->has_tenant && a->tenant == b->tenant;
}

/*
 * A top-level statement ended: its counters go to the tenant set now.  When
 * that tenant is not the one the transaction's earlier statements ran for,
 * the CPU time so far goes to that earlier one.
 */
static void
gb_stat_statement_end(void)
{
	GbStatKey	key = gb_stat_current_key();

	if (gb_stat_owner_known && !gb_stat_key_equal(&key, &gb_stat_owner))
	{
		GbStatCounters cpu;

		memset(&cpu, 0, sizeof(cpu));
		cpu.cpu_time_ms = gb_stat_cpu_take();
		gb_stat_flush(&gb_stat_owner, &cpu);
	}
	gb_stat_owner = key;
	gb_stat_owner_known = true;
	gb_stat_flush(&key, &gb_stat_statement);
	memset(&gb_stat_statement, 0, sizeof(gb_stat_statement));
}

/* A top-level statement failed: its time counts, its nested work does not. */
static void
gb_stat_statement_failed(double elapsed_ms)
{
	double		exec_time_ms = gb_stat_statement.exec_time_ms + elapsed_ms;

	memset(&gb_stat_statement, 0, sizeof(gb_stat_statement));
	gb_stat_statement.exec_time_ms = exec_time_ms;
}

static double
gb_stat_elapsed_ms(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}

/*
 * This backend serves one of Citus' connections between nodes.  Its
 * transactions count only when they ran a statement that counted: those
 * with only Citus' bookkeeping are not the application's.
 */
static bool
gb_stat_citus_internal(void)
{
	return application_name != NULL &&
		strncmp(application_name, GB_CITUS_INTERNAL_APPNAME, strlen(GB_CITUS_INTERNAL_APPNAME)) == 0;
}

static void
gb_stat_xact_callback(XactEvent event, void *arg)
{
	GbStatKey	key;
	GbStatCounters add;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PREPARE)
		return;
	if (!gb_stat_active() || IsParallelWorker() || gb_stat_finishing_prepared ||
		(!gb_stat_owner_known && gb_stat_citus_internal()))
	{
		/* counting resumes with fresh marks, never with CPU spent meanwhile */
		gb_stat_cpu_mark = -1;
		gb_stat_owner_known = false;
		gb_stat_finishing_prepared = false;
		memset(&gb_stat_statement, 0, sizeof(gb_stat_statement));
		return;
	}
	key = gb_stat_owner_known ? gb_stat_owner : gb_stat_current_key();
	if (event == XACT_EVENT_ABORT)
		gb_stat_statement_failed(0);
	add = gb_stat_statement;
	add.cpu_time_ms += gb_stat_cpu_take();
	add.xacts++;
	gb_stat_flush(&key, &add);
	memset(&gb_stat_statement, 0, sizeof(gb_stat_statement));
	gb_stat_owner_known = false;
}

/* Rows of one executor run, by command; es_processed restarts at every run. */
static void
gb_stat_count_rows(QueryDesc *queryDesc, bool top)
{
	uint64		processed = queryDesc->estate->es_processed;
	ModifyTableState *merge;

	switch (queryDesc->operation)
	{
		case CMD_SELECT:
			if (top || gb_stat_tenants_track == GB_STAT_TRACK_ALL)
				gb_stat_statement.rows_returned += processed;
			break;
		case CMD_INSERT:
			gb_stat_statement.rows_inserted += processed;
			break;
		case CMD_UPDATE:
			gb_stat_statement.rows_updated += processed;
			break;
		case CMD_DELETE:
			gb_stat_statement.rows_deleted += processed;
			break;
		case CMD_MERGE:
			if (queryDesc->planstate == NULL || !IsA(queryDesc->planstate, ModifyTableState))
				break;
			merge = (ModifyTableState *) queryDesc->planstate;
			gb_stat_statement.rows_inserted += (int64) merge->mt_merge_inserted;
			gb_stat_statement.rows_updated += (int64) merge->mt_merge_updated;
			gb_stat_statement.rows_deleted += (int64) merge->mt_merge_deleted;
			break;
		default:
			break;
	}
}

/* A plan that Citus distributes (its custom scan at the top). */
static bool
gb_stat_citus_plan(QueryDesc *queryDesc)
{
	Plan	   *plan = queryDesc->plannedstmt->planTree;

	return plan != NULL && IsA(plan, CustomScan) && ((CustomScan *) plan)->methods != NULL &&
		strncmp(((CustomScan *) plan)->methods->CustomName, "Citus", strlen("Citus")) == 0;
}

/*
 * A shard query that Citus runs in this backend through the executor, on a
 * shard held by this node, for the distributed statement running around it
 * (local execution): that statement counts it, with its rows.
 */
static bool
gb_stat_citus_local_task(QueryDesc *queryDesc)
{
	ListCell   *lc;

	if (gb_stat_citus_level < 0 || gb_stat_nesting != gb_stat_citus_level)
		return false;
	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION && gb_citus_relation_is_shard(rte->relid))
			return true;
	}
	return false;
}

static void
gb_stat_executor_start(QueryDesc *queryDesc, int eflags)
{
	/* the first statement of a process (or since tracking was off) starts the CPU mark */
	if (gb_stat_nesting == 0 && gb_stat_cpu_mark < 0 && gb_stat_active())
		gb_stat_cpu_mark = gb_stat_cpu_ms();
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
gb_stat_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
					 bool execute_once)
{
	bool		top = gb_stat_nesting == 0;
	bool		counting = gb_stat_active() && !IsParallelWorker();
	bool		local_task = counting && gb_stat_citus_local_task(queryDesc);
	int			citus_level = gb_stat_citus_level;
	instr_time	start;

	INSTR_TIME_SET_ZERO(start);
	if (top && counting)
		INSTR_TIME_SET_CURRENT(start);
	gb_stat_nesting++;
	if (counting && gb_stat_citus_plan(queryDesc))
		gb_stat_citus_level = gb_stat_nesting;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_CATCH();
	{
		gb_stat_nesting--;
		gb_stat_citus_level = citus_level;
		if (top && counting)
			gb_stat_statement_failed(gb_stat_elapsed_ms(start));
		PG_RE_THROW();
	}
	PG_END_TRY();
	gb_stat_nesting--;
	gb_stat_citus_level = citus_level;
	if (!counting || local_task)
		return;
	if (top)
		gb_stat_statement.exec_time_ms += gb_stat_elapsed_ms(start);
	gb_stat_count_rows(queryDesc, top);
}

static void
gb_stat_executor_finish(QueryDesc *queryDesc)
{
	bool		top = gb_stat_nesting == 0;
	bool		counting = gb_stat_active() && !IsParallelWorker();
	instr_time	start;

	INSTR_TIME_SET_ZERO(start);
	if (top && counting)
		INSTR_TIME_SET_CURRENT(start);
	gb_stat_nesting++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		gb_stat_nesting--;
		if (top && counting)
			gb_stat_statement_failed(gb_stat_elapsed_ms(start));
		PG_RE_THROW();
	}
	PG_END_TRY();
	gb_stat_nesting--;
	if (top && counting)
		gb_stat_statement.exec_time_ms += gb_stat_elapsed_ms(start);
}

/*
 * A statement of Citus' own bookkeeping, sent by another node over Citus'
 * connections (assign_distributed_transaction_id at the start of each
 * distributed transaction, metadata calls, the deadlock detector's polls):
 * it reads no table.  Not a statement of the tenant: the node that received
 * the application's statement counts that, this one counts the shard
 * queries it runs.
 */
static bool
gb_stat_citus_bookkeeping(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (!gb_stat_citus_internal())
		return false;
	foreach(lc, stmt->rtable)
	{
		if (lfirst_node(RangeTblEntry, lc)->rtekind == RTE_RELATION)
			return false;
	}
	return true;
}

static void
gb_stat_executor_end(QueryDesc *queryDesc)
{
	bool		top = gb_stat_nesting == 0;
	bool		active = gb_stat_active();
	bool		explain_only = (queryDesc->estate->es_top_eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0;
	bool		local_task = !top && active && gb_stat_citus_local_task(queryDesc);
	bool		write = queryDesc->operation != CMD_SELECT || queryDesc->plannedstmt->hasModifyingCTE;

	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
	if (!active || explain_only)
		return;
	if (IsParallelWorker())
	{
		/* a worker's CPU time, for the leader's tenant; all else counts in the leader */
		if (top)
		{
			GbStatKey	key = gb_stat_current_key();
			GbStatCounters add;

			memset(&add, 0, sizeof(add));
			add.cpu_time_ms = gb_stat_cpu_take();
			gb_stat_flush(&key, &add);
		}
		return;
	}
	if (top && gb_stat_citus_bookkeeping(queryDesc->plannedstmt))
	{
		memset(&gb_stat_statement, 0, sizeof(gb_stat_statement));
		return;
	}
	if (!top && local_task)
		return;
	if (top || gb_stat_tenants_track == GB_STAT_TRACK_ALL)
	{
		if (write)
			gb_stat_statement.writes++;
		else
			gb_stat_statement.reads++;
	}
	if (top)
		gb_stat_statement_end();
}

/*
 * COPY, CALL and DO count as one statement each; the statements a CALL or
 * DO runs are nested in it.  Other utility statements count through the
 * executor work they do, if any.
 */
static void
gb_stat_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	bool		top = gb_stat_nesting == 0;
	bool		counting = (IsA(stmt, CopyStmt) || IsA(stmt, CallStmt) || IsA(stmt, DoStmt)) &&
		gb_stat_active() && !IsParallelWorker();
	QueryCompletion local_qc;
	int64		changed_before = gb_stat_rows_changed(&gb_stat_statement);
	bool		write;
	instr_time	start;

	/* its transaction was counted by PREPARE TRANSACTION */
	if (IsA(stmt, TransactionStmt) &&
		(((TransactionStmt *) stmt)->kind == TRANS_STMT_COMMIT_PREPARED ||
		 ((TransactionStmt *) stmt)->kind == TRANS_STMT_ROLLBACK_PREPARED))
		gb_stat_finishing_prepared = true;

	if (!counting)
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
								 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
		return;
	}
	/* COPY reports its rows through the completion, which callers may omit */
	if (qc == NULL)
	{
		InitializeQueryCompletion(&local_qc);
		qc = &local_qc;
	}
	if (top && gb_stat_cpu_mark < 0)
		gb_stat_cpu_mark = gb_stat_cpu_ms();
	INSTR_TIME_SET_CURRENT(start);
	gb_stat_nesting++;
	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
								 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		gb_stat_nesting--;
		if (top)
			gb_stat_statement_failed(gb_stat_elapsed_ms(start));
		PG_RE_THROW();
	}
	PG_END_TRY();
	gb_stat_nesting--;

	if (IsA(stmt, CopyStmt))
	{
		write = ((CopyStmt *) stmt)->is_from;
		if (write)
			gb_stat_statement.rows_inserted += qc->nprocessed;
		else if (top || gb_stat_tenants_track == GB_STAT_TRACK_ALL)
			gb_stat_statement.rows_returned += qc->nprocessed;
	}
	else
		write = gb_stat_rows_changed(&gb_stat_statement) > changed_before;
	if (top || gb_stat_tenants_track == GB_STAT_TRACK_ALL)
	{
		if (write)
			gb_stat_statement.writes++;
		else
			gb_stat_statement.reads++;
	}
	if (top)
	{
		gb_stat_statement.exec_time_ms += gb_stat_elapsed_ms(start);
		gb_stat_statement_end();
	}
}

void
gb_stat_tenants_init(void)
{
	/* superuser-only, so that a session cannot hide its tenant's work */
	DefineCustomEnumVariable("gb_scale.stat_tenants_track",
							 "Which statements gb_stat_tenants counts: off, on (top-level only) or all (nested too).",
							 "Set it for the server, a database or a role.",
							 &gb_stat_tenants_track,
							 GB_STAT_TRACK_ON, gb_stat_track_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("gb_scale.stat_tenants_period",
							"Length of the current and previous periods of gb_stat_tenants.",
							"Periods are aligned on the clock; changing it starts new periods.",
							&gb_stat_tenants_period_s,
							60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	/*
	 * The size of shared memory: a PGC_POSTMASTER setting can only be defined
	 * while the postmaster loads the library (a later LOAD or CREATE
	 * EXTENSION would fail), and means nothing without the preload anyway.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("gb_scale.stat_tenants_max",
							"Most (database, tenant) entries gb_stat_tenants keeps in shared memory.",
							"When full, the least active entry is evicted.  Each entry takes about 300 bytes.",
							&gb_stat_tenants_max,
							10000, 10, 1000000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = gb_stat_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = gb_stat_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = gb_stat_executor_finish;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = gb_stat_executor_end;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = gb_stat_process_utility;
	RegisterXactCallback(gb_stat_xact_callback, NULL);
}

/* Appends one GbStatCounters as GB_STAT_COUNTERS columns from values[at]. */
static int
gb_stat_put_counters(Datum *values, int at, const GbStatCounters *c)
{
	values[at++] = Int64GetDatum(c->reads);
	values[at++] = Int64GetDatum(c->writes);
	values[at++] = Int64GetDatum(c->rows_returned);
	values[at++] = Int64GetDatum(c->rows_inserted);
	values[at++] = Int64GetDatum(c->rows_updated);
	values[at++] = Int64GetDatum(c->rows_deleted);
	values[at++] = Float8GetDatum(c->exec_time_ms);
	values[at++] = Float8GetDatum(c->cpu_time_ms);
	values[at++] = Int64GetDatum(c->xacts);
	return at;
}

#define GB_STAT_COLUMNS		(2 + GB_STAT_COUNTERS + 1 + 2 * GB_STAT_COUNTERS)

/*
 * Every entry of every database: database, tenant_id, the counters since
 * reset, the start of the current period, the current and the previous
 * period's counters.  Entries are copied under the lock and turned into
 * rows after it is released (database names come from the catalog).
 */
Datum
gb_stat_tenants(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();
	HASH_SEQ_STATUS scan;
	GbStatEntry *entry;
	GbStatEntry *copies;
	long		count = 0;
	long		capacity;

	gb_stat_require_shared();
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(gb_stat->lock, LW_SHARED);
	capacity = hash_get_num_entries(gb_stat_hash);
	copies = palloc_array(GbStatEntry, Max(capacity, 1));
	hash_seq_init(&scan, gb_stat_hash);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (count >= capacity)
		{
			hash_seq_term(&scan);
			break;
		}
		SpinLockAcquire(&entry->mutex);
		copies[count] = *entry;
		SpinLockRelease(&entry->mutex);
		count++;
	}
	LWLockRelease(gb_stat->lock);

	for (long i = 0; i < count; i++)
	{
		GbStatEntry *e = &copies[i];
		Datum		values[GB_STAT_COLUMNS];
		bool		nulls[GB_STAT_COLUMNS];
		char	   *dbname;
		int			at = 0;

		CHECK_FOR_INTERRUPTS();
		memset(nulls, 0, sizeof(nulls));
		gb_stat_roll(e, now);
		dbname = get_database_name(e->key.dbid);
		if (dbname == NULL)
			nulls[at] = true;
		else
			values[at] = CStringGetDatum(dbname);
		at++;
		if (!e->key.has_tenant)
			nulls[at] = true;
		values[at++] = Int64GetDatum(e->key.tenant);
		at = gb_stat_put_counters(values, at, &e->total);
		values[at++] = TimestampTzGetDatum(e->period_start);
		at = gb_stat_put_counters(values, at, &e->current);
		at = gb_stat_put_counters(values, at, &e->previous);
		if (at != GB_STAT_COLUMNS)
			elog(ERROR, "gb_stat_tenants produced %d columns, expected %d", at, GB_STAT_COLUMNS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* capacity, entries, evictions, last_reset, entry_bytes, shared_memory_bytes */
Datum
gb_stat_tenants_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false};
	int64		entries;
	int64		evictions;
	TimestampTz last_reset;
	Size		bytes;

	gb_stat_require_shared();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(gb_stat->lock, LW_SHARED);
	entries = hash_get_num_entries(gb_stat_hash);
	LWLockRelease(gb_stat->lock);
	SpinLockAcquire(&gb_stat->mutex);
	evictions = gb_stat->evictions;
	last_reset = gb_stat->last_reset;
	SpinLockRelease(&gb_stat->mutex);
	bytes = add_size(MAXALIGN(sizeof(GbStatShared)), gb_stat_hash_size());

	values[0] = Int64GetDatum(gb_stat_tenants_max);
	values[1] = Int64GetDatum(entries);
	values[2] = Int64GetDatum(evictions);
	values[3] = TimestampTzGetDatum(last_reset);
	values[4] = Int64GetDatum((int64) (gb_stat_hash_size() / gb_stat_tenants_max));
	values[5] = Int64GetDatum((int64) bytes);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Forgets every entry of every database; evictions start again from zero. */
Datum
gb_stat_tenants_reset_all(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS scan;
	GbStatEntry *entry;

	gb_stat_require_shared();
	LWLockAcquire(gb_stat->lock, LW_EXCLUSIVE);
	hash_seq_init(&scan, gb_stat_hash);
	while ((entry = hash_seq_search(&scan)) != NULL)
		(void) hash_search(gb_stat_hash, &entry->key, HASH_REMOVE, NULL);
	SpinLockAcquire(&gb_stat->mutex);
	gb_stat->evictions = 0;
	gb_stat->last_reset = GetCurrentTimestamp();
	SpinLockRelease(&gb_stat->mutex);
	LWLockRelease(gb_stat->lock);
	PG_RETURN_VOID();
}

/*
 * Forgets one tenant of the current database; NULL is the "no tenant set"
 * entry.  Returns whether there was an entry.
 */
Datum
gb_stat_tenants_reset_tenant(PG_FUNCTION_ARGS)
{
	GbStatKey	key;
	bool		found;

	gb_stat_require_shared();
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.has_tenant = PG_ARGISNULL(0) ? 0 : 1;
	if (!PG_ARGISNULL(0))
		key.tenant = PG_GETARG_INT64(0);
	LWLockAcquire(gb_stat->lock, LW_EXCLUSIVE);
	found = hash_search(gb_stat_hash, &key, HASH_REMOVE, NULL) != NULL;
	LWLockRelease(gb_stat->lock);
	PG_RETURN_BOOL(found);
}
