/*-------------------------------------------------------------------------
 *
 * enums.c
 *	  SMALLINT enum domains: the domain check, label lookups and their
 *	  per-backend cache.
 *
 * Labels live in gb_scale.enum_label.  Each backend caches all of them on
 * first use.  Every change to the table invalidates the pg_type entry of the
 * enum's domain (ALTER DOMAIN does so itself; renames call
 * gb_scale.enum_invalidate()), which reaches every backend through
 * PostgreSQL's shared invalidation queue: the cache is dropped and plans
 * that folded a gb_enum_code() call into a constant are replanned.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/supportnodes.h"
#include "optimizer/planmain.h"
#include "parser/parse_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#define GB_MAX_CODE PG_INT16_MAX

typedef struct GbEnum
{
	Oid			typid;			/* hash key: the domain */
	uint32		type_hash;		/* TYPEOID syscache hash, to match invalidations */
	int			ncodes;			/* 1 + highest code */
	int			nlabels;
	bool		builtin;		/* one of General Bots' enums, fixed by the extension */
	text	  **labels;			/* by code; NULL where a code is undefined */
} GbEnum;

static HTAB *gb_enum_cache = NULL;
static MemoryContext gb_enum_context = NULL;
static uint64 gb_enum_generation = 1;
static bool gb_enum_callback_registered = false;

/* What a call site remembers between calls (in fn_extra). */
typedef struct GbEnumCallCache
{
	uint64		generation;
	Oid			typid;
	GbEnum	   *entry;
} GbEnumCallCache;

/*
 * Forget the cache.  Its memory is freed only by the next load, never here:
 * an invalidation can arrive during any catalog access, while a caller
 * still holds an entry.
 */
static void
gb_enum_cache_forget(void)
{
	gb_enum_cache = NULL;
	gb_enum_generation++;
}

/* Set while loading, so that an invalidation arriving then forces a reload. */
static bool gb_enum_loading = false;
static bool gb_enum_invalidated_while_loading = false;

static void
gb_enum_invalidation_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS status;
	GbEnum	   *entry;

	if (gb_enum_loading)
	{
		gb_enum_invalidated_while_loading = true;
		return;
	}
	if (gb_enum_cache == NULL)
		return;
	if (hashvalue == 0)
	{
		gb_enum_cache_forget();
		return;
	}
	hash_seq_init(&status, gb_enum_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->type_hash == hashvalue)
		{
			hash_seq_term(&status);
			gb_enum_cache_forget();
			return;
		}
	}
}

/*
 * Read every enum's labels into a new cache.  *complete is false when an
 * invalidation arrived after the snapshot was taken.
 */
