/*-------------------------------------------------------------------------
 *
 * enum_cache.c
 *	  Label lookups of SMALLINT enum domains, the domain CHECK function and
 *	  the planner support of gb_enum_code(), over a per-backend cache.
 *
 * The cache holds one entry per type asked about: an enum's labels sorted by
 * code and by label (memory proportional to its labels, lookups by binary
 * search), or for another type the enum it is a domain over, or the fact that
 * it is none.  Entries are loaded one type at a time, when first asked for.
 *
 * An invalidation of a type's pg_type row (see enums.h) only marks entries
 * invalid; the next lookup reloads them.  Memory is never freed under a
 * caller: an invalidation can arrive during any catalog access.  Entries are
 * never removed, so call sites may keep pointers to them.
 *
 *-------------------------------------------------------------------------
 */
#include "enums.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/planmain.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/* How many labels an error message lists before it says how many more. */
#define GB_ENUM_DESCRIBE_MAX	50

typedef struct GbEnumEntry
{
	Oid			typid;			/* hash key: the type asked about */
	uint32		type_hash;		/* its TYPEOID syscache hash */
	bool		valid;			/* false: reload before use */
	Oid			enum_typid;		/* typid if an enum, the enum it is a domain
								 * over, or InvalidOid */
	/* The labels, when enum_typid == typid; all in the one chunk "data". */
	bool		builtin;
	int			nlabels;
	int16	   *codes;			/* ascending */
	text	  **labels;			/* labels[i] belongs to codes[i] */
	int16	   *by_label;		/* positions, in label order */
	void	   *data;
} GbEnumEntry;

static HTAB *gb_enum_cache = NULL;
static MemoryContext gb_enum_context = NULL;

/* Counts invalidations that touched the cache, to detect one during a load. */
static uint64 gb_enum_invalidations = 0;

static void
gb_enum_invalidation_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS status;
	GbEnumEntry *entry;
	bool		matched = false;

	if (gb_enum_cache == NULL)
		return;
	hash_seq_init(&status, gb_enum_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (hashvalue == 0 || entry->type_hash == hashvalue)
		{
			entry->valid = false;
			matched = true;
		}
	}
	if (!matched)
		return;

	/*
	 * A type that gained labels turns domains over it into enums: entries
	 * that are not enums themselves are cheap to work out again.
	 */
	hash_seq_init(&status, gb_enum_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->enum_typid != entry->typid)
			entry->valid = false;
	}
	gb_enum_invalidations++;
}

