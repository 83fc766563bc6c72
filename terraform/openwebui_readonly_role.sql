-- Read-only login for Time Savings Analytics on Open WebUI's PostgreSQL database.
--
-- Run once, as a role that owns Open WebUI's tables (the user in Open WebUI's own
-- DATABASE_URL, or a Cloud SQL superuser), connected to Open WebUI's database:
--
--   psql "host=127.0.0.1 port=5432 dbname=openwebui user=<owner>" \
--        -v reader_password="$(openssl rand -base64 32 | tr -d '/+=')" \
--        -f terraform/openwebui_readonly_role.sql
--
-- then store the URL the functions will use (README, "Reaching Open WebUI's database"):
--
--   postgresql+pg8000://analytics_reader:<password>@/<dbname>           (with OPENWEBUI_CLOUDSQL_INSTANCE)
--   postgresql+pg8000://analytics_reader:<password>@<host>:5432/<dbname> (a database reachable by address)
--
-- Re-running it is safe: it resets the password and re-grants. Open WebUI adds
-- tables over time; the product reads only those below and never requires the
-- optional ones (chat_message, group, group_member), which are granted if present.

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE analytics_reader LOGIN PASSWORD %L', :'reader_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analytics_reader')
\gexec
ALTER ROLE analytics_reader WITH LOGIN PASSWORD :'reader_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
    CONNECTION LIMIT 50;

-- Even a statement that slipped past the grants cannot write, and a runaway
-- query cannot hold Open WebUI's tables for long.
ALTER ROLE analytics_reader SET default_transaction_read_only = on;
ALTER ROLE analytics_reader SET statement_timeout = '60s';
ALTER ROLE analytics_reader SET idle_in_transaction_session_timeout = '60s';

SELECT format('GRANT CONNECT ON DATABASE %I TO analytics_reader', current_database())
\gexec
GRANT USAGE ON SCHEMA public TO analytics_reader;

-- Conversations: the chat document and, in newer versions, one row per message.
GRANT SELECT ON TABLE public.chat TO analytics_reader;

-- Users: only what attribution, the admin check and redaction need. E-mail
-- addresses are deliberately not readable (a query selecting them fails instead of
-- leaking them). Display names (and usernames, where the column exists) are read
-- for one purpose: to replace them by [NAME] in the digest before it leaves for the
-- estimator. They are never stored in the analytics database.
GRANT SELECT (id, role, name, created_at, updated_at, last_active_at) ON TABLE public."user" TO analytics_reader;
SELECT 'GRANT SELECT (username) ON TABLE public."user" TO analytics_reader'
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = 'user' AND column_name = 'username'
\gexec

-- Tables that only some Open WebUI versions have.
SELECT format('GRANT SELECT ON TABLE public.%I TO analytics_reader', table_name)
FROM information_schema.tables
WHERE table_schema = 'public' AND table_name IN ('chat_message', 'group', 'group_member')
\gexec
