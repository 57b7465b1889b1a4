/*-------------------------------------------------------------------------
 *
 * shard_secret.c
 *	  Keeping shard passwords out of the server log, client errors and
 *	  pg_stat_activity.
 *
 * Connection strings reach gb_scale as SQL text: the argument of
 * gb_shard_sync(), the connection_string column of shard_config.  Three
 * things would show such a text to others:
 *
 *	- the server log: log_statement, log_min_error_statement's STATEMENT
 *	  line, log_min_duration_statement, auto_explain, and any message, detail
 *	  or context that quotes a statement.  An emit_log_hook (chained to any
 *	  previous one) masks password values in every message field and in the
 *	  statement text that will be printed with it.  It is installed when the
 *	  library loads, so with shared_preload_libraries (which gb_scale asks
 *	  for) it covers every statement of every session;
 *	- pg_stat_activity: the functions that take a connection string replace
 *	  their statement's text with the masked one as they start;
 *	- client errors: what gb_scale raises never quotes a connection string
 *	  or SQL holding one (user mappings are made from parse nodes, see
 *	  shard_fdw.c), and messages relayed from libpq are masked first.
 *
 * The masking recognises a password value in the forms it takes in such
 * texts: "password=value" (a connection string, the value unquoted or
 * single-quoted, also inside an SQL literal where quotes are doubled),
 * "password 'value'" (an OPTIONS list, E'' strings included),
 * "password": "value" (JSON), and the user information of a postgresql://
 * URI.  sslpassword is caught by the same rule.  Words that merely follow
 * "password" ("password is required") are left alone.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"

#include <ctype.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/elog.h"
#include "utils/memutils.h"

#define GB_SECRET_MASK	"..."

static emit_log_hook_type prev_emit_log_hook = NULL;

/* The masked copy of the statement text that debug_query_string points to. */
static char *masked_statement = NULL;

/*
 * The end of a single-quoted value whose opening quote is at p: SQL doubles
 * a quote, a connection string escapes it with a backslash; either is taken
 * as part of the value (too much masked is better than too little).
 */
static const char *
secret_quoted_end(const char *p, char quote)
{
	p++;
	while (*p)
	{
		if (*p == '\\' && p[1] != '\0')
			p += 2;
		else if (*p == quote && p[1] == quote)
			p += 2;
		else if (*p == quote)
			return p + 1;
		else
			p++;
	}
	return p;
}

/*
 * The end of a connection-string value quoted inside an SQL literal:
 * password=''a b'' (the literal's doubled quotes), \'' an escaped quote.
 */
static const char *
secret_doubled_quote_end(const char *p)
{
	p += 2;
	while (*p)
	{
		if (*p == '\\' && p[1] == '\'' && p[2] == '\'')
			p += 3;
		else if (*p == '\\' && p[1] != '\0')
			p += 2;
		else if (*p == '\'' && p[1] == '\'')
			return p + 2;
		else
			p++;
	}
	return p;
}

/* Does p start a "keyword=" (the next option of a connection string)? */
static bool
secret_keyword_follows(const char *p)
{
	const char *q = p;

	while (isalnum((unsigned char) *q) || *q == '_')
		q++;
	if (q == p)
		return false;
	while (*q == ' ' || *q == '\t')
		q++;
	return *q == '=';
}

/*
 * An unquoted value ends at a lone quote (the end of the SQL literal the
 * connection string is in), at a line's end, or at white space followed by
 * the next keyword=: a space in an unquoted password (a malformed string,
 * which libpq refuses) must not leave its second half shown.
 */
