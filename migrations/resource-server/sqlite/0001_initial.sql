-- MCP resource server schema: per-user notes and request counts. `user_sub` is the
-- token's `sub`; times are Unix seconds.
CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    user_sub   TEXT NOT NULL,
    title      TEXT NOT NULL,
    content    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX notes_user ON notes(user_sub, created_at);

CREATE TABLE api_usage (
    user_sub TEXT NOT NULL,
    name     TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (user_sub, name)
);
