/*-------------------------------------------------------------------------
 *
 * shard_sync.c
 *	  gb_shard_sync(source text): make this shard's copy of the shard
 *	  directory (gb_scale.shard_config, gb_scale.tenant_shard_map) equal to
 *	  another shard's, so that an operator edits it in one place.
 *
 * The source is read over libpq in one REPEATABLE READ READ ONLY
 * transaction, so its two tables and its enum labels come from one snapshot.
 * Every wait on the connection also waits on the latch: cancel,
 * statement_timeout and postmaster death work while the source is slow or
 * unreachable.
 *
 * Like dblink, a non-superuser must put a password in the connection string
 * and the source must have asked for it; otherwise a role could reach other
 * servers with the server's own credentials (.pgpass, peer or trust).
 *
 * The plan tiers' defaults are copied too, checked and written by their
 * modules: settings (gb_scale.plan_setting, tenant_settings.c), resource
 * limits (gb_scale.plan_limit, tenant_limits.c) and row quotas
 * (gb_scale.plan_quota, tenant_quotas.c; its tables travel by schema and
 * name, resolved here).
 *
 * Before any write the user enums of both shards are compared: a label with
 * different codes, or a code with different labels, means that the same
 * stored value has different meanings on the two shards, so the sync
 * refuses and names them.
 *
 * The local rows are then made equal to the source's with plain DML run as
 * the caller (the caller's privileges, PostgreSQL's read-only checks and
 * the tables' triggers apply), in the caller's transaction, with search_path
 * pinned.  Only rows that differ are written, so a sync that finds nothing
 * new writes nothing.
 *
 * shard_config is small and read whole.  tenant_shard_map may hold millions
 * of rows, so it is compared by buckets first: both sides split it by
 * tenant_id modulo a prime P (chosen from the local row count, about 16
 * rows a bucket; arithmetic, so both servers agree whatever their platform)
 * and compute each bucket's row count and XOR of 64-bit row hashes in SQL
 * (the source's query runs while the local one does); the lists are matched
 * by bucket number, and only the rows of buckets that differ are
 * transferred, in tenant_id order, and merged with the local rows of those
 * buckets: local rows the source lacks are deleted, the source's rows are
 * applied in batches by statements that write only rows that differ (index
 * probes: hash and merge joins are turned off in the sync's scope).
 * Results are read in single-row mode and local rows through a cursor, so
 * memory stays bounded whatever the size (a batch, per-bucket arrays of at
 * most 262,139 entries).  A hash that differs for equal rows (another platform) only
 * costs transfer: rows are compared by value.  gb_scale.sync_max_rows caps
 * what a source may send.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"
#include "shard_conn.h"
#include "tenant_limits.h"
#include "tenant_quotas.h"
#include "tenant_settings.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

/* Columns read from the source, in this order. */
#define SHARD_COLUMNS	"shard_id, region_code, datacenter, connection_string, is_primary, is_active, " \
						"min_tenant_id, max_tenant_id, created_at"
#define SHARD_NCOLS		9
#define MAP_COLUMNS		"tenant_id, shard_id, region_code, created_at"
#define MAP_NCOLS		4
#define ENUM_NCOLS		4
/* gb_scale.plan_setting, the plan tiers' defaults; kinds are decided locally. */
#define TIER_COLUMNS	"tier, name, value, updated_at"
#define TIER_NCOLS		4

/*
 * gb_scale.plan_limit and gb_scale.plan_quota, the tiers' limits and quotas;
 * rows with no limit or quota are what the API removes, and are not sent.
 * A quota's table goes by schema and name.
 */
#define LIMIT_QUERY		"SELECT l.tier, l.max_xacts, l.max_statements_per_second, l.updated_at" \
						" FROM gb_scale.plan_limit l" \
						" WHERE l.max_xacts IS NOT NULL OR l.max_statements_per_second IS NOT NULL" \
						" ORDER BY l.tier"
#define LIMIT_NCOLS		4
#define QUOTA_QUERY		"SELECT q.tier, n.nspname, c.relname, q.rows_per_day, q.rows_per_month, q.updated_at" \
						" FROM gb_scale.plan_quota q" \
						" JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) q.tbl::pg_catalog.oid" \
						" JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace" \
						" WHERE q.rows_per_day IS NOT NULL OR q.rows_per_month IS NOT NULL" \
						" ORDER BY q.tier, n.nspname, c.relname"
#define QUOTA_NCOLS		6

/*
 * A 64-bit hash of a tenant_shard_map row, the same on both sides; NULL
 * created_at changes the seed.  Nothing in it depends on the session's
 * settings (time zone, date style).
 */
#define MAP_ROW_HASH \
	"pg_catalog.timestamp_hash_extended(" \
	"  COALESCE(created_at, '-infinity'::pg_catalog.timestamptz) AT TIME ZONE 'UTC'," \
	"  pg_catalog.hashbpcharextended(region_code," \
	"    pg_catalog.hashint2extended(shard_id," \
	"      pg_catalog.hashint8extended(tenant_id," \
	"        CASE WHEN created_at IS NULL THEN 1::pg_catalog.int8 ELSE 0::pg_catalog.int8 END))))"

/* work_mem of the bucket summaries, here and on the source. */
#define SYNC_WORK_MEM	"32MB"

