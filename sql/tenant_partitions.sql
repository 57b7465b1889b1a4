-- Tables that join an isolated tree after gb_tenant_isolation_enable get its
-- policies at once, whatever route they take.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_tp_owner;
DROP ROLE IF EXISTS regress_tp_dev;
DROP ROLE IF EXISTS regress_tp_app;
RESET client_min_messages;
CREATE ROLE regress_tp_owner;
CREATE ROLE regress_tp_dev IN ROLE regress_tp_owner;   -- may add partitions, owns what it makes
CREATE ROLE regress_tp_app;
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO regress_tp_app;
CREATE SCHEMA tp AUTHORIZATION regress_tp_owner;
GRANT CREATE ON SCHEMA tp TO regress_tp_dev;
GRANT USAGE ON SCHEMA tp TO regress_tp_app;
-- The application reads every table made in tp from now on (default privileges).
ALTER DEFAULT PRIVILEGES FOR ROLE regress_tp_owner, regress_tp_dev IN SCHEMA tp
  GRANT SELECT ON TABLES TO regress_tp_app;

-- Logs the table of every CREATE POLICY, to see that nothing is applied twice.
CREATE TABLE public.tp_policy_log (rel regclass);
GRANT INSERT ON public.tp_policy_log TO PUBLIC;
CREATE FUNCTION public.tp_log_policy() RETURNS event_trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.tp_policy_log
          SELECT p.polrelid FROM pg_event_trigger_ddl_commands() c JOIN pg_policy p ON p.oid = c.objid; END$$;
CREATE EVENT TRIGGER tp_log_policy ON ddl_command_end WHEN TAG IN ('CREATE POLICY')
  EXECUTE FUNCTION public.tp_log_policy();

SET ROLE regress_tp_owner;
CREATE TABLE tp.events (tenant_id bigint NOT NULL, id int NOT NULL, at date NOT NULL)
  PARTITION BY RANGE (at);
CREATE TABLE tp.events_2025 PARTITION OF tp.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT gb_tenant_isolation_enable('tp.events');
RESET ROLE;

