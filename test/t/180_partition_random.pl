# A randomized guardrail for the partition manager (issue 14): random steps on
# several registered tables, and after every step the invariants that must
# always hold:
#  - every committed row is present exactly once, with the value it was given
#    (the test keeps a model of the committed rows and compares it with a full
#    read of each table and of the partitions retention detached or
#    archived); a row may vanish only in a maintenance pass that drops
#    partitions, and only if its value lies before that pass's retention
#    cutoff;
#  - partition_status.at_risk is true exactly when some time tree leaves an
#    instant of [now, now + premake) without a partition;
#  - after a pass (until the clock moves): no instant of [now, now + premake)
#    is uncovered in any time tree (a row inserted there lands in a
#    non-default partition, which probes check), no partition lies wholly
#    before now - retention, and (for a pass that may commit) no row waits
#    in a default partition unless no partition could hold it, and
#    last_error says nothing else.
# The steps: inserts of any value (infinities, 4713 BC, year 1, year 294276,
# snowflake IDs before the epoch or at the end of their range), UPDATEs that
# move rows between periods and tenants, deletes, maintenance passes (CALL
# outside or inside a transaction block, or for one table), gb_tenant_dedicate
# on a LIST-by-tenant table, retention changes and clock jumps (forward and
# back) through gb_scale.test_now.  The tables: timestamptz daily in Berlin,
# snowflake IDs hourly with 2 hash buckets, date monthly with 3 hash buckets
# in Sao Paulo, a LIST-by-tenant table daily in Kathmandu (a 45-minute
# offset), and a timestamp weekly table without a default partition.
#
# Bounded in time: GB_FUZZ_SECONDS (default 60).  Seeded: GB_FUZZ_SEED
# replays a run; the seed is printed at the start and on failure, with the
# last steps.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX qw(strftime);
use Time::HiRes qw(time);

my $seconds = $ENV{GB_FUZZ_SECONDS} // 60;
my $seed = $ENV{GB_FUZZ_SEED} // (int(time * 1000) ^ $$) % 2_000_000_000;
srand($seed);
note("GB_FUZZ_SEED=$seed GB_FUZZ_SECONDS=$seconds");

my $node = PostgreSQL::Test::Cluster->new('random');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 1
timezone = 'UTC'
datestyle = 'ISO, YMD'
log_min_messages = warning
log_min_error_statement = panic
});
$node->start;

# name => schema (the parent is <schema>.ev), control column and its kind,
# registration
my %T = (
	ts => {
		col => 'at', kind => 'timestamptz', gran => '1 day', premake => '7 days',
		retention => '30 days', tz => 'Europe/Berlin', default => 1,
		retentions => [ undef, '3 days', '30 days', '3 months' ],
	},
	sf => {
		col => 'id', kind => 'snowflake', gran => '1 hour', premake => '6 hours',
		retention => '1 day', tz => 'UTC', default => 1, buckets => 2,
		retentions => [ '12 hours', '1 day', '2 days' ],
	},
	dt => {
		col => 'day', kind => 'date', gran => '1 month', premake => '3 months',
		retention => undef, tz => 'America/Sao_Paulo', default => 1, buckets => 3,
		retentions => [ undef, '2 months', '1 year' ],
	},
	ls => {
		col => 'at', kind => 'timestamptz', gran => '1 day', premake => '5 days',
		retention => '20 days', tz => 'Asia/Kathmandu', default => 1, list => 1,
		retentions => [ undef, '2 days', '20 days', '2 months' ],
	},
	nd => {
		col => 'at', kind => 'timestamp', gran => '1 week', premake => '4 weeks',
		retention => '8 weeks', tz => 'America/New_York', default => 0,
		retentions => [ undef, '2 weeks', '8 weeks', '6 months' ],
	},
);
my @names = sort keys %T;
my %sqltype = (timestamptz => 'timestamptz', timestamp => 'timestamp', date => 'date',
	snowflake => 'bigint');
my @tenants = (1 .. 6);

# the clock of maintenance, in seconds since 1970
my $now = 1781518620;    # 2026-06-15 10:17:00 UTC
sub now_text { return strftime('%Y-%m-%d %H:%M:%S+00', gmtime($now)); }

