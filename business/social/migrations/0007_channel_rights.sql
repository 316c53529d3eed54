-- Per-channel rights: [{"person": id, "access": "publish" | "approval" | "view"}]; a
-- person not listed keeps what their account role gives (business/social/rights.py).

ALTER TABLE social_channels ADD COLUMN access_rights TEXT NOT NULL DEFAULT '[]';
