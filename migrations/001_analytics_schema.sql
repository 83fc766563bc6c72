-- Analytics schema: the spec's three tables, fixed and extended (see README, "Schema").
--
-- Fixes to the spec's SQL:
--   * no index on DATE(processed_at): DATE(timestamptz) is not immutable and Postgres
--     rejects it; conversations carry their attribution date (`analysis_date`, the
--     local date of the last message) as a real column instead;
--   * the (analysis_date, user_id_hash) unique index is NULLS NOT DISTINCT, so there
--     is exactly one global row (user_id_hash IS NULL) per date;
--   * gen_random_uuid() is built in (PG 13+): no extension needed.
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

CREATE TABLE processing_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    run_date DATE NOT NULL,                        -- the local date the run is for
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    status VARCHAR(20) NOT NULL DEFAULT 'running',
    trigger VARCHAR(20) NOT NULL DEFAULT 'scheduler',
    idempotency_key VARCHAR(255),                  -- e.g. the scheduler's schedule time
    force_reestimate BOOLEAN NOT NULL DEFAULT false,

    conversations_expected INTEGER NOT NULL DEFAULT 0,  -- tasks enqueued for this run
    conversations_deferred INTEGER NOT NULL DEFAULT 0,  -- over ANALYTICS_MAX_CONVERSATIONS, left for the next run
    conversations_processed INTEGER NOT NULL DEFAULT 0,
    conversations_skipped INTEGER NOT NULL DEFAULT 0,
    conversations_failed INTEGER NOT NULL DEFAULT 0,
    estimates_reused INTEGER NOT NULL DEFAULT 0,        -- unchanged conversations: no estimator call

    total_llm_requests INTEGER NOT NULL DEFAULT 0,
    total_prompt_tokens BIGINT NOT NULL DEFAULT 0,
    total_completion_tokens BIGINT NOT NULL DEFAULT 0,
    total_cached_tokens BIGINT NOT NULL DEFAULT 0,
    total_llm_cost_usd NUMERIC(12, 6) NOT NULL DEFAULT 0,
    processing_duration_seconds INTEGER,
    aggregation_requested_at TIMESTAMPTZ,          -- set once, by the outcome that finished the run

    error_message TEXT,
    error_details JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT processing_log_status CHECK (
        status IN ('running', 'aggregating', 'completed', 'failed', 'stale')
    ),
    CONSTRAINT processing_log_trigger CHECK (
        trigger IN ('scheduler', 'manual', 'backfill', 'cli')
    ),
    CONSTRAINT processing_log_counts CHECK (
        conversations_expected >= 0 AND conversations_deferred >= 0
        AND conversations_processed >= 0 AND conversations_skipped >= 0
        AND conversations_failed >= 0 AND estimates_reused >= 0
        AND total_llm_requests >= 0 AND total_llm_cost_usd >= 0
        AND conversations_processed + conversations_skipped + conversations_failed
            <= conversations_expected
    )
);

CREATE INDEX idx_processing_log_run_date ON processing_log (run_date);
CREATE INDEX idx_processing_log_started_at ON processing_log (started_at DESC);
-- One open run per date: a duplicate dispatch for the same date joins the open run.
CREATE UNIQUE INDEX idx_processing_log_one_open_run ON processing_log (run_date)
    WHERE status IN ('running', 'aggregating');
CREATE UNIQUE INDEX idx_processing_log_idempotency_key ON processing_log (idempotency_key)
    WHERE idempotency_key IS NOT NULL;


