/*-------------------------------------------------------------------------
 *
 * partition_ddl.c
 *	  Reading a time tree's bounds and changing its partitions.
 *
 * A new partition is created as a standalone table (LIKE its tree), given
 * its hash buckets, its grants and storage parameters, filled from the
 * default partition when that holds rows of its period, and only then
 * attached: ATTACH takes SHARE UPDATE EXCLUSIVE on the tree, so inserts and
 * queries go on, unless rows move (gb_lock_default_for_attach).  A CHECK
 * constraint equal to the bounds spares ATTACH the scan of the rows it was
 * just given, and is dropped afterwards.  Rows move with gb_move_rows, which
 * fires no trigger, rule or foreign-key action.
 *
 * The SQL runs through SPI as whoever the caller made current (the table's
 * owner, in a security-restricted operation: see gb_as_owner_begin), with
 * search_path pinned, every name quoted and every operator qualified.
 *
 *-------------------------------------------------------------------------
 */
#include "partition.h"
#include "citus_glue.h"
#include "routing.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "commands/extension.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "partitioning/partbounds.h"
#include "storage/lmgr.h"
#include "partitioning/partdesc.h"
#include "rewrite/prs2lock.h"
#include "rewrite/rewriteDefine.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "storage/bufmgr.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* Run one SQL statement through SPI; returns the rows it processed. */
uint64
gb_exec_count(const char *sql)
{
	uint64		processed;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute(sql, false, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute failed (%d): %s", rc, sql);
	processed = SPI_processed;
	SPI_finish();
	CommandCounterIncrement();
	return processed;
}

void
gb_exec_sql(const char *sql)
{
	(void) gb_exec_count(sql);
}

char *
gb_qualified_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), relname);
}

/*
 * Work out how a tree's partition key maps to periods: RANGE on one plain
 * column of a supported type.
 */
void
gb_period_ctx_for_tree(Relation tree, const GbPartConfig *cfg, GbPeriodCtx *ctx)
{
	PartitionKey key = RelationGetPartitionKey(tree);

	if (key == NULL || key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		key->partattrs[0] == 0 ||
		!gb_control_kind_from_type(key->parttypid[0], &ctx->kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("table %s is not partitioned by RANGE on one timestamptz, timestamp, date or bigint column",
						RelationGetRelationName(tree)),
				 errhint("gb_scale manages trees declared PARTITION BY RANGE (control_column).")));
	ctx->granularity = cfg->granularity;
	ctx->control_type = key->parttypid[0];
	ctx->control_attnum = key->partattrs[0];
	ctx->control_name = get_attname(RelationGetRelid(tree), key->partattrs[0], false);
	ctx->time_zone = cfg->time_zone;
}

static int64
gb_datum_key(GbControlKind kind, Datum d)
{
	if (kind == GB_CTL_DATE)
		return (int64) DatumGetDateADT(d) * USECS_PER_DAY;
	return DatumGetInt64(d);
}

static int
gb_range_cmp(const void *a, const void *b)
{
	const GbRange *ra = (const GbRange *) a;
	const GbRange *rb = (const GbRange *) b;

	if (ra->lo != rb->lo)
		return ra->lo < rb->lo ? -1 : 1;
	return 0;
}

/* The tree's partitions in key order, from the relcache's bound info. */
GbTreeBounds *
gb_tree_bounds(Relation tree, const GbPeriodCtx *ctx)
{
	PartitionDesc pd = RelationGetPartitionDesc(tree, true);
	PartitionBoundInfo bi = pd->boundinfo;
	GbTreeBounds *result = palloc0(sizeof(GbTreeBounds));

	result->ranges = palloc0(sizeof(GbRange) * Max(pd->nparts, 1));
	result->default_oid = get_default_oid_from_partdesc(pd);
	if (bi == NULL)
		return result;
	for (int i = 1; i < bi->ndatums; i++)
	{
		int			part = bi->indexes[i];
		GbRange    *r;

		if (part < 0)
			continue;
		r = &result->ranges[result->nranges++];
		r->relid = pd->oids[part];
		if (bi->kind[i - 1][0] == PARTITION_RANGE_DATUM_MINVALUE)
			r->lo = PG_INT64_MIN;
		else if (bi->kind[i - 1][0] == PARTITION_RANGE_DATUM_MAXVALUE)
			r->lo = PG_INT64_MAX;
		else
			r->lo = gb_datum_key(ctx->kind, bi->datums[i - 1][0]);
		if (bi->kind[i][0] == PARTITION_RANGE_DATUM_MAXVALUE)
			r->hi = PG_INT64_MAX;
		else if (bi->kind[i][0] == PARTITION_RANGE_DATUM_MINVALUE)
			r->hi = PG_INT64_MIN;
		else
			r->hi = gb_datum_key(ctx->kind, bi->datums[i][0]);
	}
	qsort(result->ranges, result->nranges, sizeof(GbRange), gb_range_cmp);
	return result;
}

