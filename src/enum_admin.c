/*-------------------------------------------------------------------------
 *
 * enum_admin.c
 *	  Creating enum domains and changing their labels; the triggers that
 *	  guard direct writes to gb_scale.enum_label and the event trigger that
 *	  removes the labels of dropped domains.
 *
 * Locking: a change to one enum's labels holds a self-conflicting lock on
 * the domain (as an object), then reads the labels afresh, so concurrent
 * changes apply one after the other whatever the isolation level.  Lookups
 * take no such lock.  DROP DOMAIN conflicts with it.
 *
 * DDL on the domain (CREATE DOMAIN, its CHECK constraint) runs as the caller,
 * with search_path pinned to pg_catalog, pg_temp and every name quoted.
 *
 *-------------------------------------------------------------------------
 */
#include "enums.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/dependency.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/scansup.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "citus_glue.h"

/*
 * Run SQL (utility statements) with search_path pinned; the caller's rights.
 * Settings changed by code it runs (event triggers) are undone at the end.
 * Under Citus the DDL stays on this node: every node runs the same enum
 * function itself (gb_enum_forward), so each gets its labels as well.
 */
static void
gb_run_sql(const char *sql)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (gb_citus_present())
		(void) set_config_option("citus.enable_ddl_propagation", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not run: %s", sql);
	SPI_finish();
	AtEOXact_GUC(false, nestlevel);
	CommandCounterIncrement();
}

static int
gb_int16_cmp(const void *a, const void *b)
{
	return *(const int16 *) a - *(const int16 *) b;
}

/*
 * Under Citus, on the coordinator: run the same call of the enum function
 * "func" (arguments already SQL literals) on every worker, within Citus'
 * coordinated transaction, as the current user.  The workers commit with
 * this transaction (two-phase commit) and an error on any of them aborts it
 * everywhere.  Nothing is sent when citus.enable_ddl_propagation is off, as
 * Citus does for its own DDL, or in an extension script.  Workers run it
 * with their own OIDs: every name is qualified and resolved there.
 */
static void
gb_enum_forward(FunctionCallInfo fcinfo, const char *func, const char *args)
{
	char	   *schema;

	/* Citus propagates an extension's scripts whole. */
	if (creating_extension || !gb_citus_ddl_propagation() || !gb_citus_is_coordinator())
		return;
	schema = get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid));
	gb_citus_send_to_workers(psprintf("SELECT %s.%s(%s)", quote_identifier(schema), func, args));
}

/*
 * (Re)write the domain's CHECK constraint to list exactly these codes.  It is
 * always added NOT VALID: the codes only ever grow, so nothing stored can
 * violate it and nothing is scanned or locked; and pg_dump then writes it
 * after the domain, where the domain's name in it resolves.  The domain is
 * named by a regtype constant, so errors name it as it is called now.
 */
static void
gb_enum_write_constraint(Oid typid, int16 *codes, int ncodes, bool replace)
{
	char	   *domain = format_type_extended(typid, -1, FORMAT_TYPE_FORCE_QUALIFY);
	StringInfoData list;
	StringInfoData sql;

	qsort(codes, ncodes, sizeof(int16), gb_int16_cmp);
	initStringInfo(&list);
	appendStringInfoChar(&list, '{');
	for (int i = 0; i < ncodes; i++)
		appendStringInfo(&list, i > 0 ? ",%d" : "%d", codes[i]);
	appendStringInfoChar(&list, '}');

	initStringInfo(&sql);
	if (replace)
		appendStringInfo(&sql, "ALTER DOMAIN %s DROP CONSTRAINT IF EXISTS %s; ",
						 domain, GB_ENUM_CONSTRAINT);
	appendStringInfo(&sql,
					 "ALTER DOMAIN %s ADD CONSTRAINT %s CHECK (%s.enum_check(VALUE, %s::pg_catalog.regtype, %s::pg_catalog.int2[])) NOT VALID",
					 domain, GB_ENUM_CONSTRAINT, GB_INTERNAL_SCHEMA,
					 quote_literal_cstr(domain), quote_literal_cstr(list.data));
	gb_run_sql(sql.data);

	/*
	 * The regtype constant records a dependency of the constraint on its own
	 * domain, beside the one every domain constraint has.  Citus takes it for
	 * a cycle and refuses to distribute the domain (or a table using it).
	 */
	(void) deleteDependencyRecordsForSpecific(ConstraintRelationId,
											  get_domain_constraint_oid(typid, GB_ENUM_CONSTRAINT, false),
											  DEPENDENCY_NORMAL, TypeRelationId, typid);
	CommandCounterIncrement();
}

