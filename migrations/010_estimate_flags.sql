-- Estimates the estimator did not know: flagged, stored with the reason, counted on the run,
-- and summed apart from the headline (see README, "Flagged estimates").
--
--   * conversation_analysis.estimate_flag: why an analysed conversation's estimate is not
--     trusted (NULL: it is). `low_confidence` and `wide_band` are set by the analyzer from the
--     answer alone; `same_answer` by the run's completion, when one answer went to most of the
--     run's different conversations.
--   * processing_log: how many of the run's estimates were flagged, per reason, and, when the
--     same-answer rule fired, the share of the run's different conversations that got that answer.
--   * the aggregate tables gain the flagged conversations and their minutes saved (the
--     `flagged_*` metrics of functions/metrics.py).
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

ALTER TABLE conversation_analysis
    ADD COLUMN estimate_flag VARCHAR(32),
    ADD CONSTRAINT conversation_analysis_estimate_flag CHECK (
        estimate_flag IS NULL
        OR (status = 'analyzed' AND estimate_flag IN ('low_confidence', 'wide_band', 'same_answer'))
    );

ALTER TABLE processing_log
    ADD COLUMN estimates_flagged INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN estimate_flags JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN same_answer_share NUMERIC(5, 4),
    ADD CONSTRAINT processing_log_estimates_flagged CHECK (
        estimates_flagged >= 0 AND (same_answer_share IS NULL OR same_answer_share BETWEEN 0 AND 1)
    );

ALTER TABLE daily_aggregates
    ADD COLUMN flagged_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN flagged_time_saved INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT daily_aggregates_flagged_positive CHECK (flagged_count >= 0 AND flagged_time_saved >= 0);

ALTER TABLE daily_breakdowns
    ADD COLUMN flagged_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN flagged_time_saved INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT daily_breakdowns_flagged_positive CHECK (flagged_count >= 0 AND flagged_time_saved >= 0);
