"""Errors of the distribution module."""

from __future__ import annotations


class DistributionError(Exception):
    """Base class of every distribution error."""


class MetadataError(DistributionError):
    """Release metadata has the wrong shape."""


class ComplianceError(DistributionError):
    """A release failed the compliance gate; ``issues`` says what to fix."""

    def __init__(self, issues: list) -> None:
        self.issues = issues
        first = "; ".join(i.message for i in issues[:3])
        more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
        super().__init__(f"release is not ready for delivery: {first}{more}")


class ForeignFileError(DistributionError):
    """A release names a file that is not its account's (another account's, the server's)."""


class SplitError(DistributionError):
    """A royalty split is invalid (e.g. shares that do not sum to 100%)."""


class StatementError(DistributionError):
    """An earnings statement cannot be imported."""


class DeliveryError(DistributionError):
    """A store delivery failed; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class NotFoundError(DistributionError):
    """A release, campaign or job does not exist for this account."""


class NotRetryableError(DistributionError):
    """A delivery is not dead (queued, running or delivered): only a dead one is retried."""
