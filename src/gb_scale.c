/*-------------------------------------------------------------------------
 *
 * gb_scale.c
 *	  Module entry point: settings and shared-memory hooks.
 *
 * Shared memory can only be had when the library is listed in
 * shared_preload_libraries; without it the settings still exist, the
 * decoders work, and the generator reports a clear error.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "partition.h"
#include "routing.h"
#include "stat_tenants.h"
#include "tenant_guard.h"
#include "tenant_limits.h"
#include "tenant_quotas.h"
#include "tenant_settings.h"

#include <stdlib.h>

#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

int			gb_shard_id = GB_SHARD_UNSET;
int			gb_max_lead_ms = 2000;
int			gb_reservation_ms = 1000;
int			gb_debug_clock_offset_ms = 0;

/* Set when SHARD_ID holds a value we refuse; reported when an ID is asked for. */
char	   *gb_shard_id_env_error = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/* The modules' relcache callbacks (gb_register_relcache_callback). */
#define GB_MAX_RELCACHE_CALLBACKS 8
static GbRelcacheCallback gb_relcache_callbacks[GB_MAX_RELCACHE_CALLBACKS];
static int	gb_relcache_callback_count = 0;

static void
gb_relcache_callback(Datum arg, Oid relid)
{
	for (int i = 0; i < gb_relcache_callback_count; i++)
		gb_relcache_callbacks[i] (relid);
}

/*
 * Calls CALLBACK on every relcache invalidation of this backend
 * (InvalidOid: all relations).  gb_scale takes one of the backend's relcache
 * callback slots, whatever the number of its caches, leaving the others to
 * Citus and the other libraries loaded with it.
 */
void
gb_register_relcache_callback(GbRelcacheCallback callback)
{
	if (gb_relcache_callback_count >= GB_MAX_RELCACHE_CALLBACKS)
		elog(ERROR, "out of gb_scale relcache callback slots");
	if (gb_relcache_callback_count == 0)
		CacheRegisterRelcacheCallback(gb_relcache_callback, (Datum) 0);
	gb_relcache_callbacks[gb_relcache_callback_count++] = callback;
}

static void
gb_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(gb_ids_shmem_size());
	RequestNamedLWLockTranche("gb_scale", gb_ids_lwlock_count());
	gb_routing_shmem_request();
	gb_stat_tenants_shmem_request();
	gb_tenant_limits_shmem_request();
	gb_tenant_quotas_shmem_request();
	gb_tenant_move_shmem_request();
}

static void
gb_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	gb_ids_shmem_init();
	gb_routing_shmem_init();
	gb_stat_tenants_shmem_init();
	gb_tenant_limits_shmem_init();
	gb_tenant_quotas_shmem_init();
	gb_tenant_move_shmem_init();
}

/*
 * A shard id in SHARD_ID: 1 to 4 decimal digits, 0-1023, nothing else.
 * strtol() would skip leading whitespace and take a sign, so that " 7" was
 * accepted while "7 " was not; a hand-written check refuses both alike.
 * Returns GB_SHARD_UNSET when the text is not a shard id.
 */
static int
gb_parse_shard_id(const char *raw)
{
	int			value = 0;
	int			digits = 0;

	for (const char *p = raw; *p != '\0'; p++)
	{
		if (*p < '0' || *p > '9' || ++digits > 4)
			return GB_SHARD_UNSET;
		value = value * 10 + (*p - '0');
	}
	if (digits == 0 || value > GB_MAX_SHARD_ID)
		return GB_SHARD_UNSET;
	return value;
}

/*
 * The SHARD_ID environment variable of the server process supplies the
 * default of gb_scale.shard_id, as General Bots' quick start sets it per
 * instance.  A malformed value is remembered and reported, never guessed.
 */
static int
gb_shard_id_from_environment(void)
{
	const char *raw = getenv("SHARD_ID");
	int			value;

	if (raw == NULL || raw[0] == '\0')
		return GB_SHARD_UNSET;
	value = gb_parse_shard_id(raw);
	if (value == GB_SHARD_UNSET)
	{
		gb_shard_id_env_error = MemoryContextStrdup(TopMemoryContext, raw);
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("environment variable SHARD_ID has invalid value \"%s\"", raw),
				 errdetail("A shard id is 0 to %d, written with 1 to 4 digits and nothing else.", GB_MAX_SHARD_ID),
				 errhint("Fix SHARD_ID in the server's environment or set gb_scale.shard_id.")));
		return GB_SHARD_UNSET;
	}
	return value;
}

/* Whether the running CREATE/ALTER EXTENSION is gb_scale's own script. */
bool
gb_in_own_extension_script(void)
{
	return creating_extension &&
		CurrentExtensionObject == get_extension_oid("gb_scale", true);
}

void
_PG_init(void)
{
	DefineCustomIntVariable("gb_scale.shard_id",
							"Shard id (0-1023) that this database's IDs carry.",
							"-1 means unset; the default comes from the server's SHARD_ID environment variable.",
							&gb_shard_id,
							gb_shard_id_from_environment(),
							GB_SHARD_UNSET, GB_MAX_SHARD_ID,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	/*
	 * The lead bound and the clock offset govern a shard slot that every
	 * session of the instance shares, so they must be the same in every
	 * session: set in postgresql.conf and reloaded, never per session, role
	 * or database.  One session's offset would otherwise move every
	 * session's IDs (and the durable mark) ahead, and one session's high lead
	 * bound would make the others wait for the clock.
	 */
	DefineCustomIntVariable("gb_scale.max_lead_ms",
							"How far, in milliseconds, issued IDs may run ahead of the clock before callers wait.",
							"Instance-wide: set it in postgresql.conf and reload.",
							&gb_max_lead_ms,
							2000, 0, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("gb_scale.reservation_ms",
							"Width of each durable reservation of ID time, in milliseconds.",
							"Each reservation costs one WAL flush; after a crash, IDs resume past the last reservation.",
							&gb_reservation_ms,
							1000, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* Shown by SHOW ALL and pg_settings: it shifts every ID of the instance. */
	DefineCustomIntVariable("gb_scale.debug_clock_offset_ms",
							"Shifts the ID generator's clock, for testing clock steps.",
							"Instance-wide: set it in postgresql.conf and reload.",
							&gb_debug_clock_offset_ms,
							0, -86400000, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);

	gb_partition_init();
	gb_tenant_init();
	gb_tenant_guard_init();
	gb_tenant_settings_init();
	gb_routing_init();
	gb_shard_sync_init();
	gb_tenant_move_init();
	gb_secret_init();
	gb_stat_tenants_init();
	gb_sizing_init();
	gb_tenant_limits_init();
	gb_tenant_quotas_init();
	MarkGUCPrefixReserved("gb_scale");

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = gb_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = gb_shmem_startup;
}
