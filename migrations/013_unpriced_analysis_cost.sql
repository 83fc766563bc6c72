-- The estimator's own cost of a model without a price is unpriced, never $0 (see README,
-- "What it costs").
--
--   * conversation_analysis.llm_cost_usd, run_outcomes.llm_cost_usd: NULL when the
--     estimator's model has no price (its tokens stay in prompt_tokens/completion_tokens).
--     The 0 default stays: a row that made no request (heuristic, reused, skipped) costs 0.
--   * processing_log.total_llm_cost_usd: the run's priced cost, NULL when none of its
--     estimator tokens was priced; total_llm_unpriced_tokens: the run's estimator tokens
--     (prompt and completion) whose cost is NULL.
--   * the aggregate tables gain analysis_unpriced_tokens and analysis_priced_tokens
--     (functions/metrics.py): analysis_cost_usd is null when only unpriced tokens are behind it.
--
-- History: the price a 0 was recorded with is not known now (the table may have changed
-- since). A recorded 0 with tokens can only be an unpriced model or one priced at 0; it is
-- treated as not known (NULL), as an unpriced cost is recorded from now on; completed runs
-- still holding their outcomes get their totals again from them. Aggregate rows get their
-- token columns when their dates are next rebuilt (0 until then: their cost reads as before).
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

ALTER TABLE conversation_analysis ALTER COLUMN llm_cost_usd DROP NOT NULL;
ALTER TABLE run_outcomes ALTER COLUMN llm_cost_usd DROP NOT NULL;
ALTER TABLE processing_log
    ALTER COLUMN total_llm_cost_usd DROP NOT NULL,
    ADD COLUMN total_llm_unpriced_tokens BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT processing_log_unpriced_tokens CHECK (total_llm_unpriced_tokens >= 0);

UPDATE conversation_analysis SET llm_cost_usd = NULL
WHERE llm_cost_usd = 0 AND estimator = 'llm' AND prompt_tokens + completion_tokens > 0;

UPDATE run_outcomes SET llm_cost_usd = NULL
WHERE llm_cost_usd = 0 AND prompt_tokens + completion_tokens > 0;

UPDATE processing_log SET
    total_llm_unpriced_tokens = totals.unpriced_tokens,
    total_llm_cost_usd = CASE WHEN totals.unpriced_tokens > 0 AND totals.priced_tokens = 0 THEN NULL
        ELSE processing_log.total_llm_cost_usd END
FROM (
    SELECT run_id,
        coalesce(sum(prompt_tokens + completion_tokens) FILTER (WHERE llm_cost_usd IS NULL), 0) AS unpriced_tokens,
        coalesce(sum(prompt_tokens + completion_tokens) FILTER (WHERE llm_cost_usd IS NOT NULL), 0) AS priced_tokens
    FROM run_outcomes GROUP BY run_id
) AS totals
WHERE processing_log.id = totals.run_id AND processing_log.status = 'completed';

ALTER TABLE daily_aggregates
    ADD COLUMN analysis_unpriced_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN analysis_priced_tokens BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT daily_aggregates_analysis_tokens CHECK (analysis_unpriced_tokens >= 0 AND analysis_priced_tokens >= 0);

ALTER TABLE daily_breakdowns
    ADD COLUMN analysis_unpriced_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN analysis_priced_tokens BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT daily_breakdowns_analysis_tokens CHECK (analysis_unpriced_tokens >= 0 AND analysis_priced_tokens >= 0);
