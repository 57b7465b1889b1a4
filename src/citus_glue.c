/*
 * citus_glue.c: calls into Citus, resolved by name in its library.
 *
 * The symbols are looked up on first use in every backend (the library is
 * preloaded wherever the citus extension exists, so the lookup is cheap) and
 * a missing one is an error naming it: a Citus release without it is not
 * supported.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "citus_glue.h"

typedef bool (*GbCitusBoolFn) (void);
typedef bool (*GbCitusRelationFn) (Oid relid);
typedef void (*GbCitusCommandFn) (const char *command);
typedef void (*GbCitusVoidFn) (void);
typedef void (*GbCitusSetFn) (VariableSetStmt *stmt, const char *command);

static void *
gb_citus_symbol(const char *name)
{
	return load_external_function("$libdir/citus", name, true, NULL);
}

/*
 * Called on hot paths (every gb_set_tenant, every routing lookup): Citus
 * works only from shared_preload_libraries, where it defines its settings,
 * so without one of them there is no catalog lookup to make.
 */
bool
gb_citus_present(void)
{
	if (GetConfigOption("citus.enable_ddl_propagation", true, false) == NULL)
		return false;
	return OidIsValid(get_extension_oid("citus", true));
}

bool
gb_citus_is_coordinator(void)
{
	if (!gb_citus_present())
		return false;
	return ((GbCitusBoolFn) gb_citus_symbol("IsCoordinator")) ();
}

bool
gb_citus_ddl_propagation(void)
{
	const char *value;

	if (!gb_citus_present())
		return false;
	value = GetConfigOption("citus.enable_ddl_propagation", true, false);
	return value != NULL && strcmp(value, "on") == 0;
}

void
gb_citus_send_to_workers(const char *command)
{
	((GbCitusCommandFn) gb_citus_symbol("SendCommandToWorkersWithMetadata")) (command);
}

bool
gb_citus_table(Oid relid)
{
	if (!gb_citus_present())
		return false;
	return ((GbCitusRelationFn) gb_citus_symbol("IsCitusTable")) (relid);
}

/*
 * One value of a query of Citus' functions about RELID ($1), as text in the
 * caller's memory context; NULL for no row or NULL.
 */
static char *
gb_citus_query_value(const char *sql, Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	MemoryContext cxt = CurrentMemoryContext;
	char	   *result = NULL;
	int			nestlevel;

	/* some of Citus' functions are PL/pgSQL that name objects unqualified */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, 1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not ask Citus about relation %u", relid);
	if (SPI_processed == 1)
	{
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (value != NULL)
			result = MemoryContextStrdup(cxt, value);
	}
	SPI_finish();
	AtEOXact_GUC(false, nestlevel);
	return result;
}

char *
gb_citus_distribution_column(Oid relid)
{
	return gb_citus_query_value("SELECT pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)"
								" FROM pg_catalog.pg_dist_partition p"
								" WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1"
								" AND p.partkey IS NOT NULL", relid);
}

int64
gb_citus_total_size(Oid relid)
{
	char	   *value = gb_citus_query_value("SELECT pg_catalog.citus_total_relation_size($1)", relid);

	return value == NULL ? 0 : pg_strtoint64(value);
}

bool
gb_citus_estimated_rows(Oid relid, int64 *rows)
{
	/* %s is each shard's name; a shard never analyzed has reltuples -1 */
	char	   *value = gb_citus_query_value("SELECT pg_catalog.sum(r.n) FROM"
										   " (SELECT CASE WHEN s.success AND s.result OPERATOR(pg_catalog.~) '^[0-9]+$'"
										   " THEN s.result::pg_catalog.int8 END AS n"
										   " FROM pg_catalog.run_command_on_shards($1,"
										   " 'SELECT c.reltuples::pg_catalog.int8 FROM pg_catalog.pg_class c"
										   " WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(''%s'')') s) r",
										   relid);

	if (value == NULL)
		return false;
	*rows = pg_strtoint64(value);
	return true;
}

bool
gb_citus_has_local_placements(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		local;

	if (!gb_citus_present())
		return false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT FROM pg_catalog.pg_dist_shard s"
							  " JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid"
							  " WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass"
							  " AND p.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_catalog.pg_dist_placement");
	local = SPI_processed > 0;
	SPI_finish();
	return local;
}

void
gb_citus_forward_command(const char *command)
{
	VariableSetStmt *stmt = makeNode(VariableSetStmt);
	int			nestlevel;

	/*
	 * Remote transaction blocks from now on: outside one, a read-only router
	 * query would go to a worker without the commands sent at BEGIN.
	 */
	((GbCitusVoidFn) gb_citus_symbol("UseCoordinatedTransaction")) ();

	/*
	 * What Citus does for SET LOCAL: run COMMAND on the connections already
	 * in the transaction, and keep it (per subtransaction) for those that
	 * join later.  Only the text is used; the statement describes it.
	 */
	stmt->kind = VAR_SET_VALUE;
	stmt->name = "gb_scale.tenant_id";
	stmt->is_local = true;
	/* as Citus calls it: with SET LOCAL propagation on (it asserts so) */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("citus.propagate_set_commands", "local", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	((GbCitusSetFn) gb_citus_symbol("PostprocessVariableSetStmt")) (stmt, command);
	AtEOXact_GUC(true, nestlevel);
}

bool
gb_citus_relation_is_shard(Oid relid)
{
	static GbCitusRelationFn is_shard = NULL;

	if (is_shard == NULL)
		is_shard = (GbCitusRelationFn) gb_citus_symbol("RelationIsAKnownShard");
	return is_shard(relid);
}
