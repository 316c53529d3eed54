"""Python client of the Max Booster Studio public API (``/api/v1``).

:class:`Client` (sync) and :class:`AsyncClient` (asyncio), both on httpx, share one
retry policy (:class:`Retries`: 429 and 5xx answers and connection errors, waiting what
``Retry-After`` says) and send an ``Idempotency-Key`` with every POST, so a retried
create never creates twice. Lists come back as :class:`Page` s; the ``iter_*`` methods
(projects, releases, deliveries, pre-save campaigns, royalty statements, beats, orders,
licences, a project's transcripts and transcription jobs) walk every page;
``wait_for_transcription`` follows a job until it is finished, ``cancel_transcription``
stops one, ``edit_transcript`` edits a clip's audio through its words and
``undo_transcript_edit``/``redo_transcript_edit`` take such edits back and put them back;
``retry_delivery`` sends a dead delivery again, ``create_presave_campaign`` starts a
release's pre-save campaign and ``create_order`` makes a sandbox sale (test-mode keys).
"""

from .client import AsyncClient, Client
from .errors import ApiError
from .models import (
    Beat,
    DayUsage,
    EditedTranscript,
    KeyUsage,
    Licence,
    Order,
    Page,
    PresaveCampaign,
    Project,
    Release,
    ReleaseDelivery,
    RoyaltyStatement,
    Tier,
    Track,
    Transcript,
    TranscriptEditStep,
    TranscriptionJob,
    TranscriptSummary,
    UsageReport,
    Word,
)
from .retries import Retries

__all__ = ["ApiError", "AsyncClient", "Beat", "Client", "DayUsage", "EditedTranscript",
           "KeyUsage", "Licence",
           "Order", "Page", "PresaveCampaign", "Project", "Release", "ReleaseDelivery", "Retries",
           "RoyaltyStatement", "Tier", "Track", "Transcript", "TranscriptEditStep",
           "TranscriptSummary", "TranscriptionJob", "UsageReport", "Word"]
