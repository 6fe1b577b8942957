-- Idempotency-Key (DESIGN.md section 7): the first request with a key claims it here, and its answer
-- is kept so that a retry with the same key gets the same answer instead of running again.
-- Written only by `stratus_commands::idempotency_keys`; docs/adr/0006-idempotency-keys.md.
CREATE TABLE idempotency_keys
(
    -- Whose key: `account:<uuid>` for a bearer token's subject, `anonymous` otherwise.
    scope            text        NOT NULL,
    method           text        NOT NULL,
    path             text        NOT NULL,
    idempotency_key  text        NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    -- SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint      bytea       NOT NULL CHECK (length(fingerprint) = 32),
    -- The request that holds the key; only it may record or release its outcome.
    claim_id         uuid        NOT NULL,
    -- When the current holder claimed it; a claim left in progress past the lock timeout is stale.
    claimed_at       timestamptz NOT NULL DEFAULT now(),
    -- The answer, once the holder finished with a status below 500 (a 5xx deletes the row).
    response_status  smallint CHECK (response_status BETWEEN 100 AND 499),
    response_headers jsonb,
    response_body    bytea,
    completed_at     timestamptz,
    -- After this the row is ignored and may be taken over or purged.
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (scope, method, path, idempotency_key),
    CHECK ((response_status IS NULL) = (completed_at IS NULL)),
    CHECK ((response_status IS NULL) = (response_headers IS NULL)),
    CHECK ((response_status IS NULL) = (response_body IS NULL))
);

-- The purge of expired rows, oldest first.
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
