/*-------------------------------------------------------------------------
 *
 * tenant_settings.c
 *	  Plan tiers of tenants, their PostgreSQL settings and their
 *	  application configuration.
 *
 * gb_scale.tenant_plan places a tenant on a gb_plan_tier code;
 * gb_scale.tenant_setting and gb_scale.plan_setting hold values per tenant
 * and per tier, a tenant's own value winning over its tier's.  A name is
 * either a PostgreSQL setting (one this backend knows, not a placeholder)
 * or, when it has a dot prefix that no known setting uses, an application's
 * configuration value.  The kind is decided and recorded when the value is
 * stored.
 *
 * Settings are validated when stored, by set_config_option() with
 * changeVal = false (the same parsing, range checks and check hooks as SET),
 * and refused unless any role may SET them (context user), unless they are
 * part of the session's or transaction's identity (role,
 * session_authorization, transaction_*: the GUC_NO_RESET_ALL ones) and for
 * gb_scale's own.  gb_set_tenant() applies them as SET LOCAL: they end with
 * the transaction, so behind PgBouncer in transaction mode nothing reaches
 * the next client.  The same refusals are checked again when applying, so
 * that a row written by hand never sets role.  Setting another tenant in the
 * same transaction puts back what the previous tenant set (unless the
 * transaction changed it since) before applying the new tenant's.
 *
 * The values are cached per backend: the four tiers' values whole, tenants
 * one at a time when first asked for (at most GB_SETTINGS_CACHE_TENANTS,
 * then the cache starts over).  Triggers on the three tables send a relcache
 * invalidation (tenant_settings_changed), which PostgreSQL processes like any
 * catalog change: in the changing transaction at its next command, in every
 * other backend after the commit, and at a rollback in the backend that
 * rolled back.  Lookups accept pending invalidations once per statement.
 * The callback only marks the cache stale; its memory is released by the
 * next lookup, never under a caller.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "partition.h"
#include "routing.h"
#include "tenant_settings.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(gb_tenant_settings_changed);
PG_FUNCTION_INFO_V1(gb_tenant_plan);
PG_FUNCTION_INFO_V1(gb_tenant_tier);
PG_FUNCTION_INFO_V1(gb_tenant_setting);
PG_FUNCTION_INFO_V1(gb_plan_setting);
PG_FUNCTION_INFO_V1(gb_tenant_config);
PG_FUNCTION_INFO_V1(gb_tenant_settings);

#define GB_TENANT_PLAN_TABLE		"tenant_plan"
#define GB_TENANT_SETTING_TABLE		"tenant_setting"
#define GB_PLAN_SETTING_TABLE		"plan_setting"

/* Tenants a backend keeps before its cache starts over. */
#define GB_SETTINGS_CACHE_TENANTS	1000
/* Longest name of a configuration value, in bytes. */
#define GB_CONFIG_NAME_MAX			255

static const char *const gb_tier_labels[GB_PLAN_TIERS] = {"free", "starter", "pro", "enterprise"};

typedef struct GbSetting
{
	char	   *name;
	char	   *value;
	bool		is_config;
} GbSetting;

typedef struct GbSettingList
{
	int			n;
	GbSetting  *items;			/* sorted by name */
} GbSettingList;

typedef struct GbTenantEntry
{
	int64		tenant_id;		/* hash key */
	int			tier;			/* GB_NO_TIER: none */
	GbSettingList own;
} GbTenantEntry;

static MemoryContext gb_settings_context = NULL;
static HTAB *gb_tenant_entries = NULL;
static GbSettingList gb_tier_lists[GB_PLAN_TIERS];
static bool gb_tiers_loaded = false;
static bool gb_settings_valid = false;
static Oid	gb_settings_relids[3] = {InvalidOid, InvalidOid, InvalidOid};

/* Bumped by every invalidation, so that a load that raced one is redone. */
static uint64 gb_settings_generation = 0;

/* The statement whose invalidations were last accepted. */
static LocalTransactionId gb_settings_seen_lxid = InvalidLocalTransactionId;
static TimestampTz gb_settings_seen_statement = 0;

/* A setting gb_set_tenant() changed in this transaction. */
typedef struct GbApplied
{
	char	   *name;
	char	   *baseline;		/* before the first change; NULL: no such
								 * setting then */
	char	   *applied;		/* as SHOW gave it after the last change */
} GbApplied;

/* In TopTransactionContext; valid while gb_applied_lxid is this transaction. */
static List *gb_applied = NIL;
static LocalTransactionId gb_applied_lxid = InvalidLocalTransactionId;

static void
gb_settings_relcache_callback(Oid relid)
{
	bool		ours = !OidIsValid(relid) || !OidIsValid(gb_settings_relids[0]);

	for (int i = 0; i < (int) lengthof(gb_settings_relids); i++)
		ours |= relid == gb_settings_relids[i];
	if (ours)
	{
		gb_settings_generation++;
		gb_settings_valid = false;
	}
}

void
gb_tenant_settings_init(void)
{
	gb_register_relcache_callback(gb_settings_relcache_callback);
}

/*
 * AFTER ... FOR EACH ROW and AFTER TRUNCATE on the three tables, enabled
 * ALWAYS: every backend's cache forgets them (see the top of the file).
 */