/* Rows of tenant_shard_map applied by one set of statements. */
#define MAP_BATCH_ROWS	10000
/* Local rows read at a time. */
#define LOCAL_FETCH_ROWS	4096

/* Cap on what a source may send: gb_scale.sync_max_rows. */
static int	gb_sync_max_rows = 10000000;

/*
 * The source's small tables as text[] columns, handed to the local
 * statements as parameters and cast there to the tables' types, and the
 * count of rows the source sent so far.
 */
typedef struct SyncSource
{
	Datum		shard[SHARD_NCOLS];
	Datum		enums[ENUM_NCOLS];
	Datum		tiers[TIER_NCOLS];
	Datum		limits[LIMIT_NCOLS];
	Datum		quotas[QUOTA_NCOLS];
	int64		rows;
} SyncSource;

/* Counts of what the sync wrote. */
typedef struct SyncCounts
{
	uint64		map_removed;
	uint64		map_changed;
	uint64		map_added;
	uint64		shard_removed;
	uint64		shard_changed;
	uint64		shard_added;
} SyncCounts;

/*
 * The connection and the result being read.  Lives in palloc'd memory, not
 * in locals, so that PG_FINALLY sees what was set before an error.
 */
/*
 * Refuse a malformed connection string before connecting; for a
 * non-superuser, also one without a password.
 */
static void
sync_check_connstr(const char *source, bool is_superuser)
{
	PQconninfoOption *options;
	char	   *err = NULL;
	bool		has_password = false;

	options = PQconninfoParse(source, &err);
	if (options != NULL)
	{
		for (PQconninfoOption *opt = options; opt->keyword != NULL; opt++)
		{
			if (strcmp(opt->keyword, "password") == 0 && opt->val != NULL && opt->val[0] != '\0')
				has_password = true;
		}
		PQconninfoFree(options);
	}
	else
	{
		char	   *msg = err ? gb_conninfo_error(source, err) : pstrdup("out of memory");

		if (err)
			PQfreemem(err);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid connection string for the source shard: %s", msg),
				 errhint("Give a libpq connection string, e.g. 'host=shard2.example.com dbname=gb user=sync password=...'.")));
	}

	if (!is_superuser && !has_password)
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superusers must provide a password in the connection string of the source shard."),
				 errhint("Add password=... to the connection string; the source server must ask for it.")));
}

static void
sync_connect(GbShardConn *sc, const char *source, bool is_superuser)
{
	sc->peer = "the source shard";
	sc->hint = NULL;
	gb_shard_conn_open(sc, source, "gb_shard_sync");
	if (!is_superuser && !PQconnectionUsedPassword(sc->conn))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superusers may only connect to a source shard that asks for the password."),
				 errhint("Change the source server's authentication method for this role to a password method (scram-sha-256).")));
}

/* One statement on the source; its result stays in sc->res until the next. */
static PGresult *
sync_query(GbShardConn *sc, const char *sql, ExecStatusType expected, const char *what)
{
	return gb_shard_conn_query(sc, sql, 0, NULL, expected, what);
}

/*
 * Count rows the source sent against gb_scale.sync_max_rows.  n is bounded
 * by the caller (one result's rows, or one bucket's count checked against
 * the cap), so the sum cannot overflow.
 */
static void
sync_count_rows(SyncSource *src, int64 n)
{
	if (n < 0 || n > gb_sync_max_rows || src->rows + n > gb_sync_max_rows)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the source shard's directory has " INT64_FORMAT " rows or more, above gb_scale.sync_max_rows (%d)",
						src->rows + Max(n, 0), gb_sync_max_rows),
				 errdetail("Rows counted: shards, tenant placements and enum labels; nothing was synced."),
				 errhint("Check the connection string's database; if the directory is that big, raise gb_scale.sync_max_rows (a superuser's setting).")));
	src->rows += n;
}

/* Wait until the connection has a whole result to give, then return it. */
static PGresult *
sync_next_result(GbShardConn *sc, const char *what)
{
	while (PQisBusy(sc->conn))
	{
		if (gb_shard_conn_wait(sc, WL_SOCKET_READABLE) && !PQconsumeInput(sc->conn))
			gb_shard_conn_error(sc, what);
	}
	return PQgetResult(sc->conn);
}

/*
 * Send one statement whose rows are read one at a time (single-row mode),
 * with text parameters.
 */
static void
sync_stream_start(GbShardConn *sc, const char *sql, int nparams, const char *const *params,
				  const char *what)
{
	/* The only parameter ever sent is a bigint[] (a list of buckets). */
	const Oid	types[1] = {INT8ARRAYOID};

	Assert(nparams <= 1);
	gb_shard_conn_clear(sc);
	if (!PQsendQueryParams(sc->conn, sql, nparams, nparams ? types : NULL, params, NULL, NULL, 0) ||
		!PQsetSingleRowMode(sc->conn))
		gb_shard_conn_error(sc, what);
}

/*
 * The next row of the streamed statement (a one-row result, kept in sc->res
 * until the next call), or NULL when its rows are done.
 */
