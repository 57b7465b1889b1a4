-- gb_scale row moves (issue 14, item 2): moving rows between partitions (the
-- drain of a default partition by maintenance, gb_tenant_dedicate) is not an
-- application DELETE + INSERT.  It fires no foreign-key action of the tables
-- that reference the moved table (CASCADE, SET NULL, NO ACTION, RESTRICT) and
-- none of the table's triggers; the moved table's own foreign keys hold on
-- the new partitions.  A trigger or rule enabled ALWAYS or REPLICA would fire
-- during a move: the move is refused with a clear error (in maintenance it
-- lands in last_error and premake goes on).
SET search_path = public, pg_catalog;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET gb_scale.test_now = '2025-03-10 12:00:00+00';
CREATE SCHEMA mv;

CREATE TABLE mv.fired (tbl text, op text, id bigint);
CREATE FUNCTION mv.log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        INSERT INTO mv.fired VALUES (TG_TABLE_NAME, TG_OP || ' ' || TG_WHEN, NULL);
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO mv.fired VALUES (TG_TABLE_NAME, TG_OP || ' ' || TG_WHEN, OLD.id);
        RETURN OLD;
    END IF;
    INSERT INTO mv.fired VALUES (TG_TABLE_NAME, TG_OP || ' ' || TG_WHEN, NEW.id);
    RETURN NEW;
END $$;

-- What references a moved table, one table per kind of key.
CREATE FUNCTION mv.refs(p text) RETURNS TABLE (tbl text, n bigint, with_key bigint)
LANGUAGE plpgsql AS $$
DECLARE
    k text;
BEGIN
    FOREACH k IN ARRAY ARRAY['cascade', 'setnull', 'noaction', 'restrict'] LOOP
        tbl := k;
        EXECUTE format('SELECT count(*), count(msg_id) FROM mv.%I', p || '_' || k) INTO n, with_key;
        RETURN NEXT;
    END LOOP;
END $$;

------------------------------------------------------------------------------
-- A time table: the drain of its default partition
------------------------------------------------------------------------------
CREATE TABLE mv.authors (id bigint PRIMARY KEY);
INSERT INTO mv.authors VALUES (1), (2);
CREATE TABLE mv.msgs (id bigint NOT NULL, at timestamptz NOT NULL, author bigint REFERENCES mv.authors,
                      body text, PRIMARY KEY (id, at))
  PARTITION BY RANGE (at);
SELECT gb_partition_create('mv.msgs', 'at', '1 day', premake => '2 days', default_partition => true) AS created;
CREATE TABLE mv.msgs_cascade (msg_id bigint, msg_at timestamptz,
                              FOREIGN KEY (msg_id, msg_at) REFERENCES mv.msgs ON DELETE CASCADE);
CREATE TABLE mv.msgs_setnull (msg_id bigint, msg_at timestamptz,
                              FOREIGN KEY (msg_id, msg_at) REFERENCES mv.msgs ON DELETE SET NULL);
CREATE TABLE mv.msgs_noaction (msg_id bigint, msg_at timestamptz,
                               FOREIGN KEY (msg_id, msg_at) REFERENCES mv.msgs ON DELETE NO ACTION);
CREATE TABLE mv.msgs_restrict (msg_id bigint, msg_at timestamptz,
                               FOREIGN KEY (msg_id, msg_at) REFERENCES mv.msgs ON DELETE RESTRICT);
CREATE TRIGGER msgs_row BEFORE INSERT OR DELETE ON mv.msgs FOR EACH ROW EXECUTE FUNCTION mv.log_row();
CREATE TRIGGER msgs_after AFTER INSERT OR DELETE ON mv.msgs FOR EACH ROW EXECUTE FUNCTION mv.log_row();
-- rows beyond the premake horizon wait in the default
INSERT INTO mv.msgs VALUES (1, '2025-03-20 10:00+00', 1, 'a'), (2, '2025-03-20 11:00+00', 2, 'b'),
                           (3, '2025-03-21 10:00+00', 1, 'c');
