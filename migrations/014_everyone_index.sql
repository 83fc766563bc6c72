-- Everyone's daily rows (user_id_hash IS NULL) are one per date among the per-person rows of
-- that date. A summary or trend of everyone reads only them: with this partial index it reads
-- one index range of `days` entries instead of descending the (date, user) index once per date.
CREATE INDEX idx_daily_aggregates_everyone ON daily_aggregates (analysis_date) WHERE user_id_hash IS NULL;
