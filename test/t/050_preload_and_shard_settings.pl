# Guarantee 6 and the shard id rules: without shared_preload_libraries the
# extension installs and decodes but refuses to generate; the shard id comes
# from SHARD_ID, postgresql.conf, ALTER DATABASE/ROLE SET (superuser only),
# bad values are refused with clear errors, two databases of one instance
# never share a shard id, and read-only transactions cannot generate.  The
# settings that govern the shared generator (gb_scale.max_lead_ms,
# gb_scale.debug_clock_offset_ms, gb_scale.reservation_ms) are instance-wide:
# no session, role or database sets them.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

delete $ENV{SHARD_ID};

# Run SQL expected to fail.  Returns a hash of psql's exit code, SQLSTATE,
# message and hint (VERBOSITY verbose prints "ERROR:  XXXXX: message").
sub sql_error
{
	my ($node, $db, $sql, %params) = @_;
	my $user = delete $params{user};
	my $connstr = $node->connstr($db) . (defined $user ? " user=$user" : '');
	my ($ret, $out, $err) = $node->psql(
		$db, $sql,
		connstr => $connstr,
		extra_params => [ '-v', 'VERBOSITY=verbose' ],
		timeout => 60);
	my %e = (ret => $ret, out => $out, stderr => $err);
	($e{state}, $e{message}) = $err =~ /ERROR:\s+([0-9A-Z]{5}):\s+([^\n]*)/;
	($e{hint}) = $err =~ /HINT:\s+([^\n]*)/;
	$e{$_} //= '' for qw(state message hint);
	return \%e;
}

# safe_psql as another role.
sub psql_as
{
	my ($node, $db, $user, $sql) = @_;
	return $node->safe_psql($db, $sql,
		connstr => $node->connstr($db) . " user=$user");
}

# (Re)start a node with SHARD_ID in the server's environment (undef: none).
sub start_with_shard_env
{
	my ($node, $value) = @_;
	if (defined $value) { $ENV{SHARD_ID} = $value; }
	else { delete $ENV{SHARD_ID}; }
	$node->start;
	delete $ENV{SHARD_ID};
}

# ---------------------------------------------------------------------------
# (a) No shared_preload_libraries.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', "gb_scale.shard_id = 1\n");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION gb_scale');
pass('CREATE EXTENSION gb_scale works without shared_preload_libraries');

is( $plain->safe_psql(
		'postgres', q{
SELECT gb_id_timestamp(x) = '2024-01-01 00:00:01+00'::timestamptz,
       gb_id_shard(x), gb_id_sequence(x),
       (gb_id_decode(x)).shard_id, (gb_id_decode(x)).sequence,
       (gb_id_decode(x)).created_at = '2024-01-01 00:00:01+00'::timestamptz
FROM (SELECT (1000::bigint << 22) | (3 << 12) | 17 AS x) s}),
	't|3|17|3|17|t',
	'decoders split a hand-made ID without the preload');
is( $plain->safe_psql(
		'postgres', q{
SELECT gb_id_shard(x), gb_id_sequence(x),
       gb_id_timestamp(x) = '2024-06-01 12:00:00.123+00'::timestamptz
FROM (SELECT gb_id_from_time('2024-06-01 12:00:00.123+00', 5::smallint) AS x) s}),
	'5|0|t',
	'gb_id_from_time round-trips without the preload');

for my $call ('gb_next_id()', 'gb_next_ids(3)', 'gb_id_generator_status()')
{
	my $e = sql_error($plain, 'postgres', "SELECT * FROM $call");
	is($e->{state}, '55000', "without preload, $call fails with 55000");
	like($e->{message}, qr/shared_preload_libraries/,
		"... message names shared_preload_libraries");
	like($e->{hint}, qr/shared_preload_libraries/,
		"... hint names shared_preload_libraries");
}
$plain->stop;

# ---------------------------------------------------------------------------
# (b) Preloaded, no shard id anywhere.
my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'gb_scale'\nlog_statement = none\n");
start_with_shard_env($node, undef);
$node->safe_psql('postgres', 'CREATE EXTENSION gb_scale');

is($node->safe_psql('postgres', 'SHOW gb_scale.shard_id'),
	'-1', 'shard id defaults to -1 (unset) without SHARD_ID');