static void
gb_enum_cache_init(void)
{
	HASHCTL		ctl;

	if (gb_enum_cache != NULL)
		return;
	if (gb_enum_context == NULL)
		gb_enum_context = AllocSetContextCreate(CacheMemoryContext, "gb_scale enum cache",
												ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(GbEnumEntry);
	ctl.hcxt = gb_enum_context;
	gb_enum_cache = hash_create("gb_scale enums", 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterSyscacheCallback(TYPEOID, gb_enum_invalidation_callback, (Datum) 0);
}

/* Byte order of labels, shorter first on a common prefix. */
static int
gb_label_cmp(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int
gb_label_position_cmp(const void *a, const void *b, void *arg)
{
	text	  **labels = (text **) arg;
	const text *la = labels[*(const int16 *) a];
	const text *lb = labels[*(const int16 *) b];

	return gb_label_cmp(VARDATA_ANY(la), VARSIZE_ANY_EXHDR(la),
						VARDATA_ANY(lb), VARSIZE_ANY_EXHDR(lb));
}

/* Copy the rows of an enum into the entry, in one chunk of cache memory. */
static void
gb_enum_entry_fill(GbEnumEntry *entry, const GbEnumLabel *rows, int n)
{
	Size		size = MAXALIGN(sizeof(int16) * n) * 2 + MAXALIGN(sizeof(text *) * n);
	char	   *p;

	for (int i = 0; i < n; i++)
		size += MAXALIGN(VARSIZE_ANY(rows[i].label));
	p = MemoryContextAlloc(gb_enum_context, size);
	entry->data = p;
	entry->codes = (int16 *) p;
	p += MAXALIGN(sizeof(int16) * n);
	entry->by_label = (int16 *) p;
	p += MAXALIGN(sizeof(int16) * n);
	entry->labels = (text **) p;
	p += MAXALIGN(sizeof(text *) * n);
	for (int i = 0; i < n; i++)
	{
		entry->codes[i] = rows[i].code;
		entry->by_label[i] = (int16) i;
		entry->labels[i] = (text *) p;
		memcpy(p, rows[i].label, VARSIZE_ANY(rows[i].label));
		p += MAXALIGN(VARSIZE_ANY(rows[i].label));
	}
	qsort_arg(entry->by_label, n, sizeof(int16), gb_label_position_cmp, entry->labels);
	entry->nlabels = n;
	entry->builtin = n > 0 && rows[0].builtin;
}

static GbEnumEntry *gb_enum_entry(Oid typid);

static void
gb_enum_entry_load(GbEnumEntry *entry)
{
	uint64		invalidations = gb_enum_invalidations;
	Relation	rel;
	GbEnumLabel *rows;
	int			n;
	HeapTuple	tuple;

	if (entry->data != NULL)
		pfree(entry->data);
	entry->data = NULL;
	entry->nlabels = 0;
	entry->builtin = false;
	entry->enum_typid = InvalidOid;
	entry->type_hash = GetSysCacheHashValue1(TYPEOID, ObjectIdGetDatum(entry->typid));

	ereport(DEBUG2,
			(errmsg_internal("gb_scale: reading the labels of type %s", gb_type_name(entry->typid))));
	rel = gb_enum_label_open(AccessShareLock, false);
	rows = gb_enum_label_read(rel, entry->typid, &n);
	table_close(rel, AccessShareLock);

	if (n > 0)
	{
		gb_enum_entry_fill(entry, rows, n);
		entry->enum_typid = entry->typid;
	}
	else if (HeapTupleIsValid(tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(entry->typid))))
	{
		Form_pg_type typform = (Form_pg_type) GETSTRUCT(tuple);
		Oid			base = typform->typtype == TYPTYPE_DOMAIN ? typform->typbasetype : InvalidOid;

		ReleaseSysCache(tuple);
		if (OidIsValid(base))
			entry->enum_typid = gb_enum_entry(base)->enum_typid;
	}
	for (int i = 0; i < n; i++)
		pfree(rows[i].label);
	pfree(rows);

	/* Changed while we read: good for this call, read again next time. */
	entry->valid = invalidations == gb_enum_invalidations;
}

/* The entry of a type, loaded if needed.  Never NULL. */
static GbEnumEntry *
gb_enum_entry(Oid typid)
{
	GbEnumEntry *entry;
	bool		found;

	gb_enum_cache_init();
	entry = hash_search(gb_enum_cache, &typid, HASH_ENTER, &found);
	if (!found)
	{
		entry->data = NULL;
		entry->valid = false;
		entry->enum_typid = InvalidOid;
		entry->type_hash = 0;
	}
	if (!entry->valid)
		gb_enum_entry_load(entry);
	return entry;
}

/*
 * The enum a type is, or with through_domains the enum it is a domain over;
 * NULL if none.
 */
static GbEnumEntry *
gb_enum_resolve(Oid typid, bool through_domains)
{
	GbEnumEntry *entry = gb_enum_entry(typid);

	if (entry->enum_typid == typid)
		return entry;
	if (!through_domains || !OidIsValid(entry->enum_typid))
		return NULL;
	return gb_enum_entry(entry->enum_typid);
}

bool
gb_enum_exists(Oid typid, bool *builtin)
{
	GbEnumEntry *entry = gb_enum_resolve(typid, false);

	*builtin = entry != NULL && entry->builtin;
	return entry != NULL;
}

static GbEnumEntry *
gb_enum_get(Oid typid)
{
	GbEnumEntry *entry = gb_enum_resolve(typid, false);

	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typid)) ?
				 errmsg("type %s is not a gb_scale enum",
						format_type_extended(typid, -1, FORMAT_TYPE_ALLOW_INVALID)) :
				 errmsg("type with OID %u is not a gb_scale enum", typid),
				 errhint("Create one with gb_enum_create(name, labels).")));
	return entry;
}

/* What a call site keeps between calls, in fn_extra. */
typedef struct GbEnumCallCache
{
	Oid			typid;
	GbEnumEntry *type_entry;	/* the entry of typid */
	GbEnumEntry *enum_entry;	/* the enum it resolves to */
} GbEnumCallCache;

static GbEnumEntry *
gb_enum_for_call(FmgrInfo *flinfo, Oid typid, bool through_domains)
{
	GbEnumCallCache *cc = flinfo->fn_extra;

	if (cc == NULL)
	{
		cc = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(GbEnumCallCache));
		flinfo->fn_extra = cc;
	}
	if (cc->enum_entry == NULL || cc->typid != typid ||
		!cc->type_entry->valid || !cc->enum_entry->valid)
	{
		cc->enum_entry = NULL;
		cc->type_entry = gb_enum_entry(typid);
		cc->typid = typid;
		cc->enum_entry = through_domains ? gb_enum_resolve(typid, true) : gb_enum_get(typid);
	}
	return cc->enum_entry;
}

