/*-------------------------------------------------------------------------
 *
 * partition.h
 *	  Automatic time (and tenant) partitions: declarations shared by
 *	  partition_bounds.c, partition_ddl.c, partition_maint.c and
 *	  partition_worker.c.
 *
 * Terms.  A registered table (the "parent") owns one or more time trees: a
 * relation partitioned by RANGE on the control column.  For a parent
 * partitioned by RANGE the parent is its only tree; for a parent partitioned
 * by LIST on the tenant column the trees are the tenants tail (its DEFAULT
 * partition) and one subtree per dedicated tenant.  A tree's time partitions
 * are plain tables, or tables partitioned by HASH on the tenant column.
 *
 * Values of the control column are compared as int64 "keys": microseconds
 * for timestamptz and timestamp, the midnight of a date in microseconds, the
 * snowflake ID itself for bigint.  A period is named by its start: a local
 * time (timestamp without time zone in the registration's time zone) for
 * days and longer, an instant for hours of timestamptz and snowflake columns,
 * so that an hour repeated or skipped by DST is an hour like any other.
 *
 * Locking: DDL on a tree takes at most SHARE UPDATE EXCLUSIVE on the tree
 * (ATTACH) except retiring a partition without CONCURRENTLY (ACCESS
 * EXCLUSIVE, bounded by gb_scale.maintenance_lock_timeout).  Two maintenance
 * runs on one table exclude each other through a transaction-level lock on
 * the pair (gb_scale.partition_config, parent), which no SQL can take.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_PARTITION_H
#define GB_PARTITION_H

#include "gb_scale.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

/* cppcheck reads no server headers; tell it what PostgreSQL's list loop is. */
#ifdef __CPPCHECK__
#define foreach(cell, lst) for ((cell) = list_head(lst); (cell) != NULL; (cell) = lnext((lst), (cell)))
#endif

#define GB_PARTITION_CONFIG_TABLE	"partition_config"
#define GB_PARTITION_TENANT_TABLE	"partition_tenant"

typedef enum GbGranularity
{
	GB_GRAN_HOUR,
	GB_GRAN_DAY,
	GB_GRAN_WEEK,
	GB_GRAN_MONTH,
	GB_GRAN_QUARTER,
	GB_GRAN_YEAR
} GbGranularity;

typedef enum GbControlKind
{
	GB_CTL_TIMESTAMPTZ,
	GB_CTL_TIMESTAMP,
	GB_CTL_DATE,
	GB_CTL_SNOWFLAKE
} GbControlKind;

typedef enum GbRetentionMode
{
	GB_RETAIN_DROP,
	GB_RETAIN_DETACH,
	GB_RETAIN_ARCHIVE
} GbRetentionMode;

/* One row of gb_scale.partition_config. */
typedef struct GbPartConfig
{
	Interval	premake;
	Interval	retention;
	char	   *archive_schema;
	char	   *tenant_column;	/* NULL: no tenant column */
	char	   *time_zone;
	Oid			parent;
	GbGranularity granularity;
	GbRetentionMode retention_mode;
	int			tenant_buckets; /* 0: no hash buckets */
	bool		is_list;
	bool		has_retention;
	bool		default_partition;
	bool		has_tenant_rows;	/* any row in gb_scale.partition_tenant */
	bool		has_retiring;	/* any row in gb_scale.partition_retiring */
} GbPartConfig;

/* One row of gb_scale.partition_tenant. */
typedef struct GbTenantRow
{
	int64		tenant_id;
	bool		has_retention;
	Interval	retention;
	Oid			subtree;		/* InvalidOid: not dedicated */
	bool		has_purged_before;
	TimestampTz purged_before;
} GbTenantRow;

/* How to turn control values into periods for one tree. */
typedef struct GbPeriodCtx
{
	GbGranularity granularity;
	GbControlKind kind;
	Oid			control_type;
	AttrNumber	control_attnum;
	char	   *control_name;
	const char *time_zone;
} GbPeriodCtx;

/* A partition of a tree as its bounds say: [lo, hi) in keys. */
typedef struct GbRange
{
	Oid			relid;
	int64		lo;				/* PG_INT64_MIN: MINVALUE */
	int64		hi;				/* PG_INT64_MAX: MAXVALUE */
} GbRange;

typedef struct GbTreeBounds
{
	int			nranges;
	GbRange    *ranges;			/* sorted by lo */
	Oid			default_oid;	/* InvalidOid when none */
} GbTreeBounds;

/* A partition the background worker retires with DETACH ... CONCURRENTLY. */
typedef struct GbPendingDetach
{
	Oid			parent;			/* the registered table */
	Oid			owner;
	Oid			tree;
	Oid			partition;
	GbRetentionMode mode;
	char	   *archive_schema;
} GbPendingDetach;

/* What a pass did to one table. */
typedef struct GbPassCounts
{
	char	   *error;			/* first step that failed, kept for last_error */
	int			created;
	int			retired;
	int64		moved;
	int64		purged;
	bool		drain_more;		/* the drain stopped at its limit, not done */
	bool		premake_more;	/* premake stopped at its limit, not done */
} GbPassCounts;

/* Settings (partition_worker.c) */
extern char *gb_maintenance_databases;
extern int	gb_maintenance_naptime;
extern int	gb_maintenance_lock_timeout;
extern int	gb_maintenance_drain_limit;
extern int	gb_maintenance_premake_limit;
extern char *gb_test_now;

