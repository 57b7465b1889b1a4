/*-------------------------------------------------------------------------
 *
 * shard_fdw.c
 *	  Connection strings of gb_scale.shard_config split into postgres_fdw
 *	  options, for gb_shard_fdw_setup() (gb_scale--1.0.sql), and the host,
 *	  port and dbname they name, for gb_shard_routes() (routing_routes.c).
 *
 * postgres_fdw takes a connection as separate options: "user" and secrets
 * (password, sslpassword) on the user mapping, every other libpq option on
 * the server.  gb_scale.conninfo_options() parses a shard's connection string
 * with libpq itself, so that the options are exactly the ones libpq would
 * use, and says where each one goes.  The servers and the user mappings,
 * which hold the passwords, are made here from parse nodes
 * (gb_scale.fdw_shard_sync): no SQL text holds a password, so none can
 * reach an error's context, the log or a hook that records statements.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"

#include <ctype.h>

#include "access/reloptions.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#include "libpq-fe.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(gb_conninfo_options);
PG_FUNCTION_INFO_V1(gb_fdw_shard_sync);

/*
 * Could the connection string hold a secret that libpq's parse error would
 * quote?  A password keyword, or a URI with user information.
 */
static bool
gb_conninfo_may_hold_secret(const char *conninfo)
{
	const char *p;

	for (p = conninfo; *p; p++)
	{
		if (pg_strncasecmp(p, "password", 8) == 0)
			return true;
	}
	return (pg_strncasecmp(conninfo, "postgresql://", 13) == 0 ||
			pg_strncasecmp(conninfo, "postgres://", 11) == 0) &&
		strchr(conninfo, '@') != NULL;
}

/*
 * libpq's parse error, without its trailing newline, and with what it quotes
 * from the string replaced by "..." when the string may hold a secret: libpq
 * quotes the token it stopped at, which may be a piece of a password (an
 * unquoted space in it starts a new "keyword"), and errors reach the server
 * log.
 */
char *
gb_conninfo_error(const char *conninfo, const char *libpq_msg)
{
	StringInfoData buf;
	bool		mask = gb_conninfo_may_hold_secret(conninfo);
	const char *p = libpq_msg;

	initStringInfo(&buf);
	while (*p)
	{
		const char *close;

		if (*p != '"' || !mask || (close = strchr(p + 1, '"')) == NULL)
		{
			appendStringInfoChar(&buf, *p++);
			continue;
		}
		/* A lone punctuation mark ("=", "]") is libpq's, not the string's. */
		if (close == p + 2 && ispunct((unsigned char) p[1]))
			appendBinaryStringInfo(&buf, p, 3);
		else
			appendStringInfoString(&buf, "\"...\"");
		p = close + 1;
	}
	while (buf.len > 0 && isspace((unsigned char) buf.data[buf.len - 1]))
		buf.data[--buf.len] = '\0';
	return buf.data;
}

/*
 * libpq's parse of a connection string (free it with PQconninfoFree), or an
 * error whose message quotes nothing of the string that may be secret.
 */
static PQconninfoOption *
gb_conninfo_parse(const char *conninfo)
{
	char	   *errmsg_libpq = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg_libpq);

	if (opts == NULL && errmsg_libpq == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while parsing a connection string")));
	else if (opts == NULL)
	{
		char	   *detail = gb_conninfo_error(conninfo, errmsg_libpq);

		PQfreemem(errmsg_libpq);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid connection string: %s", detail),
				 errhint("Write it as keyword=value pairs (single-quote a value with spaces) or as a postgresql:// URI.")));
	}
	return opts;
}

/*
 * The options a connection string sets, in libpq's order, as parallel lists
 * of keywords, values and whether each goes on the user mapping.  Options
 * postgres_fdw sets on its own connections (client_encoding,
 * fallback_application_name) are left out; libpq's debug options
 * (replication), which postgres_fdw refuses, are an error here, naming the
 * keyword only.  No error message carries a value.
 */
static void
gb_conninfo_split(const char *conninfo, List **keywords, List **vals, List **on_mapping)
{
	PQconninfoOption *opts = gb_conninfo_parse(conninfo);
	PQconninfoOption *opt;
	const char *refused = NULL;

	*keywords = NIL;
	*vals = NIL;
	*on_mapping = NIL;

	/*
	 * Copied out first: libpq's malloc'd memory is freed before anything but
	 * running out of memory can raise an error.
	 */
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL)
			continue;
		if (strchr(opt->dispchar, 'D') != NULL)
		{
			refused = pstrdup(opt->keyword);
			break;
		}
		if (strcmp(opt->keyword, "client_encoding") == 0 ||
			strcmp(opt->keyword, "fallback_application_name") == 0)
			continue;
		*keywords = lappend(*keywords, pstrdup(opt->keyword));
		*vals = lappend(*vals, pstrdup(opt->val));
		/* postgres_fdw's rule: the user and every secret on the mapping. */
		*on_mapping = lappend_int(*on_mapping, strcmp(opt->keyword, "user") == 0 ||
								  strchr(opt->dispchar, '*') != NULL);
	}
	PQconninfoFree(opts);

	if (refused != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connection option \"%s\" cannot be used by postgres_fdw", refused),
				 errhint("Remove \"%s\" from the shard's connection_string.", refused)));
}

