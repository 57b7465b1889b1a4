/*-------------------------------------------------------------------------
 *
 * shard_sync.c
 *	  gb_shard_sync(source text): make this shard's copy of the shard
 *	  directory (gb_scale.shard_config, gb_scale.tenant_shard_map) equal to
 *	  another shard's, so that an operator edits it in one place.
 *
 * The source is read over libpq in one REPEATABLE READ READ ONLY
 * transaction, so its two tables and its enum labels come from one snapshot,
 * and the connection is closed before anything here is written.  Every wait
 * on the connection also waits on the latch: cancel, statement_timeout and
 * postmaster death work while the source is slow or unreachable.
 *
 * Like dblink, a non-superuser must put a password in the connection string
 * and the source must have asked for it; otherwise a role could reach other
 * servers with the server's own credentials (.pgpass, peer or trust).
 *
 * Before any write the user enums of both shards are compared: a label with
 * different codes, or a code with different labels, means that the same
 * stored value has different meanings on the two shards, so the sync
 * refuses and names them.
 *
 * The local rows are then made equal to the source's with plain DML run as
 * the caller (the caller's privileges and PostgreSQL's read-only checks
 * apply), in the caller's transaction, with search_path pinned.  Only rows
 * that differ are written, so a sync that finds nothing new writes nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"

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
#include "utils/wait_event.h"

/* Columns read from the source, in this order. */
#define SHARD_COLUMNS	"shard_id, region_code, datacenter, connection_string, is_primary, is_active, " \
						"min_tenant_id, max_tenant_id, created_at"
#define SHARD_NCOLS		9
#define MAP_COLUMNS		"tenant_id, shard_id, region_code, created_at"
#define MAP_NCOLS		4
#define ENUM_NCOLS		4

/*
 * The source's rows as text[] columns, handed to the local statements as
 * parameters and cast there to the tables' types.
 */
typedef struct SyncSource
{
	Datum		shard[SHARD_NCOLS];
	Datum		map[MAP_NCOLS];
	Datum		enums[ENUM_NCOLS];
} SyncSource;

/*
 * The connection and the result being read.  Lives in palloc'd memory, not
 * in locals, so that PG_FINALLY sees what was set before an error.
 */
typedef struct SyncConn
{
	PGconn	   *conn;
	PGresult   *res;
} SyncConn;

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

/* Wait until the connection's socket is ready, or the latch is set. */
static bool
sync_wait(SyncConn *sc, int io_event)
{
	int			rc;

	if (PQsocket(sc->conn) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the connection to the source shard"),
				 errdetail_internal("%s", gb_secret_libpq_message(PQerrorMessage(sc->conn)))));
	rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | io_event,
						   PQsocket(sc->conn), -1L, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return (rc & io_event) != 0;
}

static void
sync_connect(SyncConn *sc, const char *source, bool is_superuser)
{
	const char *keywords[4];
	const char *values[4];

	/*
	 * client_encoding comes last so that the connection string cannot
	 * override it: text must arrive in this database's encoding.
	 */
	keywords[0] = "dbname";
	values[0] = source;
	keywords[1] = "fallback_application_name";
	values[1] = "gb_shard_sync";
	keywords[2] = "client_encoding";
	values[2] = GetDatabaseEncodingName();
	keywords[3] = NULL;
	values[3] = NULL;

	sc->conn = PQconnectStartParams(keywords, values, 1);
	if (sc->conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while connecting to the source shard")));
	if (PQstatus(sc->conn) != CONNECTION_BAD)
	{
		PostgresPollingStatusType status = PGRES_POLLING_WRITING;

		while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
		{
			if (sync_wait(sc, status == PGRES_POLLING_READING ?
						  WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE))
				status = PQconnectPoll(sc->conn);
		}
	}
	if (PQstatus(sc->conn) != CONNECTION_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to the source shard"),
				 errdetail_internal("%s", gb_secret_libpq_message(PQerrorMessage(sc->conn)))));

	if (!is_superuser && !PQconnectionUsedPassword(sc->conn))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superusers may only connect to a source shard that asks for the password."),
				 errhint("Change the source server's authentication method for this role to a password method (scram-sha-256).")));
}

