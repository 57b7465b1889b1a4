/*-------------------------------------------------------------------------
 *
 * tenant_settings.h
 *	  Plan tiers of tenants, their PostgreSQL settings (applied by
 *	  gb_set_tenant) and application configuration (tenant_settings.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_TENANT_SETTINGS_H
#define GB_TENANT_SETTINGS_H

#include "gb_scale.h"

#include "fmgr.h"
#include "nodes/execnodes.h"

/* gb_plan_tier codes: 0 free, 1 starter, 2 pro, 3 enterprise. */
#define GB_PLAN_TIERS		4
#define GB_NO_TIER			(-1)

/* tenant_settings.c */
extern void gb_tenant_settings_init(void);
extern void gb_tenant_settings_apply(bool has_tenant, int64 tenant);
extern int	gb_tenant_tier_of(int64 tenant);
extern bool gb_tenant_settings_held(int64 tenant, const char *what);
extern void gb_tenant_settings_export(int64 tenant, ReturnSetInfo *rsinfo);
extern void gb_tenant_settings_purge(int64 tenant, ReturnSetInfo *rsinfo);
extern void gb_plan_settings_sync(const Datum *tiers);
extern uint64 gb_plan_sync_exec(const char *sql, int nargs, Oid *types, Datum *args, int expected);
extern int16 gb_plan_sync_tier(const char *value);
extern int16 gb_tier_arg(FunctionCallInfo fcinfo, int argno);
extern int	gb_plan_sync_columns(const Datum *cols, int ncols, Datum **values, bool **nulls,
								 const char *table);

/* tenant.c */
extern bool gb_transaction_tenant(int64 *tenant);
extern bool gb_is_admin(Oid roleid);

#endif							/* GB_TENANT_SETTINGS_H */
