/*-------------------------------------------------------------------------
 *
 * tenant.c
 *	  Tenant isolation by row level security, and a tenant's export and
 *	  purge.
 *
 * The tenant of a transaction is the setting gb_scale.tenant_id, set LOCAL
 * by gb_set_tenant() only: its check hook refuses every other way of setting
 * it (SET, set_config(), ALTER ROLE/DATABASE, function SET clauses), so who
 * may switch tenants is whoever may execute gb_set_tenant().  Being a
 * setting, it ends with the transaction (safe behind PgBouncer in
 * transaction mode), is undone by a rolled back subtransaction, and reaches
 * parallel workers.
 *
 * The policies compare the tenant column with gb_scale.current_tenant()
 * (reads: no tenant, no rows) or gb_scale.tenant_for_write() (writes: no
 * tenant, an error), both schema-qualified, with OPERATOR(pg_catalog.=).
 * The isolated table itself has FORCE ROW LEVEL SECURITY; its partitions
 * have policies for other roles, and the owner's maintenance (which moves
 * rows between partitions) reaches them directly.
 *
 * On Citus the policies are DDL that Citus sends to the shards, and the
 * tenant is forwarded to every node a distributed query of the transaction
 * uses, as Citus forwards SET LOCAL (gb_tenant_forward); each node checks
 * the role the query runs as before it takes the tenant
 * (gb_forwarded_tenant), since any client may call that function.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "citus_glue.h"
#include "partition.h"
#include "routing.h"
#include "tenant_guard.h"
#include "tenant_limits.h"
#include "tenant_settings.h"

#include <errno.h>
#include <stdlib.h>

#include "access/parallel.h"
#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_type.h"
#include "catalog/partition.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "parser/parse_func.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(gb_set_tenant);
PG_FUNCTION_INFO_V1(gb_forwarded_tenant);
PG_FUNCTION_INFO_V1(gb_current_tenant);
PG_FUNCTION_INFO_V1(gb_tenant_for_write);
PG_FUNCTION_INFO_V1(gb_tenant_isolation_enable);
PG_FUNCTION_INFO_V1(gb_tenant_isolation_disable);
PG_FUNCTION_INFO_V1(gb_tenant_export);
PG_FUNCTION_INFO_V1(gb_tenant_purge);

static char *gb_tenant_setting = NULL;
static bool gb_tenant_is_set = false;
static int64 gb_tenant_value = 0;

/* True only while gb_set_tenant() or the extension itself sets the tenant. */
static bool gb_tenant_switching = false;

static bool
gb_tenant_check(char **newval, void **extra, GucSource source)
{
	int64		value;
	int64	   *parsed;
	char	   *end;

	if (**newval == '\0')
		return true;			/* clearing the tenant is always allowed */
	if (!gb_tenant_switching && !InitializingParallelWorker && source != PGC_S_DEFAULT)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("gb_scale.tenant_id can only be set by gb_set_tenant()");
		GUC_check_errhint("Call SELECT gb_set_tenant(tenant_id) in the transaction.");
		return false;
	}
	errno = 0;
	value = strtoi64(*newval, &end, 10);
	if (errno != 0 || end == *newval || *end != '\0')
	{
		GUC_check_errmsg("invalid tenant id \"%s\"", *newval);
		return false;
	}
	/* a GUC's "extra" is malloc'd: the GUC machinery frees it */
	parsed = malloc(sizeof(int64));
	if (parsed == NULL)
		return false;
	*parsed = value;
	*extra = parsed;
	return true;
}

static void
gb_tenant_assign_hook(const char *newval, void *extra)
{
	gb_tenant_is_set = extra != NULL;
	gb_tenant_value = extra ? *(int64 *) extra : 0;
}

void
gb_tenant_init(void)
{
	DefineCustomStringVariable("gb_scale.tenant_id",
							   "Tenant whose rows this transaction sees in tables with gb_scale tenant isolation.",
							   "Set by gb_set_tenant() only, for the current transaction.",
							   &gb_tenant_setting,
							   "",
							   PGC_USERSET, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   gb_tenant_check, gb_tenant_assign_hook, NULL);
}

static void
gb_set_tenant_setting(const char *value, GucAction action)
{
	gb_tenant_switching = true;
	PG_TRY();
	{
		(void) set_config_option("gb_scale.tenant_id", value, PGC_USERSET, PGC_S_SESSION,
								 action, true, 0, false);
	}
	PG_FINALLY();
	{
		gb_tenant_switching = false;
	}
	PG_END_TRY();
}

/*
 * Citus: the nodes this transaction's distributed queries run on get the
 * transaction's tenant too, now and for the rest of the (sub)transaction,
 * through gb_scale.forwarded_tenant() (below), which each node checks.
 * Without Citus nothing is sent.
 */
static void
gb_tenant_forward(void)
{
	if (!gb_citus_present())
		return;
	gb_citus_forward_command(gb_tenant_is_set ?
							 psprintf("SELECT gb_scale.forwarded_tenant(" INT64_FORMAT ")", gb_tenant_value) :
							 "SELECT gb_scale.forwarded_tenant(NULL)");
}

/*
 * The tenant for one piece of the extension's own work, until _end, which
 * also undoes any other setting changed meanwhile.
 */
int
gb_tenant_scope_begin(int64 tenant_id)
{
	int			nestlevel = NewGUCNestLevel();

	gb_set_tenant_setting(psprintf(INT64_FORMAT, tenant_id), GUC_ACTION_SAVE);
	gb_tenant_forward();
	return nestlevel;
}

void
gb_tenant_scope_end(int nestlevel)
{
	AtEOXact_GUC(false, nestlevel);
	gb_tenant_forward();
}

Datum
gb_set_tenant(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		gb_refuse_tenant_with_holdable_cursor();
	gb_set_tenant_setting(PG_ARGISNULL(0) ? "" : psprintf(INT64_FORMAT, PG_GETARG_INT64(0)),
						  GUC_ACTION_LOCAL);
	gb_tenant_forward();
	gb_tenant_settings_apply(!PG_ARGISNULL(0), PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0));
	gb_tenant_limits_enter(!PG_ARGISNULL(0), PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0));
	PG_RETURN_VOID();
}

/* The schema gb_scale was created in (where gb_set_tenant is). */
static Oid
gb_extension_schema(void)
{
	Relation	extensions = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			schema = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("gb_scale"));
	scan = systable_beginscan(extensions, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		schema = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(extensions, AccessShareLock);
	if (!OidIsValid(schema))
		elog(ERROR, "extension gb_scale is not installed in this database");
	return schema;
}

