/*-------------------------------------------------------------------------
 *
 * tenant_quotas.c
 *	  Quotas: the most rows a tenant may insert into a table per day and
 *	  per month (plan limits).
 *
 * gb_scale.tenant_quota holds a tenant's own quotas per table,
 * gb_scale.plan_quota those of a plan tier; a tenant's row replaces its
 * tier's row for that table as a whole, and NULL in the row in force means
 * no limit for that period.  Only tenants with a quota in force are counted.
 *
 * Counting: gb_plan_quota()/gb_tenant_quota() put an AFTER INSERT ... FOR
 * EACH STATEMENT trigger with a transition table (gb_quota_count) on a
 * table; it fires for INSERT and COPY.  On a partitioned table they put an
 * AFTER INSERT ... FOR EACH ROW trigger (gb_quota_count_tree) instead, which
 * PostgreSQL clones to every partition, those created or attached later
 * included: it counts each row any partition receives, routed through the
 * root or inserted into the partition by name (a statement trigger would
 * fire only for the table the statement names).  A quota is set on the
 * root; a partition is refused.  Rows a table already holds when it is
 * attached are not counted: a quota counts inserts.
 * The rows count for the tenant of the table's registered tenant column
 * (gb_scale.tenant_isolation, else gb_scale.partition_config), else for the
 * transaction's tenant (gb_set_tenant); rows of no tenant are not counted.
 *
 * Exactness: shared memory holds one counter per (database, table,
 * tenant) with the current day's and month's committed rows and in-flight
 * reservations.  The trigger, holding the one exclusive lock, checks every
 * tenant of the statement (committed + reserved + new <= limit) and only
 * then reserves them all; over a limit it fails with 53400 and the error
 * aborts the statement, so none of its rows are written.  Reservations are
 * kept by the backend with their subtransaction: at commit (and PREPARE,
 * counted as committed) they become committed rows, at abort or a
 * savepoint's rollback they are given back.  So committed rows never exceed
 * the limit whatever the number of sessions, and the hot path updates no
 * table row.  gb_scale.quotas = off keeps counting but refuses nothing.
 *
 * Periods are the day and the month of the statement's start in
 * gb_scale.quota_time_zone (default UTC; gb_scale.test_now, when a
 * superuser sets it, stands for the clock as in maintenance).  A counter
 * moves to a new period when a statement of a later period reaches it; a
 * statement of an earlier period counts for the counter's period.
 * Reservations of a period that has passed are dropped at commit: those rows
 * belonged to the old period.
 *
 * Without shared_preload_libraries quotas can be stored but are neither
 * counted nor enforced (like the tenant limits).  When the counter table
 * (gb_scale.quota_entries) is full, the counters of past months without
 * reservations are forgotten; if none is, an insert that needs a new counter
 * is refused rather than let through uncounted.
 *
 * Durability: the committed rows of every counter are written to
 * pg_stat/gb_scale_quotas.stat (written whole to a temporary file, fsynced
 * and renamed) by the postmaster when it exits (a stop in any mode, after
 * every backend has gone), and every gb_scale.quota_flush_interval seconds
 * by the "gb_scale quota flusher" background worker when a commit changed
 * them.  The postmaster reads the file when it creates shared memory.  So a
 * restart keeps the counts exactly; after a crash (the restart that follows
 * a backend's crash, the postmaster killed, the machine lost) the counts are
 * those of the last flush, and rows committed during at most one flush
 * interval before it are not counted: a tenant may then insert up to that
 * many rows over its quota in that period.  In-flight reservations are
 * never written (their transactions cannot survive a restart).  The file is
 * not WAL-logged: a promoted standby or a restored base backup starts from
 * whatever file it has, or zero.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "partition.h"
#include "routing.h"
#include "tenant_quotas.h"
#include "tenant_settings.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(gb_quota_count);
PG_FUNCTION_INFO_V1(gb_tenant_quota_usage);
PG_FUNCTION_INFO_V1(gb_tenant_quota);
PG_FUNCTION_INFO_V1(gb_plan_quota);

#define GB_QUOTAS_TRANCHE		"gb_scale tenant_quotas"
#define GB_TENANT_QUOTA_TABLE	"tenant_quota"
#define GB_PLAN_QUOTA_TABLE		"plan_quota"
#define GB_QUOTAS_FILE			PGSTAT_STAT_PERMANENT_DIRECTORY "/gb_scale_quotas.stat"
#define GB_QUOTAS_FILE_TMP		GB_QUOTAS_FILE ".tmp"
/* "gbq1": the file's format; another one is ignored. */
#define GB_QUOTAS_FILE_MAGIC	0x67627131

PGDLLEXPORT void gb_quota_flusher_main(Datum arg);

bool		gb_quotas_enabled = true;
static int	gb_quota_entries = 10000;
static char *gb_quota_time_zone = NULL;
static int	gb_quota_flush_interval = 10;

/* Hashed as bytes: no padding. */
typedef struct GbQuotaKey
{
	Oid			dbid;
	Oid			relid;
	int64		tenant;
} GbQuotaKey;

StaticAssertDecl(sizeof(GbQuotaKey) == 2 * sizeof(Oid) + sizeof(int64),
				 "GbQuotaKey must have no padding");

/* Under the lock. */
typedef struct GbQuotaCounter
{
	GbQuotaKey	key;			/* hash key: first */
	int32		day;			/* days since 2000-01-01, local */
	int32		month;			/* year * 12 + month - 1, local */
	int64		day_rows;		/* committed */
	int64		day_reserved;
	int64		month_rows;
	int64		month_reserved;
} GbQuotaCounter;

typedef struct GbQuotasShared
{
	LWLock	   *lock;
	uint64		changes;		/* commits that changed a counter */
	uint64		flushed;		/* changes the file holds */
} GbQuotasShared;

static GbQuotasShared *gb_quotas = NULL;
static HTAB *gb_quota_counters = NULL;

/* Rows this backend's transaction reserved. */
typedef struct GbQuotaHeld
{
	GbQuotaKey	key;
	int32		day;
	int32		month;
	int64		rows;
	SubTransactionId subid;
} GbQuotaHeld;

/* In TopMemoryContext; nheld entries in use. */
static GbQuotaHeld *gb_held = NULL;
static int	gb_nheld = 0;
static int	gb_held_capacity = 0;

/* A tenant's quota for one table; 0 means unlimited. */
typedef struct GbQuota
{
	int64		per_day;
	int64		per_month;
} GbQuota;

static void gb_quotas_load(void);
static void gb_quotas_shmem_exit(int code, Datum arg);
static void gb_quota_relcache_callback(Oid relid);

/* One tenant's rows in the statement. */
typedef struct GbStatementRows
{
	int64		tenant;			/* hash key */
	int64		rows;			/* to reserve */
	int64		earlier;		/* reserved by the statement before */
	GbQuota		quota;
	bool		limited;
} GbStatementRows;

/*
 * The counters' committed rows, as written to the file: a header (magic,
 * count) and COUNT counters with no reservations.
 */
static GbQuotaCounter *
gb_quotas_snapshot(int *count, uint64 *changes)
{
	HASH_SEQ_STATUS seq;
	GbQuotaCounter *c;
	GbQuotaCounter *copy;
	int			n = 0;

	/* the exiting postmaster has no PGPROC, and no backend is left */
	if (IsUnderPostmaster)
		LWLockAcquire(gb_quotas->lock, LW_SHARED);
	copy = palloc(Max(hash_get_num_entries(gb_quota_counters), 1) * sizeof(GbQuotaCounter));
	hash_seq_init(&seq, gb_quota_counters);
	while ((c = hash_seq_search(&seq)) != NULL)
	{
		if (c->day_rows == 0 && c->month_rows == 0)
			continue;
		copy[n] = *c;
		copy[n].day_reserved = copy[n].month_reserved = 0;
		n++;
	}
	*changes = gb_quotas->changes;
	if (IsUnderPostmaster)
		LWLockRelease(gb_quotas->lock);
	*count = n;
	return copy;
}

