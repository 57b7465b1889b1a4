# SMALLINT enum domains across sessions and through pg_dump:
#  1. a label renamed or added in one session is seen by another session's
#     next statement, without reconnecting (per-backend cache invalidation),
#     also when the other session looked labels up in a REPEATABLE READ
#     transaction in between;
#  2. a cached plan that folded gb_enum_code() to a constant is replanned
#     when the label changes, instead of running with the stale code;
#  3. pg_dump -Fc / pg_restore --exit-on-error keep user enums: labels,
#     codes, gb_label(), the domain check (also a NOT VALID one); an enum
#     in a temporary schema leaves nothing behind that breaks a restore;
#  4. concurrent gb_enum_add calls get distinct codes, and a transaction
#     holding a gb_enum_add open does not block writers of the table;
#  5. DROP EXTENSION gb_scale CASCADE (and DROP SCHEMA of its schema) work
#     despite the event trigger, and CREATE EXTENSION works again after.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('enums');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'gb_scale'
gb_scale.shard_id = 1
log_statement = none
});
$node->start;

# Background psql sessions keep going after an error, print SQLSTATEs, and
# time out each statement separately rather than the whole session.
sub open_session
{
	my ($db) = @_;
	my $s = $node->background_psql($db, on_error_stop => 0);
	$s->set_query_timer_restart;
	run_sql($s, '\set VERBOSITY verbose');
	return $s;
}

# (stdout, stderr) of one statement.  BackgroundPsql never clears stderr, so
# clear it around each statement to attribute errors to the right one.
sub run_sql
{
	my ($s, $sql) = @_;
	$s->{stderr} = '';
	my $out = $s->query($sql);
	my $err = $s->{stderr};
	$s->{stderr} = '';
	return ($out, $err);
}

# stdout of a statement that should succeed; an error is reported (and
# makes the caller's comparison fail, as stdout is then empty or partial).
sub sq
{
	my ($s, $sql) = @_;
	my ($out, $err) = run_sql($s, $sql);
	diag("unexpected error from [$sql]: $err") if $err ne '';
	return $out;
}

my ($out, $err, $ret, $stdout, $stderr);

# pg_dump -Fc of database SRC, restored with --exit-on-error into a new
# database DST: two test results, named after WHAT.
sub dump_and_restore
{
	my ($src, $dst, $what) = @_;
	my $file = $node->basedir . "/$src.dump";
	$node->command_ok(
		[
			$node->installed_command('pg_dump'), '-Fc', '-f', $file, '-d',
			$node->connstr($src)
		],
		"pg_dump -Fc $what");
	$node->safe_psql('postgres', "CREATE DATABASE $dst");
	$node->command_ok(
		[
			$node->installed_command('pg_restore'), '--exit-on-error', '-d',
			$node->connstr($dst), $file
		],
		"pg_restore --exit-on-error $what");
	return;
}

###########################################################################
# 1. Cross-session cache
###########################################################################
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION gb_scale;
CREATE SCHEMA app;
SELECT gb_enum_create('app.priority', ARRAY['low', 'high']);
CREATE TABLE jobs (id int PRIMARY KEY, pr app.priority NOT NULL);
INSERT INTO jobs VALUES (1, 0), (2, 1);
});

my $a = open_session('postgres');
my $a_pid = sq($a, 'SELECT pg_backend_pid()');
is(sq($a, 'SELECT gb_label(pr) FROM jobs WHERE id = 2'),
	'high', 'A: gb_label of a user enum value (cache warmed)');
is(sq($a, q{SELECT gb_enum_code('app.priority', 'high')}),
	'1', 'A: gb_enum_code of the label');

# B renames a label and adds one, in its own session.
$node->safe_psql('postgres',
	q{SELECT gb_enum_rename('app.priority', 'high', 'urgent')});
is( $node->safe_psql('postgres',
		q{SELECT gb_enum_add('app.priority', 'critical')}),
	'2',
	'B: renamed high -> urgent, adds critical (code 2)');