/*
 * Whether ROLE may take a tenant forwarded by another node: it may call
 * gb_set_tenant() here, or it could read every tenant's rows on this node
 * anyway (gb_scale_admin, a superuser, or the owner of every relation that
 * has the isolation's policies: the export and purge of those tables run as
 * their owner).
 */
static bool
gb_may_take_forwarded_tenant(Oid role)
{
	Oid			argtypes[1] = {INT8OID};
	Oid			setter;
	Relation	policies;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		owns_all = true;

	setter = LookupFuncName(list_make2(makeString(get_namespace_name(gb_extension_schema())),
									   makeString("gb_set_tenant")),
							1, argtypes, true);
	if ((OidIsValid(setter) && pg_proc_aclcheck(setter, role, ACL_EXECUTE) == ACLCHECK_OK) || gb_is_admin(role))
		return true;
	policies = table_open(PolicyRelationId, AccessShareLock);
	scan = systable_beginscan(policies, InvalidOid, false, NULL, 0, NULL);
	while (owns_all && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_policy pol = (Form_pg_policy) GETSTRUCT(tuple);

		CHECK_FOR_INTERRUPTS();
		if (strcmp(NameStr(pol->polname), "gb_tenant_read") == 0)
			owns_all = has_privs_of_role(role, gb_rel_owner(pol->polrelid));
	}
	systable_endscan(scan);
	table_close(policies, AccessShareLock);
	return owns_all;
}

/*
 * The tenant of the transaction that runs this one: sent by the node whose
 * distributed query runs here (gb_tenant_forward), on Citus' connection, as
 * that query's role.  Set like gb_set_tenant() sets it, without the
 * tenant's settings and limits (those apply where the client is).
 */
Datum
gb_forwarded_tenant(PG_FUNCTION_ARGS)
{
	if (!gb_citus_present())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("gb_scale.forwarded_tenant() is only for Citus"),
				 errdetail("The extension citus does not exist in database \"%s\".", get_database_name(MyDatabaseId)),
				 errhint("Call SELECT gb_set_tenant(tenant_id) to set the transaction's tenant.")));
	if (!PG_ARGISNULL(0) && !gb_may_take_forwarded_tenant(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set tenant " INT64_FORMAT " for role \"%s\"",
						PG_GETARG_INT64(0), GetUserNameFromId(GetUserId(), false)),
				 errdetail("A forwarded tenant is taken from a role that may execute gb_set_tenant(bigint) on this node, or that may read every tenant's rows here."),
				 errhint("GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) to the role on every node, e.g. with run_command_on_all_nodes().")));
	if (!PG_ARGISNULL(0))
		gb_refuse_tenant_with_holdable_cursor();
	gb_set_tenant_setting(PG_ARGISNULL(0) ? "" : psprintf(INT64_FORMAT, PG_GETARG_INT64(0)),
						  GUC_ACTION_LOCAL);
	PG_RETURN_VOID();
}

/* The transaction's tenant, for C callers. */
bool
gb_transaction_tenant(int64 *tenant)
{
	*tenant = gb_tenant_value;
	return gb_tenant_is_set;
}

Datum
gb_current_tenant(PG_FUNCTION_ARGS)
{
	if (!gb_tenant_is_set)
		PG_RETURN_NULL();
	PG_RETURN_INT64(gb_tenant_value);
}

/* The tenant of the running transaction, for C callers; false when none is set. */
bool
gb_tenant_current(int64 *tenant)
{
	if (gb_tenant_is_set)
		*tenant = gb_tenant_value;
	return gb_tenant_is_set;
}

Datum
gb_tenant_for_write(PG_FUNCTION_ARGS)
{
	if (!gb_tenant_is_set)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant is set for this transaction"),
				 errdetail("Table %s isolates its rows by tenant; writing to it needs the transaction's tenant.",
						   text_to_cstring(PG_GETARG_TEXT_PP(0))),
				 errhint("Call SELECT gb_set_tenant(tenant_id) earlier in the same transaction.")));
	PG_RETURN_INT64(gb_tenant_value);
}

/* Whether ROLEID has the rights of gb_scale_admin (superusers do). */
bool
gb_is_admin(Oid roleid)
{
	Oid			admin = get_role_oid(GB_ADMIN_ROLE, true);

	return superuser_arg(roleid) || (OidIsValid(admin) && has_privs_of_role(roleid, admin));
}

static void
gb_isolation_drop_policies(const char *qname)
{
	static const char *const names[] = {"gb_tenant_read", "gb_tenant_insert", "gb_tenant_update", "gb_tenant_delete"};

	for (int i = 0; i < (int) lengthof(names); i++)
		gb_exec_sql(psprintf("DROP POLICY IF EXISTS %s ON %s", names[i], qname));
}

/*
 * Give one relation the policies; FORCE only on the isolated table itself.
 * One statement at a time: Citus sends each to the shards of a distributed
 * table, and takes no string of several.  The write policies name the
 * isolated table by text, not regclass, so that the same expression holds
 * on every node (and on every shard) whatever the table's OID there.
 */
static void
gb_isolation_exec(const char *qname, const char *column, Oid isolated, bool force)
{
	const char *qcol = quote_identifier(column);
	char	   *reading = psprintf("%s OPERATOR(pg_catalog.=) gb_scale.current_tenant()", qcol);
	char	   *writing = psprintf("%s OPERATOR(pg_catalog.=) gb_scale.tenant_for_write(%s)",
								   qcol, quote_literal_cstr(gb_qualified_name(isolated)));

	gb_exec_sql(psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", qname));
	if (force)
		gb_exec_sql(psprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", qname));
	gb_isolation_drop_policies(qname);
	gb_exec_sql(psprintf("CREATE POLICY gb_tenant_read ON %s FOR SELECT USING (%s)", qname, reading));
	gb_exec_sql(psprintf("CREATE POLICY gb_tenant_insert ON %s FOR INSERT WITH CHECK (%s)", qname, writing));
	gb_exec_sql(psprintf("CREATE POLICY gb_tenant_update ON %s FOR UPDATE USING (%s) WITH CHECK (%s)",
						 qname, writing, writing));
	gb_exec_sql(psprintf("CREATE POLICY gb_tenant_delete ON %s FOR DELETE USING (%s)", qname, writing));
}

/* The tenant column isolation uses for RELID, or NULL when not isolated. */
static char *
gb_isolation_column(Oid relid)
{
	Oid			types[1] = {REGCLASSOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	char	   *column = NULL;
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT i.tenant_column::pg_catalog.text FROM gb_scale.tenant_isolation i"
							  " WHERE i.tbl OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read gb_scale.tenant_isolation");
	if (SPI_processed == 1)
		column = MemoryContextStrdup(outer, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	return column;
}

/*
 * A table that just joined the tree of REGISTERED gets the policies of the
 * tree.  Called as its owner (tenant_guard.c).
 */
void
gb_isolation_apply_to_new(Oid registered, const char *qualified_name)
{
	char	   *column = gb_isolation_column(registered);
	int			nestlevel;

	if (column == NULL)
		return;
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("client_min_messages", "warning", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	gb_isolation_exec(qualified_name, column, registered, false);
	AtEOXact_GUC(false, nestlevel);
}

static void
gb_check_tenant_column(Relation rel, const char *column)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), column);
	Oid			type;

	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table %s does not exist", column,
						gb_qualified_name(RelationGetRelid(rel))),
				 errhint("Name the table's tenant column: gb_tenant_isolation_enable(table, tenant_column => ...).")));
	type = get_atttype(RelationGetRelid(rel), attnum);
	if (type != INT8OID && type != INT4OID && type != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("tenant column \"%s\" of table %s has type %s", column,
						gb_qualified_name(RelationGetRelid(rel)), format_type_be(type)),
				 errhint("A tenant column is bigint (or integer, smallint).")));
}

