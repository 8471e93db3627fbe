-- Consent is remembered per resource server as well as per client: approving one
-- resource never approves another. Earlier consents did not record their resource and
-- are dropped, so users are asked once more.
DROP TABLE consents;
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    resource   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
);

-- Whether the authorization request carried redirect_uri (then /token requires it too).
ALTER TABLE authorization_codes ADD COLUMN redirect_uri_sent BIGINT NOT NULL DEFAULT 1;

-- Whether an admin-added resource server accepts tokens without a user.
ALTER TABLE resource_servers ADD COLUMN machine_clients BIGINT NOT NULL DEFAULT 0;

-- Installation-wide secrets shared by every instance (e.g. the refresh-rotation key).
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX clients_issued ON clients(client_id_issued_at);