/*
 * Each part of a qualified name must fit in a name: PostgreSQL's parser
 * would cut it short without a word.  Syntax is left to the parser.
 */
static void
gb_check_name_parts(const char *func, const char *name)
{
	const char *p = name;

	while (*p != '\0')
	{
		int			len = 0;

		while (scanner_isspace(*p))
			p++;
		if (*p == '"')
		{
			for (p++; *p != '\0'; p++, len++)
			{
				if (*p == '"' && p[1] != '"')
				{
					p++;
					break;
				}
				if (*p == '"')
					p++;
			}
		}
		else
		{
			for (; *p != '\0' && *p != '.' && !scanner_isspace(*p); p++)
				len++;
		}
		if (len >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("%s: name \"%s\" is too long", func, name),
					 errdetail("Each part of a name is at most %d bytes.", NAMEDATALEN - 1),
					 errhint("Use a shorter name.")));
		while (scanner_isspace(*p))
			p++;
		if (*p != '.')
			break;
		p++;
	}
}

static int
gb_text_position_cmp(const void *a, const void *b, void *arg)
{
	Datum	   *labels = (Datum *) arg;
	text	   *la = DatumGetTextPP(labels[*(const int *) a]);
	text	   *lb = DatumGetTextPP(labels[*(const int *) b]);
	int			alen = VARSIZE_ANY_EXHDR(la);
	int			blen = VARSIZE_ANY_EXHDR(lb);
	int			c = memcmp(VARDATA_ANY(la), VARDATA_ANY(lb), Min(alen, blen));

	return c != 0 ? c : (alen > blen) - (alen < blen);
}

static Oid
gb_enum_create_internal(const char *func, const char *name, ArrayType *label_array,
						ArrayType *code_array, bool builtin)
{
	Datum	   *label_datums;
	bool	   *label_nulls;
	int			n;
	int16	   *codes;
	text	  **labels;
	int		   *order;
	List	   *names;
	char	   *typname;
	Oid			nspid;
	Oid			typid;
	Relation	rel;
	StringInfoData sql;

	if (ARR_NDIM(label_array) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: labels must be a non-empty one-dimensional array", func),
				 errhint("Example: gb_enum_create('ticket_state', ARRAY['open', 'closed']).")));
	deconstruct_array(label_array, TEXTOID, -1, false, TYPALIGN_INT,
					  &label_datums, &label_nulls, &n);
	if (n > GB_ENUM_NUM_CODES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s: %d labels are more than an enum can hold", func, n),
				 errdetail("Codes are smallints from 0 to %d.", GB_ENUM_MAX_CODE)));
	labels = palloc(sizeof(text *) * n);
	for (int i = 0; i < n; i++)
	{
		if (label_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s: labels must not be NULL", func)));
		labels[i] = DatumGetTextPP(label_datums[i]);
		gb_enum_check_label(func, labels[i]);
	}
	order = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
		order[i] = i;
	qsort_arg(order, n, sizeof(int), gb_text_position_cmp, label_datums);
	for (int i = 1; i < n; i++)
	{
		if (gb_label_equal(labels[order[i - 1]], labels[order[i]]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: label \"%s\" appears more than once", func,
							text_to_cstring(labels[order[i]]))));
	}

	codes = palloc(sizeof(int16) * n);
	if (code_array == NULL)
	{
		for (int i = 0; i < n; i++)
			codes[i] = (int16) i;
	}
	else
	{
		Datum	   *code_datums;
		bool	   *code_nulls;
		int			ncodes;
		bits8	   *seen = palloc0(GB_ENUM_NUM_CODES / BITS_PER_BYTE);

		if (ARR_NDIM(code_array) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: codes must be a one-dimensional array", func)));
		deconstruct_array(code_array, INT2OID, sizeof(int16), true, TYPALIGN_SHORT,
						  &code_datums, &code_nulls, &ncodes);
		if (ncodes != n)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: %d labels but %d codes", func, n, ncodes),
					 errhint("Give one code per label, or no codes for 0..n-1.")));
		for (int i = 0; i < n; i++)
		{
			int			code = code_nulls[i] ? -1 : DatumGetInt16(code_datums[i]);

			if (code < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: code %s is invalid", func,
								code_nulls[i] ? "NULL" : psprintf("%d", code)),
						 errhint("Codes are smallints from 0 to %d.", GB_ENUM_MAX_CODE)));
			if (seen[code / BITS_PER_BYTE] & (1 << (code % BITS_PER_BYTE)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: code %d appears more than once", func, code)));
			seen[code / BITS_PER_BYTE] |= 1 << (code % BITS_PER_BYTE);
			codes[i] = (int16) code;
		}
	}

	gb_check_name_parts(func, name);
	names = stringToQualifiedNameList(name);
	nspid = QualifiedNameGetCreationNamespace(names, &typname);
	/* A temporary domain goes without the drop event that removes its labels. */
	if (isAnyTempNamespace(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s: enum \"%s\" cannot be temporary", func, typname),
				 errhint("Create it in a permanent schema.")));

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE DOMAIN %s AS pg_catalog.int2",
					 quote_qualified_identifier(get_namespace_name(nspid), typname));
	gb_run_sql(sql.data);
	typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
							CStringGetDatum(typname), ObjectIdGetDatum(nspid));
	if (!OidIsValid(typid))
		elog(ERROR, "domain \"%s\" not found after it was created", typname);

	rel = gb_enum_label_open(RowExclusiveLock, false);
	gb_enum_label_insert(rel, typid, n, codes, labels, builtin);
	table_close(rel, NoLock);

	gb_enum_write_constraint(typid, codes, n, false);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "COMMENT ON DOMAIN %s IS 'gb_scale enum'",
					 format_type_extended(typid, -1, FORMAT_TYPE_FORCE_QUALIFY));
	gb_run_sql(sql.data);

	gb_enum_invalidate_type(typid);
	CommandCounterIncrement();
	return typid;
}