# Helpers in SQL: the full read, the coverage of the horizon, retention and
# probes.  gb_scale itself is not used to compute any of it.
my $setup = q{
CREATE EXTENSION gb_scale;
CREATE TABLE fz_tables (name text PRIMARY KEY, parent regclass, sch text, arch text,
                        col text, kind text);

-- every row of a table: in its tree (and whether in a default partition), or
-- in a table that retention detached or archived
CREATE FUNCTION fz_rows() RETURNS TABLE (tbl text, rid bigint, tenant bigint, v text,
                                          is_default boolean, retired boolean)
LANGUAGE plpgsql AS $f$
DECLARE t record; r record;
  defaults oid[] := ARRAY(SELECT partdefid FROM pg_partitioned_table WHERE partdefid <> 0);
BEGIN
  FOR t IN SELECT * FROM fz_tables ORDER BY name LOOP
    RETURN QUERY EXECUTE format(
      'SELECT %L::text, x.rid, x.tenant, x.%I::text, x.tableoid = ANY ($1), false FROM %s x',
      t.name, t.col, t.parent) USING defaults;
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN (t.sch, t.arch) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND c.oid <> t.parent::oid ORDER BY c.oid LOOP
      RETURN QUERY EXECUTE format('SELECT %L::text, x.rid, x.tenant, x.%I::text, false, true FROM %s x',
                                  t.name, t.col, r.rel);
    END LOOP;
  END LOOP;
END $f$;

-- T plus or minus IV as maintenance counts it: months and days on the local
-- calendar of TZ, then the time part in elapsed time
CREATE FUNCTION fz_add(t timestamptz, iv interval, tz text, sign int) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $f$
  SELECT CASE WHEN date_trunc('day', iv) = interval '0' THEN t
              ELSE ((t AT TIME ZONE tz) + sign * date_trunc('day', iv)) AT TIME ZONE tz END
         + sign * (iv - date_trunc('day', iv))
$f$;

-- per time tree: how far partitions run without a gap from TN, and the horizon
CREATE FUNCTION fz_cover(tn timestamptz)
RETURNS TABLE (tbl text, tree bigint, reach timestamptz, horizon timestamptz, at_risk boolean)
LANGUAGE plpgsql AS $f$
DECLARE t record; l record; cur bigint;
BEGIN
  FOR t IN SELECT f.name, f.parent, c.premake, c.time_zone, s.at_risk
             FROM fz_tables f JOIN gb_scale.partition_config c ON c.parent = f.parent
             JOIN gb_scale.partition_status s ON s.parent = f.parent ORDER BY f.name LOOP
    tbl := t.name; at_risk := t.at_risk; horizon := fz_add(tn, t.premake, t.time_zone, 1);
    cur := NULL;
    -- in order of lower bounds, each tree's partitions extend the reach
    -- while they start at or before it
    FOR l IN SELECT coalesce(p.tenant_id, -1) AS tr, coalesce(p.from_time, '-infinity') AS lo,
                    coalesce(p.to_time, 'infinity') AS hi
               FROM gb_partition_list(t.parent) p WHERE NOT p.is_default ORDER BY 1, 2 LOOP
      IF cur IS DISTINCT FROM l.tr THEN
        IF cur IS NOT NULL THEN RETURN NEXT; END IF;
        cur := l.tr; tree := l.tr; reach := tn;
      END IF;
      IF l.lo <= reach AND l.hi > reach THEN reach := l.hi; END IF;
    END LOOP;
    IF cur IS NOT NULL THEN RETURN NEXT; END IF;
  END LOOP;
END $f$;

-- partitions still attached although their whole period is past retention
CREATE FUNCTION fz_expired(tn timestamptz) RETURNS TABLE (tbl text, part regclass, to_time timestamptz)
LANGUAGE sql AS $f$
  SELECT f.name, l.partition, l.to_time
    FROM fz_tables f JOIN gb_scale.partition_config c ON c.parent = f.parent
    CROSS JOIN LATERAL gb_partition_list(f.parent) l
   WHERE c.retention IS NOT NULL AND NOT l.is_default
     AND l.to_time <= fz_add(tn, c.retention, c.time_zone, -1)
$f$;

-- a control value as an instant (NULL when it has none)
CREATE FUNCTION fz_instant(kind text, tz text, v text) RETURNS timestamptz
LANGUAGE plpgsql AS $f$
BEGIN
  IF kind = 'snowflake' THEN
    RETURN CASE WHEN v::bigint >= 0 THEN gb_id_timestamp(v::bigint) END;
  ELSIF kind = 'date' THEN
    RETURN v::date::timestamp AT TIME ZONE tz;
  ELSIF kind = 'timestamp' THEN
    RETURN v::timestamp AT TIME ZONE tz;
  END IF;
  RETURN v::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR numeric_value_out_of_range THEN
  RETURN NULL;
END $f$;

-- whether a partition could hold value V (else it stays in a default partition)
CREATE FUNCTION fz_placeable(kind text, v text) RETURNS boolean
LANGUAGE plpgsql AS $f$
BEGIN
  IF kind = 'snowflake' THEN
    RETURN v::bigint >= 0 AND v::bigint < (2199023255551 - 2 * 366 * 86400000::bigint) * 4194304;
  ELSIF kind = 'timestamptz' THEN
    RETURN isfinite(v::timestamptz) AND v::timestamptz >= '0002-01-01 00:00+00'
           AND v::timestamptz < '294275-01-01 00:00+00';
  ELSIF kind = 'date' THEN
    RETURN isfinite(v::date) AND v::date >= '0002-01-01' AND v::date < '294275-01-01';
  END IF;
  RETURN isfinite(v::timestamp) AND v::timestamp >= '0002-01-01' AND v::timestamp < '294275-01-01';
END $f$;

-- whether a row of NAME with value V may have been retired by a pass at TN:
-- a value a partition can hold, before the retention cutoff
CREATE FUNCTION fz_may_retire(name text, v text, tn timestamptz) RETURNS boolean
LANGUAGE sql AS $f$
  SELECT c.retention IS NOT NULL AND fz_placeable(f.kind, v) AND i < fz_add(tn, c.retention, c.time_zone, -1)
    FROM fz_tables f JOIN gb_scale.partition_config c ON c.parent = f.parent
    CROSS JOIN LATERAL fz_instant(f.kind, c.time_zone, v) i
   WHERE f.name = $1
$f$;

-- probes: a row at random instants of [tn, horizon) of each tree must land in
-- a non-default partition (the caller rolls back)
CREATE FUNCTION fz_probe(tn timestamptz, tries int, names text[]) RETURNS SETOF text
LANGUAGE plpgsql AS $f$
DECLARE t record; at timestamptz; v text; rel regclass; tenant bigint;
BEGIN
  FOR t IN SELECT f.*, c.time_zone, c.layout, x.horizon, x.tree
             FROM fz_tables f JOIN gb_scale.partition_config c ON c.parent = f.parent
             JOIN fz_cover(tn) x ON x.tbl = f.name WHERE f.name = ANY (names) ORDER BY f.name, x.tree LOOP
    FOR i IN 1 .. tries LOOP
      at := tn + random() * (t.horizon - tn);
      v := CASE t.kind WHEN 'snowflake' THEN gb_id_from_time(at)::text
                       WHEN 'date' THEN (at AT TIME ZONE t.time_zone)::date::text
                       WHEN 'timestamp' THEN (at AT TIME ZONE t.time_zone)::text
                       ELSE at::text END;
      tenant := CASE WHEN t.tree >= 0 THEN t.tree ELSE 100 + (random() * 5)::int END;
      BEGIN
        EXECUTE format('INSERT INTO %s (rid, tenant, %I) VALUES (-1, $1, $2::%s) RETURNING tableoid::regclass',
                       t.parent, t.col, CASE t.kind WHEN 'snowflake' THEN 'bigint' ELSE t.kind END)
          INTO rel USING tenant, v;
        IF EXISTS (SELECT FROM pg_inherits i JOIN pg_partitioned_table p ON p.partrelid = i.inhparent
                    WHERE i.inhrelid = rel AND p.partdefid = rel) THEN
          RETURN NEXT format('%s: a row at %s (tenant %s) went to default partition %s', t.name, v, tenant, rel);
        END IF;
      EXCEPTION WHEN check_violation THEN
        RETURN NEXT format('%s: a row at %s (tenant %s) has no partition: %s', t.name, v, tenant, SQLERRM);
      END;
    END LOOP;
  END LOOP;
END $f$;
};

