-- pgTAP: SMALLINT enum domains.  The built-in General Bots enums, the
-- gb_enum_create/add/rename API and its SQLSTATEs, the lookups, the guard
-- (built-ins frozen, codes never removed, only owners change labels), adding
-- a label without locking or rewriting tables, and planner folding of
-- gb_enum_code().  Run by pg_prove in a database that has pgtap and gb_scale.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- Fixtures for the "no lock, no scan, no rewrite" tests.  They are committed
-- before the test transaction so that the transaction holds no lock on their
-- tables until gb_enum_add runs; they are dropped again at the end.
DROP SCHEMA IF EXISTS enum_fx CASCADE;
CREATE SCHEMA enum_fx;
DO $$
BEGIN
    PERFORM gb_enum_create('enum_fx.lk_state', ARRAY['new', 'open', 'closed']);
    PERFORM gb_enum_create('enum_fx.sub_base', ARRAY['a', 'b']);
    PERFORM gb_enum_create('enum_fx.arr_base', ARRAY['a', 'b']);
END
$$;
CREATE TABLE enum_fx.lk_tickets (id int PRIMARY KEY, st enum_fx.lk_state NOT NULL);
INSERT INTO enum_fx.lk_tickets SELECT g, (g % 3)::smallint FROM generate_series(1, 1000) g;
-- A column typed with a domain over an enum domain, and an array of one.
CREATE DOMAIN enum_fx.sub_dom AS enum_fx.sub_base;
CREATE TABLE enum_fx.sub_t (c enum_fx.sub_dom);
INSERT INTO enum_fx.sub_t SELECT (g % 2)::smallint FROM generate_series(1, 100) g;
CREATE TABLE enum_fx.arr_t (c enum_fx.arr_base[]);
INSERT INTO enum_fx.arr_t VALUES ('{0,1}');

BEGIN;
SELECT plan(162);

-- An error's SQLSTATE and message, or its DETAIL or HINT: throws_ok checks
-- only the first two.
CREATE FUNCTION pg_temp.enum_err(sql text, part text DEFAULT 'message') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    det text;
    hnt text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN CASE part WHEN 'detail' THEN det WHEN 'hint' THEN hnt ELSE st || ' ' || msg END;
END
$$;