/* gb_enum_create() and enum_create_builtin() take the same arguments. */
static Oid
gb_enum_create_from_args(FunctionCallInfo fcinfo, const char *func, bool builtin)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: name and labels must not be NULL", func),
				 errhint("Example: gb_enum_create('ticket_state', ARRAY['open', 'closed']).")));
	return gb_enum_create_internal(func, text_to_cstring(PG_GETARG_TEXT_PP(0)),
								   PG_GETARG_ARRAYTYPE_P(1),
								   PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2),
								   builtin);
}

PG_FUNCTION_INFO_V1(gb_enum_create);
Datum
gb_enum_create(PG_FUNCTION_ARGS)
{
	Oid			typid = gb_enum_create_from_args(fcinfo, "gb_enum_create", false);
	Relation	rel = gb_enum_label_open(AccessShareLock, false);
	int			n;
	GbEnumLabel *rows = gb_enum_label_read(rel, typid, &n);
	StringInfoData labels;
	StringInfoData codes;

	table_close(rel, NoLock);
	/* The workers get the enum as created here: qualified name, every code. */
	initStringInfo(&labels);
	initStringInfo(&codes);
	for (int i = 0; i < n; i++)
	{
		appendStringInfo(&labels, "%s%s", i > 0 ? ", " : "",
						 quote_literal_cstr(text_to_cstring(rows[i].label)));
		appendStringInfo(&codes, "%s%d", i > 0 ? ", " : "", rows[i].code);
	}
	gb_enum_forward(fcinfo, "gb_enum_create",
					psprintf("%s, ARRAY[%s]::pg_catalog.text[], ARRAY[%s]::pg_catalog.int2[]",
							 quote_literal_cstr(gb_type_name(typid)), labels.data, codes.data));
	PG_RETURN_OID(typid);
}

/* gb_scale.enum_create_builtin(): General Bots' enums, from the install script. */
PG_FUNCTION_INFO_V1(gb_enum_create_builtin);
Datum
gb_enum_create_builtin(PG_FUNCTION_ARGS)
{
	if (!gb_in_own_extension_script())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("gb_scale.enum_create_builtin() can only run in gb_scale's install or upgrade scripts"),
				 errhint("Create enums of your own with gb_enum_create().")));
	PG_RETURN_OID(gb_enum_create_from_args(fcinfo, "gb_scale.enum_create_builtin", true));
}