/* Write the file; failures are logged (ELEVEL), the old file stays. */
static bool
gb_quotas_write(int elevel)
{
	int			count;
	uint64		changes;
	GbQuotaCounter *counters = gb_quotas_snapshot(&count, &changes);
	uint32		header[2] = {GB_QUOTAS_FILE_MAGIC, (uint32) count};
	FILE	   *file = AllocateFile(GB_QUOTAS_FILE_TMP, PG_BINARY_W);
	bool		ok;

	if (file == NULL)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", GB_QUOTAS_FILE_TMP)));
		pfree(counters);
		return false;
	}
	ok = fwrite(header, sizeof(header), 1, file) == 1 &&
		(count == 0 || fwrite(counters, sizeof(GbQuotaCounter), count, file) == (size_t) count);
	ok = (FreeFile(file) == 0) && ok;
	pfree(counters);
	if (!ok)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", GB_QUOTAS_FILE_TMP)));
		unlink(GB_QUOTAS_FILE_TMP);
		return false;
	}
	/* fsyncs the file and the directory: the rename survives a crash */
	if (durable_rename(GB_QUOTAS_FILE_TMP, GB_QUOTAS_FILE, elevel) != 0)
		return false;
	if (IsUnderPostmaster)
	{
		LWLockAcquire(gb_quotas->lock, LW_EXCLUSIVE);
		gb_quotas->flushed = Max(gb_quotas->flushed, changes);
		LWLockRelease(gb_quotas->lock);
	}
	return true;
}

/* Read the file into the empty counters; a damaged file is ignored. */
static void
gb_quotas_load(void)
{
	FILE	   *file = AllocateFile(GB_QUOTAS_FILE, PG_BINARY_R);
	uint32		header[2];
	GbQuotaCounter c;

	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", GB_QUOTAS_FILE)));
		return;
	}
	if (fread(header, sizeof(header), 1, file) != 1 || header[0] != GB_QUOTAS_FILE_MAGIC)
	{
		ereport(LOG,
				(errmsg("ignoring file \"%s\": not a gb_scale quota file of this version", GB_QUOTAS_FILE)));
		FreeFile(file);
		return;
	}
	/* the count read is never trusted beyond the table's size */
	for (uint32 i = 0; i < header[1] && i < (uint32) gb_quota_entries; i++)
	{
		GbQuotaCounter *entry;
		bool		found;

		if (fread(&c, sizeof(c), 1, file) != 1)
		{
			ereport(LOG,
					(errmsg("file \"%s\" is truncated; the row quota counters read so far are kept",
							GB_QUOTAS_FILE)));
			break;
		}
		if (c.day_rows < 0 || c.month_rows < 0)
			continue;
		entry = hash_search(gb_quota_counters, &c.key, HASH_ENTER_NULL, &found);
		if (entry == NULL)
			break;
		*entry = c;
		entry->day_reserved = entry->month_reserved = 0;
	}
	FreeFile(file);
}

/* The postmaster's exit: written unless shared memory is being reset after a crash. */
static void
gb_quotas_shmem_exit(int code, Datum arg)
{
	if (code != 0 || gb_quotas == NULL)
		return;
	(void) gb_quotas_write(LOG);
}

/*
 * The flusher: writes the file every gb_scale.quota_flush_interval seconds
 * when a commit changed a counter since the last write.
 */
void
gb_quota_flusher_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	while (!ShutdownRequestPending)
	{
		bool		dirty;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		LWLockAcquire(gb_quotas->lock, LW_SHARED);
		dirty = gb_quotas->changes != gb_quotas->flushed;
		LWLockRelease(gb_quotas->lock);
		if (dirty)
			(void) gb_quotas_write(LOG);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 gb_quota_flush_interval * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	/* the postmaster's exit writes the last counts */
	proc_exit(1);
}

void
gb_tenant_quotas_shmem_request(void)
{
	RequestAddinShmemSpace(add_size(MAXALIGN(sizeof(GbQuotasShared)),
									hash_estimate_size(gb_quota_entries, sizeof(GbQuotaCounter))));
	RequestNamedLWLockTranche(GB_QUOTAS_TRANCHE, 1);
}

void
gb_tenant_quotas_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gb_quotas = ShmemInitStruct("gb_scale tenant_quotas", sizeof(GbQuotasShared), &found);
	if (!found)
		gb_quotas->lock = &(GetNamedLWLockTranche(GB_QUOTAS_TRANCHE))->lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(GbQuotaKey);
	info.entrysize = sizeof(GbQuotaCounter);
	gb_quota_counters = ShmemInitHash("gb_scale tenant_quotas counters",
									  gb_quota_entries, gb_quota_entries,
									  &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
	/* the postmaster (and a standalone backend) loads and, at exit, writes */
	if (!IsUnderPostmaster && !found)
	{
		gb_quotas->changes = gb_quotas->flushed = 0;
		gb_quotas_load();
		on_shmem_exit(gb_quotas_shmem_exit, (Datum) 0);
	}
}

/*
 * Reservations: committed at commit and PREPARE, given back at abort and at
 * a savepoint's rollback.  Never raises: it runs during commit and abort.
 */
static void
gb_quotas_settle(bool commit, SubTransactionId only)
{
	int			kept = 0;

	if (gb_nheld == 0)
		return;
	if (gb_quotas != NULL)
		LWLockAcquire(gb_quotas->lock, LW_EXCLUSIVE);
	for (int i = 0; i < gb_nheld; i++)
	{
		GbQuotaHeld *h = &gb_held[i];
		GbQuotaCounter *c;

		if (only != InvalidSubTransactionId && h->subid != only)
		{
			gb_held[kept++] = *h;
			continue;
		}
		if (gb_quotas == NULL)
			continue;
		c = hash_search(gb_quota_counters, &h->key, HASH_FIND, NULL);
		if (c == NULL)
			continue;
		/* a period that has passed took its reservations with it */
		if (c->day == h->day)
		{
			c->day_reserved -= h->rows;
			if (commit)
				c->day_rows += h->rows;
		}
		if (c->month == h->month)
		{
			c->month_reserved -= h->rows;
			if (commit)
				c->month_rows += h->rows;
		}
		if (commit)
			gb_quotas->changes++;
	}
	if (gb_quotas != NULL)
		LWLockRelease(gb_quotas->lock);
	gb_nheld = kept;
}

static void
gb_quotas_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			gb_quotas_settle(true, InvalidSubTransactionId);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			gb_quotas_settle(false, InvalidSubTransactionId);
			break;
		default:
			break;
	}
}

static void
gb_quotas_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		gb_quotas_settle(false, mySubid);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < gb_nheld; i++)
			if (gb_held[i].subid == mySubid)
				gb_held[i].subid = parentSubid;
	}
}

/* A zone PostgreSQL knows by name: periods follow its calendar. */
static bool
gb_quota_time_zone_check(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && (*newval)[0] != '\0' && pg_tzset(*newval) != NULL)
		return true;
	GUC_check_errdetail("Time zone \"%s\" is not known.", *newval == NULL ? "" : *newval);
	return false;
}