-- EXPLAIN output as one text: a query cannot select FROM (EXPLAIN ...).
CREATE FUNCTION pg_temp.enum_explain(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END
$$;

------------------------------------------------------------------------------
-- Built-in enums
------------------------------------------------------------------------------
CREATE TEMP TABLE builtin_names (name text PRIMARY KEY, nlabels int);
INSERT INTO builtin_names VALUES
    ('gb_channel_type', 10), ('gb_message_role', 6), ('gb_message_type', 9),
    ('gb_llm_provider', 10), ('gb_context_provider', 7), ('gb_task_status', 8),
    ('gb_task_priority', 5), ('gb_execution_mode', 3), ('gb_risk_level', 5),
    ('gb_approval_status', 5), ('gb_approval_decision', 3), ('gb_intent_type', 9),
    ('gb_memory_type', 5), ('gb_sync_status', 5), ('gb_booking_status', 5),
    ('gb_resource_type', 6), ('gb_permission_level', 5), ('gb_safety_outcome', 4),
    ('gb_designer_change_type', 8), ('gb_plan_tier', 4);

SELECT is((SELECT count(*) FROM pg_type t JOIN builtin_names b ON b.name = t.typname
            WHERE t.typnamespace = 'public'::regnamespace AND t.typtype = 'd'
              AND t.typbasetype = 'int2'::regtype),
          20::bigint, 'the 20 built-in enums are smallint domains in the extension schema');
SELECT domain_type_is('public', 'gb_channel_type', 'smallint', 'gb_channel_type is a domain over smallint');
SELECT domain_type_is('public', 'gb_message_role', 'smallint', 'gb_message_role is a domain over smallint');
SELECT domain_type_is('public', 'gb_plan_tier', 'smallint', 'gb_plan_tier is a domain over smallint');
SELECT is((SELECT count(*) FROM pg_depend d JOIN pg_type t ON d.classid = 'pg_type'::regclass AND d.objid = t.oid
                                   JOIN builtin_names b ON b.name = t.typname
            WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
              AND t.typnamespace = 'public'::regnamespace),
          20::bigint, 'the built-in domains are members of the extension');
SELECT is((SELECT count(*) FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
                                               JOIN builtin_names b ON b.name = t.typname
            WHERE c.conname = 'gb_enum_codes' AND c.contype = 'c' AND NOT c.convalidated
              AND t.typnamespace = 'public'::regnamespace),
          20::bigint, 'each built-in domain has one gb_enum_codes CHECK constraint, NOT VALID (pg_dump writes it after the domain)');
SELECT is((SELECT count(*) FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
                                               JOIN builtin_names b ON b.name = t.typname
            WHERE t.typnamespace = 'public'::regnamespace),
          20::bigint, 'and no other constraint');
SELECT is((SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
            WHERE c.contypid = 'gb_message_role'::regtype AND c.conname = 'gb_enum_codes'),
          $$CHECK (gb_scale.enum_check(VALUE, 'gb_message_role'::regtype, '{1,2,3,4,9,10}'::smallint[])) NOT VALID$$,
          'the constraint carries the domain name and its codes');
SELECT is((SELECT count(*) FROM gb_scale.enum_label l JOIN builtin_names b ON b.name = l.enum_type::text
            WHERE l.builtin), 122::bigint, 'the built-ins have 122 labels, all flagged builtin');
SELECT is((SELECT count(*) FROM builtin_names b
            WHERE b.nlabels <> (SELECT count(*) FROM gb_enum_labels(b.name::regtype))),
          0::bigint, 'each built-in has its expected number of labels');
SELECT is((SELECT count(*) FROM gb_scale.enum_label l WHERE l.builtin
              AND l.enum_type::text NOT IN (SELECT name FROM builtin_names)),
          0::bigint, 'no other type is flagged builtin');
SELECT results_eq($$SELECT code, label FROM gb_enum_labels('gb_message_role')$$,
                  $$VALUES (1::smallint, 'user'), (2::smallint, 'assistant'), (3::smallint, 'system'),
                           (4::smallint, 'tool'), (9::smallint, 'episodic'), (10::smallint, 'compact')$$,
                  'gb_message_role codes follow General Bots (with gaps)');
SELECT results_eq($$SELECT array_agg(label ORDER BY code)::text, min(code), max(code) FROM gb_enum_labels('gb_channel_type')$$,
                  $$VALUES ('{web,whatsapp,telegram,msteams,slack,email,sms,voice,instagram,api}', 0::smallint, 9::smallint)$$,
                  'gb_channel_type labels are 0..9');
SELECT results_eq($$SELECT code, label FROM gb_enum_labels('gb_plan_tier')$$,
                  $$VALUES (0::smallint, 'free'), (1::smallint, 'starter'), (2::smallint, 'pro'), (3::smallint, 'enterprise')$$,
                  'gb_plan_tier labels');
SELECT is((SELECT array_agg(label ORDER BY code)::text FROM gb_enum_labels('gb_task_status')),
          '{pending,ready,running,paused,waiting_approval,completed,failed,cancelled}',
          'gb_task_status labels in code order');

-- The domain check.
SELECT throws_ok($$SELECT 5::gb_message_role$$, '23514',
                 'value 5 is not a valid code for enum domain public.gb_message_role',
                 'a code between valid ones is rejected with 23514 naming the domain');
SELECT is(pg_temp.enum_err($$SELECT 5::gb_message_role$$, 'detail'),
          'Valid codes: 1 (user), 2 (assistant), 3 (system), 4 (tool), 9 (episodic), 10 (compact).',
          'the DETAIL lists the valid codes with their labels');
SELECT throws_ok($$SELECT (-1)::gb_channel_type$$, '23514', NULL, 'a negative code is rejected');
CREATE TEMP TABLE msgs (id int PRIMARY KEY, role gb_message_role, ch gb_channel_type);
SELECT throws_like($$INSERT INTO msgs VALUES (1, 11, 0)$$, '%not a valid code for enum domain public.gb_message_role%',
                   'an invalid code in an INSERT names the domain');
SELECT lives_ok($$INSERT INTO msgs VALUES (1, 9, 9), (2, NULL, NULL), (3, 1, 0), (4, 10, 5)$$,
                'valid codes and NULL pass the domains');
SELECT throws_ok($$UPDATE msgs SET ch = 10 WHERE id = 3$$, '23514', NULL, 'an UPDATE to code 10 of gb_channel_type: 23514');
SELECT is((SELECT count(*) FROM msgs WHERE role IS NULL AND ch IS NULL), 1::bigint, 'NULL was stored');

------------------------------------------------------------------------------
-- gb_enum_create
------------------------------------------------------------------------------
CREATE SCHEMA app;
CREATE SCHEMA app2;
SELECT is(gb_enum_create('app.ticket', ARRAY['open', 'closed', 'pending'])::text, 'app.ticket',
          'gb_enum_create returns the new domain');
SELECT domain_type_is('app', 'ticket', 'smallint', 'app.ticket is a domain over smallint');
SELECT results_eq($$SELECT code, label FROM gb_enum_labels('app.ticket')$$,
                  $$VALUES (0::smallint, 'open'), (1::smallint, 'closed'), (2::smallint, 'pending')$$,
                  'codes default to 0..n-1 in label order');
SELECT is((SELECT pg_get_constraintdef(c.oid) || ' ' || c.convalidated FROM pg_constraint c
            WHERE c.contypid = 'app.ticket'::regtype AND c.conname = 'gb_enum_codes'),
          $$CHECK (gb_scale.enum_check(VALUE, 'app.ticket'::regtype, '{0,1,2}'::smallint[])) NOT VALID false$$,
          'a new enum gets a NOT VALID constraint with its codes');
SELECT is((SELECT bool_and(NOT builtin) FROM gb_scale.enum_label WHERE enum_type = 'app.ticket'::regtype), true,
          'user labels are not builtin (so pg_dump dumps them)');

SET LOCAL search_path = app2, public;
SELECT is(gb_enum_create('prio', ARRAY['low', 'high', 'max'], ARRAY[10, 20, 30]::smallint[])::text, 'prio',
          'an unqualified name ...');
SELECT is((SELECT typnamespace::regnamespace::text FROM pg_type WHERE typname = 'prio'), 'app2',
          '... goes to the first schema of search_path');
SELECT results_eq($$SELECT code, label FROM gb_enum_labels('app2.prio')$$,
                  $$VALUES (10::smallint, 'low'), (20::smallint, 'high'), (30::smallint, 'max')$$,
                  'explicit codes are kept');
RESET search_path;
SELECT is(gb_enum_create('app."Mixed Case"', ARRAY['x'])::text, 'app."Mixed Case"',
          'a quoted name keeps its case and spaces');
SELECT is(gb_enum_create('APP.Upper', ARRAY['x'])::text, 'app.upper', 'an unquoted name is folded to lower case');
SELECT is(gb_label(0::app."Mixed Case"), 'x', 'and its labels resolve');
SELECT throws_ok($$SELECT 7::app2.prio$$, '23514', 'value 7 is not a valid code for enum domain app2.prio',
                 'explicit codes: others are rejected');

SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY[]::text[])$$, '22023', NULL, 'no labels: 22023');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY['a', 'b', 'a'])$$, '22023',
                 'gb_enum_create: label "a" appears more than once', 'a duplicate label: 22023');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY['a', ''])$$, '22023', NULL, 'an empty label: 22023');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY['a', NULL])$$, '22004', NULL, 'a NULL label: 22004');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY[['a'], ['b']])$$, '22023', NULL, 'a two-dimensional array: 22023');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY['a', 'b'], ARRAY[1]::smallint[])$$, '22023',
                 'gb_enum_create: 2 labels but 1 codes', 'fewer codes than labels: 22023');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY['a'], ARRAY[1, 2]::smallint[])$$, '22023', NULL,
                 'more codes than labels: 22023');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY['a', 'b'], ARRAY[0, -3]::smallint[])$$, '22023',
                 'gb_enum_create: code -3 is invalid', 'a negative code: 22023');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY['a', 'b'], ARRAY[0, NULL]::smallint[])$$, '22023', NULL,
                 'a NULL code: 22023');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', ARRAY['a', 'b'], ARRAY[4, 4]::smallint[])$$, '22023',
                 'gb_enum_create: code 4 appears more than once', 'a duplicate code: 22023');
