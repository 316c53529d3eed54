-- The remote user whose grant a channel rests on (Facebook: the user managing the Page;
-- '' where the network's account is the user itself, or not known yet), so that
-- withdrawing one channel's grant never kills another live channel's
-- (business/social/revocation.py).

ALTER TABLE social_channels ADD COLUMN remote_user TEXT NOT NULL DEFAULT '';