void
gb_tenant_quotas_init(void)
{
	DefineCustomBoolVariable("gb_scale.quotas",
							 "Whether inserts over a tenant's row quota are refused.",
							 "Off: rows are still counted, nothing is refused.",
							 &gb_quotas_enabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("gb_scale.quota_time_zone",
							   "Time zone whose days and months the row quotas count.",
							   "Instance-wide: set it in postgresql.conf and reload.",
							   &gb_quota_time_zone,
							   "UTC",
							   PGC_SIGHUP, 0,
							   gb_quota_time_zone_check, NULL, NULL);
	DefineCustomIntVariable("gb_scale.quota_flush_interval",
							"Seconds between writes of the row quota counters to disk.",
							"After an immediate stop or a crash, rows committed in the last interval are not counted.",
							&gb_quota_flush_interval,
							10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	RegisterXactCallback(gb_quotas_xact_callback, NULL);
	RegisterSubXactCallback(gb_quotas_subxact_callback, NULL);
	gb_register_relcache_callback(gb_quota_relcache_callback);

	if (process_shared_preload_libraries_in_progress)
	{
		BackgroundWorker worker;

		/*
		 * A PGC_POSTMASTER setting can only be defined while the postmaster
		 * loads the library: a later LOAD or CREATE EXTENSION would fail.
		 */
		DefineCustomIntVariable("gb_scale.quota_entries",
								"Most (database, table, tenant) row quota counters in shared memory.",
								"Inserts that need a counter when all are taken are refused.",
								&gb_quota_entries,
								10000, 100, 10000000,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);

		memset(&worker, 0, sizeof(worker));
		/* never connects; the flag makes the postmaster stop it with the backends */
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_ConsistentState;
		worker.bgw_restart_time = 10;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "gb_scale");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "gb_quota_flusher_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "gb_scale quota flusher");
		snprintf(worker.bgw_type, BGW_MAXLEN, "gb_scale quota flusher");
		RegisterBackgroundWorker(&worker);
	}
}

/* The day and month of T in gb_scale.quota_time_zone. */
static void
gb_quota_periods(TimestampTz t, int32 *day, int32 *month)
{
	/* the zone of the setting's last value: looked up once per change */
	static char zone_name[TZ_STRLEN_MAX + 1] = "";
	static pg_tz *zone = NULL;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (zone == NULL || strcmp(zone_name, gb_quota_time_zone) != 0)
	{
		pg_tz	   *found = pg_tzset(gb_quota_time_zone);

		/* the setting's check made sure of it */
		if (found == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time zone \"%s\" is not known", gb_quota_time_zone),
					 errhint("Set gb_scale.quota_time_zone to a time zone name.")));
		zone = found;
		strlcpy(zone_name, gb_quota_time_zone, sizeof(zone_name));
	}
	if (timestamp2tm(t, &tz, &tm, &fsec, NULL, zone) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range for the row quotas")));
	*day = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
	*month = tm.tm_year * 12 + tm.tm_mon - 1;
}

/* First day of a period, as an ISO date whatever the DateStyle. */
static char *
gb_period_text(int32 day, int32 month, bool monthly)
{
	int			year;
	int			mon;
	int			mday;

	if (monthly)
	{
		year = month / 12;
		mon = month % 12 + 1;
		mday = 1;
	}
	else
		j2date(day + POSTGRES_EPOCH_JDATE, &year, &mon, &mday);
	return psprintf("%04d-%02d-%02d", year, mon, mday);
}

/* The quotas' clock: gb_scale.test_now when a superuser set it for tests. */
static TimestampTz
gb_quota_now(bool statement)
{
	if (gb_test_now != NULL && gb_test_now[0] != '\0')
		return gb_maintenance_now();
	return statement ? GetCurrentStatementStartTimestamp() : GetCurrentTimestamp();
}

/* A quota column: NULL or not positive (never stored so) is no limit. */
static int64
gb_quota_value(HeapTuple tuple, TupleDesc desc, AttrNumber attnum)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, desc, &isnull);

	if (isnull || DatumGetInt64(value) <= 0)
		return 0;
	return DatumGetInt64(value);
}

/*
 * The row of a quota table for (KEY, RELID): tenant_quota by tenant,
 * plan_quota by tier.  False when there is none.
 */
