"""Distribution: releases from rendered projects, compliance, DDEX delivery, royalties.

Loaded as a plug-in (see :mod:`business.distribution.plugin`); the core never imports it.
"""
