-- A webhook made by a test-mode key is a test-mode webhook: it hears only events from
-- sandbox data, and only test-mode keys list or manage it. 0: live (every webhook
-- made before this). account_id already leads the table's primary key.
ALTER TABLE webhook_subscriptions ADD COLUMN test_mode INTEGER NOT NULL DEFAULT 0;