static bool
gb_scan_quota(bool by_tenant, int64 key, Oid relid, GbQuota *quota)
{
	Relation	rel = table_open(gb_directory_relid(by_tenant ? GB_TENANT_QUOTA_TABLE : GB_PLAN_QUOTA_TABLE),
								 AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	att_tbl = gb_directory_attnum(rel, "tbl", REGCLASSOID);
	AttrNumber	att_day = gb_directory_attnum(rel, "rows_per_day", INT8OID);
	AttrNumber	att_month = gb_directory_attnum(rel, "rows_per_month", INT8OID);
	AttrNumber	att_key;
	Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(rel)));
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	if (by_tenant)
	{
		att_key = gb_directory_attnum(rel, "tenant_id", INT8OID);
		ScanKeyInit(&keys[0], att_key, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(key));
	}
	else
	{
		att_key = get_attnum(RelationGetRelid(rel), "tier");
		if (att_key == InvalidAttrNumber ||
			getBaseType(get_atttype(RelationGetRelid(rel), att_key)) != INT2OID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("table %s.%s has no column \"tier\" of type gb_plan_tier",
							GB_INTERNAL_SCHEMA, GB_PLAN_QUOTA_TABLE),
					 errhint("Recreate the extension.")));
		ScanKeyInit(&keys[0], att_key, BTEqualStrategyNumber, F_INT2EQ, Int16GetDatum((int16) key));
	}
	ScanKeyInit(&keys[1], att_tbl, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	/* no index: the primary key's column order is the table's, not the keys' */
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 2, keys);
	if (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		quota->per_day = gb_quota_value(tuple, desc, att_day);
		quota->per_month = gb_quota_value(tuple, desc, att_month);
		found = true;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The lookups of the insert path, cached per backend: a tenant's quota on a
 * table (from tenant_quota, tenant_plan and plan_quota), a table's
 * registered tenant column, and what the clone of a partitioned table's row
 * trigger on a partition counts for.  Triggers on those tables and on
 * tenant_isolation and partition_config send a relcache invalidation
 * (tenant_settings_changed), processed like a catalog change: in the
 * changing transaction at its next command, elsewhere after the commit, in
 * the backend that rolled back at once.  An invalidation of a cached table
 * itself (a renamed or dropped column) counts too.  Pending invalidations
 * are accepted once per statement; the callback only marks the cache stale,
 * and the next lookup starts over (also past GB_QUOTA_CACHE_ENTRIES).
 */
#define GB_QUOTA_CACHE_ENTRIES	10000

typedef struct GbQuotaCacheKey
{
	Oid			relid;
	int64		tenant;
} GbQuotaCacheKey;

typedef struct GbQuotaCacheEntry
{
	GbQuotaCacheKey key;		/* hash key: first */
	GbQuota		quota;
	bool		limited;
} GbQuotaCacheEntry;

/* What a partitioned table's row trigger, on one partition, counts. */
typedef struct GbRowPartition
{
	Oid			tgoid;			/* hash key: the clone on this partition */
	Oid			quota_relid;
	AttrNumber	attnum;
	Oid			typid;
} GbRowPartition;

typedef struct GbColumnCacheEntry
{
	Oid			target;			/* hash key */
	Oid			registered;
	AttrNumber	attnum;
} GbColumnCacheEntry;

static MemoryContext gb_quota_cache_cxt = NULL;
static HTAB *gb_quota_cache = NULL;
static HTAB *gb_column_cache = NULL;
static HTAB *gb_row_partitions = NULL;	/* clone's trigger OID -> GbRowPartition */
static bool gb_quota_cache_valid = false;
static Oid	gb_quota_cache_relids[5];
static LocalTransactionId gb_quota_seen_lxid = InvalidLocalTransactionId;
static TimestampTz gb_quota_seen_statement = 0;

static void
gb_quota_relcache_callback(Oid relid)
{
	bool		stale = !OidIsValid(relid);

	if (!gb_quota_cache_valid)
		return;
	for (int i = 0; i < (int) lengthof(gb_quota_cache_relids); i++)
		stale |= relid == gb_quota_cache_relids[i];
	if (!stale && gb_column_cache != NULL)
		stale = hash_search(gb_column_cache, &relid, HASH_FIND, NULL) != NULL;
	if (stale)
		gb_quota_cache_valid = false;
}

/* Accept other sessions' changes once per statement; start over when stale. */
static void
gb_quota_cache_ready(void)
{
	HASHCTL		ctl;

	if (MyProc->lxid != gb_quota_seen_lxid ||
		GetCurrentStatementStartTimestamp() != gb_quota_seen_statement)
	{
		AcceptInvalidationMessages();
		gb_quota_seen_lxid = MyProc->lxid;
		gb_quota_seen_statement = GetCurrentStatementStartTimestamp();
	}
	if (gb_quota_cache_valid &&
		hash_get_num_entries(gb_quota_cache) + hash_get_num_entries(gb_column_cache) +
		hash_get_num_entries(gb_row_partitions) < GB_QUOTA_CACHE_ENTRIES)
		return;
	if (gb_quota_cache_cxt == NULL)
		gb_quota_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "gb_scale quota lookups",
												   ALLOCSET_SMALL_SIZES);
	gb_quota_cache = gb_column_cache = gb_row_partitions = NULL;
	MemoryContextReset(gb_quota_cache_cxt);
	gb_quota_cache_relids[0] = gb_directory_relid(GB_TENANT_QUOTA_TABLE);
	gb_quota_cache_relids[1] = gb_directory_relid(GB_PLAN_QUOTA_TABLE);
	gb_quota_cache_relids[2] = gb_directory_relid("tenant_plan");
	gb_quota_cache_relids[3] = gb_directory_relid(GB_TENANT_ISOLATION_TABLE);
	gb_quota_cache_relids[4] = gb_directory_relid("partition_config");
	memset(&ctl, 0, sizeof(ctl));
	ctl.hcxt = gb_quota_cache_cxt;
	ctl.keysize = sizeof(GbQuotaCacheKey);
	ctl.entrysize = sizeof(GbQuotaCacheEntry);
	gb_quota_cache = hash_create("gb_scale quota lookups", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(GbColumnCacheEntry);
	gb_column_cache = hash_create("gb_scale quota tenant columns", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(GbRowPartition);
	gb_row_partitions = hash_create("gb_scale quota partitions", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	gb_quota_cache_valid = true;
}

/* TENANT's quota on RELID, from the tables; false when none is in force. */
static bool
gb_quota_load(int64 tenant, Oid relid, GbQuota *quota)
{
	if (!gb_scan_quota(true, tenant, relid, quota))
	{
		int			tier = gb_tenant_tier_of(tenant);

		if (tier == GB_NO_TIER || !gb_scan_quota(false, tier, relid, quota))
			return false;
	}
	return quota->per_day > 0 || quota->per_month > 0;
}

/* TENANT's quota on RELID; false when none is in force. */
static bool
gb_quota_of(int64 tenant, Oid relid, GbQuota *quota)
{
	GbQuotaCacheKey key;
	GbQuotaCacheEntry *entry;
	bool		limited;

	gb_quota_cache_ready();
	memset(&key, 0, sizeof(key));
	key.relid = relid;
	key.tenant = tenant;
	entry = hash_search(gb_quota_cache, &key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		*quota = entry->quota;
		return entry->limited;
	}
	memset(quota, 0, sizeof(*quota));
	limited = gb_quota_load(tenant, relid, quota);
	/* an invalidation during the load: used once, not kept */
	if (gb_quota_cache_valid)
	{
		entry = hash_search(gb_quota_cache, &key, HASH_ENTER, NULL);
		entry->quota = *quota;
		entry->limited = limited;
	}
	return limited;
}

/*
 * The tenant column REGISTERED has registered (isolation first, then the
 * partition manager), as a column of TARGET (the table itself or one of its
 * partitions, whose column numbers may differ), or InvalidAttrNumber.
 */
static AttrNumber
gb_quota_tenant_attnum_load(Oid registered, Relation target)
{
	static const char *const tables[2] = {GB_TENANT_ISOLATION_TABLE, "partition_config"};
	static const char *const keys[2] = {"tbl", "parent"};
	Oid			relid = RelationGetRelid(target);

	for (int i = 0; i < 2; i++)
	{
		Relation	rel = table_open(gb_directory_relid(tables[i]), AccessShareLock);
		AttrNumber	att_key = gb_directory_attnum(rel, keys[i], REGCLASSOID);
		AttrNumber	att_column = gb_directory_attnum(rel, "tenant_column", NAMEOID);
		Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(rel)));
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tuple;
		AttrNumber	attnum = InvalidAttrNumber;

		ScanKeyInit(&key, att_key, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(registered));
		scan = systable_beginscan(rel, InvalidOid, false, snapshot, 1, &key);
		if (HeapTupleIsValid(tuple = systable_getnext(scan)))
		{
			bool		isnull;
			Datum		column = heap_getattr(tuple, att_column, RelationGetDescr(rel), &isnull);

			if (!isnull)
			{
				attnum = get_attnum(relid, NameStr(*DatumGetName(column)));
				if (attnum == InvalidAttrNumber || attnum < 0)
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_COLUMN),
							 errmsg("tenant column \"%s\" of table %s does not exist",
									NameStr(*DatumGetName(column)), RelationGetRelationName(target)),
							 errhint("Fix the table's row in %s.%s.", GB_INTERNAL_SCHEMA, tables[i])));
			}
		}
		systable_endscan(scan);
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
		if (attnum != InvalidAttrNumber)
			return attnum;
	}
	return InvalidAttrNumber;
}

/* gb_quota_tenant_attnum_load(), cached. */
static AttrNumber
gb_quota_tenant_attnum(Oid registered, Relation target)
{
	Oid			relid = RelationGetRelid(target);
	GbColumnCacheEntry *entry;
	AttrNumber	attnum;

	gb_quota_cache_ready();
	entry = hash_search(gb_column_cache, &relid, HASH_FIND, NULL);
	if (entry != NULL && entry->registered == registered)
		return entry->attnum;
	attnum = gb_quota_tenant_attnum_load(registered, target);
	if (gb_quota_cache_valid)
	{
		entry = hash_search(gb_column_cache, &relid, HASH_ENTER, NULL);
		entry->registered = registered;
		entry->attnum = attnum;
	}
	return attnum;
}

static int64
gb_tenant_datum(Datum value, Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

/* The type of REL's tenant column ATTNUM: an integer type. */
static Oid
gb_quota_tenant_type(Relation rel, AttrNumber attnum)
{
	Oid			typid = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;

	if (typid != INT8OID && typid != INT4OID && typid != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant column of table %s is not of type bigint, integer or smallint",
						RelationGetRelationName(rel)),
				 errhint("Register a tenant column holding tenant ids.")));
	return typid;
}

