-- Client-credentials access tokens have no row of their own: they are live while their
-- client exists and their jti is not listed here. A row is kept until the token expires.
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Moved on by every write that may end a token's life or change a client, whoever makes it
-- (another instance, the admin command): each server polls it and forgets what it had
-- remembered of tokens and clients when it moves.
CREATE TABLE revocation_counter (
    id  INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO revocation_counter (id, seq) VALUES (1, 0);

CREATE FUNCTION count_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

-- Deferred to the commit, after every other lock of the transaction is held: the counter row
-- is always locked last, so two revoking transactions cannot deadlock on it, and the new
-- value is visible only once the revocation is.
CREATE CONSTRAINT TRIGGER grants_revoked AFTER UPDATE OF revoked_at ON grants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_revocation();
CREATE CONSTRAINT TRIGGER grants_deleted AFTER DELETE ON grants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_revocation();
CREATE CONSTRAINT TRIGGER access_tokens_revoked AFTER UPDATE OF revoked_at ON access_tokens
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_revocation();
CREATE CONSTRAINT TRIGGER machine_tokens_revoked AFTER INSERT ON revoked_access_tokens
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_revocation();
CREATE CONSTRAINT TRIGGER users_disabled AFTER UPDATE OF disabled ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_revocation();
CREATE CONSTRAINT TRIGGER users_deleted AFTER DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_revocation();
CREATE CONSTRAINT TRIGGER clients_changed AFTER UPDATE ON clients
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_revocation();
CREATE CONSTRAINT TRIGGER clients_deleted AFTER DELETE ON clients
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_revocation();
