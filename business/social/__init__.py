"""Social scheduling: channels on eight networks, per-network rules, bulk CSV scheduling.

Loaded as a plug-in; the core never imports it.
"""