for my $call ('gb_next_id()', 'gb_next_ids(3)')
{
	my $e = sql_error($node, 'postgres', "SELECT * FROM $call");
	is($e->{state}, '55000', "unset shard id: $call fails with 55000");
	is($e->{message}, 'gb_scale.shard_id is not set', '... saying so');
	like($e->{hint}, qr/gb_scale\.shard_id.*ALTER DATABASE.*SHARD_ID/,
		'... hint tells how to set it');
}

# (d) Out-of-range values are refused by the setting itself.
for my $v (2000, 1024, -2)
{
	my $e = sql_error($node, 'postgres', "SET gb_scale.shard_id = $v");
	is($e->{state}, '22023', "SET gb_scale.shard_id = $v is rejected (22023)");
}
my $e = sql_error($node, 'postgres',
	'ALTER DATABASE postgres SET gb_scale.shard_id = 2000');
is($e->{state}, '22023', 'ALTER DATABASE ... SET gb_scale.shard_id = 2000 is rejected');
$e = sql_error($node, 'postgres', "SET gb_scale.shard_id = 'abc'");
is($e->{state}, '22023', "SET gb_scale.shard_id = 'abc' is rejected");
is($node->safe_psql('postgres', 'SELECT shard_id FROM gb_id_generator_status()'),
	'', 'failed calls claimed no shard');

# (e) Ordinary roles cannot choose the shard id or the lead bound.
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN');
for my $set (
	'SET gb_scale.shard_id = 3',
	'SET LOCAL gb_scale.shard_id = 3',
	'ALTER ROLE app SET gb_scale.shard_id = 3')
{
	$e = sql_error($node, 'postgres', $set, user => 'app');
	is($e->{state}, '42501', "ordinary role: '$set' is refused (42501)");
	like($e->{message}, qr/permission denied to set parameter/,
		'... permission denied to set parameter');
}
# The instance-wide settings cannot be set in a session by anybody (see (h)).
for my $set ('SET gb_scale.max_lead_ms = 0',
	'SET gb_scale.debug_clock_offset_ms = 1000')
{
	$e = sql_error($node, 'postgres', $set, user => 'app');
	is($e->{state}, '55P02', "ordinary role: '$set' is refused (55P02)");
}
is(psql_as($node, 'postgres', 'app', 'SHOW gb_scale.shard_id'),
	'-1', 'ordinary role still sees the unset shard id');

$node->safe_psql('postgres', 'ALTER ROLE app SET gb_scale.shard_id = 11');
is(psql_as($node, 'postgres', 'app', 'SHOW gb_scale.shard_id'),
	'11', 'ALTER ROLE app SET by a superuser applies to the role');
is( psql_as(
		$node, 'postgres', 'app',
		'SELECT count(DISTINCT gb_id_shard(x)) || \':\' || min(gb_id_shard(x)) FROM (SELECT gb_next_id() x FROM generate_series(1, 10)) s'
	),
	'1:11',
	'the ordinary role generates IDs with shard 11 without privileges on the mark');
$e = sql_error($node, 'postgres', "SELECT setval('gb_scale.id_mark', 1)",
	user => 'app');
is($e->{state}, '42501', 'the ordinary role cannot move the durable mark');
is($node->safe_psql('postgres', 'SHOW gb_scale.shard_id'),
	'-1', 'ALTER ROLE app SET does not leak to other roles');

# (g) Read-only transactions cannot generate, as nextval cannot.
$node->safe_psql('postgres', 'CREATE SEQUENCE plain_seq');
my $ro_nextval = sql_error($node, 'postgres',
	"BEGIN READ ONLY; SELECT nextval('plain_seq');");
is($ro_nextval->{state}, '25006', 'reference: nextval fails with 25006 in a read-only transaction');
for my $call ('gb_next_id()', 'gb_next_ids(2)')
{
	$e = sql_error($node, 'postgres',
		"SET gb_scale.shard_id = 12; BEGIN READ ONLY; SELECT * FROM $call;");
	is($e->{state}, $ro_nextval->{state},
		"$call in BEGIN READ ONLY fails like nextval (25006)");
	like($e->{message}, qr/read-only transaction/, '... naming the read-only transaction');
}
$e = sql_error($node, 'postgres',
	"SET gb_scale.shard_id = 12; SET default_transaction_read_only = on; SELECT gb_next_id();");
is($e->{state}, '25006', 'gb_next_id() fails under default_transaction_read_only');
is($node->safe_psql('postgres',
		'SELECT count(*) FROM gb_id_generator_status() WHERE shard_id = 12'),
	'0', 'read-only attempts claimed no shard');

