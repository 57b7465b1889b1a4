/*-------------------------------------------------------------------------
 *
 * routing.h
 *	  Shard routing and tenant isolation: declarations shared by routing.c,
 *	  tenant.c, shard_sync.c, shard_fdw.c and the partition code.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_ROUTING_H
#define GB_ROUTING_H

#include "gb_scale.h"

#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "storage/block.h"
#include "utils/relcache.h"

#define GB_SHARD_CONFIG_TABLE		"shard_config"
#define GB_TENANT_MAP_TABLE			"tenant_shard_map"
#define GB_TENANT_ISOLATION_TABLE	"tenant_isolation"
#define GB_ADMIN_ROLE				"gb_scale_admin"

/* ids.c: the shard id of this database, or an error saying how to set it */
extern int	gb_required_shard(void);

/* routing.c */
extern void gb_routing_init(void);
extern Oid	gb_directory_relid(const char *relname);
extern AttrNumber gb_directory_attnum(Relation rel, const char *name, Oid typid);
extern int16 gb_lookup_tenant(int64 tenant);

/* routing_map.c */
extern int	gb_routing_map_cache_rows;
extern void gb_routing_map_init(void);
extern Size gb_routing_shmem_size(void);
extern void gb_routing_shmem_request(void);
extern void gb_routing_shmem_init(void);
extern int16 gb_map_shard(Oid relid, int64 tenant);

/* routing_citus.c: where Citus holds a tenant, when Citus is the engine */
extern char *gb_citus_tenant_table;
extern void gb_routing_citus_init(void);
extern Oid	gb_citus_tenant_relid(void);
extern bool gb_citus_tenant_node(int64 tenant, char **nodename, int *nodeport);

/* tenant.c */

/* A table holding tenants' rows: isolated, or partitioned by tenant. */
typedef struct GbTenantTable
{
	Oid			relid;
	Oid			owner;
	char	   *column;
	bool		done;
} GbTenantTable;

extern List *gb_tenant_tables(const char *what);

/*
 * A walk over a tenant's rows by block ranges: where the next step starts,
 * and how it goes: statements of about statement_rows rows, each followed
 * by pace(rows it changed, pace_arg) when set.
 */
typedef struct GbTenantWalk
{
	int			table;			/* index in the walk's list of tables */
	Oid			leaf;			/* the leaf being read, or the next oid */
	BlockNumber block;
	bool		done;
	int64		statement_rows;
	void		(*pace) (int64 rows, void *pace_arg);
	void	   *pace_arg;
} GbTenantWalk;
extern int64 gb_tenant_walk_step(List *tables, int64 tenant, int rewrite_shard, List *skip,
								 GbTenantWalk *walk, int64 max_rows);
extern int64 gb_tenant_purge_step(int64 tenant, GbTenantWalk *walk, int64 max_rows);

/* SQL on a tenant table as its owner, with the tenant set (tenant.c) */
typedef struct GbOwnerScope
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	int			tenant_nestlevel;
} GbOwnerScope;
extern void gb_owner_scope_begin(const GbTenantTable *t, int64 tenant, GbOwnerScope *scope);
extern void gb_owner_scope_end(const GbOwnerScope *scope);
extern void gb_tenant_init(void);
extern void gb_isolation_apply_to_new(Oid registered, const char *qualified_name);
extern Datum gb_oid_array(List *oids);
extern int	gb_tenant_scope_begin(int64 tenant_id);
extern void gb_tenant_scope_end(int nestlevel);
extern bool gb_tenant_current(int64 *tenant);

/* shard_fdw.c: libpq's parse error of a connection string, masked */
extern char *gb_conninfo_error(const char *conninfo, const char *libpq_msg);
extern void gb_conninfo_endpoint(const char *conninfo, char **host, char **port, char **dbname);

/* shard_secret.c */
extern void gb_secret_init(void);
extern char *gb_secret_mask(const char *text);
extern char *gb_secret_libpq_message(const char *msg);
extern void gb_secret_hide_activity(void);

/* shard_sync.c */
extern void gb_shard_sync_init(void);

/* tenant_move.c */
extern void gb_tenant_move_init(void);
extern void gb_tenant_move_shmem_request(void);
extern void gb_tenant_move_shmem_init(void);
extern bool gb_move_fence_bypass;
extern bool gb_move_is_pace_trigger(Oid tgfoid);
extern void gb_move_check_truncate(TruncateStmt *stmt);
extern void gb_move_check_newcomer(Oid relid);

#endif							/* GB_ROUTING_H */