static const char *
secret_unquoted_end(const char *p)
{
	/* An already masked value (or a hint's "password=..."). */
	if (strncmp(p, GB_SECRET_MASK, strlen(GB_SECRET_MASK)) == 0 &&
		(p[3] == '\0' || isspace((unsigned char) p[3]) || p[3] == '\''))
		return p + strlen(GB_SECRET_MASK);
	while (*p && *p != '\n' && *p != '\r')
	{
		if (*p == ' ' || *p == '\t')
		{
			const char *next = p;

			while (*next == ' ' || *next == '\t')
				next++;
			if (*next == '\0' || *next == '\n' || *next == '\r' ||
				(*next == '\'' && next[1] != '\'') || secret_keyword_follows(next))
				break;
			p = next;
		}
		else if (*p == '\\' && p[1] != '\0')
			p += 2;
		else if (*p == '\'' && p[1] == '\'')
			p += 2;
		else if (*p == '\'')
			break;
		else
			p++;
	}
	return p;
}

/*
 * Append the mask for the value starting at p, in its quoting, to buf and
 * return where the value ends.  *masked is set when the value was more than
 * the mask itself (so that masking a masked text changes nothing).
 */
static const char *
secret_mask_value(StringInfo buf, const char *p, bool *masked)
{
	const char *end;
	const char *shown;

	if (*p == '\'' && p[1] == '\'' && p[2] != '\'' && p[2] != '\0' &&
		!isspace((unsigned char) p[2]))
	{
		end = secret_doubled_quote_end(p);
		shown = "''" GB_SECRET_MASK "''";
	}
	else if (*p == '\'')
	{
		end = secret_quoted_end(p, '\'');
		shown = "'" GB_SECRET_MASK "'";
	}
	else if ((*p == 'E' || *p == 'e') && p[1] == '\'')
	{
		end = secret_quoted_end(p + 1, '\'');
		shown = "'" GB_SECRET_MASK "'";
	}
	else if (*p == '"')
	{
		end = secret_quoted_end(p, '"');
		shown = "\"" GB_SECRET_MASK "\"";
	}
	else
	{
		end = secret_unquoted_end(p);
		shown = GB_SECRET_MASK;
	}
	if ((size_t) (end - p) != strlen(shown) || strncmp(p, shown, end - p) != 0)
		*masked = true;
	appendStringInfoString(buf, shown);
	return end;
}

/*
 * After "password" at p: where its value starts, or NULL when what follows
 * is not a value (a word of a sentence, another identifier).
 */
static const char *
secret_value_start(const char *p)
{
	if (*p == '"')				/* the end of a quoted key */
		p++;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '=' || *p == ':')
	{
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		return (*p == '\0' || *p == ',' || *p == ')') ? NULL : p;
	}
	if (*p == '\'' || *p == '"' || ((*p == 'E' || *p == 'e') && p[1] == '\''))
		return p;
	return NULL;
}

/*
 * The user information of a URI starting at p (just after "://"): mask
 * what follows its colon.  Returns where the copying goes on, or NULL when
 * there is no password there.
 */
static const char *
secret_mask_uri(StringInfo buf, const char *p, bool *masked)
{
	const char *q;
	const char *colon = NULL;

	for (q = p; *q && *q != '@'; q++)
	{
		if (*q == '/' || *q == '?' || *q == '\'' || isspace((unsigned char) *q))
			return NULL;
		if (*q == ':' && colon == NULL)
			colon = q;
	}
	if (*q != '@' || colon == NULL)
		return NULL;
	appendBinaryStringInfo(buf, p, colon + 1 - p);
	if ((size_t) (q - colon - 1) != strlen(GB_SECRET_MASK) ||
		strncmp(colon + 1, GB_SECRET_MASK, q - colon - 1) != 0)
		*masked = true;
	appendStringInfoString(buf, GB_SECRET_MASK);
	return q;
}

/*
 * text with every password value masked, palloc'd in the current memory
 * context; NULL when there was nothing to mask.
 */