/* Open a table for isolation DDL, checking its kind and that we own it. */
static Relation
gb_open_isolation_target(Oid relid)
{
	Relation	rel = relation_open(relid, ShareUpdateExclusiveLock);

	if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table", gb_qualified_name(relid)),
				 errhint("Tenant isolation applies to tables and partitioned tables.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	return rel;
}

/* Run SQL built per member of RELID's tree as OWNER; FORCE ... only on RELID. */
static void
gb_isolation_ddl_on_tree(Oid relid, Oid owner, const char *column, bool enable)
{
	List	   *members = find_all_inheritors(relid, ShareUpdateExclusiveLock, NULL);
	ListCell   *lc;
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;

	gb_as_owner_begin(owner, &save_userid, &save_sec, &nestlevel);
	/* DROP POLICY IF EXISTS makes it repeatable; its notices are noise */
	(void) set_config_option("client_min_messages", "warning", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	/*
	 * A distributed table's rows are on the shards: the policies must reach
	 * them, even where the session turned Citus' DDL propagation off.
	 */
	if (gb_citus_table(relid))
		(void) set_config_option("citus.enable_ddl_propagation", "on", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	foreach(lc, members)
	{
		Oid			member = lfirst_oid(lc);
		char	   *qname = gb_qualified_name(member);

		if (enable)
			gb_isolation_exec(qname, column, relid, member == relid);
		else
		{
			gb_isolation_drop_policies(qname);
			gb_exec_sql(psprintf("ALTER TABLE %s NO FORCE ROW LEVEL SECURITY", qname));
			gb_exec_sql(psprintf("ALTER TABLE %s DISABLE ROW LEVEL SECURITY", qname));
		}
	}
	gb_as_owner_end(save_userid, save_sec, nestlevel);
}

Datum
gb_tenant_isolation_enable(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *column = NameStr(*PG_GETARG_NAME(1));
	Relation	rel = gb_open_isolation_target(relid);
	Oid			owner = rel->rd_rel->relowner;
	Oid			types[2] = {REGCLASSOID, NAMEOID};
	Datum		values[2];

	gb_check_tenant_column(rel, column);
	relation_close(rel, NoLock);

	values[0] = ObjectIdGetDatum(relid);
	values[1] = PG_GETARG_DATUM(1);
	gb_catalog_exec("INSERT INTO gb_scale.tenant_isolation (tbl, tenant_column) VALUES ($1, $2)"
					" ON CONFLICT (tbl) DO UPDATE SET tenant_column = excluded.tenant_column",
					2, types, values, NULL);
	gb_isolation_ddl_on_tree(relid, owner, column, true);
	PG_RETURN_VOID();
}

/*
 * Undo gb_tenant_isolation_enable: the policies go from the whole tree, row
 * level security is turned off, the registration is removed.
 */
Datum
gb_tenant_isolation_disable(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel = gb_open_isolation_target(relid);
	Oid			owner = rel->rd_rel->relowner;
	Oid			types[1] = {REGCLASSOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	relation_close(rel, NoLock);
	if (gb_isolation_column(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s is not isolated by tenant", gb_qualified_name(relid)),
				 errhint("gb_scale.tenant_isolation lists the isolated tables.")));
	gb_catalog_exec("DELETE FROM gb_scale.tenant_isolation i WHERE i.tbl OPERATOR(pg_catalog.=) $1",
					1, types, values, NULL);
	gb_isolation_ddl_on_tree(relid, owner, NULL, false);
	PG_RETURN_VOID();
}

/*
 * Every table with a registered tenant column, except partitions of another
 * one; refuses (before anything is done) unless the caller owns them all or
 * has gb_scale_admin.
 */
List *
gb_tenant_tables(const char *what)
{
	List	   *tables = NIL;
	List	   *kept = NIL;
	ListCell   *lc;
	bool		admin = gb_is_admin(GetUserId());
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT DISTINCT ON (t.tbl) t.tbl::pg_catalog.oid, t.tenant_column::pg_catalog.text FROM ("
					" SELECT i.tbl, i.tenant_column, 0 AS pref FROM gb_scale.tenant_isolation i"
					" UNION ALL SELECT c.parent, c.tenant_column, 1 FROM gb_scale.partition_config c"
					" WHERE c.tenant_column IS NOT NULL) t ORDER BY t.tbl, t.pref",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the tenant tables");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext spi = MemoryContextSwitchTo(outer);
		GbTenantTable *t = palloc0(sizeof(GbTenantTable));

		t->relid = relid;
		t->column = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		tables = lappend(tables, t);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();

	foreach(lc, tables)
	{
		GbTenantTable *t = lfirst(lc);
		ListCell   *la;
		bool		nested = false;

		foreach(la, get_partition_ancestors(t->relid))
		{
			ListCell   *lo;

			foreach(lo, tables)
				nested |= ((GbTenantTable *) lfirst(lo))->relid == lfirst_oid(la);
		}
		if (nested)
			continue;
		t->owner = gb_rel_owner(t->relid);
		if (!admin && !has_privs_of_role(GetUserId(), t->owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to %s tenants of table %s", what, gb_qualified_name(t->relid)),
					 errdetail("Only the owner of every table with tenants' rows, or a member of %s, may %s a tenant.",
							   GB_ADMIN_ROLE, what),
					 errhint("Run it as the tables' owner, or GRANT %s to this role.", GB_ADMIN_ROLE)));
		kept = lappend(kept, t);
	}
	return kept;
}

/*
 * Run SQL on a tenant table as its owner, in a security-restricted
 * operation, with the transaction's tenant set to TENANT so that forced row
 * level security shows that tenant's rows.
 */
void
gb_owner_scope_begin(const GbTenantTable *t, int64 tenant, GbOwnerScope *scope)
{
	gb_as_owner_begin(t->owner, &scope->save_userid, &scope->save_sec, &scope->nestlevel);
	scope->tenant_nestlevel = gb_tenant_scope_begin(tenant);
}

void
gb_owner_scope_end(const GbOwnerScope *scope)
{
	gb_tenant_scope_end(scope->tenant_nestlevel);
	gb_as_owner_end(scope->save_userid, scope->save_sec, scope->nestlevel);
}

Datum
gb_tenant_export(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *tables;
	ListCell   *lc;
	bool		settings;

	InitMaterializedSRF(fcinfo, 0);
	tables = gb_tenant_tables("export");
	settings = gb_tenant_settings_held(tenant, "export");
	foreach(lc, tables)
	{
		GbTenantTable *t = lfirst(lc);
		GbOwnerScope scope;
		Portal		portal;
		char	   *sql = psprintf("SELECT pg_catalog.to_jsonb(r) FROM %s r WHERE r.%s OPERATOR(pg_catalog.=) "
								   INT64_FORMAT, gb_qualified_name(t->relid), quote_identifier(t->column), tenant);

		gb_owner_scope_begin(t, tenant, &scope);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		portal = SPI_cursor_open_with_args(NULL, sql, 0, NULL, NULL, NULL, true, 0);
		for (;;)
		{
			SPI_cursor_fetch(portal, true, 1000);
			if (SPI_processed == 0)
				break;
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				Datum		values[2];
				bool		nulls[2] = {false, false};

				values[0] = ObjectIdGetDatum(t->relid);
				values[1] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &nulls[1]);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			SPI_freetuptable(SPI_tuptable);
		}
		SPI_cursor_close(portal);
		SPI_finish();
		gb_owner_scope_end(&scope);
	}
	if (settings)
		gb_tenant_settings_export(tenant, rsinfo);
	return (Datum) 0;
}

/* Whether a table not yet taken has a foreign key to T. */
static bool
gb_referenced_by_remaining(const GbTenantTable *t, List *tables, List *edges)
{
	for (int e = 0; e + 1 < list_length(edges); e += 2)
	{
		ListCell   *lo;

		if (list_nth_oid(edges, e + 1) != t->relid)
			continue;
		foreach(lo, tables)
		{
			const GbTenantTable *o = lfirst(lo);

			if (!o->done && o->relid == list_nth_oid(edges, e))
				return true;
		}
	}
	return false;
}

/* An oid[] Datum of OIDS, for "= ANY ($1)" in catalog queries. */
Datum
gb_oid_array(List *oids)
{
	Datum	   *elems = palloc(Max(list_length(oids), 1) * sizeof(Datum));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, oids)
		elems[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	return PointerGetDatum(construct_array(elems, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
}

/* Tables that reference others (by foreign key) first. */
static List *
gb_referencing_first(List *tables)
{
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1];
	List	   *relids = NIL;
	List	   *edges = NIL;	/* pairs: referencing, referenced */
	List	   *ordered = NIL;
	MemoryContext outer = CurrentMemoryContext;
	ListCell   *lc;

	foreach(lc, tables)
		relids = lappend_oid(relids, ((GbTenantTable *) lfirst(lc))->relid);
	values[0] = gb_oid_array(relids);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT c.conrelid, c.confrelid FROM pg_catalog.pg_constraint c"
							  " WHERE c.contype OPERATOR(pg_catalog.=) 'f'"
							  " AND c.conrelid OPERATOR(pg_catalog.=) ANY ($1)"
							  " AND c.confrelid OPERATOR(pg_catalog.=) ANY ($1)"
							  " AND c.conrelid OPERATOR(pg_catalog.<>) c.confrelid",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the foreign keys");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		MemoryContext spi = MemoryContextSwitchTo(outer);

		edges = lappend_oid(edges, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)));
		edges = lappend_oid(edges, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull)));
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();

	/* Repeatedly take a table no remaining table references; a cycle goes as listed. */
	while (list_length(ordered) < list_length(tables))
	{
		GbTenantTable *pick = NULL;

		foreach(lc, tables)
		{
			GbTenantTable *t = lfirst(lc);

			if (!t->done && pick == NULL && !gb_referenced_by_remaining(t, tables, edges))
				pick = t;
		}
		foreach(lc, tables)
		{
			GbTenantTable *t = lfirst(lc);

			if (!t->done && pick == NULL)
				pick = t;
		}
		pick->done = true;
		ordered = lappend(ordered, pick);
	}
	return ordered;
}

/*
 * Foreign keys and purges.
 *
 * A purge deletes rows; a foreign key whose ON DELETE action is CASCADE,
 * SET NULL or SET DEFAULT then deletes or changes the rows that reference
 * them, in any table, whatever their tenant: foreign-key checks ignore row
 * level security, so tenant 2 may well reference tenant 1's row.  Before
 * anything is deleted, every such key into a purged table is checked for
 * referencing rows that are not the purged tenant's (or belong to no
 * tenant: the referencing table has no registered tenant column), and the
 * purge refuses, naming them.  NO ACTION and RESTRICT need no check: they
 * fail the purge themselves.  A key that pairs the referencing table's
 * tenant column with the referenced table's cannot cross tenants.
 *
 * The check must see every tenant's rows, so it runs as an owner without
 * forced row level security (as PostgreSQL's own foreign-key checks), in a
 * security-restricted operation, never with the caller's rights; with two
 * owners, as one that may read both tables in full, else it refuses.  The
 * purged tenant's rows are locked first (FOR UPDATE, as the DELETE would),
 * so that no new reference to them can appear between check and delete, and
 * the check reads the latest snapshot, as PostgreSQL's checks do.
 */

/* The registered table holding RELID's rows (RELID or an ancestor), or NULL. */
static const GbTenantTable *
gb_tenant_table_of(List *tables, Oid relid)
{
	List	   *candidates = list_make1_oid(relid);
	ListCell   *lc;

	if (get_rel_relispartition(relid))
		candidates = list_concat(candidates, get_partition_ancestors(relid));
	foreach(lc, candidates)
	{
		ListCell   *lt;

		foreach(lt, tables)
		{
			const GbTenantTable *t = lfirst(lt);

			if (t->relid == lfirst_oid(lc))
				return t;
		}
	}
	return NULL;
}

/* Foreign keys into MEMBERS whose ON DELETE action writes other rows. */
static List *
gb_writing_fkeys_into(List *members)
{
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1];
	List	   *fkeys = NIL;
	MemoryContext outer = CurrentMemoryContext;

	values[0] = gb_oid_array(members);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* a key into a partitioned table also has a clone per partition: its parent is enough */
	if (SPI_execute_with_args("SELECT c.oid FROM pg_catalog.pg_constraint c"
							  " WHERE c.contype OPERATOR(pg_catalog.=) 'f'"
							  " AND c.conparentid OPERATOR(pg_catalog.=) 0"
							  " AND c.confrelid OPERATOR(pg_catalog.=) ANY ($1)"
							  " AND c.confdeltype OPERATOR(pg_catalog.=) ANY ('{c,n,d}'::pg_catalog.\"char\"[])"
							  " ORDER BY c.conrelid, c.conname COLLATE pg_catalog.\"C\"",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the foreign keys");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Oid			conoid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext spi = MemoryContextSwitchTo(outer);

		fkeys = lappend_oid(fkeys, conoid);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return fkeys;
}

/* One foreign key as the check needs it. */
typedef struct GbFkey
{
	char	   *name;
	Oid			referencing;
	Oid			referenced;
	char		action;
	int			ncols;
	AttrNumber	fk_cols[INDEX_MAX_KEYS];
	AttrNumber	pk_cols[INDEX_MAX_KEYS];
	Oid			pf_eq_ops[INDEX_MAX_KEYS];
} GbFkey;

static void
gb_fkey_read(Oid conoid, GbFkey *fk)
{
	HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	Form_pg_constraint con;
	Oid			pp_eq_ops[INDEX_MAX_KEYS];
	Oid			ff_eq_ops[INDEX_MAX_KEYS];
	int			nset;
	AttrNumber	set_cols[INDEX_MAX_KEYS];

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for constraint %u", conoid);
	con = (Form_pg_constraint) GETSTRUCT(tup);
	fk->name = pstrdup(NameStr(con->conname));
	fk->referencing = con->conrelid;
	fk->referenced = con->confrelid;
	fk->action = con->confdeltype;
	DeconstructFkConstraintRow(tup, &fk->ncols, fk->fk_cols, fk->pk_cols, fk->pf_eq_ops,
							   pp_eq_ops, ff_eq_ops, &nset, set_cols);
	ReleaseSysCache(tup);
}

/* Whether the key pairs REFERENCING's tenant column with REFERENCED's. */
static bool
gb_fkey_keeps_tenant(const GbFkey *fk, const char *fk_tenant_col, const char *pk_tenant_col)
{
	AttrNumber	fk_att = get_attnum(fk->referencing, fk_tenant_col);
	AttrNumber	pk_att = get_attnum(fk->referenced, pk_tenant_col);

	for (int i = 0; i < fk->ncols; i++)
	{
		if (fk->fk_cols[i] == fk_att && fk->pk_cols[i] == pk_att)
			return true;
	}
	return false;
}

static const char *
gb_fkey_action_name(char action)
{
	return action == 'c' ? "ON DELETE CASCADE" : action == 'n' ? "ON DELETE SET NULL" : "ON DELETE SET DEFAULT";
}

/* Whether ROLE may read these columns of RELID (table or column privilege). */
static bool
gb_may_select(Oid relid, Oid role, const AttrNumber *cols, int ncols, AttrNumber extra)
{
	if (pg_class_aclcheck(relid, role, ACL_SELECT) == ACLCHECK_OK)
		return true;
	for (int i = 0; i < ncols; i++)
	{
		if (pg_attribute_aclcheck(relid, cols[i], role, ACL_SELECT) != ACLCHECK_OK)
			return false;
	}
	return extra == InvalidAttrNumber || pg_attribute_aclcheck(relid, extra, role, ACL_SELECT) == ACLCHECK_OK;
}

/*
 * Become ROLE for the check, in a security-restricted operation without
 * forced row level security, if ROLE may then read every row it needs of
 * both tables; otherwise leave nothing changed and return false.
 */
static bool
gb_fkey_scope_begin(Oid role, const GbFkey *fk, AttrNumber fk_tenant_att, AttrNumber pk_tenant_att,
					GbOwnerScope *scope)
{
	Oid			userid;
	int			sec;
	bool		ok;

	if (!gb_may_select(fk->referencing, role, fk->fk_cols, fk->ncols, fk_tenant_att) ||
		!gb_may_select(fk->referenced, role, fk->pk_cols, fk->ncols, pk_tenant_att))
		return false;
	gb_as_owner_begin(role, &scope->save_userid, &scope->save_sec, &scope->nestlevel);
	GetUserIdAndSecContext(&userid, &sec);
	SetUserIdAndSecContext(userid, sec | SECURITY_NOFORCE_RLS);
	ok = check_enable_rls(fk->referencing, InvalidOid, true) != RLS_ENABLED &&
		check_enable_rls(fk->referenced, InvalidOid, true) != RLS_ENABLED;
	if (!ok)
		gb_as_owner_end(scope->save_userid, scope->save_sec, scope->nestlevel);
	return ok;
}

static const char *
gb_only(Oid relid)
{
	return get_rel_relkind(relid) == RELKIND_RELATION ? "ONLY " : "";
}

/*
 * "(a, b)" of RELID's columns COLS; with TENANT_COL, as they would be with
 * that column in the place of column REPLACED (0-based), or first when
 * REPLACED is -1.
 */
static char *
gb_column_names(Oid relid, const AttrNumber *cols, int ncols, const char *tenant_col, int replaced)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '(');
	if (tenant_col != NULL && replaced < 0)
		appendStringInfo(&s, "%s, ", quote_identifier(tenant_col));
	for (int i = 0; i < ncols; i++)
		appendStringInfo(&s, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(tenant_col != NULL && i == replaced ? tenant_col :
										  get_attname(relid, cols[i], false)));
	appendStringInfoChar(&s, ')');
	return s.data;
}

