/*-------------------------------------------------------------------------
 *
 * tenant_quotas.h
 *	  Row quotas of tenants per table, per day and per month
 *	  (tenant_quotas.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_TENANT_QUOTAS_H
#define GB_TENANT_QUOTAS_H

#include "gb_scale.h"

extern bool gb_quotas_enabled;

extern void gb_tenant_quotas_init(void);
extern void gb_tenant_quotas_shmem_request(void);
extern void gb_tenant_quotas_shmem_init(void);
extern Datum gb_plan_quotas_check(const Datum *cols);
extern void gb_plan_quotas_sync(const Datum *cols, Datum relids);

#endif							/* GB_TENANT_QUOTAS_H */