static PGresult *
sync_stream_next(GbShardConn *sc, int ncols, const char *what)
{
	PGresult   *res;

	gb_shard_conn_clear(sc);
	res = sync_next_result(sc, what);
	sc->res = res;
	if (res != NULL && PQresultStatus(res) == PGRES_SINGLE_TUPLE)
	{
		if (PQnfields(res) != ncols)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("the source shard returned %d columns instead of %d", PQnfields(res), ncols)));
		return res;
	}
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		gb_shard_conn_error(sc, what);
	/* The end of the rows; the statement ends with no further result. */
	gb_shard_conn_clear(sc);
	res = sync_next_result(sc, what);
	if (res != NULL)
	{
		sc->res = res;
		gb_shard_conn_error(sc, what);
	}
	return NULL;
}

/* A field of a streamed row, checked to be in this database's encoding. */
static const char *
sync_field(PGresult *res, int col)
{
	const char *value;

	if (PQgetisnull(res, 0, col))
		return NULL;
	value = PQgetvalue(res, 0, col);
	(void) pg_verifymbstr(value, PQgetlength(res, 0, col), false);
	return value;
}

/* A bigint field of a streamed row; NULL is the source's lie. */
static int64
sync_int8_field(PGresult *res, int col)
{
	const char *value = sync_field(res, col);

	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the source shard returned NULL where a number was expected")));
	return pg_strtoint64(value);
}

/*
 * The rows of a statement on the source as text[] columns (NULLs kept),
 * read one row at a time and counted against the cap.
 */
static void
sync_stream_columns(GbShardConn *sc, SyncSource *src, const char *sql, Datum *cols, int ncols,
					const char *what)
{
	ArrayBuildState *build[SHARD_NCOLS];
	PGresult   *res;

	Assert(ncols <= SHARD_NCOLS);
	for (int i = 0; i < ncols; i++)
		build[i] = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	sync_stream_start(sc, sql, 0, NULL, what);
	while ((res = sync_stream_next(sc, ncols, what)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		sync_count_rows(src, 1);
		for (int i = 0; i < ncols; i++)
		{
			const char *value = sync_field(res, i);

			(void) accumArrayResult(build[i],
									value ? PointerGetDatum(cstring_to_text(value)) : (Datum) 0,
									value == NULL, TEXTOID, CurrentMemoryContext);
		}
	}
	for (int i = 0; i < ncols; i++)
		cols[i] = makeArrayResult(build[i], CurrentMemoryContext);
}

/*
 * Start the source's snapshot and read its small tables: shard_config and
 * the user enums' labels.  The transaction stays open for the placements,
 * read later in the same snapshot.
 */
static void
sync_read_source(GbShardConn *sc, SyncSource *src)
{
	PGresult   *res;

	(void) sync_query(sc, "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
					  PGRES_COMMAND_OK, "start a transaction");
	gb_shard_conn_clear(sc);

	/*
	 * Nothing below resolves a name through the source's search_path; the
	 * dates come in ISO format and UTC, readable whatever ours are.
	 */
	(void) sync_query(sc,
					  "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true),"
					  " pg_catalog.set_config('datestyle', 'ISO', true),"
					  " pg_catalog.set_config('timezone', 'UTC', true),"
					  " pg_catalog.set_config('work_mem', '" SYNC_WORK_MEM "', true),"
					  " pg_catalog.set_config('enable_sort', 'off', true)",
					  PGRES_TUPLES_OK, "set up the session");
	gb_shard_conn_clear(sc);

	res = sync_query(sc,
					 "SELECT pg_catalog.count(*) FROM pg_catalog.pg_extension"
					 " WHERE extname OPERATOR(pg_catalog.=) 'gb_scale'",
					 PGRES_TUPLES_OK, "look for the extension");
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "1") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the source database has no extension gb_scale"),
				 errhint("Check the database of the connection string, or run CREATE EXTENSION gb_scale there.")));
	gb_shard_conn_clear(sc);

	sync_stream_columns(sc, src, "SELECT " SHARD_COLUMNS " FROM gb_scale.shard_config ORDER BY shard_id",
						src->shard, SHARD_NCOLS, "read gb_scale.shard_config");
	sync_stream_columns(sc, src,
						"SELECT n.nspname, t.typname, l.label, l.code"
						"  FROM gb_scale.enum_label l"
						"  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) l.enum_type::pg_catalog.oid"
						"  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace"
						" WHERE NOT l.builtin",
						src->enums, ENUM_NCOLS, "read gb_scale.enum_label");
	sync_stream_columns(sc, src, "SELECT " TIER_COLUMNS " FROM gb_scale.plan_setting ORDER BY tier, name",
						src->tiers, TIER_NCOLS, "read gb_scale.plan_setting");
	sync_stream_columns(sc, src, LIMIT_QUERY, src->limits, LIMIT_NCOLS, "read gb_scale.plan_limit");
	sync_stream_columns(sc, src, QUOTA_QUERY, src->quotas, QUOTA_NCOLS, "read gb_scale.plan_quota");
}

/* Run one local statement with the source's columns as parameters $1.. */
static uint64
sync_exec(const char *sql, Datum *args, int nargs, int expected)
{
	Oid			types[SHARD_NCOLS];
	int			rc;

	Assert(nargs <= SHARD_NCOLS);
	for (int i = 0; i < nargs; i++)
		types[i] = TEXTARRAYOID;
	rc = SPI_execute_with_args(sql, nargs, types, args, NULL, false, 0);
	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed (%d): %s", rc, sql);
	return SPI_processed;
}

