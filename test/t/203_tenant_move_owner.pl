# Moving a tenant (issue 17) when the tables' owner is not a superuser.
# PostgreSQL 15 applies a subscription's changes as its owner, a superuser,
# and the move's own clean-up statements on the target run over a
# superuser's connection: the owner's code must never run with those
# rights.  Two shards (1, 4); gb.notes is owned by tab_owner, with a
# trigger function of tab_owner that records current_user:
#  1. the trigger enabled ALWAYS on the target (the apply would fire it):
#     the move is refused before anything is made (42501 naming it);
#  2. a CHECK constraint calling a function of tab_owner: refused likewise;
#  3. with the trigger firing on origin only, the move is done; the
#     shard_id rewrite on the target fired the trigger as tab_owner, never
#     as postgres;
#  4. an abort deletes the copied rows on the target as tab_owner too;
#  5. the tenant's own partitions of a list-layout table (gb_tenant_dedicate)
#     are made on the target first and receive its rows;
#  6. rows that join by ATTACH PARTITION (no row trigger fires): refused
#     while the tenant moves (also gb_tenant_dedicate's, which moves rows
#     into a table it then attaches), and once another shard serves it.
#  7. a purge on the source passes the fence for its deletes only: the
#     owner's trigger that it fires cannot write a row of the moved tenant.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use GbScaleTest qw(shards_start sq q_error psql_run tenant_digest no_move_objects);
use Test::More;

shards_start(2);

