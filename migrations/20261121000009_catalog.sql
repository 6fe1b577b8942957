-- The catalog projection (projections/src/catalog.rs, docs/adr/0010-catalog.md): datacenters, OS
-- images and plans as the catalog routes and the order flow read them. Prices and custom pricing
-- are kept as the events store them (jsonb, read back into the domain types) beside the columns
-- that lists filter and sort on. Codes are unique through unique_claims, not here: a constraint
-- the log could break would stop the projection.
CREATE TABLE catalog_datacenters
(
    datacenter_id  uuid PRIMARY KEY,
    code           text        NOT NULL,
    name           text        NOT NULL,
    -- ISO 3166-1 alpha-2.
    country        text        NOT NULL,
    -- Whether it takes new orders.
    available      boolean     NOT NULL,
    -- CustomPricing as stored in the events; null: custom configurations are not sold here.
    custom_pricing jsonb,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE INDEX catalog_datacenters_by_code ON catalog_datacenters (code, datacenter_id);

CREATE TABLE catalog_images
(
    image_id     uuid PRIMARY KEY,
    name         text        NOT NULL,
    version      text        NOT NULL,
    -- linux | windows | bsd
    family       text        NOT NULL,
    min_disk_gib bigint      NOT NULL,
    available    boolean     NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX catalog_images_by_name ON catalog_images (name, version, image_id);

CREATE TABLE catalog_plans
(
    plan_id        uuid PRIMARY KEY,
    code           text        NOT NULL,
    name           text        NOT NULL,
    -- The fixed resources (they never change once created).
    vcpus          bigint      NOT NULL,
    memory_mib     bigint      NOT NULL,
    disk_gib       bigint      NOT NULL,
    ipv4           bigint      NOT NULL,
    traffic_gib    bigint      NOT NULL,
    -- PriceTable as stored in the events.
    prices         jsonb       NOT NULL,
    currency       text        NOT NULL,
    -- The monthly reference price in micro-units of the currency: the order of lists.
    monthly_micros bigint      NOT NULL,
    -- Where it is sold (at least one).
    datacenter_ids uuid[]      NOT NULL,
    -- active | retired
    status         text        NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    -- Set while retired.
    retired_at     timestamptz
);

CREATE INDEX catalog_plans_by_price ON catalog_plans (status, monthly_micros, code, plan_id);
CREATE INDEX catalog_plans_by_datacenter ON catalog_plans USING gin (datacenter_ids);
