/*-------------------------------------------------------------------------
 *
 * routing_citus.c
 *	  Where Citus holds a tenant, when Citus is the engine.
 *
 * With the citus extension in the database and the tenants' tables
 * distributed by tenant id, Citus decides where each tenant lives, and
 * gb_shard_for_tenant answers with the node holding the tenant's shard.
 * Which tables stand for "the tenant": the colocation group of the tables
 * hash-distributed by a bigint column named tenant_id (colocated tables
 * share their shards' hash ranges and placements, so any member answers),
 * or the table named by gb_scale.citus_tenant_table.  Without such a table
 * Citus is not the engine and the directory answers as on any shard.
 *
 * The answer is read from Citus' catalogs, which Citus keeps the same on the
 * coordinator and on every worker with metadata: pg_dist_partition (the
 * distribution column and colocation group), pg_dist_shard (each shard's
 * range of hash values), pg_dist_placement (which node group holds it) and
 * pg_dist_node (that group's primary node).  The tenant id is hashed with
 * bigint's standard hash function, as Citus hashes a bigint distribution
 * column.  Each lookup reads the catalogs in a fresh snapshot and keeps
 * nothing afterwards, so a shard move, split or isolation is followed by
 * the next lookup (the moving transaction's own lookups see it at once), and
 * a rolled-back one never shows.  The catalogs are read by column name.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"
#include "citus_glue.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#define GB_CITUS_TENANT_COLUMN	"tenant_id"

char	   *gb_citus_tenant_table = NULL;

/* A Citus catalog open for reading, with the snapshot it is read in. */
typedef struct GbCitusCatalog
{
	Relation	rel;
	Snapshot	snapshot;
} GbCitusCatalog;

static Oid
gb_citus_catalog_relid(const char *name)
{
	Oid			relid = get_relname_relid(name, PG_CATALOG_NAMESPACE);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("Citus' catalog pg_catalog.%s does not exist", name),
				 errhint("gb_scale routes with Citus 11 or later; update the citus extension.")));
	return relid;
}

static GbCitusCatalog
gb_citus_catalog_open(const char *name)
{
	GbCitusCatalog cat;
	Oid			relid = gb_citus_catalog_relid(name);

	cat.rel = table_open(relid, AccessShareLock);
	cat.snapshot = RegisterSnapshot(GetCatalogSnapshot(relid));
	return cat;
}

static void
gb_citus_catalog_close(GbCitusCatalog *cat)
{
	UnregisterSnapshot(cat->snapshot);
	table_close(cat->rel, AccessShareLock);
}

/* Column NAME of one of Citus' catalogs, of type TYPID (InvalidOid: any). */
static AttrNumber
gb_citus_attnum(Relation rel, const char *name, Oid typid)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		if (OidIsValid(typid) && att->atttypid != typid)
			break;
		return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("Citus' catalog pg_catalog.%s has no column \"%s\" of type %s",
					RelationGetRelationName(rel), name,
					OidIsValid(typid) ? format_type_be(typid) : "any"),
			 errhint("This release of Citus is not supported by gb_scale's routing.")));
	return InvalidAttrNumber;	/* keep the compiler quiet */
}

/* A scan of CAT by KEY, through Citus' index INDEX when it exists. */
static SysScanDesc
gb_citus_scan(GbCitusCatalog *cat, const char *index, ScanKey key)
{
	Oid			indexid = get_relname_relid(index, PG_CATALOG_NAMESPACE);

	return systable_beginscan(cat->rel, indexid, OidIsValid(indexid), cat->snapshot, 1, key);
}

static Datum
gb_citus_getattr(GbCitusCatalog *cat, HeapTuple tuple, AttrNumber attnum, bool *isnull)
{
	return heap_getattr(tuple, attnum, RelationGetDescr(cat->rel), isnull);
}

/*
 * The column a pg_dist_partition row distributes by, or NULL when the row
 * is not of a hash-distributed table.
 */
