/*
 * citus_glue.h: what gb_scale asks of Citus, when Citus is installed in the
 * database.  gb_scale neither links against Citus nor needs it: functions of
 * Citus' library are looked up by name when first used, and only where the
 * citus extension exists (its library is then preloaded).
 */
#ifndef GB_CITUS_GLUE_H
#define GB_CITUS_GLUE_H

/* Citus is installed in this database. */
extern bool gb_citus_present(void);

/* This node is Citus' coordinator (false without Citus). */
extern bool gb_citus_is_coordinator(void);

/* citus.enable_ddl_propagation is on (false without Citus). */
extern bool gb_citus_ddl_propagation(void);

/*
 * Run COMMAND on every worker that has Citus' metadata, in Citus'
 * coordinated transaction (two-phase commit), as the current user.
 */
extern void gb_citus_send_to_workers(const char *command);

/* This node holds shards of RELID (false without Citus). */
extern bool gb_citus_has_local_placements(Oid relid);

/*
 * Run COMMAND on every node this transaction's distributed queries use,
 * now and for the rest of the (sub)transaction, as Citus does SET LOCAL.
 */
extern void gb_citus_forward_command(const char *command);

/*
 * RELID is a Citus table (distributed, reference or Citus local): its rows
 * are in its shards, and the relation itself is an empty shell.  False
 * without Citus.
 */
extern bool gb_citus_table(Oid relid);

/* Name of the distribution column of Citus table RELID; NULL when it has none. */
extern char *gb_citus_distribution_column(Oid relid);

/* Bytes of Citus table RELID on its shards, indexes and TOAST included. */
extern int64 gb_citus_total_size(Oid relid);

/*
 * Planner's row estimate of Citus table RELID summed over its shards (each
 * shard's pg_class.reltuples); false when no shard was ever analyzed.
 */
extern bool gb_citus_estimated_rows(Oid relid, int64 *rows);

/* RELID is a shard of one of Citus' tables on this node (Citus loaded). */
extern bool gb_citus_relation_is_shard(Oid relid);

#endif							/* GB_CITUS_GLUE_H */
