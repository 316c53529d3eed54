"""People, organisations, sign-in, sessions, API keys and the audit log.

A core package beside :mod:`database` and :mod:`jobs`: it keeps accounts in the
process's one database and knows nothing of the HTTP server, the documents or
the business plug-ins; :mod:`dawserver` serves it (docs/accounts.md).
"""
