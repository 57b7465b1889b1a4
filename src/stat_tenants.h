/*-------------------------------------------------------------------------
 *
 * stat_tenants.h
 *	  Per-tenant statistics in shared memory: gb_stat_tenants
 *	  (stat_tenants.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_STAT_TENANTS_H
#define GB_STAT_TENANTS_H

#include "gb_scale.h"

extern int	gb_stat_tenants_max;

extern void gb_stat_tenants_init(void);
extern void gb_stat_tenants_shmem_request(void);
extern void gb_stat_tenants_shmem_init(void);

#endif							/* GB_STAT_TENANTS_H */