/* The position of the referenced tenant column in the key, or -1. */
static int
gb_fkey_tenant_position(const GbFkey *fk, AttrNumber pk_tenant_att)
{
	for (int i = 0; i < fk->ncols; i++)
	{
		if (fk->pk_cols[i] == pk_tenant_att)
			return i;
	}
	return -1;
}

#define GB_FKEY_SAMPLE 5

/*
 * Refuse the purge of TENANT from table T if FK (into T's tree) would delete
 * or change rows that are not TENANT's.  REFERENCING_TABLE is the registered
 * table of the referencing rows, or NULL.
 */
static void
gb_fkey_check(const GbTenantTable *t, const GbFkey *fk, const GbTenantTable *referencing_table,
			  int64 tenant)
{
	const char *fk_tenant_col = referencing_table ? referencing_table->column : NULL;
	AttrNumber	fk_tenant_att = fk_tenant_col ? get_attnum(fk->referencing, fk_tenant_col) : InvalidAttrNumber;
	AttrNumber	pk_tenant_att = get_attnum(fk->referenced, t->column);
	Oid			fk_owner = gb_rel_owner(fk->referencing);
	Oid			pk_owner = gb_rel_owner(fk->referenced);
	GbOwnerScope scope;
	StringInfoData sql;
	StringInfoData keys;
	StringInfoData tenants;
	List	   *seen = NIL;
	int			ntenants;
	SPIPlanPtr	plan;
	uint64		found;

	if (!gb_fkey_scope_begin(pk_owner, fk, fk_tenant_att, pk_tenant_att, &scope) &&
		(fk_owner == pk_owner || !gb_fkey_scope_begin(fk_owner, fk, fk_tenant_att, pk_tenant_att, &scope)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot purge tenant " INT64_FORMAT ": foreign key %s of table %s cannot be checked",
						tenant, quote_identifier(fk->name), gb_qualified_name(fk->referencing)),
				 errdetail("Its action (%s) changes rows of %s when rows of %s are deleted; neither owner (%s, %s) may read both tables in full to see whether those rows are tenant " INT64_FORMAT "'s.",
						   gb_fkey_action_name(fk->action), gb_qualified_name(fk->referencing),
						   gb_qualified_name(fk->referenced), GetUserNameFromId(fk_owner, false),
						   GetUserNameFromId(pk_owner, false), tenant),
				 errhint("Put the tenant column in the foreign key on both sides, or give both tables the same owner. Nothing was purged.")));

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s", fk_tenant_col ? "r." : "NULL");
	if (fk_tenant_col)
		appendStringInfoString(&sql, quote_identifier(fk_tenant_col));
	for (int i = 0; i < fk->ncols; i++)
		appendStringInfo(&sql, ", r.%s", quote_identifier(get_attname(fk->referencing, fk->fk_cols[i], false)));
	appendStringInfo(&sql, " FROM %s%s r JOIN %s%s p ON ", gb_only(fk->referencing), gb_qualified_name(fk->referencing),
					 gb_only(fk->referenced), gb_qualified_name(fk->referenced));
	for (int i = 0; i < fk->ncols; i++)
	{
		HeapTuple	op = SearchSysCache1(OPEROID, ObjectIdGetDatum(fk->pf_eq_ops[i]));
		Form_pg_operator form;

		if (!HeapTupleIsValid(op))
			elog(ERROR, "cache lookup failed for operator %u", fk->pf_eq_ops[i]);
		form = (Form_pg_operator) GETSTRUCT(op);
		appendStringInfo(&sql, "%sp.%s OPERATOR(%s.%s) r.%s", i > 0 ? " AND " : "",
						 quote_identifier(get_attname(fk->referenced, fk->pk_cols[i], false)),
						 quote_identifier(get_namespace_name(form->oprnamespace)), NameStr(form->oprname),
						 quote_identifier(get_attname(fk->referencing, fk->fk_cols[i], false)));
		ReleaseSysCache(op);
	}
	appendStringInfo(&sql, " WHERE p.%s OPERATOR(pg_catalog.=) " INT64_FORMAT,
					 quote_identifier(t->column), tenant);
	if (fk_tenant_col)
		appendStringInfo(&sql, " AND (r.%s OPERATOR(pg_catalog.=) " INT64_FORMAT ") IS NOT TRUE",
						 quote_identifier(fk_tenant_col), tenant);
	appendStringInfo(&sql, " LIMIT %d", GB_FKEY_SAMPLE + 1);

	/* outside SPI's memory, which SPI_finish frees */
	initStringInfo(&keys);
	initStringInfo(&tenants);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the foreign key check: %s", sql.data);
	/* rows committed since this transaction's snapshot count too */
	CommandCounterIncrement();
	if (SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot, true, false,
							 GB_FKEY_SAMPLE + 1) != SPI_OK_SELECT)
		elog(ERROR, "could not run the foreign key check: %s", sql.data);
	found = SPI_processed;
	for (uint64 r = 0; r < found && r < GB_FKEY_SAMPLE; r++)
	{
		HeapTuple	row = SPI_tuptable->vals[r];
		char	   *owner_tenant = SPI_getvalue(row, SPI_tuptable->tupdesc, 1);

		appendStringInfo(&keys, "%s%s=(", r > 0 ? ", " : "",
						 gb_column_names(fk->referencing, fk->fk_cols, fk->ncols, NULL, -1));
		for (int i = 0; i < fk->ncols; i++)
		{
			char	   *v = SPI_getvalue(row, SPI_tuptable->tupdesc, i + 2);

			appendStringInfo(&keys, "%s%s", i > 0 ? ", " : "", v ? v : "null");
		}
		appendStringInfoChar(&keys, ')');
		if (fk_tenant_col)
		{
			char	   *label = owner_tenant ? owner_tenant : "null";
			bool		known = false;
			ListCell   *ls;

			appendStringInfo(&keys, " of tenant %s", label);
			foreach(ls, seen)
				known |= strcmp(lfirst(ls), label) == 0;
			if (!known)
			{
				appendStringInfo(&tenants, "%s%s", seen != NIL ? ", " : "", label);
				seen = lappend(seen, label);
			}
		}
	}
	if (found > GB_FKEY_SAMPLE)
		appendStringInfoString(&keys, ", ...");
	ntenants = list_length(seen);
	SPI_finish();
	gb_as_owner_end(scope.save_userid, scope.save_sec, scope.nestlevel);
	if (found == 0)
		return;

	if (fk_tenant_col)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg_plural("cannot purge tenant " INT64_FORMAT ": rows of tenant %s in table %s reference its rows",
							   "cannot purge tenant " INT64_FORMAT ": rows of tenants %s in table %s reference its rows",
							   ntenants, tenant, tenants.data, gb_qualified_name(fk->referencing)),
				 errdetail("Foreign key %s (%s) would %s them with the rows of %s they reference: %s.",
						   quote_identifier(fk->name), gb_fkey_action_name(fk->action),
						   fk->action == 'c' ? "delete" : "change", gb_qualified_name(fk->referenced), keys.data),
				 errhint("Put the tenant column in the foreign key on both sides, FOREIGN KEY %s REFERENCES %s %s, so that no tenant's row can reference another tenant's. Nothing was purged.",
						 gb_column_names(fk->referencing, fk->fk_cols, fk->ncols, fk_tenant_col,
										 gb_fkey_tenant_position(fk, pk_tenant_att)),
						 gb_qualified_name(fk->referenced),
						 gb_column_names(fk->referenced, fk->pk_cols, fk->ncols,
										 gb_fkey_tenant_position(fk, pk_tenant_att) < 0 ? t->column : NULL, -1))));
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("cannot purge tenant " INT64_FORMAT ": rows of table %s, which has no tenant column, reference its rows",
					tenant, gb_qualified_name(fk->referencing)),
			 errdetail("Foreign key %s (%s) would %s them with the rows of %s they reference: %s.",
					   quote_identifier(fk->name), gb_fkey_action_name(fk->action),
					   fk->action == 'c' ? "delete" : "change", gb_qualified_name(fk->referenced), keys.data),
			 errhint("Register the tenant column of %s (gb_tenant_isolation_enable) and put it in the foreign key on both sides, or remove those rows first. Nothing was purged.",
					 gb_qualified_name(fk->referencing))));
}