-- What a role may read of one table directly, for tenant 1 and with no tenant.
CREATE FUNCTION public.tp_reads(tbl regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    seen text;
    none bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', tbl) INTO none;
    PERFORM gb_set_tenant(1);
    EXECUTE format('SELECT coalesce(string_agg(DISTINCT tenant_id::text, '',''), ''none'') || '' ('' || count(*) || '' rows)'' FROM %s', tbl)
      INTO seen;
    PERFORM gb_set_tenant(NULL);
    RETURN format('tenant 1 sees tenants %s; no tenant sees %s rows', seen, none);
END$$;
GRANT EXECUTE ON FUNCTION public.tp_reads(regclass) TO regress_tp_app;
-- Every table of a tree: row level security, forced, our policies, others.
CREATE VIEW public.tp_tree AS
SELECT t.relid::regclass AS member, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       (SELECT string_agg(p.polname, ',' ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
       pg_get_userbyid(c.relowner) AS owner
  FROM pg_partition_tree('tp.events') t JOIN pg_class c ON c.oid = t.relid;

-- 1. CREATE TABLE ... PARTITION OF, by a member of the owning role.
TRUNCATE public.tp_policy_log;
SET ROLE regress_tp_dev;
CREATE TABLE tp.events_2026 PARTITION OF tp.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
RESET ROLE;
SELECT rel, count(*) AS policies_created FROM public.tp_policy_log GROUP BY rel;
INSERT INTO tp.events SELECT g % 3 + 1, g, date '2026-01-01' + g FROM generate_series(1, 30) g;
SET ROLE regress_tp_app;
SELECT public.tp_reads('tp.events_2026');
RESET ROLE;

-- 2. ATTACH PARTITION of a table holding every tenant's rows, RLS off.
SET ROLE regress_tp_owner;
CREATE TABLE tp.events_2027 (LIKE tp.events);
RESET ROLE;
INSERT INTO tp.events_2027 SELECT g % 3 + 1, g, date '2027-01-01' + g FROM generate_series(1, 30) g;
SET ROLE regress_tp_owner;
SELECT relrowsecurity FROM pg_class WHERE oid = 'tp.events_2027'::regclass;
ALTER TABLE tp.events ATTACH PARTITION tp.events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SET ROLE regress_tp_app;
SELECT public.tp_reads('tp.events_2027');
RESET ROLE;

-- 3. A sub-partitioned partition whose partitions are added later, one of
-- them from a function (and a partition of a partition deeper in the tree).
SET ROLE regress_tp_owner;
CREATE TABLE tp.events_2028 PARTITION OF tp.events FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')
  PARTITION BY LIST (tenant_id);
CREATE TABLE tp.events_2028_t1 PARTITION OF tp.events_2028 FOR VALUES IN (1);
CREATE FUNCTION tp.add_rest() RETURNS void LANGUAGE plpgsql AS
  $$BEGIN EXECUTE 'CREATE TABLE tp.events_2028_rest PARTITION OF tp.events_2028 DEFAULT PARTITION BY RANGE (id)';
          EXECUTE 'CREATE TABLE tp.events_2028_rest_low PARTITION OF tp.events_2028_rest FOR VALUES FROM (0) TO (100)'; END$$;
SELECT tp.add_rest();
RESET ROLE;
INSERT INTO tp.events SELECT g % 3 + 1, g, date '2028-01-01' + g FROM generate_series(1, 30) g;
SET ROLE regress_tp_app;
SELECT public.tp_reads('tp.events_2028');
SELECT public.tp_reads('tp.events_2028_t1');
SELECT public.tp_reads('tp.events_2028_rest');
SELECT public.tp_reads('tp.events_2028_rest_low');
RESET ROLE;

-- 4. ATTACH of a partitioned table that already has partitions and rows.
SET ROLE regress_tp_owner;
CREATE TABLE tp.events_2029 (LIKE tp.events) PARTITION BY LIST (tenant_id);
CREATE TABLE tp.events_2029_all PARTITION OF tp.events_2029 DEFAULT;
RESET ROLE;
INSERT INTO tp.events_2029 SELECT g % 3 + 1, g, date '2029-01-01' + g FROM generate_series(1, 30) g;
SET ROLE regress_tp_owner;
ALTER TABLE tp.events ATTACH PARTITION tp.events_2029 FOR VALUES FROM ('2029-01-01') TO ('2030-01-01');
SET ROLE regress_tp_app;
SELECT public.tp_reads('tp.events_2029');
SELECT public.tp_reads('tp.events_2029_all');
RESET ROLE;

-- 5. CREATE SCHEMA ... CREATE TABLE ... PARTITION OF.
CREATE SCHEMA tp_more AUTHORIZATION regress_tp_owner
  CREATE TABLE events_2030 PARTITION OF tp.events FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
INSERT INTO tp.events SELECT g % 3 + 1, g, date '2030-01-01' + g FROM generate_series(1, 30) g;
GRANT USAGE ON SCHEMA tp_more TO regress_tp_app;
GRANT SELECT ON tp_more.events_2030 TO regress_tp_app;
SET ROLE regress_tp_app;
SELECT public.tp_reads('tp_more.events_2030');
RESET ROLE;

-- 6. A table with a policy of its own: a permissive one would show its rows
-- to every tenant, so the table is refused; a restrictive one may stay; a
-- stale gb_tenant_read is replaced.
SET ROLE regress_tp_owner;
CREATE TABLE tp.events_2031 (LIKE tp.events);
ALTER TABLE tp.events_2031 ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone ON tp.events_2031 USING (true);
CREATE POLICY gb_tenant_read ON tp.events_2031 FOR SELECT USING (true);
ALTER TABLE tp.events ATTACH PARTITION tp.events_2031 FOR VALUES FROM ('2031-01-01') TO ('2032-01-01');
CREATE TABLE tp.events_2032 PARTITION OF tp.events FOR VALUES FROM ('2032-01-01') TO ('2033-01-01')
  PARTITION BY LIST (tenant_id);
CREATE TABLE tp.events_2032_open (LIKE tp.events);
CREATE POLICY everyone ON tp.events_2032_open USING (true);
ALTER TABLE tp.events_2032 ATTACH PARTITION tp.events_2032_open DEFAULT;
DROP POLICY everyone ON tp.events_2031;
CREATE POLICY only_low_ids ON tp.events_2031 AS RESTRICTIVE USING (id < 1000);
ALTER TABLE tp.events ATTACH PARTITION tp.events_2031 FOR VALUES FROM ('2031-01-01') TO ('2032-01-01');
SELECT polname, polpermissive, pg_get_expr(polqual, polrelid) AS using_expr
  FROM pg_policy WHERE polrelid = 'tp.events_2031'::regclass ORDER BY polname;
RESET ROLE;
INSERT INTO tp.events SELECT g % 3 + 1, g, date '2031-01-01' + g FROM generate_series(1, 30) g;
SET ROLE regress_tp_app;
SELECT public.tp_reads('tp.events_2031');
RESET ROLE;

-- 7. A foreign table cannot be made to obey policies: refused either way.
CREATE FOREIGN DATA WRAPPER tp_fdw;
CREATE SERVER tp_server FOREIGN DATA WRAPPER tp_fdw;
GRANT USAGE ON FOREIGN SERVER tp_server TO regress_tp_owner;
SET ROLE regress_tp_owner;
CREATE FOREIGN TABLE tp.events_2033 PARTITION OF tp.events FOR VALUES FROM ('2033-01-01') TO ('2034-01-01')
  SERVER tp_server;
CREATE FOREIGN TABLE tp.events_2034 (tenant_id bigint NOT NULL, id int NOT NULL, at date NOT NULL)
  SERVER tp_server;
ALTER TABLE tp.events ATTACH PARTITION tp.events_2034 FOR VALUES FROM ('2034-01-01') TO ('2035-01-01');
DROP FOREIGN TABLE tp.events_2034;

-- 8. A rolled back ATTACH leaves nothing; DETACH leaves the policies.
CREATE TABLE tp.events_2035 (LIKE tp.events);
BEGIN;
ALTER TABLE tp.events ATTACH PARTITION tp.events_2035 FOR VALUES FROM ('2035-01-01') TO ('2036-01-01');
SELECT count(*) AS policies_in_transaction FROM pg_policy WHERE polrelid = 'tp.events_2035'::regclass;
ROLLBACK;
SELECT c.relrowsecurity AS rls, (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.oid = 'tp.events_2035'::regclass;
ALTER TABLE tp.events DETACH PARTITION tp.events_2027;
SELECT c.relrowsecurity AS rls, (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.oid = 'tp.events_2027'::regclass;
RESET ROLE;

-- 9. A table isolated on its own keeps its own policies (and its forced row
-- level security) when it joins another isolated tree, and so do its partitions.
SET ROLE regress_tp_owner;
CREATE TABLE tp.events_2036 (LIKE tp.events) PARTITION BY LIST (tenant_id);
CREATE TABLE tp.events_2036_all PARTITION OF tp.events_2036 DEFAULT;
SELECT gb_tenant_isolation_enable('tp.events_2036');
RESET ROLE;
TRUNCATE public.tp_policy_log;
SET ROLE regress_tp_owner;
ALTER TABLE tp.events ATTACH PARTITION tp.events_2036 FOR VALUES FROM ('2036-01-01') TO ('2037-01-01');
RESET ROLE;
SELECT count(*) AS policies_created FROM public.tp_policy_log;
SELECT pg_get_expr(polqual, polrelid) AS delete_using FROM pg_policy
 WHERE polrelid = 'tp.events_2036_all'::regclass AND polname = 'gb_tenant_delete';

-- The whole tree now: every member carries the four policies, only the
-- isolated table forces them.
SELECT * FROM public.tp_tree ORDER BY member::text;

-- 10. Inheritance children, by INHERITS and by ALTER TABLE ... INHERIT.
SET ROLE regress_tp_owner;
CREATE TABLE tp.legacy (tenant_id bigint NOT NULL, note text);
SELECT gb_tenant_isolation_enable('tp.legacy');
CREATE TABLE tp.legacy_a () INHERITS (tp.legacy);
CREATE TABLE tp.legacy_b (tenant_id bigint NOT NULL, note text);
ALTER TABLE tp.legacy_b INHERIT tp.legacy;
SELECT c.relname, c.relrowsecurity AS rls,
       (SELECT string_agg(p.polname, ',' ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.oid IN ('tp.legacy_a'::regclass, 'tp.legacy_b'::regclass) ORDER BY 1;
RESET ROLE;
INSERT INTO tp.legacy_b SELECT g % 3 + 1, 'n' FROM generate_series(1, 9) g;
SET ROLE regress_tp_app;
SELECT public.tp_reads('tp.legacy_b');
RESET ROLE;

-- 11. A table not isolated: its new partitions stay as they are.
SET ROLE regress_tp_owner;
CREATE TABLE tp.plain (tenant_id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE tp.plain_2026 PARTITION OF tp.plain FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT relrowsecurity AS rls FROM pg_class WHERE oid = 'tp.plain_2026'::regclass;

-- 12. The partition manager's new partitions get the policies once each.
RESET ROLE;
SET gb_scale.test_now = '2025-03-10 12:00:00+00';
SET ROLE regress_tp_owner;
CREATE TABLE tp.managed (tenant_id bigint NOT NULL, id bigint NOT NULL, created_at timestamptz NOT NULL)
  PARTITION BY LIST (tenant_id);
SELECT gb_partition_create('tp.managed', 'created_at', '1 day', premake => '1 day',
                           tenant_column => 'tenant_id', start_at => '2025-03-10 00:00:00+00') AS parts;
SELECT gb_tenant_isolation_enable('tp.managed');
RESET ROLE;
TRUNCATE public.tp_policy_log;
INSERT INTO tp.managed SELECT g % 3 + 1, g, '2025-03-10 00:00:00+00'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 40) g;
SET ROLE regress_tp_owner;
SELECT gb_tenant_dedicate('tp.managed', 1) AS moved;
RESET ROLE;
SET gb_scale.test_now = '2025-03-12 12:00:00+00';
SET ROLE regress_tp_owner;
CALL gb_run_maintenance('tp.managed');
RESET ROLE;
-- Each new table of the tree had its four policies made once.
SELECT rel, count(*) AS policies_created FROM public.tp_policy_log GROUP BY rel ORDER BY rel::text;
SELECT count(*) FILTER (WHERE NOT c.relrowsecurity) AS without_rls,
       count(*) FILTER (WHERE (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) <> 4) AS without_four
  FROM pg_partition_tree('tp.managed') t JOIN pg_class c ON c.oid = t.relid;
SET ROLE regress_tp_app;
SELECT public.tp_reads(t.relid) AS managed_reads, count(*)
  FROM pg_partition_tree('tp.managed') t WHERE t.isleaf GROUP BY 1 ORDER BY 1;
RESET ROLE;
RESET gb_scale.test_now;

DROP EVENT TRIGGER tp_log_policy;
DROP FUNCTION public.tp_log_policy();
DROP TABLE public.tp_policy_log;
DROP VIEW public.tp_tree;
DROP FUNCTION public.tp_reads(regclass);
DROP SCHEMA tp_more CASCADE;
DROP SCHEMA tp CASCADE;
DROP SERVER tp_server;
DROP FOREIGN DATA WRAPPER tp_fdw;
REVOKE EXECUTE ON FUNCTION gb_set_tenant(bigint) FROM regress_tp_app;
DROP OWNED BY regress_tp_owner, regress_tp_dev, regress_tp_app;
DROP ROLE regress_tp_dev;
DROP ROLE regress_tp_owner;
DROP ROLE regress_tp_app;