INSERT INTO mv.msgs_cascade SELECT id, at FROM mv.msgs;
INSERT INTO mv.msgs_setnull SELECT id, at FROM mv.msgs;
INSERT INTO mv.msgs_noaction SELECT id, at FROM mv.msgs;
INSERT INTO mv.msgs_restrict SELECT id, at FROM mv.msgs;
TRUNCATE mv.fired;
CALL gb_run_maintenance('mv.msgs');
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'mv.msgs'::regclass;
SELECT id, tableoid::regclass AS partition FROM mv.msgs ORDER BY id;
-- every referencing row is there, with its key
SELECT * FROM mv.refs('msgs');
-- no trigger fired
SELECT * FROM mv.fired;
-- the moved rows' own key holds on their new partitions
SELECT conrelid::regclass AS partition, conname FROM pg_constraint
 WHERE contype = 'f' AND conrelid IN ('mv.msgs_p20250320'::regclass, 'mv.msgs_p20250321'::regclass)
 ORDER BY 1;
DELETE FROM mv.authors WHERE id = 2;
-- and the keys that reference them act as usual on the new partitions
DELETE FROM mv.msgs WHERE id = 1;
DELETE FROM mv.msgs_noaction WHERE msg_id = 1;
DELETE FROM mv.msgs_restrict WHERE msg_id = 1;
DELETE FROM mv.msgs WHERE id = 1;
SELECT * FROM mv.refs('msgs');
SELECT op, id FROM mv.fired ORDER BY op;
TRUNCATE mv.fired;

-- A trigger enabled ALWAYS would fire during a move: the drain is refused,
-- its rows stay in the default, the error is recorded and premake goes on.
ALTER TABLE mv.msgs ENABLE ALWAYS TRIGGER msgs_after;
INSERT INTO mv.msgs VALUES (4, '2025-03-25 10:00+00', 1, 'd');
INSERT INTO mv.msgs_cascade VALUES (4, '2025-03-25 10:00+00');
TRUNCATE mv.fired;
SET gb_scale.test_now = '2025-03-11 12:00:00+00';
CALL gb_run_maintenance('mv.msgs');
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'mv.msgs'::regclass;
SELECT id, tableoid::regclass AS partition FROM mv.msgs WHERE id = 4;
SELECT max(to_time) AS premade_to FROM gb_partition_list('mv.msgs') WHERE to_time < '2025-03-20';
-- a REPLICA trigger, likewise
ALTER TABLE mv.msgs ENABLE TRIGGER msgs_after;
ALTER TABLE mv.msgs ENABLE REPLICA TRIGGER msgs_row;
CALL gb_run_maintenance('mv.msgs');
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'mv.msgs'::regclass;
-- ordinary triggers again: the row moves, nothing fires, nothing cascades
ALTER TABLE mv.msgs ENABLE TRIGGER msgs_row;
CALL gb_run_maintenance('mv.msgs');
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'mv.msgs'::regclass;
SELECT id, tableoid::regclass AS partition FROM mv.msgs WHERE id = 4;
SELECT * FROM mv.refs('msgs');
SELECT * FROM mv.fired;

-- Drained into hash buckets of a tenant column
CREATE TABLE mv.hb (tenant_id bigint NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL,
                    PRIMARY KEY (tenant_id, id, at)) PARTITION BY RANGE (at);
SELECT gb_partition_create('mv.hb', 'at', '1 day', premake => '1 day', tenant_column => 'tenant_id',
                           tenant_buckets => 2, default_partition => true) AS created;
CREATE TABLE mv.hb_ref (tenant_id bigint, id bigint, at timestamptz,
                        FOREIGN KEY (tenant_id, id, at) REFERENCES mv.hb ON DELETE CASCADE);
INSERT INTO mv.hb SELECT g, g, '2025-03-28 10:00+00' FROM generate_series(1, 6) g;
INSERT INTO mv.hb_ref SELECT * FROM mv.hb;
CALL gb_run_maintenance('mv.hb');
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'mv.hb'::regclass;
SELECT count(*) AS in_default FROM ONLY mv.hb_default;
SELECT count(*) AS refs FROM mv.hb_ref;

------------------------------------------------------------------------------
-- A table partitioned by LIST on its tenant: dedicate and drain
------------------------------------------------------------------------------
SET gb_scale.test_now = '2025-03-10 12:00:00+00';
CREATE TABLE mv.chat (tenant_id bigint NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL, body text,
                      PRIMARY KEY (tenant_id, id, at))
  PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('mv.chat', 'at', '1 day', premake => '2 days', tenant_column => 'tenant_id',
                           default_partition => true) AS created;
