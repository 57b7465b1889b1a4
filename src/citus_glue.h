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

/* RELID is a shard of one of Citus' tables on this node (Citus loaded). */
extern bool gb_citus_relation_is_shard(Oid relid);

#endif							/* GB_CITUS_GLUE_H */
