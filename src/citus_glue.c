/*
 * citus_glue.c: calls into Citus, resolved by name in its library.
 *
 * The symbols are looked up on first use in every backend (the library is
 * preloaded wherever the citus extension exists, so the lookup is cheap) and
 * a missing one is an error naming it: a Citus release without it is not
 * supported.
 */
#include "postgres.h"

#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/guc.h"

#include "citus_glue.h"

typedef bool (*GbCitusBoolFn) (void);
typedef void (*GbCitusCommandFn) (const char *command);
typedef void (*GbCitusVoidFn) (void);
typedef void (*GbCitusSetFn) (VariableSetStmt *stmt, const char *command);

static void *
gb_citus_symbol(const char *name)
{
	return load_external_function("$libdir/citus", name, true, NULL);
}

bool
gb_citus_present(void)
{
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
gb_citus_is_distributed(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		distributed;

	if (!gb_citus_present())
		return false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT FROM pg_catalog.pg_dist_partition p"
							  " WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_catalog.pg_dist_partition");
	distributed = SPI_processed > 0;
	SPI_finish();
	return distributed;
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
