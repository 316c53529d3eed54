"""The core's permissions, declared like a plug-in's (by :mod:`dawserver.core_plugin`)."""

from __future__ import annotations

from .plugin_api import Permission, Role, Scope

SERVER_PROJECTS = Permission(
    "server.projects", "list every project and create projects", Role.OWNER, Scope.SERVER)
SERVER_MODELS = Permission(
    "server.models", "list the registered transcription models and their measured errors",
    Role.OWNER, Scope.SERVER)
PROJECT_READ = Permission(
    "project.read", "open a project: its document, renders, audio, peaks, bounces, "
    "transcripts and the live mix", Role.VIEWER)
PROJECT_EDIT = Permission(
    "project.edit", "change a project's audio: upload, bounce, transcribe, edit by text",
    Role.EDITOR)
PROJECT_MANAGE = Permission(
    "project.manage", "rename the project, issue tokens, change roles and revoke members",
    Role.OWNER)

LV2_READ = Permission(
    "lv2.read", "list the LV2 plug-ins this server can host, with their controls",
    Role.VIEWER)

SAMPLES_READ = Permission(
    "samples.read", "search the account's sample library and audition its samples",
    Role.VIEWER)
SAMPLES_EDIT = Permission(
    "samples.edit", "add samples to the account's library: upload, index folders",
    Role.EDITOR)


ACCOUNT_SELF = Permission(
    "account.self", "manage one's own sign-in: password, two-step sign-in, sessions "
    "(signed-in sessions only)", Role.OWNER)
ACCOUNT_READ = Permission(
    "account.read", "see an account: its members, invitations and projects", Role.VIEWER)
ACCOUNT_ADMIN = Permission(
    "account.admin", "administer an account: invite, change roles, API keys, the security "
    "log", Role.OWNER)
PROJECTS_CREATE = Permission(
    "projects.create", "create projects in an account", Role.EDITOR)

ACCOUNT_PERMISSIONS = [ACCOUNT_SELF, ACCOUNT_READ, ACCOUNT_ADMIN, PROJECTS_CREATE]

CORE_PERMISSIONS = [SERVER_PROJECTS, SERVER_MODELS, PROJECT_READ, PROJECT_EDIT, PROJECT_MANAGE,
                    *ACCOUNT_PERMISSIONS, SAMPLES_READ, SAMPLES_EDIT, LV2_READ]