/* The statement's rows, per tenant of REL's tenant column ATTNUM. */
static HTAB *
gb_statement_tenants(Relation rel, AttrNumber attnum, Tuplestorestate *rows)
{
	HASHCTL		ctl;
	HTAB	   *tenants;
	GbStatementRows *entry;
	Oid			typid = gb_quota_tenant_type(rel, attnum);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);

	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(GbStatementRows);
	ctl.hcxt = CurrentMemoryContext;
	tenants = hash_create("gb_scale quota statement", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		bool		isnull;
		Datum		value = slot_getattr(slot, attnum, &isnull);
		int64		tenant;
		bool		found;

		CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;
		tenant = gb_tenant_datum(value, typid);
		entry = hash_search(tenants, &tenant, HASH_ENTER, &found);
		if (!found)
			entry->rows = 0;
		entry->rows++;
	}
	ExecDropSingleTupleTableSlot(slot);
	return tenants;
}

/*
 * With every counter taken: forget those whose month has passed, with no
 * reservation left (they can no longer refuse anything).  Under the
 * exclusive lock; returns how many went.
 */
static int
gb_quotas_evict_past(int32 month)
{
	HASH_SEQ_STATUS seq;
	GbQuotaCounter *c;
	int			evicted = 0;

	hash_seq_init(&seq, gb_quota_counters);
	while ((c = hash_seq_search(&seq)) != NULL)
	{
		/* removing the element just returned is allowed during a scan */
		if (c->month < month && c->day_reserved == 0 && c->month_reserved == 0)
		{
			(void) hash_search(gb_quota_counters, &c->key, HASH_REMOVE, NULL);
			evicted++;
		}
	}
	return evicted;
}

/* Room for N more reservations, made before any counter changes. */
static void
gb_held_reserve(int n)
{
	if (gb_nheld + n <= gb_held_capacity)
		return;
	gb_held_capacity = Max(gb_held_capacity * 2, gb_nheld + n + 8);
	if (gb_held == NULL)
		gb_held = MemoryContextAlloc(TopMemoryContext, gb_held_capacity * sizeof(GbQuotaHeld));
	else
		gb_held = repalloc(gb_held, gb_held_capacity * sizeof(GbQuotaHeld));
}

static void
gb_held_add(const GbQuotaKey *key, int32 day, int32 month, int64 rows)
{
	SubTransactionId subid = GetCurrentSubTransactionId();

	for (int i = gb_nheld - 1; i >= 0; i--)
	{
		GbQuotaHeld *h = &gb_held[i];

		if (h->subid == subid && h->day == day && h->month == month &&
			memcmp(&h->key, key, sizeof(GbQuotaKey)) == 0)
		{
			h->rows += rows;
			return;
		}
	}
	gb_held[gb_nheld].key = *key;
	gb_held[gb_nheld].day = day;
	gb_held[gb_nheld].month = month;
	gb_held[gb_nheld].rows = rows;
	gb_held[gb_nheld].subid = subid;
	gb_nheld++;
}

/* What is refused, found under the lock and reported after it. */
typedef struct GbQuotaRefusal
{
	bool		full;
	int64		tenant;
	bool		monthly;
	int64		limit;
	int64		used;
	int64		rows;
	int32		day;
	int32		month;
} GbQuotaRefusal;

/*
 * Check and reserve the rows of the NENTRIES limited tenants in ENTRIES for
 * the quotas of table QUOTA_RELID, all or none: over a quota (or with no
 * counter free) it raises 53400 and reserves nothing.
 */
static void
gb_quota_reserve(Oid quota_relid, GbStatementRows **entries, int nentries,
				 int32 day, int32 month)
{
	GbQuotaRefusal refusal = {0};
	bool		refused = false;

	gb_held_reserve(nentries);
	LWLockAcquire(gb_quotas->lock, LW_EXCLUSIVE);
	/* first pass: find or make every counter and check; second: reserve */
	for (int pass = 0; pass < 2 && !refused; pass++)
	{
		for (int i = 0; i < nentries && !refused; i++)
		{
			GbStatementRows *entry = entries[i];
			GbQuotaKey	key = {.dbid = MyDatabaseId,.relid = quota_relid,.tenant = entry->tenant};
			GbQuotaCounter *c;
			bool		found;

			c = hash_search(gb_quota_counters, &key, pass == 0 ? HASH_ENTER_NULL : HASH_FIND, &found);
			if (c == NULL && pass == 0 && gb_quotas_evict_past(month) > 0)
				c = hash_search(gb_quota_counters, &key, HASH_ENTER_NULL, &found);
			if (c == NULL)
			{
				refusal.full = true;
				refusal.tenant = entry->tenant;
				refused = true;
				break;
			}
			if (pass == 0 && !found)
			{
				c->day = day;
				c->month = month;
				c->day_rows = c->day_reserved = c->month_rows = c->month_reserved = 0;
			}
			if (pass == 0 && day > c->day)
			{
				c->day = day;
				c->day_rows = c->day_reserved = 0;
			}
			if (pass == 0 && month > c->month)
			{
				c->month = month;
				c->month_rows = c->month_reserved = 0;
			}
			if (pass == 0 && gb_quotas_enabled)
			{
				int64		day_used = c->day_rows + c->day_reserved;
				int64		month_used = c->month_rows + c->month_reserved;

				/* the statement's earlier rows are reported as its own */
				if (entry->quota.per_day > 0 && day_used + entry->rows > entry->quota.per_day)
				{
					refusal = (GbQuotaRefusal) {false, entry->tenant, false, entry->quota.per_day,
					day_used - entry->earlier, entry->earlier + entry->rows, c->day, c->month};
					refused = true;
				}
				else if (entry->quota.per_month > 0 && month_used + entry->rows > entry->quota.per_month)
				{
					refusal = (GbQuotaRefusal) {false, entry->tenant, true, entry->quota.per_month,
					month_used - entry->earlier, entry->earlier + entry->rows, c->day, c->month};
					refused = true;
				}
			}
			if (pass == 1)
			{
				c->day_reserved += entry->rows;
				c->month_reserved += entry->rows;
				gb_held_add(&key, c->day, c->month, entry->rows);
			}
		}
	}
	LWLockRelease(gb_quotas->lock);

	if (refused && refusal.full)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no row quota counter is free for tenant " INT64_FORMAT " on table %s",
						refusal.tenant, gb_qualified_name(quota_relid)),
				 errdetail("All %d counters of gb_scale.quota_entries are taken.", gb_quota_entries),
				 errhint("Raise gb_scale.quota_entries and restart the server.")));
	if (refused)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("tenant " INT64_FORMAT " is over its quota of rows per %s in table %s",
						refusal.tenant, refusal.monthly ? "month" : "day",
						gb_qualified_name(quota_relid)),
				 errdetail("The quota is " INT64_FORMAT " rows per %s; " INT64_FORMAT
						   " are inserted or being inserted in the %s starting %s (%s), and this statement adds "
						   INT64_FORMAT ".",
						   refusal.limit, refusal.monthly ? "month" : "day", refusal.used,
						   refusal.monthly ? "month" : "day",
						   gb_period_text(refusal.day, refusal.month, refusal.monthly),
						   gb_quota_time_zone, refusal.rows),
				 errhint("Insert fewer rows, wait for the next %s, or raise the quota with gb_tenant_quota() or gb_plan_quota().",
						 refusal.monthly ? "month" : "day")));
}

/*
 * A partitioned table's tree: the row trigger gb_quota_count_tree, which
 * PostgreSQL clones to every partition (present, created later by any route,
 * or attached), fires for each row a partition receives, whether it was
 * routed through the root or inserted into the partition by name.  What a
 * row needs is looked up once: per clone (the table of the quota, the
 * tenant column: in the backend's cache of quota lookups), per statement
 * (the period), and per statement and tenant (its quota, and the rows the
 * statement reserved before, for the refusal's message).  A statement's
 * identity is its transaction and command id.
 */
