-- Objects of bench/tenant_move.sh, created on both shards.  Schema bench is
-- not registered for tenant isolation, so a move neither copies nor purges
-- it: it keeps what each shard's writers committed, on that shard.
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE SCHEMA bench;

-- k-th session of a tenant (the writers pick a session by number); on the
-- target too for the moving tenant, whose session ids do not change.
CREATE TABLE bench.sess (tenant_id bigint, k int, id bigint, PRIMARY KEY (tenant_id, k));

-- Every row a writer wrote, with the hash of its new content, written in
-- the writer's own transaction on the shard that took the write: a row
-- here means the write committed there.
CREATE TABLE bench.acked (tenant_id bigint, tbl text, id bigint, h text, at timestamptz);

-- Hash of every row of the measured tenants before the writers started.
CREATE TABLE bench.before (tenant_id bigint, tbl text, id bigint, h text);

-- Writers' retries after a 40001 (a sequence: a retry's rollback keeps it).
CREATE SEQUENCE bench.reroutes;

-- The row text that is compared: the row as jsonb without shard_id (the
-- column that says which shard keeps the row).
CREATE FUNCTION bench.rows_of(tenants bigint[])
RETURNS TABLE (tenant_id bigint, tbl text, id bigint, h text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.tenant_id, 'gb.sessions', r.id, md5((to_jsonb(r) - 'shard_id')::text)
      FROM gb.sessions r WHERE r.tenant_id = ANY (tenants)
    UNION ALL
    SELECT r.tenant_id, 'gb.messages', r.id, md5((to_jsonb(r) - 'shard_id')::text)
      FROM gb.messages r WHERE r.tenant_id = ANY (tenants)
$$;

-- One write of General Bots on this shard: a message in one of the
-- tenant's sessions, and the session's last_active; both acknowledged.
CREATE FUNCTION bench.local_write(t bigint, k int) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sid bigint;
    mid bigint;
    mh text;
    mat timestamptz;
    sh text;
    sat timestamptz;
BEGIN
    PERFORM public.gb_set_tenant(t);
    SELECT s.id INTO STRICT sid FROM bench.sess s WHERE s.tenant_id = t AND s.k = local_write.k;
    INSERT INTO gb.messages AS m (tenant_id, session_id, role, body)
    VALUES (t, sid, 1, 'bench write ' || k || ' at ' || clock_timestamp())
    RETURNING m.id, md5((to_jsonb(m.*) - 'shard_id')::text), m.created_at INTO mid, mh, mat;
    UPDATE gb.sessions AS s SET last_active = clock_timestamp()
     WHERE s.id = sid AND s.tenant_id = t
    RETURNING md5((to_jsonb(s.*) - 'shard_id')::text), s.last_active INTO STRICT sh, sat;
    INSERT INTO bench.acked VALUES (t, 'gb.messages', mid, mh, mat), (t, 'gb.sessions', sid, sh, sat);
END $$;

-- The application's router, per transaction: ask this shard's directory
-- which shard serves the tenant, write there (here, or through a dblink
-- connection kept per session); on 40001 (the fence: the tenant moved, or
-- the shard asked does not serve it yet) ask again and retry, 1 ms apart.
CREATE FUNCTION bench.routed_write(t bigint, k int) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s smallint;
    conn text;
    tries int := 0;
BEGIN
    LOOP
        tries := tries + 1;
        s := public.gb_shard_for_tenant(t);
        BEGIN
            IF s = public.gb_current_shard() THEN
                PERFORM bench.local_write(t, k);
            ELSE
                conn := 'shard' || s;
                IF public.dblink_get_connections() IS NULL OR NOT conn = ANY (public.dblink_get_connections()) THEN
                    PERFORM public.dblink_connect(conn, public.gb_shard_connection(t));
                END IF;
                PERFORM * FROM public.dblink(conn, format('SELECT 1 FROM bench.local_write(%s, %s)', t, k)) AS r(one int);
            END IF;
            RETURN;
        EXCEPTION WHEN serialization_failure THEN
            PERFORM nextval('bench.reroutes');
            IF tries >= 5000 THEN
                RAISE;
            END IF;
            PERFORM pg_sleep(0.001);
        END;
    END LOOP;
END $$;

-- What the backends of this shard wait on, sampled every 50 ms by
-- bench.sample_waits() until bench.sampling is emptied: the writers' lock
-- waits during the move, to explain a stall.
CREATE TABLE bench.waits (at timestamptz, pid int, backend_type text, wait_event_type text, wait_event text, query text);
CREATE TABLE bench.sampling (on_ boolean);
-- (No SET search_path: a procedure with one cannot COMMIT.)
CREATE PROCEDURE bench.sample_waits()
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.sampling VALUES (true);
    COMMIT;
    WHILE EXISTS (SELECT FROM bench.sampling) LOOP
        PERFORM pg_catalog.pg_stat_clear_snapshot();
        INSERT INTO bench.waits
        SELECT pg_catalog.clock_timestamp(), a.pid, a.backend_type, a.wait_event_type, a.wait_event,
               pg_catalog.left(a.query, 80)
          FROM pg_catalog.pg_stat_activity a
         WHERE a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
           AND a.wait_event_type OPERATOR(pg_catalog.=) ANY ('{Lock,LWLock,IPC}');
        COMMIT;
        PERFORM pg_catalog.pg_sleep(0.05);
    END LOOP;
END $$;
