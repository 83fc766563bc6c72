-- Calibrated figures (see README, "Calibration").
--
--   * calibrations: one row per calibration version, computed by the aggregator when the
--     confirmations it would use changed: when, with which settings, from how many
--     confirmations, and a fingerprint of exactly those confirmations.
--   * calibration_factors: per version, estimator and task category, the bias factor (median of
--     confirmed ÷ most likely) and its band (the interquartile range of that ratio), and n;
--     `calibrated` is false for a category below the minimum (its figures stay raw).
--   * calibration_confirmations: the confirmations (and the estimates they were compared
--     with) each version was computed from, so every calibrated figure can be traced.
--   * calibration_dates: the version each analysis date is calibrated with. A date gets the
--     latest version when it is first aggregated and keeps it when it is rebuilt;
--     `recalibrate --from` moves dates to the latest version on purpose.
--   * the aggregate tables gain the calibrated minutes and the version used.
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

CREATE TABLE calibrations (
    version SERIAL PRIMARY KEY,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    min_confirmations INTEGER NOT NULL CHECK (min_confirmations >= 1),
    min_people INTEGER NOT NULL DEFAULT 1 CHECK (min_people >= 1),  -- distinct people per calibrated category
    confirmations INTEGER NOT NULL CHECK (confirmations >= 0),
    fingerprint VARCHAR(64) NOT NULL
);

CREATE TABLE calibration_factors (
    version INTEGER NOT NULL REFERENCES calibrations (version) ON DELETE CASCADE,
    estimator VARCHAR(20) NOT NULL,                -- an LLM and the heuristic err differently
    task_category VARCHAR(32) NOT NULL,
    confirmations INTEGER NOT NULL CHECK (confirmations >= 0),
    calibrated BOOLEAN NOT NULL,
    factor NUMERIC(10, 4) NOT NULL,
    factor_low NUMERIC(10, 4) NOT NULL,
    factor_high NUMERIC(10, 4) NOT NULL,
    PRIMARY KEY (version, estimator, task_category),
    CONSTRAINT calibration_factors_band CHECK (
        0 <= factor_low AND factor_low <= factor AND factor <= factor_high
        AND (calibrated OR (factor = 1 AND factor_low = 1 AND factor_high = 1))
    )
);

CREATE TABLE calibration_confirmations (
    version INTEGER NOT NULL REFERENCES calibrations (version) ON DELETE CASCADE,
    conversation_id VARCHAR(255) NOT NULL,
    user_id_hash VARCHAR(64) NOT NULL,
    estimator VARCHAR(20) NOT NULL,
    task_category VARCHAR(32) NOT NULL,
    confirmed_minutes INTEGER NOT NULL,
    most_likely INTEGER NOT NULL,
    PRIMARY KEY (version, conversation_id, user_id_hash)
);

CREATE TABLE calibration_dates (
    analysis_date DATE PRIMARY KEY,
    version INTEGER NOT NULL REFERENCES calibrations (version),
    assigned_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE daily_aggregates
    ADD COLUMN total_manual_time_calibrated INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN total_time_saved_calibrated INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN total_time_saved_calibrated_low INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN total_time_saved_calibrated_high INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN calibrated_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN calibration_version INTEGER REFERENCES calibrations (version);

ALTER TABLE daily_breakdowns
    ADD COLUMN total_manual_time_calibrated INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN total_time_saved_calibrated INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN total_time_saved_calibrated_low INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN total_time_saved_calibrated_high INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN calibrated_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN calibration_version INTEGER REFERENCES calibrations (version);

-- Aggregates built before this migration: until a calibration version exists every figure is
-- uncalibrated (factor 1), so the calibrated sums equal the raw ones; without this they would
-- read 0 until each date is rebuilt.
UPDATE daily_aggregates SET
    total_manual_time_calibrated = total_manual_time_estimated,
    total_time_saved_calibrated = total_time_saved,
    total_time_saved_calibrated_low = total_time_saved_low,
    total_time_saved_calibrated_high = total_time_saved_high;
UPDATE daily_breakdowns SET
    total_manual_time_calibrated = total_manual_time_estimated,
    total_time_saved_calibrated = total_time_saved,
    total_time_saved_calibrated_low = total_time_saved_low,
    total_time_saved_calibrated_high = total_time_saved_high;
