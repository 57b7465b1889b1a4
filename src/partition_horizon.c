/*-------------------------------------------------------------------------
 *
 * partition_horizon.c
 *	  How long a time tree stays idle: the stored answer of a pass's look at
 *	  a tree that had nothing to do (gb_scale.partition_horizon).
 *
 * Reading a tree's bounds builds its partition descriptor, which reads every
 * partition's pg_class row: in a new session (the worker's and every pg_cron
 * job's) that is most of the cost of a pass with nothing to do.  So when the
 * full look finds nothing due, it stores until when that stays true (the
 * premake horizon still covered, no partition past retention, at most a
 * day ahead), together with a fingerprint of the tree's members and of the
 * rules it was computed with.  The next look that finds the same members
 * (one index scan of pg_inherits: each attach, detach or detach-pending
 * state is a new pg_inherits row version), the same rules and a clock inside
 * [idle_from, idle_until] needs no descriptor: only the default partition,
 * which any insert may fill, is looked at.  Anything else is a full look.
 *
 * The rows are plain table rows: they follow transactions (a rolled back
 * look stores nothing), are not dumped (a restored tree has new members and
 * starts with a full look), and go with the registration (ON DELETE
 * CASCADE).  A stale row can only make a look full, never skip work.
 *
 *-------------------------------------------------------------------------
 */
#include "partition.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* A stored answer is trusted for at most this long (tzdata may change). */
#define GB_HORIZON_MAX_USECS	USECS_PER_DAY

typedef struct GbHorizon
{
	Oid			tree;			/* hash key */
	int64		rules;
	int64		members;
	TimestampTz idle_from;
	TimestampTz idle_until;
} GbHorizon;

/* The stored answers, read once per pass; NULL outside a pass. */
static HTAB *gb_horizons = NULL;

static void
gb_horizons_gone(void *arg)
{
	gb_horizons = NULL;
}

/*
 * Read every stored answer (the pass looks at every table anyway).  The
 * table lives in the pass's memory context and is forgotten with it, also
 * when an error ends the pass.
 */
void
gb_horizons_load(void)
{
	HASHCTL		hctl;
	HTAB	   *htab;
	MemoryContextCallback *gone = palloc0(sizeof(MemoryContextCallback));

	memset(&hctl, 0, sizeof(hctl));
	hctl.keysize = sizeof(Oid);
	hctl.entrysize = sizeof(GbHorizon);
	hctl.hcxt = CurrentMemoryContext;
	htab = hash_create("gb_scale partition horizons", 64, &hctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT h.tree, h.rules, h.members, h.idle_from, h.idle_until"
					" FROM gb_scale.partition_horizon h", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read gb_scale.partition_horizon");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull[5];
		Datum		d[5];
		GbHorizon  *h;
		bool		found;

		CHECK_FOR_INTERRUPTS();
		for (int c = 0; c < 5; c++)
			d[c] = SPI_getbinval(tup, desc, c + 1, &isnull[c]);
		if (isnull[0] || isnull[1] || isnull[2] || isnull[3] || isnull[4])
			continue;
		h = hash_search(htab, &d[0], HASH_ENTER, &found);
		h->rules = DatumGetInt64(d[1]);
		h->members = DatumGetInt64(d[2]);
		h->idle_from = DatumGetTimestampTz(d[3]);
		h->idle_until = DatumGetTimestampTz(d[4]);
	}
	SPI_finish();
	gone->func = gb_horizons_gone;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, gone);
	gb_horizons = htab;
}

/* The pass is over (its memory context goes with the table). */
void
gb_horizons_forget(void)
{
	gb_horizons = NULL;
}

/* The rules a stored answer depends on, hashed. */
static int64
gb_horizon_rules(const GbPartConfig *cfg, bool has_retention, const Interval *retention)
{
	char	   *rules = psprintf("%d %d " INT64_FORMAT " %d %d %d " INT64_FORMAT " %d %d %s",
								 (int) cfg->granularity, cfg->default_partition ? 1 : 0,
								 cfg->premake.time, cfg->premake.day, cfg->premake.month,
								 has_retention ? 1 : 0,
								 has_retention ? retention->time : 0,
								 has_retention ? retention->day : 0,
								 has_retention ? retention->month : 0,
								 cfg->time_zone ? cfg->time_zone : "");
	int64		result = (int64) hash_bytes_extended((const unsigned char *) rules, (int) strlen(rules), 0);

	pfree(rules);
	return result;
}