/*
 * Refuse when a user enum present on both shards (same schema-qualified
 * name) has a label with different codes or a code with different labels.
 */
static void
sync_check_enums(SyncSource *src)
{
	StringInfoData detail;
	SPITupleTable *tt;
	uint64		n;

	n = sync_exec("WITH src AS ("
				  "  SELECT s.nsp, s.typ, s.label, s.code::pg_catalog.int2 AS code"
				  "    FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
				  "                    pg_catalog.unnest($3), pg_catalog.unnest($4)) AS s(nsp, typ, label, code)),"
				  " loc AS ("
				  "  SELECT n.nspname::pg_catalog.text AS nsp, t.typname::pg_catalog.text AS typ, l.label, l.code"
				  "    FROM gb_scale.enum_label l"
				  "    JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) l.enum_type::pg_catalog.oid"
				  "    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace"
				  "   WHERE NOT l.builtin)"
				  " SELECT loc.nsp, loc.typ, loc.label, loc.code, src.label, src.code"
				  "   FROM loc JOIN src ON src.nsp OPERATOR(pg_catalog.=) loc.nsp"
				  "                    AND src.typ OPERATOR(pg_catalog.=) loc.typ"
				  "  WHERE (src.label OPERATOR(pg_catalog.=) loc.label)"
				  "        OPERATOR(pg_catalog.<>) (src.code OPERATOR(pg_catalog.=) loc.code)"
				  "  ORDER BY loc.nsp COLLATE pg_catalog.\"C\", loc.typ COLLATE pg_catalog.\"C\","
				  "           loc.code, src.code",
				  src->enums, ENUM_NCOLS, SPI_OK_SELECT);
	if (n == 0)
		return;

	tt = SPI_tuptable;
	initStringInfo(&detail);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		char	   *name = quote_qualified_identifier(SPI_getvalue(tup, tt->tupdesc, 1),
													  SPI_getvalue(tup, tt->tupdesc, 2));
		char	   *loc_label = SPI_getvalue(tup, tt->tupdesc, 3);
		char	   *loc_code = SPI_getvalue(tup, tt->tupdesc, 4);
		char	   *src_label = SPI_getvalue(tup, tt->tupdesc, 5);
		char	   *src_code = SPI_getvalue(tup, tt->tupdesc, 6);
		bool		same_label = strcmp(loc_label, src_label) == 0;

		if (i > 0)
			appendStringInfoChar(&detail, '\n');
		if (same_label)
			appendStringInfo(&detail, "%s: label \"%s\" is code %s on this shard, code %s on the source.",
							 name, loc_label, loc_code, src_code);
		else
			appendStringInfo(&detail, "%s: code %s is label \"%s\" on this shard, label \"%s\" on the source.",
							 name, loc_code, loc_label, src_label);
	}

	{
		HeapTuple	tup = tt->vals[0];
		char	   *name = quote_qualified_identifier(SPI_getvalue(tup, tt->tupdesc, 1),
													  SPI_getvalue(tup, tt->tupdesc, 2));

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("enum %s has different codes on this shard and on the source shard", name),
				 errdetail_internal("%s", detail.data),
				 errhint("Run the same enum migrations in the same order on every shard, or add labels with explicit codes (gb_enum_add(enum_type, label, code)); nothing was synced.")));
	}
}

/* The source's shard_config rows, typed. */
#define SHARD_SOURCE \
	"(SELECT s.shard_id::pg_catalog.int2 AS shard_id, s.region_code::pg_catalog.bpchar AS region_code," \
	"        s.datacenter::pg_catalog.varchar AS datacenter, s.connection_string," \
	"        s.is_primary::pg_catalog.bool AS is_primary, s.is_active::pg_catalog.bool AS is_active," \
	"        s.min_tenant_id::pg_catalog.int8 AS min_tenant_id, s.max_tenant_id::pg_catalog.int8 AS max_tenant_id," \
	"        s.created_at::pg_catalog.timestamptz AS created_at" \
	"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3)," \
	"                   pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6)," \
	"                   pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9))" \
	"        AS s(shard_id, region_code, datacenter, connection_string, is_primary, is_active," \
	"             min_tenant_id, max_tenant_id, created_at))"

/* The source's tenant_shard_map rows, typed. */
#define MAP_SOURCE \
	"(SELECT s.tenant_id::pg_catalog.int8 AS tenant_id, s.shard_id::pg_catalog.int2 AS shard_id," \
	"        s.region_code::pg_catalog.bpchar AS region_code, s.created_at::pg_catalog.timestamptz AS created_at" \
	"   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)," \
	"                   pg_catalog.unnest($3), pg_catalog.unnest($4))" \
	"        AS s(tenant_id, shard_id, region_code, created_at))"

/*
 * Whether the rows of a table differ from the source's, as multisets (NULLs
 * compare equal, as IS NOT DISTINCT FROM does).
 */
static bool
sync_differs(const char *columns, const char *table, const char *source, Datum *args, int nargs)
{
	char	   *sql = psprintf("SELECT EXISTS ("
							   " (SELECT %s FROM %s EXCEPT ALL SELECT %s FROM %s AS s)"
							   " UNION ALL"
							   " (SELECT %s FROM %s AS s EXCEPT ALL SELECT %s FROM %s))",
							   columns, table, columns, source,
							   columns, source, columns, table);
	bool		isnull;
	Datum		result;

	(void) sync_exec(sql, args, nargs, SPI_OK_SELECT);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(result);
}