static void
gb_refuse_builtin(Oid typid)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot change built-in enum %s", gb_type_name(typid)),
			 errdetail("Built-in enums carry the codes and labels of General Bots' Rust enums; they change only with a gb_scale release."),
			 errhint("Create an enum of your own with gb_enum_create().")));
}

/*
 * Common start of gb_enum_add and gb_enum_rename: the type must be an enum
 * of the caller's, not a built-in one.  Then lock it and read its labels as
 * they are now.
 */
static GbEnumLabel *
gb_enum_lock_for_change(Oid typid, Relation *rel, int *nlabels)
{
	bool		builtin;
	GbEnumLabel *rows;

	if (!gb_enum_exists(typid, &builtin))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("type %s is not a gb_scale enum",
						gb_type_name(typid)),
				 errhint("Create one with gb_enum_create(name, labels).")));
	if (builtin && !gb_in_own_extension_script())
		gb_refuse_builtin(typid);
	if (!pg_type_ownercheck(typid, GetUserId()))
		aclcheck_error_type(ACLCHECK_NOT_OWNER, typid);

	LockDatabaseObject(TypeRelationId, typid, 0, ShareUpdateExclusiveLock);
	*rel = gb_enum_label_open(RowExclusiveLock, false);
	rows = gb_enum_label_read(*rel, typid, nlabels);
	if (*nlabels == 0 || !SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("enum %u was dropped concurrently", typid)));
	return rows;
}

static int
gb_enum_position_of_label(const GbEnumLabel *rows, int n, const text *label)
{
	for (int i = 0; i < n; i++)
	{
		if (gb_label_equal(rows[i].label, label))
			return i;
	}
	return -1;
}

/* The code a new label gets: after the highest, else the lowest never used. */
static int
gb_enum_free_code(Oid typid, const GbEnumLabel *rows, int n)
{
	if (rows[n - 1].code < GB_ENUM_MAX_CODE)
		return rows[n - 1].code + 1;
	for (int i = 0, expected = 0; i < n; i++, expected++)
	{
		if (rows[i].code != expected)
			return expected;
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("enum %s has no free code", gb_type_name(typid)),
			 errdetail("All %d codes from 0 to %d are in use.", GB_ENUM_NUM_CODES, GB_ENUM_MAX_CODE)));
	return -1;					/* keep compiler quiet */
}

PG_FUNCTION_INFO_V1(gb_enum_add);
Datum
gb_enum_add(PG_FUNCTION_ARGS)
{
	Oid			typid;
	text	   *label;
	int			code;
	Relation	rel;
	GbEnumLabel *rows;
	int			n;
	int16	   *codes;
	int			pos;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("gb_enum_add: enum_type and label must not be NULL"),
				 errhint("Example: gb_enum_add('ticket_state', 'escalated').")));
	typid = PG_GETARG_OID(0);
	label = PG_GETARG_TEXT_PP(1);
	gb_enum_check_label("gb_enum_add", label);
	if (!PG_ARGISNULL(2) && PG_GETARG_INT16(2) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gb_enum_add: code %d is invalid", PG_GETARG_INT16(2)),
				 errhint("Codes are smallints from 0 to %d; omit the code to take the next free one.",
						 GB_ENUM_MAX_CODE)));

	rows = gb_enum_lock_for_change(typid, &rel, &n);
	if (gb_enum_position_of_label(rows, n, label) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("enum %s already has label \"%s\"", gb_type_name(typid),
						text_to_cstring(label))));
	if (PG_ARGISNULL(2))
		code = gb_enum_free_code(typid, rows, n);
	else
	{
		code = PG_GETARG_INT16(2);
		for (int i = 0; i < n; i++)
		{
			if (rows[i].code == code)
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("code %d of enum %s is already used by label \"%s\"",
								code, gb_type_name(typid), text_to_cstring(rows[i].label)),
						 errdetail("Codes are never reused: stored rows keep their meaning."),
						 errhint("Omit the code to take the next free one.")));
		}
	}

	{
		int16		new_code = (int16) code;

		gb_enum_label_insert(rel, typid, 1, &new_code, &label, false);
	}
	table_close(rel, NoLock);

	codes = palloc(sizeof(int16) * (n + 1));
	for (pos = 0; pos < n; pos++)
		codes[pos] = rows[pos].code;
	codes[n] = (int16) code;
	gb_enum_write_constraint(typid, codes, n + 1, true);
	gb_enum_invalidate_type(typid);
	CommandCounterIncrement();
	/* The workers take the code chosen here, whatever they hold. */
	gb_enum_forward(fcinfo, "gb_enum_add",
					psprintf("%s::pg_catalog.regtype, %s, %d::pg_catalog.int2",
							 quote_literal_cstr(gb_type_name(typid)),
							 quote_literal_cstr(text_to_cstring(label)), code));
	PG_RETURN_INT16((int16) code);
}

