/*-------------------------------------------------------------------------
 *
 * routing.c
 *	  Which shard serves a tenant: gb_scale.shard_config and
 *	  gb_scale.tenant_shard_map.
 *
 * Shards (at most 1024) sit in a per-backend cache, rebuilt after a relcache
 * invalidation of shard_config: row triggers on it (enabled ALWAYS, so that
 * logical replication's apply fires them too) send one, so every backend
 * sees a change at its next statement, because every lookup in a new
 * statement first accepts pending invalidations.
 *
 * The map, which may hold millions of tenants, is held once per database in
 * shared memory (routing_map.c): an open-addressing hash table of 16-byte
 * entries in a DSA area, at most 3/4 full, so 21 to 43 bytes an entry for
 * the whole server, whatever the number of backends.  A lookup is one probe
 * under the slot's LWLock taken shared.  The table holds committed state
 * only, and is kept in step by the transactions that change the map:
 *
 * - Row triggers on tenant_shard_map (BEFORE, enabled ALWAYS) and a
 *   TRUNCATE trigger record the tenants changed in backend-local memory;
 *   a rolled-back subtransaction's records are dropped.  Past 10,000
 *   tenants, or after TRUNCATE, the whole map is reloaded instead.
 * - While its transaction has changed a tenant, a backend looks that tenant
 *   up in the table, by its primary key, in a fresh catalog snapshot, which
 *   shows its own changes.  So do parallel workers whose leader changed
 *   the map (a flag per backend in shared memory says so): they see the
 *   leader's uncommitted rows.
 * - At pre-commit the writer reads the final placement of each tenant it
 *   changed and marks its entry "in flux" (making room for new entries: an
 *   error there still aborts cleanly); readers of an entry in flux ask the
 *   table.  At commit it writes the final placements and clears the marks,
 *   allocating nothing and reading nothing that can fail; at abort it only
 *   clears them.  Row locks make writers of one tenant commit one after the
 *   other, and they are released after the commit callbacks, so the table
 *   follows the commit order.  A commit is in shared memory before the
 *   writer's client sees it, hence before any later statement anywhere.
 * - The table is (re)loaded by the first lookup that needs it, under
 *   ShareLock on tenant_shard_map taken only if free at once: while it is
 *   held no writer is in flight, so one scan is complete.  If a writer holds
 *   the table, the lookup asks the table and a later one loads; no reader
 *   ever waits for a writer.  A transaction that changed the map never
 *   loads it (its scan would see its own uncommitted rows).
 * - Up to 64 databases of the server get a table; the others are routed
 *   from the table alone.  Transactions that changed the map cannot be
 *   prepared (their commit would run elsewhere, without the changes).
 * - A map bigger than gb_scale.routing_map_cache_rows is not held: lookups
 *   go through the primary key and a bounded per-backend cache, emptied
 *   whenever any writer ends (the slot's generation).
 * Unrelated DDL and relcache invalidations never reload the map.
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
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
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

typedef struct GbShard
{
	int64		min_tenant;
	int64		max_tenant;
	char	   *connection;		/* NULL when the row has none */
	char	   *host;			/* of connection, once endpoint_read */
	char	   *port;
	bool		endpoint_read;
	int16		shard_id;
	bool		active;
} GbShard;

static MemoryContext gb_routing_context = NULL;
static GbShard *gb_shards = NULL;	/* active shards first, by min_tenant */
static int	gb_nshards = 0;
static int	gb_nactive = 0;
static bool gb_shards_valid = false;
static Oid	gb_shard_config_relid = InvalidOid;
static Oid	gb_tenant_map_relid = InvalidOid;

/* Bumped by every invalidation, so that a load that raced one is redone. */
static uint64 gb_routing_generation = 0;

/* The statement whose invalidations were last accepted. */
static LocalTransactionId gb_seen_lxid = InvalidLocalTransactionId;
static TimestampTz gb_seen_statement = 0;

/*
 * Forget the shards.  Invalidations can arrive while a load is running (a
 * lock or a TOAST fetch accepts them), so this only marks the cache stale;
 * its memory is released by the next load.
 */