/*
 * Where a connection string connects, as libpq reads it: its host (its
 * hostaddr when it names no host), port and dbname, each NULL when the
 * string leaves it to libpq's defaults.  Nothing else (user, password) is
 * returned.
 */
void
gb_conninfo_endpoint(const char *conninfo, char **host, char **port, char **dbname)
{
	PQconninfoOption *opts = gb_conninfo_parse(conninfo);
	char	   *hostaddr = NULL;

	*host = *port = *dbname = NULL;
	for (PQconninfoOption *opt = opts; opt->keyword != NULL; opt++)
	{
		if (opt->val == NULL || opt->val[0] == '\0')
			continue;
		if (strcmp(opt->keyword, "host") == 0)
			*host = pstrdup(opt->val);
		else if (strcmp(opt->keyword, "hostaddr") == 0)
			hostaddr = pstrdup(opt->val);
		else if (strcmp(opt->keyword, "port") == 0)
			*port = pstrdup(opt->val);
		else if (strcmp(opt->keyword, "dbname") == 0)
			*dbname = pstrdup(opt->val);
	}
	PQconninfoFree(opts);
	if (*host == NULL)
		*host = hostaddr;
}

/*
 * gb_scale.conninfo_options(conninfo text)
 *	  RETURNS TABLE(keyword text, value text, for_user_mapping boolean)
 *
 * One row per option the connection string sets (see gb_conninfo_split).
 */
Datum
gb_conninfo_options(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *conninfo = text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *keywords;
	List	   *vals;
	List	   *on_mapping;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	gb_secret_hide_activity();
	gb_conninfo_split(conninfo, &keywords, &vals, &on_mapping);

	for (i = 0; i < list_length(keywords); i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum((char *) list_nth(keywords, i));
		values[1] = CStringGetTextDatum((char *) list_nth(vals, i));
		values[2] = BoolGetDatum(list_nth_int(on_mapping, i) != 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}

/* Run a utility statement built as a parse node, under a text without values. */
static void
gb_fdw_run_utility(Node *stmt, const char *shown_text)
{
	PlannedStmt *pstmt = makeNode(PlannedStmt);

	pstmt->commandType = CMD_UTILITY;
	pstmt->canSetTag = false;
	pstmt->utilityStmt = stmt;
	pstmt->stmt_location = -1;
	pstmt->stmt_len = 0;
	ProcessUtility(pstmt, shown_text, false, PROCESS_UTILITY_QUERY,
				   NULL, NULL, None_Receiver, NULL);
	CommandCounterIncrement();
}

/* Is name one of the text[] keep's elements? */
static bool
gb_fdw_option_kept(ArrayType *keep, const char *name)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(keep, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), name) == 0)
			return true;
	}
	return false;
}

static int
gb_fdw_option_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst_node(DefElem, a)->defname, lfirst_node(DefElem, b)->defname);
}

static DefElem *
gb_fdw_option_find(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, name) == 0)
			return d;
	}
	return NULL;
}

/*
 * What makes an object's options HAVE the wanted ones (WANT, sorted by
 * name): ADD, SET and DROP elements, in the order of their names; options
 * named in KEEP (postgres_fdw's own, set by an operator) are never dropped.
 */
static List *
gb_fdw_option_changes(List *want, List *have, ArrayType *keep)
{
	List	   *changes = NIL;
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, want)
		names = lappend(names, lfirst(lc));
	foreach(lc, have)
	{
		if (gb_fdw_option_find(want, lfirst_node(DefElem, lc)->defname) == NULL)
			names = lappend(names, lfirst(lc));
	}
	list_sort(names, gb_fdw_option_cmp);
	foreach(lc, names)
	{
		const char *name = lfirst_node(DefElem, lc)->defname;
		DefElem    *w = gb_fdw_option_find(want, name);
		DefElem    *h = gb_fdw_option_find(have, name);

		if (h == NULL)
			changes = lappend(changes, makeDefElemExtended(NULL, w->defname, w->arg, DEFELEM_ADD, -1));
		else if (w == NULL)
		{
			if (!gb_fdw_option_kept(keep, name))
				changes = lappend(changes, makeDefElemExtended(NULL, h->defname, NULL, DEFELEM_DROP, -1));
		}
		else if (strcmp(defGetString(h), defGetString(w)) != 0)
			changes = lappend(changes, makeDefElemExtended(NULL, w->defname, w->arg, DEFELEM_SET, -1));
	}
	return changes;
}

