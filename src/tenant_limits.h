/*-------------------------------------------------------------------------
 *
 * tenant_limits.h
 *	  Per-tenant resource limits: concurrent transactions and statements
 *	  per second (tenant_limits.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_TENANT_LIMITS_H
#define GB_TENANT_LIMITS_H

#include "gb_scale.h"

extern int	gb_tenant_limits_max;

extern void gb_tenant_limits_init(void);
extern void gb_tenant_limits_shmem_request(void);
extern void gb_tenant_limits_shmem_init(void);
extern void gb_tenant_limits_enter(bool has_tenant, int64 tenant);
extern void gb_plan_limits_check(const Datum *cols);
extern void gb_plan_limits_sync(const Datum *cols);

#endif							/* GB_TENANT_LIMITS_H */
