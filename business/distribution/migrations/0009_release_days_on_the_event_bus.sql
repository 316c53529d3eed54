-- Distribution: release-day events go through the server's one event bus (the core's
-- events_outbox table, created before any plug-in migration). Events the plug-in's own
-- outbox had not delivered yet move there with their ids, so a hook that heard one before
-- still tells the repeat apart; then that outbox goes.
INSERT INTO events_outbox (account_id, id, name, payload, created_at)
SELECT account_id, event_id, name, payload, created_at FROM dist_outbox
WHERE delivered_at IS NULL;
DROP TABLE dist_outbox;