CREATE TABLE conversation_analysis (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    conversation_id VARCHAR(255) NOT NULL,
    user_id_hash VARCHAR(64) NOT NULL,             -- HMAC-SHA256 of the Open WebUI user id
    group_ids TEXT[] NOT NULL DEFAULT '{}',        -- the user's Open WebUI groups when analysed

    status VARCHAR(20) NOT NULL,                   -- analyzed | skipped | failed
    skip_reason VARCHAR(64),                       -- machine-readable reason when not analyzed
    skip_detail TEXT,

    -- timing; NULL only when the conversation could not be measured
    analysis_date DATE,                            -- local date of the last message (attribution)
    first_message_at TIMESTAMPTZ,
    last_message_at TIMESTAMPTZ,
    total_duration_minutes INTEGER,
    active_duration_minutes INTEGER,               -- gaps over the idle threshold excluded
    idle_time_minutes INTEGER,

    -- estimate (minutes); NULL only when not analyzed
    manual_time_low INTEGER,
    manual_time_most_likely INTEGER,
    manual_time_high INTEGER,
    confidence_level INTEGER,
    time_saved_minutes INTEGER,                    -- max(0, most_likely - active)
    task_category VARCHAR(32),
    task_description TEXT,                         -- one line, redacted

    -- provenance of the estimate
    estimator VARCHAR(20),                         -- llm | heuristic
    estimator_model VARCHAR(128),
    prompt_version VARCHAR(64),
    processing_version VARCHAR(20) NOT NULL DEFAULT '2.0',

    -- what was analysed
    message_count INTEGER NOT NULL DEFAULT 0,
    user_message_count INTEGER NOT NULL DEFAULT 0,
    regeneration_count INTEGER NOT NULL DEFAULT 0,
    models_used TEXT[] NOT NULL DEFAULT '{}',
    primary_model VARCHAR(255),                    -- model that answered most on the kept branch
    source_updated_at TIMESTAMPTZ NOT NULL,        -- chat.updated_at when read
    content_fingerprint VARCHAR(64) NOT NULL,      -- sha256 of the kept branch

    -- cost of the estimate
    llm_requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    llm_cost_usd NUMERIC(12, 6) NOT NULL DEFAULT 0,

    conversation_summary TEXT,                     -- the redacted digest the estimator saw
    llm_response JSONB,                            -- the estimator's parsed answer
    run_id UUID REFERENCES processing_log (id) ON DELETE SET NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT conversation_analysis_status CHECK (status IN ('analyzed', 'skipped', 'failed')),
    CONSTRAINT positive_durations CHECK (
        total_duration_minutes >= 0 AND active_duration_minutes >= 0
        AND idle_time_minutes >= 0 AND time_saved_minutes >= 0
    ),
    CONSTRAINT durations_add_up CHECK (
        active_duration_minutes + idle_time_minutes = total_duration_minutes
    ),
    CONSTRAINT valid_confidence CHECK (confidence_level BETWEEN 0 AND 100),
    CONSTRAINT valid_estimates CHECK (
        manual_time_low >= 0 AND manual_time_low <= manual_time_most_likely
        AND manual_time_most_likely <= manual_time_high
    ),
    CONSTRAINT time_saved_formula CHECK (
        time_saved_minutes = GREATEST(0, manual_time_most_likely - active_duration_minutes)
    ),
    CONSTRAINT valid_task_category CHECK (
        task_category IN ('coding', 'writing', 'analysis', 'research', 'translation', 'learning', 'other')
    ),
    CONSTRAINT valid_estimator CHECK (estimator IN ('llm', 'heuristic')),
    CONSTRAINT positive_counts CHECK (
        message_count >= 0 AND user_message_count >= 0 AND regeneration_count >= 0
        AND llm_requests >= 0 AND prompt_tokens >= 0 AND completion_tokens >= 0
        AND cached_tokens >= 0 AND llm_cost_usd >= 0
    ),
    -- an analyzed row is complete; any other row says why it is not
    CONSTRAINT analyzed_is_complete CHECK (
        status <> 'analyzed' OR (
            analysis_date IS NOT NULL AND first_message_at IS NOT NULL
            AND last_message_at IS NOT NULL AND total_duration_minutes IS NOT NULL
            AND active_duration_minutes IS NOT NULL AND idle_time_minutes IS NOT NULL
            AND manual_time_low IS NOT NULL AND manual_time_most_likely IS NOT NULL
            AND manual_time_high IS NOT NULL AND confidence_level IS NOT NULL
            AND time_saved_minutes IS NOT NULL AND task_category IS NOT NULL
            AND estimator IS NOT NULL AND prompt_version IS NOT NULL
            AND skip_reason IS NULL
        )
    ),
    CONSTRAINT not_analyzed_has_reason CHECK (status = 'analyzed' OR skip_reason IS NOT NULL),
    CONSTRAINT message_order CHECK (first_message_at <= last_message_at)
);

CREATE UNIQUE INDEX idx_conversation_analysis_conversation_id ON conversation_analysis (conversation_id);
CREATE INDEX idx_conversation_analysis_date ON conversation_analysis (analysis_date)
    WHERE status = 'analyzed';
CREATE INDEX idx_conversation_analysis_user_date ON conversation_analysis (user_id_hash, analysis_date);
CREATE INDEX idx_conversation_analysis_processed_at ON conversation_analysis (processed_at);
CREATE INDEX idx_conversation_analysis_run ON conversation_analysis (run_id);


-- One row per (run, conversation): the analyzer's outcome is counted on the run
-- exactly once, however often the task is delivered.
CREATE TABLE run_outcomes (
    run_id UUID NOT NULL REFERENCES processing_log (id) ON DELETE CASCADE,
    conversation_id VARCHAR(255) NOT NULL,
    outcome VARCHAR(20) NOT NULL,
    reason VARCHAR(64),
    analysis_date DATE,                            -- the date the conversation is attributed to now
    previous_analysis_date DATE,                   -- the date it was attributed to before, if different
    estimate_reused BOOLEAN NOT NULL DEFAULT false,
    llm_requests INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    llm_cost_usd NUMERIC(12, 6) NOT NULL DEFAULT 0,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, conversation_id),
    CONSTRAINT run_outcomes_outcome CHECK (outcome IN ('analyzed', 'skipped', 'failed'))
);