SELECT throws_ok($$SELECT gb_enum_create(NULL, ARRAY['a'])$$, '22004', NULL, 'a NULL name: 22004');
SELECT throws_ok($$SELECT gb_enum_create('app.e1', NULL)$$, '22004', NULL, 'NULL labels: 22004');
SELECT throws_ok($$SELECT gb_enum_create('app.ticket', ARRAY['a'])$$, '42710', NULL, 'an existing name: 42710');
SELECT throws_ok($$SELECT gb_enum_create('nosuchschema.e1', ARRAY['a'])$$, '3F000', NULL, 'a missing schema: 3F000');
SELECT is((SELECT count(*) FROM pg_type WHERE typname = 'e1'), 0::bigint, 'no failed call left a domain behind');
SELECT is((SELECT count(*) FROM gb_scale.enum_label l WHERE NOT EXISTS (SELECT FROM pg_type t WHERE t.oid = l.enum_type)),
          0::bigint, 'no label refers to a missing type');

-- The domain check on a user enum.
SELECT throws_ok($$SELECT 3::app.ticket$$, '23514', 'value 3 is not a valid code for enum domain app.ticket',
                 'user enum: a code past the last one is rejected');
SELECT is(pg_temp.enum_err($$SELECT 3::app.ticket$$, 'detail'), 'Valid codes: 0 (open), 1 (closed), 2 (pending).',
          'user enum: DETAIL lists its codes');