/*
 * Check every foreign key into the purged tables before anything is
 * deleted; see above.
 */
static void
gb_purge_check_references(List *tables, int64 tenant)
{
	ListCell   *lc;

	foreach(lc, tables)
	{
		const GbTenantTable *t = lfirst(lc);
		/* what the DELETE takes anyway; it also keeps new foreign keys out */
		List	   *members = find_all_inheritors(t->relid, RowExclusiveLock, NULL);
		bool		locked = false;
		ListCell   *lk;

		foreach(lk, gb_writing_fkeys_into(members))
		{
			GbFkey		fk;
			const GbTenantTable *referencing;

			CHECK_FOR_INTERRUPTS();
			gb_fkey_read(lfirst_oid(lk), &fk);
			referencing = gb_tenant_table_of(tables, fk.referencing);
			if (referencing != NULL && gb_fkey_keeps_tenant(&fk, referencing->column, t->column))
				continue;
			if (!locked)
			{
				GbOwnerScope scope;

				gb_owner_scope_begin(t, tenant, &scope);
				/* counted, not fetched: a big tenant's rows stay out of memory */
				gb_exec_sql(psprintf("SELECT pg_catalog.count(*) FROM (SELECT FROM %s WHERE %s OPERATOR(pg_catalog.=) "
									 INT64_FORMAT " FOR UPDATE) l",
									 gb_qualified_name(t->relid), quote_identifier(t->column), tenant));
				gb_owner_scope_end(&scope);
				locked = true;
			}
			gb_fkey_check(t, &fk, referencing, tenant);
		}
	}
}

