-- The revocation feed: one row for each token, grant, user or client whose tokens stopped
-- being live, written by triggers in the revoking transaction, whoever makes it. Resource
-- servers read it (`POST /revocations`) to forget cached introspection answers at once
-- instead of after their cache TTL. Rows are kept a day.
CREATE TABLE revocation_events (
    id        BIGSERIAL PRIMARY KEY,
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

CREATE FUNCTION feed_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'access_tokens' THEN
        INSERT INTO revocation_events (at, jti, resource)
        VALUES (EXTRACT(EPOCH FROM now())::BIGINT, NEW.jti, NEW.resource);
    ELSIF TG_TABLE_NAME = 'revoked_access_tokens' THEN
        INSERT INTO revocation_events (at, jti, client_id)
        VALUES (EXTRACT(EPOCH FROM now())::BIGINT, NEW.jti, NEW.client_id);
    ELSIF TG_TABLE_NAME = 'grants' AND TG_OP = 'UPDATE' THEN
        INSERT INTO revocation_events (at, sub, client_id, resource)
        VALUES (EXTRACT(EPOCH FROM now())::BIGINT, NEW.user_id, NEW.client_id, NEW.resource);
    ELSIF TG_TABLE_NAME = 'grants' THEN
        INSERT INTO revocation_events (at, sub, client_id, resource)
        VALUES (EXTRACT(EPOCH FROM now())::BIGINT, OLD.user_id, OLD.client_id, OLD.resource);
    ELSIF TG_TABLE_NAME = 'users' AND TG_OP = 'UPDATE' THEN
        INSERT INTO revocation_events (at, sub) VALUES (EXTRACT(EPOCH FROM now())::BIGINT, NEW.id);
    ELSIF TG_TABLE_NAME = 'users' THEN
        INSERT INTO revocation_events (at, sub) VALUES (EXTRACT(EPOCH FROM now())::BIGINT, OLD.id);
    ELSIF TG_TABLE_NAME = 'clients' THEN
        INSERT INTO revocation_events (at, client_id)
        VALUES (EXTRACT(EPOCH FROM now())::BIGINT, OLD.client_id);
    END IF;
    RETURN NULL;
END
$$;

-- Deferred to the commit, as the revocation counter's triggers are: event ids are taken at
-- commit time, so a reader rarely sees a later id before an earlier one (and resource
-- servers read a few ids back to catch those).
CREATE CONSTRAINT TRIGGER feed_access_token_revoked AFTER UPDATE OF revoked_at ON access_tokens
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL) EXECUTE FUNCTION feed_revocation();
CREATE CONSTRAINT TRIGGER feed_machine_token_revoked AFTER INSERT ON revoked_access_tokens
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION feed_revocation();
CREATE CONSTRAINT TRIGGER feed_grant_revoked AFTER UPDATE OF revoked_at ON grants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL) EXECUTE FUNCTION feed_revocation();
CREATE CONSTRAINT TRIGGER feed_grant_deleted AFTER DELETE ON grants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL) EXECUTE FUNCTION feed_revocation();
CREATE CONSTRAINT TRIGGER feed_user_disabled AFTER UPDATE OF disabled ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.disabled = 0 AND NEW.disabled <> 0) EXECUTE FUNCTION feed_revocation();
CREATE CONSTRAINT TRIGGER feed_user_deleted AFTER DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION feed_revocation();
CREATE CONSTRAINT TRIGGER feed_client_deleted AFTER DELETE ON clients
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION feed_revocation();