PG_FUNCTION_INFO_V1(gb_enum_rename);
Datum
gb_enum_rename(PG_FUNCTION_ARGS)
{
	Oid			typid = PG_GETARG_OID(0);
	text	   *old_label = PG_GETARG_TEXT_PP(1);
	text	   *new_label = PG_GETARG_TEXT_PP(2);
	Relation	rel;
	GbEnumLabel *rows;
	int			n;
	int			pos;

	gb_enum_check_label("gb_enum_rename", new_label);
	rows = gb_enum_lock_for_change(typid, &rel, &n);
	pos = gb_enum_position_of_label(rows, n, old_label);
	if (pos < 0)
	{
		StringInfoData valid;

		initStringInfo(&valid);
		for (int i = 0; i < n; i++)
			appendStringInfo(&valid, "%s%s", i > 0 ? ", " : "", text_to_cstring(rows[i].label));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("enum %s has no label \"%s\"", gb_type_name(typid), text_to_cstring(old_label)),
				 errhint("Valid labels: %s.", valid.data)));
	}
	if (gb_enum_position_of_label(rows, n, new_label) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("enum %s already has label \"%s\"", gb_type_name(typid),
						text_to_cstring(new_label))));
	gb_enum_label_rename(rel, typid, rows[pos].code, new_label);
	table_close(rel, NoLock);
	gb_enum_invalidate_type(typid);
	CommandCounterIncrement();
	gb_enum_forward(fcinfo, "gb_enum_rename",
					psprintf("%s::pg_catalog.regtype, %s, %s",
							 quote_literal_cstr(gb_type_name(typid)),
							 quote_literal_cstr(text_to_cstring(old_label)),
							 quote_literal_cstr(text_to_cstring(new_label))));
	PG_RETURN_VOID();
}

static void
gb_require_trigger(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s.%s() can only be called as a trigger", GB_INTERNAL_SCHEMA, name)));
}

/*
 * BEFORE ROW trigger on gb_scale.enum_label, for writes by its owner or a
 * superuser (the functions above write without it): codes are never removed
 * or changed, built-in enums never change, labels go only to permanent
 * smallint domains their writer owns.
 */