CREATE TABLE mv.chat_cascade (tenant_id bigint, msg_id bigint, msg_at timestamptz,
                              FOREIGN KEY (tenant_id, msg_id, msg_at) REFERENCES mv.chat ON DELETE CASCADE);
CREATE TABLE mv.chat_setnull (tenant_id bigint, msg_id bigint, msg_at timestamptz,
                              FOREIGN KEY (tenant_id, msg_id, msg_at) REFERENCES mv.chat ON DELETE SET NULL (msg_id, msg_at));
CREATE TABLE mv.chat_noaction (tenant_id bigint, msg_id bigint, msg_at timestamptz,
                               FOREIGN KEY (tenant_id, msg_id, msg_at) REFERENCES mv.chat ON DELETE NO ACTION);
CREATE TABLE mv.chat_restrict (tenant_id bigint, msg_id bigint, msg_at timestamptz,
                               FOREIGN KEY (tenant_id, msg_id, msg_at) REFERENCES mv.chat ON DELETE RESTRICT);
CREATE TRIGGER chat_row BEFORE INSERT OR DELETE ON mv.chat FOR EACH ROW EXECUTE FUNCTION mv.log_row();
CREATE TRIGGER chat_stmt AFTER DELETE ON mv.chat FOR EACH STATEMENT EXECUTE FUNCTION mv.log_row();
INSERT INTO mv.chat SELECT g % 2 + 1, g, '2025-03-10 00:00+00'::timestamptz + g * interval '1 hour', 'x'
  FROM generate_series(1, 20) g;
INSERT INTO mv.chat_cascade SELECT tenant_id, id, at FROM mv.chat;
INSERT INTO mv.chat_setnull SELECT tenant_id, id, at FROM mv.chat;
INSERT INTO mv.chat_noaction SELECT tenant_id, id, at FROM mv.chat;
INSERT INTO mv.chat_restrict SELECT tenant_id, id, at FROM mv.chat;
TRUNCATE mv.fired;
SELECT gb_tenant_dedicate('mv.chat', 1) AS moved;
SELECT tableoid::regclass AS partition, count(*) FROM mv.chat GROUP BY 1 ORDER BY 1;
SELECT * FROM mv.refs('chat');
SELECT * FROM mv.fired;
-- the keys act as usual on the dedicated subtree
-- (one blocking key at a time: which of two fires first depends on trigger oids)
DELETE FROM mv.chat_restrict WHERE msg_id = 2;
DELETE FROM mv.chat WHERE tenant_id = 1 AND id = 2;
DELETE FROM mv.chat_noaction WHERE msg_id = 2;
DELETE FROM mv.chat WHERE tenant_id = 1 AND id = 2;
SELECT * FROM mv.refs('chat');
TRUNCATE mv.fired;

-- The tenants tail's default drains without cascading
INSERT INTO mv.chat VALUES (2, 100, '2025-03-25 10:00+00', 'late'), (1, 101, '2025-03-25 10:00+00', 'late');
INSERT INTO mv.chat_cascade VALUES (2, 100, '2025-03-25 10:00+00'), (1, 101, '2025-03-25 10:00+00');
INSERT INTO mv.chat_noaction VALUES (2, 100, '2025-03-25 10:00+00'), (1, 101, '2025-03-25 10:00+00');
TRUNCATE mv.fired;
CALL gb_run_maintenance('mv.chat');
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'mv.chat'::regclass;
SELECT id, tableoid::regclass AS partition FROM mv.chat WHERE id >= 100 ORDER BY id;
SELECT count(*) AS refs_late FROM mv.chat_cascade WHERE msg_id >= 100;
SELECT * FROM mv.fired;

