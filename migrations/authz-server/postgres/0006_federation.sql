-- Sign-in through upstream OpenID Providers. A transaction is the state of one redirect to
-- the provider: single-use, ten minutes, bound to the browser by a cookie whose digest is
-- kept here. An identity is the provider's (issuer, subject), linked to one local user.
CREATE TABLE upstream_logins (
    state_hash   TEXT PRIMARY KEY,
    provider     TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    request      TEXT NOT NULL,
    binding_hash TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE identity_links (
    provider   TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, issuer, subject)
);
CREATE INDEX identity_links_user ON identity_links(user_id);
