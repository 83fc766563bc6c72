-- A short lease on (run, conversation) while one delivery estimates it. Cloud Tasks may
-- deliver a task twice at once; the second delivery sees the live claim and is told to
-- come back later (by then the outcome is recorded and it is a no-op), so the LLM is
-- asked once. A claim whose holder died expires and can be taken over.
CREATE TABLE analysis_claims (
    run_id UUID NOT NULL REFERENCES processing_log (id) ON DELETE CASCADE,
    conversation_id VARCHAR(255) NOT NULL,
    claimed_until TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, conversation_id)
);