/* "0 (web), 1 (whatsapp), ..." or "web, whatsapp, ...", for messages. */
static char *
gb_enum_describe(const GbEnumEntry *entry, bool with_codes)
{
	StringInfoData buf;
	int			shown = Min(entry->nlabels, GB_ENUM_DESCRIBE_MAX);

	initStringInfo(&buf);
	for (int i = 0; i < shown; i++)
	{
		char	   *label = text_to_cstring(entry->labels[i]);

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (with_codes)
			appendStringInfo(&buf, "%d (%s)", entry->codes[i], label);
		else
			appendStringInfoString(&buf, label);
	}
	if (shown < entry->nlabels)
		appendStringInfo(&buf, ", and %d more", entry->nlabels - shown);
	return buf.data;
}

/* Position of a code, or -1. */
static int
gb_enum_find_code(const GbEnumEntry *entry, int code)
{
	int			lo = 0;
	int			hi = entry->nlabels - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (entry->codes[mid] == code)
			return mid;
		if (entry->codes[mid] < code)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Position of a label, or -1. */
static int
gb_enum_find_label(const GbEnumEntry *entry, const text *label)
{
	int			lo = 0;
	int			hi = entry->nlabels - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		const text *candidate = entry->labels[entry->by_label[mid]];
		int			c = gb_label_cmp(VARDATA_ANY(candidate), VARSIZE_ANY_EXHDR(candidate),
									 VARDATA_ANY(label), VARSIZE_ANY_EXHDR(label));

		if (c == 0)
			return entry->by_label[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static text *
gb_enum_label_of(const GbEnumEntry *entry, int code)
{
	int			pos = gb_enum_find_code(entry, code);

	if (pos < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("code %d is not defined for enum %s", code, gb_type_name(entry->typid)),
				 errhint("Valid codes: %s.", gb_enum_describe(entry, true))));
	return entry->labels[pos];
}

static int16
gb_enum_code_of(const GbEnumEntry *entry, const text *label)
{
	int			pos = gb_enum_find_label(entry, label);

	if (pos < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid label \"%s\" for enum %s", text_to_cstring(label),
						gb_type_name(entry->typid)),
				 errhint("Valid labels: %s.", gb_enum_describe(entry, false))));
	return entry->codes[pos];
}

/*
 * gb_scale.enum_check(code, enum_type, codes): the CHECK constraint of every
 * enum domain.  The valid codes are part of the constraint, so restoring data
 * needs no label table; labels are read only to explain a rejected value.
 * A constant list (the constraint's) is turned into a bitmap once per call
 * site, so checking a value costs the same for any number of codes.
 */
typedef struct GbEnumCheckCache
{
	bits8		valid[GB_ENUM_NUM_CODES / BITS_PER_BYTE];
} GbEnumCheckCache;

static bool
gb_code_in_array(int code, ArrayType *codes, FmgrInfo *flinfo)
{
	int			ncodes = ArrayGetNItems(ARR_NDIM(codes), ARR_DIMS(codes));
	const int16 *list = (const int16 *) ARR_DATA_PTR(codes);
	GbEnumCheckCache *cc = flinfo->fn_extra;

	if (ARR_HASNULL(codes) || ARR_ELEMTYPE(codes) != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gb_scale.enum_check: codes must be a smallint array without NULLs")));
	if (cc == NULL && get_fn_expr_arg_stable(flinfo, 2))
	{
		cc = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(GbEnumCheckCache));
		for (int i = 0; i < ncodes; i++)
		{
			if (list[i] >= 0)
				cc->valid[list[i] / BITS_PER_BYTE] |= 1 << (list[i] % BITS_PER_BYTE);
		}
		flinfo->fn_extra = cc;
	}
	if (cc != NULL)
		return code >= 0 && (cc->valid[code / BITS_PER_BYTE] & (1 << (code % BITS_PER_BYTE))) != 0;
	for (int i = 0; i < ncodes; i++)
	{
		if (list[i] == code)
			return true;
	}
	return false;
}

PG_FUNCTION_INFO_V1(gb_enum_check);
Datum
gb_enum_check(PG_FUNCTION_ARGS)
{
	int			code = PG_GETARG_INT16(0);
	Oid			typid = PG_GETARG_OID(1);
	GbEnumEntry *entry;
	char	   *valid_codes;

	if (gb_code_in_array(code, PG_GETARG_ARRAYTYPE_P(2), fcinfo->flinfo))
		PG_RETURN_BOOL(true);

	entry = gb_enum_resolve(typid, false);
	valid_codes = entry ? gb_enum_describe(entry, true) : NULL;
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("value %d is not a valid code for enum domain %s", code, gb_type_name(typid)),
			 valid_codes ? errdetail("Valid codes: %s.", valid_codes) : 0,
			 (entry && entry->builtin) ?
			 errhint("Use one of the codes above; General Bots' built-in enums have a fixed set.") :
			 errhint("Add a label with gb_enum_add('%s', label) to make a new code valid.",
					 gb_type_name(typid)),
			 errdatatype(typid)));
	PG_RETURN_BOOL(false);
}

