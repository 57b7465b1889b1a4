# A real multi-shard deployment (issue 8): three PostgreSQL instances started
# by test/shards.sh (shards 1 USA, 4 DEU, 6 SGP, each with SHARD_ID in its
# server's environment and the same shard directory), then:
#  1. IDs made concurrently on every shard are unique, and gb_shard_for_id
#     names the shard that made each;
#  2. every shard routes the same tenants the same way (range tenants,
#     explicit map entries, P0002 for tenants no shard serves; and the same
#     ranges, hosts and ports in gb_shard_routes()), before and
#     after map changes made on shard 1 with gb_tenant_assign (or by hand)
#     and copied to the others with gb_shard_sync(<shard 1>); a session that
#     had already looked tenants up sees another session's sync;
#  3. a client that routes with gb_shard_for_tenant / gb_shard_connection and
#     then connects to that shard writes each tenant's rows to its shard
#     only: every shard holds only its own tenants, each tenant on one shard;
#  4. after gb_shard_fdw_setup() and gb_global_table(), a count through
#     gb_global equals the sum of the shards' counts, and WHERE shard_id = N
#     scans one shard only;
#  5. a tenant moved from shard 1 to shard 4 (gb_tenant_export, import with
#     jsonb_populate_record, gb_tenant_assign + gb_shard_sync,
#     gb_tenant_purge) loses and duplicates nothing, row for row;
#  6. with gb_tenant_isolation_enable and gb_set_tenant, an application
#     session of a shard sees and writes only its tenant's rows.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use File::Copy;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

my $script = "$FindBin::RealBin/../shards.sh";

# The PostgreSQL under test is the one on the PATH (as for every TAP test).
unless ($ENV{PG_CONFIG})
{
	for my $d (split /:/, $ENV{PATH})
	{
		if (-x "$d/pg_config") { $ENV{PG_CONFIG} = "$d/pg_config"; last; }
	}
}

my $base = PostgreSQL::Test::Utils::tempdir('shards');
$ENV{GB_SHARDS_DIR} = $base;
my $started = 0;

# Stop the shards however the test ends; keep their logs with the test's
# (the suite scans those for assertion failures and sanitizer reports).
END
{
	my $rc = $?;
	if ($started)
	{
		for my $log (glob("$base/shard*/server.log"))
		{
			my ($id) = $log =~ m{/shard(\d+)/server\.log$};
			copy($log, "$PostgreSQL::Test::Utils::log_path/150_multi_shard_shard$id.log");
		}
		system($script, 'stop');
	}
	$? = $rc;
}

my ($out, $err) = ('', '');
$started = 1;
IPC::Run::run([ $script, 'start', '3' ], '>', \$out, '2>', \$err)
  or BAIL_OUT("test/shards.sh start failed: $err");
note($err);
my %conn;    # shard id => libpq connection string from the script
my @shards = split / /, ($out =~ /^export GB_SHARDS='([^']*)'/m)[0] // '';
for my $s (@shards)
{
	($conn{$s}) = $out =~ /^export GB_SHARD_${s}_CONNSTR='([^']*)'/m;
}
is("@shards", '1 4 6', 'three shards started: 1 (USA), 4 (DEU), 6 (SGP)');
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $script, 'env' ], '>', \$o, '2>', \$e);
	is($o, $out, 'test/shards.sh env prints what start printed');
}
my %range = (1 => [ 1, 1_000_000 ], 4 => [ 3_000_001, 4_000_000 ], 6 => [ 5_000_001, 6_000_000 ]);

# --- psql helpers --------------------------------------------------------

# Run SQL (psql script) against a connection string; returns (exit code,
# stdout, stderr).  Unaligned, tuples only, stop at the first error.
sub psql_run
{
	my ($connstr, $sql) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run(
		[
			'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
			'-v', 'VERBOSITY=verbose', '-d', $connstr, '-f', '-'
		],
		'<', \$sql, '>', \$o, '2>', \$e, IPC::Run::timeout(600));
	chomp $o;
	return ($? >> 8, $o, $e);
}

