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

CREATE TRIGGER grants_revoked AFTER UPDATE OF revoked_at ON grants
BEGIN UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER grants_deleted AFTER DELETE ON grants
BEGIN UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER access_tokens_revoked AFTER UPDATE OF revoked_at ON access_tokens
BEGIN UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER machine_tokens_revoked AFTER INSERT ON revoked_access_tokens
BEGIN UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER users_disabled AFTER UPDATE OF disabled ON users
BEGIN UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER clients_changed AFTER UPDATE ON clients
BEGIN UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients
BEGIN UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1; END;