/* The dedicated subtree of TENANT under RELID, or InvalidOid. */
static Oid
gb_dedicated_subtree(Oid relid, int64 tenant)
{
	ListCell   *lc;

	foreach(lc, gb_tenants_load(relid))
	{
		GbTenantRow *row = lfirst(lc);

		if (row->tenant_id == tenant && OidIsValid(row->subtree))
			return row->subtree;
	}
	return InvalidOid;
}

/* Whether a foreign key references a table of RELID's tree. */
static bool
gb_tree_is_referenced(Oid relid)
{
	List	   *members = find_all_inheritors(relid, NoLock, NULL);
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1];
	bool		referenced;

	values[0] = gb_oid_array(members);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT FROM pg_catalog.pg_constraint c"
							  " WHERE c.contype OPERATOR(pg_catalog.=) 'f'"
							  " AND c.confrelid OPERATOR(pg_catalog.=) ANY ($1)",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the foreign keys");
	referenced = SPI_processed > 0;
	SPI_finish();
	return referenced;
}

#define GB_WALK_BLOCKS		128
#define GB_WALK_MAX_BLOCKS	8192

/* Past LEAF: the next leaf by oid, or the next table after the last oid. */
static void
gb_walk_next_leaf(GbTenantWalk *walk, Oid leaf)
{
	walk->block = 0;
	if (leaf == OID_MAX)
	{
		walk->table++;
		walk->leaf = InvalidOid;
	}
	else
		walk->leaf = leaf + 1;
}

