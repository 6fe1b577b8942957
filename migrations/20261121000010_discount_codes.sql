-- The discount codes projection (projections/src/discount_codes.rs): one row per code with its
-- current terms and redemption counts, and one row per order that redeemed a code.
CREATE TABLE discount_codes
(
    -- UUIDv5 of the code (stratus_domain::discount::id_of).
    id                       uuid PRIMARY KEY,
    -- Upper case, 3 to 32 of A-Z 0-9 - _.
    code                     text        NOT NULL UNIQUE,
    -- Exactly one of percent_off_basis_points (1..10000) and amount_off_micros is set.
    percent_off_basis_points integer,
    amount_off_micros        bigint,
    amount_off_currency      text,
    valid_from               timestamptz,
    valid_until              timestamptz,
    -- NULL: unlimited.
    max_redemptions          bigint,
    max_per_account          bigint,
    -- Empty: any plan (and custom configurations); any billing period.
    plan_ids                 uuid[]      NOT NULL,
    billing_periods          text[]      NOT NULL,
    first_order_only         boolean     NOT NULL,
    active                   boolean     NOT NULL,
    -- Redeemed and not released: what counts toward the limits.
    redemptions_in_use       bigint      NOT NULL DEFAULT 0,
    -- Redemptions given back by cancelled or expired orders.
    redemptions_released     bigint      NOT NULL DEFAULT 0,
    -- The number of events applied (the aggregate's sequence).
    version                  bigint      NOT NULL,
    created_at               timestamptz NOT NULL,
    -- When the terms last changed (creation or update; redemptions do not count).
    updated_at               timestamptz NOT NULL
);

CREATE INDEX discount_codes_newest ON discount_codes (created_at DESC, id DESC);

-- One row per (code, order); a released row keeps its released_at.
CREATE TABLE discount_redemptions
(
    code_id        uuid        NOT NULL,
    order_id       uuid        NOT NULL,
    account_id     uuid        NOT NULL,
    -- NULL for a custom configuration.
    plan_id        uuid,
    billing_period text        NOT NULL,
    redeemed_at    timestamptz NOT NULL,
    released_at    timestamptz,
    PRIMARY KEY (code_id, order_id)
);

CREATE INDEX discount_redemptions_by_account ON discount_redemptions (account_id, code_id);