static HTAB *
gb_enum_cache_read(bool *complete)
{
	HASHCTL		ctl;
	HTAB	   *cache;
	SPIPlanPtr	plan;
	MemoryContext oldcontext;
	uint64		nrows;

	MemoryContextReset(gb_enum_context);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(GbEnum);
	ctl.hcxt = gb_enum_context;
	cache = hash_create("gb_scale enums", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * Labels are read like catalog data: with the latest snapshot, not the
	 * transaction's.  A repeatable-read transaction would otherwise cache,
	 * and keep after it ends, labels older than the invalidation that made
	 * us reload.
	 */
	plan = SPI_prepare("SELECT enum_type::pg_catalog.oid, max(code) OVER (PARTITION BY enum_type), code, label, builtin"
					   "  FROM " GB_INTERNAL_SCHEMA ".enum_label", 0, NULL);

	/* Invalidations taken in while planning came before the snapshot. */
	gb_enum_loading = true;
	gb_enum_invalidated_while_loading = false;
	if (plan == NULL ||
		SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s.enum_label", GB_INTERNAL_SCHEMA);
	nrows = SPI_processed;

	oldcontext = MemoryContextSwitchTo(gb_enum_context);
	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			typid = DatumGetObjectId(SPI_getbinval(row, desc, 1, &isnull));
		int			max_code = DatumGetInt16(SPI_getbinval(row, desc, 2, &isnull));
		int			code = DatumGetInt16(SPI_getbinval(row, desc, 3, &isnull));
		Datum		label = SPI_getbinval(row, desc, 4, &isnull);
		bool		found;
		GbEnum	   *entry = hash_search(cache, &typid, HASH_ENTER, &found);

		if (!found)
		{
			entry->type_hash = GetSysCacheHashValue1(TYPEOID, ObjectIdGetDatum(typid));
			entry->ncodes = max_code + 1;
			entry->nlabels = 0;
			entry->builtin = DatumGetBool(SPI_getbinval(row, desc, 5, &isnull));
			entry->labels = palloc0(sizeof(text *) * entry->ncodes);
		}
		entry->labels[code] = DatumGetTextPCopy(label);
		entry->nlabels++;
	}
	MemoryContextSwitchTo(oldcontext);
	SPI_finish();
	gb_enum_loading = false;
	*complete = !gb_enum_invalidated_while_loading;
	return cache;
}

/*
 * Fill the cache.  It is published only when read to the end (an error
 * leaves none), and read again, a few times at most, when a label changed
 * while it was being read.
 */
static void
gb_enum_cache_load(void)
{
	HTAB	   *cache = NULL;
	bool		complete = false;

	if (!gb_enum_callback_registered)
	{
		CacheRegisterSyscacheCallback(TYPEOID, gb_enum_invalidation_callback, (Datum) 0);
		gb_enum_callback_registered = true;
	}
	if (gb_enum_context == NULL)
		gb_enum_context = AllocSetContextCreate(CacheMemoryContext, "gb_scale enum cache",
												ALLOCSET_SMALL_SIZES);
	gb_enum_cache_forget();
	for (int attempt = 0; !complete && attempt < 3; attempt++)
		cache = gb_enum_cache_read(&complete);
	gb_enum_cache = cache;
}

/*
 * The cached enum of a domain, or NULL when the type is not an enum.  A miss
 * reloads once: the enum may have been created since the cache was filled.
 */
static GbEnum *
gb_enum_find(Oid typid)
{
	GbEnum	   *entry = NULL;

	if (gb_enum_cache != NULL)
		entry = hash_search(gb_enum_cache, &typid, HASH_FIND, NULL);
	if (entry == NULL)
	{
		gb_enum_cache_load();
		entry = hash_search(gb_enum_cache, &typid, HASH_FIND, NULL);
	}
	return entry;
}

static GbEnum *
gb_enum_get(Oid typid)
{
	GbEnum	   *entry = gb_enum_find(typid);

	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("type %s is not a gb_scale enum", format_type_be(typid)),
				 errhint("Create one with gb_enum_create(name, labels).")));
	return entry;
}

/* The enum of a type, or of the domain it is a domain over; NULL if none. */
static GbEnum *
gb_enum_find_through_domains(Oid typid)
{
	while (OidIsValid(typid))
	{
		GbEnum	   *entry = gb_enum_find(typid);
		HeapTuple	tuple;
		Form_pg_type typform;

		if (entry != NULL)
			return entry;
		tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
		if (!HeapTupleIsValid(tuple))
			break;
		typform = (Form_pg_type) GETSTRUCT(tuple);
		typid = typform->typtype == TYPTYPE_DOMAIN ? typform->typbasetype : InvalidOid;
		ReleaseSysCache(tuple);
	}
	return NULL;
}

/*
 * The enum for this call site, revalidated against the cache generation.
 * With missing_ok, a domain over an enum domain counts as that enum.
 */
static GbEnum *
gb_enum_for_call(FmgrInfo *flinfo, Oid typid, bool missing_ok)
{
	GbEnumCallCache *cc = flinfo->fn_extra;

	if (cc == NULL)
	{
		cc = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(GbEnumCallCache));
		flinfo->fn_extra = cc;
	}
	if (cc->generation != gb_enum_generation || cc->typid != typid || cc->entry == NULL)
	{
		cc->entry = missing_ok ? gb_enum_find_through_domains(typid) : gb_enum_get(typid);
		cc->typid = typid;
		cc->generation = gb_enum_generation;
	}
	return cc->entry;
}

/* "0 (web), 1 (whatsapp), ..." or "web, whatsapp, ..." for messages. */
static char *
gb_enum_describe(const GbEnum *entry, bool with_codes)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int code = 0; code < entry->ncodes; code++)
	{
		if (entry->labels[code] == NULL)
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		if (with_codes)
			appendStringInfo(&buf, "%d (%s)", code, text_to_cstring(entry->labels[code]));
		else
			appendStringInfoString(&buf, text_to_cstring(entry->labels[code]));
	}
	return buf.data;
}

