-- Shard passwords never reach a client error, the server log or
-- pg_stat_activity (src/shard_secret.c).  The log and pg_stat_activity are
-- watched by test/t/166_shard_secrets.pl; here: what the client sees, and
-- the masking of every form a password takes, shown through messages that
-- go to the server log (log_min_messages), where the log hook masks them for
-- the client too.
LOAD 'gb_scale';
SET log_min_messages = notice;

-- Connection strings, alone and inside SQL literals.
DO $$ BEGIN RAISE NOTICE 'host=x password=hunter2 dbname=gb'; END $$;
DO $$ BEGIN RAISE NOTICE 'host=x PassWord = hunter2'; END $$;
DO $$ BEGIN RAISE NOTICE 'host=x password=two words dbname=gb'; END $$;
DO $$ BEGIN RAISE NOTICE 'host=x password=''two words'' user=bot'; END $$;
DO $$ BEGIN RAISE NOTICE 'host=x password=''it\''s'' user=bot'; END $$;
DO $$ BEGIN RAISE NOTICE 'SELECT gb_shard_sync(''host=x password=hunter2'')'; END $$;
DO $$ BEGIN RAISE NOTICE 'SELECT gb_shard_sync(''host=x password=''''two words'''' user=bot'')'; END $$;
DO $$ BEGIN RAISE NOTICE 'SELECT gb_shard_sync(''host=x password=it''''s user=bot'')'; END $$;
DO $$ BEGIN RAISE NOTICE 'host=x sslpassword=k3y sslmode=require'; END $$;
-- OPTIONS lists, JSON, URIs.
DO $$ BEGIN RAISE NOTICE 'OPTIONS (password ''s3cr3t'', user ''bot'')'; END $$;
DO $$ BEGIN RAISE NOTICE 'OPTIONS (ADD password ''it''''s'', sslpassword E''k\\3y'')'; END $$;
DO $$ BEGIN RAISE NOTICE '{"user": "bot", "password": "s3\"cr3t"}'; END $$;
DO $$ BEGIN RAISE NOTICE 'postgresql://bot:s3cret@db.example:5433/gb?password=x2&sslmode=require and postgres://bot@db/gb'; END $$;
-- Not values: left alone.
DO $$ BEGIN RAISE NOTICE 'password is required; password authentication failed; password_required ''false''; Add password=... to it'; END $$;
DO $$ BEGIN RAISE NOTICE 'see https://example.com/docs'; END $$;
-- Details, hints and contexts too.
DO $$ BEGIN RAISE NOTICE 'ok' USING DETAIL = 'password=d3tail', HINT = 'password ''h1nt'''; END $$;
DO $$ BEGIN EXECUTE 'SELECT 1/0 WHERE ''password=c0ntext'' IS NOT NULL'; END $$;
RESET log_min_messages;

------------------------------------------------------------------------------
-- What the client sees even when nothing goes to the log (no log hook runs)
------------------------------------------------------------------------------
SET log_min_messages = panic;
-- A malformed source string: libpq's error quotes what it stopped at.
SELECT gb_shard_sync('host=x password=two words');
SELECT * FROM gb_scale.conninfo_options('host=x password=two words');

-- gb_shard_fdw_setup() failing at a user mapping: its context shows no
-- statement holding the password.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_secret_admin;
RESET client_min_messages;
CREATE ROLE regress_secret_admin IN ROLE gb_scale_admin;
INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, min_tenant_id, max_tenant_id)
VALUES (41, 'BRA', 'sa-east-1a', 'host=shard41.invalid dbname=gb user=bot password=s3cr3t', 1, 1000);
SET client_min_messages = warning;
SELECT gb_shard_fdw_setup();
RESET client_min_messages;
SELECT srvname, umuser::regrole, umoptions FROM pg_user_mappings WHERE srvname = 'gb_shard_41';
SET SESSION AUTHORIZATION regress_secret_admin;
SELECT gb_shard_fdw_setup();
RESET SESSION AUTHORIZATION;
-- A changed password and a dropped option go through ALTER USER MAPPING.
UPDATE gb_scale.shard_config SET connection_string = 'host=shard41.invalid dbname=gb password=n3w'
 WHERE shard_id = 41;
SELECT gb_shard_fdw_setup();
SELECT srvname, umuser::regrole, umoptions FROM pg_user_mappings WHERE srvname = 'gb_shard_41';
RESET log_min_messages;

-- Clean up.
SET client_min_messages = warning;
DROP SCHEMA gb_global CASCADE;
DROP OWNED BY regress_secret_admin CASCADE;
RESET client_min_messages;
DROP ROLE regress_secret_admin;
DELETE FROM gb_scale.shard_config WHERE shard_id = 41;