SELECT is(pg_temp.enum_err($$SELECT 3::app.ticket$$, 'hint'),
          $$Add a label with gb_enum_add('app.ticket', label) to make a new code valid.$$,
          'user enum: HINT tells how to add a code');
SELECT is(2::app.ticket::smallint, 2::smallint, 'user enum: a valid code passes');

------------------------------------------------------------------------------
-- gb_enum_add
------------------------------------------------------------------------------
SELECT is(gb_enum_add('app.ticket', 'escalated'), 3::smallint, 'gb_enum_add takes max + 1 by default');
SELECT is(gb_enum_add('app.ticket', 'archived', 10::smallint), 10::smallint, 'an explicit code is used');
SELECT is(gb_enum_add('app.ticket', 'reopened'), 11::smallint, 'the next default is after the highest code');
SELECT is(gb_enum_add('app.ticket', 'gap', 5::smallint), 5::smallint, 'an explicit code in a gap is accepted');
SELECT is((SELECT array_agg(code ORDER BY code)::text FROM gb_enum_labels('app.ticket')), '{0,1,2,3,5,10,11}',
          'the enum has every added code');
SELECT is((SELECT count(*) FROM pg_constraint WHERE contypid = 'app.ticket'::regtype), 1::bigint,
          'still exactly one domain constraint');
SELECT matches((SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = 'app.ticket'::regtype),
               $re$'\{0,1,2,3,5,10,11\}'::smallint\[\]$re$, 'the constraint was replaced with the new codes');
SELECT lives_ok($$SELECT 11::app.ticket, 10::app.ticket, 5::app.ticket, 3::app.ticket$$, 'added codes pass the domain');
SELECT throws_ok($$SELECT 4::app.ticket$$, '23514', NULL, 'a code still unassigned is rejected');
SELECT throws_ok($$SELECT gb_enum_add('app.ticket', 'again', 1::smallint)$$, '23505',
                 'code 1 of enum app.ticket is already used by label "closed"', 'a used code: 23505');
SELECT throws_ok($$SELECT gb_enum_add('app.ticket', 'open')$$, '42710',
                 'enum app.ticket already has label "open"', 'an existing label: 42710');
SELECT throws_ok($$SELECT gb_enum_add('int4', 'x')$$, '42809', NULL, 'a type that is not an enum: 42809');
CREATE DOMAIN app.plain AS smallint;
SELECT throws_ok($$SELECT gb_enum_add('app.plain', 'x')$$, '42809', NULL, 'a smallint domain that is not an enum: 42809');
SELECT throws_ok($$SELECT gb_enum_add(NULL, 'x')$$, '22004', NULL, 'a NULL type: 22004');
SELECT throws_ok($$SELECT gb_enum_add('app.ticket', NULL)$$, '22004', NULL, 'a NULL label: 22004');
-- The same SQLSTATE as gb_enum_create gives for the same mistakes.
SELECT throws_ok($$SELECT gb_enum_add('app.ticket', 'neg', (-2)::smallint)$$, '22023', NULL, 'a negative code is refused');
SELECT throws_ok($$SELECT gb_enum_add('app.ticket', '')$$, '22023', NULL, 'an empty label is refused');
SELECT is((SELECT count(*) FROM gb_enum_labels('app.ticket')), 7::bigint, 'refused additions left no label');

------------------------------------------------------------------------------
-- gb_enum_rename
------------------------------------------------------------------------------
SELECT lives_ok($$SELECT gb_enum_rename('app.ticket', 'closed', 'done')$$, 'gb_enum_rename');
SELECT is(gb_enum_label('app.ticket', 1::smallint), 'done', 'the code keeps its value under the new label');
SELECT is(gb_enum_code('app.ticket', 'done'), 1::smallint, 'the new label finds the old code');
SELECT throws_ok($$SELECT gb_enum_code('app.ticket', 'closed')$$, '22P02', NULL, 'the old label is gone');
SELECT throws_ok($$SELECT gb_enum_rename('app.ticket', 'nope', 'x')$$, '22P02',
                 'enum app.ticket has no label "nope"', 'an unknown old label: 22P02');
SELECT is(pg_temp.enum_err($$SELECT gb_enum_rename('app.ticket', 'nope', 'x')$$, 'hint'),
          'Valid labels: open, done, pending, escalated, gap, archived, reopened.',
          'its HINT lists the labels in code order');
SELECT throws_ok($$SELECT gb_enum_rename('app.ticket', 'open', 'pending')$$, '42710', NULL,
                 'renaming to an existing label: 42710');
SELECT throws_ok($$SELECT gb_enum_rename('int4', 'a', 'b')$$, '42809', NULL,
                 'renaming a label of a type that is not an enum: 42809, as gb_enum_add');