is(sq($a, 'SELECT gb_label(pr) FROM jobs WHERE id = 2'),
	'urgent', 'A: next statement sees the renamed label');
is( sq(
		$a,
		q{SELECT gb_enum_label('app.priority', 2::smallint) || '|' || gb_enum_code('app.priority', 'critical')}
	),
	'critical|2',
	'A: sees the added label both ways');
($out, $err) = run_sql($a, q{SELECT gb_enum_code('app.priority', 'high')});
like($err, qr/22P02: invalid label "high" for enum app\.priority/,
	'A: the old label is gone (22P02)');
($out, $err) = run_sql($a, 'INSERT INTO jobs VALUES (3, 2)');
is($err, '', 'A: the new code passes the domain check');
is(sq($a, 'SELECT gb_label(pr) FROM jobs WHERE id = 3'),
	'critical', 'A: gb_label of the new code');
is(sq($a, 'SELECT pg_backend_pid()'), $a_pid, 'A never reconnected');

# A REPEATABLE READ transaction of A takes in B's next rename while its
# snapshot predates it.  Inside, the old label is right; once the transaction
# ends, A must see the rename like any other session.
$node->safe_psql('postgres',
	q{SELECT gb_enum_create('app.rr', ARRAY['a', 'b'])});
is(sq($a, q{SELECT gb_enum_label('app.rr', 1::smallint)}),
	'b', 'A: app.rr code 1 is b (cache warmed)');
sq($a, 'BEGIN ISOLATION LEVEL REPEATABLE READ');
sq($a, 'SELECT 1');    # takes the transaction snapshot
$node->safe_psql('postgres', q{SELECT gb_enum_rename('app.rr', 'b', 'b2')});
# Locking a table not yet locked in this transaction processes B's
# invalidation; the lookup after it reloads labels.
sq($a, 'SELECT count(*) FROM jobs');
sq($a, q{SELECT gb_enum_label('app.rr', 1::smallint)});
sq($a, 'COMMIT');
is(sq($a, q{SELECT gb_enum_label('app.rr', 1::smallint)}),
	'b2',
	'A: after its REPEATABLE READ transaction, A sees the rename');
($out, $err) = run_sql($a, q{SELECT gb_enum_code('app.rr', 'b2')});
is($out . $err, '1', 'A: and finds the code of the new label');

###########################################################################
# 2. Prepared statements are replanned when a folded label changes
###########################################################################
$node->safe_psql(
	'postgres', q{
SELECT gb_enum_create('app.ticket', ARRAY['open', 'closed', 'pending']);
CREATE TABLE t (id int PRIMARY KEY, st app.ticket NOT NULL);
INSERT INTO t SELECT g, g % 3 FROM generate_series(1, 300) g;
CREATE INDEX t_st ON t (st);
ANALYZE t;
});
sq($a,
	q{PREPARE q AS SELECT count(*) FROM t WHERE st = gb_enum_code('app.ticket', 'closed')}
);
my @counts = map { sq($a, 'EXECUTE q') } 1 .. 6;
is("@counts", '100 100 100 100 100 100', 'A: EXECUTE q six times: 100 closed');
is( sq(
		$a,
		q{SELECT generic_plans > 0 AND custom_plans = 0 FROM pg_prepared_statements WHERE name = 'q'}
	),
	't',
	'A: q runs a cached generic plan');
like(
	sq($a, 'EXPLAIN (COSTS OFF) EXECUTE q'),
	qr/= '1'::smallint/,
	'A: the cached plan holds the code as a constant');

$node->safe_psql('postgres',
	q{SELECT gb_enum_rename('app.ticket', 'closed', 'done')});
($out, $err) = run_sql($a, 'EXECUTE q');
like(
	$err,
	qr/22P02: invalid label "closed" for enum app\.ticket/,
	'A: after B renames closed -> done, EXECUTE q fails with 22P02');
