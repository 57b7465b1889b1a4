/*-------------------------------------------------------------------------
 *
 * enum_catalog.c
 *	  Reading and writing gb_scale.enum_label like a system catalog.
 *
 * Reads use systable scans under the catalog snapshot, which for a table
 * that is not a system catalog is taken afresh at every scan: it sees every
 * committed change and the current transaction's own, whatever the
 * transaction's isolation level, and it may be taken in a parallel worker
 * (the worker shares the leader's transaction, so it sees the same rows).
 *
 * Writes go straight to the heap and the indexes.  Callers check ownership
 * of the domain first; table privileges are not involved, as for catalogs.
 *
 *-------------------------------------------------------------------------
 */
#include "enums.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

static void
gb_enum_label_check_layout(Relation rel)
{
	static const Oid expected[Natts_gb_enum_label] = {REGTYPEOID, INT2OID, TEXTOID, BOOLOID};
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < Natts_gb_enum_label; i++)
	{
		Form_pg_attribute att = i < desc->natts ? TupleDescAttr(desc, i) : NULL;

		if (att == NULL || att->attisdropped || att->atttypid != expected[i])
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s.%s does not have the layout gb_scale expects",
							GB_INTERNAL_SCHEMA, GB_ENUM_LABEL_TABLE),
					 errhint("Reinstall the extension: its tables must not be altered.")));
	}
}

/*
 * Open the label table.  Returns NULL when it does not exist and missing_ok
 * (while the extension is being dropped, say).
 */
Relation
gb_enum_label_open(LOCKMODE lockmode, bool missing_ok)
{
	Oid			nsp = get_namespace_oid(GB_INTERNAL_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(GB_ENUM_LABEL_TABLE, nsp) : InvalidOid;
	Relation	rel;

	if (!OidIsValid(relid))
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s.%s is missing", GB_INTERNAL_SCHEMA, GB_ENUM_LABEL_TABLE),
				 errhint("Run CREATE EXTENSION gb_scale in this database.")));
	}
	rel = table_open(relid, lockmode);
	gb_enum_label_check_layout(rel);
	return rel;
}

static SysScanDesc
gb_enum_label_scan(Relation rel, Oid typid)
{
	ScanKeyData key;
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);

	ScanKeyInit(&key, Anum_gb_enum_label_enum_type, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(typid));
	/* A NULL snapshot is the catalog snapshot, registered for the scan. */
	return systable_beginscan(rel, pkey, OidIsValid(pkey), NULL, 1, &key);
}

/*
 * Every label of one type, in CurrentMemoryContext, sorted by code.  Rows
 * the table's constraints should have kept out are reported, not trusted.
 */
GbEnumLabel *
gb_enum_label_read(Relation rel, Oid typid, int *nlabels)
{
	SysScanDesc scan = gb_enum_label_scan(rel, typid);
	TupleDesc	desc = RelationGetDescr(rel);
	int			allocated = 16;
	int			n = 0;
	GbEnumLabel *rows = palloc(sizeof(GbEnumLabel) * allocated);
	HeapTuple	tuple;

	while ((tuple = systable_getnext(scan)) != NULL)
	{
		Datum		values[Natts_gb_enum_label];
		bool		nulls[Natts_gb_enum_label];
		int			code;

		heap_deform_tuple(tuple, desc, values, nulls);
		if (nulls[Anum_gb_enum_label_code - 1] || nulls[Anum_gb_enum_label_label - 1])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("%s.%s holds a NULL code or label for type %u",
							GB_INTERNAL_SCHEMA, GB_ENUM_LABEL_TABLE, typid)));
		code = DatumGetInt16(values[Anum_gb_enum_label_code - 1]);
		if (code < 0 || (n > 0 && code <= rows[n - 1].code))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("%s.%s holds an invalid or repeated code %d for type %u",
							GB_INTERNAL_SCHEMA, GB_ENUM_LABEL_TABLE, code, typid),
					 errhint("Codes are unique per enum and not negative; restore the table's constraints.")));
		if (n == allocated)
		{
			allocated *= 2;
			rows = repalloc(rows, sizeof(GbEnumLabel) * allocated);
		}
		rows[n].code = (int16) code;
		rows[n].builtin = !nulls[Anum_gb_enum_label_builtin - 1] &&
			DatumGetBool(values[Anum_gb_enum_label_builtin - 1]);
		rows[n].label = DatumGetTextPCopy(values[Anum_gb_enum_label_label - 1]);
		n++;
	}
	systable_endscan(scan);
	*nlabels = n;
	return rows;
}

/*
 * The smallest type with labels whose OID is greater than "after", or
 * InvalidOid: a walk over every enum, one type at a time.
 */