/* Primes about four times apart: the bucket counts P to choose from. */
static const int64 sync_bucket_primes[] = {1, 13, 61, 251, 1021, 4093, 16381, 65521, 262139};

/* Local rows of a cursor whose columns are all bigint, read in chunks. */
typedef struct SyncLocalRows
{
	Portal		portal;
	int			ncols;
	int64	   *vals;
	uint64		n;
	uint64		pos;
	bool		done;
} SyncLocalRows;

static void
sync_local_open(SyncLocalRows *lr, const char *sql, int ncols, const int64 *buckets, int64 nbuckets)
{
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1] = {(Datum) 0};

	/* A bigint[] value, so that the planner sees a constant (hashed = ANY). */
	if (buckets != NULL)
	{
		Datum	   *elems = palloc(sizeof(Datum) * Max(nbuckets, 1));

		for (int64 i = 0; i < nbuckets; i++)
			elems[i] = Int64GetDatum(buckets[i]);
		values[0] = PointerGetDatum(construct_array(elems, (int) nbuckets, INT8OID, sizeof(int64),
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	}
	lr->portal = SPI_cursor_open_with_args(NULL, sql, buckets ? 1 : 0, types, values, NULL, true, 0);
	lr->ncols = ncols;
	lr->vals = palloc(sizeof(int64) * ncols * LOCAL_FETCH_ROWS);
	lr->n = 0;
	lr->pos = 0;
	lr->done = false;
}

/* The next local row into row[], or false at the end. */
static bool
sync_local_next(SyncLocalRows *lr, int64 *row)
{
	if (lr->pos >= lr->n)
	{
		if (lr->done)
			return false;
		SPI_cursor_fetch(lr->portal, true, LOCAL_FETCH_ROWS);
		lr->n = SPI_processed;
		lr->pos = 0;
		for (uint64 i = 0; i < lr->n; i++)
		{
			for (int c = 0; c < lr->ncols; c++)
			{
				bool		isnull;
				Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1, &isnull);

				lr->vals[i * lr->ncols + c] = isnull ? 0 : DatumGetInt64(d);
			}
		}
		SPI_freetuptable(SPI_tuptable);
		if (lr->n < LOCAL_FETCH_ROWS)
			lr->done = true;
		if (lr->n == 0)
			return false;
	}
	memcpy(row, &lr->vals[lr->pos * lr->ncols], sizeof(int64) * lr->ncols);
	lr->pos++;
	return true;
}

static void
sync_protocol_error(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("the source shard returned %s", what)));
}

static int
sync_int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * The buckets of tenant_shard_map whose row count or row hashes differ
 * between the source and here, ascending, into diff (room for nbuckets).
 * The source computes its summaries while this side computes its own; both
 * are hashed, not sorted (the planner cannot know that there are only
 * nbuckets groups), and matched here by bucket number.
 */
static int64
sync_map_diff_buckets(GbShardConn *sc, SyncSource *src, const char *bucket_expr, int64 nbuckets,
					  int64 *diff)
{
	char	   *sql = psprintf("SELECT %s AS bucket, pg_catalog.count(*), pg_catalog.bit_xor(" MAP_ROW_HASH ")"
							   "  FROM gb_scale.tenant_shard_map GROUP BY 1", bucket_expr);
	const char *what = "compare gb_scale.tenant_shard_map";
	int64	   *local_count = palloc0(sizeof(int64) * nbuckets);
	int64	   *local_hash = palloc0(sizeof(int64) * nbuckets);
	bool	   *remote_seen = palloc0(sizeof(bool) * nbuckets);
	SyncLocalRows lr;
	int64		row[3];
	PGresult   *res;
	int64		ndiff = 0;
	int64		announced = 0;	/* at most nbuckets * INT_MAX: no overflow */

	sync_stream_start(sc, sql, 0, NULL, what);

	sync_local_open(&lr, sql, 3, NULL, 0);
	while (sync_local_next(&lr, row))
	{
		CHECK_FOR_INTERRUPTS();
		/* The expression bounds it; an index is checked all the same. */
		if (row[0] < 0 || row[0] >= nbuckets)
			elog(ERROR, "bucket " INT64_FORMAT " of gb_scale.tenant_shard_map is out of range", row[0]);
		local_count[row[0]] = row[1];
		local_hash[row[0]] = row[2];
	}
	SPI_cursor_close(lr.portal);

	while ((res = sync_stream_next(sc, 3, what)) != NULL)
	{
		int64		bucket = sync_int8_field(res, 0);
		int64		count = sync_int8_field(res, 1);
		int64		hash = sync_int8_field(res, 2);

		CHECK_FOR_INTERRUPTS();
		if (bucket < 0 || bucket >= nbuckets || remote_seen[bucket] || count <= 0)
			sync_protocol_error("a tenant_shard_map summary that is not one of the buckets asked for");
		remote_seen[bucket] = true;
		if (count > gb_sync_max_rows)
			sync_count_rows(src, count);
		announced += count;
		if (local_count[bucket] != count || local_hash[bucket] != hash)
			diff[ndiff++] = bucket;
	}
	for (int64 b = 0; b < nbuckets; b++)
	{
		if (local_count[b] > 0 && !remote_seen[b])
			diff[ndiff++] = b;
	}
	/* What the source announces counts against the cap before any is sent. */
	sync_count_rows(src, announced);
	qsort(diff, ndiff, sizeof(int64), sync_int64_cmp);
	pfree(local_count);
	pfree(local_hash);
	pfree(remote_seen);
	return ndiff;
}

