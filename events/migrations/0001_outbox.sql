-- The event outbox (events.EventBus): an event is inserted in the same transaction as the
-- change it announces; the relay hands it to the transport and stamps relayed_at.
-- account_id is the distribution column.
CREATE TABLE events_outbox (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    relayed_at DOUBLE PRECISION,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX events_outbox_pending ON events_outbox (relayed_at, created_at);
