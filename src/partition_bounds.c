/*-------------------------------------------------------------------------
 *
 * partition_bounds.c
 *	  Periods and partition bounds: granularities, control column types,
 *	  time zones.
 *
 * A period is aligned in the registration's time zone and mapped to an
 * instant with the same rule at both of its ends, so consecutive partitions
 * share a bound: DST can widen a period or leave an empty one (skipped), never
 * a gap or an overlap.  Nothing here reads the session's TimeZone or
 * DateStyle: literals are written in ISO form with an explicit UTC offset.
 *
 *-------------------------------------------------------------------------
 */
#include "partition.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

static const Interval gb_granularity_intervals[] = {
	[GB_GRAN_HOUR] = {.time = USECS_PER_HOUR,.day = 0,.month = 0},
	[GB_GRAN_DAY] = {.time = 0,.day = 1,.month = 0},
	[GB_GRAN_WEEK] = {.time = 0,.day = 7,.month = 0},
	[GB_GRAN_MONTH] = {.time = 0,.day = 0,.month = 1},
	[GB_GRAN_QUARTER] = {.time = 0,.day = 0,.month = 3},
	[GB_GRAN_YEAR] = {.time = 0,.day = 0,.month = 12},
};

static const char *const gb_granularity_names[] = {
	[GB_GRAN_HOUR] = "1 hour",
	[GB_GRAN_DAY] = "1 day",
	[GB_GRAN_WEEK] = "1 week",
	[GB_GRAN_MONTH] = "1 month",
	[GB_GRAN_QUARTER] = "3 months",
	[GB_GRAN_YEAR] = "1 year",
};

/* date_trunc units that start each granularity's periods */
static const char *const gb_granularity_units[] = {
	[GB_GRAN_HOUR] = "hour",
	[GB_GRAN_DAY] = "day",
	[GB_GRAN_WEEK] = "week",
	[GB_GRAN_MONTH] = "month",
	[GB_GRAN_QUARTER] = "quarter",
	[GB_GRAN_YEAR] = "year",
};

bool
gb_granularity_from_interval(const Interval *iv, GbGranularity *out)
{
	for (int g = GB_GRAN_HOUR; g <= GB_GRAN_YEAR; g++)
	{
		const Interval *known = &gb_granularity_intervals[g];

		if (iv->time == known->time && iv->day == known->day && iv->month == known->month)
		{
			*out = (GbGranularity) g;
			return true;
		}
	}
	return false;
}

const Interval *
gb_granularity_interval(GbGranularity g)
{
	return &gb_granularity_intervals[g];
}

const char *
gb_granularity_name(GbGranularity g)
{
	return gb_granularity_names[g];
}

bool
gb_control_kind_from_type(Oid typid, GbControlKind *out)
{
	switch (typid)
	{
		case TIMESTAMPTZOID:
			*out = GB_CTL_TIMESTAMPTZ;
			return true;
		case TIMESTAMPOID:
			*out = GB_CTL_TIMESTAMP;
			return true;
		case DATEOID:
			*out = GB_CTL_DATE;
			return true;
		case INT8OID:
			*out = GB_CTL_SNOWFLAKE;
			return true;
		default:
			return false;
	}
}

/* Comparison of intervals as PostgreSQL orders them (a month is 30 days). */
int
gb_interval_cmp(const Interval *a, const Interval *b)
{
	return DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(a),
											 IntervalPGetDatum(b)));
}

static Timestamp gb_to_local(const char *tz, TimestampTz t);
static TimestampTz gb_from_local(const char *tz, Timestamp local);

/*
 * T plus or minus IV as timestamptz arithmetic does it, but in time zone TZ
 * rather than the session's: months and days on the local calendar, then the
 * time part in real elapsed time.
 */
TimestampTz
gb_time_add(const char *tz, TimestampTz t, const Interval *iv, bool subtract)
{
	Interval	calendar = {.time = 0,.day = iv->day,.month = iv->month};
	PGFunction	fn = subtract ? timestamp_mi_interval : timestamp_pl_interval;
	TimestampTz result = t;

	if (iv->day != 0 || iv->month != 0)
	{
		Timestamp	local = gb_to_local(tz, t);

		local = DatumGetTimestamp(DirectFunctionCall2(fn, TimestampGetDatum(local),
													  IntervalPGetDatum(&calendar)));
		result = gb_from_local(tz, local);
	}
	return subtract ? result - iv->time : result + iv->time;
}