/* An error of the query just run on the source, with its SQLSTATE. */
static void
sync_remote_error(SyncConn *sc, const char *what)
{
	const char *sqlstate = NULL;
	const char *primary = NULL;
	const char *detail = NULL;
	const char *hint = NULL;
	int			code = ERRCODE_CONNECTION_FAILURE;

	if (sc->res != NULL)
	{
		sqlstate = PQresultErrorField(sc->res, PG_DIAG_SQLSTATE);
		primary = PQresultErrorField(sc->res, PG_DIAG_MESSAGE_PRIMARY);
		detail = PQresultErrorField(sc->res, PG_DIAG_MESSAGE_DETAIL);
		hint = PQresultErrorField(sc->res, PG_DIAG_MESSAGE_HINT);
	}
	/* The source's SQLSTATE, unless it is not an error's. */
	if (sqlstate != NULL && strlen(sqlstate) == 5 &&
		strncmp(sqlstate, "00", 2) != 0 && strncmp(sqlstate, "01", 2) != 0 &&
		strncmp(sqlstate, "02", 2) != 0)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
	/* The source's texts may quote a connection string of its own. */
	primary = gb_secret_libpq_message(primary ? primary : PQerrorMessage(sc->conn));
	if (detail != NULL)
		detail = gb_secret_libpq_message(detail);
	if (hint != NULL)
		hint = gb_secret_libpq_message(hint);

	ereport(ERROR,
			(errcode(code),
			 errmsg("could not %s on the source shard: %s", what, primary),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Run one statement on the source (extended protocol: one statement only)
 * and return its result, which stays in sc->res until sync_clear().
 */
static PGresult *
sync_query(SyncConn *sc, const char *sql, ExecStatusType expected, const char *what)
{
	PGresult   *res;

	if (!PQsendQueryParams(sc->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
		sync_remote_error(sc, what);
	for (;;)
	{
		while (PQisBusy(sc->conn))
		{
			if (sync_wait(sc, WL_SOCKET_READABLE) && !PQconsumeInput(sc->conn))
				sync_remote_error(sc, what);
		}
		res = PQgetResult(sc->conn);
		if (res == NULL)
			break;
		/* Keep the last result; an error result is the last one anyway. */
		PQclear(sc->res);
		sc->res = res;
	}
	if (sc->res == NULL || PQresultStatus(sc->res) != expected)
		sync_remote_error(sc, what);
	return sc->res;
}

static void
sync_clear(SyncConn *sc)
{
	PQclear(sc->res);
	sc->res = NULL;
}

/* One column of a result as a text[] (NULLs kept). */
static Datum
sync_column(PGresult *res, int col)
{
	int			n = PQntuples(res);
	Datum	   *elems;
	bool	   *nulls;
	int			dims[1];
	int			lbs[1];

	if (n == 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));
	elems = palloc(sizeof(Datum) * n);
	nulls = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		nulls[i] = PQgetisnull(res, i, col);
		if (nulls[i])
			elems[i] = (Datum) 0;
		else
		{
			const char *value = PQgetvalue(res, i, col);
			int			len = PQgetlength(res, i, col);

			/* The source converted to our encoding; do not take it on trust. */
			(void) pg_verifymbstr(value, len, false);
			elems[i] = PointerGetDatum(cstring_to_text_with_len(value, len));
		}
	}
	dims[0] = n;
	lbs[0] = 1;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  TEXTOID, -1, false, TYPALIGN_INT));
}

static void
sync_columns(PGresult *res, Datum *cols, int ncols)
{
	if (PQnfields(res) != ncols)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the source shard returned %d columns instead of %d", PQnfields(res), ncols)));
	for (int i = 0; i < ncols; i++)
		cols[i] = sync_column(res, i);
}

/* Everything the sync needs from the source, from one snapshot. */
static void
sync_read_source(SyncConn *sc, SyncSource *src)
{
	PGresult   *res;

	(void) sync_query(sc, "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
					  PGRES_COMMAND_OK, "start a transaction");
	sync_clear(sc);

	/*
	 * Nothing below resolves a name through the source's search_path; the
	 * dates come in ISO format and UTC, readable whatever ours are.
	 */
	(void) sync_query(sc,
					  "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true),"
					  " pg_catalog.set_config('datestyle', 'ISO', true),"
					  " pg_catalog.set_config('timezone', 'UTC', true)",
					  PGRES_TUPLES_OK, "set up the session");
	sync_clear(sc);

	res = sync_query(sc,
					 "SELECT pg_catalog.count(*) FROM pg_catalog.pg_extension"
					 " WHERE extname OPERATOR(pg_catalog.=) 'gb_scale'",
					 PGRES_TUPLES_OK, "look for the extension");
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "1") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the source database has no extension gb_scale"),
				 errhint("Check the database of the connection string, or run CREATE EXTENSION gb_scale there.")));
	sync_clear(sc);

	res = sync_query(sc,
					 "SELECT " SHARD_COLUMNS " FROM gb_scale.shard_config ORDER BY shard_id",
					 PGRES_TUPLES_OK, "read gb_scale.shard_config");
	sync_columns(res, src->shard, SHARD_NCOLS);
	sync_clear(sc);

	res = sync_query(sc,
					 "SELECT " MAP_COLUMNS " FROM gb_scale.tenant_shard_map ORDER BY tenant_id",
					 PGRES_TUPLES_OK, "read gb_scale.tenant_shard_map");
	sync_columns(res, src->map, MAP_NCOLS);
	sync_clear(sc);

	res = sync_query(sc,
					 "SELECT n.nspname, t.typname, l.label, l.code"
					 "  FROM gb_scale.enum_label l"
					 "  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) l.enum_type::pg_catalog.oid"
					 "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace"
					 " WHERE NOT l.builtin",
					 PGRES_TUPLES_OK, "read gb_scale.enum_label");
	sync_columns(res, src->enums, ENUM_NCOLS);
	sync_clear(sc);

	(void) sync_query(sc, "COMMIT", PGRES_COMMAND_OK, "end the transaction");
	sync_clear(sc);
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