static Var *
gb_citus_hash_column(GbCitusCatalog *cat, HeapTuple tuple, AttrNumber att_method, AttrNumber att_key)
{
	bool		isnull;
	Datum		method = gb_citus_getattr(cat, tuple, att_method, &isnull);
	Datum		key;
	Node	   *node;

	if (isnull || DatumGetChar(method) != 'h')
		return NULL;
	key = gb_citus_getattr(cat, tuple, att_key, &isnull);
	if (isnull)
		return NULL;
	node = stringToNode(TextDatumGetCString(key));
	return IsA(node, Var) ? (Var *) node : NULL;
}

/*
 * The distribution column of RELID into *COLUMN (NULL when not
 * hash-distributed); false when RELID is not a Citus table.
 */
static bool
gb_citus_partition_of(Oid relid, Var **column)
{
	GbCitusCatalog cat = gb_citus_catalog_open("pg_dist_partition");
	AttrNumber	att_relid = gb_citus_attnum(cat.rel, "logicalrelid", REGCLASSOID);
	AttrNumber	att_method = gb_citus_attnum(cat.rel, "partmethod", CHAROID);
	AttrNumber	att_key = gb_citus_attnum(cat.rel, "partkey", TEXTOID);
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	bool		found = false;

	*column = NULL;
	ScanKeyInit(&key, att_relid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = gb_citus_scan(&cat, "pg_dist_partition_logical_relid_index", &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		found = true;
		*column = gb_citus_hash_column(&cat, tuple, att_method, att_key);
	}
	systable_endscan(scan);
	gb_citus_catalog_close(&cat);
	return found;
}

/* The table named by gb_scale.citus_tenant_table, checked. */
static Oid
gb_citus_configured_table(void)
{
	char	   *raw = pstrdup(gb_citus_tenant_table);
	List	   *names;
	Oid			nsp;
	Oid			relid;
	Var		   *column;

	/* the check hook made sure of two names */
	if (!SplitIdentifierString(raw, '.', &names) || list_length(names) != 2)
		elog(ERROR, "gb_scale.citus_tenant_table is not a qualified table name");
	nsp = get_namespace_oid(linitial(names), true);
	relid = OidIsValid(nsp) ? get_relname_relid(lsecond(names), nsp) : InvalidOid;
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s named by gb_scale.citus_tenant_table does not exist",
						gb_citus_tenant_table),
				 errhint("Name a table distributed by tenant id, or reset the setting.")));
	if (!gb_citus_partition_of(relid, &column) || column == NULL || column->vartype != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s named by gb_scale.citus_tenant_table is not hash-distributed by a bigint column",
						gb_citus_tenant_table),
				 errhint("Distribute it with create_distributed_table('%s', 'tenant_id'), or name another table.",
						 gb_citus_tenant_table)));
	return relid;
}

/*
 * A table of the one colocation group of tables hash-distributed by a
 * bigint tenant_id (the lowest OID, for a stable answer); InvalidOid when
 * there is none.  Several such groups are ambiguous: an error.
 */
static Oid
gb_citus_found_table(void)
{
	GbCitusCatalog cat = gb_citus_catalog_open("pg_dist_partition");
	AttrNumber	att_relid = gb_citus_attnum(cat.rel, "logicalrelid", REGCLASSOID);
	AttrNumber	att_method = gb_citus_attnum(cat.rel, "partmethod", CHAROID);
	AttrNumber	att_key = gb_citus_attnum(cat.rel, "partkey", TEXTOID);
	AttrNumber	att_colocation = gb_citus_attnum(cat.rel, "colocationid", INT4OID);
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			found = InvalidOid;
	Oid			other = InvalidOid;
	int32		colocation = 0;

	scan = systable_beginscan(cat.rel, InvalidOid, false, cat.snapshot, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(gb_citus_getattr(&cat, tuple, att_relid, &isnull));
		Var		   *column;
		char	   *attname;
		int32		group;

		CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;
		column = gb_citus_hash_column(&cat, tuple, att_method, att_key);
		if (column == NULL || column->vartype != INT8OID)
			continue;
		attname = get_attname(relid, column->varattno, true);
		if (attname == NULL || strcmp(attname, GB_CITUS_TENANT_COLUMN) != 0)
			continue;
		group = DatumGetInt32(gb_citus_getattr(&cat, tuple, att_colocation, &isnull));
		if (isnull)
			continue;
		if (!OidIsValid(found) || group == colocation)
		{
			if (!OidIsValid(found) || relid < found)
				found = relid;
			colocation = group;
		}
		else if (!OidIsValid(other))
			other = relid;
	}
	systable_endscan(scan);
	gb_citus_catalog_close(&cat);
	if (OidIsValid(other))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tables distributed by %s are in more than one colocation group (%s and %s among them)",
						GB_CITUS_TENANT_COLUMN, get_rel_name(found), get_rel_name(other)),
				 errdetail("Citus may place a tenant's rows of the two groups on different nodes."),
				 errhint("Colocate them (alter_distributed_table(..., colocate_with => ...)), or set gb_scale.citus_tenant_table to the table whose placement routes tenants.")));
	return found;
}

