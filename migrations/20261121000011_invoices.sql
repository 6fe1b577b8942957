-- Invoices (docs/adr/0012-invoices-and-numbering.md).

-- Gapless invoice numbers per year, allocated by commands/src/invoices/numbers.rs before the
-- Issue command: one counter row per year (bumped with INSERT … ON CONFLICT DO UPDATE, which
-- row-locks the year until the allocating transaction ends) and one mapping row per invoice, in
-- the same transaction. Written by commands, never by a projection; never rebuilt.
CREATE TABLE invoice_number_counters
(
    year          int PRIMARY KEY,
    -- The highest sequence handed out in this year; every lower one belongs to an invoice.
    last_sequence bigint NOT NULL CHECK (last_sequence >= 1)
);

CREATE TABLE invoice_numbers
(
    invoice_id   uuid PRIMARY KEY,
    year         int         NOT NULL,
    sequence     bigint      NOT NULL CHECK (sequence >= 1),
    -- When the number was taken: the invoice is issued at this instant (its year is `year`),
    -- so a retried or repaired issue carries the same time and number.
    allocated_at timestamptz NOT NULL,
    UNIQUE (year, sequence)
);

-- The invoices projection (projections/src/invoices.rs): one row per invoice. Amounts are integer
-- micro-units of `currency`.
CREATE TABLE invoices
(
    id                     uuid PRIMARY KEY,
    -- `2026-000042` once issued; a draft has none.
    number                 text,
    year                   int,
    sequence               bigint,
    account_id             uuid        NOT NULL,
    order_id               uuid,
    -- draft | issued | paid | void
    status                 text        NOT NULL,
    currency               text        NOT NULL,
    billing_period         text        NOT NULL,
    subtotal_micros        bigint      NOT NULL,
    discount_micros        bigint      NOT NULL,
    discount_code          text,
    net_micros             bigint      NOT NULL,
    tax_country            text,
    tax_rate_basis_points  int         NOT NULL,
    tax_micros             bigint      NOT NULL,
    total_micros           bigint      NOT NULL,
    -- [{description, quantity, unit_price, amount}] with money as {"amount", "currency"}.
    lines                  jsonb       NOT NULL,
    -- {name, email, country}: the snapshot taken at drafting.
    bill_to                jsonb       NOT NULL,
    payment_reference      text,
    void_reason            text,
    created_at             timestamptz NOT NULL,
    issued_at              timestamptz,
    paid_at                timestamptz,
    voided_at              timestamptz,
    updated_at             timestamptz NOT NULL,
    -- The global position of the InvoiceDrafted event: the newest-first order and cursor.
    created_position       bigint      NOT NULL
);

-- Two invoices never share a number: if the log ever said so, the projection stops loudly.
CREATE UNIQUE INDEX invoices_by_number ON invoices (year, sequence) WHERE number IS NOT NULL;
CREATE INDEX invoices_by_account ON invoices (account_id, created_position DESC);
CREATE INDEX invoices_by_status ON invoices (status, created_position DESC);
