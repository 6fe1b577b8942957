-- Snapshots of aggregate state (commands/src/aggregate_store.rs, ADR 0013): derived data, never a
-- source of truth. A command on an aggregate that is not in the process's cache starts from its
-- snapshot and replays only the events after `sequence`. A snapshot is used only by a build whose
-- domain fingerprint equals `schema`; any other build replays from the events and replaces it.
CREATE TABLE aggregate_snapshots
(
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    -- The sequence of the last event folded into `state`.
    sequence       bigint      NOT NULL CHECK (sequence > 0),
    schema         text        NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);
