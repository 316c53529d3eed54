"""Who may do what in analytics: the plug-in's permissions, as named constants.

Viewers read sources (never their credentials), runs, series, the catalogue and its
audit trail, run read-only SQL over the account's own rows, save dashboards of their own
and keep their own alert preferences; editors share dashboards with the team, merge and
split catalogue entities and add milestone thresholds; owners connect and disconnect
sources (credentials) and start back-fills (they spend the account's platform quotas).
"""

from __future__ import annotations

from dawserver.plugin_api import Permission, Role

READ = Permission("analytics.read",
                  "see connected sources, runs, series, freshness and the catalogue",
                  Role.VIEWER)
QUERY = Permission("analytics.query", "run read-only SQL over the account's own analytics",
                   Role.VIEWER)
CATALOG = Permission("analytics.catalog", "merge and split catalogue entities", Role.EDITOR)
DASHBOARDS = Permission("analytics.dashboards",
                        "save, change and delete one's own analytics dashboards", Role.VIEWER)
SHARE = Permission("analytics.share",
                   "share one's dashboards with everyone who reads the account's analytics",
                   Role.EDITOR)
MILESTONES = Permission("analytics.milestones",
                        "add and remove the account's own milestone thresholds", Role.EDITOR)
SOURCES = Permission("analytics.sources",
                     "connect and disconnect sources; start back-fills", Role.OWNER)

PERMISSIONS = [READ, QUERY, DASHBOARDS, CATALOG, SHARE, MILESTONES, SOURCES]