extern void gb_partition_init(void);

/* partition_bounds.c */
extern bool gb_granularity_from_interval(const Interval *iv, GbGranularity *out);
extern const Interval *gb_granularity_interval(GbGranularity g);
extern const char *gb_granularity_name(GbGranularity g);
extern bool gb_control_kind_from_type(Oid typid, GbControlKind *out);
extern void gb_check_time_zone(const char *tz);
extern int64 gb_key_from_time(const GbPeriodCtx *ctx, TimestampTz t);
extern TimestampTz gb_time_from_key(const GbPeriodCtx *ctx, int64 key);
extern Timestamp gb_period_of_key(const GbPeriodCtx *ctx, int64 key);
extern Timestamp gb_period_next(const GbPeriodCtx *ctx, Timestamp start);
extern int64 gb_period_lower(const GbPeriodCtx *ctx, Timestamp start);
extern char *gb_key_literal(const GbPeriodCtx *ctx, int64 key);
extern char *gb_period_suffix(const GbPeriodCtx *ctx, Timestamp start);
extern TimestampTz gb_time_add(const char *tz, TimestampTz t, const Interval *iv, bool subtract);
extern int	gb_interval_cmp(const Interval *a, const Interval *b);
extern bool gb_bounds_first_gap(const GbTreeBounds *b, int64 lo, int64 hi, int64 *gap_lo, int64 *gap_hi);
extern char *gb_range_suffix(const GbPeriodCtx *ctx, int64 lo, int64 hi);

/* partition_ddl.c */
extern void gb_period_ctx_for_tree(Relation tree, const GbPartConfig *cfg, GbPeriodCtx *ctx);
extern GbTreeBounds *gb_tree_bounds(Relation tree, const GbPeriodCtx *ctx);
extern Oid	gb_create_time_partition(const GbPartConfig *cfg, Oid tree, const GbPeriodCtx *ctx,
									 const GbTreeBounds *bounds, Timestamp start, int64 *moved);
extern Oid	gb_create_range_partition(const GbPartConfig *cfg, Oid tree, const GbPeriodCtx *ctx,
									  const GbTreeBounds *bounds, int64 lo, int64 hi, int64 *moved);
extern void gb_create_default_partition(const GbPartConfig *cfg, Oid tree);
extern void gb_invalidate_default_tree(Oid parent);
extern Oid	gb_create_subtree(const GbPartConfig *cfg, const char *control, bool has_tenant,
							  int64 tenant_id, bool as_default);
extern bool gb_read_tree(Oid tree, const GbPartConfig *cfg, bool dry_run, GbPeriodCtx *ctx,
						 GbTreeBounds **bounds);
extern void gb_retire_partition(Oid tree, Oid partition, GbRetentionMode mode,
								const char *archive_schema, bool detached);
extern void gb_finalize_detach(Oid tree, Oid partition);
extern void gb_retiring_add(Oid parent, Oid partition);
extern void gb_retiring_remove(Oid partition);
extern List *gb_pending_detaches(Oid tree);
extern void gb_exec_sql(const char *sql);
extern uint64 gb_exec_count(const char *sql);
extern char *gb_qualified_name(Oid relid);
extern char *gb_tenant_column_of(const GbPartConfig *cfg);
extern char *gb_column_list(Relation rel);
extern uint64 gb_move_rows(Oid source, Oid dest, const char *columns, const char *qual);
extern void gb_move_init(void);

/* partition_maint.c */
extern TimestampTz gb_maintenance_now(void);
extern List *gb_config_load(Oid parent);
extern List *gb_tenants_load(Oid parent);
extern Oid	gb_rel_owner(Oid relid);
extern void gb_catalog_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls);
extern bool gb_maintain_one(const GbPartConfig *cfg, TimestampTz now, bool dry_run,
							bool concurrent_detach, List **pending, GbPassCounts *counts);
extern void gb_config_record(Oid parent, TimestampTz now, const char *error);
extern void gb_config_record_many(List *parents, TimestampTz now);
extern bool gb_has_rows(Oid relid);
extern bool gb_retention_cutoff(const GbPeriodCtx *ctx, TimestampTz now, const Interval *retention, int64 *cutoff);
extern void gb_as_owner_begin(Oid owner, Oid *save_userid, int *save_sec, int *nestlevel);
extern void gb_as_owner_end(Oid save_userid, int save_sec, int nestlevel);
extern void gb_run_pass(Oid only_parent, bool nonatomic, bool in_worker);
extern List *gb_pass_pending;

/* partition_horizon.c */
extern void gb_horizons_load(void);
extern void gb_horizons_forget(void);
extern bool gb_horizon_says_idle(const GbPartConfig *cfg, Oid tree, TimestampTz now, bool has_retention,
								 const Interval *retention);
extern void gb_horizon_note_idle(const GbPartConfig *cfg, Oid tree, TimestampTz now, bool has_retention,
								 const Interval *retention, const GbPeriodCtx *ctx, const GbTreeBounds *bounds);

/* partition_api.c */
extern int64 gb_count_rows(Oid relid);
extern List *gb_registration_trees(const GbPartConfig *cfg, bool with_subtrees);

/* sizing.c */
extern void gb_sizing_init(void);

#endif							/* GB_PARTITION_H */