/* A batch of the source's placements, and of local ones to delete. */
typedef struct SyncMapBatch
{
	MemoryContext cxt;
	ArrayBuildState *cols[MAP_NCOLS];
	ArrayBuildState *removed;
	int			nrows;
	int			nremoved;
} SyncMapBatch;

static void
sync_batch_reset(SyncMapBatch *b)
{
	MemoryContextReset(b->cxt);
	for (int i = 0; i < MAP_NCOLS; i++)
		b->cols[i] = initArrayResult(TEXTOID, b->cxt, false);
	b->removed = initArrayResult(TEXTOID, b->cxt, false);
	b->nrows = 0;
	b->nremoved = 0;
}

/*
 * Apply a batch: delete the local placements the source does not have,
 * then change and add the source's rows; rows already equal are not
 * written.
 */
static void
sync_batch_flush(SyncMapBatch *b, SyncCounts *counts)
{
	if (b->nremoved > 0)
	{
		Datum		arg = makeArrayResult(b->removed, b->cxt);

		counts->map_removed += sync_exec("DELETE FROM gb_scale.tenant_shard_map m"
										 " WHERE m.tenant_id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])",
										 &arg, 1, SPI_OK_DELETE);
	}
	if (b->nrows > 0)
	{
		Datum		args[MAP_NCOLS];

		for (int i = 0; i < MAP_NCOLS; i++)
			args[i] = makeArrayResult(b->cols[i], b->cxt);
		counts->map_changed += sync_exec("UPDATE gb_scale.tenant_shard_map m"
										 "   SET shard_id = s.shard_id, region_code = s.region_code, created_at = s.created_at"
										 "  FROM " MAP_SOURCE " AS s"
										 " WHERE m.tenant_id OPERATOR(pg_catalog.=) s.tenant_id"
										 "   AND (m.shard_id, m.region_code, m.created_at)"
										 "       IS DISTINCT FROM (s.shard_id, s.region_code, s.created_at)",
										 args, MAP_NCOLS, SPI_OK_UPDATE);
		counts->map_added += sync_exec("INSERT INTO gb_scale.tenant_shard_map (" MAP_COLUMNS ")"
									   " SELECT s.* FROM " MAP_SOURCE " AS s"
									   "  WHERE NOT EXISTS (SELECT FROM gb_scale.tenant_shard_map m"
									   "                     WHERE m.tenant_id OPERATOR(pg_catalog.=) s.tenant_id)",
									   args, MAP_NCOLS, SPI_OK_INSERT);
	}
	sync_batch_reset(b);
}

static void
sync_batch_remove(SyncMapBatch *b, int64 tenant_id, SyncCounts *counts)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);

	(void) accumArrayResult(b->removed, CStringGetTextDatum(psprintf(INT64_FORMAT, tenant_id)),
							false, TEXTOID, b->cxt);
	MemoryContextSwitchTo(old);
	if (++b->nremoved >= MAP_BATCH_ROWS)
		sync_batch_flush(b, counts);
}

/*
 * Make the local placements of the differing buckets (all of them when all
 * is set) equal to the source's: both sides' rows of those buckets, in
 * tenant_id order, merged as they come.
 */
