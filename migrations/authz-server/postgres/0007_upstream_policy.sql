-- A session started by an upstream sign-in whose provider maps a claim to scopes keeps the
-- scopes its user may be granted (NULL: no limit). Providers added by `admin provider add`
-- live here beside those of the configuration file; the client secret is kept apart from the
-- rest of the settings (JSON) so that listing them never reads it.
ALTER TABLE sessions ADD COLUMN scope_limit TEXT;

CREATE TABLE upstream_providers (
    name          TEXT PRIMARY KEY,
    settings      TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
