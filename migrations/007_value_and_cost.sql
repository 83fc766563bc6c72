-- What the time saved is worth and what the assistance cost (see README, "Value and cost").
--
--   * conversation_model_usage: the tokens each model used in a conversation (kept
--     answers and their regenerations), priced when analysed; cost_usd NULL = unpriced.
--     Replaced with the analysis, in the same transaction.
--   * value_rates: the hourly rates in effect from a date on; the aggregator records the
--     configured rates when they change (from that day on), so a rate change never
--     rewrites dates already valued. `reprice` records rates from an earlier date on purpose.
--   * the aggregate tables gain the summed tokens, costs and value, and the rate period
--     they were valued with.
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

CREATE TABLE conversation_model_usage (
    conversation_id VARCHAR(255) NOT NULL
        REFERENCES conversation_analysis (conversation_id) ON DELETE CASCADE,
    model VARCHAR(255) NOT NULL,
    answers INTEGER NOT NULL DEFAULT 0,             -- assistant messages that carried usage
    input_tokens BIGINT NOT NULL DEFAULT 0,         -- prompt side, cached included
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    generation_seconds NUMERIC(12, 3) NOT NULL DEFAULT 0,  -- Ollama's reported durations
    cost_usd NUMERIC(14, 6),                        -- NULL: the model has no price
    priced_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, model),
    CONSTRAINT conversation_model_usage_positive CHECK (
        answers >= 0 AND input_tokens >= 0 AND output_tokens >= 0 AND cached_tokens >= 0
        AND cached_tokens <= input_tokens AND generation_seconds >= 0
        AND (cost_usd IS NULL OR cost_usd >= 0)
    )
);

CREATE TABLE value_rates (
    id SERIAL PRIMARY KEY,
    effective_from DATE NOT NULL UNIQUE,            -- applies to analysis dates from here on
    currency VARCHAR(3),                            -- NULL: no money from this date on
    hourly_rate NUMERIC(12, 2),
    group_hourly_rates JSONB NOT NULL DEFAULT '{}', -- {"group name": rate}
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT value_rates_money_complete CHECK ((currency IS NULL) = (hourly_rate IS NULL)),
    CONSTRAINT value_rates_positive CHECK (hourly_rate IS NULL OR hourly_rate >= 0)
);

ALTER TABLE daily_aggregates
    ADD COLUMN ai_input_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ai_output_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ai_cached_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ai_unpriced_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ai_cost_micro_usd BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN analysis_cost_micro_usd BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN value_saved_milli BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN value_saved_low_milli BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN value_saved_high_milli BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN value_rate_id INTEGER REFERENCES value_rates (id) ON DELETE SET NULL;

ALTER TABLE daily_breakdowns
    ADD COLUMN ai_input_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ai_output_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ai_cached_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ai_unpriced_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ai_cost_micro_usd BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN analysis_cost_micro_usd BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN value_saved_milli BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN value_saved_low_milli BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN value_saved_high_milli BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN value_rate_id INTEGER REFERENCES value_rates (id) ON DELETE SET NULL;
