-- The orders projection (projections/src/orders.rs): one row per order. Amounts are integer
-- micro-units of the order's currency, copied from the quote the order was placed with.
CREATE TABLE orders
(
    order_id          uuid PRIMARY KEY,
    account_id        uuid        NOT NULL,
    -- pending_payment | paid | cancelled
    status            text        NOT NULL,
    -- Why a cancelled order was cancelled: customer | staff | expired.
    cancel_reason     text,
    hostname          text        NOT NULL,
    -- plan | custom
    item_kind         text        NOT NULL,
    plan_id           uuid,
    -- {vcpus, memory_mib, disk_gib, ipv4, traffic_gib}
    resources         jsonb       NOT NULL,
    datacenter_id     uuid        NOT NULL,
    image_id          uuid        NOT NULL,
    ssh_keys          jsonb       NOT NULL,
    billing_period    text        NOT NULL,
    currency          text        NOT NULL,
    subtotal_micros   bigint      NOT NULL,
    discount_micros   bigint      NOT NULL,
    tax_micros        bigint      NOT NULL,
    total_micros      bigint      NOT NULL,
    discount_code     text,
    discount_code_id  uuid,
    -- The whole quote as placed (lines, tax rate and country).
    quote             jsonb       NOT NULL,
    invoice_id        uuid        NOT NULL,
    payment_reference text,
    placed_at         timestamptz NOT NULL,
    pay_by            timestamptz NOT NULL,
    paid_at           timestamptz,
    cancelled_at      timestamptz,
    updated_at        timestamptz NOT NULL,
    -- The feed position of OrderPlaced, the cursor of lists (newest first).
    placed_position   bigint      NOT NULL
);

CREATE INDEX orders_account ON orders (account_id, placed_position DESC);
CREATE INDEX orders_placed ON orders (placed_position DESC);
-- The expiry sweep looks for pending orders past their deadline.
CREATE INDEX orders_due ON orders (pay_by) WHERE status = 'pending_payment';
