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

CREATE TRIGGER grants_revoked AFTER UPDATE OF revoked_at OR DELETE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION count_revocation();
CREATE TRIGGER access_tokens_revoked AFTER UPDATE OF revoked_at ON access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION count_revocation();
CREATE TRIGGER machine_tokens_revoked AFTER INSERT ON revoked_access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION count_revocation();
CREATE TRIGGER users_changed AFTER UPDATE OF disabled OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION count_revocation();
CREATE TRIGGER clients_changed AFTER UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION count_revocation();
