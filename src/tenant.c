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
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "partition.h"
#include "routing.h"

#include <errno.h>
#include <stdlib.h>

#include "access/parallel.h"
#include "access/relation.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "catalog/partition.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(gb_set_tenant);
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
 * The tenant for one piece of the extension's own work, until _end, which
 * also undoes any other setting changed meanwhile.
 */
int
gb_tenant_scope_begin(int64 tenant_id)
{
	int			nestlevel = NewGUCNestLevel();

	gb_set_tenant_setting(psprintf(INT64_FORMAT, tenant_id), GUC_ACTION_SAVE);
	return nestlevel;
}

void
gb_tenant_scope_end(int nestlevel)
{
	AtEOXact_GUC(false, nestlevel);
}

Datum
gb_set_tenant(PG_FUNCTION_ARGS)
{
	gb_set_tenant_setting(PG_ARGISNULL(0) ? "" : psprintf(INT64_FORMAT, PG_GETARG_INT64(0)),
						  GUC_ACTION_LOCAL);
	PG_RETURN_VOID();
}

Datum
gb_current_tenant(PG_FUNCTION_ARGS)
{
	if (!gb_tenant_is_set)
		PG_RETURN_NULL();
	PG_RETURN_INT64(gb_tenant_value);
}

Datum
gb_tenant_for_write(PG_FUNCTION_ARGS)
{
	if (!gb_tenant_is_set)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant is set for this transaction"),
				 errdetail("Table %s isolates its rows by tenant; writing to it needs the transaction's tenant.",
						   gb_qualified_name(PG_GETARG_OID(0))),
				 errhint("Call SELECT gb_set_tenant(tenant_id) earlier in the same transaction.")));
	PG_RETURN_INT64(gb_tenant_value);
}

/* Whether ROLEID has the rights of gb_scale_admin (superusers do). */
static bool
gb_is_admin(Oid roleid)
{
	Oid			admin = get_role_oid(GB_ADMIN_ROLE, true);

	return superuser_arg(roleid) || (OidIsValid(admin) && has_privs_of_role(roleid, admin));
}

/* The policies of one relation; FORCE only on the isolated table itself. */
static char *
gb_isolation_sql(const char *qname, const char *column, Oid isolated, bool force)
{
	const char *qcol = quote_identifier(column);
	char	   *reading = psprintf("%s OPERATOR(pg_catalog.=) gb_scale.current_tenant()", qcol);
	char	   *writing = psprintf("%s OPERATOR(pg_catalog.=) gb_scale.tenant_for_write(%s::pg_catalog.regclass)",
								   qcol, quote_literal_cstr(gb_qualified_name(isolated)));
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "ALTER TABLE %s ENABLE ROW LEVEL SECURITY;", qname);
	if (force)
		appendStringInfo(&sql, "ALTER TABLE %s FORCE ROW LEVEL SECURITY;", qname);
	appendStringInfo(&sql,
					 "DROP POLICY IF EXISTS gb_tenant_read ON %s;"
					 "DROP POLICY IF EXISTS gb_tenant_insert ON %s;"
					 "DROP POLICY IF EXISTS gb_tenant_update ON %s;"
					 "DROP POLICY IF EXISTS gb_tenant_delete ON %s;",
					 qname, qname, qname, qname);
	appendStringInfo(&sql,
					 "CREATE POLICY gb_tenant_read ON %s FOR SELECT USING (%s);"
					 "CREATE POLICY gb_tenant_insert ON %s FOR INSERT WITH CHECK (%s);"
					 "CREATE POLICY gb_tenant_update ON %s FOR UPDATE USING (%s) WITH CHECK (%s);"
					 "CREATE POLICY gb_tenant_delete ON %s FOR DELETE USING (%s);",
					 qname, reading, qname, writing, qname, writing, writing, qname, writing);
	return sql.data;
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
 * A partition the maintenance just created under REGISTERED gets the
 * policies of the tree.  Called as the owner, like the rest of that DDL.
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
	gb_exec_sql(gb_isolation_sql(qualified_name, column, registered, false));
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
	foreach(lc, members)
	{
		Oid			member = lfirst_oid(lc);
		char	   *qname = gb_qualified_name(member);

		if (enable)
			gb_exec_sql(gb_isolation_sql(qname, column, relid, member == relid));
		else
			gb_exec_sql(psprintf("DROP POLICY IF EXISTS gb_tenant_read ON %s;"
								 "DROP POLICY IF EXISTS gb_tenant_insert ON %s;"
								 "DROP POLICY IF EXISTS gb_tenant_update ON %s;"
								 "DROP POLICY IF EXISTS gb_tenant_delete ON %s;"
								 "ALTER TABLE %s NO FORCE ROW LEVEL SECURITY;"
								 "ALTER TABLE %s DISABLE ROW LEVEL SECURITY;",
								 qname, qname, qname, qname, qname, qname));
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

/* A table holding tenants' rows: isolated, or partitioned by tenant. */
typedef struct GbTenantTable
{
	Oid			relid;
	Oid			owner;
	char	   *column;
	bool		done;
} GbTenantTable;

/*
 * Every table with a registered tenant column, except partitions of another
 * one; refuses (before anything is done) unless the caller owns them all or
 * has gb_scale_admin.
 */
static List *
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
typedef struct GbOwnerScope
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	int			tenant_nestlevel;
} GbOwnerScope;

static void
gb_owner_scope_begin(const GbTenantTable *t, int64 tenant, GbOwnerScope *scope)
{
	gb_as_owner_begin(t->owner, &scope->save_userid, &scope->save_sec, &scope->nestlevel);
	scope->tenant_nestlevel = gb_tenant_scope_begin(tenant);
}

static void
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

	InitMaterializedSRF(fcinfo, 0);
	tables = gb_tenant_tables("export");
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

/* Tables that reference others (by foreign key) first. */
static List *
gb_referencing_first(List *tables)
{
	int			n = list_length(tables);
	Datum	   *oids = palloc(Max(n, 1) * sizeof(Datum));
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1];
	int			i = 0;
	List	   *edges = NIL;	/* pairs: referencing, referenced */
	List	   *ordered = NIL;
	MemoryContext outer = CurrentMemoryContext;
	ListCell   *lc;

	foreach(lc, tables)
		oids[i++] = ObjectIdGetDatum(((GbTenantTable *) lfirst(lc))->relid);
	values[0] = PointerGetDatum(construct_array(oids, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
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
	while (list_length(ordered) < n)
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
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	tables = gb_referencing_first(gb_tenant_tables("purge"));
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
	return (Datum) 0;
}
