-- "I would not have done this without AI", and a calibration that resists poisoning
-- (see README, "Calibration" and "New work enabled").
--
--   * time_confirmations.new_work: the person says the task is new work, not time saved.
--     Like "AI did not help" it carries no minutes. conversation_analysis.confirmed_new_work
--     mirrors it; the aggregator (not the feedback request) keeps it in step.
--   * the aggregate tables count those conversations apart: new_work_conversations and
--     new_work_active_minutes; their minutes saved are left out of every time-saved sum.
--   * calibrations.pending: a version that moves a factor beyond
--     ANALYTICS_CALIBRATION_CHANGE_THRESHOLD waits for an admin's `recalibrate`; dates are
--     assigned the newest version that is not pending.
--   * calibration_factors.unbounded_factor: what people's answers said before the factor was
--     bounded by ANALYTICS_CALIBRATION_FACTOR_MIN / _MAX (NULL: within the bounds).
--   * feedback_answer_days: answers per person and local day, for ANALYTICS_FEEDBACK_DAILY_LIMIT.
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

ALTER TABLE time_confirmations
    ADD COLUMN new_work BOOLEAN NOT NULL DEFAULT false,
    DROP CONSTRAINT time_confirmations_answer,
    ADD CONSTRAINT time_confirmations_answer CHECK (
        (did_not_help AND NOT new_work AND confirmed_minutes IS NULL)
        OR (new_work AND NOT did_not_help AND confirmed_minutes IS NULL)
        OR (NOT did_not_help AND NOT new_work AND confirmed_minutes BETWEEN 1 AND 2400)
    );

ALTER TABLE conversation_analysis
    ADD COLUMN confirmed_new_work BOOLEAN NOT NULL DEFAULT false;

ALTER TABLE daily_aggregates
    ADD COLUMN new_work_conversations INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN new_work_active_minutes INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT totals_hold_new_work CHECK (
        0 <= new_work_conversations AND new_work_conversations <= conversation_count
        AND 0 <= new_work_active_minutes AND new_work_active_minutes <= total_active_time
    );

ALTER TABLE daily_breakdowns
    ADD COLUMN new_work_conversations INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN new_work_active_minutes INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT totals_hold_new_work_breakdown CHECK (
        0 <= new_work_conversations AND new_work_conversations <= conversation_count
        AND 0 <= new_work_active_minutes AND new_work_active_minutes <= total_active_time
    );

ALTER TABLE calibrations
    ADD COLUMN pending BOOLEAN NOT NULL DEFAULT false;

ALTER TABLE calibration_factors
    ADD COLUMN unbounded_factor NUMERIC(10, 4) CHECK (unbounded_factor IS NULL OR unbounded_factor >= 0);

CREATE TABLE feedback_answer_days (
    user_id_hash VARCHAR(64) NOT NULL,             -- HMAC pseudonym of the Open WebUI user id
    answer_date DATE NOT NULL,                     -- local date (ANALYTICS_TIMEZONE)
    answers INTEGER NOT NULL CHECK (answers >= 1),
    PRIMARY KEY (user_id_hash, answer_date)
);