-- gb_tenant_dedicate refuses when a trigger or a rule enabled ALWAYS or
-- REPLICA would fire
ALTER TABLE mv.chat ENABLE ALWAYS TRIGGER chat_row;
SELECT gb_tenant_dedicate('mv.chat', 2) AS moved;
ALTER TABLE mv.chat ENABLE TRIGGER chat_row;
CREATE RULE chat_del AS ON DELETE TO mv.chat_tenants DO ALSO INSERT INTO mv.fired VALUES ('rule', 'DELETE', OLD.id);
ALTER TABLE mv.chat_tenants ENABLE REPLICA RULE chat_del;
SELECT gb_tenant_dedicate('mv.chat', 2) AS moved;
ALTER TABLE mv.chat_tenants ENABLE RULE chat_del;
-- a statement trigger of the LIST parent never fires in a move: a move
-- deletes from the tail, not from the parent
ALTER TABLE mv.chat ENABLE ALWAYS TRIGGER chat_stmt;
-- nothing moved meanwhile; now it does, and no setting is left behind
SELECT tableoid::regclass AS partition, count(*) FROM mv.chat WHERE tenant_id = 2 GROUP BY 1 ORDER BY 1;
SELECT gb_tenant_dedicate('mv.chat', 2) AS moved;
SELECT current_setting('session_replication_role') AS role_after;
SELECT * FROM mv.refs('chat');
SELECT * FROM mv.fired;

------------------------------------------------------------------------------
-- The owner's code that still runs in a move (a CHECK constraint, a generated
-- column, a policy) changes no data: foreign keys are not enforced there.
-- Its settings do not outlive the move.
------------------------------------------------------------------------------
CREATE TABLE mv.victim (id bigint PRIMARY KEY);
CREATE TABLE mv.victim_ref (id bigint REFERENCES mv.victim);
CREATE FUNCTION mv.sneaky(id bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('work_mem', '77kB', false);
    IF current_setting('session_replication_role') = 'replica' AND id = 99 THEN
        INSERT INTO mv.victim_ref VALUES (12345);
    END IF;
    RETURN true;
END $$;
CREATE TABLE mv.own (id bigint NOT NULL CHECK (mv.sneaky(id)), at timestamptz NOT NULL)
  PARTITION BY RANGE (at);
SELECT gb_partition_create('mv.own', 'at', '1 day', premake => '1 day', default_partition => true) AS created;
INSERT INTO mv.own VALUES (1, '2025-03-22 10:00+00'), (99, '2025-03-23 10:00+00');
RESET work_mem;
CALL gb_run_maintenance('mv.own');
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'mv.own'::regclass;
SELECT id, tableoid::regclass AS partition FROM mv.own ORDER BY id;
SELECT count(*) AS dangling FROM mv.victim_ref;
SELECT current_setting('work_mem') AS work_mem, current_setting('session_replication_role') AS role_after;

------------------------------------------------------------------------------
-- An UPDATE that gives a row of the tenants tail a tenant just dedicated moves
-- it to the tenant's subtree, and one that gives it a tenant just purged is
-- not refused, in the session that cached the tail's partition constraints
-- too (on ATTACH, PostgreSQL invalidates the tail, not the partitions under
-- it).
------------------------------------------------------------------------------
SET gb_scale.test_now = '2025-03-10 12:00:00+00';
CREATE TABLE mv.tl (tenant bigint NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL)
  PARTITION BY LIST (tenant);
SELECT gb_partition_create('mv.tl', 'at', '1 day', premake => '2 days', tenant_column => 'tenant',
                           default_partition => true) AS created;
INSERT INTO mv.tl VALUES (101, 1, '2039-11-04 09:00+00'), (101, 2, '2025-03-11 09:00+00'), (55, 3, '2025-03-11 10:00+00');
UPDATE mv.tl SET id = id;
SELECT gb_tenant_dedicate('mv.tl', 55) AS moved;
UPDATE mv.tl SET tenant = 55 WHERE id IN (1, 2);
SELECT id, tenant, tableoid::regclass AS partition FROM mv.tl ORDER BY id;
CALL gb_run_maintenance('mv.tl');
SELECT last_error FROM gb_scale.partition_status WHERE parent = 'mv.tl'::regclass;
SELECT id, tenant, tableoid::regclass AS partition FROM mv.tl ORDER BY id;
INSERT INTO mv.tl VALUES (7, 4, '2025-03-11 11:00+00');
UPDATE mv.tl SET id = id;
SELECT table_name, rows_removed FROM gb_tenant_purge(55) ORDER BY 1::text;
UPDATE mv.tl SET tenant = 55 WHERE id = 4;
SELECT id, tenant, tableoid::regclass AS partition FROM mv.tl ORDER BY id;

RESET gb_scale.test_now;
DROP SCHEMA mv CASCADE;
