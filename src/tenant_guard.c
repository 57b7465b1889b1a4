/*-------------------------------------------------------------------------
 *
 * tenant_guard.c
 *	  What keeps tenant isolation (tenant.c) whole.
 *
 * New members of an isolated tree.  A table that enters the tree of an
 * isolated table by any route (CREATE TABLE ... PARTITION OF or INHERITS at
 * any depth, ALTER TABLE ... ATTACH PARTITION or INHERIT, the same inside
 * CREATE SCHEMA, in functions, or by the partition manager) gets the tree's
 * policies before the command returns, from the event trigger
 * gb_scale_isolation_ddl (ddl_command_end, enabled ALWAYS so that
 * session_replication_role does not skip it).  An event trigger rather than
 * a ProcessUtility hook: it runs in every session, whether or not the
 * library was loaded before the command.  The policies are made as the new
 * member's owner in a security-restricted operation.  A newcomer that would
 * weaken the isolation is refused: a foreign table (row level security does
 * not apply to it) or a table with a permissive policy of its own (policies
 * are ORed, so its rows would show to every tenant).
 *
 * Holdable cursors.  A cursor WITH HOLD runs its query when its transaction
 * commits and keeps the rows in the session, where the next client of a
 * pooled server connection can FETCH them.  So while a tenant is set, no
 * holdable cursor may be started (SQL DECLARE from any client or function,
 * or an SPI cursor with CURSOR_OPT_HOLD: the executor start hook sees them
 * all), and gb_set_tenant() refuses while the transaction has declared a
 * holdable cursor that is still open, even one its own query is running.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "citus_glue.h"
#include "partition.h"
#include "routing.h"
#include "tenant_guard.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_policy.h"
#include "commands/event_trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/extensible.h"
#include "nodes/plannodes.h"
#include "tcop/deparse_utility.h"
#include "tcop/pquery.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(gb_isolation_on_ddl);

static ExecutorStart_hook_type prev_executor_start = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* Whether a statement can have made a table a member of another's tree. */
static bool
gb_may_add_members(Node *parsetree)
{
	if (parsetree == NULL)
		return true;
	if (IsA(parsetree, CreateStmt))
		return ((CreateStmt *) parsetree)->partbound != NULL ||
			((CreateStmt *) parsetree)->inhRelations != NIL;
	if (IsA(parsetree, CreateForeignTableStmt))
		return ((CreateForeignTableStmt *) parsetree)->base.partbound != NULL ||
			((CreateForeignTableStmt *) parsetree)->base.inhRelations != NIL;
	if (IsA(parsetree, AlterTableStmt))
	{
		ListCell   *lc;

		foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
		{
			AlterTableType t = ((AlterTableCmd *) lfirst(lc))->subtype;

			if (t == AT_AttachPartition || t == AT_AddInherit)
				return true;
		}
		return false;
	}
	return true;					/* CREATE SCHEMA ... CREATE TABLE ... */
}

/*
 * The tables the running command made members of a tree: created with a
 * parent, attached, or given one by INHERIT.
 */
static List *
gb_new_members(void)
{
	List	   *members = NIL;
	MemoryContext outer = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT c.command FROM pg_catalog.pg_event_trigger_ddl_commands() c", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the commands of the event trigger");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		const CollectedCommand *cmd = (const CollectedCommand *)
		DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext spi;
		ListCell   *lc;

		if (isnull || cmd == NULL)
			continue;
		spi = MemoryContextSwitchTo(outer);
		if (cmd->type == SCT_Simple && cmd->parsetree != NULL &&
			(IsA(cmd->parsetree, CreateStmt) || IsA(cmd->parsetree, CreateForeignTableStmt)) &&
			cmd->d.simple.address.classId == RelationRelationId)
			members = list_append_unique_oid(members, cmd->d.simple.address.objectId);
		else if (cmd->type == SCT_AlterTable && cmd->d.alterTable.classId == RelationRelationId)
		{
			foreach(lc, cmd->d.alterTable.subcmds)
			{
				const CollectedATSubcmd *sub = lfirst(lc);
				const AlterTableCmd *atc = (const AlterTableCmd *) sub->parsetree;

				if (atc == NULL || !IsA(atc, AlterTableCmd))
					continue;
				/*
				 * ATTACH reports no address: its partition is named as the
				 * command found it, and it is locked.  INHERIT: the child.
				 */
				if (atc->subtype == AT_AttachPartition)
				{
					Oid			attached = RangeVarGetRelid(((PartitionCmd *) atc->def)->name, NoLock, true);

					if (OidIsValid(attached) && get_rel_relispartition(attached) &&
						get_partition_parent(attached, true) == cmd->d.alterTable.objectId)
						members = list_append_unique_oid(members, attached);
				}
				else if (atc->subtype == AT_AddInherit)
					members = list_append_unique_oid(members, cmd->d.alterTable.objectId);
			}
		}
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return members;
}