typedef struct GbRowTenantKey
{
	Oid			quota_relid;
	int64		tenant;
} GbRowTenantKey;

typedef struct GbRowTenant
{
	GbRowTenantKey key;			/* hash key: first */
	LocalTransactionId lxid;	/* the statement of the rows below */
	CommandId	cid;
	GbStatementRows rows;
} GbRowTenant;

/* The statement's tenants, kept across statements (entries say whose). */
#define GB_ROW_TENANTS_MAX	10000

static MemoryContext gb_row_cxt = NULL;
static HTAB *gb_row_tenants = NULL;
static LocalTransactionId gb_row_lxid = InvalidLocalTransactionId;
static CommandId gb_row_cid = InvalidCommandId;
static int32 gb_row_day;
static int32 gb_row_month;

/* The table of the trigger TGOID's origin: the clones' parents up to the root's. */
static Oid
gb_trigger_origin_relid(Oid tgoid)
{
	Relation	triggers = table_open(TriggerRelationId, AccessShareLock);
	Oid			relid = InvalidOid;

	/* a partition tree is never deeper than this; a loop would be a damaged catalog */
	for (int depth = 0; OidIsValid(tgoid) && depth < 1000; depth++)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tuple;

		CHECK_FOR_INTERRUPTS();
		ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(tgoid));
		scan = systable_beginscan(triggers, TriggerOidIndexId, true, NULL, 1, &key);
		tuple = systable_getnext(scan);
		tgoid = InvalidOid;
		if (HeapTupleIsValid(tuple))
		{
			relid = ((Form_pg_trigger) GETSTRUCT(tuple))->tgrelid;
			tgoid = ((Form_pg_trigger) GETSTRUCT(tuple))->tgparentid;
		}
		systable_endscan(scan);
	}
	table_close(triggers, AccessShareLock);
	return relid;
}

/* A new statement: its period; the tenants' table starts over when large. */
static void
gb_row_statement_start(void)
{
	HASHCTL		ctl;

	if (gb_row_tenants != NULL && gb_row_lxid == MyProc->lxid && gb_row_cid == GetCurrentCommandId(false))
		return;
	gb_quota_periods(gb_quota_now(true), &gb_row_day, &gb_row_month);
	gb_row_lxid = MyProc->lxid;
	gb_row_cid = GetCurrentCommandId(false);
	if (gb_row_tenants != NULL && hash_get_num_entries(gb_row_tenants) < GB_ROW_TENANTS_MAX)
		return;
	if (gb_row_cxt == NULL)
		gb_row_cxt = AllocSetContextCreate(TopMemoryContext, "gb_scale quota rows", ALLOCSET_SMALL_SIZES);
	gb_row_tenants = NULL;
	MemoryContextReset(gb_row_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.hcxt = gb_row_cxt;
	ctl.keysize = sizeof(GbRowTenantKey);
	ctl.entrysize = sizeof(GbRowTenant);
	gb_row_tenants = hash_create("gb_scale quota row tenants", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* What the clone TGOID on REL counts, cached: the table of the quota, the tenant column. */
static void
gb_row_partition(Oid tgoid, Relation rel, GbRowPartition *out)
{
	GbRowPartition *part;

	gb_quota_cache_ready();
	part = hash_search(gb_row_partitions, &tgoid, HASH_FIND, NULL);
	if (part != NULL)
	{
		*out = *part;
		return;
	}
	out->tgoid = tgoid;
	out->quota_relid = gb_trigger_origin_relid(tgoid);
	out->attnum = OidIsValid(out->quota_relid) ?
		gb_quota_tenant_attnum(out->quota_relid, rel) : InvalidAttrNumber;
	out->typid = out->attnum == InvalidAttrNumber ? InvalidOid :
		gb_quota_tenant_type(rel, out->attnum);
	/* an invalidation during the lookups: used once, not kept */
	if (gb_quota_cache_valid)
	{
		part = hash_search(gb_row_partitions, &tgoid, HASH_ENTER, NULL);
		*part = *out;
	}
}

/* One row received by a partition (or the root) of a tree with quotas. */
static void
gb_quota_count_row(TriggerData *trigdata)
{
	GbRowPartition part;
	GbRowTenant *tenant;
	GbRowTenantKey key;
	GbStatementRows *entry;
	bool		found;

	gb_row_partition(trigdata->tg_trigger->tgoid, trigdata->tg_relation, &part);
	if (!OidIsValid(part.quota_relid))
		return;
	gb_row_statement_start();
	memset(&key, 0, sizeof(key));
	key.quota_relid = part.quota_relid;
	if (part.attnum == InvalidAttrNumber)
	{
		if (!gb_transaction_tenant(&key.tenant))
			return;
	}
	else
	{
		bool		isnull;
		Datum		value = slot_getattr(trigdata->tg_trigslot, part.attnum, &isnull);

		if (isnull)
			return;
		key.tenant = gb_tenant_datum(value, part.typid);
	}
	tenant = hash_search(gb_row_tenants, &key, HASH_ENTER, &found);
	entry = &tenant->rows;
	if (!found || tenant->lxid != gb_row_lxid || tenant->cid != gb_row_cid)
	{
		/* marked as of no statement until the lookup is done */
		tenant->lxid = InvalidLocalTransactionId;
		entry->tenant = key.tenant;
		entry->earlier = 0;
		entry->limited = gb_quota_of(key.tenant, key.quota_relid, &entry->quota);
		tenant->lxid = gb_row_lxid;
		tenant->cid = gb_row_cid;
	}
	if (!entry->limited)
		return;
	entry->rows = 1;
	gb_quota_reserve(key.quota_relid, &entry, 1, gb_row_day, gb_row_month);
	entry->earlier++;
}

/*
 * The trigger on a table with quotas, put there by gb_plan_quota() and
 * gb_tenant_quota(): AFTER INSERT ... REFERENCING NEW TABLE ... FOR EACH
 * STATEMENT on a table (INSERT and COPY: checks and reserves the statement's
 * rows), AFTER INSERT ... FOR EACH ROW on a partitioned table (each row of
 * its tree).
 */
Datum
gb_quota_count(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	GbStatementRows *entry;
	GbStatementRows one;
	GbStatementRows **limited;
	AttrNumber	attnum;
	int			nlimited = 0;
	int32		day;
	int32		month;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		(TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) && trigdata->tg_newtable == NULL) ||
		(TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) &&
		 (trigdata->tg_newtable != NULL || !trigdata->tg_relation->rd_rel->relispartition)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s.quota_count() must be called as an AFTER INSERT statement trigger with a new table, or as a row trigger of a partitioned table",
						GB_INTERNAL_SCHEMA),
				 errhint("Set quotas with gb_tenant_quota() or gb_plan_quota(), which create the trigger.")));
	/* without the preload there are no counters: stored, not enforced */
	if (gb_quotas == NULL)
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
	{
		gb_quota_count_row(trigdata);
		return PointerGetDatum(NULL);
	}
	if (tuplestore_tuple_count(trigdata->tg_newtable) == 0)
		return PointerGetDatum(NULL);
	rel = trigdata->tg_relation;
	attnum = gb_quota_tenant_attnum(RelationGetRelid(rel), rel);
	if (attnum == InvalidAttrNumber)
	{
		/* the transaction's tenant: the common case, with no hash table */
		if (!gb_transaction_tenant(&one.tenant))
			return PointerGetDatum(NULL);
		one.rows = tuplestore_tuple_count(trigdata->tg_newtable);
		one.earlier = 0;
		one.limited = gb_quota_of(one.tenant, RelationGetRelid(rel), &one.quota);
		if (!one.limited)
			return PointerGetDatum(NULL);
		entry = &one;
		limited = &entry;
		nlimited = 1;
	}
	else
	{
		HTAB	   *tenants = gb_statement_tenants(rel, attnum, trigdata->tg_newtable);
		HASH_SEQ_STATUS seq;

		limited = palloc(Max(hash_get_num_entries(tenants), 1) * sizeof(GbStatementRows *));
		hash_seq_init(&seq, tenants);
		while ((entry = hash_seq_search(&seq)) != NULL)
		{
			entry->earlier = 0;
			entry->limited = gb_quota_of(entry->tenant, RelationGetRelid(rel), &entry->quota);
			if (entry->limited)
				limited[nlimited++] = entry;
		}
		if (nlimited == 0)
			return PointerGetDatum(NULL);
	}
	gb_quota_periods(gb_quota_now(true), &day, &month);
	gb_quota_reserve(RelationGetRelid(rel), limited, nlimited, day, month);
	return PointerGetDatum(NULL);
}

