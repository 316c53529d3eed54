-- Milestones held back from a recipient's alert mail by their cooldown, mailed later as
-- one digest (business/analytics/digest.py). recipient: a hash of the address, as in
-- analytics_alert_mail.
CREATE TABLE analytics_alert_held (
    account_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    milestone_id TEXT NOT NULL,
    held_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_id, recipient, milestone_id)
);
