-- Inbox replies and direct messages (business/social/replies.py): items keep their
-- author's id on the network and, for direct messages, whom an answer goes to; every
-- answer sent from the inbox is a row, sent by one ``social.reply`` job.

ALTER TABLE social_inbox_items ADD COLUMN author_id TEXT NOT NULL DEFAULT '';
ALTER TABLE social_inbox_items ADD COLUMN thread TEXT NOT NULL DEFAULT '';

CREATE TABLE social_inbox_replies (
    account_id TEXT NOT NULL,
    reply_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    network TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    text TEXT NOT NULL,
    person TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    job_id TEXT NOT NULL DEFAULT '',
    remote_id TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    PRIMARY KEY (account_id, reply_id)
);
CREATE INDEX social_inbox_replies_item ON social_inbox_replies (account_id, item_id);
