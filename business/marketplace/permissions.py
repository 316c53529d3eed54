"""Who may do what in the marketplace: the plug-in's permissions, as named constants.

Viewers read their account's beats and orders and their library of licences (with its
download links); editors create beats and change tiers; owners spend or take money:
buy a licence, connect the seller's Stripe account, refund an order. Editors may make
sandbox sales (test mode: :mod:`.sandbox_sales`, no money moves). The public
catalogue, the Stripe webhook (signed by Stripe) and signed download links need no
token (``PUBLIC``).
"""

from __future__ import annotations

from dawserver.plugin_api import Permission, Role

READ = Permission("marketplace.read", "see the account's beats, tiers and orders",
                  Role.VIEWER)
LIBRARY = Permission("marketplace.library",
                     "see the account's bought licences and get download links", Role.VIEWER)
CATALOGUE = Permission("marketplace.catalogue", "create beats and change their licence tiers",
                       Role.EDITOR)
BUY = Permission("marketplace.buy", "buy licences for the account (spends its money)",
                 Role.OWNER)
SELL = Permission("marketplace.sell",
                  "connect the account's Stripe account and refund its orders", Role.OWNER)

SANDBOX = Permission("marketplace.sandbox",
                     "make sandbox sales of the account's beats with a test-mode key (no "
                     "money moves)", Role.EDITOR)

PERMISSIONS = [READ, LIBRARY, CATALOGUE, BUY, SELL, SANDBOX]