SELECT lives_ok($$SELECT gb_enum_add('app.ticket', 'closed')$$, 'a renamed-away label can be added again ...');
SELECT is(gb_enum_code('app.ticket', 'closed'), 12::smallint, '... with a new code, never the old one');

------------------------------------------------------------------------------
-- Lookups
------------------------------------------------------------------------------
SELECT is(gb_enum_label('gb_message_role', 9::smallint), 'episodic', 'gb_enum_label');
SELECT is(gb_enum_code('gb_message_role', 'tool'), 4::smallint, 'gb_enum_code');
SELECT is(gb_label(9::gb_message_role), 'episodic', 'gb_label of a built-in value');
SELECT is(gb_label(10::app.ticket), 'archived', 'gb_label of a user enum value');
SELECT is((SELECT string_agg(gb_label(role) || '/' || gb_label(ch), ',' ORDER BY id) FROM msgs WHERE role IS NOT NULL),
          'episodic/api,user/web,compact/email', 'gb_label of columns of two enums in one query');
SELECT throws_ok($$SELECT gb_enum_label('gb_message_role', 5::smallint)$$, '22023',
                 'code 5 is not defined for enum public.gb_message_role', 'gb_enum_label of an unknown code: 22023');
SELECT is(pg_temp.enum_err($$SELECT gb_enum_label('gb_message_role', 5::smallint)$$, 'hint'),
          'Valid codes: 1 (user), 2 (assistant), 3 (system), 4 (tool), 9 (episodic), 10 (compact).',
          'its HINT lists the valid codes');
SELECT throws_ok($$SELECT gb_enum_label('gb_message_role', 999::smallint)$$, '22023', NULL,
                 'gb_enum_label of a code past the highest: 22023');
SELECT throws_ok($$SELECT gb_enum_label('gb_message_role', (-1)::smallint)$$, '22023', NULL,
                 'gb_enum_label of a negative code: 22023');
SELECT throws_ok($$SELECT gb_enum_label('int4', 1::smallint)$$, '42809', NULL, 'gb_enum_label of a non-enum type: 42809');
SELECT throws_ok($$SELECT gb_enum_label('app.plain', 1::smallint)$$, '42809', NULL,
                 'gb_enum_label of a plain smallint domain: 42809');
SELECT throws_ok($$SELECT gb_enum_code('gb_message_role', 'nope')$$, '22P02',
                 'invalid label "nope" for enum public.gb_message_role', 'gb_enum_code of an unknown label: 22P02');
SELECT is(pg_temp.enum_err($$SELECT gb_enum_code('gb_message_role', 'nope')$$, 'hint'),
          'Valid labels: user, assistant, system, tool, episodic, compact.', 'its HINT lists the valid labels');
SELECT throws_ok($$SELECT gb_enum_code('gb_message_role', 'User')$$, '22P02', NULL, 'labels are case-sensitive');
SELECT throws_ok($$SELECT gb_enum_code('int4', 'x')$$, '42809', NULL, 'gb_enum_code of a non-enum type: 42809');
SELECT throws_ok($$SELECT gb_label(1::smallint)$$, '42804', NULL, 'gb_label of a plain smallint: 42804');
SELECT throws_ok($$SELECT gb_label(1::app.plain)$$, '42804', NULL, 'gb_label of a non-enum smallint domain: 42804');
SELECT throws_ok($$SELECT gb_label('web'::text)$$, '42804', NULL, 'gb_label of text: 42804');
SELECT results_eq($$SELECT gb_enum_label(NULL, 1::smallint), gb_enum_label('gb_message_role', NULL),
                           gb_enum_code(NULL, 'x'), gb_enum_code('gb_message_role', NULL)::text,
                           gb_label(NULL::gb_message_role)$$,
                  $$VALUES (NULL::text, NULL::text, NULL::smallint, NULL::text, NULL::text)$$,
                  'lookups return NULL for NULL arguments');
SELECT is_empty($$SELECT * FROM gb_enum_labels(NULL)$$, 'gb_enum_labels(NULL) is empty');
SELECT throws_ok($$SELECT * FROM gb_enum_labels('int4')$$, '42809', NULL, 'gb_enum_labels of a non-enum: 42809');

-- Within a transaction, the backend's cache follows the transaction's own
-- changes, and forgets them when they roll back.
SELECT lives_ok($$SELECT gb_enum_create('app.sp', ARRAY['a', 'b'])$$, 'enum for the savepoint tests');
SELECT is(gb_label(1::app.sp), 'b', 'cache warmed');
SAVEPOINT sp_labels;
SELECT is(gb_enum_add('app.sp', 'c'), 2::smallint, 'label added in a savepoint ...');
SELECT lives_ok($$SELECT gb_enum_rename('app.sp', 'a', 'a2')$$, '... and one renamed');
SELECT results_eq($$SELECT gb_label(2::app.sp), gb_label(0::app.sp), gb_enum_code('app.sp', 'c')$$,
                  $$VALUES ('c', 'a2', 2::smallint)$$, 'the next statement sees both');
