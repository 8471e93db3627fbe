-- Resource servers managed from the admin command (besides those in the configuration),
-- and the audit trail of security events.
CREATE TABLE resource_servers (
    resource    TEXT PRIMARY KEY,
    name        TEXT,
    client_id   TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    user_id   TEXT,
    client_id TEXT,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events(at);