static void
gb_routing_relcache_callback(Oid relid)
{
	if (!OidIsValid(relid) || relid == gb_shard_config_relid || !OidIsValid(gb_shard_config_relid))
	{
		gb_routing_generation++;
		gb_shards_valid = false;
	}
}

void
gb_routing_init(void)
{
	gb_routing_citus_init();
	gb_register_relcache_callback(gb_routing_relcache_callback);
	gb_routing_map_init();
}

/*
 * AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW and AFTER TRUNCATE on
 * shard_config, enabled ALWAYS: every backend reloads the shards at its next
 * statement (the one that changed them, at its next command).
 */
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

Oid
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

/*
 * The attribute number of column NAME of one of the extension's tables,
 * checked to be of type TYPID: added, dropped and re-added columns never
 * shift what is read.
 */
AttrNumber
gb_directory_attnum(Relation rel, const char *name, Oid typid)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		if (att->atttypid != typid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of table %s.%s has type %s, not %s",
							name, GB_INTERNAL_SCHEMA, RelationGetRelationName(rel),
							format_type_be(att->atttypid), format_type_be(typid)),
					 errhint("Change the column back to type %s.", format_type_be(typid))));
		return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of table %s.%s does not exist",
					name, GB_INTERNAL_SCHEMA, RelationGetRelationName(rel)),
			 errhint("Add the column back, or recreate the extension.")));
	return InvalidAttrNumber;	/* keep the compiler quiet */
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

/* Read every shard; true unless an invalidation arrived meanwhile. */
static bool
gb_load_shards(void)
{
	uint64		generation;
	Relation	rel;
	TupleDesc	desc;
	Snapshot	snapshot;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			capacity = 16;
	AttrNumber	att_shard;
	AttrNumber	att_connection;
	AttrNumber	att_active;
	AttrNumber	att_min;
	AttrNumber	att_max;
	MemoryContext old;

	if (gb_routing_context == NULL)
		gb_routing_context = AllocSetContextCreate(TopMemoryContext, "gb_scale routing",
												   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(gb_routing_context);
	gb_shards = NULL;
	gb_nshards = gb_nactive = 0;
	rel = table_open(gb_directory_relid(GB_SHARD_CONFIG_TABLE), AccessShareLock);
	gb_tenant_map_relid = gb_directory_relid(GB_TENANT_MAP_TABLE);
	gb_shard_config_relid = RelationGetRelid(rel);
	generation = gb_routing_generation;
	desc = RelationGetDescr(rel);
	att_shard = gb_directory_attnum(rel, "shard_id", INT2OID);
	att_connection = gb_directory_attnum(rel, "connection_string", TEXTOID);
	att_active = gb_directory_attnum(rel, "is_active", BOOLOID);
	att_min = gb_directory_attnum(rel, "min_tenant_id", INT8OID);
	att_max = gb_directory_attnum(rel, "max_tenant_id", INT8OID);

	old = MemoryContextSwitchTo(gb_routing_context);
	gb_shards = palloc(capacity * sizeof(GbShard));
	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(rel)));
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		null_shard;
		bool		null_connection;
		bool		null_active;
		bool		null_min;
		bool		null_max;
		Datum		shard = heap_getattr(tuple, att_shard, desc, &null_shard);
		Datum		connection = heap_getattr(tuple, att_connection, desc, &null_connection);
		Datum		active = heap_getattr(tuple, att_active, desc, &null_active);
		Datum		min_tenant = heap_getattr(tuple, att_min, desc, &null_min);
		Datum		max_tenant = heap_getattr(tuple, att_max, desc, &null_max);
		GbShard    *s;

		CHECK_FOR_INTERRUPTS();
		if (null_shard)
			continue;
		if (gb_nshards == capacity)
		{
			capacity *= 2;
			gb_shards = repalloc(gb_shards, capacity * sizeof(GbShard));
		}
		s = &gb_shards[gb_nshards++];
		s->shard_id = DatumGetInt16(shard);
		s->connection = null_connection ? NULL : TextDatumGetCString(connection);
		s->host = s->port = NULL;
		s->endpoint_read = false;
		/* is_active has a default but may be NULL: only true is active */
		s->active = !null_active && DatumGetBool(active) && !null_min && !null_max;
		s->min_tenant = null_min ? 0 : DatumGetInt64(min_tenant);
		s->max_tenant = null_max ? 0 : DatumGetInt64(max_tenant);
		if (s->active)
			gb_nactive++;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	MemoryContextSwitchTo(old);
	table_close(rel, AccessShareLock);

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