is($out, '', 'A: and returns no stale count');
sq($a,
	q{PREPARE q2 AS SELECT count(*) FROM t WHERE st = gb_enum_code('app.ticket', 'done')}
);
is(sq($a, 'EXECUTE q2'), '100', 'A: a new PREPARE with done counts 100');

# A label added back under the old name gets a new code; q must use it,
# not the constant it folded before.
is( $node->safe_psql('postgres',
		q{SELECT gb_enum_add('app.ticket', 'closed')}),
	'3',
	'B: closed added again, as code 3');
is(sq($a, 'EXECUTE q'), '0', 'A: q now counts code 3 (none), not code 1');
is(sq($a, 'EXECUTE q2'), '100', 'A: q2 still counts done');

###########################################################################
# 3. pg_dump -Fc / pg_restore
###########################################################################
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
CREATE EXTENSION gb_scale;
CREATE SCHEMA app;
SELECT gb_enum_create('app.ticket', ARRAY['open', 'closed', 'pending']);
SELECT gb_enum_create('app.prio', ARRAY['low', 'high'], ARRAY[10, 20]::smallint[]);
CREATE TABLE app.tickets (
    id int PRIMARY KEY,
    st app.ticket NOT NULL,
    pr app.prio,
    ch gb_channel_type NOT NULL,
    role gb_message_role);
INSERT INTO app.tickets
SELECT g, g % 3, CASE WHEN g % 2 = 0 THEN 10 ELSE 20 END, g % 10, (ARRAY[1, 2, 3, 4, 9, 10])[g % 6 + 1]
  FROM generate_series(1, 60) g;
-- Added while the table uses the domain: the constraint becomes NOT VALID.
SELECT gb_enum_add('app.ticket', 'escalated');
INSERT INTO app.tickets VALUES (61, 3, NULL, 9, 10);
SELECT gb_enum_rename('app.ticket', 'closed', 'done');
-- An enum no table uses, with a label added by code: every added label gives
-- a NOT VALID constraint, as arrays and domains over it could use it unseen.
SELECT gb_enum_create('unused', ARRAY['x', 'y']);
SELECT gb_enum_add('unused', 'z', 7::smallint);
});
is( $node->safe_psql(
		'src',
		q{SELECT string_agg(t.oid::regtype::text || ':' || c.convalidated, ',' ORDER BY 1)
            FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
           WHERE t.typname IN ('ticket', 'prio', 'unused')}),
	'app.prio:false,app.ticket:false,unused:false',
	'src: the constraint of every enum is NOT VALID (written after the domain by pg_dump)');

dump_and_restore('src', 'dst', 'of a database with user enums');

my %compare = (
	'labels, codes and builtin flags' =>
	  'SELECT enum_type::text, code, label, builtin FROM gb_scale.enum_label ORDER BY 1, 2',
	'domain constraints (with NOT VALID)' => q{
SELECT t.oid::regtype::text, c.conname, pg_get_constraintdef(c.oid), c.convalidated
  FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid ORDER BY 1, 2},
	'rows and their gb_label()' => q{
SELECT id, st, gb_label(st), pr, gb_label(pr), ch, gb_label(ch), role, gb_label(role)
  FROM app.tickets ORDER BY id},);
for my $what (sort keys %compare)
{
	my $src = $node->safe_psql('src', $compare{$what});
	my $dst = $node->safe_psql('dst', $compare{$what});
	is($dst, $src, "restored $what match the source");
}
is( $node->safe_psql(
		'dst',
		q{SELECT (SELECT count(*) FROM gb_scale.enum_label WHERE NOT builtin) || ' '
              || (SELECT count(*) FROM gb_scale.enum_label WHERE builtin) || ' '
              || (SELECT count(*) FROM app.tickets)}),
	'9 122 61',
	'dst: 9 user labels, 122 built-in ones, 61 rows');