/* Whether RELID is a kind of relation that takes rows: indexes join trees too. */
static bool
gb_holds_rows(Oid relid)
{
	char		relkind = get_rel_relkind(relid);

	return relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE ||
		relkind == RELKIND_FOREIGN_TABLE;
}

/* The registered (isolated) tables, or NIL. */
static List *
gb_isolated_tables(void)
{
	List	   *tables = NIL;
	MemoryContext outer = CurrentMemoryContext;
	Oid			nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);

	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid(GB_TENANT_ISOLATION_TABLE, nsp)))
		return NIL;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT i.tbl::pg_catalog.oid FROM gb_scale.tenant_isolation i", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read gb_scale.tenant_isolation");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext spi = MemoryContextSwitchTo(outer);

		CHECK_FOR_INTERRUPTS();
		tables = lappend_oid(tables, relid);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return tables;
}

/* The direct parents of RELID, partition parent or inheritance parents. */
static List *
gb_parents(Oid relid)
{
	List	   *parents = NIL;
	Relation	inherits = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(inherits, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		parents = lappend_oid(parents, ((Form_pg_inherits) GETSTRUCT(tuple))->inhparent);
	systable_endscan(scan);
	table_close(inherits, AccessShareLock);
	return parents;
}

/*
 * The isolated table whose policies RELID carries: itself if registered,
 * else the nearest registered ancestor (breadth first), else InvalidOid.
 */
static Oid
gb_governing_table(Oid relid, List *isolated)
{
	List	   *seen = list_make1_oid(relid);

	/* seen grows as parents are found; each table is visited once */
	for (int i = 0; i < list_length(seen); i++)
	{
		Oid			rel = list_nth_oid(seen, i);
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();
		if (list_member_oid(isolated, rel))
			return rel;
		foreach(lc, gb_parents(rel))
			seen = list_append_unique_oid(seen, lfirst_oid(lc));
	}
	return InvalidOid;
}

/* Refuse a newcomer whose own permissive policies would be ORed with the tenant's. */
static void
gb_refuse_own_policies(Oid relid, Oid governing)
{
	static const char *const ours[] = {"gb_tenant_read", "gb_tenant_insert", "gb_tenant_update", "gb_tenant_delete"};
	Relation	policies = table_open(PolicyRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	ScanKeyInit(&key, Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(policies, PolicyPolrelidPolnameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_policy pol = (Form_pg_policy) GETSTRUCT(tuple);
		bool		own = false;

		for (int i = 0; i < (int) lengthof(ours); i++)
			own |= strcmp(NameStr(pol->polname), ours[i]) == 0;
		if (pol->polpermissive && !own)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s has policy \"%s\" and cannot join the tenant-isolated table %s",
							gb_qualified_name(relid), NameStr(pol->polname), gb_qualified_name(governing)),
					 errdetail("Permissive policies are combined with OR: the rows it allows would show to every tenant."),
					 errhint("Drop the policy, or make it AS RESTRICTIVE, before adding the table to the tree.")));
	}
	systable_endscan(scan);
	table_close(policies, AccessShareLock);
}

/*
 * NEWCOMER and the tables under it get the policies of the isolated table
 * each of them now lies under, unless a registration inside the newcomer's
 * own subtree already governs them.
 */
