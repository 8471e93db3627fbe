-- The gateway in front of other MCP servers. Its signing key (for the identity tokens an
-- HTTP upstream receives) is shared by every instance; each tool call through it is kept
-- for the audit trail: who, which tool on which upstream, when, how it ended, how long.
CREATE TABLE gateway_keys (
    kid        TEXT PRIMARY KEY,
    pkcs8      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE gateway_calls (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    upstream    TEXT NOT NULL,
    tool        TEXT NOT NULL,
    user_sub    TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    arguments   TEXT
);
CREATE INDEX gateway_calls_at ON gateway_calls(at);
