-- Pipeline bookkeeping: refused task payloads and the conversations each run planned.

-- task_rejections: payloads the pipeline refused (oversized, not JSON, wrong shape),
-- acknowledged (2xx) so the queue stops retrying, and recorded here with a reason.
-- The body itself is never stored: only its size and a hash to match log lines.
CREATE TABLE task_rejections (
    id BIGSERIAL PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    function_name VARCHAR(20) NOT NULL,
    reason TEXT NOT NULL,
    body_bytes INTEGER NOT NULL CHECK (body_bytes >= 0),
    body_sha256 VARCHAR(64) NOT NULL,
    task_name VARCHAR(500),
    CONSTRAINT task_rejections_function CHECK (function_name IN ('dispatch', 'analyze', 'aggregate'))
);

CREATE INDEX idx_task_rejections_received_at ON task_rejections (received_at);


-- The conversations a run planned, written when the run opens. A dispatch that is
-- retried after a crash re-enqueues the planned tasks that have no outcome yet
-- (task names are deterministic, so the ones already enqueued are not duplicated),
-- and a stale run can say exactly which conversations never reported.
CREATE TABLE run_tasks (
    run_id UUID NOT NULL REFERENCES processing_log (id) ON DELETE CASCADE,
    conversation_id VARCHAR(255) NOT NULL,
    PRIMARY KEY (run_id, conversation_id)
);