is( $node->safe_psql(
		'dst',
		q{SELECT gb_enum_code('app.ticket', 'done') || ' ' || gb_enum_label('app.ticket', 3::smallint)
              || ' ' || gb_label(st) || ' ' || gb_label(7::unused)
            FROM app.tickets WHERE id = 61}),
	'1 escalated escalated z',
	'dst: renamed and added labels resolve');

($ret, $stdout, $stderr) = $node->psql('dst',
	'INSERT INTO app.tickets VALUES (100, 7, NULL, 0, NULL)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$stderr,
	qr/23514: value 7 is not a valid code for enum domain app\.ticket/,
	'dst: an invalid code is rejected by the restored (NOT VALID) domain check');
($ret, $stdout, $stderr) = $node->psql('dst',
	'INSERT INTO app.tickets VALUES (101, 0, 15, 0, NULL)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like(
	$stderr,
	qr/23514: value 15 is not a valid code for enum domain app\.prio/,
	'dst: an invalid code is rejected by the restored valid domain check');
($ret, $stdout, $stderr) = $node->psql('dst',
	'INSERT INTO app.tickets VALUES (102, 3, 20, 0, 9)');
is($ret, 0, 'dst: the added code is accepted') or diag($stderr);
is( $node->safe_psql('dst',
		q{SELECT gb_enum_add('app.ticket', 'reopened')}),
	'4',
	'dst: gb_enum_add continues after the restored codes');
($ret, $stdout, $stderr) = $node->psql('dst',
	q{SELECT gb_enum_rename('gb_channel_type', 'web', 'www')},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/55000: cannot change built-in enum/,
	'dst: built-in enums are still frozen');

# An enum in a session's temporary schema goes away with the session; its
# labels must not stay behind and break the next restore.
$node->safe_psql('postgres', 'CREATE DATABASE tmpsrc');
$node->safe_psql('tmpsrc', 'CREATE EXTENSION gb_scale');
# gb_enum_create may refuse a temporary schema; either way nothing may remain.
$node->psql('tmpsrc',
	q{SELECT gb_enum_create('pg_temp.scratch', ARRAY['a', 'b'])});
ok( $node->poll_query_until(
		'tmpsrc',
		q{SELECT NOT EXISTS (SELECT FROM pg_type WHERE typname = 'scratch')}),
	'the temporary enum went with its session');
is( $node->safe_psql(
		'tmpsrc',
		q{SELECT count(*) FROM gb_scale.enum_label l
           WHERE NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = l.enum_type)}),
	'0',
	'no labels of a dropped temporary enum remain');
dump_and_restore('tmpsrc', 'tmpdst', 'after a temporary enum');

# A domain dropped by a cascade from its default (a sequence, a function)
# takes its labels with it; a label row left behind anyway (here: a DROP in
# replica mode, where event triggers do not fire) is not dumped, so the
# restore of every other enum's labels still works.
$node->safe_psql('postgres', 'CREATE DATABASE orphsrc');
$node->safe_psql(
	'orphsrc', q{
CREATE EXTENSION gb_scale;
CREATE SEQUENCE seq;
CREATE FUNCTION dflt() RETURNS smallint LANGUAGE sql AS 'SELECT 0::smallint';
SELECT gb_enum_create('by_seq', ARRAY['a', 'b']);
SELECT gb_enum_create('by_fn', ARRAY['a']);
SELECT gb_enum_create('by_replica', ARRAY['a']);
SELECT gb_enum_create('kept', ARRAY['k0', 'k1']);
ALTER DOMAIN by_seq SET DEFAULT nextval('seq');
ALTER DOMAIN by_fn SET DEFAULT dflt();
CREATE TABLE t (k kept);
INSERT INTO t VALUES (0), (1);
DROP SEQUENCE seq CASCADE;
DROP FUNCTION dflt() CASCADE;
});
is( $node->safe_psql(
		'orphsrc',
		q{SELECT count(*) FROM gb_scale.enum_label l
           WHERE NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = l.enum_type)}),
	'0',
	'domains dropped by DROP SEQUENCE/FUNCTION ... CASCADE leave no labels');