# ---------------------------------------------------------------------------
# (h) The settings that govern a shard slot, gb_scale.max_lead_ms and
# gb_scale.debug_clock_offset_ms (and gb_scale.reservation_ms), are the same
# for every session: postgresql.conf and a reload set them, never a session,
# a role or a database, not even a superuser's.  Otherwise one session would
# move or stall the IDs of all the others.
$node->safe_psql('postgres', 'CREATE DATABASE iso');
$node->safe_psql('postgres', 'ALTER DATABASE iso SET gb_scale.shard_id = 14');
$node->safe_psql('iso', 'CREATE EXTENSION gb_scale');
$node->safe_psql('postgres', 'CREATE DATABASE iso_conf');
for my $name ('gb_scale.max_lead_ms', 'gb_scale.debug_clock_offset_ms',
	'gb_scale.reservation_ms')
{
	for my $sql (
		"SET $name = 50000",
		"BEGIN; SET LOCAL $name = 50000",
		"SELECT set_config('$name', '50000', false)",
		"ALTER ROLE app SET $name = 50000",
		"ALTER DATABASE iso_conf SET $name = 50000",
		"ALTER ROLE app IN DATABASE iso_conf SET $name = 50000")
	{
		$e = sql_error($node, 'iso_conf', $sql);
		is($e->{state}, '55P02', "superuser: '$sql' is refused (55P02)");
		like($e->{message}, qr/parameter "\Q$name\E" cannot be changed now/,
			'... the parameter cannot be changed now');
	}
}
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_db_role_setting
		  WHERE array_to_string(setconfig, ',') ~ 'max_lead|debug_clock|reservation'}),
	'0',
	'no role or database setting of them was stored');

# Runs SQL in a session of its own and lets it go on after errors.
sub session
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql(
		'iso', $sql,
		on_error_stop => 0,
		extra_params => [ '-v', 'VERBOSITY=verbose' ],
		timeout => 120);
	return ($out, $err);
}

# One session tries to borrow minutes of IDs in one step; another session
# must still get its ID at once.
my ($out, $err) = session(q{
SET gb_scale.max_lead_ms = 600000;
SELECT gb_next_ids(200000000) LIMIT 1;
});
like($err, qr/ERROR:\s+55P02: parameter "gb_scale.max_lead_ms" cannot be changed now/,
	'a session cannot SET the lead bound');
like($err, qr/ERROR:\s+54000: gb_next_ids: cannot reserve 200000000 IDs/,
	'... so 200M IDs in one step exceed the instance-wide lead bound');
($out, $err) = session(q{
SET statement_timeout = '5s';
SELECT gb_id_shard(gb_next_id());
SELECT lead_ms < 1000, waits FROM gb_id_generator_status() WHERE shard_id = 14;
});
is($out, "14\nt|0", 'another session gets its ID at once, without a lead or a wait')
  or diag $err;

# One session tries to move the clock a day ahead; another session's IDs
# must stay on the real clock.
($out, $err) = session(q{
SET gb_scale.debug_clock_offset_ms = 86400000;
SELECT count(gb_next_id()) FROM generate_series(1, 1000);
});
like($err,
	qr/ERROR:\s+55P02: parameter "gb_scale.debug_clock_offset_ms" cannot be changed now/,
	'a session cannot SET the clock offset');
($out, $err) = session(q{
SET statement_timeout = '5s';
SELECT abs(extract(epoch FROM gb_id_timestamp(gb_next_id()) - clock_timestamp())) < 2;
SELECT lead_ms < 1000, clock_regressions,
       durable_mark < clock_timestamp() + interval '10 s'
  FROM gb_id_generator_status() WHERE shard_id = 14;
});
is($out, "t\nt|0|t",
	'another session\'s IDs follow the real clock: no lead, no clock regression, mark not ahead'
) or diag $err;
unlike($err, qr/WARNING/, '... and it is not warned of a clock regression');
$node->stop;