Oid
gb_enum_label_next_type(Relation rel, Oid after)
{
	ScanKeyData key;
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			next = InvalidOid;

	ScanKeyInit(&key, Anum_gb_enum_label_enum_type, BTGreaterStrategyNumber,
				F_OIDGT, ObjectIdGetDatum(after));
	scan = systable_beginscan(rel, pkey, OidIsValid(pkey), NULL, 1, &key);
	while ((tuple = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Oid			typid = DatumGetObjectId(heap_getattr(tuple, Anum_gb_enum_label_enum_type,
														  RelationGetDescr(rel), &isnull));

		/* An index scan returns them in order; a heap scan needs the minimum. */
		if (!isnull && (!OidIsValid(next) || typid < next))
			next = typid;
		if (OidIsValid(pkey))
			break;
	}
	systable_endscan(scan);
	return next;
}

void
gb_enum_label_insert(Relation rel, Oid typid, int nlabels,
					 const int16 *codes, text *const *labels, bool builtin)
{
	CatalogIndexState indstate = CatalogOpenIndexes(rel);

	for (int i = 0; i < nlabels; i++)
	{
		Datum		values[Natts_gb_enum_label];
		bool		nulls[Natts_gb_enum_label] = {false, false, false, false};
		HeapTuple	tuple;

		values[Anum_gb_enum_label_enum_type - 1] = ObjectIdGetDatum(typid);
		values[Anum_gb_enum_label_code - 1] = Int16GetDatum(codes[i]);
		values[Anum_gb_enum_label_label - 1] = PointerGetDatum(labels[i]);
		values[Anum_gb_enum_label_builtin - 1] = BoolGetDatum(builtin);
		tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
		CatalogTupleInsertWithInfo(rel, tuple, indstate);
		heap_freetuple(tuple);
	}
	CatalogCloseIndexes(indstate);
}

/* Give the label of one code a new text. */
void
gb_enum_label_rename(Relation rel, Oid typid, int16 code, text *new_label)
{
	SysScanDesc scan = gb_enum_label_scan(rel, typid);
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tuple;
	bool		found = false;

	while (!found && (tuple = systable_getnext(scan)) != NULL)
	{
		Datum		values[Natts_gb_enum_label] = {0};
		bool		nulls[Natts_gb_enum_label] = {false, false, false, false};
		bool		replace[Natts_gb_enum_label] = {false, false, true, false};
		bool		isnull;
		HeapTuple	newtuple;

		if (DatumGetInt16(heap_getattr(tuple, Anum_gb_enum_label_code, desc, &isnull)) != code)
			continue;
		values[Anum_gb_enum_label_label - 1] = PointerGetDatum(new_label);
		newtuple = heap_modify_tuple(tuple, desc, values, nulls, replace);
		CatalogTupleUpdate(rel, &tuple->t_self, newtuple);
		heap_freetuple(newtuple);
		found = true;
	}
	systable_endscan(scan);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("code %d of type %u was removed concurrently", code, typid),
				 errhint("Retry the operation.")));
}

/* Remove every label of a type that no longer exists. */
void
gb_enum_label_delete_type(Relation rel, Oid typid)
{
	SysScanDesc scan = gb_enum_label_scan(rel, typid);
	HeapTuple	tuple;

	while ((tuple = systable_getnext(scan)) != NULL)
		CatalogTupleDelete(rel, &tuple->t_self);
	systable_endscan(scan);
}

/*
 * Announce that the labels of a type changed, as an update of its pg_type
 * row would: every backend drops what it cached about the type, and plans
 * that depend on it are rebuilt.  The message follows the transaction.
 */
void
gb_enum_invalidate_type(Oid typid)
{
	Relation	pg_type_rel = table_open(TypeRelationId, AccessShareLock);
	HeapTuple	tuple = SearchSysCacheCopy1(TYPEOID, ObjectIdGetDatum(typid));

	if (HeapTupleIsValid(tuple))
	{
		CacheInvalidateHeapTuple(pg_type_rel, tuple, NULL);
		heap_freetuple(tuple);
	}
	table_close(pg_type_rel, AccessShareLock);
}

/* A type's schema-qualified name for messages; "???" for a dropped type. */
char *
gb_type_name(Oid typid)
{
	return format_type_extended(typid, -1, FORMAT_TYPE_ALLOW_INVALID | FORMAT_TYPE_FORCE_QUALIFY);
}

/* Labels compare byte by byte, as the unique index on them does for "C". */
bool
gb_label_equal(const text *a, const text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/* The first bytes of a text, cut on a character boundary, for messages. */
static char *
gb_text_prefix(text *value, int max_bytes)
{
	char	   *s = text_to_cstring(value);

	s[pg_mbcliplen(s, strlen(s), max_bytes)] = '\0';
	return s;
}

void
gb_enum_check_label(const char *func, text *label)
{
	int			len = VARSIZE_ANY_EXHDR(label);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: labels must not be empty", func),
				 errhint("Give each code a non-empty label.")));
	if (len > GB_ENUM_MAX_LABEL_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: label \"%s...\" is too long", func, gb_text_prefix(label, 20)),
				 errdetail("Labels are at most %d bytes, as for PostgreSQL's own enums; this one has %d.",
						   GB_ENUM_MAX_LABEL_BYTES, len),
				 errhint("Use a shorter label.")));
	/* The text type already guarantees valid encoding; no NUL can occur. */
}
