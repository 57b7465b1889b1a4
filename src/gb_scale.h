/*-------------------------------------------------------------------------
 *
 * gb_scale.h
 *	  Declarations shared by the gb_scale source files.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_SCALE_H
#define GB_SCALE_H

#include "postgres.h"

/*
 * ID layout (General Bots' documented snowflake): bit 63 is zero, then 41
 * bits of milliseconds since 2024-01-01T00:00:00Z, 10 bits of shard id and
 * 12 bits of per-millisecond sequence.
 */
#define GB_EPOCH_UNIX_MS	INT64CONST(1704067200000)
#define GB_SEQUENCE_BITS	12
#define GB_SHARD_BITS		10
#define GB_TIME_BITS		41
#define GB_MAX_SHARD_ID		((1 << GB_SHARD_BITS) - 1)
#define GB_MAX_SEQUENCE		((1 << GB_SEQUENCE_BITS) - 1)
#define GB_MAX_TIME_MS		((INT64CONST(1) << GB_TIME_BITS) - 1)
#define GB_SHARD_SHIFT		GB_SEQUENCE_BITS
#define GB_TIME_SHIFT		(GB_SEQUENCE_BITS + GB_SHARD_BITS)
#define GB_SHARD_UNSET		(-1)

/* Schema and relation that hold the extension's durable state. */
#define GB_INTERNAL_SCHEMA	"gb_scale"
#define GB_ID_MARK_SEQUENCE "id_mark"

/* Milliseconds from PostgreSQL's timestamp epoch (2000-01-01) to ours. */
#define GB_EPOCH_PG_MS		(GB_EPOCH_UNIX_MS - INT64CONST(946684800000))

/* ID milliseconds to timestamptz (microseconds since 2000-01-01). */
static inline int64
gb_ms_to_timestamptz(int64 ms)
{
	return (ms + GB_EPOCH_PG_MS) * INT64CONST(1000);
}

/* Settings (gb_scale.c) */
extern int	gb_shard_id;
extern int	gb_max_lead_ms;
extern int	gb_reservation_ms;
extern int	gb_debug_clock_offset_ms;
extern char *gb_shard_id_env_error;

extern bool gb_in_own_extension_script(void);

/*
 * Relcache invalidation callbacks of the modules, all behind one slot of the
 * backend's fixed table (PostgreSQL 15 has 10 for every library together,
 * and Citus alone takes 5).
 */
typedef void (*GbRelcacheCallback) (Oid relid);
extern void gb_register_relcache_callback(GbRelcacheCallback callback);

/* Shared memory of the ID generator (ids.c) */
extern Size gb_ids_shmem_size(void);
extern void gb_ids_shmem_init(void);
extern int	gb_ids_lwlock_count(void);

#endif							/* GB_SCALE_H */
