-- The double-entry ledger (projections/src/ledger.rs, docs/adr/0007-double-entry-ledger.md): two
-- postings per wallet event that moves money, one on the wallet, one on its counter account.
-- Convention: a wallet account's postings sum to its balance (money owed to the customer is
-- positive); the postings of one event, and so of each currency, sum to zero.
CREATE TABLE ledger_entries
(
    -- The event's global position and the line within it (1: the wallet, 2: the counter account).
    global_position bigint      NOT NULL,
    line            smallint    NOT NULL,
    -- The wallet's aggregate id (its account id) and the event's sequence in that stream.
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    -- wallet:<account id> | clearing:<gateway> | revenue:<reason> | refunds:<reason> | payouts
    ledger_account  text        NOT NULL,
    -- Set on wallet postings only: the account whose wallet it is.
    account_id      uuid,
    currency        text        NOT NULL,
    -- Signed integer micro-units of the currency.
    amount_micros   bigint      NOT NULL,
    -- top_up | debit | refund | payout
    kind            text        NOT NULL,
    -- When the event was appended to the log.
    recorded_at     timestamptz NOT NULL,
    PRIMARY KEY (global_position, line),
    CHECK (amount_micros <> 0),
    CHECK ((account_id IS NULL) = (ledger_account NOT LIKE 'wallet:%'))
);

CREATE INDEX ledger_entries_by_account ON ledger_entries (ledger_account, currency);
CREATE INDEX ledger_entries_by_wallet ON ledger_entries (account_id) WHERE account_id IS NOT NULL;

-- The ledger's own memory of which gateway collects each top-up (from TopUpInitiated), so that
-- TopUpCompleted can post to the right clearing account without reading another projection.
CREATE TABLE ledger_top_ups
(
    aggregate_id text NOT NULL,
    payment_id   uuid NOT NULL,
    gateway      text NOT NULL,
    PRIMARY KEY (aggregate_id, payment_id)
);