/* A name in the namespace that no relation has: BASE_SUFFIX, clipped to fit. */
static char *
gb_unique_name(Oid nsp, const char *base, const char *suffix)
{
	for (int attempt = 1; attempt < 1000; attempt++)
	{
		char	   *tail = attempt == 1 ? psprintf("_%s", suffix) : psprintf("_%s_%d", suffix, attempt);
		int			room = NAMEDATALEN - 1 - (int) strlen(tail);
		int			keep = pg_mbcliplen(base, (int) strlen(base), Max(room, 1));
		char	   *name = psprintf("%.*s%s", keep, base, tail);

		if (!OidIsValid(get_relname_relid(name, nsp)))
			return name;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_TABLE),
			 errmsg("no free name for a partition of \"%s\" with suffix \"%s\"", base, suffix)));
	return NULL;				/* keep compilers quiet */
}

/* " WITH (...)" holding a relation's storage parameters, or "". */
static char *
gb_reloptions_clause(Oid relid)
{
	HeapTuple	tup;
	Datum		d;
	bool		isnull;
	Datum	   *elems;
	int			nelems;
	StringInfoData buf;

	if (!OidIsValid(relid))
		return "";
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return "";
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_reloptions, &isnull);
	if (isnull)
	{
		ReleaseSysCache(tup);
		return "";
	}
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
	initStringInfo(&buf);
	for (int i = 0; i < nelems; i++)
	{
		char	   *opt = TextDatumGetCString(elems[i]);
		char	   *eq = strchr(opt, '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		appendStringInfo(&buf, "%s%s = %s", buf.len == 0 ? " WITH (" : ", ",
						 quote_identifier(opt), quote_literal_cstr(eq + 1));
	}
	ReleaseSysCache(tup);
	if (buf.len > 0)
		appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * The leaf whose storage parameters new partitions take: the newest time
 * partition (its first bucket when it has buckets).  A partitioned table has
 * no storage parameters of its own, so this is how a setting made on the
 * current partition carries forward.
 */
static Oid
gb_template_leaf(const GbTreeBounds *bounds)
{
	Oid			relid;

	if (bounds->nranges == 0)
		return InvalidOid;
	relid = bounds->ranges[bounds->nranges - 1].relid;
	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
	{
		List	   *children = find_inheritance_children(relid, NoLock);

		relid = children != NIL ? linitial_oid(children) : InvalidOid;
	}
	return relid;
}

static const struct
{
	AclMode		mode;
	const char *name;
}			gb_table_privileges[] = {
	{ACL_SELECT, "SELECT"},
	{ACL_INSERT, "INSERT"},
	{ACL_UPDATE, "UPDATE"},
	{ACL_DELETE, "DELETE"},
	{ACL_TRUNCATE, "TRUNCATE"},
	{ACL_REFERENCES, "REFERENCES"},
	{ACL_TRIGGER, "TRIGGER"},
};

static void
gb_append_privileges(StringInfo buf, AclMode privs)
{
	bool		first = true;

	for (int i = 0; i < (int) lengthof(gb_table_privileges); i++)
	{
		if ((privs & gb_table_privileges[i].mode) == 0)
			continue;
		appendStringInfo(buf, "%s%s", first ? "" : ", ", gb_table_privileges[i].name);
		first = false;
	}
}

/*
 * Give TARGET the grants SOURCE has, other than its owner's own.  (A new
 * member of an isolated tree gets the tree's policies from the event trigger
 * in tenant_guard.c, whoever adds it.)
 */
static void
gb_copy_grants(Oid source, const char *target)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(source));
	Datum		d;
	bool		isnull;
	Oid			owner;
	Acl		   *acl;
	AclItem    *items;

	if (!HeapTupleIsValid(tup))
		return;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relacl, &isnull);
	if (isnull)
	{
		ReleaseSysCache(tup);
		return;
	}
	acl = DatumGetAclPCopy(d);
	ReleaseSysCache(tup);
	items = ACL_DAT(acl);
	for (int i = 0; i < ACL_NUM(acl); i++)
	{
		AclMode		privs = ACLITEM_GET_PRIVS(items[i]);
		AclMode		goptions = ACLITEM_GET_GOPTIONS(items[i]);
		const char *grantee;
		StringInfoData sql;

		if (items[i].ai_grantee == owner)
			continue;
		grantee = items[i].ai_grantee == ACL_ID_PUBLIC ? "PUBLIC" :
			quote_identifier(GetUserNameFromId(items[i].ai_grantee, false));
		initStringInfo(&sql);
		if ((privs & ~goptions) != 0)
		{
			appendStringInfoString(&sql, "GRANT ");
			gb_append_privileges(&sql, privs & ~goptions);
			appendStringInfo(&sql, " ON TABLE %s TO %s", target, grantee);
			gb_exec_sql(sql.data);
		}
		if (goptions != 0)
		{
			resetStringInfo(&sql);
			appendStringInfoString(&sql, "GRANT ");
			gb_append_privileges(&sql, goptions);
			appendStringInfo(&sql, " ON TABLE %s TO %s WITH GRANT OPTION", target, grantee);
			gb_exec_sql(sql.data);
		}
	}
}

