/*-------------------------------------------------------------------------
 *
 * partition_worker.c
 *	  The maintenance settings and the background worker.
 *
 * A launcher (registered at server start when gb_scale is preloaded) wakes
 * every gb_scale.maintenance_naptime seconds and, unless the server is in
 * recovery, starts one short-lived worker per database named in
 * gb_scale.maintenance_databases, one after the other.  Each worker runs a
 * pass (as the owner of each table, see partition_maint.c) and then retires
 * expired partitions with DETACH PARTITION ... CONCURRENTLY where the tree
 * has no default partition: that command must run at top level, outside any
 * transaction block, which only a process of our own can offer.
 *
 *-------------------------------------------------------------------------
 */
#include "partition.h"

#include "access/xact.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "catalog/partition.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

char	   *gb_maintenance_databases = NULL;
int			gb_maintenance_naptime = 600;
int			gb_maintenance_lock_timeout = 200;
int			gb_maintenance_drain_limit = 100;
int			gb_maintenance_premake_limit = 100;
char	   *gb_test_now = NULL;

PGDLLEXPORT void gb_maintenance_launcher_main(Datum arg);
PGDLLEXPORT void gb_maintenance_worker_main(Datum arg);

/* A timestamptz, parsed without raising errors (the postmaster checks it too). */
static bool
gb_check_test_now(char **newval, void **extra, GucSource source)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nfields;
	int			dtype;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	/* one session's test clock; stored for a database, role or server it would steer pg_cron's runs */
	if (source != PGC_S_SESSION && source != PGC_S_CLIENT && source != PGC_S_OVERRIDE &&
		source != PGC_S_INTERACTIVE)
	{
		GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
		GUC_check_errmsg("gb_scale.test_now can only be set with SET, in the session it is for");
		GUC_check_errhint("Use SET gb_scale.test_now in the session that runs maintenance.");
		return false;
	}
	if (strlen(*newval) >= MAXDATELEN ||
		ParseDateTime(*newval, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nfields) != 0 ||
		DecodeDateTime(field, ftype, nfields, &dtype, &tm, &fsec, &tz) != 0 || dtype != DTK_DATE)
	{
		GUC_check_errdetail("gb_scale.test_now must be a timestamp with time zone, such as '2026-03-01 00:00+00', or empty.");
		return false;
	}
	return true;
}

void
gb_partition_init(void)
{
	BackgroundWorker worker;

	DefineCustomStringVariable("gb_scale.maintenance_databases",
							   "Databases whose registered tables the background worker maintains.",
							   "Comma-separated database names; empty turns the worker's passes off.",
							   &gb_maintenance_databases,
							   "",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("gb_scale.maintenance_naptime",
							"Seconds between two maintenance passes of the background worker.",
							"0 turns the worker's passes off.",
							&gb_maintenance_naptime,
							600, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gb_scale.maintenance_lock_timeout",
							"Longest wait, in milliseconds, of a maintenance DDL for its lock before it gives up until the next pass.",
							"A DDL waiting for a lock queues every later query on the table behind it.",
							&gb_maintenance_lock_timeout,
							200, 1, 600000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gb_scale.maintenance_drain_limit",
							"Most periods of rows in a default partition one maintenance transaction moves, per time tree.",
							"Each period becomes a partition, which the transaction holds locks on; the rest follow in the next transactions.",
							&gb_maintenance_drain_limit,
							100, 1, 10000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("gb_scale.maintenance_premake_limit",
							"Most partitions one maintenance transaction creates for premake, per time tree.",
							"The transaction holds locks on each; the rest follow in the next transactions.",
							&gb_maintenance_premake_limit,
							100, 1, 10000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("gb_scale.test_now",
							   "Replaces the clock of partition maintenance in this session, for tests.",
							   "Empty means the real clock.  Never affects IDs, other sessions or the worker.",
							   &gb_test_now,
							   "",
							   PGC_SUSET, GUC_NOT_IN_SAMPLE,
							   gb_check_test_now, NULL, NULL);
	gb_move_init();

	if (!process_shared_preload_libraries_in_progress)
		return;
	memset(&worker, 0, sizeof(worker));
	/* never connects; the flag makes the postmaster stop it with the backends */
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "gb_scale");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "gb_maintenance_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "gb_scale maintenance launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "gb_scale maintenance launcher");
	RegisterBackgroundWorker(&worker);
}

/* A database's worker, started by the launcher and maybe still running. */
typedef struct GbDatabaseWorker
{
	char		dbname[BGW_EXTRALEN];
	BackgroundWorkerHandle *handle;
} GbDatabaseWorker;

static bool
gb_worker_running(BackgroundWorkerHandle *handle)
{
	pid_t		pid;
	BgwHandleStatus status;

	if (handle == NULL)
		return false;
	status = GetBackgroundWorkerPid(handle, &pid);
	return status == BGWH_STARTED || status == BGWH_NOT_YET_STARTED;
}

/*
 * Start the worker of one database, unless the one of an earlier round still
 * runs there (a concurrent detach may wait for a long transaction).  The
 * launcher never waits for a worker: one database's long transaction
 * delays no other database's maintenance.
 */
static void
gb_launch_database(GbDatabaseWorker *w)
{
	BackgroundWorker worker;

	if (gb_worker_running(w->handle))
		return;
	if (w->handle != NULL)
		pfree(w->handle);
	w->handle = NULL;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "gb_scale");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "gb_maintenance_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "gb_scale maintenance of %s", w->dbname);
	snprintf(worker.bgw_type, BGW_MAXLEN, "gb_scale maintenance");
	strlcpy(worker.bgw_extra, w->dbname, BGW_EXTRALEN);
	worker.bgw_notify_pid = 0;
	if (!RegisterDynamicBackgroundWorker(&worker, &w->handle))
	{
		w->handle = NULL;
		ereport(LOG,
				(errmsg("gb_scale: could not start the maintenance worker of database \"%s\"", w->dbname),
				 errhint("Raise max_worker_processes.")));
	}
}