/* gb_label(value): the label of a value of any enum domain. */
PG_FUNCTION_INFO_V1(gb_label);
Datum
gb_label(PG_FUNCTION_ARGS)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	GbEnumEntry *entry = gb_enum_for_call(fcinfo->flinfo, argtype, true);

	if (entry != NULL)
		PG_RETURN_TEXT_P(DatumGetTextPCopy(PointerGetDatum(gb_enum_label_of(entry, PG_GETARG_INT16(0)))));
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("gb_label() takes a value of a gb_scale enum domain, not of type %s",
					format_type_extended(argtype, -1, FORMAT_TYPE_ALLOW_INVALID)),
			 errhint("Cast the value to its enum domain, or call gb_enum_label(enum_type, code).")));
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(gb_enum_label);
Datum
gb_enum_label(PG_FUNCTION_ARGS)
{
	GbEnumEntry *entry = gb_enum_for_call(fcinfo->flinfo, PG_GETARG_OID(0), false);

	PG_RETURN_TEXT_P(DatumGetTextPCopy(PointerGetDatum(gb_enum_label_of(entry, PG_GETARG_INT16(1)))));
}

PG_FUNCTION_INFO_V1(gb_enum_code);
Datum
gb_enum_code(PG_FUNCTION_ARGS)
{
	GbEnumEntry *entry = gb_enum_for_call(fcinfo->flinfo, PG_GETARG_OID(0), false);

	PG_RETURN_INT16(gb_enum_code_of(entry, PG_GETARG_TEXT_PP(1)));
}

/* gb_enum_labels(enum_type): every code and label, in code order. */
PG_FUNCTION_INFO_V1(gb_enum_labels);
Datum
gb_enum_labels(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GbEnumEntry *entry = gb_enum_get(PG_GETARG_OID(0));
	int			n = entry->nlabels;
	int16	   *codes = palloc(sizeof(int16) * n);
	text	  **labels = palloc(sizeof(text *) * n);

	/* Copied first: filling the result store may take in invalidations. */
	for (int i = 0; i < n; i++)
	{
		codes[i] = entry->codes[i];
		labels[i] = DatumGetTextPCopy(PointerGetDatum(entry->labels[i]));
	}
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < n; i++)
	{
		Datum		values[2] = {Int16GetDatum(codes[i]), PointerGetDatum(labels[i])};
		bool		nulls[2] = {false, false};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Planner support for gb_enum_code(): with constant arguments the call is
 * replaced by its code at plan time, so "WHERE role = gb_enum_code(...)" can
 * use an index.  The plan depends on the domain, and every label change
 * invalidates the domain, so cached plans are rebuilt rather than keep a
 * stale code.
 */
PG_FUNCTION_INFO_V1(gb_enum_code_support);
Datum
gb_enum_code_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestSimplify *req;
	Const	   *type_arg;
	Const	   *label_arg;
	GbEnumEntry *entry;
	int			pos;

	if (!IsA(rawreq, SupportRequestSimplify))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestSimplify *) rawreq;
	if (req->root == NULL || list_length(req->fcall->args) != 2 ||
		!IsA(linitial(req->fcall->args), Const) || !IsA(lsecond(req->fcall->args), Const))
		PG_RETURN_POINTER(NULL);
	type_arg = linitial_node(Const, req->fcall->args);
	label_arg = lsecond_node(Const, req->fcall->args);
	if (type_arg->constisnull || label_arg->constisnull)
		PG_RETURN_POINTER(NULL);

	/* An unknown type or label is left for execution to report. */
	entry = gb_enum_resolve(DatumGetObjectId(type_arg->constvalue), false);
	if (entry == NULL)
		PG_RETURN_POINTER(NULL);
	pos = gb_enum_find_label(entry, DatumGetTextPP(label_arg->constvalue));
	if (pos < 0)
		PG_RETURN_POINTER(NULL);

	record_plan_type_dependency(req->root, entry->typid);
	PG_RETURN_POINTER(makeConst(INT2OID, -1, InvalidOid, sizeof(int16),
								Int16GetDatum(entry->codes[pos]), false, true));
}
