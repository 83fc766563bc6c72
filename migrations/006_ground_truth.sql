-- Ground truth: what people say a task would have taken them by hand.
--
-- One confirmation per (conversation, person); a later answer replaces the earlier
-- one (`answer_count` says how often the person answered). The estimate the person
-- was shown is copied in when the answer arrives (`seen_*`); a confirmation that
-- arrives before the conversation is analysed has no `seen_*` values and is joined
-- to the analysis by `conversation_id` when there is one (see functions/calibration.py).
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

CREATE TABLE time_confirmations (
    conversation_id VARCHAR(255) NOT NULL,
    user_id_hash VARCHAR(64) NOT NULL,             -- HMAC pseudonym of the Open WebUI user id
    message_id VARCHAR(255),                       -- the assistant message the button was under

    confirmed_minutes INTEGER,                     -- NULL when the person said AI did not help
    did_not_help BOOLEAN NOT NULL DEFAULT false,
    preset VARCHAR(16),                            -- the preset chosen, NULL for typed minutes

    -- the estimate the person saw (NULL: not analysed yet when they answered)
    seen_low INTEGER,
    seen_most_likely INTEGER,
    seen_high INTEGER,
    seen_estimator VARCHAR(20),
    seen_model VARCHAR(128),
    seen_prompt_version VARCHAR(64),
    seen_task_category VARCHAR(32),

    answer_count INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),

    PRIMARY KEY (conversation_id, user_id_hash),
    CONSTRAINT time_confirmations_answer CHECK (
        (did_not_help AND confirmed_minutes IS NULL)
        OR (NOT did_not_help AND confirmed_minutes BETWEEN 1 AND 2400)
    ),
    CONSTRAINT time_confirmations_seen_band CHECK (
        seen_most_likely IS NULL
        OR (seen_low IS NOT NULL AND seen_high IS NOT NULL
            AND 0 <= seen_low AND seen_low <= seen_most_likely AND seen_most_likely <= seen_high)
    ),
    CONSTRAINT time_confirmations_count CHECK (answer_count >= 1)
);

CREATE INDEX idx_time_confirmations_updated ON time_confirmations (updated_at);


-- Answers of the other models of side-by-side turns: counted apart from regenerations.
ALTER TABLE conversation_analysis
    ADD COLUMN side_by_side_count INTEGER NOT NULL DEFAULT 0 CHECK (side_by_side_count >= 0);


-- The success signal: a conversation whose kept answers were last rated down in Open WebUI
-- (`rated_down`, read from Open WebUI's `feedback` table when analysed), or that its owner
-- said "AI did not help" (`confirmed_no_help`, kept in step by the feedback endpoint), is
-- unsuccessful: it saves 0 in the success-adjusted figure.
ALTER TABLE conversation_analysis
    ADD COLUMN rated_down BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN confirmed_no_help BOOLEAN NOT NULL DEFAULT false;

ALTER TABLE daily_aggregates
    ADD COLUMN total_time_saved_successful INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN unsuccessful_count INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT successful_within_totals CHECK (
        0 <= total_time_saved_successful AND total_time_saved_successful <= total_time_saved
        AND 0 <= unsuccessful_count AND unsuccessful_count <= conversation_count
    );

ALTER TABLE daily_breakdowns
    ADD COLUMN total_time_saved_successful INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN unsuccessful_count INTEGER NOT NULL DEFAULT 0,
    ADD CONSTRAINT successful_within_breakdown CHECK (
        0 <= total_time_saved_successful AND total_time_saved_successful <= total_time_saved
        AND 0 <= unsuccessful_count AND unsuccessful_count <= conversation_count
    );