char *
gb_secret_mask(const char *text)
{
	StringInfoData buf;
	const char *p;
	bool		masked = false;

	if (text == NULL)
		return NULL;
	/* Most texts hold neither: no copy for them. */
	for (p = text; *p; p++)
	{
		if ((*p == 'p' || *p == 'P') && pg_strncasecmp(p, "password", 8) == 0)
			break;
		if (*p == ':' && p[1] == '/' && p[2] == '/')
			break;
	}
	if (*p == '\0')
		return NULL;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, text, p - text);
	while (*p)
	{
		if ((*p == 'p' || *p == 'P') && pg_strncasecmp(p, "password", 8) == 0)
		{
			const char *value = secret_value_start(p + 8);

			if (value != NULL && p > text && (p[-1] == '?' || p[-1] == '&') && value[0] != '\'')
			{
				/* A URI parameter: its value ends at the next one. */
				const char *end = value;

				while (*end && *end != '&' && *end != '\'' && !isspace((unsigned char) *end))
					end++;
				appendBinaryStringInfo(&buf, p, value - p);
				appendStringInfoString(&buf, GB_SECRET_MASK);
				if ((size_t) (end - value) != strlen(GB_SECRET_MASK) ||
					strncmp(value, GB_SECRET_MASK, end - value) != 0)
					masked = true;
				p = end;
				continue;
			}
			if (value != NULL)
			{
				appendBinaryStringInfo(&buf, p, value - p);
				p = secret_mask_value(&buf, value, &masked);
				continue;
			}
			appendBinaryStringInfo(&buf, p, 8);
			p += 8;
			continue;
		}
		if (*p == ':' && p[1] == '/' && p[2] == '/')
		{
			const char *next;

			appendStringInfoString(&buf, "://");
			next = secret_mask_uri(&buf, p + 3, &masked);
			p = next ? next : p + 3;
			continue;
		}
		appendStringInfoChar(&buf, *p++);
	}
	if (!masked)
	{
		pfree(buf.data);
		return NULL;
	}
	return buf.data;
}

/* Mask one field of an error in place (it lives in ErrorContext). */
static void
secret_mask_field(char **field)
{
	char	   *masked = gb_secret_mask(*field);

	if (masked != NULL)
	{
		pfree(*field);
		*field = masked;
	}
}

/*
 * The statement text printed with a message (STATEMENT:) is
 * debug_query_string, read after this hook: point it to a masked copy,
 * kept until the next one is needed.  debug_query_string is only ever read
 * for reports, and is reset at the next statement.
 */
static void
secret_mask_statement(ErrorData *edata)
{
	char	   *masked;

	if (debug_query_string == NULL || debug_query_string == masked_statement)
		return;
	masked = gb_secret_mask(debug_query_string);
	if (masked == NULL)
		return;
	/* No allocation that lasts in a critical section: no statement then. */
	if (CritSectionCount > 0)
	{
		edata->hide_stmt = true;
		return;
	}
	if (masked_statement != NULL)
		pfree(masked_statement);
	masked_statement = MemoryContextStrdup(TopMemoryContext, masked);
	debug_query_string = masked_statement;
}

static void
gb_secret_emit_log(ErrorData *edata)
{
	secret_mask_field(&edata->message);
	secret_mask_field(&edata->detail);
	secret_mask_field(&edata->detail_log);
	secret_mask_field(&edata->hint);
	secret_mask_field(&edata->context);
	secret_mask_field(&edata->internalquery);
	secret_mask_statement(edata);

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * Called by the functions that take a connection string, first thing:
 * pg_stat_activity shows the masked statement from then on (and after the
 * statement ends, as the session's last query).
 */
void
gb_secret_hide_activity(void)
{
	char	   *masked;

	if (debug_query_string == NULL)
		return;
	/* The log hook may have masked the statement already (log_statement). */
	if (debug_query_string == masked_statement)
	{
		pgstat_report_activity(STATE_RUNNING, masked_statement);
		return;
	}
	masked = gb_secret_mask(debug_query_string);
	if (masked == NULL)
		return;
	pgstat_report_activity(STATE_RUNNING, masked);
	pfree(masked);
}

/*
 * A message relayed from libpq (the source's error, a connection failure),
 * masked; palloc'd, without its trailing newline.
 */
char *
gb_secret_libpq_message(const char *msg)
{
	char	   *copy = pchomp(msg ? msg : "");
	char	   *masked = gb_secret_mask(copy);

	if (masked == NULL)
		return copy;
	pfree(copy);
	return masked;
}

void
gb_secret_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = gb_secret_emit_log;
}