for my $s (1, 4)
{
	sq($s, q{
		CREATE ROLE tab_owner;
		GRANT USAGE, CREATE ON SCHEMA gb TO tab_owner;
		ALTER TABLE gb.sessions REPLICA IDENTITY FULL;
		ALTER TABLE gb.messages REPLICA IDENTITY FULL;
		CREATE TABLE gb.notes (
		    shard_id smallint NOT NULL DEFAULT gb_current_shard(),
		    id bigint NOT NULL DEFAULT gb_next_id(),
		    tenant_id bigint NOT NULL,
		    note text NOT NULL,
		    created_at timestamptz NOT NULL DEFAULT '2026-06-01',
		    PRIMARY KEY (shard_id, id, tenant_id, created_at)) PARTITION BY RANGE (created_at);
		CREATE TABLE gb.notes_2026 PARTITION OF gb.notes FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		ALTER TABLE gb.notes REPLICA IDENTITY FULL;
		ALTER TABLE gb.notes_2026 REPLICA IDENTITY FULL;
		CREATE TABLE gb.seen (who name, what text);
		ALTER TABLE gb.notes OWNER TO tab_owner;
		ALTER TABLE gb.notes_2026 OWNER TO tab_owner;
		ALTER TABLE gb.seen OWNER TO tab_owner;
		SELECT gb_tenant_isolation_enable('gb.notes');
		CREATE FUNCTION gb.note_seen() RETURNS trigger LANGUAGE plpgsql
		  AS $$BEGIN INSERT INTO gb.seen VALUES (current_user, TG_OP); RETURN COALESCE(NEW, OLD); END$$;
		ALTER FUNCTION gb.note_seen() OWNER TO tab_owner;
		CREATE TRIGGER note_seen BEFORE INSERT OR UPDATE OR DELETE ON gb.notes
		  FOR EACH ROW EXECUTE FUNCTION gb.note_seen();
		CREATE FUNCTION gb.note_ok(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$SELECT true$$;
		ALTER FUNCTION gb.note_ok(text) OWNER TO tab_owner;
		CREATE TABLE gb.events (
		    shard_id smallint NOT NULL DEFAULT gb_current_shard(),
		    id bigint NOT NULL DEFAULT gb_next_id(),
		    tenant_id bigint NOT NULL,
		    created_at timestamptz NOT NULL DEFAULT now(),
		    PRIMARY KEY (shard_id, id, tenant_id, created_at)) PARTITION BY LIST (tenant_id);
		SELECT gb_partition_create('gb.events', 'created_at', '1 month', tenant_column => 'tenant_id');
	});
}
sq(1, q{
	INSERT INTO gb.sessions (tenant_id, user_ref) SELECT 42, 'user' || g FROM generate_series(1, 20) g;
	INSERT INTO gb.notes (tenant_id, note) SELECT 42, 'note ' || g FROM generate_series(1, 30) g;
	TRUNCATE gb.seen;
	INSERT INTO gb.events (tenant_id) SELECT t FROM generate_series(1, 40) g, (VALUES (42), (43)) v(t);
});
my @tables = ('gb.sessions', 'gb.notes', 'gb.events');
my $kept = tenant_digest(1, 42, @tables);
my $call = 'CALL gb_tenant_move(42, 4::smallint)';

# 1. a trigger that the apply fires
sq(4, 'ALTER TABLE gb.notes ENABLE ALWAYS TRIGGER note_seen');
like(q_error(1, $call),
	qr/^42501: cannot move a tenant to shard 4: table gb\.notes(_2026)? has trigger note_seen, which fires for replicated rows/,
	'an ALWAYS trigger of a non-superuser on the target: 42501 naming it');
is(sq(1, 'SELECT count(*) FROM gb_scale.tenant_move') . ' ' . no_move_objects(1) . ' ' . no_move_objects(4),
	'0 0 0 0 0 0 0', 'refused before anything is made');
sq(4, 'ALTER TABLE gb.notes ENABLE REPLICA TRIGGER note_seen');
like(q_error(1, $call), qr/^42501: .*trigger note_seen/, 'a REPLICA trigger likewise');
sq(4, 'ALTER TABLE gb.notes ENABLE TRIGGER note_seen');

# 2. a function of the owner in a constraint
sq(4, q{ALTER TABLE gb.notes ADD CONSTRAINT note_checked CHECK (gb.note_ok(note))});
like(q_error(1, $call),
	qr/^42501: cannot move a tenant to shard 4: table gb\.notes uses function gb\.note_ok\(text\) of role tab_owner/,
	'a CHECK calling a function of a non-superuser: 42501 naming it');
sq(4, 'ALTER TABLE gb.notes DROP CONSTRAINT note_checked');

# 4. an abort: the copied rows go as the owner
my ($r, $o, $e) = psql_run(1, 'SET gb_scale.move_switch = off; ' . $call);
is($r, 0, 'a move with an origin-only trigger on the target runs') or diag($e);
is(sq(4, 'SELECT count(*) FROM gb.seen'), '0', 'the apply did not fire the origin trigger');

# Rows that join by ATTACH fire no row trigger: rows of the moving tenant
# are refused while the move runs (it would not copy them).
my $attach = q{ALTER TABLE gb.notes ATTACH PARTITION gb.notes_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')};
sq(1, q{
	CREATE TABLE gb.notes_2024 (LIKE gb.notes INCLUDING DEFAULTS);
	INSERT INTO gb.notes_2024 (tenant_id, note, created_at) VALUES (42, 'old', '2024-06-01');
});
like(q_error(1, $attach), qr/^55000: table gb\.notes_2024 holds rows of tenant 42, which is being moved from this shard/,
	'ATTACH of a partition with rows of the moving tenant: 55000');

# Moving rows between partitions (gb_tenant_dedicate here, a drain alike)
# deletes them here and inserts them into a table not attached yet, then
# attaches it: the move would see them leave and never arrive, and lose
# them on the target.  The ATTACH is refused while the tenant moves.
like(q_error(1, q{SELECT gb_tenant_dedicate('gb.events', 42)}),
	qr/^55000: table gb\.events_t42 holds rows of tenant 42, which is being moved from this shard/,
	'gb_tenant_dedicate of the moving tenant on the source: 55000');
is(sq(1, q{SELECT count(*) FROM gb.events_tenants WHERE tenant_id = 42}), '40', 'its rows stay where they were');
($r, $o, $e) = psql_run(1, 'SELECT gb_tenant_move_abort(42)');
is($r, 0, 'gb_tenant_move_abort(42)') or diag($e);
is(sq(4, q{SELECT string_agg(DISTINCT who || ' ' || what, ',') FROM gb.seen}), 'tab_owner DELETE',
	'the abort deleted the copied rows as the owner, not as postgres');
is(sq(4, 'SELECT count(*) FROM gb.notes'), '0', 'and all of them');
sq(4, 'TRUNCATE gb.seen');
is(sq(1, q{SELECT gb_tenant_dedicate('gb.events', 42)}), '40', 'with no move, gb_tenant_dedicate moves its rows');

# 3. the move, done: the shard_id rewrite runs as the owner
($r, $o, $e) = psql_run(1, $call);
is($r, 0, 'the move is done') or diag($e);
is(sq(1, q{SELECT state FROM gb_scale.tenant_moves WHERE tenant_id = 42 AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1}),
	'done', 'gb_scale.tenant_moves: done');
is(sq(4, q{SELECT string_agg(DISTINCT who || ' ' || what, ',') FROM gb.seen}), 'tab_owner UPDATE',
	'the target rewrote shard_id as the owner, not as postgres');
is(sq(4, q{SELECT count(*) FILTER (WHERE shard_id = 4) || '/' || count(*) FROM gb.notes WHERE tenant_id = 42}), '30/30',
	'every copied note has the target\'s shard_id');
is(tenant_digest(4, 42, @tables), $kept, 'the target holds the tenant\'s rows');
is(sq(4, q{SELECT (SELECT count(*) FROM gb.events_t42) || ' ' || (SELECT count(*) FROM gb.events_tenants WHERE tenant_id = 42)
	|| ' ' || (SELECT subtree FROM gb_scale.partition_tenant WHERE tenant_id = 42)}),
	'40 0 gb.events_t42', 'the tenant\'s own partitions were made on the target first, and hold its rows there');
is(sq(1, q{SELECT to_regclass('gb.events_t42') IS NULL}), 't', 'the purge dropped them on the source');
is(no_move_objects(1) . ' ' . no_move_objects(4), '0 0 0 0 0 0', 'no slot, publication or subscription is left');

# After the switch the source serves the tenant no more: rows of it that
# join by ATTACH are refused (they would be split from the tenant's rows on
# shard 4); rows of a tenant served here may join.
like(q_error(1, $attach), qr/^55000: table gb\.notes_2024 holds rows of tenant 42, which shard 4 serves, not this shard \(1\)/,
	'ATTACH of rows of a tenant served by another shard: 55000');
sq(1, 'UPDATE gb.notes_2024 SET tenant_id = 43');
is((psql_run(1, $attach))[0], 0, 'rows of a tenant not served elsewhere may join');

# 7. A purge passes the fence to delete rows of a tenant served elsewhere,
# never to make one.  The owner's trigger, fired as the owner by the purge
# of tenant 43 here, writes a row of tenant 42, which shard 4 serves, into
# gb.events (a managed table without tenant isolation: no row security
# refuses it): refused, and the whole purge with it.
sq(1, q{
	INSERT INTO gb.notes (tenant_id, note) VALUES (43, 'of 43');
	GRANT INSERT ON gb.events TO tab_owner;
	CREATE FUNCTION gb.note_smuggle() RETURNS trigger LANGUAGE plpgsql
	  AS $$BEGIN INSERT INTO gb.events (tenant_id) VALUES (42); RETURN OLD; END$$;
	ALTER FUNCTION gb.note_smuggle() OWNER TO tab_owner;
	CREATE TRIGGER note_smuggle AFTER DELETE ON gb.notes FOR EACH ROW EXECUTE FUNCTION gb.note_smuggle();
});
like(q_error(1, 'SELECT count(*) FROM gb_tenant_purge(43)'),
	qr/^40001: tenant 42 is served by shard 4, not by this shard \(1\)/,
	'a purge\'s owner trigger writing a row of a tenant served elsewhere: 40001');
is(sq(1, q{SELECT (SELECT count(*) FROM gb.events WHERE tenant_id = 42) || ' ' || (SELECT count(*) FROM gb.notes WHERE tenant_id = 43)}),
	'0 2', 'nothing of that purge was kept');
sq(1, 'DROP TRIGGER note_smuggle ON gb.notes');
is(sq(1, q{SELECT string_agg(table_name || ' ' || rows_removed, ', ' ORDER BY table_name::text) FROM gb_tenant_purge(43)}),
	'gb.events 40, gb.messages 0, gb.notes 2, gb.sessions 0', 'without that trigger the purge runs');

done_testing();