static void
sync_map_apply(GbShardConn *sc, SyncSource *src, const char *bucket_expr, const int64 *diff,
			   int64 ndiff, bool all, SyncCounts *counts)
{
	const char *what = "read gb_scale.tenant_shard_map";
	StringInfoData list;
	const char *where = "";
	const char *param = NULL;
	SyncLocalRows lr;
	SyncMapBatch batch;
	PGresult   *res;
	int64		local_id;
	bool		have_l;
	bool		first = true;
	int64		prev = 0;
	int64		sent = 0;
	MemoryContext old;

	if (!all)
	{
		initStringInfo(&list);
		appendStringInfoChar(&list, '{');
		for (int64 i = 0; i < ndiff; i++)
			appendStringInfo(&list, i > 0 ? "," INT64_FORMAT : INT64_FORMAT, diff[i]);
		appendStringInfoChar(&list, '}');
		param = list.data;
		where = psprintf(" WHERE %s OPERATOR(pg_catalog.=) ANY ($1)", bucket_expr);
	}
	sync_stream_start(sc, psprintf("SELECT " MAP_COLUMNS " FROM gb_scale.tenant_shard_map%s ORDER BY tenant_id",
								   where),
					  param ? 1 : 0, param ? &param : NULL, what);
	sync_local_open(&lr, psprintf("SELECT tenant_id FROM gb_scale.tenant_shard_map%s ORDER BY tenant_id", where),
					1, all ? NULL : diff, ndiff);

	batch.cxt = AllocSetContextCreate(CurrentMemoryContext, "gb_shard_sync batch", ALLOCSET_DEFAULT_SIZES);
	sync_batch_reset(&batch);

	have_l = sync_local_next(&lr, &local_id);
	while ((res = sync_stream_next(sc, MAP_NCOLS, what)) != NULL)
	{
		int64		tenant_id = sync_int8_field(res, 0);

		CHECK_FOR_INTERRUPTS();
		/* Rows beyond those announced are counted too. */
		if (++sent > gb_sync_max_rows)
			sync_count_rows(src, sent);
		if (!first && tenant_id <= prev)
			sync_protocol_error("tenant placements out of order");
		first = false;
		prev = tenant_id;

		while (have_l && local_id < tenant_id)
		{
			sync_batch_remove(&batch, local_id, counts);
			have_l = sync_local_next(&lr, &local_id);
		}
		if (have_l && local_id == tenant_id)
			have_l = sync_local_next(&lr, &local_id);

		/* Everything a row needs lives in the batch's memory, reset per batch. */
		old = MemoryContextSwitchTo(batch.cxt);
		for (int i = 0; i < MAP_NCOLS; i++)
		{
			const char *value = sync_field(res, i);

			(void) accumArrayResult(batch.cols[i],
									value ? PointerGetDatum(cstring_to_text(value)) : (Datum) 0,
									value == NULL, TEXTOID, batch.cxt);
		}
		MemoryContextSwitchTo(old);
		if (++batch.nrows >= MAP_BATCH_ROWS)
			sync_batch_flush(&batch, counts);
	}
	while (have_l)
	{
		CHECK_FOR_INTERRUPTS();
		sync_batch_remove(&batch, local_id, counts);
		have_l = sync_local_next(&lr, &local_id);
	}
	sync_batch_flush(&batch, counts);
	SPI_cursor_close(lr.portal);
	MemoryContextDelete(batch.cxt);
}

/*
 * Make the local tenant_shard_map equal to the source's, bucket by bucket;
 * nothing is written when every bucket is equal.
 */
static void
sync_map(GbShardConn *sc, SyncSource *src, SyncCounts *counts)
{
	int64		local_rows;
	int64		nbuckets = 1;
	char	   *bucket_expr;
	int64	   *diff;
	int64		ndiff;
	bool		isnull;

	/* The planner's row count (kept by autovacuum) is close enough; else count. */
	(void) sync_exec("SELECT c.reltuples::pg_catalog.int8 FROM pg_catalog.pg_class c"
					 " WHERE c.oid OPERATOR(pg_catalog.=) 'gb_scale.tenant_shard_map'::pg_catalog.regclass",
					 NULL, 0, SPI_OK_SELECT);
	local_rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (local_rows < 0)
	{
		(void) sync_exec("SELECT pg_catalog.count(*) FROM gb_scale.tenant_shard_map", NULL, 0, SPI_OK_SELECT);
		local_rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_freetuptable(SPI_tuptable);
	}
	for (int i = 0; i < lengthof(sync_bucket_primes); i++)
	{
		nbuckets = sync_bucket_primes[i];
		if (nbuckets * 16 >= local_rows)
			break;
	}
	/* tenant_id % P is in (-P, P): adding P cannot overflow. */
	bucket_expr = psprintf("((tenant_id OPERATOR(pg_catalog.%%) " INT64_FORMAT "::pg_catalog.int8)"
						   " OPERATOR(pg_catalog.+) " INT64_FORMAT "::pg_catalog.int8)"
						   " OPERATOR(pg_catalog.%%) " INT64_FORMAT "::pg_catalog.int8",
						   nbuckets, nbuckets, nbuckets);

	diff = palloc(sizeof(int64) * nbuckets);
	ndiff = sync_map_diff_buckets(sc, src, bucket_expr, nbuckets, diff);
	if (ndiff > 0)
		/* Most buckets differ: reading them all is cheaper than choosing. */
		sync_map_apply(sc, src, bucket_expr, diff, ndiff, ndiff * 2 > nbuckets, counts);
	pfree(diff);
}

/*
 * Make the local rows equal to the source's.  A table already equal is not
 * written at all: no statement runs on it, so its triggers do not fire and
 * no backend's routing cache is reset by a sync that found nothing new.
 *
 * The order keeps every foreign key satisfied after each statement: shards
 * are added or changed first (a changed region cascades to the
 * placements), then placements are removed, changed or added, and only
 * then do shards go, when no placement refers to them.
 */