Datum
gb_tenant_settings_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s.tenant_settings_changed() must be called as a trigger", GB_INTERNAL_SCHEMA)));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/* Accept other sessions' changes once per statement; start over when stale. */
static void
gb_settings_ready(void)
{
	HASHCTL		ctl;

	if (MyProc->lxid != gb_settings_seen_lxid ||
		GetCurrentStatementStartTimestamp() != gb_settings_seen_statement)
	{
		AcceptInvalidationMessages();
		gb_settings_seen_lxid = MyProc->lxid;
		gb_settings_seen_statement = GetCurrentStatementStartTimestamp();
	}
	if (gb_settings_valid && hash_get_num_entries(gb_tenant_entries) < GB_SETTINGS_CACHE_TENANTS)
		return;

	if (gb_settings_context == NULL)
		gb_settings_context = AllocSetContextCreate(CacheMemoryContext, "gb_scale tenant settings",
													ALLOCSET_SMALL_SIZES);
	MemoryContextReset(gb_settings_context);
	gb_tenant_entries = NULL;
	gb_tiers_loaded = false;
	gb_settings_relids[0] = gb_directory_relid(GB_TENANT_PLAN_TABLE);
	gb_settings_relids[1] = gb_directory_relid(GB_TENANT_SETTING_TABLE);
	gb_settings_relids[2] = gb_directory_relid(GB_PLAN_SETTING_TABLE);
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(GbTenantEntry);
	ctl.hcxt = gb_settings_context;
	gb_tenant_entries = hash_create("gb_scale tenant settings", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	gb_settings_valid = true;
}

/* The attribute number of a gb_plan_tier (smallint) column. */
static AttrNumber
gb_tier_attnum(Relation rel)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), "tier");

	if (attnum == InvalidAttrNumber ||
		getBaseType(get_atttype(RelationGetRelid(rel), attnum)) != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("table %s.%s has no column \"tier\" of type gb_plan_tier",
						GB_INTERNAL_SCHEMA, RelationGetRelationName(rel)),
				 errhint("Recreate the extension.")));
	return attnum;
}

static int
gb_setting_cmp(const void *a, const void *b)
{
	return strcmp(((const GbSetting *) a)->name, ((const GbSetting *) b)->name);
}

/*
 * Rows of a settings table: those of tenant TENANT (tenant_setting) or
 * every row, with its tier in TIERS (plan_setting); allocated in the
 * current memory context.
 */
static GbSetting *
gb_scan_settings(const char *relname, bool by_tenant, int64 tenant, int **tiers, int *count)
{
	Relation	rel = table_open(gb_directory_relid(relname), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	att_name = gb_directory_attnum(rel, "name", TEXTOID);
	AttrNumber	att_kind = gb_directory_attnum(rel, "kind", TEXTOID);
	AttrNumber	att_value = gb_directory_attnum(rel, "value", TEXTOID);
	AttrNumber	att_key = by_tenant ? gb_directory_attnum(rel, "tenant_id", INT8OID) : gb_tier_attnum(rel);
	Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(rel)));
	Oid			pkey = by_tenant ? RelationGetPrimaryKeyIndex(rel) : InvalidOid;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			capacity = 8;
	int			n = 0;
	GbSetting  *items = palloc(capacity * sizeof(GbSetting));

	if (tiers != NULL)
		*tiers = palloc(capacity * sizeof(int));
	ScanKeyInit(&key, att_key, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(tenant));
	scan = systable_beginscan(rel, pkey, OidIsValid(pkey), snapshot, by_tenant ? 1 : 0, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		null_name;
		bool		null_kind;
		bool		null_value;
		bool		null_key;
		Datum		name = heap_getattr(tuple, att_name, desc, &null_name);
		Datum		kind = heap_getattr(tuple, att_kind, desc, &null_kind);
		Datum		value = heap_getattr(tuple, att_value, desc, &null_value);
		Datum		keyval = heap_getattr(tuple, att_key, desc, &null_key);

		CHECK_FOR_INTERRUPTS();
		if (null_name || null_kind || null_value || null_key)
			continue;
		if (n == capacity)
		{
			capacity *= 2;
			items = repalloc(items, capacity * sizeof(GbSetting));
			if (tiers != NULL)
				*tiers = repalloc(*tiers, capacity * sizeof(int));
		}
		items[n].name = TextDatumGetCString(name);
		items[n].value = TextDatumGetCString(value);
		items[n].is_config = strcmp(TextDatumGetCString(kind), "config") == 0;
		if (tiers != NULL)
			(*tiers)[n] = DatumGetInt16(keyval);
		n++;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	*count = n;
	return items;
}

/* A copy of ITEMS in the cache's memory, sorted by name. */
static GbSettingList
gb_cache_list(const GbSetting *items, int n)
{
	GbSettingList list;

	list.n = n;
	list.items = MemoryContextAllocZero(gb_settings_context, Max(n, 1) * sizeof(GbSetting));
	for (int i = 0; i < n; i++)
	{
		list.items[i].name = MemoryContextStrdup(gb_settings_context, items[i].name);
		list.items[i].value = MemoryContextStrdup(gb_settings_context, items[i].value);
		list.items[i].is_config = items[i].is_config;
	}
	qsort(list.items, n, sizeof(GbSetting), gb_setting_cmp);
	return list;
}

/* Load the four tiers' values; false when an invalidation came meanwhile. */
static bool
gb_load_tiers(void)
{
	uint64		generation = gb_settings_generation;
	int		   *tiers;
	int			n;
	GbSetting  *rows = gb_scan_settings(GB_PLAN_SETTING_TABLE, false, 0, &tiers, &n);

	if (generation != gb_settings_generation)
		return false;
	for (int t = 0; t < GB_PLAN_TIERS; t++)
	{
		GbSetting  *mine = palloc(Max(n, 1) * sizeof(GbSetting));
		int			m = 0;

		/* a stored tier is never trusted as an index */
		for (int i = 0; i < n; i++)
			if (tiers[i] == t)
				mine[m++] = rows[i];
		gb_tier_lists[t] = gb_cache_list(mine, m);
	}
	gb_tiers_loaded = true;
	return true;
}

