-- Read models of the accounts projection. Rebuilt from the log by `stratus projections rebuild accounts`.
CREATE TABLE accounts
(
    account_id     uuid PRIMARY KEY,
    name           text        NOT NULL,
    email          text        NOT NULL,
    email_verified boolean     NOT NULL DEFAULT false,
    phone          text,
    phone_verified boolean     NOT NULL DEFAULT false,
    password_hash  text        NOT NULL,
    roles          text[]      NOT NULL,
    status         text        NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE INDEX accounts_created_at_idx ON accounts (created_at DESC, account_id DESC);

CREATE TABLE account_sessions
(
    session_id   uuid PRIMARY KEY,
    account_id   uuid        NOT NULL,
    status       text        NOT NULL,
    client_ip    text,
    user_agent   text,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    ended_at     timestamptz,
    end_reason   text
);

CREATE INDEX account_sessions_account_idx ON account_sessions (account_id, created_at DESC);

-- Not UNIQUE: uniqueness is decided by unique_claims before the command runs; a constraint here
-- could only stall the projection, never protect anything.
CREATE INDEX accounts_email_idx ON accounts (email);