/* Leaf tables of RELID that hold rows, by oid (a walk's order). */
static List *
gb_walk_leaves(Oid relid)
{
	List	   *leaves = NIL;
	ListCell   *lc;

	foreach(lc, find_all_inheritors(relid, NoLock, NULL))
	{
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_RELATION)
			leaves = lappend_oid(leaves, lfirst_oid(lc));
	}
	list_sort(leaves, list_oid_cmp);
	return leaves;
}

/*
 * The next step of a walk over TENANT's rows in TABLES: table by table,
 * leaf by leaf (by oid), a range of blocks at a time (a TID range scan), so
 * that the whole walk reads each block once, however many rows it has
 * already changed.  A range holds about WALK->statement_rows rows (by the
 * tenant's rows per block in the range before, at first by the leaf's
 * statistics), so that no statement writes much more; it doubles, up to
 * GB_WALK_BLOCKS, over blocks without the tenant's rows.  WALK->pace, if
 * set, follows every statement (a move sleeps there).  Each leaf's rows are
 * deleted (REWRITE_SHARD < 0) or get shard_id = REWRITE_SHARD, as the
 * leaf's owner.  A step ends once it has changed MAX_ROWS rows or read
 * GB_WALK_MAX_BLOCKS blocks; returns the rows changed, WALK->done once
 * every leaf is behind it.  Leaves of SKIP (a list of oids) are left alone.
 */
