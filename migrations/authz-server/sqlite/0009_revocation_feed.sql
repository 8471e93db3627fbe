-- The revocation feed: one row for each token, grant, user or client whose tokens stopped
-- being live, written by triggers in the revoking transaction, whoever makes it. Resource
-- servers read it (`POST /revocations`) to forget cached introspection answers at once
-- instead of after their cache TTL. Rows are kept a day.
CREATE TABLE revocation_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT NOT NULL,
    jti       TEXT,
    sub       TEXT,
    client_id TEXT,
    -- NULL: concerns every resource.
    resource  TEXT
);

-- The highest id purged: a reader whose cursor is below it has missed events.
CREATE TABLE revocation_feed (
    id             INTEGER PRIMARY KEY,
    purged_through BIGINT NOT NULL
);
INSERT INTO revocation_feed (id, purged_through) VALUES (1, 0);

CREATE TRIGGER feed_access_token_revoked AFTER UPDATE OF revoked_at ON access_tokens
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO revocation_events (at, jti, resource)
    VALUES (CAST(strftime('%s', 'now') AS INTEGER), NEW.jti, NEW.resource);
END;
CREATE TRIGGER feed_machine_token_revoked AFTER INSERT ON revoked_access_tokens
BEGIN
    INSERT INTO revocation_events (at, jti, client_id)
    VALUES (CAST(strftime('%s', 'now') AS INTEGER), NEW.jti, NEW.client_id);
END;
CREATE TRIGGER feed_grant_revoked AFTER UPDATE OF revoked_at ON grants
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO revocation_events (at, sub, client_id, resource)
    VALUES (CAST(strftime('%s', 'now') AS INTEGER), NEW.user_id, NEW.client_id, NEW.resource);
END;
CREATE TRIGGER feed_grant_deleted AFTER DELETE ON grants
WHEN OLD.revoked_at IS NULL
BEGIN
    INSERT INTO revocation_events (at, sub, client_id, resource)
    VALUES (CAST(strftime('%s', 'now') AS INTEGER), OLD.user_id, OLD.client_id, OLD.resource);
END;
CREATE TRIGGER feed_user_disabled AFTER UPDATE OF disabled ON users
WHEN OLD.disabled = 0 AND NEW.disabled <> 0
BEGIN
    INSERT INTO revocation_events (at, sub) VALUES (CAST(strftime('%s', 'now') AS INTEGER), NEW.id);
END;
CREATE TRIGGER feed_user_deleted AFTER DELETE ON users
BEGIN
    INSERT INTO revocation_events (at, sub) VALUES (CAST(strftime('%s', 'now') AS INTEGER), OLD.id);
END;
CREATE TRIGGER feed_client_deleted AFTER DELETE ON clients
BEGIN
    INSERT INTO revocation_events (at, client_id)
    VALUES (CAST(strftime('%s', 'now') AS INTEGER), OLD.client_id);
END;