/* Citus' shard of the tenant table RELID holding TENANT; 0: none. */
static int64
gb_citus_shard_of(Oid relid, int64 tenant)
{
	GbCitusCatalog cat = gb_citus_catalog_open("pg_dist_shard");
	AttrNumber	att_relid = gb_citus_attnum(cat.rel, "logicalrelid", REGCLASSOID);
	AttrNumber	att_shard = gb_citus_attnum(cat.rel, "shardid", INT8OID);
	AttrNumber	att_min = gb_citus_attnum(cat.rel, "shardminvalue", TEXTOID);
	AttrNumber	att_max = gb_citus_attnum(cat.rel, "shardmaxvalue", TEXTOID);
	int32		hash = DatumGetInt32(DirectFunctionCall1(hashint8, Int64GetDatum(tenant)));
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	int64		shard = 0;

	ScanKeyInit(&key, att_relid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = gb_citus_scan(&cat, "pg_dist_shard_logical_relid_index", &key);
	while (shard == 0 && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		null_min;
		bool		null_max;
		bool		null_shard;
		Datum		min = gb_citus_getattr(&cat, tuple, att_min, &null_min);
		Datum		max = gb_citus_getattr(&cat, tuple, att_max, &null_max);
		Datum		id = gb_citus_getattr(&cat, tuple, att_shard, &null_shard);

		CHECK_FOR_INTERRUPTS();
		if (null_min || null_max || null_shard)
			continue;
		if (pg_strtoint32(TextDatumGetCString(min)) <= hash &&
			hash <= pg_strtoint32(TextDatumGetCString(max)))
			shard = DatumGetInt64(id);
	}
	systable_endscan(scan);
	gb_citus_catalog_close(&cat);
	return shard;
}

/* The node groups holding placements of SHARD, as a list of int. */
static List *
gb_citus_groups_of(int64 shard)
{
	GbCitusCatalog cat = gb_citus_catalog_open("pg_dist_placement");
	AttrNumber	att_shard = gb_citus_attnum(cat.rel, "shardid", INT8OID);
	AttrNumber	att_group = gb_citus_attnum(cat.rel, "groupid", INT4OID);
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	List	   *groups = NIL;

	ScanKeyInit(&key, att_shard, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(shard));
	scan = gb_citus_scan(&cat, "pg_dist_placement_shardid_index", &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		group = gb_citus_getattr(&cat, tuple, att_group, &isnull);

		CHECK_FOR_INTERRUPTS();
		if (!isnull)
			groups = lappend_int(groups, DatumGetInt32(group));
	}
	systable_endscan(scan);
	gb_citus_catalog_close(&cat);
	return groups;
}

static bool
gb_citus_is_primary(Datum role)
{
	HeapTuple	tuple = SearchSysCache1(ENUMOID, role);
	bool		primary = false;

	if (HeapTupleIsValid(tuple))
	{
		primary = strcmp(NameStr(((Form_pg_enum) GETSTRUCT(tuple))->enumlabel), "primary") == 0;
		ReleaseSysCache(tuple);
	}
	return primary;
}

/*
 * The active primary node of the lowest group in GROUPS, into *NODENAME and
 * *NODEPORT; false when none is.
 */
static bool
gb_citus_node_of(List *groups, char **nodename, int *nodeport)
{
	GbCitusCatalog cat = gb_citus_catalog_open("pg_dist_node");
	AttrNumber	att_group = gb_citus_attnum(cat.rel, "groupid", INT4OID);
	AttrNumber	att_name = gb_citus_attnum(cat.rel, "nodename", TEXTOID);
	AttrNumber	att_port = gb_citus_attnum(cat.rel, "nodeport", INT4OID);
	AttrNumber	att_active = gb_citus_attnum(cat.rel, "isactive", BOOLOID);
	AttrNumber	att_role = gb_citus_attnum(cat.rel, "noderole", InvalidOid);
	SysScanDesc scan;
	HeapTuple	tuple;
	int32		best = PG_INT32_MAX;
	bool		found = false;

	scan = systable_beginscan(cat.rel, InvalidOid, false, cat.snapshot, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		null_group;
		bool		null_name;
		bool		null_port;
		bool		null_active;
		bool		null_role;
		Datum		group = gb_citus_getattr(&cat, tuple, att_group, &null_group);
		Datum		name = gb_citus_getattr(&cat, tuple, att_name, &null_name);
		Datum		port = gb_citus_getattr(&cat, tuple, att_port, &null_port);
		Datum		active = gb_citus_getattr(&cat, tuple, att_active, &null_active);
		Datum		role = gb_citus_getattr(&cat, tuple, att_role, &null_role);

		CHECK_FOR_INTERRUPTS();
		if (null_group || null_name || null_port || null_active || null_role ||
			!DatumGetBool(active) || !list_member_int(groups, DatumGetInt32(group)) ||
			DatumGetInt32(group) >= best || !gb_citus_is_primary(role))
			continue;
		best = DatumGetInt32(group);
		*nodename = TextDatumGetCString(name);
		*nodeport = DatumGetInt32(port);
		found = true;
	}
	systable_endscan(scan);
	gb_citus_catalog_close(&cat);
	return found;
}

/*
 * The distributed table whose placement routes tenants; InvalidOid when
 * Citus is not the engine here (no citus extension, or no table distributed
 * by tenant id and none configured).
 */
Oid
gb_citus_tenant_relid(void)
{
	if (!gb_citus_present())
		return InvalidOid;
	/* every lookup reads the catalogs afresh: moves show at once */
	InvalidateCatalogSnapshot();
	return gb_citus_tenant_table != NULL && gb_citus_tenant_table[0] != '\0'
		? gb_citus_configured_table() : gb_citus_found_table();
}

/*
 * Where Citus holds TENANT: its node's host and port as in pg_dist_node.
 * False when Citus is not the engine here.  An error when it is but the
 * tenant's shard has no active primary placement.
 */
bool
gb_citus_tenant_node(int64 tenant, char **nodename, int *nodeport)
{
	Oid			relid = gb_citus_tenant_relid();
	int64		shard;

	if (!OidIsValid(relid))
		return false;
	shard = gb_citus_shard_of(relid, tenant);
	if (shard == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no shard of %s holds tenant " INT64_FORMAT, get_rel_name(relid), tenant),
				 errhint("Check the shards' hash ranges in pg_dist_shard.")));
	if (!gb_citus_node_of(gb_citus_groups_of(shard), nodename, nodeport))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("shard " INT64_FORMAT " holding tenant " INT64_FORMAT " has no placement on an active primary node",
						shard, tenant),
				 errhint("See citus_shards and pg_dist_node; activate the node with citus_activate_node().")));
	return true;
}

/* A schema-qualified table name, or empty. */
static bool
gb_citus_tenant_table_check(char **newval, void **extra, GucSource source)
{
	char	   *raw;
	List	   *names;
	bool		ok;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	raw = pstrdup(*newval);
	ok = SplitIdentifierString(raw, '.', &names) && list_length(names) == 2;
	list_free(names);
	pfree(raw);
	if (!ok)
	{
		GUC_check_errdetail("It must be a schema-qualified table name, such as gb.messages.");
		return false;
	}
	return true;
}

void
gb_routing_citus_init(void)
{
	DefineCustomStringVariable("gb_scale.citus_tenant_table",
							   "Table distributed by Citus whose placement routes tenants.",
							   "Empty: the colocation group of the tables hash-distributed by a bigint tenant_id.",
							   &gb_citus_tenant_table,
							   "",
							   PGC_SUSET, 0,
							   gb_citus_tenant_table_check, NULL, NULL);
}