my $reg = "SET gb_scale.test_now = '" . now_text() . "';\n";
for my $n (@names)
{
	my $t = $T{$n};
	my $type = $sqltype{ $t->{kind} };
	my $by = $t->{list} ? 'LIST (tenant)' : "RANGE ($t->{col})";
	$t->{parent} = "s_$n.ev";
	$t->{mode} = 'drop';
	$reg .= "CREATE SCHEMA s_$n; CREATE SCHEMA a_$n;\n"
	  . "CREATE TABLE s_$n.ev (rid bigint NOT NULL, tenant bigint NOT NULL, $t->{col} $type NOT NULL,"
	  . " note text DEFAULT 'x') PARTITION BY $by;\n"
	  . "CREATE INDEX ON s_$n.ev (rid);\n"
	  . "INSERT INTO fz_tables VALUES ('$n', 's_$n.ev', 's_$n', 'a_$n', '$t->{col}', '$t->{kind}');\n"
	  . "SELECT gb_partition_create('s_$n.ev', '$t->{col}', '$t->{gran}', premake => '$t->{premake}', "
	  . "retention => " . (defined $t->{retention} ? "'$t->{retention}'" : 'NULL')
	  . ", time_zone => '$t->{tz}', default_partition => " . ($t->{default} ? 'true' : 'false')
	  . ($t->{list} || $t->{buckets} ? ", tenant_column => 'tenant'" : '')
	  . ($t->{buckets} ? ", tenant_buckets => $t->{buckets}" : '') . ");\n";
}
$node->safe_psql('postgres', $setup . $reg);