$node->safe_psql('orphsrc',
	q{SET session_replication_role = replica; DROP DOMAIN by_replica;});
is( $node->safe_psql(
		'orphsrc',
		q{SELECT count(*) FROM gb_scale.enum_label l
           WHERE NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = l.enum_type)}),
	'1',
	'a drop without event triggers leaves a label row (the case the dump filter covers)');
dump_and_restore('orphsrc', 'orphdst', 'with a label row of a dropped domain');
is( $node->safe_psql('orphdst',
		q{SELECT string_agg(gb_label(k), ',' ORDER BY k) FROM t}),
	'k0,k1', 'the other enums keep their labels in the restored database');
# The next drop event removes the row left behind.
$node->safe_psql('orphsrc', q{CREATE TABLE scratch (); DROP TABLE scratch;});
is( $node->safe_psql(
		'orphsrc',
		q{SELECT count(*) FROM gb_scale.enum_label l
           WHERE NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = l.enum_type)}),
	'0',
	'the next drop of anything removes labels of domains that are gone');

###########################################################################
# 4. Concurrent gb_enum_add; writers are not blocked
###########################################################################
$node->safe_psql(
	'postgres', q{
SELECT gb_enum_create('app.conc', ARRAY['a', 'b']);
CREATE TABLE ct (id serial PRIMARY KEY, v app.conc NOT NULL);
INSERT INTO ct (v) SELECT g % 2 FROM generate_series(1, 100) g;
});
my $x = open_session('postgres');
my $y = open_session('postgres');
my $z = open_session('postgres');

sq($x, 'BEGIN');
is(sq($x, q{SELECT gb_enum_add('app.conc', 'x')}),
	'2', 'X: adds x (code 2) and keeps its transaction open');

# Z writes to the table meanwhile.  A lock wait would end in an error after
# a few seconds rather than hang.
sq($z, q{SET lock_timeout = '3s'});
sq($z, q{SET statement_timeout = '5s'});
($out, $err) = run_sql($z,
	'INSERT INTO ct (v) SELECT g % 2 FROM generate_series(1, 50) g');
is($err, '', 'Z: inserts into the table while X is open');
($out, $err) = run_sql($z, 'UPDATE ct SET v = 1 WHERE id = 1');
is($err, '', 'Z: updates the table while X is open');
is(sq($z, 'SELECT count(*) || string_agg(DISTINCT gb_label(v), \',\') FROM ct'),
	'150a,b', 'Z: reads the table and its labels while X is open');
($out, $err) = run_sql($z, 'INSERT INTO ct (v) VALUES (2)');
like($err, qr/23514/, q{Z: X's code is not valid before X commits});

# Y adds another label to the same enum: it waits for X, then takes the
# next code.  Sent without waiting for the result.
my $y_pid = sq($y, 'SELECT pg_backend_pid()');
sq($y, q{SET lock_timeout = '60s'});
$y->{stderr} = '';
$y->{stdin} .= qq{SELECT gb_enum_add('app.conc', 'y');\n\\echo 'Y-DONE'\n};
$y->{run}->pump_nb;
# Bounded poll: stop early if Y finishes without waiting.
my $y_waits = 0;
for (1 .. 300)
{
	$y->{run}->pump_nb;
	last if $y->{stdout} =~ /Y-DONE/;
	$y_waits = $node->safe_psql('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $y_pid"
	) eq 't';
	last if $y_waits;
	usleep(100_000);
}
ok($y_waits, 'Y: its gb_enum_add waits for X');
is(sq($x, 'SELECT 1'), '1', 'X: still open while Y waits');
sq($x, 'COMMIT');
$y->{timeout}->start;
pump_until($y->{run}, $y->{timeout}, \$y->{stdout}, qr/Y-DONE/);
my $y_out = $y->{stdout};
$y->{stdout} = '';
is($y_out, "3\nY-DONE\n", 'Y: gets code 3 once X commits');
is($y->{stderr}, '', 'Y: without an error');
$y->{stderr} = '';

is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(code || '=' || label, ',' ORDER BY code) FROM gb_enum_labels('app.conc')}
	),
	'0=a,1=b,2=x,3=y',
	'both labels are there, with distinct codes');