/* TENANT's tier, GB_NO_TIER when it has none (or an unknown code). */
static int
gb_scan_tier(int64 tenant)
{
	Relation	rel = table_open(gb_directory_relid(GB_TENANT_PLAN_TABLE), AccessShareLock);
	AttrNumber	att_tenant = gb_directory_attnum(rel, "tenant_id", INT8OID);
	AttrNumber	att_tier = gb_tier_attnum(rel);
	Snapshot	snapshot = RegisterSnapshot(GetCatalogSnapshot(RelationGetRelid(rel)));
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			tier = GB_NO_TIER;

	ScanKeyInit(&key, att_tenant, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(tenant));
	scan = systable_beginscan(rel, pkey, OidIsValid(pkey), snapshot, 1, &key);
	if (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, att_tier, RelationGetDescr(rel), &isnull);

		if (!isnull && DatumGetInt16(value) >= 0 && DatumGetInt16(value) < GB_PLAN_TIERS)
			tier = DatumGetInt16(value);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return tier;
}

/*
 * TENANT's cache entry, with the tiers loaded.  Valid until the next
 * lookup: invalidations only mark the cache stale.
 */
static GbTenantEntry *
gb_settings_lookup(int64 tenant)
{
	for (;;)
	{
		uint64		generation;
		GbTenantEntry *entry;
		int			tier;
		int			n;
		GbSetting  *rows;
		GbSettingList own;

		gb_settings_ready();
		generation = gb_settings_generation;
		if (!gb_tiers_loaded && !gb_load_tiers())
			continue;
		entry = hash_search(gb_tenant_entries, &tenant, HASH_FIND, NULL);
		if (entry != NULL)
			return entry;
		tier = gb_scan_tier(tenant);
		rows = gb_scan_settings(GB_TENANT_SETTING_TABLE, true, tenant, NULL, &n);
		if (generation != gb_settings_generation)
			continue;
		own = gb_cache_list(rows, n);
		entry = hash_search(gb_tenant_entries, &tenant, HASH_ENTER, NULL);
		entry->tier = tier;
		entry->own = own;
		return entry;
	}
}

static const GbSetting *
gb_list_find(const GbSettingList *list, const char *name, bool is_config)
{
	for (int i = 0; i < list->n; i++)
		if (list->items[i].is_config == is_config && strcmp(list->items[i].name, name) == 0)
			return &list->items[i];
	return NULL;
}

/*
 * Every value in force for ENTRY's tenant: its own, then its tier's that it
 * does not override; SOURCES says which (may be NULL).  Palloc'd copies.
 */
static GbSetting *
gb_effective(const GbTenantEntry *entry, int *count, bool **from_tier)
{
	const GbSettingList *tier = entry->tier == GB_NO_TIER ? NULL : &gb_tier_lists[entry->tier];
	int			max = entry->own.n + (tier ? tier->n : 0);
	GbSetting  *all = palloc(Max(max, 1) * sizeof(GbSetting));
	int			n = 0;

	if (from_tier)
		*from_tier = palloc(Max(max, 1) * sizeof(bool));
	for (int i = 0; i < entry->own.n; i++)
	{
		all[n].name = pstrdup(entry->own.items[i].name);
		all[n].value = pstrdup(entry->own.items[i].value);
		all[n].is_config = entry->own.items[i].is_config;
		if (from_tier)
			(*from_tier)[n] = false;
		n++;
	}
	for (int i = 0; tier != NULL && i < tier->n; i++)
	{
		if (gb_list_find(&entry->own, tier->items[i].name, tier->items[i].is_config) != NULL)
			continue;
		all[n].name = pstrdup(tier->items[i].name);
		all[n].value = pstrdup(tier->items[i].value);
		all[n].is_config = tier->items[i].is_config;
		if (from_tier)
			(*from_tier)[n] = true;
		n++;
	}
	*count = n;
	return all;
}

/*
 * Names.
 */

/* The setting NAME (any case) as this backend knows it, not a placeholder. */
static struct config_generic *
gb_guc_record(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; i < n; i++)
	{
		if (!(vars[i]->flags & GUC_CUSTOM_PLACEHOLDER) && pg_strcasecmp(vars[i]->name, name) == 0)
			return vars[i];
	}
	return NULL;
}

/* Whether a known setting's name starts with the first PREFIX_LEN bytes of NAME and a dot. */
static bool
gb_guc_prefix_taken(const char *name, int prefix_len)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; i < n; i++)
	{
		if (!(vars[i]->flags & GUC_CUSTOM_PLACEHOLDER) &&
			pg_strncasecmp(vars[i]->name, name, prefix_len + 1) == 0)
			return true;
	}
	return false;
}

static bool
gb_is_own_setting(const char *name)
{
	return pg_strncasecmp(name, GB_INTERNAL_SCHEMA ".", strlen(GB_INTERNAL_SCHEMA) + 1) == 0;
}

