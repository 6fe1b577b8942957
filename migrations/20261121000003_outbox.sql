-- Messages to the outside world (email, SMS), written by reactors inside the feed's transaction and
-- sent by the outbox dispatcher. Rendered at enqueue time: what is stored is exactly what is sent.
CREATE TABLE outbox
(
    id              uuid PRIMARY KEY,
    -- The same key enqueued twice is one message (a replayed or retried reactor).
    dedup_key       text        NOT NULL UNIQUE,
    channel         text        NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient       text        NOT NULL,
    subject         text,
    body_text       text        NOT NULL,
    body_html       text,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    -- Attempts started so far; a claim counts as one, so a sender that crashes mid-send still uses one up.
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Set while one dispatcher is sending; after it passes, the message may be claimed again.
    leased_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CHECK (channel = 'sms' OR subject IS NOT NULL),
    CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);

-- The dispatcher's scan: pending messages in due order.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';

-- Wake-up for the dispatchers; delivered when the enqueuing transaction commits.
CREATE FUNCTION outbox_notify() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('stratus_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify_after_insert
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
