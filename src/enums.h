/*-------------------------------------------------------------------------
 *
 * enums.h
 *	  SMALLINT enum domains: the label table, its per-backend cache and the
 *	  functions that change it.
 *
 * gb_scale.enum_label is read and written like a system catalog: by scans
 * under a fresh catalog snapshot and by direct tuple writes, never by SQL,
 * so nothing resolves through the caller's search_path and no privilege on
 * the table is needed to use an enum.  Every change to an enum's labels
 * invalidates the pg_type row of its domain; that message reaches every
 * backend's cache and every cached plan that folded one of its codes, and
 * it follows the transaction (seen by the next command, undone on abort).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_ENUMS_H
#define GB_ENUMS_H

#include "gb_scale.h"

#include "access/htup.h"
#include "storage/lockdefs.h"
#include "utils/relcache.h"

#define GB_ENUM_LABEL_TABLE		"enum_label"
#define Anum_gb_enum_label_enum_type	1
#define Anum_gb_enum_label_code			2
#define Anum_gb_enum_label_label		3
#define Anum_gb_enum_label_builtin		4
#define Natts_gb_enum_label				4

/* As PostgreSQL's own enums: a label fits in a name. */
#define GB_ENUM_MAX_LABEL_BYTES		(NAMEDATALEN - 1)
#define GB_ENUM_MAX_CODE			PG_INT16_MAX
#define GB_ENUM_NUM_CODES			(GB_ENUM_MAX_CODE + 1)

/* Every enum domain carries exactly one CHECK constraint of this name. */
#define GB_ENUM_CONSTRAINT		"gb_enum_codes"

/* One row of gb_scale.enum_label. */
typedef struct GbEnumLabel
{
	int16		code;
	bool		builtin;
	text	   *label;			/* palloc'd copy */
} GbEnumLabel;

/* enum_catalog.c: the label table */
extern Relation gb_enum_label_open(LOCKMODE lockmode, bool missing_ok);
extern GbEnumLabel *gb_enum_label_read(Relation rel, Oid typid, int *nlabels);
extern Oid	gb_enum_label_next_type(Relation rel, Oid after);
extern void gb_enum_label_insert(Relation rel, Oid typid, int nlabels,
								 const int16 *codes, text *const *labels, bool builtin);
extern void gb_enum_label_rename(Relation rel, Oid typid, int16 code, text *new_label);
extern void gb_enum_label_delete_type(Relation rel, Oid typid);
extern void gb_enum_invalidate_type(Oid typid);
extern char *gb_type_name(Oid typid);
extern bool gb_label_equal(const text *a, const text *b);
extern void gb_enum_check_label(const char *func, text *label);

/* enum_cache.c: lookups */
extern bool gb_enum_exists(Oid typid, bool *builtin);

#endif							/* GB_ENUMS_H */