/* The registered table a tree belongs to (itself, or its LIST parent). */
static Oid
gb_registered_parent(Oid tree, const GbPartConfig *cfg)
{
	return cfg->is_list && tree != cfg->parent ? cfg->parent : tree;
}

/* The columns a row move copies: every stored column, quoted, comma-separated. */
char *
gb_column_list(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len == 0 ? "" : ", ", quote_identifier(NameStr(att->attname)));
	}
	return buf.data;
}

char *
gb_tenant_column_of(const GbPartConfig *cfg)
{
	if (cfg->is_list)
	{
		Relation	parent = relation_open(cfg->parent, NoLock);
		PartitionKey key = RelationGetPartitionKey(parent);
		char	   *name = get_attname(cfg->parent, key->partattrs[0], false);

		relation_close(parent, NoLock);
		return name;
	}
	return cfg->tenant_column;
}

/* The name of rule RULE_ID. */
static char *
gb_rule_name(Oid rule_id)
{
	Relation	rewrite = table_open(RewriteRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *name = NULL;

	ScanKeyInit(&key, Anum_pg_rewrite_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(rule_id));
	scan = systable_beginscan(rewrite, RewriteOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		name = pstrdup(NameStr(((Form_pg_rewrite) GETSTRUCT(tuple))->rulename));
	systable_endscan(scan);
	table_close(rewrite, AccessShareLock);
	if (name == NULL)
		elog(ERROR, "cache lookup failed for rule %u", rule_id);
	return name;
}

/*
 * A move runs with session_replication_role = replica, which keeps the
 * foreign-key actions of referencing tables and the table's ordinary
 * triggers and rules from firing: moving a row is no DELETE and INSERT of
 * the application's.  Triggers and rules enabled ALWAYS or REPLICA would
 * fire all the same, so a move over a relation that has one is refused.
 */
static void
gb_refuse_firing_move(Oid tree)
{
	ListCell   *lc;

	foreach(lc, find_all_inheritors(tree, RowExclusiveLock, NULL))
	{
		Relation	rel = relation_open(lfirst_oid(lc), NoLock);
		const char *what = NULL;
		const char *name = NULL;
		char		enabled = 0;

		for (int i = 0; rel->trigdesc != NULL && i < rel->trigdesc->numtriggers && what == NULL; i++)
		{
			const Trigger *tg = &rel->trigdesc->triggers[i];

			/* a move's pacing trigger acts in table syncs only */
			if ((tg->tgenabled == TRIGGER_FIRES_ALWAYS || tg->tgenabled == TRIGGER_FIRES_ON_REPLICA) &&
				(TRIGGER_FOR_INSERT(tg->tgtype) || TRIGGER_FOR_DELETE(tg->tgtype)) &&
				!gb_move_is_pace_trigger(tg->tgfoid))
			{
				what = "trigger";
				name = tg->tgname;
				enabled = tg->tgenabled;
			}
		}
		for (int i = 0; rel->rd_rules != NULL && i < rel->rd_rules->numLocks && what == NULL; i++)
		{
			const RewriteRule *rule = rel->rd_rules->rules[i];

			if ((rule->enabled == RULE_FIRES_ALWAYS || rule->enabled == RULE_FIRES_ON_REPLICA) &&
				(rule->event == CMD_INSERT || rule->event == CMD_DELETE))
			{
				what = "rule";
				name = gb_rule_name(rule->ruleId);
				enabled = rule->enabled;
			}
		}
		if (what != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot move rows of %s between partitions: %s \"%s\" on %s is enabled %s and would fire",
							gb_qualified_name(tree), what, name, gb_qualified_name(RelationGetRelid(rel)),
							enabled == TRIGGER_FIRES_ALWAYS ? "ALWAYS" : "REPLICA"),
					 errdetail("Moving rows between partitions fires no trigger, rule or foreign-key action."),
					 errhint("Make it an ordinary one (ALTER TABLE %s ENABLE %s %s) for the move.",
							 gb_qualified_name(RelationGetRelid(rel)), strcmp(what, "rule") == 0 ? "RULE" : "TRIGGER",
							 quote_identifier(name))));
		relation_close(rel, NoLock);
	}
}