/*
 * Make the local rows equal to the source's.  A table already equal is not
 * written at all: no statement runs on it, so its triggers do not fire and
 * no backend's routing cache is reset by a sync that found nothing new.
 *
 * The order keeps every foreign key satisfied after each statement:
 * placements that go are deleted first, shards are added or changed (a
 * changed region cascades to the placements), then placements are added or
 * moved, and only then do shards go, when no placement refers to them.
 */
static void
sync_apply(SyncSource *src)
{
	uint64		map_removed = 0,
				map_changed = 0,
				map_added = 0;
	uint64		shard_removed = 0,
				shard_changed = 0,
				shard_added = 0;
	bool		shards_differ;
	bool		map_differs;
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	sync_check_enums(src);

	/*
	 * Concurrent editors and syncs wait for this one (and it for them), so
	 * that the result is the source's rows, not a mix; readers do not wait.
	 */
	(void) sync_exec("LOCK TABLE gb_scale.shard_config, gb_scale.tenant_shard_map"
					 " IN SHARE ROW EXCLUSIVE MODE", NULL, 0, SPI_OK_UTILITY);

	shards_differ = sync_differs(SHARD_COLUMNS, "gb_scale.shard_config", SHARD_SOURCE,
								 src->shard, SHARD_NCOLS);
	map_differs = sync_differs(MAP_COLUMNS, "gb_scale.tenant_shard_map", MAP_SOURCE,
							   src->map, MAP_NCOLS);

	if (map_differs)
		map_removed = sync_exec("DELETE FROM gb_scale.tenant_shard_map m"
								" WHERE NOT EXISTS (SELECT FROM pg_catalog.unnest($1::pg_catalog.int8[]) AS s(tenant_id)"
								"                    WHERE s.tenant_id OPERATOR(pg_catalog.=) m.tenant_id)",
								src->map, 1, SPI_OK_DELETE);

	if (shards_differ)
	{
		/* Ranges may move between shards: check them once all rows are in. */
		(void) sync_exec("SET CONSTRAINTS gb_scale.shard_config_active_ranges_disjoint DEFERRED",
						 NULL, 0, SPI_OK_UTILITY);

		shard_changed = sync_exec("UPDATE gb_scale.shard_config c"
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

		shard_added = sync_exec("INSERT INTO gb_scale.shard_config (" SHARD_COLUMNS ")"
								" SELECT s.* FROM " SHARD_SOURCE " AS s"
								"  WHERE NOT EXISTS (SELECT FROM gb_scale.shard_config c"
								"                     WHERE c.shard_id OPERATOR(pg_catalog.=) s.shard_id)",
								src->shard, SHARD_NCOLS, SPI_OK_INSERT);
	}

	if (map_differs)
	{
		map_changed = sync_exec("UPDATE gb_scale.tenant_shard_map m"
								"   SET shard_id = s.shard_id, region_code = s.region_code, created_at = s.created_at"
								"  FROM " MAP_SOURCE " AS s"
								" WHERE m.tenant_id OPERATOR(pg_catalog.=) s.tenant_id"
								"   AND (m.shard_id, m.region_code, m.created_at)"
								"       IS DISTINCT FROM (s.shard_id, s.region_code, s.created_at)",
								src->map, MAP_NCOLS, SPI_OK_UPDATE);

		map_added = sync_exec("INSERT INTO gb_scale.tenant_shard_map (" MAP_COLUMNS ")"
							  " SELECT s.* FROM " MAP_SOURCE " AS s"
							  "  WHERE NOT EXISTS (SELECT FROM gb_scale.tenant_shard_map m"
							  "                     WHERE m.tenant_id OPERATOR(pg_catalog.=) s.tenant_id)",
							  src->map, MAP_NCOLS, SPI_OK_INSERT);
	}

	if (shards_differ)
	{
		shard_removed = sync_exec("DELETE FROM gb_scale.shard_config c"
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

	SPI_finish();
	AtEOXact_GUC(false, nestlevel);

	ereport(NOTICE,
			(errmsg("shard directory synced: shards " UINT64_FORMAT " added, " UINT64_FORMAT " changed, "
					UINT64_FORMAT " removed; tenant placements " UINT64_FORMAT " added, "
					UINT64_FORMAT " changed, " UINT64_FORMAT " removed",
					shard_added, shard_changed, shard_removed, map_added, map_changed, map_removed)));
}

PG_FUNCTION_INFO_V1(gb_shard_sync);

/* gb_shard_sync(source text) RETURNS void */
Datum
gb_shard_sync(PG_FUNCTION_ARGS)
{
	char	   *source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		is_superuser = superuser();
	SyncConn   *sc = palloc0(sizeof(SyncConn));
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
	}
	PG_FINALLY();
	{
		/* libpq's memory and socket are not released by an abort. */
		PQclear(sc->res);
		sc->res = NULL;
		PQfinish(sc->conn);
		sc->conn = NULL;
	}
	PG_END_TRY();

	sync_apply(src);
	PG_RETURN_VOID();
}

void
gb_shard_sync_init(void)
{
}