static void
gb_isolate_newcomer(Oid newcomer, List *isolated)
{
	List	   *members = find_all_inheritors(newcomer, AccessExclusiveLock, NULL);
	ListCell   *lc;

	foreach(lc, members)
	{
		Oid			member = lfirst_oid(lc);
		Oid			governing = gb_governing_table(member, isolated);
		char		relkind = get_rel_relkind(member);
		Oid			save_userid;
		int			save_sec;
		int			nestlevel;

		CHECK_FOR_INTERRUPTS();
		if (!OidIsValid(governing) || list_member_oid(members, governing))
			continue;
		if (relkind == RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("foreign table %s cannot join the tenant-isolated table %s",
							gb_qualified_name(member), gb_qualified_name(governing)),
					 errdetail("Row level security does not apply to foreign tables: any role granted it would read every tenant's rows."),
					 errhint("Keep the foreign table out of the tree, or isolate the rows on the server that holds them.")));
		if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
			continue;
		gb_refuse_own_policies(member, governing);
		gb_as_owner_begin(gb_rel_owner(member), &save_userid, &save_sec, &nestlevel);
		gb_isolation_apply_to_new(governing, gb_qualified_name(member));
		gb_as_owner_end(save_userid, save_sec, nestlevel);
	}
}

/* Every table the running command brought into an isolated tree. */
static void
gb_isolate_newcomers(void)
{
	List	   *newcomers = NIL;
	List	   *isolated;
	ListCell   *lc;

	foreach(lc, gb_new_members())
	{
		if (gb_holds_rows(lfirst_oid(lc)))
			newcomers = lappend_oid(newcomers, lfirst_oid(lc));
	}
	/* a tenant move's fence: rows of a tenant served elsewhere or in motion */
	foreach(lc, newcomers)
	{
		gb_move_check_newcomer(lfirst_oid(lc));
	}
	isolated = newcomers != NIL ? gb_isolated_tables() : NIL;
	if (isolated == NIL)
		return;
	foreach(lc, newcomers)
	{
		gb_isolate_newcomer(lfirst_oid(lc), isolated);
	}
}

Datum
gb_isolation_on_ddl(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s.isolation_on_ddl() can only be called as an event trigger", GB_INTERNAL_SCHEMA)));
	if (gb_may_add_members(((EventTriggerData *) fcinfo->context)->parsetree))
		gb_isolate_newcomers();
	PG_RETURN_VOID();
}

/* Whether the transaction has a tenant now. */
static bool
gb_tenant_is_set_now(void)
{
	const char *tenant = GetConfigOption("gb_scale.tenant_id", true, false);

	return tenant != NULL && tenant[0] != '\0';
}

/*
 * Citus runs an INSERT ... SELECT that it cannot push down to the shards
 * either by repartitioning (INSERT on the shards: the policies apply) or by
 * pulling the rows to this node (LIMIT, ORDER BY, a merge step) and writing
 * them with COPY: into shards on other nodes by COPY FROM, which they refuse
 * under row level security, and into shards held on this node directly,
 * with no policy checked.  The plan does not say which (short of Citus'
 * private structures), so where this node holds shards of a target with
 * row level security, both are refused, before anything is written.  Citus
 * keeps the query's range table in the plan: the target is the relation the
 * query needs INSERT on.
 */
static void
gb_refuse_insert_select_via_coordinator(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (stmt->commandType != CMD_INSERT || stmt->planTree == NULL || !IsA(stmt->planTree, CustomScan) ||
		strcmp(((CustomScan *) stmt->planTree)->methods->CustomName, "Citus INSERT ... SELECT") != 0)
		return;
	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && (rte->requiredPerms & ACL_INSERT) &&
			check_enable_rls(rte->relid, rte->checkAsUser, true) == RLS_ENABLED &&
			gb_citus_has_local_placements(rte->relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("INSERT ... SELECT through the coordinator is not supported with row-level security"),
					 errdetail("Citus could write the rows into the shards of table %s on this node with COPY, which row level security does not check.",
							   gb_qualified_name(rte->relid)),
					 errhint("Use an INSERT ... SELECT that Citus pushes down to the shards (colocated tables, no LIMIT or ORDER BY), or INSERT ... VALUES.")));
	}
}