/* Whether a foreign key references RELID; *NAME gets the first one's name. */
static bool
gb_is_referenced(Oid relid, const char **name)
{
	Relation	rel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key, Anum_pg_constraint_confrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	while (!found && (tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);

		if (con->contype == CONSTRAINT_FOREIGN)
		{
			*name = pstrdup(NameStr(con->conname));
			found = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * A move between Citus tables runs on the workers as ordinary DELETE and
 * INSERT: refused when an enabled INSERT or DELETE trigger of a relation of
 * TREE, or a foreign key referencing one, would act on it.
 */
static void
gb_refuse_firing_move_citus(Oid tree)
{
	ListCell   *lc;

	foreach(lc, find_all_inheritors(tree, RowExclusiveLock, NULL))
	{
		Relation	rel = relation_open(lfirst_oid(lc), NoLock);
		const char *what = NULL;
		const char *name = NULL;

		for (int i = 0; rel->trigdesc != NULL && i < rel->trigdesc->numtriggers && what == NULL; i++)
		{
			const Trigger *tg = &rel->trigdesc->triggers[i];

			if (tg->tgenabled != TRIGGER_DISABLED && !tg->tgisinternal &&
				(TRIGGER_FOR_INSERT(tg->tgtype) || TRIGGER_FOR_DELETE(tg->tgtype)))
			{
				what = "trigger";
				name = tg->tgname;
			}
		}
		if (what == NULL && gb_is_referenced(RelationGetRelid(rel), &name))
			what = "foreign key";
		if (what != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot move rows of Citus table %s to another partition: %s \"%s\" on %s would act on the move",
							gb_qualified_name(tree), what, name, gb_qualified_name(RelationGetRelid(rel))),
					 errdetail("On Citus the workers move the rows with DELETE and INSERT, which fire triggers and foreign-key actions."),
					 errhint("Disable it for the move, or move the rows by hand.")));
		relation_close(rel, NoLock);
	}
}

/*
 * The statement of the move running in this backend, if any.  While it
 * runs, code of the table's owner (a CHECK constraint or a generated column
 * of the new partition, a policy) may run too, and with foreign keys not
 * enforced it must change no data: only the move's own statement may.
 */
static const char *gb_move_sql = NULL;
static const char *gb_move_source = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;

/* Whether ROOT is registered with gb_scale in this database. */
static bool
gb_is_registered_root(Oid root)
{
	Oid			nsp;
	Oid			config;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	bool		found;

	if (!OidIsValid(get_extension_oid("gb_scale", true)))
		return false;
	nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);
	config = OidIsValid(nsp) ? get_relname_relid(GB_PARTITION_CONFIG_TABLE, nsp) : InvalidOid;
	if (!OidIsValid(config))
		return false;
	rel = table_open(config, AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(root));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * A REPEATABLE READ or SERIALIZABLE statement whose snapshot predates a
 * partition sees none of its rows.  Had a move filled that partition, an
 * UPDATE or DELETE pruned to it would change nothing and say so without
 * error, where the rows stood committed in the old partition as of its
 * snapshot.  Such a write to a non-empty partition of a registered table
 * created after the snapshot fails with a serialization failure, which the
 * application retries.  Inserts are not affected: a conflict with an
 * invisible row already fails.
 */
static void
gb_refuse_write_past_snapshot(const QueryDesc *queryDesc)
{
	const PlannedStmt *stmt = queryDesc->plannedstmt;
	ListCell   *lc;

	if (!IsolationUsesXactSnapshot() || IsParallelWorker() || queryDesc->snapshot == NULL ||
		!IsMVCCSnapshot(queryDesc->snapshot) ||
		!(queryDesc->operation == CMD_UPDATE || queryDesc->operation == CMD_DELETE ||
		  queryDesc->operation == CMD_MERGE || stmt->hasModifyingCTE))
		return;
	foreach(lc, stmt->rtable)
	{
		const RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		HeapTuple	tuple;
		TransactionId xmin;
		bool		stale;
		Relation	rel;
		BlockNumber blocks;
		List	   *ancestors;

		if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_RELATION)
			continue;
		tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(rte->relid));
		if (!HeapTupleIsValid(tuple))
			continue;
		xmin = HeapTupleHeaderGetXmin(tuple->t_data);
		stale = ((Form_pg_class) GETSTRUCT(tuple))->relispartition && TransactionIdIsNormal(xmin) &&
			!TransactionIdIsCurrentTransactionId(xmin) && XidInMVCCSnapshot(xmin, queryDesc->snapshot);
		ReleaseSysCache(tuple);
		if (!stale)
			continue;
		rel = relation_open(rte->relid, AccessShareLock);
		blocks = RelationGetNumberOfBlocks(rel);
		relation_close(rel, NoLock);
		if (blocks == 0)
			continue;
		ancestors = get_partition_ancestors(rte->relid);
		if (ancestors != NIL && gb_is_registered_root(llast_oid(ancestors)))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access to partition %s, made or altered after this transaction's snapshot",
							gb_qualified_name(rte->relid)),
					 errdetail("Rows may have moved into it (a drain or gb_tenant_dedicate) after the snapshot was taken; changing them now could silently change none."),
					 errhint("Retry the transaction.")));
	}
}

