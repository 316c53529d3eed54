"""Who may do what in social: the plug-in's permissions, as named constants.

Viewers read channels, posts, the calendar and the audit trail; editors (an
organisation's members) compose, edit, submit and delete posts; approving needs
``social.approve`` and a place in the channel's workflow (the workflow names the
people, teams and roles); owners (an organisation's admins and owners) connect and
disconnect channels and set their workflows and queue slots.
"""

from __future__ import annotations

from dawserver.plugin_api import Permission, Role

READ = Permission("social.read", "see channels, posts, the calendar and the audit trail",
                  Role.VIEWER)
COMPOSE = Permission("social.compose", "create, edit, submit and delete posts", Role.EDITOR)
APPROVE = Permission("social.approve",
                     "approve or reject posts where a channel's workflow names you",
                     Role.VIEWER)
CHANNELS = Permission("social.channels",
                      "connect and disconnect channels; set workflows and queue slots",
                      Role.OWNER)

PERMISSIONS = [READ, COMPOSE, APPROVE, CHANNELS]