/*
 * A holdable cursor being started (its portal is still being defined) while
 * a tenant is set: refused before its query runs.
 */
static void
gb_guard_executor_start(QueryDesc *queryDesc, int eflags)
{
	gb_refuse_insert_select_via_coordinator(queryDesc->plannedstmt);
	if (ActivePortal != NULL && (ActivePortal->cursorOptions & CURSOR_OPT_HOLD) &&
		ActivePortal->status == PORTAL_DEFINED && gb_tenant_is_set_now())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot declare holdable cursor \"%s\" while a tenant is set", ActivePortal->name),
				 errdetail("A cursor WITH HOLD keeps the tenant's rows after the transaction ends, where the next client of a pooled connection could fetch them."),
				 errhint("Declare the cursor WITHOUT HOLD and fetch its rows before the transaction ends.")));
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * The name of a holdable cursor declared in the current transaction and
 * still open, or NULL.  pg_cursor() is the only way to list the portals.
 */
static char *
gb_holdable_cursor_of_transaction(void)
{
	FmgrInfo	flinfo;
	ReturnSetInfo rsinfo;
	LOCAL_FCINFO(fcinfo, 0);
	TupleTableSlot *slot;
	char	   *found = NULL;

	fmgr_info(F_PG_CURSOR, &flinfo);
	MemSet(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = CreateStandaloneExprContext();
	rsinfo.allowedModes = (int) SFRM_Materialize;
	InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, (Node *) &rsinfo);
	(void) FunctionCallInvoke(fcinfo);
	slot = MakeSingleTupleTableSlot(rsinfo.setDesc, &TTSOpsMinimalTuple);
	while (found == NULL && tuplestore_gettupleslot(rsinfo.setResult, true, false, slot))
	{
		bool		isnull;
		char	   *name;
		Portal		portal;

		/* columns: name, statement, is_holdable, ... */
		if (!DatumGetBool(slot_getattr(slot, 3, &isnull)))
			continue;
		name = TextDatumGetCString(slot_getattr(slot, 1, &isnull));
		portal = GetPortalByName(name);
		/* a held cursor of an earlier transaction has no creating subtransaction */
		if (PortalIsValid(portal) && portal->createSubid != InvalidSubTransactionId)
			found = name;
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(rsinfo.setResult);
	FreeExprContext(rsinfo.econtext, true);
	return found;
}

/* Called by gb_set_tenant() before it sets a tenant. */
void
gb_refuse_tenant_with_holdable_cursor(void)
{
	char	   *cursor = gb_holdable_cursor_of_transaction();

	if (cursor != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot set a tenant: this transaction declared holdable cursor \"%s\"", cursor),
				 errdetail("A cursor WITH HOLD runs its query at commit and keeps the rows after the transaction ends, where the next client of a pooled connection could fetch them."),
				 errhint("CLOSE the cursor first, or declare it WITHOUT HOLD.")));
}

/*
 * TRUNCATE of a table a tenant move is copying: refused (tenant_move.c).
 *
 * COPY FROM into a distributed table under row level security.  PostgreSQL
 * refuses it for a plain table, but Citus takes the COPY first and writes
 * rows to the shards it holds on this node with no policy checked: refused
 * here, before Citus sees it, as PostgreSQL refuses it.
 */
static void
gb_guard_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, TruncateStmt))
		gb_move_check_truncate((TruncateStmt *) parsetree);
	if (IsA(parsetree, CopyStmt) && ((CopyStmt *) parsetree)->is_from &&
		((CopyStmt *) parsetree)->relation != NULL && gb_citus_present())
	{
		Oid			relid = RangeVarGetRelid(((CopyStmt *) parsetree)->relation, NoLock, true);

		if (OidIsValid(relid) && check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED &&
			gb_citus_table(relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("COPY FROM not supported with row-level security"),
					 errdetail("Table %s is distributed by Citus and has row level security.",
							   gb_qualified_name(relid)),
					 errhint("Use INSERT statements instead.")));
	}
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
gb_tenant_guard_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = gb_guard_executor_start;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = gb_guard_process_utility;
}