# ---------------------------------------------------------------------------
# (d) Invalid SHARD_ID values: a WARNING at start, and a clear error naming the
# value when an ID is asked for.  An explicit setting still works.  Only 1 to
# 4 digits are a shard id: no sign, no whitespace on either side.
for my $bad ('5000', 'abc', '12x', '-1', ' 7', '9 ', '+7', '00007', '1024')
{
	my $log_offset = -s $node->logfile;
	start_with_shard_env($node, $bad);
	ok( $node->log_contains(
			qr/WARNING:.*environment variable SHARD_ID has invalid value "\Q$bad\E"/,
			$log_offset),
		"SHARD_ID=$bad logs a WARNING at start");
	is($node->safe_psql('postgres', 'SHOW gb_scale.shard_id'),
		'-1', "SHARD_ID=$bad leaves the shard id unset");
	$e = sql_error($node, 'postgres', 'SELECT gb_next_id()');
	is($e->{state}, '22023', "SHARD_ID=$bad: gb_next_id() fails with 22023");
	like($e->{message},
		qr/environment variable SHARD_ID has invalid value "\Q$bad\E"/,
		"... naming the value \"$bad\"");
	is( $node->safe_psql('postgres',
			'SET gb_scale.shard_id = 13; SELECT gb_id_shard(gb_next_id())'),
		'13',
		"SHARD_ID=$bad: an explicit gb_scale.shard_id still works");
	$node->stop;
}

# ---------------------------------------------------------------------------
# (c) SHARD_ID=7 supplies the default shard id.
start_with_shard_env($node, '7');
is($node->safe_psql('postgres', 'SHOW gb_scale.shard_id'),
	'7', 'SHARD_ID=7 in the server environment: SHOW gb_scale.shard_id = 7');
is( $node->safe_psql(
		'postgres',
		'SELECT count(*) FILTER (WHERE gb_id_shard(x) = 7) FROM (SELECT gb_next_id() x FROM generate_series(1, 100)) s'
	),
	'100',
	'IDs decode to shard 7');

# (f) A second database with the same (environment) shard id is refused.
for my $db ('db1', 'db2')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION gb_scale');
}
$e = sql_error($node, 'db1', 'SELECT gb_next_id()');
is($e->{state}, '55006', 'a second database using shard 7 fails with 55006');
is( $e->{message},
	'shard id 7 is already used by database "postgres" on this instance',
	'... naming the database that holds the shard id');
$e = sql_error($node, 'db1', 'SELECT count(*) FROM gb_next_ids(10)');
is($e->{state}, '55006', 'gb_next_ids is refused the same way');

$node->safe_psql('postgres', 'ALTER DATABASE db1 SET gb_scale.shard_id = 8');
$node->safe_psql('postgres', 'ALTER DATABASE db2 SET gb_scale.shard_id = 9');
is($node->safe_psql('db1', 'SELECT gb_id_shard(gb_next_id())'),
	'8', 'with its own shard id (ALTER DATABASE db1 SET) db1 generates shard 8');
is($node->safe_psql('db2', 'SELECT gb_id_shard(gb_next_id())'),
	'9', 'db2 generates shard 9');
is($node->safe_psql('postgres', 'SELECT gb_id_shard(gb_next_id())'),
	'7', 'postgres still generates shard 7');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(shard_id || '=' || database, ',' ORDER BY shard_id) FROM gb_id_generator_status()"
	),
	'7=postgres,8=db1,9=db2',
	'generator status lists each shard with its database');

# Taking another database's shard id in a session is refused both ways.
$e = sql_error($node, 'db1', 'SET gb_scale.shard_id = 9; SELECT gb_next_id()');
is($e->{state}, '55006', 'db1 cannot take shard 9 of db2');
like($e->{message}, qr/shard id 9 is already used by database "db2"/,
	'... naming db2');
$e = sql_error($node, 'db2', 'SET gb_scale.shard_id = 8; SELECT gb_next_id()');
like($e->{message}, qr/shard id 8 is already used by database "db1"/,
	'db2 cannot take shard 8 of db1');

# postgresql.conf overrides the environment; ALTER DATABASE overrides both.
$node->append_conf('postgresql.conf', "gb_scale.shard_id = 30\n");
$node->reload;
ok( $node->poll_query_until('postgres', 'SHOW gb_scale.shard_id', '30'),
	'postgresql.conf gb_scale.shard_id = 30 overrides SHARD_ID=7');
is($node->safe_psql('postgres', 'SELECT gb_id_shard(gb_next_id())'),
	'30', 'IDs decode to shard 30 after the reload');
is($node->safe_psql('db1', 'SHOW gb_scale.shard_id'),
	'8', 'ALTER DATABASE db1 SET still beats postgresql.conf');
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET gb_scale.shard_id = 31');
is($node->safe_psql('postgres', 'SELECT gb_id_shard(gb_next_id())'),
	'31', 'ALTER DATABASE postgres SET gb_scale.shard_id = 31 overrides the file');

$node->stop;
done_testing();