like(
	$node->safe_psql(
		'postgres',
		q{SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = 'app.conc'::regtype}
	),
	qr/'\{0,1,2,3\}'::smallint\[\]/,
	'the domain constraint has both codes');
($out, $err) = run_sql($z, 'INSERT INTO ct (v) VALUES (2), (3)');
is($err, '', 'Z: both new codes are accepted');
is( sq(
		$z,
		q{SELECT string_agg(gb_label(v), ',' ORDER BY v) FROM ct WHERE v >= 2}),
	'x,y',
	'Z: and labelled');

$_->quit for ($a, $x, $y, $z);

###########################################################################
# 5. DROP EXTENSION ... CASCADE, CREATE EXTENSION again
###########################################################################
$node->safe_psql('postgres', 'CREATE DATABASE scratch');
$node->safe_psql(
	'scratch', q{
CREATE EXTENSION gb_scale;
CREATE SCHEMA app;
SELECT gb_enum_create('app.s', ARRAY['a', 'b']);
SELECT gb_enum_create('public.p', ARRAY['a']);
CREATE TABLE app.st (id int, s app.s, ch gb_channel_type);
INSERT INTO app.st VALUES (1, 1, 2);
});
($ret, $stdout, $stderr) =
  $node->psql('scratch', 'DROP EXTENSION gb_scale CASCADE');
is($ret, 0, 'DROP EXTENSION gb_scale CASCADE') or diag($stderr);
is( $node->safe_psql(
		'scratch', q{
SELECT (SELECT count(*) FROM pg_event_trigger) || ' '
    || (SELECT count(*) FROM pg_namespace WHERE nspname = 'gb_scale') || ' '
    || (SELECT count(*) FROM pg_type WHERE typname = 'gb_channel_type') || ' '
    || (SELECT count(*) FROM pg_constraint WHERE contypid = 'app.s'::regtype)}),
	'0 0 0 0',
	'no event trigger, schema, built-in domain or enum constraint is left');
($ret, $stdout, $stderr) =
  $node->psql('scratch', 'DROP DOMAIN app.s CASCADE; DROP DOMAIN p');
is($ret, 0, 'the former enum domains can be dropped') or diag($stderr);
($ret, $stdout, $stderr) = $node->psql('scratch', 'CREATE EXTENSION gb_scale');
is($ret, 0, 'CREATE EXTENSION gb_scale again') or diag($stderr);
is( $node->safe_psql(
		'scratch', q{
SELECT gb_enum_create('app.s', ARRAY['a', 'b']);
SELECT gb_label(1::app.s) || ' ' || (SELECT count(*) FROM gb_scale.enum_label WHERE builtin);
DROP DOMAIN app.s;
SELECT count(*) FROM gb_scale.enum_label WHERE NOT builtin;}),
	"app.s\nb 122\n0",
	'the new extension creates, labels and drops enums');

# Dropping the extension's schema takes the extension along.
$node->safe_psql('scratch',
	q{SELECT gb_enum_create('public.p', ARRAY['a'])});
($ret, $stdout, $stderr) =
  $node->psql('scratch', 'DROP SCHEMA public CASCADE');
is($ret, 0, 'DROP SCHEMA public CASCADE with gb_scale in it') or diag($stderr);
($ret, $stdout, $stderr) = $node->psql('scratch',
	'CREATE SCHEMA public; CREATE EXTENSION gb_scale');
is($ret, 0, 'and CREATE EXTENSION again') or diag($stderr);

$node->stop;
done_testing();
