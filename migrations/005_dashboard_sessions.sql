-- Dashboard login sessions, so that signing out ends a session on the server and an
-- unused session times out. The cookie carries a random session id (signed); only its
-- SHA-256 is stored, so reading this table gives nobody a usable cookie. Rows are
-- deleted a day after they expire.
CREATE TABLE dashboard_sessions (
    session_hash VARCHAR(64) PRIMARY KEY,
    role VARCHAR(16) NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    CHECK (expires_at > created_at)
);
CREATE INDEX idx_dashboard_sessions_expires_at ON dashboard_sessions (expires_at);