my %model;          # name => rid => { tenant, v }
my %retired;        # name => rid => 1: in a table retention detached or archived
my %dedicated;      # tenant => 1 (table ls)
my $next_rid = 1;
my %covered = map { $_ => 1 } @names;    # a pass has run since the clock last moved
my @log;            # the last steps, for a failure's report
my $failed = 0;
my $steps = 0;
my %count;

sub fail_run
{
	my ($what) = @_;
	fail($what);
	diag("GB_FUZZ_SEED=$seed (step $steps, clock " . now_text() . "); last steps:\n  "
		  . join("\n  ", @log[ ($#log > 25 ? $#log - 25 : 0) .. $#log ]));
	$failed = 1;
	return;
}

# One session runs every step and check (a new one for each would rebuild its
# caches of hundreds of partitions every time).
my $session = $node->background_psql(
	'postgres',
	on_error_stop => 0,
	extra_params => [ '-v', 'VERBOSITY=verbose' ],
	timeout => 600);
$session->set_query_timer_restart();

# Run SQL with the test clock; returns (stdout, error state, error message).
sub run
{
	my ($sql) = @_;
	my $t0 = time;
	my $token = async_start($session, "SET gb_scale.test_now = '" . now_text() . "';\n$sql");
	my ($out, $err) = async_wait($session, $token, 600);
	diag(sprintf('%.2f s: %s', time - $t0, substr($sql, 0, 100))) if $ENV{GB_FUZZ_TRACE};
	my ($state, $msg) = $err =~ /ERROR:\s+([0-9A-Z]{5}):\s+([^\n]*)/;
	fail_run("psql failed: $err") if !$state && $err =~ /FATAL|PANIC|server closed|no connection/;
	$out =~ s/\r?\n\z//;
	return ($out, $state, $msg);
}

sub pick { return $_[ int(rand(@_)) ]; }

# A control value of table T, as SQL.
sub random_value
{
	my ($t) = @_;
	my $r = rand();
	my $kind = $t->{kind};
	my $offset_s;
	if ($r < 0.6)
	{
		# near the clock: inside and around the horizon and the retention
		my $span = { '1 hour' => 4 * 86400, '1 day' => 45 * 86400, '1 week' => 100 * 86400,
			'1 month' => 400 * 86400 }->{ $t->{gran} };
		$offset_s = int(rand(2 * $span)) - $span;
	}
	elsif ($r < 0.8)
	{
		# anywhere from 1990 to 2100 (snowflake IDs: from their epoch, 2024, to 2092)
		$offset_s = $kind eq 'snowflake' ? int(rand(68 * 365.25 * 86400)) + 1704067200 - $now
		  : int(rand(110 * 365.25 * 86400)) + 631152000 - $now;
	}
	if (defined $offset_s)
	{
		my $at = strftime('%Y-%m-%d %H:%M:%S+00', gmtime($now + $offset_s));
		return "gb_id_from_time('$at') + " . int(rand(4_000_000)) if $kind eq 'snowflake';
		return "('$at'::timestamptz AT TIME ZONE '$t->{tz}')::date" if $kind eq 'date';
		return "('$at'::timestamptz AT TIME ZONE '$t->{tz}')" if $kind eq 'timestamp';
		return "'$at'::timestamptz";
	}
	# the ends of the type's range
	if ($kind eq 'snowflake')
	{
		return pick('-1', '-9223372036854775808', '0', '9223372036854775807',
			'(2199023255551 - 2 * 366 * 86400000::bigint) * 4194304',
			'(2199023255551 - 2 * 366 * 86400000::bigint) * 4194304 - 1',
			"gb_id_from_time('2092-06-01 00:00+00')");
	}
	if ($kind eq 'date')
	{
		return "'" . pick('infinity', '-infinity', '4713-01-01 BC', '0001-01-01', '0002-01-01',
			'5874897-12-31', '294274-12-31', '294275-01-01', '294276-12-31') . "'::date";
	}
	my $sfx = $kind eq 'timestamptz' ? '+00' : '';
	return "'" . pick('infinity', '-infinity', "4713-01-01 00:00:00$sfx BC", "0001-01-01 00:00:00$sfx",
		"0002-01-01 00:00:00$sfx", "0002-01-01 12:00:00$sfx", "294276-12-31 23:00:00$sfx",
		"294276-12-31 23:59:59.999999$sfx", "294275-01-01 00:00:00$sfx",
		"294274-12-31 23:59:59$sfx") . "'::$sqltype{$kind}";
}

# An error of a write is fine only when no partition holds the value.
sub write_error_ok
{
	my ($t, $state) = @_;
	return !$t->{default} && $state eq '23514';
}

sub live_rids
{
	my ($n) = @_;
	return sort { $a <=> $b } grep { !$retired{$n}{$_} } keys %{ $model{$n} };
}

# Compare the full read with the model.  PASSED: the tables a pass just
# maintained, whose rows may have been retired by it (and in drop mode
# vanished) when their value is before its retention cutoff.
sub check_rows
{
	my ($passed, $nonatomic) = @_;
	my ($out, $state, $msg) = run(
		q{SELECT tbl, rid, tenant, v, is_default, retired, fz_placeable(f.kind, v)
		    FROM fz_rows() JOIN fz_tables f ON f.name = tbl ORDER BY 1, 2});
	return fail_run("full read failed: $state $msg") if $state;
	my %seen;
	for my $line (split /\n/, $out)
	{
		my ($n, $rid, $tenant, $v, $is_default, $is_retired, $placeable) = split /\|/, $line;
		next if $rid < 0;
		if ($seen{$n}{$rid}++)
		{
			return fail_run("$n: row $rid is there twice");
		}
		my $m = $model{$n}{$rid};
		return fail_run("$n: row $rid ($v) is there but was never committed or was deleted")
		  unless $m;
		return fail_run("$n: row $rid has value $v, tenant $tenant; committed: $m->{v}, tenant $m->{tenant}")
		  if $v ne $m->{v} || $tenant != $m->{tenant};
		if ($is_retired eq 't' && !$retired{$n}{$rid})
		{
			return fail_run("$n: row $rid ($v) was retired outside a pass") unless $passed->{$n};
			my ($ok) = run("SELECT fz_may_retire('$n', '$v', '" . now_text() . "')");
			return fail_run("$n: row $rid ($v) was retired, but it is within retention $T{$n}{retention}")
			  unless $ok eq 't';
			$retired{$n}{$rid} = 1;
		}
		return fail_run("$n: row $rid ($v) is back in the table after it was retired")
		  if $is_retired eq 'f' && $retired{$n}{$rid};
		return fail_run("$n: row $rid ($v) waits in a default partition after a pass that may commit")
		  if $nonatomic && $passed->{$n} && $is_default eq 't' && $placeable eq 't';
	}
	for my $n (@names)
	{
		for my $rid (keys %{ $model{$n} })
		{
			next if $seen{$n}{$rid};
			my $v = $model{$n}{$rid}{v};
			return fail_run("$n: committed row $rid ($v) is gone outside a pass") unless $passed->{$n};
			my ($ok) = run("SELECT fz_may_retire('$n', '$v', '" . now_text() . "')");
			return fail_run("$n: committed row $rid ($v) is gone, but it is within retention "
				  . ($T{$n}{retention} // 'NULL') . " (mode $T{$n}{mode})")
			  unless $ok eq 't' && $T{$n}{mode} eq 'drop';
			delete $model{$n}{$rid};
			delete $retired{$n}{$rid};
		}
	}
	return;
}

# at_risk tells the truth; after a pass, the horizon is covered, nothing
# expired is left, probes land in partitions, and last_error is clean.
sub check_partitions
{
	my ($passed, $nonatomic) = @_;
	my $tn = now_text();
	my ($out, $state, $msg) = run("SELECT tbl, tree, reach, horizon, reach >= horizon, at_risk FROM fz_cover('$tn')");
	return fail_run("fz_cover failed: $state $msg") if $state;
	my %risk;
	my %short;
	for my $line (split /\n/, $out)
	{
		my ($n, $tree, $reach, $horizon, $ok, $at_risk) = split /\|/, $line;
		$risk{$n} = $at_risk;
		if ($ok ne 't')
		{
			$short{$n} = 1;
			return fail_run("$n: tree $tree has no partition at $reach, before the horizon $horizon")
			  if $covered{$n};
		}
	}
	for my $n (@names)
	{
		my $want = $short{$n} ? 't' : 'f';
		return fail_run("$n: partition_status.at_risk is '$risk{$n}', the partitions say '$want'")
		  if ($risk{$n} // '') ne $want;
	}
	return unless %$passed;
	my $only = join(', ', map { "'$_'" } sort keys %$passed);
	($out, $state, $msg) = run("SELECT tbl, part, to_time FROM fz_expired('$tn') WHERE tbl IN ($only)");
	return fail_run("fz_expired failed: $state $msg") if $state;
	return fail_run("partitions past retention after a pass: $out") if $out ne '';
	($out, $state, $msg) = run("BEGIN; SELECT setseed(" . rand() . "); SELECT * FROM fz_probe('$tn', 2, ARRAY[$only]); ROLLBACK;");
	return fail_run("fz_probe failed: $state $msg") if $state;
	$out =~ s/^\s*\n//mg;
	return fail_run("probes after a pass: $out") if $out ne '';
	($out, $state, $msg) = run(
		q{SELECT f.name, c.last_error FROM fz_tables f JOIN gb_scale.partition_config c ON c.parent = f.parent
		   WHERE c.last_error IS NOT NULL AND c.last_error !~ 'no partition can hold'} . " AND f.name IN ($only)");
	return fail_run("last_error after a pass: $out") if $nonatomic && $out ne '';
	return;
}

my $deadline = time + $seconds;
my $max_steps = $ENV{GB_FUZZ_STEPS} // 1_000_000;
while (!$failed && time < $deadline && $steps < $max_steps)
{
	$steps++;
	my $r = rand(100);
	my $n = pick(@names);
	my $t = $T{$n};
	my ($passed, $nonatomic) = ({}, 0);
	my ($out, $state, $msg);

	if ($r < 35)
	{
		my $rid = $next_rid++;
		my $tenant = $t->{list} && rand() < 0.6 ? pick(@tenants) : 100 + int(rand(5));
		my $v = random_value($t);
		push @log, "insert $n rid $rid tenant $tenant value $v";
		($out, $state, $msg) = run("INSERT INTO $t->{parent} (rid, tenant, $t->{col}) VALUES ($rid, $tenant, $v) RETURNING $t->{col}::text");
		if ($state) { fail_run("insert into $n failed: $state $msg") unless write_error_ok($t, $state); }
		else { $model{$n}{$rid} = { tenant => $tenant, v => $out }; $log[-1] .= " = $out"; }
		$count{insert}++;
	}
	elsif ($r < 52)
	{
		my @live = live_rids($n);
		next unless @live;
		my $rid = pick(@live);
		my $v = random_value($t);
		push @log, "update $n rid $rid value $v (was $model{$n}{$rid}{v})";
		($out, $state, $msg) = run("UPDATE $t->{parent} SET $t->{col} = $v WHERE rid = $rid RETURNING $t->{col}::text");
		if ($state) { fail_run("update of $n failed: $state $msg") unless write_error_ok($t, $state); }
		elsif ($out eq '') { fail_run("update of $n row $rid found no row"); }
		else { $model{$n}{$rid}{v} = $out; $log[-1] .= " = $out"; }
		$count{update}++;
	}
	elsif ($r < 56)
	{
		$n = 'ls';
		$t = $T{$n};
		my @live = live_rids($n);
		next unless @live;
		my $rid = pick(@live);
		my $tenant = rand() < 0.5 ? pick(@tenants) : 100 + int(rand(5));
		push @log, "update $n rid $rid tenant $tenant (was $model{$n}{$rid}{tenant})";
		($out, $state, $msg) = run("UPDATE $t->{parent} SET tenant = $tenant WHERE rid = $rid RETURNING rid");
		if ($state) { fail_run("tenant update of $n failed: $state $msg"); }
		elsif ($out eq '') { fail_run("tenant update of $n row $rid found no row"); }
		else { $model{$n}{$rid}{tenant} = $tenant; }
		$count{move_tenant}++;
	}
	elsif ($r < 64)
	{
		my @live = live_rids($n);
		next unless @live;
		my $rid = pick(@live);
		push @log, "delete $n rid $rid";
		($out, $state, $msg) = run("DELETE FROM $t->{parent} WHERE rid = $rid RETURNING rid");
		if ($state) { fail_run("delete from $n failed: $state $msg"); }
		elsif ($out eq '') { fail_run("delete from $n row $rid found no row"); }
		else { delete $model{$n}{$rid}; }
		$count{delete}++;
	}
	elsif ($r < 78)
	{
		my $how = rand();
		my $sql = $how < 0.7 ? 'CALL gb_run_maintenance();'
		  : $how < 0.85 ? 'BEGIN; CALL gb_run_maintenance(); COMMIT;'
		  : "CALL gb_run_maintenance('$t->{parent}');";
		push @log, "pass: $sql";
		($out, $state, $msg) = run($sql);
		fail_run("maintenance failed: $state $msg") if $state;
		$passed = $how < 0.85 ? { map { $_ => 1 } @names } : { $n => 1 };
		$nonatomic = $how < 0.7 || $how >= 0.85;
		$covered{$_} = 1 for keys %$passed;
		$count{pass}++;
	}
	elsif ($r < 82)
	{
		my @free = grep { !$dedicated{$_} } @tenants;
		next unless @free;
		my $tenant = pick(@free);
		push @log, "gb_tenant_dedicate(s_ls.ev, $tenant)";
		($out, $state, $msg) = run("SELECT gb_tenant_dedicate('s_ls.ev', $tenant)");
		if ($state) { fail_run("gb_tenant_dedicate failed: $state $msg"); }
		else { $dedicated{$tenant} = 1; $log[-1] .= " moved $out"; }
		$count{dedicate}++;
	}
	elsif ($r < 88)
	{
		my $ret = pick(@{ $t->{retentions} });
		my $mode = pick('drop', 'drop', 'detach', 'archive');
		push @log, "gb_partition_retention($t->{parent}, " . ($ret // 'NULL') . ", $mode)";
		($out, $state, $msg) = run("SELECT gb_partition_retention('$t->{parent}', "
			  . (defined $ret ? "'$ret'" : 'NULL') . ", '$mode', 'a_$n')");
		if ($state) { fail_run("gb_partition_retention failed: $state $msg"); }
		else { $t->{retention} = $ret; $t->{mode} = $mode; }
		$count{retention}++;
	}
	else
	{
		# forward up to 20 days, back up to 12, within 2025-2030
		my $jump = int(rand(32 * 86400)) - 12 * 86400;
		$jump = -$jump if $now + $jump < 1735689600 || $now + $jump > 1893456000;
		$now += $jump;
		push @log, "clock " . ($jump >= 0 ? '+' : '') . sprintf('%.2f', $jump / 86400) . " days to " . now_text();
		%covered = () if $jump != 0;
		$count{clock}++;
	}
	last if $failed;
	check_rows($passed, $nonatomic);
	check_partitions($passed, $nonatomic) unless $failed;
}

ok(!$failed, "$steps random steps held every invariant (GB_FUZZ_SEED=$seed)");
note(join(', ', map { "$_ $count{$_}" } sort keys %count));
my $rows = 0;
$rows += scalar(keys %{ $model{$_} }) for @names;
note("rows committed and present at the end: $rows");

$session->quit;
$node->stop;
done_testing();