static Timestamp
gb_to_local(const char *tz, TimestampTz t)
{
	return DatumGetTimestamp(DirectFunctionCall2(timestamptz_zone, CStringGetTextDatum(tz),
												 TimestampTzGetDatum(t)));
}

static TimestampTz
gb_from_local(const char *tz, Timestamp local)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone, CStringGetTextDatum(tz),
												   TimestampGetDatum(local)));
}

/* Raises 22023 naming the zone when PostgreSQL does not know it. */
void
gb_check_time_zone(const char *tz)
{
	(void) gb_to_local(tz, 0);
}

static bool
gb_kind_is_local(GbControlKind kind)
{
	return kind == GB_CTL_TIMESTAMP || kind == GB_CTL_DATE;
}

static int64
gb_snowflake_from_time(TimestampTz t)
{
	int64		ms = t / 1000 - GB_EPOCH_PG_MS;

	/* floor division, so that an instant before a millisecond maps below it */
	if (t < 0 && t % 1000 != 0)
		ms--;
	if (ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("partition bound %s is before the snowflake epoch 2024-01-01 00:00:00+00",
						DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(t)))),
				 errhint("Snowflake IDs start at 2024-01-01; choose a later start_at.")));
	if (ms > GB_MAX_TIME_MS)
		ms = GB_MAX_TIME_MS;
	return ms << GB_TIME_SHIFT;
}

int64
gb_key_from_time(const GbPeriodCtx *ctx, TimestampTz t)
{
	if (gb_kind_is_local(ctx->kind))
		return gb_to_local(ctx->time_zone, t);
	if (ctx->kind == GB_CTL_SNOWFLAKE)
		return gb_snowflake_from_time(t);
	return t;
}

TimestampTz
gb_time_from_key(const GbPeriodCtx *ctx, int64 key)
{
	if (gb_kind_is_local(ctx->kind))
		return gb_from_local(ctx->time_zone, key);
	if (ctx->kind == GB_CTL_SNOWFLAKE)
		return gb_ms_to_timestamptz(key >> GB_TIME_SHIFT);
	return key;
}

/*
 * Hours of instant-valued columns are counted in real time: an hour that DST
 * repeats is two partitions, one it skips is none.  Their periods start at an
 * instant; every other period starts at a local time.
 */
static bool
gb_periods_are_instants(const GbPeriodCtx *ctx)
{
	return ctx->granularity == GB_GRAN_HOUR && !gb_kind_is_local(ctx->kind);
}

/* Microseconds from START back to the local hour its clock reads in TZ. */
static int64
gb_past_local_hour(const char *tz, TimestampTz t)
{
	Timestamp	local = gb_to_local(tz, t);
	Timestamp	hour = DatumGetTimestamp(DirectFunctionCall2(timestamp_trunc, CStringGetTextDatum("hour"),
															 TimestampGetDatum(local)));

	return local - hour;
}

static int64
gb_utc_offset(const char *tz, TimestampTz t)
{
	return gb_to_local(tz, t) - t;
}

/*
 * The first instant in (BEFORE, AFTER] at which TZ's UTC offset is no longer
 * the one it has at BEFORE; the caller knows it differs at AFTER.  A binary
 * search: at most 64 steps, about 32 within an hour.
 */
static TimestampTz
gb_offset_change(const char *tz, TimestampTz before, TimestampTz after)
{
	int64		offset = gb_utc_offset(tz, before);

	while (after - before > 1)
	{
		TimestampTz mid = before + (after - before) / 2;

		CHECK_FOR_INTERRUPTS();
		if (gb_utc_offset(tz, mid) == offset)
			before = mid;
		else
			after = mid;
	}
	return after;
}

/*
 * Hour periods of instants: a period starts where the local clock reads a
 * whole hour and where the zone's offset changes.  A shift of a whole number
 * of hours lands on a whole hour; one of 30 minutes (Lord Howe) does not, and
 * without the second rule the hours on either side of it would overlap or
 * leave a gap.
 */