PG_FUNCTION_INFO_V1(gb_enum_label_guard);
Datum
gb_enum_label_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtuple;
	Datum		values[Natts_gb_enum_label];
	bool		nulls[Natts_gb_enum_label];
	Oid			typid;
	HeapTuple	typtuple;
	Form_pg_type typform;
	bool		enum_is_builtin;

	gb_require_trigger(fcinfo, "enum_label_guard");
	desc = RelationGetDescr(trigdata->tg_relation);

	/* Row triggers do not see a TRUNCATE: it would take every code at once. */
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot truncate %s.%s", GB_INTERNAL_SCHEMA, GB_ENUM_LABEL_TABLE),
				 errdetail("Codes are never removed: rows stored with them must keep their meaning."),
				 errhint("Drop an enum's domain to remove its labels.")));

	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		HeapTuple	old = trigdata->tg_trigtuple;

		heap_deform_tuple(old, desc, values, nulls);
		typid = DatumGetObjectId(values[Anum_gb_enum_label_enum_type - 1]);
		if (SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typid)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot remove code %d (%s) of enum %s",
							DatumGetInt16(values[Anum_gb_enum_label_code - 1]),
							TextDatumGetCString(values[Anum_gb_enum_label_label - 1]),
							gb_type_name(typid)),
					 errdetail("Codes are never removed or reused: rows stored with them must keep their meaning."),
					 errhint("Rename the label with gb_enum_rename() instead.")));
		return PointerGetDatum(old);
	}

	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	heap_deform_tuple(newtuple, desc, values, nulls);
	for (int i = 0; i < Natts_gb_enum_label; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("%s.%s does not take NULLs", GB_INTERNAL_SCHEMA, GB_ENUM_LABEL_TABLE)));
	}
	typid = DatumGetObjectId(values[Anum_gb_enum_label_enum_type - 1]);
	gb_enum_check_label("gb_scale.enum_label", DatumGetTextPP(values[Anum_gb_enum_label_label - 1]));

	typtuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(typtuple))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("type with OID %u does not exist", typid)));
	typform = (Form_pg_type) GETSTRUCT(typtuple);
	if (typform->typtype != TYPTYPE_DOMAIN || typform->typbasetype != INT2OID ||
		isAnyTempNamespace(typform->typnamespace) || typform->typnamespace == PG_CATALOG_NAMESPACE)
	{
		ReleaseSysCache(typtuple);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("type %s is not a permanent smallint domain", gb_type_name(typid)),
				 errhint("Create enums with gb_enum_create(name, labels).")));
	}
	ReleaseSysCache(typtuple);
	if (!pg_type_ownercheck(typid, GetUserId()))
		aclcheck_error_type(ACLCHECK_NOT_OWNER, typid);

	/* pg_dump does not dump changes to the extension's own domains. */
	(void) gb_enum_exists(typid, &enum_is_builtin);
	if ((enum_is_builtin || DatumGetBool(values[Anum_gb_enum_label_builtin - 1])) &&
		!gb_in_own_extension_script())
		gb_refuse_builtin(typid);

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		Datum		oldvalues[Natts_gb_enum_label];
		bool		oldnulls[Natts_gb_enum_label];

		heap_deform_tuple(trigdata->tg_trigtuple, desc, oldvalues, oldnulls);
		if (DatumGetObjectId(oldvalues[0]) != typid ||
			DatumGetInt16(oldvalues[1]) != DatumGetInt16(values[1]) ||
			DatumGetBool(oldvalues[3]) != DatumGetBool(values[3]))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot change code %d (%s) of enum %s", DatumGetInt16(oldvalues[1]),
							TextDatumGetCString(oldvalues[2]),
							gb_type_name(DatumGetObjectId(oldvalues[0]))),
					 errdetail("Codes are never changed, removed or reused."),
					 errhint("Rename the label with gb_enum_rename(), or add a new one with gb_enum_add().")));
	}
	return PointerGetDatum(newtuple);
}

/* AFTER ROW trigger: direct writes reach every backend's cache and plans. */
PG_FUNCTION_INFO_V1(gb_enum_label_changed);
Datum
gb_enum_label_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	bool		isnull;

	gb_require_trigger(fcinfo, "enum_label_changed");
	gb_enum_invalidate_type(DatumGetObjectId(heap_getattr(trigdata->tg_trigtuple,
														  Anum_gb_enum_label_enum_type,
														  RelationGetDescr(trigdata->tg_relation),
														  &isnull)));
	return PointerGetDatum(NULL);
}

/*
 * sql_drop event trigger: remove the labels of every type that no longer
 * exists, whatever dropped it (a cascade from a sequence or a function in a
 * default drops a domain without a DROP DOMAIN).  A label row of a missing
 * type would be dumped with a bare OID and break the restore of the table.
 * Sweepers serialise only when they find something to remove.
 */
PG_FUNCTION_INFO_V1(gb_enum_on_drop);
Datum
gb_enum_on_drop(PG_FUNCTION_ARGS)
{
	Relation	rel;
	bool		locked = false;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s.enum_on_drop() can only be called as an event trigger", GB_INTERNAL_SCHEMA)));
	rel = gb_enum_label_open(RowExclusiveLock, true);
	if (rel == NULL)
		PG_RETURN_VOID();
	for (Oid typid = gb_enum_label_next_type(rel, InvalidOid); OidIsValid(typid);
		 typid = gb_enum_label_next_type(rel, typid))
	{
		if (SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typid)))
			continue;
		if (!locked)
		{
			LockRelationOid(RelationGetRelid(rel), ShareUpdateExclusiveLock);
			locked = true;
		}
		gb_enum_label_delete_type(rel, typid);
		CommandCounterIncrement();
	}
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}
