-- Late arrivals: chats a nightly run found by their id although their `updated_at` lies
-- before the run's window (an Open WebUI import keeps the export's dates), planned and
-- analysed on their own dates. Counted per run, so health and the CLI can report them.
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

ALTER TABLE processing_log
    ADD COLUMN late_arrivals INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT processing_log_late_arrivals
        CHECK (late_arrivals >= 0 AND late_arrivals <= conversations_expected);

-- The history the product found when it first looked for late arrivals: chats dated before
-- the window of that first nightly sweep and never analysed. They are the deployment's past
-- (older than the first backfill), not imports, so no nightly run plans them; a backfill of
-- their dates analyses them on purpose. `source_baselines` records that the first sweep ran.
CREATE TABLE source_history (
    conversation_id VARCHAR(255) PRIMARY KEY,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE source_baselines (
    taken_at TIMESTAMPTZ PRIMARY KEY DEFAULT now(),
    history_chats INTEGER NOT NULL CHECK (history_chats >= 0)
);

-- How often a conversation was planned: the sweep retries a late arrival's transient failure
-- as many nights as a failure in the window is retried (ANALYTICS_LOOKBACK_DAYS), not forever.
CREATE INDEX idx_run_tasks_conversation ON run_tasks (conversation_id);
