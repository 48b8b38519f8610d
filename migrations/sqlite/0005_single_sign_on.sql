-- Single sign-on: users created by their first OpenID Connect login are
-- marked, so a local account is never taken over by a provider's username;
-- and the logins under way (state, nonce, PKCE verifier) live here, so any
-- instance can finish a login another one started, and each is used once.
-- Kept column-for-column in step with migrations/postgres.

ALTER TABLE users ADD COLUMN sso BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE oidc_logins (
    id_hash       TEXT PRIMARY KEY NOT NULL,
    state         TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next          TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);
