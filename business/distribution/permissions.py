"""Who may do what in distribution: the plug-in's permissions, as named constants.

Viewers read releases, checks, DDEX previews and delivery status; editors also
create, edit and check releases and start pre-save campaigns; owners also deliver
to stores and handle money (splits, payees, statements, balances). Pre-save
landing data is public.
"""

from __future__ import annotations

from dawserver.plugin_api import Permission, Role

READ = Permission("distribution.read",
                  "see releases, checks, DDEX previews, deliveries and stores", Role.VIEWER)
RELEASES = Permission("distribution.releases",
                      "create, edit and check releases; start pre-save campaigns", Role.EDITOR)
DELIVER = Permission("distribution.deliver",
                     "send releases, updates and takedowns to stores", Role.OWNER)
ROYALTIES = Permission("distribution.royalties",
                       "manage splits and payees, import statements, read balances",
                       Role.OWNER)

PERMISSIONS = [READ, RELEASES, DELIVER, ROYALTIES]