/*
 * Fingerprints this session computed, by tree, until a relcache invalidation
 * of the tree: every attach, detach (either step) and creation or drop of a
 * partition sends one for the parent, processed at the next command of the
 * transaction that made it, by every session after its commit, and again
 * in it when it rolls back.  So a warm session skips the pg_inherits scan.
 */
typedef struct GbMembersEntry
{
	Oid			tree;			/* hash key */
	int64		members;
	bool		pending;
} GbMembersEntry;

static HTAB *gb_members_cache = NULL;

static void
gb_members_invalidate(Oid relid)
{
	HASH_SEQ_STATUS status;
	GbMembersEntry *e;

	if (gb_members_cache == NULL)
		return;
	if (OidIsValid(relid))
	{
		(void) hash_search(gb_members_cache, &relid, HASH_REMOVE, NULL);
		return;
	}
	hash_seq_init(&status, gb_members_cache);
	while ((e = hash_seq_search(&status)) != NULL)
		(void) hash_search(gb_members_cache, &e->tree, HASH_REMOVE, NULL);
}

/*
 * Fingerprint of TREE's members: every pg_inherits row naming it as parent,
 * by partition and row version (xmin, which freezing keeps), summed so that
 * the order of the scan does not matter.  *PENDING: a detach is unfinished.
 */
static int64
gb_horizon_members(Oid tree, bool *pending)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	uint64		sum = 0;
	uint64		count = 0;
	GbMembersEntry *e;
	bool		found;

	if (gb_members_cache == NULL)
	{
		HASHCTL		hctl;

		memset(&hctl, 0, sizeof(hctl));
		hctl.keysize = sizeof(Oid);
		hctl.entrysize = sizeof(GbMembersEntry);
		hctl.hcxt = CacheMemoryContext;
		gb_members_cache = hash_create("gb_scale tree members", 64, &hctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		gb_register_relcache_callback(gb_members_invalidate);
	}
	e = hash_search(gb_members_cache, &tree, HASH_FIND, NULL);
	if (e != NULL)
	{
		*pending = e->pending;
		return e->members;
	}

	rel = table_open(InheritsRelationId, AccessShareLock);
	*pending = false;
	ScanKeyInit(&key, Anum_pg_inherits_inhparent, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(tree));
	scan = systable_beginscan(rel, InheritsParentIndexId, true, NULL, 1, &key);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_inherits inh = (Form_pg_inherits) GETSTRUCT(tup);
		uint64		member = ((uint64) inh->inhrelid << 32) | HeapTupleHeaderGetRawXmin(tup->t_data);

		*pending |= inh->inhdetachpending;
		sum += hash_bytes_extended((const unsigned char *) &member, sizeof(member), 0);
		count++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	sum ^= hash_bytes_extended((const unsigned char *) &count, sizeof(count), 1);
	/* an invalidation read while scanning came before the scan's snapshot */
	e = hash_search(gb_members_cache, &tree, HASH_ENTER, &found);
	e->members = (int64) sum;
	e->pending = *pending;
	return (int64) sum;
}

/* The default partition of TREE as its catalog row says, or InvalidOid. */
static Oid
gb_horizon_default(Oid tree)
{
	HeapTuple	tup = SearchSysCache1(PARTRELID, ObjectIdGetDatum(tree));
	Oid			deflt;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	deflt = ((Form_pg_partitioned_table) GETSTRUCT(tup))->partdefid;
	ReleaseSysCache(tup);
	return deflt;
}

/*
 * Whether the stored answer says TREE has nothing to do at NOW, checking
 * what can change without a new pg_inherits row: the default partition's
 * rows.  The tree is locked for reading as gb_read_tree does (never waited
 * for); false means "look in full", never "something is due".
 */
bool
gb_horizon_says_idle(const GbPartConfig *cfg, Oid tree, TimestampTz now, bool has_retention,
					 const Interval *retention)
{
	GbHorizon  *h;
	bool		pending;
	Oid			deflt;

	if (gb_horizons == NULL)
		return false;
	h = hash_search(gb_horizons, &tree, HASH_FIND, NULL);
	if (h == NULL || now < h->idle_from || now > h->idle_until ||
		h->rules != gb_horizon_rules(cfg, has_retention, retention))
		return false;
	if (!ConditionalLockRelationOid(tree, AccessShareLock))
		return false;
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(tree)) ||
		gb_horizon_members(tree, &pending) != h->members || pending)
		return false;
	deflt = gb_horizon_default(tree);
	if (cfg->default_partition && !OidIsValid(deflt))
		return false;
	return !OidIsValid(deflt) || !gb_has_rows(deflt);
}