static void
sync_apply(GbShardConn *sc, SyncSource *src)
{
	SyncCounts	counts = {0};
	bool		shards_differ;
	Datum		quota_tables;
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	sync_check_enums(src);
	/* The tiers' limits and quotas are checked before anything is written. */
	gb_plan_limits_check(src->limits);
	quota_tables = gb_plan_quotas_check(src->quotas);

	/*
	 * Concurrent editors and syncs wait for this one (and it for them), so
	 * that the result is the source's rows, not a mix; readers do not wait.
	 */
	(void) sync_exec("LOCK TABLE gb_scale.shard_config, gb_scale.tenant_shard_map"
					 " IN SHARE ROW EXCLUSIVE MODE", NULL, 0, SPI_OK_UTILITY);

	shards_differ = sync_differs(SHARD_COLUMNS, "gb_scale.shard_config", SHARD_SOURCE,
								 src->shard, SHARD_NCOLS);
	if (shards_differ)
	{
		/* Ranges may move between shards: check them once all rows are in. */
		(void) sync_exec("SET CONSTRAINTS gb_scale.shard_config_active_ranges_disjoint DEFERRED",
						 NULL, 0, SPI_OK_UTILITY);

		counts.shard_changed = sync_exec("UPDATE gb_scale.shard_config c"
										 "   SET region_code = s.region_code, datacenter = s.datacenter,"
										 "       connection_string = s.connection_string, is_primary = s.is_primary,"
										 "       is_active = s.is_active, min_tenant_id = s.min_tenant_id,"
										 "       max_tenant_id = s.max_tenant_id, created_at = s.created_at"
										 "  FROM " SHARD_SOURCE " AS s"
										 " WHERE c.shard_id OPERATOR(pg_catalog.=) s.shard_id"
										 "   AND (c.region_code, c.datacenter, c.connection_string, c.is_primary, c.is_active,"
										 "        c.min_tenant_id, c.max_tenant_id, c.created_at)"
										 "       IS DISTINCT FROM"
										 "       (s.region_code, s.datacenter, s.connection_string, s.is_primary, s.is_active,"
										 "        s.min_tenant_id, s.max_tenant_id, s.created_at)",
										 src->shard, SHARD_NCOLS, SPI_OK_UPDATE);

		counts.shard_added = sync_exec("INSERT INTO gb_scale.shard_config (" SHARD_COLUMNS ")"
									   " SELECT s.* FROM " SHARD_SOURCE " AS s"
									   "  WHERE NOT EXISTS (SELECT FROM gb_scale.shard_config c"
									   "                     WHERE c.shard_id OPERATOR(pg_catalog.=) s.shard_id)",
									   src->shard, SHARD_NCOLS, SPI_OK_INSERT);
	}

	/*
	 * A batch's statements touch a few thousand rows of a table that may
	 * hold millions: index probes, not a hash of the whole table per batch.
	 * The bucket summaries (up to 262,139 groups) are hashed in memory.
	 */
	(void) set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("work_mem", SYNC_WORK_MEM, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* The planner cannot count buckets: it would sort every row instead. */
	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	sync_map(sc, src, &counts);

	if (shards_differ)
	{
		counts.shard_removed = sync_exec("DELETE FROM gb_scale.shard_config c"
										 " WHERE NOT EXISTS (SELECT FROM pg_catalog.unnest($1::pg_catalog.int2[]) AS s(shard_id)"
										 "                    WHERE s.shard_id OPERATOR(pg_catalog.=) c.shard_id)",
										 src->shard, 1, SPI_OK_DELETE);

		/*
		 * Check the ranges now, so that an overlap fails this call, and put
		 * the constraint back to its declared mode for the rest of the
		 * transaction.
		 */
		(void) sync_exec("SET CONSTRAINTS gb_scale.shard_config_active_ranges_disjoint IMMEDIATE",
						 NULL, 0, SPI_OK_UTILITY);
	}

	/* The plan tiers' defaults, checked and written as their API does. */
	gb_plan_settings_sync(src->tiers);
	gb_plan_limits_sync(src->limits);
	gb_plan_quotas_sync(src->quotas, quota_tables);

	SPI_finish();
	/* Every setting changed in this scope goes back, whoever changed it. */
	AtEOXact_GUC(false, nestlevel);

	ereport(NOTICE,
			(errmsg("shard directory synced: shards " UINT64_FORMAT " added, " UINT64_FORMAT " changed, "
					UINT64_FORMAT " removed; tenant placements " UINT64_FORMAT " added, "
					UINT64_FORMAT " changed, " UINT64_FORMAT " removed",
					counts.shard_added, counts.shard_changed, counts.shard_removed,
					counts.map_added, counts.map_changed, counts.map_removed)));
}

PG_FUNCTION_INFO_V1(gb_shard_sync);

/* gb_shard_sync(source text) RETURNS void */
Datum
gb_shard_sync(PG_FUNCTION_ARGS)
{
	char	   *source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		is_superuser = superuser();
	GbShardConn *sc = palloc0(sizeof(GbShardConn));
	SyncSource *src = palloc0(sizeof(SyncSource));

	/* From now on pg_stat_activity shows the statement without the password. */
	gb_secret_hide_activity();

	/* Fail before connecting anywhere (a standby is read-only too). */
	PreventCommandIfReadOnly("gb_shard_sync()");
	sync_check_connstr(source, is_superuser);

	PG_TRY();
	{
		sync_connect(sc, source, is_superuser);
		sync_read_source(sc, src);
		/* The placements are read as they are applied, in the same snapshot. */
		sync_apply(sc, src);
	}
	PG_FINALLY();
	{
		/* libpq's memory and socket are not released by an abort. */
		gb_shard_conn_close(sc);
	}
	PG_END_TRY();

	PG_RETURN_VOID();
}

void
gb_shard_sync_init(void)
{
	DefineCustomIntVariable("gb_scale.sync_max_rows",
							"Most rows gb_shard_sync() accepts from a source shard.",
							"Shards, tenant placements, enum labels and plan tiers' defaults together; a source with more is refused.",
							&gb_sync_max_rows,
							10000000, 1, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}