/* Why a tenant may not have setting RECORD, or NULL when it may. */
static const char *
gb_setting_refusal(const struct config_generic *record)
{
	if (gb_is_own_setting(record->name))
		return "gb_scale's own settings are not per tenant.";
	if (pg_strcasecmp(record->name, "role") == 0 || pg_strcasecmp(record->name, "session_authorization") == 0 ||
		(record->flags & GUC_NO_RESET_ALL))
		return "It belongs to the identity of the session or the transaction (like role, session_authorization, transaction_isolation), not to its configuration.";
	if (record->context != PGC_USERSET)
		return "Only settings that any role may change with SET (context user in pg_settings) can be per tenant.";
	return NULL;
}

static void
gb_refuse_setting(const char *name, const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("setting \"%s\" cannot be given per tenant or plan tier", name),
			 errdetail("%s", reason),
			 errhint("Per-tenant settings are applied by gb_set_tenant() as SET LOCAL: statement_timeout, work_mem, search_path and the like.")));
}

/* A configuration name: dot-separated parts of letters, digits, _ and -. */
static void
gb_check_config_name(const char *name)
{
	size_t		len = strlen(name);
	bool		ok = len <= GB_CONFIG_NAME_MAX &&
		(isalpha((unsigned char) name[0]) || name[0] == '_');
	bool		part_empty = true;

	for (size_t i = 0; ok && i < len; i++)
	{
		char		c = name[i];

		if (c == '.')
		{
			ok = !part_empty;
			part_empty = true;
		}
		else
		{
			ok = isalnum((unsigned char) c) || c == '_' || c == '-';
			part_empty = false;
		}
	}
	if (!ok || part_empty)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid configuration name \"%s\"", name),
				 errdetail("A configuration name is a prefix and a name separated by dots, like app.model or gb.channel.whatsapp; each part is made of letters, digits, _ and -, at most %d bytes in all.",
						   GB_CONFIG_NAME_MAX),
				 errhint("Choose a name such as app.feature_x.")));
}

/*
 * The name to store for NAME, and whether it is configuration; with VALUE,
 * also checks that it may be stored (errors otherwise).  Removing is always
 * allowed, so without VALUE nothing is refused.
 */
static char *
gb_classify(const char *name, const char *value, bool *is_config)
{
	struct config_generic *record;
	const char *dot = strchr(name, '.');
	int			prefix_len = dot != NULL ? (int) (dot - name) : -1;

	if (value != NULL && gb_is_own_setting(name))
		gb_refuse_setting(name, "gb_scale's own settings are not per tenant.");
	record = gb_guc_record(name);
	if (record != NULL)
	{
		const char *refusal = gb_setting_refusal(record);

		*is_config = false;
		if (value == NULL)
			return pstrdup(record->name);
		if (refusal != NULL)
			gb_refuse_setting(record->name, refusal);
		/* what SET would say, without changing anything */
		(void) set_config_option(record->name, value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET,
								 false, ERROR, false);
		return pstrdup(record->name);
	}
	*is_config = true;
	if (value == NULL)
		return pstrdup(name);
	if (prefix_len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unrecognized configuration parameter \"%s\"", name),
				 errhint("Application configuration names have a prefix of the application's choosing, like app.%s.",
						 name)));
	if (gb_guc_prefix_taken(name, prefix_len))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unrecognized configuration parameter \"%s\"", name),
				 errdetail("Prefix \"%.*s\" belongs to the settings of PostgreSQL or of a loaded extension.",
						   prefix_len, name),
				 errhint("Check the spelling, or give application configuration a prefix of its own, like app.")));
	gb_check_config_name(name);
	return pstrdup(name);
}

/*
 * Applying.
 */

typedef struct GbApplyContext
{
	int64		tenant;
	const char *name;
	bool		from_tier;
} GbApplyContext;

static void
gb_apply_errcontext(void *arg)
{
	GbApplyContext *ctx = (GbApplyContext *) arg;

	errcontext("applying setting \"%s\" of tenant " INT64_FORMAT " (%s)", ctx->name, ctx->tenant,
			   ctx->from_tier ? "its plan tier's default" : "its own value");
}

static GbApplied *
gb_applied_find(const char *name)
{
	ListCell   *lc;

	foreach(lc, gb_applied)
	{
		GbApplied  *a = lfirst(lc);

		if (strcmp(a->name, name) == 0)
			return a;
	}
	return NULL;
}

static char *
gb_shown_value(const char *name)
{
	const char *shown = GetConfigOption(name, true, false);

	return shown ? MemoryContextStrdup(TopTransactionContext, shown) : NULL;
}

/*
 * Called by gb_set_tenant() after it set the tenant (or none): the
 * settings of the previous tenant of this transaction go back to what they
 * were, then the new tenant's are applied, SET LOCAL.
 */