static void
gb_move_executor_start(QueryDesc *queryDesc, int eflags)
{
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
		gb_refuse_write_past_snapshot(queryDesc);
	if (gb_move_sql != NULL && (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
		(queryDesc->operation != CMD_SELECT || queryDesc->plannedstmt->hasModifyingCTE) &&
		(queryDesc->sourceText == NULL || strcmp(queryDesc->sourceText, gb_move_sql) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot change data while rows of %s move between partitions", gb_move_source),
				 errdetail("Code of the table's owner (a CHECK constraint, a generated column or a policy) ran during the move: %s",
						   queryDesc->sourceText != NULL ? queryDesc->sourceText : "?"),
				 errhint("Such code must only read.")));
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

void
gb_move_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = gb_move_executor_start;
}

/*
 * Move the rows of SOURCE that QUAL selects into DEST, a table not attached
 * yet, as the current user; COLUMNS are the stored columns of both.  Returns
 * the rows moved.  The caller holds the locks that keep writers from
 * planning against the partitions as they were (see the README).
 */
uint64
gb_move_rows(Oid source, Oid dest, const char *columns, const char *qual)
{
	char	   *sql = psprintf("WITH moved AS (DELETE FROM %s WHERE %s RETURNING %s) "
							   "INSERT INTO %s (%s) SELECT %s FROM moved",
							   gb_qualified_name(source), qual, columns,
							   gb_qualified_name(dest), columns, columns);
	int			nestlevel;
	uint64		moved = 0;

	gb_refuse_firing_move(source);
	gb_refuse_firing_move(dest);
	/* every setting changed in the move, also by the owner's code, undone after it */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	gb_move_source = gb_qualified_name(source);
	gb_move_sql = sql;
	PG_TRY();
	{
		moved = gb_exec_count(sql);
	}
	PG_FINALLY();
	{
		gb_move_sql = NULL;
		gb_move_source = NULL;
	}
	PG_END_TRY();
	AtEOXact_GUC(false, nestlevel);
	return moved;
}

/*
 * Move rows as gb_move_rows does, between Citus tables colocated by their
 * distribution column: an INSERT ... SELECT that each worker runs on its own
 * shards, then a DELETE of the same rows, in Citus' distributed transaction
 * (two-phase commit).  The workers run them in their own sessions, where
 * session_replication_role stays origin: triggers and foreign-key actions
 * would fire there, so a move is refused where one would.
 */
static uint64
gb_move_rows_citus(Oid source, Oid dest, const char *columns, const char *qual)
{
	char	   *qsource = gb_qualified_name(source);
	uint64		moved;

	gb_refuse_firing_move_citus(source);
	moved = gb_exec_count(psprintf("INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s",
								   gb_qualified_name(dest), columns, columns, qsource, qual));
	if (gb_exec_count(psprintf("DELETE FROM %s WHERE %s", qsource, qual)) != moved)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("rows of default partition %s changed while they were moved", qsource),
				 errhint("The next maintenance pass moves them.")));
	return moved;
}

/*
 * Distribute the new table QNAME as Citus table TREE is, colocated with it,
 * before anything is moved into it or it is attached: Citus attaches a
 * partition shard by shard, and each shard of the default must by then hold
 * no row of the partition's range.
 */
static void
gb_distribute_like(Oid tree, const char *qname)
{
	char	   *column = gb_citus_distribution_column(tree);

	if (column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("Citus table %s has no distribution column", gb_qualified_name(tree)),
				 errhint("gb_scale maintains Citus tables distributed by a column (create_distributed_table).")));
	gb_exec_sql(psprintf("SELECT pg_catalog.create_distributed_table(%s, %s, colocate_with => %s)",
						 quote_literal_cstr(qname), quote_literal_cstr(column),
						 quote_literal_cstr(gb_qualified_name(tree))));
}

static const char *gb_like_options =
"INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE "
"INCLUDING COMPRESSION INCLUDING STATISTICS";

/*
 * Lock default partition DEFLT of a tree of registered table ROOT before
 * attaching partition QNAME, which takes the rows QUAL selects from it (if
 * any: returns whether).  ATTACH locks the default so anyway; locking it
 * before the move keeps a row of the range inserted meanwhile from landing
 * in the default and failing the ATTACH.
 *
 * Rows to move: first ACCESS EXCLUSIVE on ROOT, which its writers and
 * readers lock before they read its partitions, so that those who wait for
 * the move plan with the new partition.  A writer that planned with the old
 * ones would find its row gone and change nothing; a reader would miss the
 * rows.  ROOT is not locked when nothing is to move, as for most premade
 * partitions: its readers and writers go on.
 */
