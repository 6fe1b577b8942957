-- The wallets projection (projections/src/wallets.rs): one row per wallet and one line per
-- movement or pending movement. Amounts are integer micro-units of the wallet's currency.
CREATE TABLE wallets
(
    account_id                   uuid PRIMARY KEY,
    currency                     text        NOT NULL,
    -- What the customer holds; may be negative down to minus the credit limit.
    balance_micros               bigint      NOT NULL DEFAULT 0,
    -- Held for requested and approved withdrawals, still inside the balance.
    reserved_micros              bigint      NOT NULL DEFAULT 0,
    credit_limit_micros          bigint      NOT NULL DEFAULT 0,
    low_balance_threshold_micros bigint      NOT NULL DEFAULT 0,
    -- The number of wallet events applied (the aggregate's sequence).
    version                      bigint      NOT NULL,
    opened_at                    timestamptz NOT NULL,
    updated_at                   timestamptz NOT NULL
);

CREATE INDEX wallets_balance ON wallets (currency, balance_micros);

-- One line per top-up, debit, refund and withdrawal, updated as it settles.
CREATE TABLE wallet_transactions
(
    -- The payment id, the withdrawal id, or for debits and refunds a UUIDv5 of the wallet and the
    -- ledger reference.
    id                   uuid PRIMARY KEY,
    account_id           uuid        NOT NULL,
    -- top_up | debit | refund | withdrawal
    kind                 text        NOT NULL,
    -- pending | completed | failed | rejected
    status               text        NOT NULL,
    -- Withdrawals only: requested | approved | paid_out | rejected.
    stage                text,
    -- Always positive; the direction follows from the kind.
    amount_micros        bigint      NOT NULL,
    currency             text        NOT NULL,
    -- Set once the line moved the balance.
    balance_after_micros bigint,
    -- The ledger reference (debits, refunds), the gateway's reference (top-ups), the payout
    -- destination (withdrawals).
    reference            text,
    -- Debits and refunds: order | invoice | vm_hour | adjustment | goodwill.
    reason               text,
    -- Refunds: the debit they give back.
    refunds_reference    text,
    -- Top-ups: stripe | manual.
    gateway              text,
    -- Why a top-up failed or a withdrawal was rejected.
    failure_reason       text,
    -- Staff who decided a withdrawal.
    decided_by           uuid,
    -- The global position of the event that created the line: the newest-first order and cursor.
    created_position     bigint      NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);

CREATE INDEX wallet_transactions_by_account ON wallet_transactions (account_id, created_position DESC);
CREATE INDEX wallet_transactions_by_kind ON wallet_transactions (kind, status, created_position DESC);