ROLLBACK TO SAVEPOINT sp_labels;
SELECT throws_ok($$SELECT gb_enum_label('app.sp', 2::smallint)$$, '22023', NULL,
                 'after ROLLBACK TO SAVEPOINT the added code is unknown again');
SELECT is(gb_label(0::app.sp), 'a', 'and the rename is undone');
SELECT throws_ok($$SELECT 2::app.sp$$, '23514', NULL, 'and the domain rejects the code again');

------------------------------------------------------------------------------
-- Built-in enums cannot change; codes are never removed
------------------------------------------------------------------------------
SELECT throws_ok($$SELECT gb_enum_add('gb_channel_type', 'fax')$$, '55000',
                 'cannot change built-in enum public.gb_channel_type', 'gb_enum_add on a built-in: 55000');
SELECT throws_ok($$SELECT gb_enum_add('gb_message_role', 'fax', 5::smallint)$$, '55000', NULL,
                 'gb_enum_add with a free code on a built-in: 55000');
SELECT throws_ok($$SELECT gb_enum_rename('gb_channel_type', 'web', 'www')$$, '55000',
                 'cannot change built-in enum public.gb_channel_type', 'gb_enum_rename on a built-in: 55000');
SELECT throws_ok($$UPDATE gb_scale.enum_label SET label = 'www' WHERE enum_type = 'gb_channel_type'::regtype AND code = 0$$,
                 '55000', NULL, 'a direct UPDATE of a built-in label: 55000');
SELECT throws_ok($$DELETE FROM gb_scale.enum_label WHERE enum_type = 'gb_plan_tier'::regtype AND code = 3$$,
                 '55000', NULL, 'a direct DELETE of a built-in code: 55000');
SELECT throws_ok($$DELETE FROM gb_scale.enum_label WHERE enum_type = 'app.ticket'::regtype AND code = 0$$,
                 '55000', 'cannot remove code 0 (open) of enum app.ticket', 'deleting a code of a live enum: 55000');
SELECT throws_ok($$UPDATE gb_scale.enum_label SET code = 40 WHERE enum_type = 'app.ticket'::regtype AND code = 0$$,
                 '55000', NULL, 'changing a code: 55000');
SELECT throws_ok($$UPDATE gb_scale.enum_label SET builtin = true WHERE enum_type = 'app.ticket'::regtype$$,
                 '55000', NULL, 'flagging a user enum builtin: 55000');
-- A row flagged builtin is not dumped (the config dump keeps WHERE NOT
-- builtin), so a user enum must not get one either.
SELECT lives_ok($$SELECT gb_enum_create('app.smuggle', ARRAY['a'])$$, 'enum for the builtin flag test');
SELECT throws_ok($$INSERT INTO gb_scale.enum_label VALUES ('app.smuggle', 1, 'smuggled', true)$$,
                 '55000', NULL, 'a direct INSERT of a builtin-flagged label into a user enum: 55000');
SELECT results_eq($$SELECT count(*), min(label) FILTER (WHERE code = 0) FROM gb_enum_labels('gb_channel_type')$$,
                  $$VALUES (10::bigint, 'web')$$, 'gb_channel_type is unchanged');
SELECT is(gb_enum_label('app.ticket', 0::smallint), 'open', 'app.ticket code 0 is still there');

------------------------------------------------------------------------------
-- Only the owner (or a member of the owning role) changes labels
------------------------------------------------------------------------------
CREATE ROLE gb_enum_tap_owner NOLOGIN;
CREATE ROLE gb_enum_tap_other NOLOGIN;
CREATE ROLE gb_enum_tap_member NOLOGIN IN ROLE gb_enum_tap_owner;
CREATE SCHEMA enum_own AUTHORIZATION gb_enum_tap_owner;
GRANT USAGE ON SCHEMA enum_own TO PUBLIC;

SET LOCAL ROLE gb_enum_tap_owner;
SELECT is(gb_enum_create('enum_own.st', ARRAY['a', 'b'])::text, 'enum_own.st', 'a plain role creates an enum');
SET LOCAL ROLE gb_enum_tap_other;
SELECT throws_ok($$SELECT gb_enum_add('enum_own.st', 'c')$$, '42501', 'must be owner of type enum_own.st',
                 'a non-owner cannot add a label: 42501');