CREATE TABLE daily_aggregates (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),

    analysis_date DATE NOT NULL,
    user_id_hash VARCHAR(64),                      -- NULL for the global row

    conversation_count INTEGER NOT NULL DEFAULT 0,
    message_count INTEGER NOT NULL DEFAULT 0,
    total_active_time INTEGER NOT NULL DEFAULT 0,
    total_manual_time_estimated INTEGER NOT NULL DEFAULT 0,   -- sum of most likely
    total_manual_time_low INTEGER NOT NULL DEFAULT 0,
    total_manual_time_high INTEGER NOT NULL DEFAULT 0,
    total_time_saved INTEGER NOT NULL DEFAULT 0,              -- sum of max(0, most_likely - active)
    total_time_saved_low INTEGER NOT NULL DEFAULT 0,          -- sum of max(0, low - active)
    total_time_saved_high INTEGER NOT NULL DEFAULT 0,         -- sum of max(0, high - active)
    avg_time_saved_per_conversation NUMERIC(10, 2),
    avg_confidence_level NUMERIC(5, 2),
    confidence_sum INTEGER NOT NULL DEFAULT 0,                -- lets ranges average exactly
    llm_estimated_count INTEGER NOT NULL DEFAULT 0,
    heuristic_estimated_count INTEGER NOT NULL DEFAULT 0,

    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT positive_aggregates CHECK (
        conversation_count >= 0 AND message_count >= 0 AND total_active_time >= 0
        AND total_manual_time_estimated >= 0 AND total_time_saved >= 0
        AND total_time_saved_low >= 0 AND total_time_saved_high >= 0
        AND confidence_sum >= 0
    ),
    CONSTRAINT aggregate_bands_ordered CHECK (
        total_manual_time_low <= total_manual_time_estimated
        AND total_manual_time_estimated <= total_manual_time_high
        AND total_time_saved_low <= total_time_saved
        AND total_time_saved <= total_time_saved_high
    ),
    CONSTRAINT aggregate_estimators_add_up CHECK (
        llm_estimated_count + heuristic_estimated_count = conversation_count
    )
);

CREATE UNIQUE INDEX idx_daily_aggregates_date_user ON daily_aggregates (analysis_date, user_id_hash)
    NULLS NOT DISTINCT;
CREATE INDEX idx_daily_aggregates_user_date ON daily_aggregates (user_id_hash, analysis_date)
    WHERE user_id_hash IS NOT NULL;


-- Breakdowns of a day by model, task category or group, optionally within one group.
--   group_id ''  + dimension model|category: everyone, split by model or category
--   group_id G   + dimension model|category: group G, split by model or category
--   group_id G   + dimension total (value ''): group G's totals
CREATE TABLE daily_breakdowns (
    analysis_date DATE NOT NULL,
    group_id VARCHAR(255) NOT NULL DEFAULT '',     -- '' = everyone
    dimension VARCHAR(16) NOT NULL,
    dimension_value VARCHAR(255) NOT NULL,

    conversation_count INTEGER NOT NULL DEFAULT 0,
    user_count INTEGER NOT NULL DEFAULT 0,
    message_count INTEGER NOT NULL DEFAULT 0,
    total_active_time INTEGER NOT NULL DEFAULT 0,
    total_manual_time_estimated INTEGER NOT NULL DEFAULT 0,
    total_manual_time_low INTEGER NOT NULL DEFAULT 0,
    total_manual_time_high INTEGER NOT NULL DEFAULT 0,
    total_time_saved INTEGER NOT NULL DEFAULT 0,
    total_time_saved_low INTEGER NOT NULL DEFAULT 0,
    total_time_saved_high INTEGER NOT NULL DEFAULT 0,
    confidence_sum INTEGER NOT NULL DEFAULT 0,
    llm_estimated_count INTEGER NOT NULL DEFAULT 0,
    heuristic_estimated_count INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),

    CONSTRAINT daily_breakdowns_dimension CHECK (dimension IN ('total', 'model', 'category')),
    CONSTRAINT daily_breakdowns_total_needs_group CHECK (dimension <> 'total' OR group_id <> ''),
    CONSTRAINT daily_breakdowns_positive CHECK (
        conversation_count >= 0 AND user_count >= 0 AND message_count >= 0
        AND total_active_time >= 0 AND total_time_saved >= 0 AND confidence_sum >= 0
    ),
    PRIMARY KEY (analysis_date, group_id, dimension, dimension_value)
);

CREATE INDEX idx_daily_breakdowns_lookup ON daily_breakdowns (dimension, group_id, analysis_date);


-- Open WebUI groups, refreshed from the source on every dispatch: names and sizes
-- for the breakdown (small groups are hidden) and pseudonymous membership for filters.
CREATE TABLE user_groups (
    group_id VARCHAR(255) PRIMARY KEY,
    name TEXT NOT NULL,
    member_count INTEGER NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
    group_id VARCHAR(255) NOT NULL REFERENCES user_groups (group_id) ON DELETE CASCADE,
    user_id_hash VARCHAR(64) NOT NULL,
    PRIMARY KEY (group_id, user_id_hash)
);
CREATE INDEX idx_group_members_user ON group_members (user_id_hash);
