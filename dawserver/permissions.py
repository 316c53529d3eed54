"""The core's permissions, declared like a plug-in's (by :mod:`dawserver.core_plugin`)."""

from __future__ import annotations

from .plugin_api import Permission, Role, Scope

SERVER_PROJECTS = Permission(
    "server.projects", "list every project and create projects", Role.OWNER, Scope.SERVER)
PROJECT_READ = Permission(
    "project.read", "open a project: its document, renders, audio, peaks, bounces, "
    "transcripts and the live mix", Role.VIEWER)
PROJECT_EDIT = Permission(
    "project.edit", "change a project's audio: upload, bounce, transcribe, edit by text",
    Role.EDITOR)
PROJECT_MANAGE = Permission(
    "project.manage", "rename the project, issue tokens, change roles and revoke members",
    Role.OWNER)

CORE_PERMISSIONS = [SERVER_PROJECTS, PROJECT_READ, PROJECT_EDIT, PROJECT_MANAGE]