/* TENANT's shard from the map or the ranges, -1 if none (no Citus). */
int16
gb_lookup_tenant(int64 tenant)
{
	int16		shard;

	gb_routing_ready();
	shard = gb_map_shard(gb_tenant_map_relid, tenant);
	if (shard < 0)
	{
		/* the map's lookup may have accepted invalidations */
		gb_routing_ready();
		shard = gb_shard_by_range(tenant);
	}
	return shard;
}

/* Whether shard S's connection string names host NODENAME and port NODEPORT. */
static bool
gb_shard_is_node(GbShard *s, const char *nodename, int nodeport)
{
	long		port;
	char	   *end;

	if (s->connection == NULL)
		return false;
	if (!s->endpoint_read)
	{
		MemoryContext old = MemoryContextSwitchTo(gb_routing_context);
		char	   *dbname;

		gb_conninfo_endpoint(s->connection, &s->host, &s->port, &dbname);
		MemoryContextSwitchTo(old);
		s->endpoint_read = true;
	}
	if (s->host == NULL || pg_strcasecmp(s->host, nodename) != 0)
		return false;
	/* a list of ports (several hosts) names no single node */
	port = strtol(s->port != NULL ? s->port : DEF_PGPORT_STR, &end, 10);
	return *end == '\0' && port == nodeport;
}

/*
 * The shard of gb_scale.shard_config that is the Citus node NODENAME:NODEPORT
 * holding TENANT (an active one first), or an error naming the node.
 */
static int16
gb_citus_node_shard(int64 tenant, const char *nodename, int nodeport)
{
	const GbShard *inactive = NULL;

	gb_routing_ready();
	for (int i = 0; i < gb_nshards; i++)
	{
		GbShard    *s = &gb_shards[i];

		CHECK_FOR_INTERRUPTS();
		if (!gb_shard_is_node(s, nodename, nodeport))
			continue;
		if (s->active)
			return s->shard_id;
		if (inactive == NULL)
			inactive = s;
	}
	if (inactive != NULL)
		return inactive->shard_id;
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("no shard in %s.%s is the Citus node %s:%d holding tenant " INT64_FORMAT,
					GB_INTERNAL_SCHEMA, GB_SHARD_CONFIG_TABLE, nodename, nodeport, tenant),
			 errdetail("With Citus, a tenant's shard is the node holding its placement, found by the host and port of the shards' connection strings."),
			 errhint("Add a row for the node (its gb_scale.shard_id, a connection string with host=%s port=%d) to %s.%s on every node.",
					 nodename, nodeport, GB_INTERNAL_SCHEMA, GB_SHARD_CONFIG_TABLE)));
	return -1;					/* keep the compiler quiet */
}

/*
 * TENANT's shard: with Citus as the engine, the node holding its placement;
 * else its map entry, else the active shard whose range holds it.
 */
static int16
gb_required_tenant_shard(int64 tenant)
{
	char	   *nodename;
	int			nodeport;
	int16		shard;

	if (gb_citus_tenant_node(tenant, &nodename, &nodeport))
		return gb_citus_node_shard(tenant, nodename, nodeport);
	shard = gb_lookup_tenant(tenant);

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
	if (s != NULL && s->connection == NULL)
		PG_RETURN_NULL();
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
	Oid			citus_table = gb_citus_tenant_relid();

	if (OidIsValid(citus_table))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot place tenant " INT64_FORMAT " with gb_tenant_assign: Citus places tenants here", tenant),
				 errdetail("Tenants are routed by the placement of table %s's shards.", get_rel_name(citus_table)),
				 errhint("Give a tenant its own shard with isolate_tenant_to_new_shard() and move shards with citus_move_shard_placement().")));

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
							  " WHERE s.shard_id OPERATOR(pg_catalog.=) $2 FOR SHARE",
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
