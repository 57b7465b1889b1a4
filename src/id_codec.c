/*-------------------------------------------------------------------------
 *
 * id_codec.c
 *	  Decoding IDs into time, shard and sequence, and the smallest ID of a
 *	  given time.  Pure functions: they need no shared memory.
 *
 *-------------------------------------------------------------------------
 */
#include "gb_scale.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

static int64
gb_checked_id(int64 id)
{
	if (id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%lld is not a gb_scale ID", (long long) id),
				 errdetail("IDs are non-negative: bit 63 is always zero."),
				 errhint("Pass an ID made by gb_next_id() or gb_id_from_time().")));
	return id;
}

PG_FUNCTION_INFO_V1(gb_id_timestamp);
Datum
gb_id_timestamp(PG_FUNCTION_ARGS)
{
	int64		id = gb_checked_id(PG_GETARG_INT64(0));

	PG_RETURN_TIMESTAMPTZ(gb_ms_to_timestamptz(id >> GB_TIME_SHIFT));
}

PG_FUNCTION_INFO_V1(gb_id_shard);
Datum
gb_id_shard(PG_FUNCTION_ARGS)
{
	int64		id = gb_checked_id(PG_GETARG_INT64(0));

	PG_RETURN_INT16((int16) ((id >> GB_SHARD_SHIFT) & GB_MAX_SHARD_ID));
}

PG_FUNCTION_INFO_V1(gb_id_sequence);
Datum
gb_id_sequence(PG_FUNCTION_ARGS)
{
	int64		id = gb_checked_id(PG_GETARG_INT64(0));

	PG_RETURN_INT32((int32) (id & GB_MAX_SEQUENCE));
}

PG_FUNCTION_INFO_V1(gb_id_decode);
Datum
gb_id_decode(PG_FUNCTION_ARGS)
{
	int64		id = gb_checked_id(PG_GETARG_INT64(0));
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("gb_id_decode() must be called where a record is expected")));
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = TimestampTzGetDatum(gb_ms_to_timestamptz(id >> GB_TIME_SHIFT));
	values[1] = Int16GetDatum((int16) ((id >> GB_SHARD_SHIFT) & GB_MAX_SHARD_ID));
	values[2] = Int32GetDatum((int32) (id & GB_MAX_SEQUENCE));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(gb_id_from_time);
Datum
gb_id_from_time(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	int16		shard = PG_GETARG_INT16(1);
	int64		pg_ms;
	int64		ms;

	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("gb_id_from_time: timestamp must be finite"),
				 errhint("IDs cover 2024-01-01 00:00:00+00 to 2093-09-06 15:47:35.551+00.")));
	if (shard < 0 || shard > GB_MAX_SHARD_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gb_id_from_time: shard id %d is out of range", shard),
				 errhint("A shard id is an integer from 0 to %d.", GB_MAX_SHARD_ID)));

	/* Floor division: the millisecond that contains ts. */
	pg_ms = ts / 1000 - ((ts % 1000 < 0) ? 1 : 0);
	ms = pg_ms - GB_EPOCH_PG_MS;
	if (ms < 0 || ms > GB_MAX_TIME_MS)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("gb_id_from_time: %s is outside the range of gb_scale IDs",
						timestamptz_to_str(ts)),
				 errhint("IDs cover 2024-01-01 00:00:00+00 to 2093-09-06 15:47:35.551+00.")));
	PG_RETURN_INT64((ms << GB_TIME_SHIFT) | ((int64) shard << GB_SHARD_SHIFT));
}
