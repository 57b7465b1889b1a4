/*-------------------------------------------------------------------------
 *
 * shard_conn.c
 *	  libpq connections from a backend to another shard, for gb_shard_sync
 *	  (shard_sync.c) and tenant moves (tenant_move.c).
 *
 * Every wait on the connection (connecting, sending, reading) also waits
 * on the latch: cancel, statement_timeout and postmaster death work while
 * the other shard is slow or unreachable.  What the other side says may
 * quote a connection string, so every text from it passes
 * gb_secret_libpq_message() before it reaches an error.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"
#include "routing.h"
#include "shard_conn.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

/*
 * Wait until the socket is ready for IO_EVENT (true) or the latch is set
 * (false, after the interrupts are served).
 */
bool
gb_shard_conn_wait(GbShardConn *sc, int io_event)
{
	int			rc;

	if (PQsocket(sc->conn) < 0)
		gb_shard_conn_error(sc, "keep the connection");
	rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | io_event,
						   PQsocket(sc->conn), -1L, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return (rc & io_event) != 0;
}

/* Connect SC (peer and hint set by the caller) to CONNINFO. */
void
gb_shard_conn_open(GbShardConn *sc, const char *conninfo, const char *application)
{
	/*
	 * client_encoding comes last so that the connection string cannot
	 * override it: text must arrive in this database's encoding.
	 */
	const char *keywords[4] = {"dbname", "fallback_application_name", "client_encoding", NULL};
	const char *values[4] = {conninfo, application, GetDatabaseEncodingName(), NULL};

	sc->res = NULL;
	sc->conn = PQconnectStartParams(keywords, values, 1);
	if (sc->conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while connecting to %s", sc->peer)));
	if (PQstatus(sc->conn) != CONNECTION_BAD)
	{
		PostgresPollingStatusType status = PGRES_POLLING_WRITING;

		while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
		{
			if (gb_shard_conn_wait(sc, status == PGRES_POLLING_READING ?
								   WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE))
				status = PQconnectPoll(sc->conn);
		}
	}
	if (PQstatus(sc->conn) != CONNECTION_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to %s", sc->peer),
				 errdetail_internal("%s", gb_secret_libpq_message(PQerrorMessage(sc->conn))),
				 sc->hint ? errhint("%s", sc->hint) : 0));
}

/*
 * The error of WHAT, just tried on the other shard: its SQLSTATE (a lost
 * connection's if it sent none), its texts.
 */
void
gb_shard_conn_error(GbShardConn *sc, const char *what)
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
	/* the other side's SQLSTATE, unless it is not an error's */
	if (sqlstate != NULL && strlen(sqlstate) == 5 &&
		strncmp(sqlstate, "00", 2) != 0 && strncmp(sqlstate, "01", 2) != 0 &&
		strncmp(sqlstate, "02", 2) != 0)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
	primary = gb_secret_libpq_message(primary ? primary : PQerrorMessage(sc->conn));
	if (detail != NULL)
		detail = gb_secret_libpq_message(detail);
	if (sc->hint != NULL)
		hint = sc->hint;
	else if (hint != NULL)
		hint = gb_secret_libpq_message(hint);
	ereport(ERROR,
			(errcode(code),
			 errmsg("could not %s on %s: %s", what, sc->peer, primary),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

/*
 * Run one statement with text parameters (the extended protocol: one
 * statement only); its last result stays in sc->res until the next query
 * or gb_shard_conn_clear().
 */
PGresult *
gb_shard_conn_query(GbShardConn *sc, const char *sql, int nparams, const char *const *params,
					ExecStatusType expected, const char *what)
{
	PGresult   *res;

	gb_shard_conn_clear(sc);
	if (!PQsendQueryParams(sc->conn, sql, nparams, NULL, params, NULL, NULL, 0))
		gb_shard_conn_error(sc, what);
	for (;;)
	{
		while (PQisBusy(sc->conn))
		{
			if (gb_shard_conn_wait(sc, WL_SOCKET_READABLE) && !PQconsumeInput(sc->conn))
				gb_shard_conn_error(sc, what);
		}
		res = PQgetResult(sc->conn);
		if (res == NULL)
			break;
		/* an error result is the last one anyway */
		PQclear(sc->res);
		sc->res = res;
	}
	if (sc->res == NULL || PQresultStatus(sc->res) != expected)
		gb_shard_conn_error(sc, what);
	return sc->res;
}

void
gb_shard_conn_clear(GbShardConn *sc)
{
	PQclear(sc->res);
	sc->res = NULL;
}

void
gb_shard_conn_close(GbShardConn *sc)
{
	gb_shard_conn_clear(sc);
	PQfinish(sc->conn);
	sc->conn = NULL;
}
