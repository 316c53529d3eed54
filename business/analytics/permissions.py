"""Who may do what in analytics: the plug-in's permissions, as named constants.

Viewers read sources (never their credentials), runs, series, the catalogue and its
audit trail, and run read-only SQL over the account's own rows; editors merge and split
catalogue entities and add milestone thresholds (every viewer keeps their own alert
preferences); owners connect and disconnect sources (credentials) and start
back-fills (they spend the account's platform quotas).
"""

from __future__ import annotations

from dawserver.plugin_api import Permission, Role

READ = Permission("analytics.read",
                  "see connected sources, runs, series, freshness and the catalogue",
                  Role.VIEWER)
QUERY = Permission("analytics.query", "run read-only SQL over the account's own analytics",
                   Role.VIEWER)
CATALOG = Permission("analytics.catalog", "merge and split catalogue entities", Role.EDITOR)
MILESTONES = Permission("analytics.milestones",
                        "add and remove the account's own milestone thresholds", Role.EDITOR)
SOURCES = Permission("analytics.sources",
                     "connect and disconnect sources; start back-fills", Role.OWNER)

PERMISSIONS = [READ, QUERY, CATALOG, MILESTONES, SOURCES]