void
gb_tenant_settings_apply(bool has_tenant, int64 tenant)
{
	GbSetting  *settings = NULL;
	bool	   *from_tier = NULL;
	int			n = 0;
	ListCell   *lc;
	ErrorContextCallback errcallback;
	GbApplyContext ctx;

	if (gb_applied_lxid != MyProc->lxid)
	{
		gb_applied = NIL;
		gb_applied_lxid = MyProc->lxid;
	}
	if (has_tenant)
		settings = gb_effective(gb_settings_lookup(tenant), &n, &from_tier);

	/* What an earlier tenant set and this one does not: back, if still ours. */
	foreach(lc, gb_applied)
	{
		GbApplied  *a = lfirst(lc);
		const char *now = GetConfigOption(a->name, true, false);
		bool		kept = false;

		for (int i = 0; i < n; i++)
			kept |= !settings[i].is_config && strcmp(settings[i].name, a->name) == 0;
		if (kept || now == NULL || a->applied == NULL || strcmp(now, a->applied) != 0)
			continue;
		(void) set_config_option(a->name, a->baseline, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
								 true, ERROR, false);
		a->applied = gb_shown_value(a->name);
	}

	ctx.tenant = tenant;
	errcallback.callback = gb_apply_errcontext;
	errcallback.arg = &ctx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (int i = 0; i < n; i++)
	{
		struct config_generic *record;
		GbApplied  *a;
		const char *refusal;

		if (settings[i].is_config)
			continue;
		ctx.name = settings[i].name;
		ctx.from_tier = from_tier[i];
		/* rows written by hand get the checks of gb_tenant_setting() */
		record = gb_guc_record(settings[i].name);
		refusal = record ? gb_setting_refusal(record) : NULL;
		if (refusal != NULL || gb_is_own_setting(settings[i].name))
			gb_refuse_setting(settings[i].name, refusal ? refusal : "gb_scale's own settings are not per tenant.");
		a = gb_applied_find(settings[i].name);
		if (a == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

			a = palloc0(sizeof(GbApplied));
			a->name = pstrdup(settings[i].name);
			a->baseline = gb_shown_value(settings[i].name);
			gb_applied = lappend(gb_applied, a);
			MemoryContextSwitchTo(old);
		}
		(void) set_config_option(settings[i].name, settings[i].value, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, ERROR, false);
		a->applied = gb_shown_value(settings[i].name);
	}
	error_context_stack = errcallback.previous;
}

/*
 * The SQL functions.
 */

static int64
gb_required_tenant_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant_id must not be NULL"),
				 errhint("Name the tenant whose value changes.")));
	return PG_GETARG_INT64(argno);
}

/* A gb_plan_tier code from an integer argument. */
int16
gb_tier_arg(FunctionCallInfo fcinfo, int argno)
{
	int32		tier;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tier must not be NULL"),
				 errhint("A tier is a gb_plan_tier code: 0 free, 1 starter, 2 pro, 3 enterprise.")));
	tier = PG_GETARG_INT32(argno);
	if (tier < 0 || tier >= GB_PLAN_TIERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d is not a gb_plan_tier code", tier),
				 errhint("A tier is a gb_plan_tier code: 0 free, 1 starter, 2 pro, 3 enterprise; gb_enum_code('gb_plan_tier', 'pro') gives one by label.")));
	return (int16) tier;
}

static const char *
gb_name_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the name of a setting must not be NULL"),
				 errhint("Name a PostgreSQL setting (work_mem) or a configuration value (app.model).")));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* gb_tenant_plan(tenant_id bigint, tier integer): NULL tier removes. */
Datum
gb_tenant_plan(PG_FUNCTION_ARGS)
{
	Oid			types[2] = {INT8OID, INT2OID};
	Datum		values[2];

	values[0] = Int64GetDatum(gb_required_tenant_arg(fcinfo, 0));
	if (PG_ARGISNULL(1))
	{
		gb_catalog_exec("DELETE FROM gb_scale.tenant_plan p WHERE p.tenant_id OPERATOR(pg_catalog.=) $1",
						1, types, values, NULL);
		PG_RETURN_VOID();
	}
	values[1] = Int16GetDatum(gb_tier_arg(fcinfo, 1));
	gb_catalog_exec("INSERT INTO gb_scale.tenant_plan AS p (tenant_id, tier) VALUES ($1, $2)"
					" ON CONFLICT (tenant_id) DO UPDATE SET tier = excluded.tier, updated_at = pg_catalog.now()"
					" WHERE p.tier OPERATOR(pg_catalog.<>) excluded.tier",
					2, types, values, NULL);
	PG_RETURN_VOID();
}

int
gb_tenant_tier_of(int64 tenant)
{
	return gb_settings_lookup(tenant)->tier;
}

/* gb_tenant_tier(tenant_id bigint) RETURNS gb_plan_tier */
Datum
gb_tenant_tier(PG_FUNCTION_ARGS)
{
	int			tier = gb_tenant_tier_of(PG_GETARG_INT64(0));

	if (tier == GB_NO_TIER)
		PG_RETURN_NULL();
	PG_RETURN_INT16((int16) tier);
}

/* Store or remove one value; KEY is the tenant (int8) or the tier (int2). */
static void
gb_store_setting(const char *table, const char *key_column, Oid key_type, Datum key,
				 const char *name, text *value)
{
	char	   *cvalue = value ? text_to_cstring(value) : NULL;
	bool		is_config;
	char	   *stored = gb_classify(name, cvalue, &is_config);
	Oid			types[4] = {key_type, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];

	values[0] = key;
	values[1] = CStringGetTextDatum(stored);
	if (value == NULL)
	{
		gb_catalog_exec(psprintf("DELETE FROM gb_scale.%s s WHERE s.%s OPERATOR(pg_catalog.=) $1"
								 " AND s.name OPERATOR(pg_catalog.=) $2", table, key_column),
						2, types, values, NULL);
		return;
	}
	values[2] = CStringGetTextDatum(is_config ? "config" : "setting");
	values[3] = PointerGetDatum(value);
	gb_catalog_exec(psprintf("INSERT INTO gb_scale.%s AS s (%s, name, kind, value) VALUES ($1, $2, $3, $4)"
							 " ON CONFLICT (%s, name) DO UPDATE"
							 " SET kind = excluded.kind, value = excluded.value, updated_at = pg_catalog.now()"
							 " WHERE s.kind OPERATOR(pg_catalog.<>) excluded.kind"
							 " OR s.value OPERATOR(pg_catalog.<>) excluded.value",
							 table, key_column, key_column),
					4, types, values, NULL);
}