/* The server's postgres_fdw options: the connection string's, asynchronous scans on. */
static void
gb_fdw_server_sync(const char *server, List *want, ArrayType *keep)
{
	ForeignServer *srv = GetForeignServerByName(server, true);
	List	   *changes;

	want = lappend(want, makeDefElem(pstrdup("async_capable"), (Node *) makeString(pstrdup("true")), -1));
	list_sort(want, gb_fdw_option_cmp);
	if (srv == NULL)
	{
		CreateForeignServerStmt *stmt = makeNode(CreateForeignServerStmt);

		stmt->servername = pstrdup(server);
		stmt->fdwname = pstrdup("postgres_fdw");
		stmt->options = want;
		gb_fdw_run_utility((Node *) stmt,
						   psprintf("CREATE SERVER %s FOREIGN DATA WRAPPER postgres_fdw (options not shown)",
									quote_identifier(server)));
		return;
	}
	if (strcmp(GetForeignDataWrapper(srv->fdwid)->fdwname, "postgres_fdw") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("server \"%s\" exists and is not a postgres_fdw server", server),
				 errhint("gb_scale names the server of shard N gb_shard_N; rename or drop the other server.")));
	changes = gb_fdw_option_changes(want, srv->options, keep);
	if (changes != NIL)
	{
		AlterForeignServerStmt *stmt = makeNode(AlterForeignServerStmt);

		stmt->servername = pstrdup(server);
		stmt->options = changes;
		gb_fdw_run_utility((Node *) stmt,
						   psprintf("ALTER SERVER %s (options not shown)", quote_identifier(server)));
	}
}

/* The calling role's user mapping: the user and the secrets. */
static void
gb_fdw_user_mapping_sync(const char *server, List *want, ArrayType *keep)
{
	ForeignServer *srv = GetForeignServerByName(server, false);
	RoleSpec   *current = makeNode(RoleSpec);
	HeapTuple	tp;
	List	   *have;
	List	   *changes;
	bool		isnull;

	current->roletype = ROLESPEC_CURRENT_USER;
	current->location = -1;
	list_sort(want, gb_fdw_option_cmp);
	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(GetUserId()),
						 ObjectIdGetDatum(srv->serverid));
	if (!HeapTupleIsValid(tp))
	{
		CreateUserMappingStmt *stmt = makeNode(CreateUserMappingStmt);

		stmt->user = current;
		stmt->servername = pstrdup(server);
		stmt->options = want;
		gb_fdw_run_utility((Node *) stmt,
						   psprintf("CREATE USER MAPPING FOR CURRENT_USER SERVER %s (options not shown)",
									quote_identifier(server)));
		return;
	}
	{
		Datum		datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
											Anum_pg_user_mapping_umoptions, &isnull);

		have = isnull ? NIL : untransformRelOptions(datum);
	}
	ReleaseSysCache(tp);
	changes = gb_fdw_option_changes(want, have, keep);
	if (changes != NIL)
	{
		AlterUserMappingStmt *stmt = makeNode(AlterUserMappingStmt);

		stmt->user = current;
		stmt->servername = pstrdup(server);
		stmt->options = changes;
		gb_fdw_run_utility((Node *) stmt,
						   psprintf("ALTER USER MAPPING FOR CURRENT_USER SERVER %s (options not shown)",
									quote_identifier(server)));
	}
}

/*
 * gb_scale.fdw_shard_sync(server name, conninfo text, server_keep text[],
 *						   mapping_keep text[]) RETURNS void
 *
 * A shard's postgres_fdw server and the calling role's user mapping for it,
 * made from its connection string: created when missing, else brought in
 * line (ADD, SET, DROP), keeping the options named in server_keep and
 * mapping_keep.  Built as parse nodes and run through ProcessUtility, so
 * that hooks and event triggers see the commands but no text of them holds
 * a value (the mapping's hold the password).
 */
Datum
gb_fdw_shard_sync(PG_FUNCTION_ARGS)
{
	char	   *server = NameStr(*PG_GETARG_NAME(0));
	char	   *conninfo = text_to_cstring(PG_GETARG_TEXT_PP(1));
	List	   *keywords;
	List	   *vals;
	List	   *on_mapping;
	List	   *server_want = NIL;
	List	   *mapping_want = NIL;

	gb_conninfo_split(conninfo, &keywords, &vals, &on_mapping);
	for (int i = 0; i < list_length(keywords); i++)
	{
		DefElem    *d = makeDefElem(pstrdup(list_nth(keywords, i)),
									(Node *) makeString(pstrdup(list_nth(vals, i))), -1);

		if (list_nth_int(on_mapping, i))
			mapping_want = lappend(mapping_want, d);
		else
			server_want = lappend(server_want, d);
	}
	gb_fdw_server_sync(server, server_want, PG_GETARG_ARRAYTYPE_P(2));
	gb_fdw_user_mapping_sync(server, mapping_want, PG_GETARG_ARRAYTYPE_P(3));
	PG_RETURN_VOID();
}