static bool
gb_lock_default_for_attach(Oid root, Oid deflt, const char *qual, const char *qname)
{
	char	   *probe = psprintf("SELECT FROM %s WHERE %s LIMIT 1", gb_qualified_name(deflt), qual);
	bool		rows = gb_exec_count(probe) > 0;

	if (rows)
		LockRelationOid(root, AccessExclusiveLock);
	LockRelationOid(deflt, AccessExclusiveLock);
	if (rows || gb_exec_count(probe) == 0)
		return rows;
	/* rows that arrived since the probe: waiting for ROOT now could deadlock */
	if (!ConditionalLockRelationOid(root, AccessExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("rows of partition %s arrived in default partition %s while the partition was being made",
						qname, gb_qualified_name(deflt)),
				 errhint("The next maintenance pass moves them.")));
	return true;
}

/*
 * Create the partition of TREE for the period starting at local START,
 * moving into it the rows of that period that wait in the default
 * partition.  Returns the new partition.
 */
Oid
gb_create_time_partition(const GbPartConfig *cfg, Oid tree, const GbPeriodCtx *ctx,
						 const GbTreeBounds *bounds, Timestamp start, int64 *moved)
{
	return gb_create_range_partition(cfg, tree, ctx, bounds, gb_period_lower(ctx, start),
									 gb_period_lower(ctx, gb_period_next(ctx, start)), moved);
}

/*
 * Create the partition of TREE for keys [LO, HI): a period, or the piece of
 * one that partitions of an earlier granularity leave uncovered.
 */
Oid
gb_create_range_partition(const GbPartConfig *cfg, Oid tree, const GbPeriodCtx *ctx,
						  const GbTreeBounds *bounds, int64 lo, int64 hi, int64 *moved)
{
	Oid			nsp = get_rel_namespace(tree);
	char	   *treename = get_rel_name(tree);
	char	   *nspname = get_namespace_name(nsp);
	char	   *lo_lit = gb_key_literal(ctx, lo);
	char	   *hi_lit = gb_key_literal(ctx, hi);
	char	   *name = gb_unique_name(nsp, treename, psprintf("p%s", gb_range_suffix(ctx, lo, hi)));
	char	   *qname = quote_qualified_identifier(nspname, name);
	char	   *qtree = quote_qualified_identifier(nspname, treename);
	const char *qcol = quote_identifier(ctx->control_name);
	Oid			grants_from = gb_registered_parent(tree, cfg);
	char	   *with = gb_reloptions_clause(gb_template_leaf(bounds));
	char	   *qual = psprintf("%s OPERATOR(pg_catalog.>=) %s AND %s OPERATOR(pg_catalog.<) %s",
								qcol, lo_lit, qcol, hi_lit);
	bool		fill = false;	/* rows of the range wait in the default */
	bool		citus = gb_citus_table(tree);
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TABLE %s (LIKE %s %s)", qname, qtree, gb_like_options);
	if (cfg->tenant_buckets > 0)
		appendStringInfo(&sql, " PARTITION BY HASH (%s)", quote_identifier(gb_tenant_column_of(cfg)));
	else
		appendStringInfoString(&sql, with);
	gb_exec_sql(sql.data);
	gb_copy_grants(grants_from, qname);
	if (citus)
		gb_distribute_like(tree, qname);

	for (int b = 0; b < cfg->tenant_buckets; b++)
	{
		char	   *bucket = gb_unique_name(nsp, name, psprintf("h%d", b));
		char	   *qbucket = quote_qualified_identifier(nspname, bucket);

		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE TABLE %s PARTITION OF %s FOR VALUES WITH (MODULUS %d, REMAINDER %d)%s",
						 qbucket, qname, cfg->tenant_buckets, b, with);
		gb_exec_sql(sql.data);
		gb_copy_grants(grants_from, qbucket);
	}

	if (OidIsValid(bounds->default_oid))
		fill = gb_lock_default_for_attach(gb_registered_parent(tree, cfg), bounds->default_oid, qual, qname);
	if (fill)
	{
		Relation	deflt = relation_open(bounds->default_oid, NoLock);
		char	   *columns = gb_column_list(deflt);
		uint64		n;

		relation_close(deflt, NoLock);
		gb_exec_sql(psprintf("ALTER TABLE %s ADD CONSTRAINT gb_scale_period CHECK (%s)", qname, qual));
		n = citus ? gb_move_rows_citus(bounds->default_oid, get_relname_relid(name, nsp), columns, qual) :
			gb_move_rows(bounds->default_oid, get_relname_relid(name, nsp), columns, qual);
		if (moved)
			*moved += (int64) n;
	}

	resetStringInfo(&sql);
	appendStringInfo(&sql, "ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)",
					 qtree, qname, lo_lit, hi_lit);
	gb_exec_sql(sql.data);
	if (fill)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s DROP CONSTRAINT gb_scale_period", qname);
		gb_exec_sql(sql.data);
	}
	return get_relname_relid(name, nsp);
}