/*
 * The counters of this database: committed rows and reservations of the
 * counter's current day and month (zero when that period has passed).
 */
Datum
gb_tenant_quota_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	GbQuotaCounter *c;
	int32		day;
	int32		month;

	InitMaterializedSRF(fcinfo, 0);
	if (gb_quotas == NULL)
		return (Datum) 0;
	gb_quota_periods(gb_quota_now(false), &day, &month);
	LWLockAcquire(gb_quotas->lock, LW_SHARED);
	hash_seq_init(&seq, gb_quota_counters);
	while ((c = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[7];
		bool		nulls[7] = {0};
		bool		today = c->day >= day;
		bool		this_month = c->month >= month;

		if (c->key.dbid != MyDatabaseId)
			continue;
		values[0] = Int64GetDatum(c->key.tenant);
		values[1] = ObjectIdGetDatum(c->key.relid);
		values[2] = DateADTGetDatum(today ? c->day : day);
		values[3] = Int64GetDatum(today ? c->day_rows : 0);
		values[4] = Int64GetDatum(today ? c->day_reserved : 0);
		values[5] = Int64GetDatum(this_month ? c->month_rows : 0);
		values[6] = Int64GetDatum(this_month ? c->month_reserved : 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(gb_quotas->lock);
	return (Datum) 0;
}

/*
 * The API: the rows are written as the tables' owner (gb_catalog_exec); the
 * trigger is created as the caller, who must be allowed to create triggers
 * on the table.
 */

/* A quota argument: NULL or at least 1. */
static Datum
gb_quota_arg(FunctionCallInfo fcinfo, int argno, const char *name, char *null)
{
	int64		value;

	*null = PG_ARGISNULL(argno) ? 'n' : ' ';
	if (PG_ARGISNULL(argno))
		return (Datum) 0;
	value = PG_GETARG_INT64(argno);
	if (value < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least 1, not " INT64_FORMAT, name, value),
				 errhint("NULL means no limit for that period.")));
	return Int64GetDatum(value);
}

/*
 * Put the counting trigger on RELID: a statement trigger on a table, a row
 * trigger on a partitioned table (PostgreSQL clones it to every partition,
 * present and future).  A partition is refused: a quota on it would not see
 * the rows routed to it from its root.
 */
static void
gb_quota_prepare_table(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;
	char		relkind;
	bool		is_partition;
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		exists;
	const char *trigger;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table with OID %u does not exist", relid),
				 errhint("Name an existing table.")));
	form = (Form_pg_class) GETSTRUCT(tuple);
	relkind = form->relkind;
	is_partition = form->relispartition;
	ReleaseSysCache(tuple);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table", gb_qualified_name(relid)),
				 errhint("Row quotas apply to tables and partitioned tables.")));
	if (is_partition)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table %s is a partition", gb_qualified_name(relid)),
				 errhint("Set the quota on the root of its partitioned table: it covers the whole tree.")));
	/* named apart: a table with its own quota can still become a partition */
	trigger = relkind == RELKIND_PARTITIONED_TABLE ? "gb_quota_count_tree" : "gb_quota_count";
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* not read-only: see a trigger this statement created (another call, a sync) */
	if (SPI_execute_with_args(psprintf("SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) $1"
									   " AND t.tgname OPERATOR(pg_catalog.=) '%s'", trigger),
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_trigger");
	exists = SPI_processed > 0;
	SPI_finish();
	if (!exists && relkind == RELKIND_PARTITIONED_TABLE)
		gb_exec_sql(psprintf("CREATE TRIGGER gb_quota_count_tree AFTER INSERT ON %s"
							 " FOR EACH ROW EXECUTE FUNCTION %s.quota_count()",
							 gb_qualified_name(relid), GB_INTERNAL_SCHEMA));
	else if (!exists)
		gb_exec_sql(psprintf("CREATE TRIGGER gb_quota_count AFTER INSERT ON %s"
							 " REFERENCING NEW TABLE AS gb_quota_rows"
							 " FOR EACH STATEMENT EXECUTE FUNCTION %s.quota_count()",
							 gb_qualified_name(relid), GB_INTERNAL_SCHEMA));
}

/* Store KEY's row for the table of argument 1, or remove it when both quotas are NULL. */
static void
gb_store_quota(FunctionCallInfo fcinfo, const char *table, const char *key_column,
			   Oid key_type, Datum key)
{
	Oid			types[4] = {key_type, OIDOID, INT8OID, INT8OID};
	Datum		values[4];
	char		nulls[5] = "    ";

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tbl must not be NULL"),
				 errhint("Name the table of the quota.")));
	values[0] = key;
	values[1] = PG_GETARG_DATUM(1);
	values[2] = gb_quota_arg(fcinfo, 2, "rows_per_day", &nulls[2]);
	values[3] = gb_quota_arg(fcinfo, 3, "rows_per_month", &nulls[3]);
	if (nulls[2] == 'n' && nulls[3] == 'n')
	{
		gb_catalog_exec(psprintf("DELETE FROM gb_scale.%s q WHERE q.%s OPERATOR(pg_catalog.=) $1"
								 " AND q.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $2",
								 table, key_column),
						2, types, values, NULL);
		return;
	}
	gb_quota_prepare_table(DatumGetObjectId(values[1]));
	gb_catalog_exec(psprintf("INSERT INTO gb_scale.%s AS q (%s, tbl, rows_per_day, rows_per_month)"
							 " VALUES ($1, $2::pg_catalog.regclass, $3, $4) ON CONFLICT (%s, tbl) DO UPDATE"
							 " SET rows_per_day = excluded.rows_per_day,"
							 " rows_per_month = excluded.rows_per_month,"
							 " updated_at = pg_catalog.now()",
							 table, key_column, key_column),
					4, types, values, nulls);
	if (gb_quotas == NULL)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("row quotas are stored but not enforced: gb_scale is not in shared_preload_libraries"),
				 errhint("Add gb_scale to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* gb_tenant_quota(tenant_id bigint, tbl regclass, rows_per_day bigint, rows_per_month bigint) */
Datum
gb_tenant_quota(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant_id must not be NULL"),
				 errhint("Name the tenant whose quota changes.")));
	gb_store_quota(fcinfo, GB_TENANT_QUOTA_TABLE, "tenant_id", INT8OID, PG_GETARG_DATUM(0));
	PG_RETURN_VOID();
}

