-- Late arrivals: chats a nightly run found by their id although their `updated_at` lies
-- before the run's window (an Open WebUI import keeps the export's dates), planned and
-- analysed on their own dates. Counted per run, so health and the CLI can report them.
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

ALTER TABLE processing_log
    ADD COLUMN late_arrivals INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT processing_log_late_arrivals
        CHECK (late_arrivals >= 0 AND late_arrivals <= conversations_expected);
