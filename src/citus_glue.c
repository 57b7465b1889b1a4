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
#include "fmgr.h"
#include "utils/guc.h"

#include "citus_glue.h"

typedef bool (*GbCitusBoolFn) (void);
typedef bool (*GbCitusRelationFn) (Oid relid);
typedef void (*GbCitusCommandFn) (const char *command);

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
gb_citus_relation_is_shard(Oid relid)
{
	static GbCitusRelationFn is_shard = NULL;

	if (is_shard == NULL)
		is_shard = (GbCitusRelationFn) gb_citus_symbol("RelationIsAKnownShard");
	return is_shard(relid);
}
