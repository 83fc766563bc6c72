-- Releases: what the viewer role reads (functions/read/releases.py).
--
-- release_basis freezes the per-person contributions of a day the first time a release
-- covering that day is published: one row per person, day and sub-cell (group set, hourly
-- rate, success, priced/unpriced usage, estimator, calibration), with the metric columns
-- summed over those conversations. Every later release covering the day reads these rows,
-- so all published figures are linear forms over the same variables (the auditor's atoms),
-- and later analyses, late arrivals, confirmations and recalibrations change the admin's
-- figures only. Users appear only as their HMAC pseudonym.
CREATE TABLE release_basis (
    id BIGSERIAL PRIMARY KEY,
    analysis_date DATE NOT NULL,
    user_id_hash VARCHAR(64) NOT NULL,
    group_ids TEXT[] NOT NULL DEFAULT '{}',
    hourly_rate NUMERIC(12, 2),
    unsuccessful BOOLEAN NOT NULL,
    unpriced BOOLEAN NOT NULL,
    priced BOOLEAN NOT NULL,
    estimator VARCHAR(32),
    calibration_key TEXT,                 -- estimator/category when that category is calibrated
    calibration_factor NUMERIC NOT NULL DEFAULT 1,
    sums JSONB NOT NULL                   -- metric column -> summed value (functions/metrics.py)
);
CREATE INDEX idx_release_basis_date ON release_basis (analysis_date);

CREATE TABLE release_basis_days (
    analysis_date DATE PRIMARY KEY,
    frozen_at TIMESTAMPTZ NOT NULL
);

-- One row per period: published (audited, frozen) or refused (the auditor could not pass it).
CREATE TABLE releases (
    version SERIAL PRIMARY KEY,           -- publication order: a release's version
    period_kind VARCHAR(10) NOT NULL CHECK (period_kind IN ('week', 'month')),
    period_start DATE NOT NULL,
    period_end DATE NOT NULL CHECK (period_end >= period_start),
    status VARCHAR(10) NOT NULL CHECK (status IN ('published', 'refused')),
    published_at TIMESTAMPTZ NOT NULL,
    cells JSONB NOT NULL,                 -- everyone's cell and each listed group's, as published
    shown_figures JSONB NOT NULL,         -- the auditor's figure ids a viewer can see
    audit JSONB NOT NULL,                 -- the audit record: figures, atoms, rank, seconds, passed
    UNIQUE (period_kind, period_start)
);
