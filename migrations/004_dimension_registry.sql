-- Dimensions and estimators as data (see functions/dimensions.py and functions/metrics.py).
--
--   * daily_breakdowns.dimension no longer enumerates the dimensions: any short
--     lower-case name the registry declares is accepted, so a new dimension needs
--     no edit of this check;
--   * the estimator of an aggregate is data: `estimator_counts`, a JSON object of
--     conversations per estimator, replaces llm_estimated_count and
--     heuristic_estimated_count, and the check that they add up now reads the object;
--     conversation_analysis.estimator is checked for its form, not against a list;
--   * conversation_analysis.tags: the Open WebUI tags of the chat (chat.meta.tags),
--     bounded by the reader.
-- Runs inside the migration runner's transaction; no BEGIN/COMMIT here.

ALTER TABLE daily_breakdowns DROP CONSTRAINT daily_breakdowns_dimension;
ALTER TABLE daily_breakdowns ADD CONSTRAINT daily_breakdowns_dimension
    CHECK (dimension ~ '^[a-z][a-z0-9_]{0,15}$');

ALTER TABLE conversation_analysis DROP CONSTRAINT valid_estimator;
ALTER TABLE conversation_analysis ADD CONSTRAINT valid_estimator
    CHECK (estimator ~ '^[a-z][a-z0-9_]{0,19}$');

ALTER TABLE conversation_analysis ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}';


-- The total of a JSON object of non-negative whole counts; NULL when it is anything else.
CREATE FUNCTION count_map_total(counts JSONB) RETURNS BIGINT
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_typeof(counts) <> 'object' THEN NULL
        WHEN EXISTS (
            SELECT 1 FROM jsonb_each(counts) AS entry
            WHERE jsonb_typeof(entry.value) <> 'number' OR entry.value::text !~ '^[0-9]+$'
        ) THEN NULL
        ELSE (SELECT coalesce(sum(entry.value::text::bigint), 0) FROM jsonb_each(counts) AS entry)
    END
$$;

ALTER TABLE daily_aggregates ADD COLUMN estimator_counts JSONB NOT NULL DEFAULT '{}';
ALTER TABLE daily_breakdowns ADD COLUMN estimator_counts JSONB NOT NULL DEFAULT '{}';

UPDATE daily_aggregates SET estimator_counts = jsonb_strip_nulls(jsonb_build_object(
    'llm', nullif(llm_estimated_count, 0), 'heuristic', nullif(heuristic_estimated_count, 0)));
UPDATE daily_breakdowns SET estimator_counts = jsonb_strip_nulls(jsonb_build_object(
    'llm', nullif(llm_estimated_count, 0), 'heuristic', nullif(heuristic_estimated_count, 0)));

ALTER TABLE daily_aggregates DROP CONSTRAINT aggregate_estimators_add_up;
ALTER TABLE daily_aggregates DROP COLUMN llm_estimated_count;
ALTER TABLE daily_aggregates DROP COLUMN heuristic_estimated_count;
ALTER TABLE daily_breakdowns DROP COLUMN llm_estimated_count;
ALTER TABLE daily_breakdowns DROP COLUMN heuristic_estimated_count;

ALTER TABLE daily_aggregates ADD CONSTRAINT aggregate_estimators_add_up
    CHECK (coalesce(count_map_total(estimator_counts), -1) = conversation_count);
ALTER TABLE daily_breakdowns ADD CONSTRAINT breakdown_estimators_add_up
    CHECK (coalesce(count_map_total(estimator_counts), -1) = conversation_count);