/* Give TREE a default partition: <tree>_default, a plain table. */
void
gb_create_default_partition(const GbPartConfig *cfg, Oid tree)
{
	Oid			nsp = get_rel_namespace(tree);
	char	   *nspname = get_namespace_name(nsp);
	char	   *qname = quote_qualified_identifier(nspname, gb_unique_name(nsp, get_rel_name(tree), "default"));
	char	   *qtree = quote_qualified_identifier(nspname, get_rel_name(tree));

	gb_exec_sql(psprintf("CREATE TABLE %s (LIKE %s %s)", qname, qtree, gb_like_options));
	gb_copy_grants(gb_registered_parent(tree, cfg), qname);
	gb_exec_sql(psprintf("ALTER TABLE %s ATTACH PARTITION %s DEFAULT", qtree, qname));
}

/*
 * PostgreSQL invalidates a default partition when its siblings change, but
 * not the partitions under it, whose cached partition constraints include
 * the default's.  Until their caches were rebuilt, an UPDATE that gives a row
 * of the tenants tail a tenant just dedicated would leave the row in the
 * tail.  So the whole tail of PARENT is invalidated, here and in every
 * backend at commit.
 */
void
gb_invalidate_default_tree(Oid parent)
{
	Relation	rel = relation_open(parent, NoLock);
	Oid			deflt = get_default_oid_from_partdesc(RelationGetPartitionDesc(rel, true));
	List	   *tree;
	ListCell   *lc;

	relation_close(rel, NoLock);
	if (!OidIsValid(deflt) || get_rel_relkind(deflt) != RELKIND_PARTITIONED_TABLE)
		return;
	tree = find_all_inheritors(deflt, NoLock, NULL);
	foreach(lc, tree)
	{
		CHECK_FOR_INTERRUPTS();
		CacheInvalidateRelcacheByRelid(lfirst_oid(lc));
	}
}

/*
 * A time tree under a LIST parent: the tenants tail (attached at once as the
 * parent's DEFAULT partition) or a dedicated tenant's subtree, which the
 * caller fills and attaches.  A subtree carries CHECK (tenant = id) so that
 * attaching it needs no scan of its rows.
 */
Oid
gb_create_subtree(const GbPartConfig *cfg, const char *control, bool has_tenant, int64 tenant_id,
				  bool as_default)
{
	Oid			nsp = get_rel_namespace(cfg->parent);
	char	   *nspname = get_namespace_name(nsp);
	char	   *name = gb_unique_name(nsp, get_rel_name(cfg->parent),
									  has_tenant ? psprintf("t" INT64_FORMAT, tenant_id) : "tenants");
	char	   *qname = quote_qualified_identifier(nspname, name);
	char	   *qparent = quote_qualified_identifier(nspname, get_rel_name(cfg->parent));

	gb_exec_sql(psprintf("CREATE TABLE %s (LIKE %s %s) PARTITION BY RANGE (%s)",
						 qname, qparent, gb_like_options, quote_identifier(control)));
	gb_copy_grants(cfg->parent, qname);
	if (has_tenant)
		gb_exec_sql(psprintf("ALTER TABLE %s ADD CONSTRAINT gb_scale_tenant CHECK (%s OPERATOR(pg_catalog.=) " INT64_FORMAT ")",
							 qname, quote_identifier(gb_tenant_column_of(cfg)), tenant_id));
	if (as_default)
		gb_exec_sql(psprintf("ALTER TABLE %s ATTACH PARTITION %s DEFAULT", qparent, qname));
	return get_relname_relid(name, nsp);
}

/*
 * A name for RELID that no relation has in the archive schema nor in its
 * own: its name, else its schema's name and its name joined by "_", else
 * that with "_2", "_3", ... (clipped to fit).  Two tables of one name in
 * different schemas may archive into one schema.
 */
static char *
gb_archive_name(Oid relid, Oid archive_nsp)
{
	Oid			nsp = get_rel_namespace(relid);
	char	   *relname = get_rel_name(relid);
	char	   *base = psprintf("%s_%s", get_namespace_name(nsp), relname);

	if (!OidIsValid(get_relname_relid(relname, archive_nsp)))
		return relname;
	for (int attempt = 1; attempt < 1000; attempt++)
	{
		char	   *tail = attempt == 1 ? "" : psprintf("_%d", attempt);
		int			room = NAMEDATALEN - 1 - (int) strlen(tail);
		int			keep = pg_mbcliplen(base, (int) strlen(base), room);
		char	   *name = psprintf("%.*s%s", keep, base, tail);

		CHECK_FOR_INTERRUPTS();
		if (!OidIsValid(get_relname_relid(name, archive_nsp)) && !OidIsValid(get_relname_relid(name, nsp)))
			return name;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_TABLE),
			 errmsg("no free name in schema \"%s\" to archive \"%s\"", get_namespace_name(archive_nsp), relname),
			 errhint("Drop or rename the tables archived under that name.")));
	return NULL;				/* keep compilers quiet */
}