SELECT throws_ok($$SELECT gb_enum_rename('enum_own.st', 'a', 'z')$$, '42501', NULL, 'nor rename one: 42501');
SELECT throws_ok($$INSERT INTO gb_scale.enum_label (enum_type, code, label) VALUES ('enum_own.st', 7, 'x')$$,
                 '42501', NULL, 'nor insert a label directly: 42501');
SELECT throws_ok($$UPDATE gb_scale.enum_label SET label = 'z' WHERE enum_type = 'enum_own.st'::regtype AND code = 0$$,
                 '42501', NULL, 'nor update one directly: 42501');
SELECT results_eq($$SELECT gb_enum_label('enum_own.st', 1::smallint), gb_label(0::enum_own.st),
                           (SELECT count(*) FROM gb_scale.enum_labels WHERE enum_type = 'enum_own.st'::regtype)$$,
                  $$VALUES ('b', 'a', 2::bigint)$$, 'but can read its labels and the view');
SET LOCAL ROLE gb_enum_tap_member;
SELECT is(gb_enum_add('enum_own.st', 'c'), 2::smallint, 'a member of the owning role adds a label');
SELECT lives_ok($$SELECT gb_enum_rename('enum_own.st', 'a', 'a2')$$, 'and renames one');
SET LOCAL ROLE gb_enum_tap_owner;
SELECT is(gb_enum_add('enum_own.st', 'd'), 3::smallint, 'the owner adds a label');
SELECT lives_ok($$SELECT gb_enum_rename('enum_own.st', 'b', 'b2')$$, 'and renames one');
RESET ROLE;
SELECT is((SELECT array_agg(label ORDER BY code)::text FROM gb_enum_labels('enum_own.st')), '{a2,b2,c,d}',
          'the owner''s and the member''s changes are there, the others'' are not');

------------------------------------------------------------------------------
-- gb_enum_add on a domain in use: no lock, no scan, no rewrite
------------------------------------------------------------------------------
CREATE TEMP TABLE fx_before AS
    SELECT pg_relation_filenode('enum_fx.lk_tickets') AS filenode,
           -- xact stats may still hold the fixture's own scans: compare, not test for 0
           (SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'enum_fx.lk_tickets'::regclass) AS seq_scans,
           (SELECT convalidated FROM pg_constraint WHERE contypid = 'enum_fx.lk_state'::regtype) AS validated;
SELECT is(validated, false, 'fixture: the constraint is NOT VALID from the start') FROM fx_before;
SELECT is(gb_enum_add('enum_fx.lk_state', 'archived'), 3::smallint, 'label added to a domain used by a 1000-row table');
SELECT is((SELECT count(*) FROM pg_locks
            WHERE locktype = 'relation' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND relation = 'enum_fx.lk_tickets'::regclass AND pid = pg_backend_pid()),
          0::bigint, 'this transaction holds no lock on the table');
SELECT is(pg_relation_filenode('enum_fx.lk_tickets'), filenode, 'the table was not rewritten') FROM fx_before;
SELECT is((SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'enum_fx.lk_tickets'::regclass), seq_scans,
          'the table was not scanned') FROM fx_before;
SELECT results_eq($$SELECT count(*), bool_or(convalidated), min(pg_get_constraintdef(oid)) FROM pg_constraint
                     WHERE contypid = 'enum_fx.lk_state'::regtype$$,
                  $$VALUES (1::bigint, false,
                            'CHECK (gb_scale.enum_check(VALUE, ''enum_fx.lk_state''::regtype, ''{0,1,2,3}''::smallint[])) NOT VALID')$$,
                  'the new constraint is NOT VALID and has the new code');
SELECT lives_ok($$INSERT INTO enum_fx.lk_tickets VALUES (1001, 3)$$, 'the new code is insertable');
SELECT throws_ok($$INSERT INTO enum_fx.lk_tickets VALUES (1002, 4)$$, '23514', NULL, 'other codes are still rejected');
SELECT results_eq($$SELECT gb_label(st), count(*) FROM enum_fx.lk_tickets GROUP BY 1 ORDER BY 1$$,
                  $$VALUES ('archived', 1::bigint), ('closed', 333::bigint), ('new', 333::bigint), ('open', 334::bigint)$$,
                  'old rows are intact');
-- A column typed with a domain over the enum domain uses it as much as one
-- typed with the enum itself.
SELECT lives_ok($$SELECT gb_enum_add('enum_fx.sub_base', 'c')$$, 'label added to an enum used through a derived domain');
SELECT is((SELECT string_agg(mode, ',') FROM pg_locks
            WHERE locktype = 'relation' AND relation = 'enum_fx.sub_t'::regclass AND pid = pg_backend_pid()),
          NULL, 'no lock on the table whose column has a domain over the enum');
