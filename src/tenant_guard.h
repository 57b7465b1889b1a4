/*-------------------------------------------------------------------------
 *
 * tenant_guard.h
 *	  What keeps tenant isolation whole: new members of an isolated tree get
 *	  its policies, and no holdable cursor carries a tenant's rows out of
 *	  its transaction (tenant_guard.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_TENANT_GUARD_H
#define GB_TENANT_GUARD_H

#include "gb_scale.h"

extern void gb_tenant_guard_init(void);
extern void gb_refuse_tenant_with_holdable_cursor(void);

#endif							/* GB_TENANT_GUARD_H */