/* Move a table and its indexes to the archive schema, renaming what is taken there. */
static void
gb_archive_relation(Oid relid, const char *archive_schema)
{
	Oid			archive_nsp = get_namespace_oid(archive_schema, false);
	Relation	rel = relation_open(relid, AccessExclusiveLock);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	char	   *name;

	relation_close(rel, NoLock);
	foreach(lc, indexes)
	{
		Oid			index = lfirst_oid(lc);

		name = gb_archive_name(index, archive_nsp);
		if (strcmp(name, get_rel_name(index)) != 0)
			gb_exec_sql(psprintf("ALTER INDEX %s RENAME TO %s", gb_qualified_name(index), quote_identifier(name)));
	}
	name = gb_archive_name(relid, archive_nsp);
	if (strcmp(name, get_rel_name(relid)) != 0)
		gb_exec_sql(psprintf("ALTER TABLE %s RENAME TO %s", gb_qualified_name(relid), quote_identifier(name)));
	gb_exec_sql(psprintf("ALTER TABLE %s SET SCHEMA %s", gb_qualified_name(relid), quote_identifier(archive_schema)));
}

/*
 * Retire a partition past retention: detach it (unless DETACHED says that
 * was done concurrently), then drop it, leave it, or move it (and its
 * buckets) to the archive schema.
 */
void
gb_retire_partition(Oid tree, Oid partition, GbRetentionMode mode, const char *archive_schema,
					bool detached)
{
	char	   *qpart = gb_qualified_name(partition);
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;

	if (!detached)
		gb_exec_sql(psprintf("ALTER TABLE %s DETACH PARTITION %s", gb_qualified_name(tree), qpart));

	/*
	 * Dropped or moved as its own owner: after ALTER TABLE ... OWNER TO, the
	 * older partitions still belong to the table's former owner (whose
	 * DROP TABLE of the parent would have dropped them all the same).
	 */
	gb_as_owner_begin(gb_rel_owner(partition), &save_userid, &save_sec, &nestlevel);
	switch (mode)
	{
		case GB_RETAIN_DROP:
			gb_exec_sql(psprintf("DROP TABLE %s", qpart));
			break;
		case GB_RETAIN_DETACH:
			break;
		case GB_RETAIN_ARCHIVE:
			{
				List	   *rels = find_all_inheritors(partition, AccessExclusiveLock, NULL);

				for (int i = 0; i < list_length(rels); i++)
					gb_archive_relation(list_nth_oid(rels, i), archive_schema);
			}
			break;
	}
	gb_as_owner_end(save_userid, save_sec, nestlevel);
}

void
gb_finalize_detach(Oid tree, Oid partition)
{
	gb_exec_sql(psprintf("ALTER TABLE %s DETACH PARTITION %s FINALIZE",
						 gb_qualified_name(tree), gb_qualified_name(partition)));
}

/* Partitions of TREE left half-detached by an interrupted DETACH CONCURRENTLY. */
List *
gb_pending_detaches(Oid tree)
{
	Relation	rel = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;

	ScanKeyInit(&key, Anum_pg_inherits_inhparent, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(tree));
	scan = systable_beginscan(rel, InheritsParentIndexId, true, NULL, 1, &key);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_inherits inh = (Form_pg_inherits) GETSTRUCT(tup);

		if (inh->inhdetachpending)
			result = lappend_oid(result, inh->inhrelid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * Lock TREE for reading (a dry run never waits) and read its period rules and
 * bounds.  The relation is closed again, keeping the lock: DDL on a table
 * refuses to run while this backend still has it open.  False when the tree
 * is gone or, in a dry run, busy.
 */
bool
gb_read_tree(Oid tree, const GbPartConfig *cfg, bool dry_run, GbPeriodCtx *ctx, GbTreeBounds **bounds)
{
	Relation	rel;

	if (dry_run)
	{
		if (!ConditionalLockRelationOid(tree, AccessShareLock))
			return false;
		rel = try_relation_open(tree, NoLock);
	}
	else
		rel = try_relation_open(tree, AccessShareLock);
	if (rel == NULL)
		return false;
	gb_period_ctx_for_tree(rel, cfg, ctx);
	*bounds = gb_tree_bounds(rel, ctx);
	relation_close(rel, NoLock);
	return true;
}