/* The worker slot of DBNAME in WORKERS, added if new. */
static GbDatabaseWorker *
gb_database_worker(List **workers, const char *dbname)
{
	ListCell   *lc;
	GbDatabaseWorker *w;

	foreach(lc, *workers)
	{
		w = (GbDatabaseWorker *) lfirst(lc);
		if (strcmp(w->dbname, dbname) == 0)
			return w;
	}
	w = MemoryContextAllocZero(TopMemoryContext, sizeof(GbDatabaseWorker));
	strlcpy(w->dbname, dbname, sizeof(w->dbname));
	*workers = lappend(*workers, w);
	return w;
}

void
gb_maintenance_launcher_main(Datum arg)
{
	List	   *workers = NIL;
	TimestampTz next_round = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	while (!ShutdownRequestPending)
	{
		long		wait_ms;
		TimestampTz now;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			next_round = 0;		/* new settings: a round at once */
		}
		now = GetCurrentTimestamp();
		if (now >= next_round && gb_maintenance_naptime > 0 && !RecoveryInProgress() &&
			gb_maintenance_databases != NULL && gb_maintenance_databases[0] != '\0')
		{
			char	   *raw = pstrdup(gb_maintenance_databases);
			List	   *names = NIL;
			ListCell   *lc;

			if (!SplitGUCList(raw, ',', &names))
				ereport(LOG,
						(errmsg("gb_scale.maintenance_databases is not a valid list: \"%s\"",
								gb_maintenance_databases)));
			foreach(lc, names)
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
				GbDatabaseWorker *w;

				if (ShutdownRequestPending)
					break;
				w = gb_database_worker(&workers, (const char *) lfirst(lc));
				gb_launch_database(w);
				MemoryContextSwitchTo(old);
			}
			list_free(names);
			pfree(raw);
		}
		if (now >= next_round)
			next_round = TimestampTzPlusMilliseconds(now, gb_maintenance_naptime > 0 ?
													 gb_maintenance_naptime * 1000L : 60000L);
		wait_ms = (long) ((next_round - now) / 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Max(wait_ms, 1),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	/* a non-zero status, so that the postmaster restarts a launcher stopped alone */
	proc_exit(1);
}

/*
 * Run one utility statement at top level, as a client's simple query would:
 * DETACH ... CONCURRENTLY commits and starts transactions of its own.  The
 * parse tree lives in CXT, which outlives those transactions.
 */
static void
gb_run_toplevel(const char *sql, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	RawStmt    *raw = linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT));
	PlannedStmt *pstmt = makeNode(PlannedStmt);
	MemoryContext save_portal = PortalContext;

	pstmt->commandType = CMD_UTILITY;
	pstmt->canSetTag = false;
	pstmt->utilityStmt = raw->stmt;
	pstmt->stmt_location = raw->stmt_location;
	pstmt->stmt_len = raw->stmt_len;

	/* DETACH ... CONCURRENTLY keeps names across its commit in PortalContext */
	PortalContext = cxt;
	PushActiveSnapshot(GetTransactionSnapshot());
	ProcessUtility(pstmt, sql, false, PROCESS_UTILITY_TOPLEVEL, NULL, NULL, None_Receiver, NULL);
	if (ActiveSnapshotSet())
		PopActiveSnapshot();
	PortalContext = save_portal;
	MemoryContextSwitchTo(old);
}

/* A function of a role's, not one of PostgreSQL's own. */
static bool
gb_is_user_function(Oid funcid, void *context)
{
	return funcid >= FirstNormalObjectId;
}

/* Whether an expression calls a role's function anywhere in it. */
static bool
gb_calls_user_function(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, gb_is_user_function, context))
		return true;
	return expression_tree_walker(node, gb_calls_user_function, context);
}

/*
 * Whether DETACH ... CONCURRENTLY of PARTITION would run a role's code.  Its
 * first transaction folds the constants of the partition's CHECK constraints
 * (calling their immutable functions) and checks the foreign keys that
 * reference the partition with queries on the referencing tables; the rest
 * of the command runs none.
 */
