/*-------------------------------------------------------------------------
 *
 * shard_fdw.c
 *	  Connection strings of gb_scale.shard_config split into postgres_fdw
 *	  options, for gb_shard_fdw_setup() (gb_scale--1.0.sql).
 *
 * postgres_fdw takes a connection as separate options: "user" and secrets
 * (password, sslpassword) on the user mapping, every other libpq option on
 * the server.  gb_scale.conninfo_options() parses a shard's connection string
 * with libpq itself, so that the options are exactly the ones libpq would
 * use, and says where each one goes.  The DDL is written in PL/pgSQL, which
 * quotes it with format(); this file only parses.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"

#include <ctype.h>

#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "libpq-fe.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(gb_conninfo_options);

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
static char *
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
 * gb_scale.conninfo_options(conninfo text)
 *	  RETURNS TABLE(keyword text, value text, for_user_mapping boolean)
 *
 * One row per option the connection string sets, in libpq's order.
 * Options postgres_fdw sets on its own connections (client_encoding,
 * fallback_application_name) are left out; libpq's debug options
 * (replication), which postgres_fdw refuses, are an error here, naming the
 * keyword only.  No error message carries a value.
 */
Datum
gb_conninfo_options(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *conninfo = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *errmsg_libpq = NULL;
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	const char *refused = NULL;
	List	   *keywords = NIL;
	List	   *vals = NIL;
	List	   *on_mapping = NIL;
	int			i;

	InitMaterializedSRF(fcinfo, 0);

	opts = PQconninfoParse(conninfo, &errmsg_libpq);
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
	else
	{
		/*
		 * Copied out first: libpq's malloc'd memory is freed before anything
		 * but running out of memory can raise an error.
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
			keywords = lappend(keywords, pstrdup(opt->keyword));
			vals = lappend(vals, pstrdup(opt->val));
			/* postgres_fdw's rule: the user and every secret on the mapping. */
			on_mapping = lappend_int(on_mapping, strcmp(opt->keyword, "user") == 0 ||
									 strchr(opt->dispchar, '*') != NULL);
		}
		PQconninfoFree(opts);
	}

	if (refused != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connection option \"%s\" cannot be used by postgres_fdw", refused),
				 errhint("Remove \"%s\" from the shard's connection_string.", refused)));

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