static TimestampTz
gb_instant_hour_of(const char *tz, TimestampTz t)
{
	TimestampTz start = t - gb_past_local_hour(tz, t);

	if (gb_utc_offset(tz, start) != gb_utc_offset(tz, t))
		start = gb_offset_change(tz, start, t);
	return start;
}

static TimestampTz
gb_instant_hour_next(const char *tz, TimestampTz start)
{
	TimestampTz next = start + USECS_PER_HOUR - gb_past_local_hour(tz, start);

	if (gb_utc_offset(tz, next) != gb_utc_offset(tz, start))
		next = gb_offset_change(tz, start, next);
	return next;
}

/* The key where the period beginning at START begins. */
int64
gb_period_lower(const GbPeriodCtx *ctx, Timestamp start)
{
	if (gb_periods_are_instants(ctx))
		return gb_key_from_time(ctx, start);
	if (gb_kind_is_local(ctx->kind))
		return start;
	return gb_key_from_time(ctx, gb_from_local(ctx->time_zone, start));
}

Timestamp
gb_period_next(const GbPeriodCtx *ctx, Timestamp start)
{
	if (gb_periods_are_instants(ctx))
		return gb_instant_hour_next(ctx->time_zone, start);
	return DatumGetTimestamp(DirectFunctionCall2(timestamp_pl_interval, TimestampGetDatum(start),
												 IntervalPGetDatum(&gb_granularity_intervals[ctx->granularity])));
}

static Timestamp
gb_period_prev(const GbPeriodCtx *ctx, Timestamp start)
{
	return DatumGetTimestamp(DirectFunctionCall2(timestamp_mi_interval, TimestampGetDatum(start),
												 IntervalPGetDatum(&gb_granularity_intervals[ctx->granularity])));
}

/* Steps gb_period_of_key may take from the truncated time to the key's period. */
#define GB_PERIOD_MAX_STEPS 8

static void gb_no_period(int64 key) pg_attribute_noreturn();

static void
gb_no_period(int64 key)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("control value " INT64_FORMAT " (as a key) has no partition period", key),
			 errhint("It is too near the end of its type's range; such rows stay in the default partition.")));
}

/* Start of the period that holds KEY: lower(start) <= key < lower(next). */
Timestamp
gb_period_of_key(const GbPeriodCtx *ctx, int64 key)
{
	TimestampTz instant = 0;
	Timestamp	local;
	Timestamp	start;
	int			steps = 0;

	/* infinity has no period: stepping from it would never reach the key */
	if (ctx->kind != GB_CTL_SNOWFLAKE && TIMESTAMP_NOT_FINITE(key))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("control value %s has no partition period", key < 0 ? "-infinity" : "infinity"),
				 errhint("Rows at infinity stay in the default partition.")));
	if (gb_kind_is_local(ctx->kind))
		local = key;
	else
	{
		instant = ctx->kind == GB_CTL_SNOWFLAKE ? gb_ms_to_timestamptz(key >> GB_TIME_SHIFT) : key;
		local = gb_to_local(ctx->time_zone, instant);
	}
	start = DatumGetTimestamp(DirectFunctionCall2(timestamp_trunc,
												  CStringGetTextDatum(gb_granularity_units[ctx->granularity]),
												  TimestampGetDatum(local)));
	if (gb_periods_are_instants(ctx))
		return gb_instant_hour_of(ctx->time_zone, instant);
	/*
	 * An ambiguous local time can map its period's start past the key: a step
	 * or two corrects that.  More steps mean arithmetic that does not advance
	 * (a bound clamped at the end of the type's range), never an answer.
	 */
	while (gb_period_lower(ctx, start) > key)
	{
		CHECK_FOR_INTERRUPTS();
		if (++steps > GB_PERIOD_MAX_STEPS)
			gb_no_period(key);
		start = gb_period_prev(ctx, start);
	}
	while (gb_period_lower(ctx, gb_period_next(ctx, start)) <= key)
	{
		CHECK_FOR_INTERRUPTS();
		if (++steps > GB_PERIOD_MAX_STEPS)
			gb_no_period(key);
		start = gb_period_next(ctx, start);
	}
	return start;
}