static text *
gb_enum_label_of(const GbEnum *entry, int code)
{
	if (code < 0 || code >= entry->ncodes || entry->labels[code] == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("code %d is not defined for enum %s", code, format_type_be(entry->typid)),
				 errhint("Valid codes: %s.", gb_enum_describe(entry, true))));
	return entry->labels[code];
}

static int
gb_enum_code_of(const GbEnum *entry, text *label, bool missing_ok)
{
	for (int code = 0; code < entry->ncodes; code++)
	{
		if (entry->labels[code] != NULL &&
			VARSIZE_ANY_EXHDR(entry->labels[code]) == VARSIZE_ANY_EXHDR(label) &&
			memcmp(VARDATA_ANY(entry->labels[code]), VARDATA_ANY(label),
				   VARSIZE_ANY_EXHDR(label)) == 0)
			return code;
	}
	if (missing_ok)
		return -1;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid label \"%s\" for enum %s", text_to_cstring(label),
					format_type_be(entry->typid)),
			 errhint("Valid labels: %s.", gb_enum_describe(entry, false))));
	return -1;					/* keep compiler quiet */
}

/* The type a name resolves to now, or InvalidOid. */
static Oid
gb_type_by_name(const char *name)
{
	Datum		result;

	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(name);
	fcinfo->args[0].isnull = false;
	result = to_regtype(fcinfo);
	return fcinfo->isnull ? InvalidOid : DatumGetObjectId(result);
}

/*
 * gb_scale.enum_check(code, domain, codes): the CHECK constraint of every
 * enum domain.  The valid codes are part of the constraint itself, so it
 * needs no table while data is restored; the labels are only read to
 * explain a rejected value.
 */
PG_FUNCTION_INFO_V1(gb_enum_check);
Datum
gb_enum_check(PG_FUNCTION_ARGS)
{
	int			code = PG_GETARG_INT16(0);
	ArrayType  *codes = PG_GETARG_ARRAYTYPE_P(2);
	int			ncodes = ArrayGetNItems(ARR_NDIM(codes), ARR_DIMS(codes));
	const int16 *valid = (const int16 *) ARR_DATA_PTR(codes);
	char	   *domain;
	Oid			typid;
	GbEnum	   *entry;

	if (ARR_HASNULL(codes) || ARR_ELEMTYPE(codes) != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gb_scale.enum_check: codes must be a smallint array without NULLs")));
	for (int i = 0; i < ncodes; i++)
	{
		if (valid[i] == code)
			PG_RETURN_BOOL(true);
	}

	/* The name is as of the constraint's creation; a renamed domain has no labels to show. */
	domain = text_to_cstring(PG_GETARG_TEXT_PP(1));
	typid = gb_type_by_name(domain);
	entry = OidIsValid(typid) ? gb_enum_find(typid) : NULL;
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("value %d is not a valid code for enum domain %s", code, domain),
			 entry ? errdetail("Valid codes: %s.", gb_enum_describe(entry, true)) : 0,
			 (entry && entry->builtin) ?
			 errhint("Use one of the codes above; General Bots' built-in enums have a fixed set.") :
			 errhint("Add a label with gb_enum_add('%s', label) to make a new code valid.", domain),
			 OidIsValid(typid) ? errdatatype(typid) : 0));
	PG_RETURN_BOOL(false);
}

/* gb_label(value): the label of a value of any enum domain. */
PG_FUNCTION_INFO_V1(gb_label);
Datum
gb_label(PG_FUNCTION_ARGS)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	GbEnum	   *entry = gb_enum_for_call(fcinfo->flinfo, argtype, true);

	if (entry == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("gb_label() takes a value of a gb_scale enum domain, not of type %s",
						format_type_be(argtype)),
				 errhint("Cast the value to its enum domain, or call gb_enum_label(enum_type, code).")));
	PG_RETURN_TEXT_P(DatumGetTextPCopy(PointerGetDatum(gb_enum_label_of(entry, PG_GETARG_INT16(0)))));
}