sub conn_as { my ($s, $user) = @_; return "$conn{$s} user=" . ($user // 'postgres'); }

# SQL on shard S as postgres (or USER); dies with the error.
sub sq
{
	my ($s, $sql, $user) = @_;
	my ($r, $o, $e) = psql_run(conn_as($s, $user), $sql);
	die "shard $s: " . (length($sql) > 300 ? substr($sql, 0, 300) . '...' : $sql) . "\n$e" if $r;
	return $o;
}

# SQLSTATE of SQL expected to fail on shard S ('' when it succeeded).
sub q_state
{
	my ($s, $sql, $user) = @_;
	my ($r, $o, $e) = psql_run(conn_as($s, $user), $sql);
	return '' if $r == 0;
	my ($state) = $e =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return $state // "no SQLSTATE in: $e";
}

# Run a block of checks; an error (an API that is missing or fails) fails
# that block without stopping the others.
sub section
{
	my ($name, $code) = @_;
	note("--- $name");
	eval { $code->(); 1 } or fail("$name: $@");
	return;
}

# ------------------------------------------------------------------------
section 'deployment' => sub {
	for my $s (@shards)
	{
		is( sq($s, q{SELECT gb_current_shard() || ' ' || setting || ' ' || source
                      FROM pg_settings WHERE name = 'gb_scale.shard_id'}),
			"$s $s default",
			"shard $s: gb_current_shard() = $s, from SHARD_ID (no configured gb_scale.shard_id)");
		my $datadir = sq($s, 'SHOW data_directory');
		my ($pm) = do { open my $fh, '<', "$datadir/postmaster.pid" or die $!; <$fh> } =~ /^(\d+)/;
		my $environ = do { local $/; open my $fh, '<', "/proc/$pm/environ" or die $!; <$fh> };
		ok((grep { $_ eq "SHARD_ID=$s" } split /\0/, $environ),
			"shard $s: its postmaster runs with SHARD_ID=$s in its environment");
	}
	my $want = join "\n",
	  "1|USA|us-east-1|t|t|1|1000000|$conn{1}",
	  "4|DEU|eu-central-1|f|t|3000001|4000000|$conn{4}",
	  "6|SGP|ap-southeast-1|f|t|5000001|6000000|$conn{6}";
	my $cfg_sql = q{SELECT shard_id, region_code, datacenter, is_primary, is_active,
                           min_tenant_id, max_tenant_id, connection_string
                      FROM gb_scale.shard_config ORDER BY shard_id};
	my $all_sql = q{SELECT string_agg(c::text, E'\n' ORDER BY shard_id) FROM gb_scale.shard_config c};
	my $first = sq(1, $all_sql);
	for my $s (@shards)
	{
		is(sq($s, $cfg_sql), $want, "shard $s: shard_config as DESIGN.md lists the shards");
		is(sq($s, $all_sql), $first, "shard $s: the same shard_config rows as shard 1 (created_at included)");
	}
};

# ------------------------------------------------------------------------
section 'IDs made concurrently on every shard' => sub {
	my %ids;
	my @runs;
	for my $s (@shards)
	{
		my ($o, $e) = ('', '');
		my $sql = q{SELECT string_agg(gb_next_id()::text, ',') FROM generate_series(1, 20000)};
		push @runs, [ $s, \$o, \$e, IPC::Run::start(
			[ 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', conn_as($s), '-c', $sql ],
			'>', \$o, '2>', \$e) ];
	}
	for my $r (@runs)
	{
		my ($s, $o, $e, $h) = @$r;
		$h->finish or die "shard $s: $$e";
		chomp $$o;
		$ids{$s} = [ split /,/, $$o ];
		is(scalar @{ $ids{$s} }, 20000, "shard $s made 20000 IDs");
	}
	my %seen;
	my $dups = grep { $seen{$_}++ } map { @{ $ids{$_} } } @shards;
	is($dups, 0, 'no ID was made twice across the three shards');
	is(scalar(keys %seen), 60000, '60000 distinct IDs');
	# Each shard decodes every shard's IDs: the maker, always.
	my $values = join ',', map { my $s = $_; "($s, ARRAY[" . join(',', @{ $ids{$s} }) . ']::bigint[])' } @shards;
	for my $s (@shards)
	{
		is( sq($s, "SELECT string_agg(maker || ':' || decoded || ':' || n, ' ' ORDER BY maker, decoded)
                     FROM (SELECT maker, gb_shard_for_id(i) AS decoded, count(*) AS n
                             FROM (VALUES $values) v(maker, ids), unnest(ids) i GROUP BY 1, 2) t"),
			'1:1:20000 4:4:20000 6:6:20000',
			"shard $s: gb_shard_for_id names the shard that made each ID");
	}
};

# ------------------------------------------------------------------------
# Routing.  %map: explicit placements expected on every synced shard.
my %map;

# The shard for tenant T as the shards' ranges and %map say (undef: none).
sub expected_shard
{
	my ($t, $m) = @_;
	$m //= \%map;
	return $m->{$t} if exists $m->{$t};
	for my $s (@shards)
	{
		return $s if $t >= $range{$s}[0] && $t <= $range{$s}[1];
	}
	return undef;
}

my @probe = (1, 500, 777, 888, 1_000_000, 3_000_001, 3_000_002, 3_999_999, 5_000_001, 6_000_000);
my @unserved = (0, -1, 1_000_001, 2_500_000, 4_000_001, 4_500_000, 6_000_001, '9223372036854775807');

# "tenant:SQLSTATE of gb_shard_for_tenant:of gb_shard_connection" for each
# tenant in TS, on shard S ("none" when there was no error).
sub sqlstates
{
	my ($s, @ts) = @_;
	return sq($s, 'CREATE TEMP TABLE r (n serial, x text);
DO $$
DECLARE
    t bigint;
    a text;
    b text;
BEGIN
    FOREACH t IN ARRAY ARRAY[' . join(',', @ts) . ']::bigint[] LOOP
        BEGIN PERFORM gb_shard_for_tenant(t); a := \'none\'; EXCEPTION WHEN OTHERS THEN a := SQLSTATE; END;
        BEGIN PERFORM gb_shard_connection(t); b := \'none\'; EXCEPTION WHEN OTHERS THEN b := SQLSTATE; END;
        INSERT INTO r (x) VALUES (t || \':\' || a || \':\' || b);
    END LOOP;
END
$$;
SELECT string_agg(x, \' \' ORDER BY n) FROM r;');
}

# The rows gb_shard_routes() must return for the shards' ranges and the
# placements of M, one "min|max|shard|map or range|region|host|port|dbname"
# line each, in tenant order: each range cut around the placements in it,
# each placement a single tenant.
my %region = (1 => 'USA', 4 => 'DEU', 6 => 'SGP');
sub expected_routes
{
	my ($m) = @_;
	$m //= \%map;
	my @rows;
	my @placed = sort { $a <=> $b } keys %$m;
	for my $s (@shards)
	{
		my ($cur, $hi) = @{ $range{$s} };
		for my $t (grep { $_ >= $cur && $_ <= $hi } @placed)
		{
			push @rows, [ $cur, $t - 1, $s, 'range' ] if $t > $cur;
			$cur = $t + 1;
		}
		push @rows, [ $cur, $hi, $s, 'range' ] if $cur <= $hi;
	}
	push @rows, map { [ $_, $_, $m->{$_}, 'map' ] } @placed;
	return join "\n", map {
		my ($host, $port, $db) = $conn{ $_->[2] } =~ /host=(\S+) port=(\S+) dbname=(\S+)/;
		join '|', @$_, $region{ $_->[2] }, $host, $port, $db
	} sort { $a->[0] <=> $b->[0] } @rows;
}

my $routes_sql = q{SELECT string_agg(concat_ws('|', min_tenant_id, max_tenant_id, shard_id,
                                              CASE WHEN explicit THEN 'map' ELSE 'range' END,
                                              region_code, host, port, dbname), E'\n' ORDER BY min_tenant_id)
                     FROM gb_shard_routes()};

# Every shard answers every probe tenant as expected; unserved tenants give
# P0002 from gb_shard_for_tenant and gb_shard_connection; gb_shard_routes()
# gives the same ranges, with each shard's host, port and dbname.
sub check_routing
{
	my ($when, $only, $m) = @_;
	my @on = $only ? @$only : @shards;
	my $want_routes = expected_routes($m);
	is(sq($_, $routes_sql), $want_routes, "$when: shard $_ gives the expected load-balancer routes") for @on;
	my @served = grep { defined expected_shard($_, $m) } (@probe, @unserved);
	my @none = grep { !defined expected_shard($_, $m) } (@probe, @unserved);
	my $want = join ' ', map { "$_:" . expected_shard($_, $m) } sort { $a <=> $b } @served;
	for my $s (@on)
	{
		is( sq($s, 'SELECT string_agg(t || \':\' || gb_shard_for_tenant(t), \' \' ORDER BY t)
                     FROM unnest(ARRAY[' . join(',', @served) . ']::bigint[]) t'),
			$want, "$when: shard $s routes the served tenants as expected");
		is( sq($s, 'SELECT string_agg(t || \':\' || (gb_shard_connection(t) = c.connection_string), \' \' ORDER BY t)
                     FROM unnest(ARRAY[' . join(',', @served) . ']::bigint[]) t
                     JOIN gb_scale.shard_config c ON c.shard_id = gb_shard_for_tenant(t)'),
			join(' ', map { "$_:true" } sort { $a <=> $b } @served),
			"$when: shard $s gives each served tenant its shard's connection string");
		is(sqlstates($s, @none), join(' ', map { "$_:P0002:P0002" } @none),
			"$when: shard $s refuses the unserved tenants with P0002");
	}
	return;
}

my $map_sql = q{SELECT coalesce(string_agg(m::text, E'\n' ORDER BY tenant_id), '') FROM gb_scale.tenant_shard_map m};

sub sync_from_first
{
	for my $s (grep { $_ != $shards[0] } @shards)
	{
		sq($s, "SELECT gb_shard_sync('$conn{$shards[0]} user=postgres')");
	}
	my $first_map = sq($shards[0], $map_sql);
	my $first_cfg = sq($shards[0], q{SELECT string_agg(c::text, E'\n' ORDER BY shard_id) FROM gb_scale.shard_config c});
	for my $s (@shards)
	{
		is(sq($s, $map_sql), $first_map, "shard $s: tenant_shard_map as on shard 1 after sync");
		is(sq($s, q{SELECT string_agg(c::text, E'\n' ORDER BY shard_id) FROM gb_scale.shard_config c}),
			$first_cfg, "shard $s: shard_config as on shard 1 after sync");
	}
	return;
}

section 'routing: the same answer on every shard' => sub {
	check_routing('ranges only');

	# Map changes on shard 1: a range tenant placed on another shard, a
	# tenant no range serves, a DEU tenant placed on USA.
	sq(1, 'SELECT gb_tenant_assign(777, 6::smallint), gb_tenant_assign(4500000, 4::smallint),
	             gb_tenant_assign(3000002, 1::smallint)');
	my %new = (777 => 6, 4_500_000 => 4, 3_000_002 => 1);
	is(sq(1, 'SELECT tenant_id || \':\' || shard_id || \':\' || region_code FROM gb_scale.tenant_shard_map ORDER BY 1'),
		"3000002:1:USA\n4500000:4:DEU\n777:6:SGP", 'gb_tenant_assign fills the region from the shard');
	check_routing('after the change, before sync', [1], \%new);
	check_routing('after the change, before sync', [ 4, 6 ], {});

	# Shard 4 looks tenants up (filling its cache), another session syncs
	# it, and the same session then routes the new way.
	my $sync = "psql -X -q -o /dev/null -d '" . conn_as(4) . "' -c \"SELECT gb_shard_sync('" . conn_as(1) . "')\"";
	is( sq(4, qq{SELECT gb_shard_for_tenant(777), gb_shard_for_tenant(3000002);
\\! $sync
SELECT gb_shard_for_tenant(777), gb_shard_for_tenant(3000002), gb_shard_for_tenant(4500000);}),
		"1|4\n6|1|4", 'a session of shard 4 sees the sync made by another session at its next statement');
	%map = %new;
	sync_from_first();
	check_routing('after sync');

	# A second change: an entry moved, one removed by hand (superuser).
	sq(1, 'SELECT gb_tenant_assign(777, 4::smallint); DELETE FROM gb_scale.tenant_shard_map WHERE tenant_id = 4500000');
	%map = (777 => 4, 3_000_002 => 1);
	sync_from_first();
	check_routing('after the second change and sync');

	# An enum whose codes differ between shards stops the sync: rows would
	# mean different things on different shards.
	sq(1, q{SELECT gb_enum_create('gb.ticket_state', ARRAY['open', 'closed'])});
	sq(6, q{SELECT gb_enum_create('gb.ticket_state', ARRAY['open', 'waiting', 'closed'])});
	sq(1, 'SELECT gb_tenant_assign(888, 4::smallint)');
	is(q_state(6, "SELECT gb_shard_sync('" . conn_as(1) . "')"), '55000',
		'gb_shard_sync refuses while gb.ticket_state has different codes on shard 1 and shard 6');
	is(sq(6, 'SELECT gb_shard_for_tenant(888)'), 1, '... and shard 6 keeps its directory');
	sq(6, q{DROP DOMAIN gb.ticket_state; SELECT gb_enum_create('gb.ticket_state', ARRAY['open', 'closed'])});
	$map{888} = 4;
	sync_from_first();
	check_routing('after the enums agree again and sync');
};

# ------------------------------------------------------------------------
# The routing client: asks a shard where each tenant lives (the asking shard
# rotates), then connects to that shard as the application and writes there.
my %expect;    # tenant => [sessions, messages] written
my @tenants;
for my $s (@shards)
{
	push @tenants, map { $range{$s}[0] + $_ * 9973 } 0 .. 99;
}
push @tenants, 777, 3_000_002;

sub route
{
	my @ts = @_;
	my %where;    # tenant => [shard, connstr], or [undef, SQLSTATE]
	for my $k (0 .. $#shards)
	{
		my @mine = @ts[ grep { $_ % @shards == $k } 0 .. $#ts ];
		next unless @mine;
		my $ask = $shards[$k];
		# Served tenants in one query; each unserved one gets its error.
		for my $t (split / /, sqlstates($ask, @mine))
		{
			my ($tenant, $st) = split /:/, $t;
			$where{$tenant} = [ undef, $st ] if $st ne 'none';
		}
		my $served = join ',', grep { !exists $where{$_} } @mine;
		next unless length $served;
		for (split /\n/, sq($ask, "SELECT t || '|' || gb_shard_for_tenant(t) || '|' || gb_shard_connection(t)
                                     FROM unnest(ARRAY[$served]::bigint[]) t"))
		{
			my ($t, $s, $c) = split /\|/, $_, 3;
			$where{$t} = [ $s, $c ];
		}
	}
	return %where;
}

sub write_tenants
{
	my %where = @_;
	my %by_conn;
	for my $t (sort { $a <=> $b } keys %where)
	{
		my ($s, $c) = @{ $where{$t} };
		next unless defined $s;
		my $n = 1 + $t % 5;
		$by_conn{$c} .= qq{
BEGIN;
SELECT gb_set_tenant($t) \\gset
WITH s AS (INSERT INTO gb.sessions (tenant_id, channel, user_ref)
           SELECT $t, ($t % 10)::smallint, 'user-' || $t || '-' || k FROM generate_series(1, 2) k
           RETURNING id, tenant_id)
INSERT INTO gb.messages (tenant_id, session_id, channel, role, body)
SELECT s.tenant_id, s.id, ($t % 10)::smallint, (1 + i % 2)::smallint, 'message ' || i || ' of tenant ' || $t
  FROM s, generate_series(1, $n) i;
COMMIT;};
		$expect{$t}[0] += 2;
		$expect{$t}[1] += 2 * $n;
	}
	for my $c (keys %by_conn)
	{
		my ($r, $o, $e) = psql_run("$c user=gb_app", $by_conn{$c});
		die "writing through $c: $e" if $r;
	}
	return;
}

# Every shard holds only the tenants routed to it, each tenant on one shard
# only, with the rows written for it.
sub check_placement
{
	my ($when) = @_;
	my %found;
	for my $s (@shards)
	{
		for my $tbl ('gb.sessions', 'gb.messages')
		{
			is( sq($s, "SELECT count(*) FILTER (WHERE gb_shard_for_tenant(tenant_id) <> gb_current_shard())
                              || ' ' || count(*) FILTER (WHERE shard_id <> gb_current_shard())
                         FROM $tbl"),
				'0 0', "$when: shard $s: every row of $tbl belongs to a tenant of this shard and says so in shard_id");
		}
		for my $line (split /\n/, sq($s, q{
SELECT tenant_id || ' ' || (SELECT count(*) FROM gb.sessions s WHERE s.tenant_id = t.tenant_id)
                 || ' ' || (SELECT count(*) FROM gb.messages m WHERE m.tenant_id = t.tenant_id)
  FROM (SELECT tenant_id FROM gb.sessions UNION SELECT tenant_id FROM gb.messages) t ORDER BY 1}))
		{
			my ($t, $ns, $nm) = split / /, $line;
			push @{ $found{$t} }, [ $s, $ns, $nm ];
		}
	}
	my @wrong;
	for my $t (sort { $a <=> $b } (keys %expect, keys %found))
	{
		my $f = $found{$t} // [];
		my $want = expected_shard($t);
		push @wrong, "$t: on " . join(',', map { $_->[0] } @$f) . ', expected ' . ($want // 'none')
		  unless @$f == 1 && defined $want && $f->[0][0] == $want
		  && $f->[0][1] == ($expect{$t}[0] // -1) && $f->[0][2] == ($expect{$t}[1] // -1);
	}
	my %uniq = map { $_ => 1 } @wrong;
	is(join("\n", sort keys %uniq), '', "$when: each tenant's rows on its shard only, all of them");
	return;
}

section 'a client routing with the functions' => sub {
	my %where = route(@tenants, 4_500_000);
	is($where{4_500_000}[1], 'P0002', 'the client gets P0002 for an unserved tenant and writes nothing for it');
	write_tenants(%where);
	my %per;
	$per{ $where{$_}[0] // 'none' }++ for @tenants;
	is(join(' ', map { "$_:$per{$_}" } sort keys %per), '1:101 4:101 6:100',
		'tenants routed: 100 per range, 777 to shard 4, 3000002 to shard 1');
	check_placement('after the routed writes');
};

# ------------------------------------------------------------------------
# Row counts per shard, straight from each shard.
sub shard_counts
{
	my ($tbl) = @_;
	return map { $_ => sq($_, "SELECT count(*) FROM $tbl") } @shards;
}

# The partition of gb_global.NAME holding shard S, on shard ON.
sub global_partition
{
	my ($on, $name, $s) = @_;
	return sq($on, qq{SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                       WHERE i.inhparent = 'gb_global.$name'::regclass
                         AND pg_get_expr(c.relpartbound, c.oid) IN ('FOR VALUES IN ($s)', 'FOR VALUES IN (''$s'')')});
}

sub check_global
{
	my ($on, $when) = @_;
	eval { check_global_counts($on, $when); 1 } or fail("$when: counts through gb_global on shard $on: $@");
	return;
}

sub check_global_counts
{
	my ($on, $when) = @_;
	for my $name ('messages', 'sessions')
	{
		my %n = shard_counts("gb.$name");
		my $sum = 0;
		$sum += $n{$_} for @shards;
		is(sq($on, "SELECT count(*) FROM gb_global.$name"), $sum,
			"$when: shard $on: count(*) of gb_global.$name = sum of the shards' counts ($sum)");
		is( sq($on, "SELECT string_agg(shard_id || ':' || n, ' ' ORDER BY shard_id)
                      FROM (SELECT shard_id, count(*) AS n FROM gb_global.$name GROUP BY shard_id) t"),
			join(' ', map { "$_:$n{$_}" } @shards),
			"$when: shard $on: per-shard counts through gb_global.$name");
	}
	return;
}

section 'cross-shard queries through gb_global' => sub {
	for my $on (1, 6)
	{
		sq($on, 'SELECT gb_shard_fdw_setup()');
		is(sq($on, q{SELECT gb_global_table('gb.messages', 'messages')::text || ' '
                        || gb_global_table('gb.sessions', 'sessions')::text}),
			'gb_global.messages gb_global.sessions', "shard $on: global tables made");
		is( sq($on, q{SELECT string_agg(pg_get_expr(c.relpartbound, c.oid) || ' ' || s.srvname, ', ' ORDER BY s.srvname)
                        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        JOIN pg_foreign_table f ON f.ftrelid = c.oid JOIN pg_foreign_server s ON s.oid = f.ftserver
                       WHERE i.inhparent = 'gb_global.messages'::regclass}) =~ s/'//gr,
			'FOR VALUES IN (1) gb_shard_1, FOR VALUES IN (4) gb_shard_4, FOR VALUES IN (6) gb_shard_6',
			"shard $on: gb_global.messages has one foreign partition per active shard, on that shard's server");
		check_global($on, 'after the routed writes');
	}
	for my $s (@shards)
	{
		my $plan = sq(1, "EXPLAIN (COSTS OFF) SELECT count(*) FROM gb_global.messages WHERE shard_id = $s");
		my %part = map { $_ => global_partition(1, 'messages', $_) } @shards;
		my @other = grep { $_ != $s } @shards;
		ok($plan =~ /\b\Q$part{$s}\E\b/ && !grep({ $plan =~ /\b\Q$part{$_}\E\b/ } @other),
			"WHERE shard_id = $s scans only $part{$s}")
		  or diag($plan);
		is( sq(1, "SELECT count(*) FROM gb_global.messages WHERE shard_id = $s"),
			sq($s, 'SELECT count(*) FROM gb.messages'), "WHERE shard_id = $s counts the rows of shard $s");
	}
};

# ------------------------------------------------------------------------
# Every row of the deployment: "table id md5(row without shard_id)", with
# the shard holding it.
sub deployment_rows
{
	my %rows;
	for my $s (@shards)
	{
		for my $tbl ('gb.sessions', 'gb.messages')
		{
			for (split /\n/, sq($s, "SELECT id || ' ' || md5((to_jsonb(t) - 'shard_id')::text) FROM $tbl t"))
			{
				push @{ $rows{"$tbl $_"} }, $s;
			}
		}
	}
	return \%rows;
}

section 'moving a tenant from shard 1 to shard 4' => sub {
	my $t = $range{1}[0] + 9973;    # 2 sessions of 5 messages
	my ($src, $dst) = (1, 4);
	my $before = deployment_rows();
	my $n_sessions = sq($src, "SELECT count(*) FROM gb.sessions WHERE tenant_id = $t");
	my $n_messages = sq($src, "SELECT count(*) FROM gb.messages WHERE tenant_id = $t");
	ok($n_sessions > 0 && $n_messages > 0, "tenant $t has $n_sessions sessions and $n_messages messages on shard 1");
	my $fp_sql = "SELECT string_agg(id || ' ' || md5((to_jsonb(t) - 'shard_id')::text), ',' ORDER BY id)
                    FROM (SELECT * FROM gb.sessions WHERE tenant_id = $t) t";
	my $fp_msg_sql = "SELECT string_agg(id || ' ' || md5((to_jsonb(t) - 'shard_id')::text), ',' ORDER BY id)
                        FROM (SELECT * FROM gb.messages WHERE tenant_id = $t) t";
	my ($fp_s, $fp_m) = (sq($src, $fp_sql), sq($src, $fp_msg_sql));

	# 1. Export on the source, as COPY text: it travels to the destination as is.
	my $export = sq($src, "COPY (SELECT table_name::text, row_data FROM gb_tenant_export($t) ORDER BY 1) TO STDOUT");
	my %exported;
	$exported{ (split /\t/)[0] }++ for split /\n/, $export;
	is(join(' ', map { "$_:$exported{$_}" } sort keys %exported),
		"gb.messages:$n_messages gb.sessions:$n_sessions", 'gb_tenant_export gives every row of the tenant');

	# 2. Import on the destination in one transaction; rows keep their IDs and
	#    take the destination's shard_id (the shard that holds them).
	sq($dst, qq{BEGIN;
CREATE TEMP TABLE tenant_import (table_name text, row_data jsonb) ON COMMIT DROP;
COPY tenant_import FROM STDIN;
$export
\\.
DO \$\$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT table_name FROM tenant_import ORDER BY 1 LOOP
        EXECUTE format('INSERT INTO %s SELECT (jsonb_populate_record(NULL::%s, i.row_data || jsonb_build_object(''shard_id'', gb_current_shard()))).* FROM tenant_import i WHERE i.table_name = %L',
                       r.table_name, r.table_name, r.table_name);
    END LOOP;
END
\$\$;
COMMIT;});

	# 3. The map on shard 1, synced everywhere: the tenant now routes to 4.
	sq(1, "SELECT gb_tenant_assign($t, $dst\::smallint)");
	$map{$t} = $dst;
	sync_from_first();
	is(join(' ', map { sq($_, "SELECT gb_shard_for_tenant($t)") } @shards), "$dst $dst $dst",
		"every shard routes tenant $t to shard $dst");

	# 4. Purge on the source.
	is(sq($src, "SELECT string_agg(table_name::text || ':' || rows_removed, ' ' ORDER BY table_name::text)
                  FROM gb_tenant_purge($t)"),
		"gb.messages:$n_messages gb.sessions:$n_sessions", 'gb_tenant_purge removes every row of the tenant on the source');

	is(sq($src, "SELECT (SELECT count(*) FROM gb.sessions WHERE tenant_id = $t) + (SELECT count(*) FROM gb.messages WHERE tenant_id = $t)"),
		0, 'no row of the tenant is left on the source');
	is(sq($dst, $fp_sql), $fp_s, 'the sessions on the destination are the same rows, same IDs');
	is(sq($dst, $fp_msg_sql), $fp_m, 'the messages on the destination are the same rows, same IDs');
	is(sq($dst, "SELECT string_agg(DISTINCT shard_id || '/' || gb_shard_for_id(id), ' ') FROM gb.messages WHERE tenant_id = $t"),
		"$dst/$src", 'moved rows carry the destination in shard_id and keep the IDs shard 1 made');

	# Nothing lost or duplicated anywhere: the deployment's rows as a whole
	# are the same, only the tenant's rows changed shard.
	my $after = deployment_rows();
	my (@lost, @dup, @moved_wrong);
	for my $k (keys %$before) { push @lost, $k unless $after->{$k}; }
	for my $k (keys %$after) { push @dup, $k if @{ $after->{$k} } > 1 || !$before->{$k}; }
	is(scalar(@lost) . ' ' . scalar(@dup), '0 0', 'no row lost, none duplicated, none new across the shards')
	  or diag("lost: @lost[0..9]\nduplicated/new: @dup[0..9]");
	check_placement('after the move');
	check_global(1, 'after the move');

	# New rows of the tenant now go to shard 4, through the same client.
	write_tenants(route($t));
	is(sq($dst, "SELECT count(*) FROM gb.sessions WHERE tenant_id = $t AND gb_shard_for_id(id) = $dst"), 2,
		'the routing client writes the moved tenant\'s new sessions on shard 4, with shard 4 IDs');
	check_placement('after writing to the moved tenant');
};

# ------------------------------------------------------------------------
section 'tenant isolation on a shard' => sub {
	# test/shards.sh isolated both tables on every shard; enabling again is
	# harmless.
	for my $s (@shards)
	{
		is(sq($s, q{SELECT string_agg(tbl::text || '.' || tenant_column, ' ' ORDER BY tbl::text) FROM gb_scale.tenant_isolation}),
			'gb.messages.tenant_id gb.sessions.tenant_id', "shard $s: gb.sessions and gb.messages are isolated by tenant_id");
	}
	my $s = 6;
	my ($t1, $t2) = ($range{6}[0], $range{6}[0] + 9973);
	sq($s, q{SELECT gb_tenant_isolation_enable('gb.messages'), gb_tenant_isolation_enable('gb.sessions')});
	for my $t ($t1, $t2)
	{
		is( sq($s, "BEGIN; SELECT gb_set_tenant($t) \\gset
SELECT count(*) || ' ' || count(DISTINCT tenant_id) || ' ' || coalesce(min(tenant_id), 0) FROM gb.messages;
SELECT count(*) || ' ' || coalesce(min(tenant_id), 0) FROM gb.sessions;
COMMIT;", 'gb_app'),
			"$expect{$t}[1] 1 $t\n$expect{$t}[0] $t",
			"an application session of shard 6 with gb_set_tenant($t) sees exactly that tenant's rows");
	}
	is( sq($s, "BEGIN; SELECT gb_set_tenant($t1) \\gset
COMMIT;
SELECT count(*) FROM gb.messages;", 'gb_app'),
		'0', 'the tenant is transaction-scoped: the next transaction sees no rows');
	is(q_state($s, "INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES ($t1, 1, 1, 'no tenant')", 'gb_app'),
		'42501', 'writing without a tenant is refused');
	is( q_state(
			$s, "BEGIN; SELECT gb_set_tenant($t1) \\gset
INSERT INTO gb.messages (tenant_id, session_id, role, body) VALUES ($t2, 1, 1, 'not mine');", 'gb_app'),
		'42501', 'writing a row of another tenant is refused');
	is( sq($s, "BEGIN; SELECT gb_set_tenant($t1) \\gset
WITH u AS (UPDATE gb.messages SET body = 'changed' WHERE tenant_id = $t2 RETURNING 1),
     d AS (DELETE FROM gb.sessions WHERE tenant_id = $t2 RETURNING 1)
SELECT (SELECT count(*) FROM u) || ' ' || (SELECT count(*) FROM d);
COMMIT;", 'gb_app'), '0 0', 'another tenant\'s rows can be neither updated nor deleted');
	is( sq($s, "SELECT (SELECT count(*) FROM gb.messages WHERE body = 'changed') || ' '
                     || (SELECT count(*) FROM gb.sessions WHERE tenant_id = $t2)"),
		"0 $expect{$t2}[0]", '(checked as superuser)');
	is(q_state($s, "SELECT gb_set_tenant($t1)", 'gb_app'), '', '(gb_app may call gb_set_tenant)');
	is(sq($s, "SELECT has_function_privilege('public', 'gb_set_tenant(bigint)', 'EXECUTE')"), 'f',
		'PUBLIC may not call gb_set_tenant');
	check_global(1, 'with isolation on every shard');
};

# ------------------------------------------------------------------------
# The script: stop twice (the second finds nothing to do), every server gone.
for my $round (1, 2)
{
	my ($o, $e) = ('', '');
	ok(IPC::Run::run([ $script, 'stop' ], '>', \$o, '2>', \$e), "test/shards.sh stop (round $round) succeeds")
	  or diag($e);
}
is(join(' ', grep { -e "$base/shard$_/data/postmaster.pid" } @shards), '', 'no shard server is left running');

my @bad_logs;
for my $log (glob("$base/shard*/server.log"))
{
	open my $fh, '<', $log or die $!;
	push @bad_logs, $log if grep { /TRAP: |problem in alloc set|ERROR: AddressSanitizer|runtime error: |server process .* was terminated/ } <$fh>;
}
is("@bad_logs", '', 'no shard logged an assertion failure, sanitizer report or crash');

done_testing();