/* gb_plan_quota(tier integer, tbl regclass, rows_per_day bigint, rows_per_month bigint) */
Datum
gb_plan_quota(PG_FUNCTION_ARGS)
{
	int16		tier = gb_tier_arg(fcinfo, 0);

	gb_store_quota(fcinfo, GB_PLAN_QUOTA_TABLE, "tier", INT2OID, Int16GetDatum(tier));
	PG_RETURN_VOID();
}

/*
 * gb_shard_sync: make gb_scale.plan_quota equal to the source shard's rows,
 * sent as text[] columns (tier, schema, table, rows_per_day, rows_per_month,
 * updated_at; rows with both quotas NULL are not sent: gb_plan_quota()
 * removes such a row).  A regclass means nothing in another database, so
 * the source sends each table's schema and name and they are resolved here;
 * a table this shard lacks fails the sync, naming it, rather than dropping
 * the quota.  gb_plan_quotas_check() checks every row as gb_plan_quota()
 * checks it and, like it, puts the counting trigger on the table as the
 * caller, before the sync writes anything else; gb_plan_quotas_sync() then
 * writes only the rows that differ, as the tables' owner.
 */

typedef struct GbQuotaSyncContext
{
	const char *tier;
	const char *table;
} GbQuotaSyncContext;

static void
gb_quota_sync_errcontext(void *arg)
{
	GbQuotaSyncContext *ctx = (GbQuotaSyncContext *) arg;

	errcontext("quota of plan tier %s on table %s on the source shard", ctx->tier, ctx->table);
}

/* A quota sent by the source: NULL or at least 1, as gb_quota_arg() wants. */
static void
gb_quota_sync_value(const char *value, const char *name)
{
	int64		quota = pg_strtoint64(value);

	if (quota < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least 1, not " INT64_FORMAT, name, quota),
				 errhint("NULL means no limit for that period.")));
}

/* The local table the source names SCHEMA.NAME, locked against a concurrent drop. */
static Oid
gb_quota_sync_table(const char *schema, const char *name, const char *qualified)
{
	Oid			relid = RangeVarGetRelid(makeRangeVar(pstrdup(schema), pstrdup(name), -1),
										 AccessShareLock, true);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s of a plan tier quota on the source shard does not exist on this shard", qualified),
				 errhint("Create the table here under the same schema and name, or remove the quota on the source shard (gb_plan_quota with both quotas NULL), then sync again. Nothing was synced.")));
	if (isAnyTempNamespace(get_rel_namespace(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("table %s of a plan tier quota on the source shard is a temporary table", qualified),
				 errhint("Remove the quota on the source shard, then sync again. Nothing was synced.")));
	return relid;
}

#define GB_PLAN_QUOTA_SOURCE \
	"ROWS FROM (pg_catalog.unnest($1::pg_catalog.int2[]), pg_catalog.unnest($2::pg_catalog.oid[])," \
	" pg_catalog.unnest($3::pg_catalog.int8[]), pg_catalog.unnest($4::pg_catalog.int8[])," \
	" pg_catalog.unnest($5::pg_catalog.timestamptz[]))" \
	" AS s(tier, tbl, rows_per_day, rows_per_month, updated_at)"

/* The local tables of the source's rows, as an oid[] for gb_plan_quotas_sync(). */
Datum
gb_plan_quotas_check(const Datum *cols)
{
	Datum	   *values[6];
	bool	   *nulls[6];
	int			n = gb_plan_sync_columns(cols, 6, values, nulls, GB_PLAN_QUOTA_TABLE);
	Datum	   *relids = palloc(Max(n, 1) * sizeof(Datum));
	ErrorContextCallback errcallback;
	GbQuotaSyncContext ctx;

	errcallback.callback = gb_quota_sync_errcontext;
	errcallback.arg = &ctx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		/* NOT NULL on the source; both quotas NULL are filtered there */
		if (nulls[0][i] || nulls[1][i] || nulls[2][i] || (nulls[3][i] && nulls[4][i]))
			elog(ERROR, "gb_scale.plan_quota of the source shard sent a row without a tier, a table or a quota");
		ctx.tier = TextDatumGetCString(values[0][i]);
		ctx.table = quote_qualified_identifier(TextDatumGetCString(values[1][i]),
											   TextDatumGetCString(values[2][i]));
		(void) gb_plan_sync_tier(ctx.tier);
		if (!nulls[3][i])
			gb_quota_sync_value(TextDatumGetCString(values[3][i]), "rows_per_day");
		if (!nulls[4][i])
			gb_quota_sync_value(TextDatumGetCString(values[4][i]), "rows_per_month");
		relids[i] = ObjectIdGetDatum(gb_quota_sync_table(TextDatumGetCString(values[1][i]),
														 TextDatumGetCString(values[2][i]), ctx.table));
		gb_quota_prepare_table(DatumGetObjectId(relids[i]));
	}
	error_context_stack = errcallback.previous;
	return PointerGetDatum(construct_array(relids, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
}

void
gb_plan_quotas_sync(const Datum *cols, Datum relids)
{
	Oid			types[5] = {TEXTARRAYOID, OIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[5];
	uint64		removed;
	uint64		changed;
	uint64		added;

	args[0] = cols[0];
	args[1] = relids;
	args[2] = cols[3];
	args[3] = cols[4];
	args[4] = cols[5];
	/* gb_plan_quota() calls wait for the sync, and it for them */
	(void) gb_plan_sync_exec("LOCK TABLE gb_scale.plan_quota IN SHARE ROW EXCLUSIVE MODE",
							 0, NULL, NULL, SPI_OK_UTILITY);
	removed = gb_plan_sync_exec("DELETE FROM gb_scale.plan_quota p"
								" WHERE NOT EXISTS (SELECT FROM " GB_PLAN_QUOTA_SOURCE
								" WHERE s.tier OPERATOR(pg_catalog.=) p.tier"
								" AND s.tbl OPERATOR(pg_catalog.=) p.tbl::pg_catalog.oid)",
								5, types, args, SPI_OK_DELETE);
	changed = gb_plan_sync_exec("UPDATE gb_scale.plan_quota p"
								" SET rows_per_day = s.rows_per_day, rows_per_month = s.rows_per_month,"
								" updated_at = s.updated_at"
								" FROM " GB_PLAN_QUOTA_SOURCE
								" WHERE s.tier OPERATOR(pg_catalog.=) p.tier"
								" AND s.tbl OPERATOR(pg_catalog.=) p.tbl::pg_catalog.oid"
								" AND (p.rows_per_day, p.rows_per_month)"
								" IS DISTINCT FROM (s.rows_per_day, s.rows_per_month)",
								5, types, args, SPI_OK_UPDATE);
	added = gb_plan_sync_exec("INSERT INTO gb_scale.plan_quota (tier, tbl, rows_per_day, rows_per_month, updated_at)"
							  " SELECT s.tier, s.tbl::pg_catalog.regclass, s.rows_per_day, s.rows_per_month, s.updated_at"
							  " FROM " GB_PLAN_QUOTA_SOURCE
							  " WHERE NOT EXISTS (SELECT FROM gb_scale.plan_quota p"
							  " WHERE s.tier OPERATOR(pg_catalog.=) p.tier"
							  " AND s.tbl OPERATOR(pg_catalog.=) p.tbl::pg_catalog.oid)",
							  5, types, args, SPI_OK_INSERT);
	if (removed + changed + added > 0)
		ereport(NOTICE,
				(errmsg("plan tier quotas synced: " UINT64_FORMAT " added, " UINT64_FORMAT " changed, "
						UINT64_FORMAT " removed", added, changed, removed)));
}