/* A bound as SQL: ISO text with an explicit offset, or the ID itself. */
char *
gb_key_literal(const GbPeriodCtx *ctx, int64 key)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (ctx->kind == GB_CTL_SNOWFLAKE)
		return psprintf(INT64_FORMAT, key);
	if (timestamp2tm(key, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("partition bound out of range")));
	if (ctx->kind == GB_CTL_DATE)
		return psprintf("'%04d-%02d-%02d'::pg_catalog.date", tm.tm_year, tm.tm_mon, tm.tm_mday);
	return psprintf("'%04d-%02d-%02d %02d:%02d:%02d.%06d%s'::pg_catalog.%s",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
					(int) fsec, ctx->kind == GB_CTL_TIMESTAMP ? "" : "+00",
					ctx->kind == GB_CTL_TIMESTAMP ? "timestamp" : "timestamptz");
}

/* The name suffix of the period starting at local START. */
char *
gb_period_suffix(const GbPeriodCtx *ctx, Timestamp start)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (gb_periods_are_instants(ctx))
		start = gb_to_local(ctx->time_zone, start);
	if (timestamp2tm(start, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("partition period out of range")));
	switch (ctx->granularity)
	{
		case GB_GRAN_HOUR:
			return psprintf("%04d%02d%02d_%02d", tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour);
		case GB_GRAN_DAY:
		case GB_GRAN_WEEK:
			return psprintf("%04d%02d%02d", tm.tm_year, tm.tm_mon, tm.tm_mday);
		case GB_GRAN_MONTH:
		case GB_GRAN_QUARTER:
			return psprintf("%04d%02d", tm.tm_year, tm.tm_mon);
		case GB_GRAN_YEAR:
			return psprintf("%04d", tm.tm_year);
	}
	return NULL;				/* keep compilers quiet */
}

/*
 * The first piece of [LO, HI) that no range of B covers, in *GAP_LO and
 * *GAP_HI; false when B covers all of it.  Partitions made under another
 * granularity can cover part of a period: the rest still needs a partition.
 */
bool
gb_bounds_first_gap(const GbTreeBounds *b, int64 lo, int64 hi, int64 *gap_lo, int64 *gap_hi)
{
	int64		from = lo;
	bool		advanced = true;

	/* each range can move FROM past itself once, so this ends */
	while (advanced && from < hi)
	{
		advanced = false;
		for (int i = 0; i < b->nranges; i++)
		{
			if (b->ranges[i].lo <= from && from < b->ranges[i].hi)
			{
				from = b->ranges[i].hi;
				advanced = true;
			}
		}
	}
	if (from >= hi)
		return false;
	*gap_lo = from;
	*gap_hi = hi;
	for (int i = 0; i < b->nranges; i++)
		if (b->ranges[i].lo > from && b->ranges[i].lo < *gap_hi)
			*gap_hi = b->ranges[i].lo;
	return true;
}

/*
 * The name suffix of a partition for [LO, HI): its period's, or for a piece
 * of a period (bridging partitions of another granularity) the local date of
 * LO, and its local time when that is not midnight.
 */
char *
gb_range_suffix(const GbPeriodCtx *ctx, int64 lo, int64 hi)
{
	Timestamp	start = gb_period_of_key(ctx, lo);
	Timestamp	local;
	struct pg_tm tm;
	fsec_t		fsec;

	if (gb_period_lower(ctx, start) == lo && gb_period_lower(ctx, gb_period_next(ctx, start)) == hi)
		return gb_period_suffix(ctx, start);
	local = gb_kind_is_local(ctx->kind) ? lo : gb_to_local(ctx->time_zone, gb_time_from_key(ctx, lo));
	if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("partition bound out of range")));
	if (tm.tm_hour == 0 && tm.tm_min == 0 && tm.tm_sec == 0 && fsec == 0)
		return psprintf("%04d%02d%02d", tm.tm_year, tm.tm_mon, tm.tm_mday);
	return psprintf("%04d%02d%02d_%02d%02d", tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min);
}