SELECT lives_ok($$SELECT gb_enum_add('enum_fx.arr_base', 'c')$$, 'label added to an enum used as an array column');
SELECT is((SELECT string_agg(mode, ',') FROM pg_locks
            WHERE locktype = 'relation' AND relation = 'enum_fx.arr_t'::regclass AND pid = pg_backend_pid()),
          NULL, 'no lock on the table with an array of the enum');

------------------------------------------------------------------------------
-- The view, dropping enums
------------------------------------------------------------------------------
SELECT columns_are('gb_scale', 'enum_labels', ARRAY['enum_type', 'code', 'label'], 'the view has enum_type, code, label');
SELECT results_eq($$SELECT code, label FROM gb_scale.enum_labels WHERE enum_type = 'app.ticket'::regtype ORDER BY code$$,
                  $$SELECT code, label FROM gb_enum_labels('app.ticket')$$, 'the view matches gb_enum_labels');
SELECT is((SELECT count(*) FROM gb_scale.enum_labels), (SELECT count(*) FROM gb_scale.enum_label),
          'the view shows every label');

CREATE TEMP TABLE dropped (oid oid);
INSERT INTO dropped SELECT gb_enum_create('app.gone', ARRAY['x', 'y'])::oid;
INSERT INTO dropped SELECT gb_enum_create('app.gone_too', ARRAY['x'])::oid;
CREATE SCHEMA doomed;
INSERT INTO dropped SELECT gb_enum_create('doomed.e', ARRAY['x', 'y', 'z'])::oid;
SELECT is((SELECT count(*) FROM gb_scale.enum_label WHERE enum_type::oid IN (SELECT oid FROM dropped)), 6::bigint,
          'three enums to drop have their labels');
DROP DOMAIN app.gone;
DROP TYPE app.gone_too;
DROP SCHEMA doomed CASCADE;
SELECT is((SELECT count(*) FROM gb_scale.enum_label WHERE enum_type::oid IN (SELECT oid FROM dropped)), 0::bigint,
          'DROP DOMAIN, DROP TYPE and DROP SCHEMA CASCADE remove their labels');
SELECT is((SELECT count(*) FROM gb_enum_labels('app.ticket')), 8::bigint, 'other enums keep theirs');

------------------------------------------------------------------------------
-- gb_enum_code() is folded into a constant the planner can index
------------------------------------------------------------------------------
CREATE TABLE app.tickets (id int PRIMARY KEY, st app.ticket NOT NULL);
INSERT INTO app.tickets SELECT g, (ARRAY[0, 1, 2, 3])[g % 4 + 1] FROM generate_series(1, 2000) g;
CREATE INDEX tickets_st ON app.tickets (st);
ANALYZE app.tickets;
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.enum_explain($$SELECT * FROM app.tickets WHERE st = gb_enum_code('app.ticket', 'done')$$),
               $re$Index Cond: \(\(?st\)?(::smallint)? = '1'::smallint\)$re$,
               'EXPLAIN shows the code as a constant in the Index Cond');
SELECT doesnt_match(pg_temp.enum_explain($$SELECT * FROM app.tickets WHERE st = gb_enum_code('app.ticket', 'done')$$),
                    'gb_enum_code', 'no call is left in the plan');
SELECT matches(pg_temp.enum_explain($$SELECT * FROM app.tickets WHERE st = gb_enum_code('app.ticket', CASE WHEN id > 0 THEN 'done' END)$$),
               'gb_enum_code', 'a label computed per row is not folded');
RESET enable_seqscan;

-- A prepared statement's plan depends on the labels it folded.
PREPARE enum_tap_q AS SELECT count(*) FROM app.tickets WHERE st = gb_enum_code('app.ticket', 'done');
SELECT results_eq('enum_tap_q', $$VALUES (500::bigint)$$, 'the prepared statement counts the done tickets');
SELECT lives_ok($$SELECT gb_enum_rename('app.ticket', 'done', 'finished')$$, 'done renamed to finished');
SELECT throws_ok($$EXECUTE enum_tap_q$$, '22P02', NULL, 'the prepared statement is replanned and fails on the old label');
DEALLOCATE enum_tap_q;

-- An enum domain renamed with ALTER DOMAIN still rejects invalid codes with
-- 23514 (its constraint names it by its old name).
SELECT lives_ok($$SELECT gb_enum_create('app.before_rename', ARRAY['a'])$$, 'enum to rename');
ALTER DOMAIN app.before_rename RENAME TO after_rename;
SELECT throws_ok($$SELECT 5::app.after_rename$$, '23514', NULL, 'a renamed enum domain rejects an invalid code with 23514');
SELECT is(gb_label(0::app.after_rename), 'a', 'and its labels still resolve');

SELECT * FROM finish();
ROLLBACK;

DROP SCHEMA enum_fx CASCADE;
