"""Social: schedule posts to social networks from the studio, with approvals and a calendar.

Channels (accounts on X, Instagram, Facebook Pages, TikTok, YouTube, LinkedIn, Threads and
Bluesky) are connected through each network's OAuth flow and their tokens kept encrypted;
posts are composed once with per-network variants, approved in up to three tiers and laid
out on a calendar. Loaded as a plug-in (see :mod:`business.social.plugin`); the core never
imports it.
"""
