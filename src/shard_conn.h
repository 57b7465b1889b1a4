/*-------------------------------------------------------------------------
 *
 * shard_conn.h
 *	  libpq connections from a backend to another shard, every wait on the
 *	  latch (shard_conn.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef GB_SHARD_CONN_H
#define GB_SHARD_CONN_H

#include "libpq-fe.h"

typedef struct GbShardConn
{
	PGconn	   *conn;
	PGresult   *res;			/* the last result, kept until the next query */
	const char *peer;			/* who it is, for messages: "target shard 4" */
	const char *hint;			/* the hint of every error, or NULL: the peer's */
} GbShardConn;

extern void gb_shard_conn_open(GbShardConn *sc, const char *conninfo, const char *application);
extern bool gb_shard_conn_wait(GbShardConn *sc, int io_event);
extern void gb_shard_conn_error(GbShardConn *sc, const char *what) pg_attribute_noreturn();
extern PGresult *gb_shard_conn_query(GbShardConn *sc, const char *sql, int nparams,
									 const char *const *params, ExecStatusType expected,
									 const char *what);
extern void gb_shard_conn_clear(GbShardConn *sc);
extern void gb_shard_conn_close(GbShardConn *sc);

#endif							/* GB_SHARD_CONN_H */