/* gb_tenant_setting(tenant_id bigint, name text, value text) */
Datum
gb_tenant_setting(PG_FUNCTION_ARGS)
{
	int64		tenant = gb_required_tenant_arg(fcinfo, 0);
	const char *name = gb_name_arg(fcinfo, 1);

	gb_store_setting(GB_TENANT_SETTING_TABLE, "tenant_id", INT8OID, Int64GetDatum(tenant), name,
					 PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2));
	PG_RETURN_VOID();
}

/* gb_plan_setting(tier integer, name text, value text) */
Datum
gb_plan_setting(PG_FUNCTION_ARGS)
{
	int16		tier = gb_tier_arg(fcinfo, 0);
	const char *name = gb_name_arg(fcinfo, 1);

	gb_store_setting(GB_PLAN_SETTING_TABLE, "tier", INT2OID, Int16GetDatum(tier), name,
					 PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2));
	PG_RETURN_VOID();
}

/* The configuration value NAME of the transaction's tenant, or NULL. */
static text *
gb_config_value(const char *name)
{
	int64		tenant;
	GbTenantEntry *entry;
	const GbSetting *found;

	if (!gb_transaction_tenant(&tenant))
		return NULL;
	entry = gb_settings_lookup(tenant);
	found = gb_list_find(&entry->own, name, true);
	if (found == NULL && entry->tier != GB_NO_TIER)
		found = gb_list_find(&gb_tier_lists[entry->tier], name, true);
	return found ? cstring_to_text(found->value) : NULL;
}

