"""Who may do what in social: the plug-in's permissions, as named constants.

Viewers read channels, posts, the calendar and the audit trail; editors (an
organisation's members) compose, edit, submit and delete posts; approving needs
``social.approve`` and a place in the channel's workflow (the workflow names the
people, teams and roles; the plug-in declares the organisation role ``approver``, which
holds only reading and approving); owners (an organisation's admins and owners) connect and
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
#: An organisation role this plug-in declares (``role:NAME``): someone who reviews posts
#: and nothing else. It reads the calendar and approves where a channel's workflow names
#: the role (or them); it composes nothing and opens no project.
APPROVER = Permission("role:approver",
                      "organisation role 'approver': reads the social calendar and approves "
                      "posts where a channel's workflow names the role", Role.VIEWER)
#: What an organisation's approver may do here.
APPROVER_MAY = frozenset({READ.name, APPROVE.name})

PERMISSIONS = [READ, COMPOSE, APPROVE, CHANNELS, APPROVER]