/* Whether a tree whose partitions cover [.., covered) has work at time T. */
static bool
gb_horizon_due_at(const GbPartConfig *cfg, const GbPeriodCtx *ctx, int64 covered, int64 oldest_hi,
				  bool has_retention, const Interval *retention, TimestampTz t)
{
	int64		horizon = gb_key_from_time(ctx, gb_time_add(ctx->time_zone, t, &cfg->premake, false));
	Timestamp	period = gb_period_of_key(ctx, horizon);
	int64		cutoff;

	/* the period holding the horizon reaches past what is covered */
	if (gb_period_lower(ctx, gb_period_next(ctx, period)) > covered)
		return true;
	return has_retention && oldest_hi != PG_INT64_MAX &&
		gb_retention_cutoff(ctx, t, retention, &cutoff) && oldest_hi <= cutoff;
}

/*
 * A full look at TREE found nothing due at NOW: store until when that holds,
 * if the stored answer differs.  The premake horizon is covered by the
 * partitions that run on without a gap from the one holding now; the time
 * is searched (it only moves one way) to the minute, at most a day ahead.
 */
void
gb_horizon_note_idle(const GbPartConfig *cfg, Oid tree, TimestampTz now, bool has_retention,
					 const Interval *retention, const GbPeriodCtx *ctx, const GbTreeBounds *bounds)
{
	int64		now_key = gb_key_from_time(ctx, now);
	int64		covered = PG_INT64_MIN;
	int64		oldest_hi = PG_INT64_MAX;
	int64		rules = gb_horizon_rules(cfg, has_retention, retention);
	int64		members;
	bool		pending;
	TimestampTz lo = now;
	TimestampTz hi = now + GB_HORIZON_MAX_USECS;
	GbHorizon  *h;
	Oid			types[6] = {OIDOID, OIDOID, INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[6];
	LOCKTAG		tag;

	if (gb_horizons == NULL)
		return;
	for (int i = 0; i < bounds->nranges; i++)
	{
		const GbRange *r = &bounds->ranges[i];

		if (r->hi != PG_INT64_MAX)
			oldest_hi = Min(oldest_hi, r->hi);
		if (covered == PG_INT64_MIN && r->lo <= now_key && now_key < r->hi)
			covered = r->hi;
		else if (covered != PG_INT64_MIN && r->lo == covered)
			covered = r->hi;
	}
	if (covered == PG_INT64_MIN ||
		gb_horizon_due_at(cfg, ctx, covered, oldest_hi, has_retention, retention, now))
		return;
	if (!gb_horizon_due_at(cfg, ctx, covered, oldest_hi, has_retention, retention, hi))
		lo = hi;
	while (hi - lo > USECS_PER_MINUTE)
	{
		TimestampTz mid = lo + (hi - lo) / 2;

		CHECK_FOR_INTERRUPTS();
		if (gb_horizon_due_at(cfg, ctx, covered, oldest_hi, has_retention, retention, mid))
			hi = mid;
		else
			lo = mid;
	}
	members = gb_horizon_members(tree, &pending);
	if (pending)
		return;
	h = hash_search(gb_horizons, &tree, HASH_FIND, NULL);
	if (h != NULL && h->rules == rules && h->members == members && h->idle_until == lo &&
		h->idle_from <= now)
		return;

	/*
	 * Another pass writing this tree's row now would make the upsert wait
	 * for its transaction: leave the row to it.  A lock on (partition_config,
	 * tree, 1) until the end of the transaction, which no SQL can take.
	 */
	SET_LOCKTAG_OBJECT(tag, MyDatabaseId,
					   get_relname_relid(GB_PARTITION_CONFIG_TABLE, get_namespace_oid(GB_INTERNAL_SCHEMA, false)),
					   tree, 1);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return;
	values[0] = ObjectIdGetDatum(cfg->parent);
	values[1] = ObjectIdGetDatum(tree);
	values[2] = Int64GetDatum(rules);
	values[3] = Int64GetDatum(members);
	values[4] = TimestampTzGetDatum(now);
	values[5] = TimestampTzGetDatum(lo);
	gb_catalog_exec("INSERT INTO gb_scale.partition_horizon AS h (parent, tree, rules, members, idle_from, idle_until)"
					" VALUES ($1::pg_catalog.regclass, $2, $3, $4, $5, $6)"
					" ON CONFLICT (parent, tree) DO UPDATE SET rules = excluded.rules, members = excluded.members,"
					" idle_from = excluded.idle_from, idle_until = excluded.idle_until",
					6, types, values, NULL);
}