/* gb_tenant_config(name text, default_value text DEFAULT NULL) */
Datum
gb_tenant_config(PG_FUNCTION_ARGS)
{
	text	   *value = PG_ARGISNULL(0) ? NULL : gb_config_value(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (value != NULL)
		PG_RETURN_TEXT_P(value);
	if (PG_NARGS() < 2 || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(PG_GETARG_TEXT_PP(1));
}

/* gb_scale.tenant_settings(tenant_id): name, kind, value, source */
Datum
gb_tenant_settings(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GbTenantEntry *entry;
	GbSetting  *settings;
	bool	   *from_tier;
	const char *tier_source = NULL;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	entry = gb_settings_lookup(PG_GETARG_INT64(0));
	if (entry->tier >= 0 && entry->tier < GB_PLAN_TIERS)
		tier_source = psprintf("tier %s", gb_tier_labels[entry->tier]);
	settings = gb_effective(entry, &n, &from_tier);
	for (int i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(settings[i].name);
		values[1] = CStringGetTextDatum(settings[i].is_config ? "config" : "setting");
		values[2] = CStringGetTextDatum(settings[i].value);
		values[3] = CStringGetTextDatum(from_tier[i] && tier_source ? tier_source : "tenant");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Export and purge (tenant.c): a tenant's plan, values, limits and quotas
 * are gb_scale_admin's to read and remove.
 */

/* The tables holding a tenant's own rows, in the order export and purge use. */
static const char *const gb_tenant_own_tables[] = {
	GB_TENANT_PLAN_TABLE, GB_TENANT_SETTING_TABLE, "tenant_limit", "tenant_quota"
};

/*
 * Their rows as jsonb, in a stable order.  A quota's table goes out as its
 * schema-qualified name, quoted as needed: an OID means nothing on another
 * shard, and regclass output would depend on the reader's search_path.
 */
static const char *const gb_tenant_own_exports[] = {
	"SELECT pg_catalog.to_jsonb(r) FROM gb_scale.tenant_plan r WHERE r.tenant_id OPERATOR(pg_catalog.=) $1",
	"SELECT pg_catalog.to_jsonb(r) FROM gb_scale.tenant_setting r WHERE r.tenant_id OPERATOR(pg_catalog.=) $1"
	" ORDER BY r.name COLLATE pg_catalog.\"C\"",
	"SELECT pg_catalog.to_jsonb(r) FROM gb_scale.tenant_limit r WHERE r.tenant_id OPERATOR(pg_catalog.=) $1",
	"SELECT pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('tbl', t.name)"
	" FROM gb_scale.tenant_quota r,"
	" LATERAL (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name"
	" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
	" WHERE c.oid OPERATOR(pg_catalog.=) r.tbl::pg_catalog.oid) t"
	" WHERE r.tenant_id OPERATOR(pg_catalog.=) $1 ORDER BY t.name COLLATE pg_catalog.\"C\""
};

StaticAssertDecl(lengthof(gb_tenant_own_tables) == lengthof(gb_tenant_own_exports),
				 "one export query per table");

/* Run SQL about TENANT on the extension's tables as their owner. */
static void
gb_settings_sql_begin(Oid *save_userid, int *save_sec, int *nestlevel)
{
	gb_as_owner_begin(gb_rel_owner(gb_directory_relid(GB_TENANT_PLAN_TABLE)), save_userid, save_sec, nestlevel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
gb_settings_sql_end(Oid save_userid, int save_sec, int nestlevel)
{
	SPI_finish();
	gb_as_owner_end(save_userid, save_sec, nestlevel);
}

/*
 * Whether TENANT has a plan, values, limits or quotas; an error when it has
 * and the caller may not WHAT them (export, purge).  Called before anything
 * is done.
 */
bool
gb_tenant_settings_held(int64 tenant, const char *what)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(tenant)};
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	bool		held;

	gb_settings_sql_begin(&save_userid, &save_sec, &nestlevel);
	if (SPI_execute_with_args("SELECT FROM gb_scale.tenant_plan p WHERE p.tenant_id OPERATOR(pg_catalog.=) $1"
							  " UNION ALL SELECT FROM gb_scale.tenant_setting s"
							  " WHERE s.tenant_id OPERATOR(pg_catalog.=) $1"
							  " UNION ALL SELECT FROM gb_scale.tenant_limit l"
							  " WHERE l.tenant_id OPERATOR(pg_catalog.=) $1"
							  " UNION ALL SELECT FROM gb_scale.tenant_quota q"
							  " WHERE q.tenant_id OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the plan, settings, limits and quotas of tenant " INT64_FORMAT, tenant);
	held = SPI_processed > 0;
	gb_settings_sql_end(save_userid, save_sec, nestlevel);
	if (held && !gb_is_admin(save_userid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s the plan, settings, limits and quotas of tenant " INT64_FORMAT,
						what, tenant),
				 errdetail("Tenant plans, settings, limits and quotas belong to %s.", GB_ADMIN_ROLE),
				 errhint("Run it as a member of %s. Nothing was done.", GB_ADMIN_ROLE)));
	return held;
}

/* One row per plan, value, limit and quota of TENANT: (table, jsonb of the row). */
void
gb_tenant_settings_export(int64 tenant, ReturnSetInfo *rsinfo)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(tenant)};
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;

	gb_settings_sql_begin(&save_userid, &save_sec, &nestlevel);
	for (int t = 0; t < (int) lengthof(gb_tenant_own_tables); t++)
	{
		Oid			relid = gb_directory_relid(gb_tenant_own_tables[t]);

		if (SPI_execute_with_args(gb_tenant_own_exports[t], 1, types, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read gb_scale.%s", gb_tenant_own_tables[t]);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = ObjectIdGetDatum(relid);
			values[1] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &nulls[1]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	gb_settings_sql_end(save_userid, save_sec, nestlevel);
}

/*
 * Remove TENANT's plan, values, limits and quotas: one row per table that
 * had any.  The quota counters in shared memory stay (tenant_quotas.c):
 * they count rows inserted in a period, which deleting rows never gives
 * back, and are no longer updated once no quota is in force.
 */
void
gb_tenant_settings_purge(int64 tenant, ReturnSetInfo *rsinfo)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(tenant)};
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;

	gb_settings_sql_begin(&save_userid, &save_sec, &nestlevel);
	for (int t = 0; t < (int) lengthof(gb_tenant_own_tables); t++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (SPI_execute_with_args(psprintf("DELETE FROM gb_scale.%s r WHERE r.tenant_id OPERATOR(pg_catalog.=) $1",
										   gb_tenant_own_tables[t]),
								  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete from gb_scale.%s", gb_tenant_own_tables[t]);
		if (SPI_processed == 0)
			continue;
		values[0] = ObjectIdGetDatum(gb_directory_relid(gb_tenant_own_tables[t]));
		values[1] = Int64GetDatum((int64) SPI_processed);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	gb_settings_sql_end(save_userid, save_sec, nestlevel);
	CommandCounterIncrement();
}

/*
 * gb_shard_sync.
 */

/*
 * Run one statement of a plan tier table's sync (tenant_limits.c,
 * tenant_quotas.c) as the extension's tables' owner, as their API writes
 * them; returns the rows processed.
 */
uint64
gb_plan_sync_exec(const char *sql, int nargs, Oid *types, Datum *args, int expected)
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	uint64		processed;

	gb_settings_sql_begin(&save_userid, &save_sec, &nestlevel);
	if (SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0) != expected)
		elog(ERROR, "could not sync a plan tier table: %s", sql);
	processed = SPI_processed;
	gb_settings_sql_end(save_userid, save_sec, nestlevel);
	CommandCounterIncrement();
	return processed;
}

/*
 * The source shard's rows of TABLE, sent as NCOLS text[] columns: each
 * column's elements into values[c] and nulls[c]; returns the row count.
 */
int
gb_plan_sync_columns(const Datum *cols, int ncols, Datum **values, bool **nulls, const char *table)
{
	int			n = 0;

	for (int c = 0; c < ncols; c++)
	{
		int			count;

		deconstruct_array(DatumGetArrayTypeP(cols[c]), TEXTOID, -1, false, TYPALIGN_INT,
						  &values[c], &nulls[c], &count);
		if (c > 0 && count != n)
			elog(ERROR, "gb_scale.%s of the source shard came with columns of different lengths", table);
		n = count;
	}
	return n;
}

/* A gb_plan_tier code sent by the source shard, checked as gb_plan_setting() checks it. */
int16
gb_plan_sync_tier(const char *value)
{
	int32		tier = pg_strtoint32(value);

	if (tier < 0 || tier >= GB_PLAN_TIERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%d is not a gb_plan_tier code", tier),
				 errhint("A tier is a gb_plan_tier code: 0 free, 1 starter, 2 pro, 3 enterprise.")));
	return (int16) tier;
}

/* The source's plan_setting rows as unnest() columns $1..$5. */
#define GB_PLAN_SOURCE \
	"ROWS FROM (pg_catalog.unnest($1::pg_catalog.int2[]), pg_catalog.unnest($2::pg_catalog.text[])," \
	" pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[])," \
	" pg_catalog.unnest($5::pg_catalog.timestamptz[])) AS s(tier, name, kind, value, updated_at)"

typedef struct GbSyncContext
{
	const char *tier;
	const char *name;
} GbSyncContext;

static void
gb_sync_errcontext(void *arg)
{
	GbSyncContext *ctx = (GbSyncContext *) arg;

	errcontext("setting \"%s\" of plan tier %s on the source shard", ctx->name, ctx->tier);
}

static uint64
gb_sync_exec(const char *sql, Oid *types, Datum *args, int expected)
{
	if (SPI_execute_with_args(sql, 5, types, args, NULL, false, 0) != expected)
		elog(ERROR, "could not sync gb_scale.plan_setting: %s", sql);
	return SPI_processed;
}

/*
 * Make gb_scale.plan_setting equal to the source shard's rows, given as
 * text[] columns (tier, name, value, updated_at).  Every value is checked
 * here as gb_plan_setting() checks it, so that no source stores what this
 * shard would refuse, and its kind is decided here.  Written as the tables'
 * owner, like gb_plan_setting() (gb_shard_sync is gb_scale_admin's), and
 * only the rows that differ: a sync that finds nothing new invalidates no
 * cache.
 */
void
gb_plan_settings_sync(const Datum *tiers)
{
	Datum	   *tier_texts;
	Datum	   *names;
	Datum	   *values;
	bool	   *tier_nulls;
	bool	   *name_nulls;
	bool	   *value_nulls;
	int			n;
	int			nnames;
	int			nvalues;
	Datum	   *canonical;
	Datum	   *kinds;
	Oid			types[5] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[5];
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	uint64		removed;
	uint64		changed;
	uint64		added;
	ErrorContextCallback errcallback;
	GbSyncContext ctx;

	deconstruct_array(DatumGetArrayTypeP(tiers[0]), TEXTOID, -1, false, TYPALIGN_INT, &tier_texts, &tier_nulls, &n);
	deconstruct_array(DatumGetArrayTypeP(tiers[1]), TEXTOID, -1, false, TYPALIGN_INT, &names, &name_nulls, &nnames);
	deconstruct_array(DatumGetArrayTypeP(tiers[2]), TEXTOID, -1, false, TYPALIGN_INT, &values, &value_nulls, &nvalues);
	if (nnames != n || nvalues != n)
		elog(ERROR, "gb_scale.plan_setting of the source shard came with columns of different lengths");
	canonical = palloc(Max(n, 1) * sizeof(Datum));
	kinds = palloc(Max(n, 1) * sizeof(Datum));

	errcallback.callback = gb_sync_errcontext;
	errcallback.arg = &ctx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	for (int i = 0; i < n; i++)
	{
		bool		is_config;

		CHECK_FOR_INTERRUPTS();
		/* NOT NULL columns on the source */
		if (tier_nulls[i] || name_nulls[i] || value_nulls[i])
			elog(ERROR, "gb_scale.plan_setting of the source shard has a NULL");
		ctx.tier = TextDatumGetCString(tier_texts[i]);
		ctx.name = TextDatumGetCString(names[i]);
		canonical[i] = CStringGetTextDatum(gb_classify(ctx.name, TextDatumGetCString(values[i]), &is_config));
		kinds[i] = CStringGetTextDatum(is_config ? "config" : "setting");
	}
	error_context_stack = errcallback.previous;

	args[0] = tiers[0];
	args[1] = PointerGetDatum(construct_array(canonical, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(kinds, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[3] = tiers[2];
	args[4] = tiers[3];
	gb_settings_sql_begin(&save_userid, &save_sec, &nestlevel);
	/* gb_plan_setting() calls wait for the sync, and it for them */
	if (SPI_execute("LOCK TABLE gb_scale.plan_setting IN SHARE ROW EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock gb_scale.plan_setting");
	removed = gb_sync_exec("DELETE FROM gb_scale.plan_setting p"
						   " WHERE NOT EXISTS (SELECT FROM " GB_PLAN_SOURCE
						   " WHERE s.tier OPERATOR(pg_catalog.=) p.tier AND s.name OPERATOR(pg_catalog.=) p.name)",
						   types, args, SPI_OK_DELETE);
	changed = gb_sync_exec("UPDATE gb_scale.plan_setting p"
						   " SET kind = s.kind, value = s.value, updated_at = s.updated_at"
						   " FROM " GB_PLAN_SOURCE
						   " WHERE s.tier OPERATOR(pg_catalog.=) p.tier AND s.name OPERATOR(pg_catalog.=) p.name"
						   " AND (s.kind OPERATOR(pg_catalog.<>) p.kind OR s.value OPERATOR(pg_catalog.<>) p.value)",
						   types, args, SPI_OK_UPDATE);
	added = gb_sync_exec("INSERT INTO gb_scale.plan_setting (tier, name, kind, value, updated_at)"
						 " SELECT s.tier, s.name, s.kind, s.value, s.updated_at FROM " GB_PLAN_SOURCE
						 " WHERE NOT EXISTS (SELECT FROM gb_scale.plan_setting p"
						 " WHERE s.tier OPERATOR(pg_catalog.=) p.tier AND s.name OPERATOR(pg_catalog.=) p.name)",
						 types, args, SPI_OK_INSERT);
	gb_settings_sql_end(save_userid, save_sec, nestlevel);
	CommandCounterIncrement();
	if (removed + changed + added > 0)
		ereport(NOTICE,
				(errmsg("plan tier defaults synced: " UINT64_FORMAT " added, " UINT64_FORMAT " changed, "
						UINT64_FORMAT " removed", added, changed, removed)));
}
