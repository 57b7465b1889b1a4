-- gb_scale enum domains: General Bots' exact codes and labels, and the errors
-- a DBA sees.  Every built-in pair is listed so that a wrong number shows.
\set VERBOSITY default
-- Line numbers of PL/pgSQL contexts are not part of the contract.
\set SHOW_CONTEXT never

SELECT enum_type, code, label
  FROM gb_scale.enum_labels
 ORDER BY enum_type::text, code;

-- Each built-in is a domain over smallint (2 bytes) with one CHECK constraint.
SELECT t.typname, format_type(t.typbasetype, NULL) AS base, t.typlen,
       (SELECT count(*) FROM pg_constraint c WHERE c.contypid = t.oid) AS constraints
  FROM pg_type t
 WHERE t.typtype = 'd' AND t.oid IN (SELECT enum_type FROM gb_scale.enum_label)
 ORDER BY t.typname;

CREATE TABLE enum_demo (
    id   bigint GENERATED ALWAYS AS IDENTITY,
    role gb_message_role,
    ch   gb_channel_type
);
INSERT INTO enum_demo (role, ch) VALUES (1, 0), (10, 9), (NULL, NULL);
INSERT INTO enum_demo (role, ch) VALUES (0, 0);
INSERT INTO enum_demo (role, ch) VALUES (1, 10);
UPDATE enum_demo SET role = 5 WHERE role = 1;
SELECT id, role, gb_label(role) AS role_label, ch, gb_label(ch) AS channel FROM enum_demo ORDER BY id;

SELECT gb_enum_label('gb_llm_provider', 3::smallint), gb_enum_code('gb_task_status', 'waiting_approval'),
       gb_enum_label('gb_plan_tier', NULL), gb_enum_code('gb_plan_tier', NULL);
SELECT gb_enum_code('gb_message_role', 'bot');
SELECT gb_enum_label('gb_message_role', 5::smallint);
SELECT gb_enum_label('integer', 1::smallint);
SELECT gb_label(1::smallint);
-- A domain over an enum domain keeps its codes and its labels.
CREATE DOMAIN human_role AS gb_message_role CHECK (VALUE IN (1, 2));
SELECT gb_label(2::human_role), gb_label(NULL::human_role);
SELECT 5::human_role;
DROP DOMAIN human_role;
SELECT gb_label('web');
SELECT * FROM gb_enum_labels('gb_approval_decision');
SELECT * FROM gb_enum_labels('text');

-- User enums.
CREATE SCHEMA app;
SELECT gb_enum_create('app.ticket_state', ARRAY['open', 'pending', 'closed']);
SELECT gb_enum_create('priority', ARRAY['low', 'high'], ARRAY[10, 20]::smallint[]);
SELECT * FROM gb_enum_labels('app.ticket_state');
SELECT * FROM gb_enum_labels('priority');
SELECT gb_enum_create('app.bad', ARRAY[]::text[]);
SELECT gb_enum_create('app.bad', ARRAY['a', 'a']);
SELECT gb_enum_create('app.bad', ARRAY['a', '']);
SELECT gb_enum_create('app.bad', ARRAY['a', 'b'], ARRAY[1, 1]::smallint[]);
SELECT gb_enum_create('app.bad', ARRAY['a', 'b'], ARRAY[0, -1]::smallint[]);
SELECT gb_enum_create('app.bad', ARRAY['a', 'b'], ARRAY[0]::smallint[]);
SELECT gb_enum_create('nosuchschema.bad', ARRAY['a']);
SELECT gb_enum_create('app.ticket_state', ARRAY['a']);

CREATE TABLE app.ticket (id int, state app.ticket_state, prio priority);
INSERT INTO app.ticket VALUES (1, 0, 10), (2, 2, 20);
SELECT gb_enum_add('app.ticket_state', 'reopened');
SELECT gb_enum_add('priority', 'medium', 15::smallint);
SELECT gb_enum_add('priority', 'urgent', 20::smallint);
SELECT gb_enum_add('priority', 'low');
SELECT gb_enum_rename('app.ticket_state', 'closed', 'done');
SELECT gb_enum_rename('app.ticket_state', 'gone', 'x');
INSERT INTO app.ticket VALUES (3, 3, 15);
INSERT INTO app.ticket VALUES (4, 4, 10);
SELECT id, gb_label(state) AS state, gb_label(prio) AS prio FROM app.ticket ORDER BY id;
-- The wider constraint is added NOT VALID: no table is scanned.
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = 'app.ticket_state'::regtype;

-- Codes are never removed, built-in enums never change.
DELETE FROM gb_scale.enum_label WHERE enum_type = 'app.ticket_state'::regtype AND code = 1;
UPDATE gb_scale.enum_label SET code = 9 WHERE enum_type = 'app.ticket_state'::regtype AND code = 1;
SELECT gb_enum_add('gb_channel_type', 'discord');
SELECT gb_enum_rename('gb_message_role', 'user', 'human');

-- gb_enum_code is folded at plan time, so an index on the column is usable.
CREATE INDEX ON enum_demo (role);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM enum_demo WHERE role = gb_enum_code('gb_message_role', 'compact');
RESET enable_seqscan;

-- Dropping a domain drops its labels.
DROP TABLE app.ticket;
DROP DOMAIN app.ticket_state;
SELECT count(*) FROM gb_scale.enum_label WHERE enum_type::text LIKE '%ticket_state%';
DROP SCHEMA app CASCADE;
DROP DOMAIN priority;
DROP TABLE enum_demo;
SELECT count(*) AS labels_left, count(DISTINCT enum_type) AS enums FROM gb_scale.enum_label;