PG_FUNCTION_INFO_V1(gb_enum_label);
Datum
gb_enum_label(PG_FUNCTION_ARGS)
{
	GbEnum	   *entry = gb_enum_for_call(fcinfo->flinfo, PG_GETARG_OID(0), false);

	PG_RETURN_TEXT_P(DatumGetTextPCopy(PointerGetDatum(gb_enum_label_of(entry, PG_GETARG_INT16(1)))));
}

PG_FUNCTION_INFO_V1(gb_enum_code);
Datum
gb_enum_code(PG_FUNCTION_ARGS)
{
	GbEnum	   *entry = gb_enum_for_call(fcinfo->flinfo, PG_GETARG_OID(0), false);

	PG_RETURN_INT16((int16) gb_enum_code_of(entry, PG_GETARG_TEXT_PP(1), false));
}

/*
 * Planner support for gb_enum_code(): with constant arguments the call is
 * replaced by its code at plan time, so "WHERE role = gb_enum_code(...)"
 * is evaluated once and can use an index.  The plan records a dependency
 * on the domain, and every label change invalidates the domain, so cached
 * plans are rebuilt rather than keep a stale code.
 */
PG_FUNCTION_INFO_V1(gb_enum_code_support);
Datum
gb_enum_code_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestSimplify *req;
	Const	   *type_arg;
	Const	   *label_arg;
	GbEnum	   *entry;
	int			code;

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
	entry = gb_enum_find(DatumGetObjectId(type_arg->constvalue));
	if (entry == NULL)
		PG_RETURN_POINTER(NULL);
	code = gb_enum_code_of(entry, DatumGetTextPP(label_arg->constvalue), true);
	if (code < 0)
		PG_RETURN_POINTER(NULL);

	record_plan_type_dependency(req->root, entry->typid);
	PG_RETURN_POINTER(makeConst(INT2OID, -1, InvalidOid, sizeof(int16),
								Int16GetDatum((int16) code), false, true));
}

/*
 * gb_scale.enum_invalidate(domain): announce a label change to every
 * backend, as an update of the domain's catalog row would.
 */
PG_FUNCTION_INFO_V1(gb_enum_invalidate);
Datum
gb_enum_invalidate(PG_FUNCTION_ARGS)
{
	Oid			typid = PG_GETARG_OID(0);
	Relation	pg_type_rel = table_open(TypeRelationId, AccessShareLock);
	HeapTuple	tuple = SearchSysCacheCopy1(TYPEOID, ObjectIdGetDatum(typid));

	if (HeapTupleIsValid(tuple))
		CacheInvalidateHeapTuple(pg_type_rel, tuple, NULL);
	table_close(pg_type_rel, AccessShareLock);
	PG_RETURN_VOID();
}

/*
 * gb_enum_create(name, labels, codes): resolves the domain's schema from the
 * caller's search_path like CREATE DOMAIN would, then leaves the work to
 * gb_scale.enum_create_in(), which runs with a pinned search_path.
 */
PG_FUNCTION_INFO_V1(gb_enum_create);
Datum
gb_enum_create(PG_FUNCTION_ARGS)
{
	List	   *names;
	char	   *typname;
	Oid			nspid;
	Oid			argtypes[4] = {REGNAMESPACEOID, TEXTOID, TEXTARRAYOID, INT2ARRAYOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;
	Datum		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("gb_enum_create: name and labels must not be NULL"),
				 errhint("Example: gb_enum_create('ticket_state', ARRAY['open', 'closed']).")));
	names = stringToQualifiedNameList(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	nspid = QualifiedNameGetCreationNamespace(names, &typname);
	/* A temporary domain goes without firing the drop event that removes its labels. */
	if (isAnyTempNamespace(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("gb_enum_create: enum \"%s\" cannot be temporary", typname),
				 errhint("Create it in a permanent schema.")));

	values[0] = ObjectIdGetDatum(nspid);
	values[1] = CStringGetTextDatum(typname);
	values[2] = PG_GETARG_DATUM(1);
	if (PG_ARGISNULL(2))
	{
		values[3] = (Datum) 0;
		nulls[3] = 'n';
	}
	else
		values[3] = PG_GETARG_DATUM(2);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT " GB_INTERNAL_SCHEMA ".enum_create_in($1, $2, $3, $4)",
							  4, argtypes, values, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "gb_scale.enum_create_in() returned no row");
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
