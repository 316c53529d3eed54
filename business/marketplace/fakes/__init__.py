"""Fakes of the services the marketplace talks to, for tests and demos only; product modules
never import this package (see :mod:`business.marketplace.fakes.stripe`)."""
