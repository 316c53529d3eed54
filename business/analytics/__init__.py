"""Analytics: how an artist's music does on every platform, in one place. This package
starts with ingestion: one connector per source (:mod:`business.analytics.sources`) that
signs in, pages through a date range, paces itself to the source's rate limits and quotas,
checks every answer against the source's declared response shape and turns it into
:class:`~business.analytics.sources.records.Point` time series and
:class:`~business.analytics.sources.records.Identity` records for the catalogue. The fakes
of the sources (for tests and demos only) are in :mod:`business.analytics.fakes`; the
catalogue, storage, plug-in wiring and pages come later (docs/analytics.md).
"""