int64
gb_tenant_walk_step(List *tables, int64 tenant, int rewrite_shard, List *skip,
					GbTenantWalk *walk, int64 max_rows)
{
	int64		changed = 0;
	uint32		read = 0;

	while (!walk->done && changed < max_rows && read < GB_WALK_MAX_BLOCKS)
	{
		const GbTenantTable *t;
		Oid			leaf = InvalidOid;
		ListCell   *lc;
		Relation	rel;
		BlockNumber nblocks;
		double		rows_per_block;
		uint32		span;

		if (walk->table < 0 || walk->table >= list_length(tables))
		{
			walk->done = true;
			break;
		}
		t = list_nth(tables, walk->table);
		foreach(lc, gb_walk_leaves(t->relid))
		{
			if (lfirst_oid(lc) >= walk->leaf && !list_member_oid(skip, lfirst_oid(lc)))
			{
				leaf = lfirst_oid(lc);
				break;
			}
		}
		if (!OidIsValid(leaf))
		{
			walk->table++;
			walk->leaf = InvalidOid;
			walk->block = 0;
			continue;
		}
		if (leaf != walk->leaf)
		{
			walk->leaf = leaf;
			walk->block = 0;
		}
		rel = try_relation_open(leaf, RowExclusiveLock);
		if (rel == NULL)
		{
			gb_walk_next_leaf(walk, leaf);
			continue;
		}
		nblocks = RelationGetNumberOfBlocks(rel);
		rows_per_block = (rel->rd_rel->relpages > 0 && rel->rd_rel->reltuples > 0)
			? rel->rd_rel->reltuples / rel->rd_rel->relpages : 64;
		relation_close(rel, NoLock);
		span = 0;
		while (walk->block < nblocks && changed < max_rows && read < GB_WALK_MAX_BLOCKS)
		{
			BlockNumber end;
			int64		in_range;
			GbTenantTable leaf_t = *t;
			GbOwnerScope scope;
			char	   *range;

			CHECK_FOR_INTERRUPTS();
			if (span == 0)
				span = (uint32) Min(Max(Min(walk->statement_rows, max_rows - changed) / Max(rows_per_block, 1.0), 1.0),
									GB_WALK_BLOCKS);
			end = (nblocks - walk->block > span) ? walk->block + span : nblocks;
			leaf_t.relid = leaf;
			leaf_t.owner = gb_rel_owner(leaf);
			range = psprintf("ctid OPERATOR(pg_catalog.>=) '(%u,0)'::pg_catalog.tid"
							 " AND ctid OPERATOR(pg_catalog.<) '(%u,0)'::pg_catalog.tid"
							 " AND %s OPERATOR(pg_catalog.=) " INT64_FORMAT,
							 walk->block, end, quote_identifier(t->column), tenant);
			gb_owner_scope_begin(&leaf_t, tenant, &scope);
			/* the range, whatever the statistics say of the tenant's rows */
			(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			(void) set_config_option("enable_indexscan", "off", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			if (rewrite_shard < 0)
				in_range = (int64) gb_exec_count(psprintf("DELETE FROM ONLY %s WHERE %s",
														  gb_qualified_name(leaf), range));
			else
				in_range = (int64) gb_exec_count(psprintf("UPDATE ONLY %s SET shard_id = %d WHERE %s"
														  " AND shard_id OPERATOR(pg_catalog.<>) %d",
														  gb_qualified_name(leaf), rewrite_shard, range,
														  rewrite_shard));
			gb_owner_scope_end(&scope);
			changed += in_range;
			read += end - walk->block;
			/* the next range by the density just met (statistics may be old) */
			if (in_range > 0)
			{
				rows_per_block = (double) in_range / (end - walk->block);
				span = 0;
			}
			else
				span = Min(span * 2, GB_WALK_BLOCKS);
			walk->block = end;
			if (walk->pace != NULL)
				walk->pace(in_range, walk->pace_arg);
		}
		if (walk->block >= nblocks)
			gb_walk_next_leaf(walk, leaf);
	}
	return changed;
}

/*
 * The next step of a paced purge (a move's source): up to MAX_ROWS of the
 * tenant's rows deleted, referencing tables first, its dedicated subtrees
 * left to gb_tenant_purge, which ends the purge.  The foreign keys into the
 * tables are checked at the walk's first step.
 */
int64
gb_tenant_purge_step(int64 tenant, GbTenantWalk *walk, int64 max_rows)
{
	List	   *tables = gb_referencing_first(gb_tenant_tables("purge"));
	List	   *skip = NIL;
	ListCell   *lc;
	int64		removed;

	if (walk->table == 0 && !OidIsValid(walk->leaf) && walk->block == 0)
		gb_purge_check_references(tables, tenant);
	foreach(lc, tables)
	{
		Oid			subtree = gb_dedicated_subtree(((GbTenantTable *) lfirst(lc))->relid, tenant);

		if (OidIsValid(subtree))
			skip = list_concat(skip, find_all_inheritors(subtree, NoLock, NULL));
	}
	gb_move_fence_bypass = true;
	PG_TRY();
	{
		removed = gb_tenant_walk_step(tables, tenant, -1, skip, walk, max_rows);
	}
	PG_FINALLY();
	{
		gb_move_fence_bypass = false;
	}
	PG_END_TRY();
	return removed;
}

/*
 * Delete every row of a tenant; a tenant's dedicated partitions go by DROP.
 * One row per table with what it lost.
 */
Datum
gb_tenant_purge(PG_FUNCTION_ARGS)
{
	int64		tenant = PG_GETARG_INT64(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *tables;
	bool		settings;

	InitMaterializedSRF(fcinfo, 0);
	tables = gb_referencing_first(gb_tenant_tables("purge"));
	settings = gb_tenant_settings_held(tenant, "purge");
	gb_purge_check_references(tables, tenant);

	/*
	 * A tenant that moved away is purged where a move's fence refuses its
	 * writes (tenant_move.c): its own deletes pass.
	 */
	gb_move_fence_bypass = true;
	PG_TRY();
	{
		ListCell   *lc;

		foreach(lc, tables)
		{
			GbTenantTable *t = lfirst(lc);
			GbOwnerScope scope;
			int64		removed = 0;
			Oid			subtree = gb_dedicated_subtree(t->relid, tenant);
			Datum		values[2];
			bool		nulls[2] = {false, false};

			gb_owner_scope_begin(t, tenant, &scope);
			if (OidIsValid(subtree))
			{
				char	   *qsubtree = gb_qualified_name(subtree);

				if (gb_tree_is_referenced(subtree))
				{
					/*
					 * PostgreSQL drops no partition that a foreign key
					 * references: its rows go by DELETE, with the keys' actions
					 * (checked above), then it leaves the tree.
					 */
					removed += (int64) gb_exec_count(psprintf("DELETE FROM %s", qsubtree));
					gb_exec_sql(psprintf("ALTER TABLE %s DETACH PARTITION %s",
										 gb_qualified_name(get_partition_parent(subtree, false)), qsubtree));
				}
				else
					removed += gb_count_rows(subtree);
				gb_exec_sql(psprintf("DROP TABLE %s", qsubtree));
			}
			removed += (int64) gb_exec_count(psprintf("DELETE FROM %s WHERE %s OPERATOR(pg_catalog.=) " INT64_FORMAT,
													  gb_qualified_name(t->relid), quote_identifier(t->column), tenant));
			gb_owner_scope_end(&scope);
			CommandCounterIncrement();

			values[0] = ObjectIdGetDatum(t->relid);
			values[1] = Int64GetDatum(removed);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_FINALLY();
	{
		gb_move_fence_bypass = false;
	}
	PG_END_TRY();
	if (settings)
		gb_tenant_settings_purge(tenant, rsinfo);
	return (Datum) 0;
}