static bool
gb_detach_runs_user_code(Oid partition)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(partition)};
	bool		found = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT c.contype OPERATOR(pg_catalog.=) 'f', c.conbin::pg_catalog.text"
							  " FROM pg_catalog.pg_constraint c"
							  " WHERE (c.contype OPERATOR(pg_catalog.=) 'c' AND c.conrelid OPERATOR(pg_catalog.=) $1)"
							  " OR (c.contype OPERATOR(pg_catalog.=) 'f' AND c.confrelid OPERATOR(pg_catalog.=) $1)",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the constraints of %s", gb_qualified_name(partition));
	for (uint64 i = 0; i < SPI_processed && !found; i++)
	{
		bool		isnull;
		char	   *conbin;

		CHECK_FOR_INTERRUPTS();
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)))
			found = true;
		else if ((conbin = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2)) != NULL)
			found = gb_calls_user_function(stringToNode(conbin), NULL);
	}
	SPI_finish();
	return found;
}

/*
 * Retire one partition without blocking the application: DETACH ...
 * CONCURRENTLY waits for the transactions that still use the partition while
 * holding only SHARE UPDATE EXCLUSIVE, then (in a new transaction) the
 * partition is dropped or archived as its owner.  An interruption leaves the
 * partition detach-pending; the next pass finishes it.
 *
 * The detach commits and starts transactions, which PostgreSQL never does
 * inside a security-restricted operation (StartTransaction requires none), so
 * it runs as the worker, and only when it would run no role's code: the
 * constraints are read under the locks the detach itself takes (nobody can
 * add one until its first commit, after which it evaluates nothing).  A
 * partition whose CHECK constraints call a role's function, or that a
 * foreign key references, is detached and retired in one transaction as its
 * owner, restricted, as a pass outside the worker does.
 */
static void
gb_detach_concurrently(GbPendingDetach *p, MemoryContext cxt)
{
	char	   *sql;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	LockRelationOid(p->tree, ShareUpdateExclusiveLock);
	LockRelationOid(p->partition, ShareUpdateExclusiveLock);
	if (!get_rel_relispartition(p->partition) || get_partition_parent(p->partition, false) != p->tree)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
		return;
	}
	if (gb_detach_runs_user_code(p->partition))
	{
		Oid			save_userid;
		int			save_sec;
		int			nestlevel;

		gb_as_owner_begin(p->owner, &save_userid, &save_sec, &nestlevel);
		gb_retire_partition(p->tree, p->partition, p->mode, p->archive_schema, false);
		gb_as_owner_end(save_userid, save_sec, nestlevel);
		PopActiveSnapshot();
		CommitTransactionCommand();
		return;
	}
	/* committed with the detach's first transaction, until it is retired */
	gb_retiring_add(p->parent, p->partition);
	PopActiveSnapshot();
	sql = MemoryContextStrdup(cxt, psprintf("ALTER TABLE %s DETACH PARTITION %s CONCURRENTLY",
											gb_qualified_name(p->tree), gb_qualified_name(p->partition)));
	gb_run_toplevel(sql, cxt);
	CommitTransactionCommand();

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(p->partition)))
	{
		Oid			save_userid;
		int			save_sec;
		int			nestlevel;

		gb_as_owner_begin(p->owner, &save_userid, &save_sec, &nestlevel);
		gb_retire_partition(p->tree, p->partition, p->mode, p->archive_schema, true);
		gb_as_owner_end(save_userid, save_sec, nestlevel);
	}
	gb_retiring_remove(p->partition);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

static void
gb_detach_record_failure(const GbPendingDetach *p, const char *message)
{
	PG_TRY();
	{
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(p->parent)))
			gb_config_record(p->parent, GetCurrentTimestamp(), psprintf("retiring %s: %s",
																		gb_qualified_name(p->partition), message));
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

void
gb_maintenance_worker_main(Datum arg)
{
	char		dbname[BGW_EXTRALEN];
	MemoryContext cxt;
	ListCell   *lc;
	List	   *pending;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	strlcpy(dbname, MyBgworkerEntry->bgw_extra, sizeof(dbname));
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	pgstat_report_appname("gb_scale maintenance");
	/* the worker's own session: names are never looked up in user schemas */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	StartTransactionCommand();
	if (!OidIsValid(get_extension_oid("gb_scale", true)))
	{
		CommitTransactionCommand();
		proc_exit(0);
	}
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "gb_scale maintenance pass");
	gb_run_pass(InvalidOid, true, true);
	if (ActiveSnapshotSet())
		PopActiveSnapshot();
	CommitTransactionCommand();

	cxt = AllocSetContextCreate(TopMemoryContext, "gb_scale concurrent detach", ALLOCSET_DEFAULT_SIZES);
	pending = gb_pass_pending;
	foreach(lc, pending)
	{
		GbPendingDetach *p = (GbPendingDetach *) lfirst(lc);

		PG_TRY();
		{
			gb_detach_concurrently(p, cxt);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			/* never only logged: last_error, and the next pass retries */
			gb_detach_record_failure(p, edata->message);
		}
		PG_END_TRY();
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
